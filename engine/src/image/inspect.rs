//! Docker-shaped JSON for `image inspect` (and anything else that shows an image).

use serde_json::{Value, json};

use crate::store::ImageRecord;

/// The object `docker image inspect` prints for one image.
pub fn inspect_json(img: &ImageRecord) -> Value {
    let cfg = &img.config_json;
    let mut config = json!({
        "Hostname": "", "Domainname": "", "User": "", "AttachStdin": false,
        "AttachStdout": false, "AttachStderr": false, "Tty": false, "OpenStdin": false,
        "StdinOnce": false, "Env": null, "Cmd": null, "Image": "", "Volumes": null,
        "WorkingDir": "", "Entrypoint": null, "OnBuild": null, "Labels": null
    });
    if let (Some(dst), Some(Value::Object(src))) = (config.as_object_mut(), cfg.get("config")) {
        for (k, v) in src {
            dst.insert(k.clone(), v.clone());
        }
    }
    let dirs: Vec<String> = img
        .layer_dirs
        .iter()
        .rev()
        .map(|d| d.display().to_string())
        .collect();
    let str_of = |k: &str| cfg.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut graph = serde_json::Map::new();
    graph.insert("LowerDir".into(), Value::String(dirs.join(":")));
    json!({
        "Id": img.id,
        "RepoTags": img.familiar_tags(),
        "RepoDigests": img.repo_digests.iter().map(|d| super::reference::familiar_name(d)).collect::<Vec<_>>(),
        "Parent": "",
        "Comment": str_of("comment"),
        "Created": str_of("created"),
        "DockerVersion": str_of("docker_version"),
        "Author": str_of("author"),
        "Config": config,
        "Architecture": str_of("architecture"),
        "Variant": cfg.get("variant").cloned().unwrap_or(Value::Null),
        "Os": str_of("os"),
        "Size": img.size,
        "GraphDriver": { "Data": graph, "Name": "overlay" },
        "RootFS": {
            "Type": "layers",
            "Layers": img.layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>(),
        },
        "Metadata": { "LastTagTime": img.last_tag_time.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()) },
        "Descriptor": {
            "mediaType": img.manifest.media_type.clone().unwrap_or_else(|| crate::store::manifest::OCI_MANIFEST.into()),
            "digest": img.manifest_digest,
        },
    })
}

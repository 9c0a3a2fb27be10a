//! `_ping`, `version`, `info`, `system df`.

use rcompose_engine::container::model::Status;
use serde_json::{Value, json};

use crate::Context;
use crate::error::ApiError;
use crate::http::{Body, Response};
use crate::router::{API_VERSION, MIN_API_VERSION};

pub fn ping() -> Response {
    Response::new(200, Body::Text("OK".into()))
        .with_header("Cache-Control", "no-cache, no-store, must-revalidate")
        .with_header("Pragma", "no-cache")
        .with_header("Builder-Version", "1")
}

fn kernel() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// docker's GOARCH names.
fn arch() -> &'static str {
    rcompose_engine::image::host_arch()
}

pub fn version() -> Response {
    let v = env!("CARGO_PKG_VERSION");
    let engine = json!({
        "Name": "Engine", "Version": v,
        "Details": {
            "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "Arch": arch(),
            "Os": "linux", "KernelVersion": kernel(), "Experimental": "false",
            "GitCommit": "", "GoVersion": "", "BuildTime": ""
        }
    });
    Response::json(
        200,
        json!({
            "Platform": {"Name": "rcompose"},
            "Components": [engine],
            "Version": v, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
            "GitCommit": "", "GoVersion": "", "Os": "linux", "Arch": arch(),
            "KernelVersion": kernel(), "BuildTime": ""
        }),
    )
}

pub fn info(ctx: &Context) -> Result<Response, ApiError> {
    let eng = ctx.engine();
    let (mut running, mut paused, mut stopped) = (0, 0, 0);
    let list = eng.store.list()?;
    for c in &list {
        match eng.observe(&c.id)?.status {
            Status::Running | Status::Restarting => running += 1,
            Status::Paused => paused += 1,
            _ => stopped += 1,
        }
    }
    let images = ctx.images()?.list()?.len();
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let cgroup2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let v: Value = json!({
        "ID": "", "Containers": list.len(), "ContainersRunning": running,
        "ContainersPaused": paused, "ContainersStopped": stopped, "Images": images,
        "Driver": "overlay2", "DriverStatus": [], "DockerRootDir": ctx.root,
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"],
                    "Authorization": null, "Log": ["json-file"]},
        "MemoryLimit": true, "SwapLimit": false, "CpuCfsPeriod": true, "CpuCfsQuota": true,
        "IPv4Forwarding": true, "Debug": false, "NFd": 0, "NGoroutines": 0,
        "SystemTime": rcompose_engine::units::time::now_rfc3339(),
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs", "CgroupVersion": if cgroup2 { "2" } else { "1" },
        "KernelVersion": kernel(), "OperatingSystem": "rcompose", "OSVersion": "",
        "OSType": "linux", "Architecture": arch(), "NCPU": cpus, "MemTotal": 0,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": [], "Mirrors": []},
        "GenericResources": null, "HttpProxy": "", "HttpsProxy": "", "NoProxy": "",
        "Name": host, "Labels": [], "ExperimentalBuild": false,
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "Runtimes": {"runc": {"path": "libcontainer"}}, "DefaultRuntime": "runc",
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                  "ControlAvailable": false, "Error": "", "RemoteManagers": null},
        "LiveRestoreEnabled": true, "Isolation": "", "InitBinary": "tini",
        "ContainerdCommit": {"ID": "", "Expected": ""}, "RuncCommit": {"ID": "", "Expected": ""},
        "InitCommit": {"ID": "", "Expected": ""}, "SecurityOptions": [], "Warnings": []
    });
    Ok(Response::json(200, v))
}

/// `GET /system/df` (`docker system df`): the engine's disk usage, as `rcompose system df`,
/// in the shape docker's client sums itself.
pub fn df(ctx: &Context) -> Result<Response, ApiError> {
    use rcompose_engine::units::time::parse_rfc3339;
    let eng = ctx.engine();
    let du = rcompose_engine::usage::disk_usage(&eng, &ctx.root).map_err(|e| match e {
        rcompose_engine::usage::UsageError::Store(e) => ApiError::from(*e),
        rcompose_engine::usage::UsageError::Container(e) => ApiError::from(*e),
        rcompose_engine::usage::UsageError::Volume(e) => ApiError::from(*e),
    })?;
    let images: Vec<_> = du
        .image_rows
        .iter()
        .map(|i| {
            let tags = if i.repository == "<none>" {
                vec![]
            } else {
                vec![format!("{}:{}", i.repository, i.tag)]
            };
            serde_json::json!({
                "Id": format!("sha256:{}", i.short_id),
                "RepoTags": tags,
                "Created": i.created.as_deref().and_then(parse_rfc3339).unwrap_or(0),
                "Size": i.size, "VirtualSize": i.size, "SharedSize": i.shared,
                "Containers": i.containers, "Labels": {},
            })
        })
        .collect();
    let containers: Vec<_> = du
        .container_rows
        .iter()
        .map(|c| {
            serde_json::json!({
                "Id": c.config.id, "Names": [format!("/{}", c.config.name)],
                "Image": c.config.image, "Command": c.config.args.join(" "),
                "Created": parse_rfc3339(&c.config.created).unwrap_or(0),
                "State": c.status.as_str(), "Status": c.status.as_str(),
                "SizeRw": c.size, "SizeRootFs": c.size,
            })
        })
        .collect();
    let volumes: Vec<_> = du
        .volume_rows
        .iter()
        .map(|v| {
            serde_json::json!({
                "Name": v.name, "Driver": "local", "Scope": "local",
                "UsageData": {"Size": v.size, "RefCount": v.links},
            })
        })
        .collect();
    Ok(Response::json(
        200,
        serde_json::json!({
            "LayersSize": du.images.size,
            "Images": images,
            "Containers": containers,
            "Volumes": volumes,
            "BuildCache": [],
        }),
    ))
}

//! `image ls`: docker's columns, `--digests`, `--filter`, `--format`.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use rcompose_engine::image::reference::familiar_name;
use rcompose_engine::store::{ImageRecord, Store};
use serde_json::json;

use super::{fmt, short_id};

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only images matching REPOSITORY[:TAG]
    pub reference: Option<String>,
    /// Show all images (default hides intermediate images)
    #[arg(short, long)]
    pub all: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Filter output based on conditions provided (dangling, label, reference, before, since)
    #[arg(short, long = "filter", value_name = "FILTER")]
    pub filters: Vec<String>,
    /// Format output: table, json, or a Go template
    #[arg(long)]
    pub format: Option<String>,
}

/// One `image ls` row: (repository, tag, digest) of an image.
struct Row<'a> {
    img: &'a ImageRecord,
    repo: String,
    tag: String,
    digest: String,
}

fn rows_of(img: &ImageRecord) -> Vec<Row<'_>> {
    let digest_for = |name: &str| {
        img.repo_digests
            .iter()
            .find(|d| d.split('@').next() == Some(name))
            .and_then(|d| d.split('@').nth(1))
            .unwrap_or("<none>")
            .to_string()
    };
    let mut rows = Vec::new();
    for t in &img.repo_tags {
        let (name, tag) = t.rsplit_once(':').unwrap_or((t, ""));
        rows.push(Row {
            img,
            repo: familiar_name(name),
            tag: tag.to_string(),
            digest: digest_for(name),
        });
    }
    if rows.is_empty() {
        let (repo, digest) = match img.repo_digests.first().and_then(|d| d.split_once('@')) {
            Some((n, d)) => (familiar_name(n), d.to_string()),
            None => ("<none>".into(), "<none>".into()),
        };
        rows.push(Row {
            img,
            repo,
            tag: "<none>".into(),
            digest,
        });
    }
    rows
}

fn matches_filters(
    img: &ImageRecord,
    filters: &[(String, String)],
    all: &[ImageRecord],
) -> anyhow::Result<bool> {
    let created = |i: &ImageRecord| {
        i.created()
            .and_then(rcompose_engine::units::time::parse_rfc3339)
    };
    for (key, value) in filters {
        let ok = match key.as_str() {
            "dangling" => match value.as_str() {
                "true" | "1" => img.repo_tags.is_empty(),
                "false" | "0" => !img.repo_tags.is_empty(),
                _ => bail!("invalid filter 'dangling={value}': use true or false"),
            },
            "label" => {
                let labels = img
                    .config
                    .config()
                    .as_ref()
                    .and_then(|c| c.labels().clone())
                    .unwrap_or_default();
                match value.split_once('=') {
                    Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
                    None => labels.contains_key(value.as_str()),
                }
            }
            "reference" => img.familiar_tags().iter().any(|t| {
                glob(value, t) || glob(value, t.rsplit_once(':').map(|x| x.0).unwrap_or(t))
            }),
            "before" | "since" => {
                let other = all
                    .iter()
                    .find(|o| {
                        o.id == value.as_str()
                            || o.familiar_tags()
                                .iter()
                                .any(|t| t == value || t == &format!("{value}:latest"))
                            || o.id
                                .trim_start_matches("sha256:")
                                .starts_with(value.as_str())
                    })
                    .with_context(|| format!("No such image: {value}"))?;
                match (created(img), created(other)) {
                    (Some(a), Some(b)) if key == "before" => a < b,
                    (Some(a), Some(b)) => a > b,
                    _ => false,
                }
            }
            other => bail!(
                "invalid filter '{other}' (supported: dangling, label, reference, before, since)"
            ),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `*` and `?` shell-style matching, `*` not crossing `/` (like Go's path.Match).
fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && t[0] != b'/' && go(p, &t[1..])),
            (Some(b'?'), Some(c)) if *c != b'/' => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

fn parse_filters(raw: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    raw.iter()
        .map(|f| {
            f.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("bad format of filter {f:?} (expected name=value)"))
        })
        .collect()
}

pub fn ls(store: &Store, a: LsArgs) -> anyhow::Result<ExitCode> {
    let images = store.list()?;
    let mut filters = parse_filters(&a.filters)?;
    if let Some(r) = &a.reference {
        filters.push(("reference".into(), r.clone()));
    }
    let mut selected = Vec::new();
    for img in &images {
        if matches_filters(img, &filters, &images)? {
            selected.push(img);
        }
    }
    if a.quiet {
        let mut seen = std::collections::HashSet::new();
        for img in selected {
            if seen.insert(&img.id) {
                println!("{}", short_id(&img.id, a.no_trunc));
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows: Vec<Row<'_>> = selected.iter().flat_map(|i| rows_of(i)).collect();
    // As docker: `images mybox` lists the mybox tags only, not every tag of a matching image.
    let references: Vec<&String> = filters
        .iter()
        .filter(|(k, _)| k == "reference")
        .map(|(_, v)| v)
        .collect();
    rows.retain(|r| {
        references
            .iter()
            .all(|v| glob(v, &format!("{}:{}", r.repo, r.tag)) || glob(v, &r.repo))
    });
    rows.sort_by(|x, y| {
        y.img
            .created()
            .cmp(&x.img.created())
            .then(x.repo.cmp(&y.repo))
            .then(x.tag.cmp(&y.tag))
    });
    // Users are derived from the containers' configs (store/users.rs): read once here.
    let users = store.image_users()?;
    let row_json = |r: &Row<'_>| {
        json!({
            "Containers": users.get(&r.img.id).map_or(0, |u| u.len()).to_string(),
            "CreatedAt": fmt::docker_time(r.img.created()),
            "CreatedSince": fmt::since(r.img.created()),
            "Digest": r.digest,
            "ID": short_id(&r.img.id, a.no_trunc),
            "Repository": r.repo,
            "SharedSize": "N/A",
            "Size": rcompose_engine::units::human_size(r.img.size),
            "Tag": r.tag,
            "UniqueSize": "N/A",
            "VirtualSize": rcompose_engine::units::human_size(r.img.size),
        })
    };
    match a.format.as_deref() {
        Some("json") => {
            for r in &rows {
                println!("{}", row_json(r));
            }
        }
        Some(t) if t.starts_with("table") && t != "table" => {
            const NAMES: [(&str, &str); 8] = [
                ("Repository", "REPOSITORY"),
                ("Tag", "TAG"),
                ("ID", "IMAGE ID"),
                ("CreatedSince", "CREATED"),
                ("CreatedAt", "CREATED AT"),
                ("Size", "SIZE"),
                ("Digest", "DIGEST"),
                ("Containers", "CONTAINERS"),
            ];
            let json: Vec<_> = rows.iter().map(row_json).collect();
            let text = crate::cli::container_fmt::render_table(t, &json, &NAMES)
                .map_err(anyhow::Error::msg)?;
            print!("{text}");
        }
        Some(t) if t != "table" => {
            for r in &rows {
                println!("{}", fmt::render(t, &row_json(r))?);
            }
        }
        _ => {
            let mut header = vec!["REPOSITORY".to_string(), "TAG".into()];
            if a.digests {
                header.push("DIGEST".into());
            }
            header.extend(["IMAGE ID".into(), "CREATED".into(), "SIZE".into()]);
            let mut table = vec![header];
            for r in &rows {
                let mut row = vec![r.repo.clone(), r.tag.clone()];
                if a.digests {
                    row.push(r.digest.clone());
                }
                row.extend([
                    short_id(&r.img.id, a.no_trunc),
                    fmt::since(r.img.created()),
                    rcompose_engine::units::human_size(r.img.size),
                ]);
                table.push(row);
            }
            print!("{}", fmt::table(&table));
        }
    }
    Ok(ExitCode::SUCCESS)
}

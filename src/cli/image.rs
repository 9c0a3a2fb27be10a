//! `rcompose image …`: docker's image management group.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use rcompose_engine::image::archive;
use rcompose_engine::image::import::{ImportOptions, ImportSource, import};
use rcompose_engine::image::inspect::inspect_json;
use rcompose_engine::image::reference::{Reference, familiar_name};
use rcompose_engine::store::{ImageRecord, RemoveEvent, Store};
use serde_json::{Value, json};

use super::{ExitStatus, GlobalOpts};

mod fmt;
mod progress;
mod remote;

#[derive(Debug, Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    pub command: ImageCommand,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Remove one or more images
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Display detailed information on one or more images
    Inspect(InspectArgs),
    /// Import the contents from a tarball (or a directory) to create a filesystem image
    Import(ImportArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Load an image from a tar archive (docker-archive or OCI layout) or STDIN
    Load(LoadArgs),
    /// Download an image from a registry
    Pull(remote::PullArgs),
    /// Upload an image to a registry
    Push(remote::PushArgs),
    /// Search a private registry's catalog for images
    Search(remote::SearchArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Remove unused images
    Prune(PruneArgs),
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    pub image: String,
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set)]
    pub human: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Format output: table, json, or a Go template
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    /// Suppress the load output
    #[arg(short, long)]
    pub quiet: bool,
}

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

#[derive(Debug, Args)]
pub struct RmArgs {
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
    /// Force removal of the image
    #[arg(short, long)]
    pub force: bool,
    /// Do not delete untagged parents (accepted for compatibility; there are no parents)
    #[arg(long)]
    pub no_prune: bool,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    /// SOURCE_IMAGE[:TAG]
    pub source: String,
    /// TARGET_IMAGE[:TAG]
    pub target: String,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
    /// Format output: json or a Go template
    #[arg(short, long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Tarball (plain, gzip, zstd), root filesystem directory, or `-` for stdin
    pub source: String,
    /// REPOSITORY[:TAG]
    pub reference: Option<String>,
    /// Apply Dockerfile instruction to the created image (CMD, ENTRYPOINT, ENV, EXPOSE,
    /// LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR)
    #[arg(short, long = "change", value_name = "CHANGE")]
    pub changes: Vec<String>,
    /// Set commit message for imported image
    #[arg(short, long)]
    pub message: Option<String>,
}

pub fn run(global: &GlobalOpts, args: ImageArgs) -> anyhow::Result<ExitCode> {
    let store = Store::open(&global.root)
        .with_context(|| format!("opening the image store in {}", global.root.display()))?;
    match args.command {
        ImageCommand::Ls(a) => ls(&store, a),
        ImageCommand::Rm(a) => rm(&store, a),
        ImageCommand::Tag(a) => tag(&store, a),
        ImageCommand::Inspect(a) => inspect(&store, a),
        ImageCommand::Import(a) => import_cmd(&store, a),
        ImageCommand::Save(a) => save_cmd(&store, a),
        ImageCommand::Load(a) => load_cmd(&store, a),
        ImageCommand::Pull(a) => remote::pull_cmd(&store, a),
        ImageCommand::Push(a) => remote::push_cmd(&store, a),
        ImageCommand::Search(a) => remote::search_cmd(a),
        ImageCommand::History(a) => history_cmd(&store, a),
        ImageCommand::Prune(a) => prune_cmd(&store, a),
    }
}

fn short_id(id: &str, no_trunc: bool) -> String {
    if no_trunc {
        id.to_string()
    } else {
        let hex = id.strip_prefix("sha256:").unwrap_or(id);
        hex[..hex.len().min(12)].to_string()
    }
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
            .and_then(rcompose_engine::image::time::parse_rfc3339)
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

fn ls(store: &Store, a: LsArgs) -> anyhow::Result<ExitCode> {
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
    rows.sort_by(|x, y| {
        y.img
            .created()
            .cmp(&x.img.created())
            .then(x.repo.cmp(&y.repo))
            .then(x.tag.cmp(&y.tag))
    });
    let row_json = |r: &Row<'_>| {
        json!({
            "Containers": r.img.users.len().to_string(),
            "CreatedAt": fmt::docker_time(r.img.created()),
            "CreatedSince": fmt::since(r.img.created()),
            "Digest": r.digest,
            "ID": short_id(&r.img.id, a.no_trunc),
            "Repository": r.repo,
            "SharedSize": "N/A",
            "Size": fmt::human_size(r.img.size),
            "Tag": r.tag,
            "UniqueSize": "N/A",
            "VirtualSize": fmt::human_size(r.img.size),
        })
    };
    match a.format.as_deref() {
        Some("json") => {
            for r in &rows {
                println!("{}", row_json(r));
            }
        }
        Some(t) if t != "table" => {
            let (is_table, body) = match t.strip_prefix("table") {
                Some(rest) => (true, rest.trim_start()),
                None => (false, t),
            };
            let mut lines = Vec::new();
            if is_table {
                lines.push(fmt::header_for(
                    body,
                    &[
                        ("Repository", "REPOSITORY"),
                        ("Tag", "TAG"),
                        ("ID", "IMAGE ID"),
                        ("CreatedSince", "CREATED"),
                        ("CreatedAt", "CREATED AT"),
                        ("Size", "SIZE"),
                        ("Digest", "DIGEST"),
                        ("Containers", "CONTAINERS"),
                    ],
                ));
            }
            for r in &rows {
                lines.push(fmt::render(body, &row_json(r))?);
            }
            if is_table {
                let cells: Vec<Vec<String>> = lines
                    .iter()
                    .map(|l| l.split('\t').map(str::to_string).collect())
                    .collect();
                print!("{}", fmt::table(&cells));
            } else {
                for l in lines {
                    println!("{l}");
                }
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
                    fmt::human_size(r.img.size),
                ]);
                table.push(row);
            }
            print!("{}", fmt::table(&table));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn rm(store: &Store, a: RmArgs) -> anyhow::Result<ExitCode> {
    let locked = store.lock()?;
    let mut failed = false;
    for image in &a.images {
        match locked.remove_image(image, a.force) {
            Ok(events) => {
                for e in events {
                    match e {
                        RemoveEvent::Untagged(t) => println!("Untagged: {t}"),
                        RemoveEvent::Deleted(id) => println!("Deleted: {id}"),
                    }
                }
            }
            Err(e) => {
                eprintln!("Error response from daemon: {e}");
                failed = true;
            }
        }
    }
    if failed {
        return Err(ExitStatus(1).into());
    }
    Ok(ExitCode::SUCCESS)
}

fn tag(store: &Store, a: TagArgs) -> anyhow::Result<ExitCode> {
    let target = rcompose_engine::image::full_tag(&a.target)?;
    let locked = store.lock()?;
    let id = locked.resolve_id(&a.source)?;
    locked.tag(&id, &target)?;
    Ok(ExitCode::SUCCESS)
}

fn inspect(store: &Store, a: InspectArgs) -> anyhow::Result<ExitCode> {
    let mut out = Vec::new();
    let mut failed = false;
    for name in &a.images {
        match store.resolve(name) {
            Ok(img) => out.push(inspect_json(&img)),
            Err(e) => {
                eprintln!("Error: {e}");
                failed = true;
            }
        }
    }
    match a.format.as_deref() {
        None | Some("json") => println!("{}", serde_json::to_string_pretty(&Value::Array(out))?),
        Some(t) => {
            for v in &out {
                println!("{}", fmt::render(t, v)?);
            }
        }
    }
    if failed {
        return Err(ExitStatus(1).into());
    }
    Ok(ExitCode::SUCCESS)
}

fn import_cmd(store: &Store, a: ImportArgs) -> anyhow::Result<ExitCode> {
    if a.source.starts_with("http://") || a.source.starts_with("https://") {
        bail!(
            "importing from a URL is not supported yet: download the file and import it from disk"
        );
    }
    if let Some(r) = &a.reference {
        Reference::parse(r).with_context(|| format!("invalid image name {r:?}"))?;
    }
    let (source, name) = if a.source == "-" {
        (
            ImportSource::Tar(Box::new(std::io::stdin())),
            "-".to_string(),
        )
    } else {
        let path = PathBuf::from(&a.source);
        let md =
            std::fs::metadata(&path).with_context(|| format!("cannot read {}", path.display()))?;
        if md.is_dir() {
            (ImportSource::Dir(path), a.source.clone())
        } else {
            let f = std::fs::File::open(&path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            (ImportSource::Tar(Box::new(f)), a.source.clone())
        }
    };
    let opts = ImportOptions {
        changes: a.changes,
        message: a.message,
        source_name: name,
    };
    let id = import(store, source, a.reference.as_deref(), &opts)?;
    println!("{id}");
    Ok(ExitCode::SUCCESS)
}

fn save_cmd(store: &Store, a: SaveArgs) -> anyhow::Result<ExitCode> {
    let items = archive::save_items(store, &a.images)?;
    match &a.output {
        Some(path) => {
            // Write next to the target and rename, so a failed save leaves no partial file.
            let name = path
                .file_name()
                .with_context(|| format!("{} is not a file name", path.display()))?;
            let tmp = path.with_file_name(format!(
                ".{}.tmp-{}",
                name.to_string_lossy(),
                std::process::id()
            ));
            let result = (|| -> anyhow::Result<()> {
                let f = std::fs::File::create(&tmp)
                    .with_context(|| format!("cannot create {}", tmp.display()))?;
                let mut w = std::io::BufWriter::new(f);
                archive::save(store, &items, &mut w)?;
                let f = w.into_inner().map_err(|e| e.into_error())?;
                f.sync_all()?;
                std::fs::rename(&tmp, path)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                Ok(())
            })();
            if result.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            result?;
        }
        None => {
            if unsafe { libc::isatty(libc::STDOUT_FILENO) } == 1 {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            let stdout = std::io::stdout();
            archive::save(store, &items, std::io::BufWriter::new(stdout.lock()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn load_cmd(store: &Store, a: LoadArgs) -> anyhow::Result<ExitCode> {
    let report = match &a.input {
        Some(p) => {
            let f =
                std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
            archive::load(store, f)
        }
        None => {
            if unsafe { libc::isatty(libc::STDIN_FILENO) } == 1 {
                bail!("requested load from stdin, but stdin is empty");
            }
            archive::load(store, std::io::stdin().lock())
        }
    }
    .context("loading the archive failed; the image store is unchanged")?;
    if !a.quiet {
        for t in &report.tags {
            println!("Loaded image: {t}");
        }
        for id in &report.untagged_ids {
            println!("Loaded image ID: {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn history_cmd(store: &Store, a: HistoryArgs) -> anyhow::Result<ExitCode> {
    let img = store.resolve(&a.image)?;
    let rows = rcompose_engine::image::history::history(&img);
    if a.quiet {
        for r in &rows {
            println!(
                "{}",
                if r.id.starts_with("sha256:") {
                    short_id(&r.id, a.no_trunc)
                } else {
                    r.id.clone()
                }
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let json_of = |r: &rcompose_engine::image::history::HistoryRow| {
        let id = if r.id.starts_with("sha256:") {
            short_id(&r.id, a.no_trunc)
        } else {
            r.id.clone()
        };
        let created_by = if a.no_trunc || r.created_by.chars().count() <= 45 {
            r.created_by.clone()
        } else {
            format!("{}…", r.created_by.chars().take(44).collect::<String>())
        };
        json!({
            "ID": id,
            "CreatedSince": if a.human { fmt::since(r.created.as_deref()) } else { r.created.clone().unwrap_or_default() },
            "CreatedAt": r.created.clone().unwrap_or_default(),
            "CreatedBy": created_by,
            "Size": if a.human { fmt::human_size(r.size) } else { r.size.to_string() },
            "Comment": r.comment,
        })
    };
    match a.format.as_deref() {
        Some("json") => {
            for r in &rows {
                println!("{}", json_of(r));
            }
        }
        Some(t) if t != "table" => {
            for r in &rows {
                println!("{}", fmt::render(t, &json_of(r))?);
            }
        }
        _ => {
            let mut table = vec![vec![
                "IMAGE".to_string(),
                "CREATED".into(),
                "CREATED BY".into(),
                "SIZE".into(),
                "COMMENT".into(),
            ]];
            for r in &rows {
                let v = json_of(r);
                let cell = |k: &str| v[k].as_str().unwrap_or("").to_string();
                table.push(vec![
                    cell("ID"),
                    cell("CreatedSince"),
                    cell("CreatedBy"),
                    cell("Size"),
                    cell("Comment"),
                ]);
            }
            print!("{}", fmt::table(&table));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn prune_cmd(store: &Store, a: PruneArgs) -> anyhow::Result<ExitCode> {
    if !a.force {
        let what = if a.all {
            "all images without at least one container associated to them"
        } else {
            "all dangling images"
        };
        eprint!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        if !matches!(line.trim(), "y" | "Y" | "yes" | "Yes") {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let report = rcompose_engine::image::prune::prune(store, a.all)?;
    if !report.events.is_empty() {
        println!("Deleted Images:");
        for e in &report.events {
            match e {
                RemoveEvent::Untagged(t) => println!("untagged: {t}"),
                RemoveEvent::Deleted(d) => println!("deleted: {d}"),
            }
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        fmt::human_size(report.reclaimed)
    );
    Ok(ExitCode::SUCCESS)
}

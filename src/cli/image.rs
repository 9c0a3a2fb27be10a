//! `rcompose image …`: docker's image management group.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use rcompose_engine::image::archive;
use rcompose_engine::image::import::{ImportOptions, ImportSource, import};
use rcompose_engine::image::inspect::inspect_json;
use rcompose_engine::image::reference::Reference;
use rcompose_engine::store::{RemoveEvent, Store};
use serde_json::{Value, json};

use super::{ExitStatus, GlobalOpts};

pub mod build;
mod build_progress;
pub mod fmt;
mod ls;
mod progress;
pub mod remote;

#[derive(Debug, Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    pub command: ImageCommand,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images
    #[command(visible_alias = "list")]
    Ls(ls::LsArgs),
    /// Remove one or more images
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Display detailed information on one or more images
    Inspect(InspectArgs),
    /// Build an image from a Dockerfile
    Build(build::BuildArgs),
    /// Import the contents from a tarball (or a directory) to create a filesystem image
    Import(ImportArgs),
    /// Make a Debian base image (debian:bookworm[-slim]) from Debian's packages with debootstrap
    Bootstrap(BootstrapArgs),
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
    /// Tarball (plain, gzip, zstd) as a file or an http(s) URL, root filesystem directory, or
    /// `-` for stdin
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

#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// debian:<suite or version>[-slim], e.g. debian:bookworm-slim
    pub image: String,
    /// Debian archive to install from (default: debootstrap's own)
    #[arg(long)]
    pub mirror: Option<String>,
    /// Do not print debootstrap's progress
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(global: &GlobalOpts, args: ImageArgs) -> anyhow::Result<ExitCode> {
    let store = Store::open(&global.root)
        .with_context(|| format!("opening the image store in {}", global.root.display()))?;
    match args.command {
        ImageCommand::Ls(a) => ls::ls(&store, a),
        ImageCommand::Rm(a) => rm(&store, a),
        ImageCommand::Tag(a) => tag(&store, a),
        ImageCommand::Inspect(a) => inspect(&store, a),
        ImageCommand::Import(a) => import_cmd(&store, a),
        ImageCommand::Bootstrap(a) => {
            let quiet = a.quiet;
            let id = rcompose_engine::image::bootstrap::bootstrap(
                &store,
                &global.root,
                &a.image,
                a.mirror.as_deref(),
                &|line| {
                    if !quiet {
                        eprintln!("{line}");
                    }
                },
            )?;
            println!("{id}");
            Ok(ExitCode::SUCCESS)
        }
        ImageCommand::Build(a) => build::build_cmd(global, &store, a),
        ImageCommand::Save(a) => save_cmd(&store, a),
        ImageCommand::Load(a) => load_cmd(&store, a),
        ImageCommand::Pull(a) => remote::pull_cmd(&store, a),
        ImageCommand::Push(a) => remote::push_cmd(&store, a),
        ImageCommand::Search(a) => remote::search_cmd(a),
        ImageCommand::History(a) => history_cmd(&store, a),
        ImageCommand::Prune(a) => prune_cmd(&store, a),
    }
}

pub(super) fn short_id(id: &str, no_trunc: bool) -> String {
    if no_trunc {
        id.to_string()
    } else {
        let hex = id.strip_prefix("sha256:").unwrap_or(id);
        hex[..hex.len().min(12)].to_string()
    }
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
    if let Some(r) = &a.reference {
        Reference::parse(r).with_context(|| format!("invalid image name {r:?}"))?;
    }
    let (source, name) = if a.source.starts_with("http://") || a.source.starts_with("https://") {
        (
            ImportSource::Tar(rcompose_engine::image::import::open_url(&a.source)?),
            a.source.clone(),
        )
    } else if a.source == "-" {
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
            if std::io::stdout().is_terminal() {
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
            if std::io::stdin().is_terminal() {
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
            "Size": if a.human { rcompose_engine::units::human_size(r.size) } else { r.size.to_string() },
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
        rcompose_engine::units::human_size(report.reclaimed)
    );
    Ok(ExitCode::SUCCESS)
}

//! Registry commands: `image pull`, `image push`, `image search`.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use rcompose_engine::image::platform::PlatformSpec;
use rcompose_engine::image::reference::{Reference, familiar_name};
use rcompose_engine::image::registry::Client;
use rcompose_engine::image::registry::pull::{PullOptions, pull};
use rcompose_engine::image::registry::push::push;
use rcompose_engine::store::Store;

use super::fmt;
use super::progress::Renderer;

#[derive(Debug, Args)]
pub struct PullArgs {
    /// NAME[:TAG|@DIGEST]
    pub name: String,
    /// Download all tagged images in the repository
    #[arg(short, long)]
    pub all_tags: bool,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    /// Set platform if server is multi-platform capable (os/arch[/variant])
    #[arg(long)]
    pub platform: Option<String>,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// NAME[:TAG]
    pub name: String,
    /// Push all tags of an image to the repository
    #[arg(short, long)]
    pub all_tags: bool,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// REGISTRY/TERM (a private registry's catalog is searched)
    pub term: String,
    /// Max number of search results
    #[arg(long, default_value_t = 25)]
    pub limit: usize,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output: table, json, or a Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Filter output: stars=N, is-official=true|false, is-automated=true|false
    #[arg(short = 'f', long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
}

/// docker search's filters, checked before the registry is asked.
#[derive(Debug, Default, PartialEq)]
pub struct SearchFilter {
    stars: u64,
    official: Option<bool>,
    automated: Option<bool>,
}

impl SearchFilter {
    /// `stars=N`, `is-official=BOOL`, `is-automated=BOOL` (keys in any case, as tutorials
    /// write `--filter=STARS=3000`).
    pub fn parse(filters: &[String]) -> anyhow::Result<Self> {
        let mut f = Self::default();
        for raw in filters {
            let Some((k, v)) = raw.split_once('=') else {
                bail!("bad format of filter \"{raw}\" (expected name=value)");
            };
            let boolean = |v: &str| match v {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(anyhow::anyhow!("invalid filter '{raw}': use true or false")),
            };
            match k.to_ascii_lowercase().as_str() {
                "stars" => {
                    f.stars = v.parse().map_err(|_| {
                        anyhow::anyhow!("invalid filter '{raw}': stars takes a number")
                    })?
                }
                "is-official" => f.official = Some(boolean(v)?),
                "is-automated" => f.automated = Some(boolean(v)?),
                _ => bail!(
                    "invalid filter '{k}': use stars=N, is-official=true|false or is-automated=true|false"
                ),
            }
        }
        Ok(f)
    }

    /// Whether a result with these stars and flags passes.
    pub fn keeps(&self, stars: u64, official: bool, automated: bool) -> bool {
        stars >= self.stars
            && self.official.is_none_or(|o| o == official)
            && self.automated.is_none_or(|a| a == automated)
    }
}

pub fn pull_cmd(store: &Store, a: PullArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new()?;
    let opts = PullOptions {
        platform: a.platform.as_deref().map(PlatformSpec::parse).transpose()?,
        ..Default::default()
    };
    let r = Reference::parse(&a.name)?;
    let names = if a.all_tags {
        if r.tag.is_some() || r.digest.is_some() {
            bail!("tag can't be used with --all-tags/-a");
        }
        let ep = client.endpoint(&r.domain);
        let mut tags = client.tags(&ep, &r.path)?;
        tags.sort();
        tags.into_iter()
            .map(|t| format!("{}:{t}", r.name()))
            .collect()
    } else {
        vec![r.clone().with_default_tag().to_string()]
    };
    let renderer = Renderer::new(a.quiet);
    let mut last = String::new();
    for name in names {
        let res = pull(store, &client, &name, &opts, &|p| renderer.event(p));
        renderer.finish();
        let res = res.with_context(|| format!("pulling {}", familiar_name(&name)))?;
        last = res.reference;
    }
    if a.all_tags {
        last = r.name();
    }
    println!("{last}");
    Ok(ExitCode::SUCCESS)
}

/// `run`/`create`'s pull, as docker does it: status lines on stderr (stdout is for the
/// container id), "Unable to find image … locally" first when the image was missing.
pub fn pull_for_run(store: &Store, name: &str, missing: bool) -> anyhow::Result<()> {
    let r = Reference::parse(name)?.with_default_tag();
    let familiar = familiar_name(&r.to_string());
    if missing {
        eprintln!("Unable to find image '{familiar}' locally");
    }
    eprintln!(
        "{}: Pulling from {}",
        r.tag.as_deref().unwrap_or("latest"),
        familiar_name(&r.name())
    );
    let client = Client::new()?;
    let renderer = Renderer::new(true);
    let res = pull(
        store,
        &client,
        &r.to_string(),
        &PullOptions::default(),
        &|p| renderer.event(p),
    )
    .with_context(|| format!("pulling {familiar}"))?;
    eprintln!("Digest: {}", res.digest);
    if res.up_to_date {
        eprintln!("Status: Image is up to date for {familiar}");
    } else {
        eprintln!("Status: Downloaded newer image for {familiar}");
    }
    Ok(())
}

pub fn push_cmd(store: &Store, a: PushArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new()?;
    let r = Reference::parse(&a.name)?;
    let names: Vec<String> = if a.all_tags {
        let prefix = format!("{}:", r.name());
        let mut tags: Vec<String> = store
            .list()?
            .iter()
            .flat_map(|i| i.repo_tags.clone())
            .filter(|t| t.starts_with(&prefix))
            .collect();
        tags.sort();
        if tags.is_empty() {
            bail!(
                "An image does not exist locally with the tag: {}",
                familiar_name(&r.name())
            );
        }
        tags
    } else {
        let full = r.with_default_tag().to_string();
        if store.resolve(&full).is_err() {
            bail!(
                "An image does not exist locally with the tag: {}",
                familiar_name(&full)
            );
        }
        vec![full]
    };
    let renderer = Renderer::new(a.quiet);
    for name in names {
        let res = push(store, &client, &name, &|p| renderer.event(p));
        renderer.finish();
        res.with_context(|| format!("pushing {}", familiar_name(&name)))?;
        if a.quiet {
            println!("{}", familiar_name(&name));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn search_cmd(a: SearchArgs) -> anyhow::Result<ExitCode> {
    let filter = SearchFilter::parse(&a.filter)?;
    if !(1..=100).contains(&a.limit) {
        bail!("limit {} is outside the range of [1, 100]", a.limit);
    }
    let (registry, term) = match a.term.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            (first.to_string(), rest.to_string())
        }
        _ => bail!(
            "searching Docker Hub is not supported: name a private registry, e.g. `rcompose image search localhost:5000/{}`",
            a.term
        ),
    };
    let client = Client::new()?;
    let ep = client.endpoint(&registry);
    let repos = client
        .catalog(&ep)
        .with_context(|| format!("searching the catalog of {registry}"))?;
    // A registry's catalog has no stars and no official or automated images: every
    // repository counts as 0 stars, neither official nor automated.
    let mut hits: Vec<String> = repos
        .into_iter()
        .filter(|r| r.contains(&term) && filter.keeps(0, false, false))
        .collect();
    hits.sort();
    hits.truncate(a.limit);
    let rows: Vec<serde_json::Value> = hits
        .iter()
        .map(|h| {
            serde_json::json!({
                "Name": format!("{registry}/{h}"), "Description": "", "StarCount": "0",
                "IsOfficial": "false", "IsAutomated": "false",
            })
        })
        .collect();
    match a.format.as_deref() {
        Some("json") => {
            for r in &rows {
                println!("{r}");
            }
        }
        Some(t) if t != "table" => {
            for r in &rows {
                println!("{}", fmt::render(t, r)?);
            }
        }
        _ => {
            let mut table = vec![vec![
                "NAME".to_string(),
                "DESCRIPTION".into(),
                "STARS".into(),
                "OFFICIAL".into(),
            ]];
            for h in &hits {
                table.push(vec![
                    format!("{registry}/{h}"),
                    String::new(),
                    "0".into(),
                    String::new(),
                ]);
            }
            print!("{}", fmt::table(&table));
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::SearchFilter;

    #[test]
    fn search_filters() {
        let f = SearchFilter::parse(&["STARS=3000".into(), "is-official=true".into()]).unwrap();
        assert!(!f.keeps(0, false, false));
        assert!(f.keeps(3000, true, false));
        assert!(!f.keeps(2999, true, false));
        let f = SearchFilter::parse(&["is-official=false".into()]).unwrap();
        assert!(f.keeps(0, false, false));
        assert!(SearchFilter::parse(&["stars=many".into()]).is_err());
        assert!(SearchFilter::parse(&["color=red".into()]).is_err());
        assert!(SearchFilter::parse(&["stars".into()]).is_err());
    }
}

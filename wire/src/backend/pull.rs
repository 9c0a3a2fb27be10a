//! Compose pull policies and the pulls/pushes of service images over the engine's registry
//! client: which services need a pull (`pull_policy`, `up --pull`, `pull --policy`), bounded
//! parallel pulls and pushes reporting per-service events, and the record of when each
//! reference was last pulled (`<root>/compose/pulls.json`), which `daily`, `weekly` and
//! `every_<duration>` compare against. Nothing here prints: the CLI renders the events.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use rcompose_engine::store::StoreError;

/// What deciding, pulling or pushing a service image can fail with.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// A value that cannot be used (the text names the service and the key or flag).
    #[error("{0}")]
    Invalid(String),
    /// What was being done (`service "web": pulling image x`), and the error it met.
    #[error("{what}")]
    Context {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    Store(Box<StoreError>),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

impl From<StoreError> for PullError {
    fn from(e: StoreError) -> Self {
        Self::Store(Box::new(e))
    }
}

pub type Result<T, E = PullError> = std::result::Result<T, E>;

/// Adds what was being done to an error.
fn ctx<E: std::error::Error + Send + Sync + 'static>(
    what: impl FnOnce() -> String,
) -> impl FnOnce(E) -> PullError {
    move |e| PullError::Context {
        what: what(),
        source: Box::new(e),
    }
}

/// An error and its causes as one line (`a: b: c`).
fn chain_text(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        msg.push_str(": ");
        msg.push_str(&c.to_string());
        cause = c.source();
    }
    msg
}
use rcompose_compose::model::Service;
use rcompose_engine::image::platform::PlatformSpec;
use rcompose_engine::image::progress::Progress;
use rcompose_engine::image::reference::Reference;
use rcompose_engine::image::registry::Client;
use rcompose_engine::image::registry::pull::{PullOptions, pull};
use rcompose_engine::image::registry::push::push;
use rcompose_engine::store::{ImageRecord, Store, fsutil};
use rcompose_engine::units::time::parse_rfc3339;

/// A service's pull policy, as compose v2 resolves `pull_policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Always,
    /// `missing` / `if_not_present` (the default).
    Missing,
    Never,
    /// The image is built, never pulled.
    Build,
    /// `daily`, `weekly`, `every_<duration>`: pull when missing or last pulled longer ago.
    Refresh(Duration),
}

impl Policy {
    /// Parses a `pull_policy` value.
    pub fn parse(value: &str) -> Result<Policy, String> {
        Ok(match value {
            "always" => Policy::Always,
            "missing" | "if_not_present" => Policy::Missing,
            "never" => Policy::Never,
            "build" => Policy::Build,
            "daily" => Policy::Refresh(Duration::from_secs(24 * 3600)),
            "weekly" => Policy::Refresh(Duration::from_secs(7 * 24 * 3600)),
            other => match other.strip_prefix("every_") {
                Some(d) => Policy::Refresh(parse_interval(d).map_err(|e| {
                    format!(
                        "invalid pull_policy {other:?}: {e} (e.g. every_12h, every_2d, every_1w)"
                    )
                })?),
                None => {
                    return Err(format!(
                        "invalid pull_policy {other:?}: use always, missing, never, build, daily, weekly or every_<duration>"
                    ));
                }
            },
        })
    }

    /// Parses `up/create/run --pull` (compose accepts the fixed policies only).
    pub fn parse_flag(value: &str) -> Result<Policy, String> {
        match value {
            "always" | "missing" | "if_not_present" | "never" | "build" => Policy::parse(value),
            other => Err(format!(
                "invalid --pull option {other:?}: use always, missing, never or build"
            )),
        }
    }

    /// The policy of `svc`; `over` (from the command line) wins.
    pub fn of(svc: &Service, over: Option<Policy>) -> Result<Policy> {
        if let Some(p) = over {
            return Ok(p);
        }
        match svc.pull_policy.as_deref() {
            None | Some("") => Ok(Policy::Missing),
            Some(v) => Policy::parse(v)
                .map_err(|e| PullError::Invalid(format!("service \"{}\": {e}", svc.name))),
        }
    }
}

/// Interval of `every_<duration>`: number+unit groups with units `w`, `d`, `h`, `m`, `s`,
/// `ms`, `us`, `ns` (as compose's duration parser), e.g. `1w2d`, `12h`, `1.5h`.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    if text.is_empty() {
        return Err("empty duration".into());
    }
    let mut rest = text;
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..n]
            .parse()
            .map_err(|_| format!("invalid duration {text:?}"))?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let secs = match &rest[..u] {
            "w" => 7.0 * 86400.0,
            "d" => 86400.0,
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            "" => return Err(format!("missing unit in duration {text:?}")),
            other => return Err(format!("unknown unit {other:?} in duration {text:?}")),
        };
        rest = &rest[u..];
        total += number * secs;
    }
    if total <= 0.0 {
        return Err(format!("duration {text:?} must be positive"));
    }
    Duration::try_from_secs_f64(total).map_err(|_| format!("duration {text:?} is too large"))
}

/// Whether `up`/`create`/`run` must pull: compose v2's `mustPull`. `last_pulled` is seconds
/// since the epoch.
pub fn up_needs_pull(policy: Policy, present: bool, last_pulled: Option<i64>, now: i64) -> bool {
    match policy {
        Policy::Always => true,
        Policy::Never | Policy::Build => false,
        Policy::Missing => !present,
        Policy::Refresh(every) => {
            !present || last_pulled.is_none_or(|t| now >= t.saturating_add(every.as_secs() as i64))
        }
    }
}

/// Why `rcompose pull` leaves a service alone (compose v2's texts), or `None` to pull it.
/// `explicit` is the policy written in the file or given by `--policy` (`None`: unset, which
/// `pull` treats as "pull").
pub fn pull_cmd_skip(
    svc: &Service,
    explicit: Option<Policy>,
    present: bool,
    ignore_buildable: bool,
) -> Option<&'static str> {
    let image = svc.image.as_deref()?;
    match explicit {
        Some(Policy::Never | Policy::Build) => return Some(""),
        // A `latest` tag may have moved: compose pulls it even when present.
        Some(Policy::Missing) if present && !is_latest(image) => {
            return Some("Image is already present locally");
        }
        _ => {}
    }
    if svc.build.is_some() && ignore_buildable {
        return Some("Image can be built");
    }
    None
}

fn is_latest(image: &str) -> bool {
    match Reference::parse(image) {
        Ok(r) => r.digest.is_none() && r.tag.as_deref().is_none_or(|t| t == "latest"),
        Err(_) => false,
    }
}

/// The full reference (`docker.io/library/busybox:latest`) of a service's image.
pub fn full_reference(svc: &Service, image: &str) -> Result<String> {
    let r = Reference::parse(image).map_err(ctx(|| {
        format!("service \"{}\": invalid image {image:?}", svc.name)
    }))?;
    Ok(r.with_default_tag().to_string())
}

/// The platform a service asks for (`platform:`, else `DOCKER_DEFAULT_PLATFORM`).
pub fn platform_of(svc: &Service) -> Result<Option<PlatformSpec>> {
    let wanted = svc
        .platform
        .clone()
        .or_else(|| std::env::var("DOCKER_DEFAULT_PLATFORM").ok())
        .filter(|p| !p.is_empty());
    wanted
        .map(|p| {
            PlatformSpec::parse(&p).map_err(ctx(|| format!("service \"{}\": platform", svc.name)))
        })
        .transpose()
}

/// Whether a stored image is for `want` (an image without os/architecture matches anything).
pub fn matches_platform(img: &ImageRecord, want: &PlatformSpec) -> bool {
    let c = &img.config_json;
    let (os, arch) = (c["os"].as_str(), c["architecture"].as_str());
    let arch_ok = arch.is_none_or(|a| a == want.arch);
    let os_ok = os.is_none_or(|o| o == want.os);
    let variant_ok = match (&want.variant, c["variant"].as_str()) {
        (Some(w), Some(v)) => w == v,
        _ => true,
    };
    arch_ok && os_ok && variant_ok
}

/// One image to pull or push on behalf of a service.
#[derive(Debug, Clone)]
pub struct Job {
    pub service: String,
    /// The image as written in the compose file.
    pub image: String,
    /// Its full reference.
    pub reference: String,
    pub platform: Option<PlatformSpec>,
}

/// What happens to a job, for rendering.
#[derive(Debug, Clone)]
pub enum Event {
    Started,
    Progress(Progress),
    /// Pulled or pushed.
    Done,
    Failed(String),
}

/// How many pulls or pushes run at once: `COMPOSE_PARALLEL_LIMIT`, else 4.
pub fn parallel_limit() -> usize {
    std::env::var("COMPOSE_PARALLEL_LIMIT")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(4)
}

/// Runs `work` on each job, at most `limit` at once. With `fail_fast`, no new job starts
/// after a failure (running ones finish); jobs never started get `None`.
fn run_bounded<T: Send>(
    jobs: &[Job],
    limit: usize,
    fail_fast: bool,
    work: &(dyn Fn(&Job) -> Result<T> + Sync),
) -> Vec<Option<Result<T>>> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<T>>>> =
        Mutex::new((0..jobs.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..limit.clamp(1, jobs.len().max(1)) {
            s.spawn(|| {
                loop {
                    if fail_fast && failed.load(Ordering::SeqCst) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(job) = jobs.get(i) else { break };
                    let res = work(job);
                    if res.is_err() {
                        failed.store(true, Ordering::SeqCst);
                    }
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(res);
                }
            });
        }
    });
    results.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// Pulls every job into the store under `root` (bounded parallel, one registry client),
/// recording each successful pull's time. Returns the image id or the error (naming the
/// service and the image) per job, `None` for jobs skipped after a failure with `fail_fast`.
pub fn pull_jobs(
    root: &Path,
    jobs: &[Job],
    fail_fast: bool,
    on: &(dyn Fn(&Job, Event) + Sync),
) -> Result<Vec<Option<Result<String>>>> {
    let store = Store::open(root)?;
    let client = Client::new().map_err(ctx(|| "reading the registry configuration".into()))?;
    let times = PullTimes::new(root);
    Ok(run_bounded(jobs, parallel_limit(), fail_fast, &|job| {
        on(job, Event::Started);
        let opts = PullOptions {
            platform: job.platform.clone(),
            ..Default::default()
        };
        let res = pull(&store, &client, &job.reference, &opts, &|p| {
            on(job, Event::Progress(p))
        });
        match res {
            Ok(r) => {
                if let Err(e) = times.record(&job.reference, now()) {
                    tracing::warn!(
                        "recording the pull time of {}: {}",
                        job.reference,
                        chain_text(&e)
                    );
                }
                on(job, Event::Done);
                Ok(r.image_id)
            }
            Err(e) => {
                on(job, Event::Failed(e.to_string()));
                Err(PullError::Context {
                    what: format!("service \"{}\": pulling image {}", job.service, job.image),
                    source: Box::new(e),
                })
            }
        }
    }))
}

/// Pushes every job's image (bounded parallel). Same result shape as [`pull_jobs`].
pub fn push_jobs(
    root: &Path,
    jobs: &[Job],
    fail_fast: bool,
    on: &(dyn Fn(&Job, Event) + Sync),
) -> Result<Vec<Option<Result<String>>>> {
    let store = Store::open(root)?;
    let client = Client::new().map_err(ctx(|| "reading the registry configuration".into()))?;
    Ok(run_bounded(jobs, parallel_limit(), fail_fast, &|job| {
        on(job, Event::Started);
        let res: std::result::Result<_, Box<dyn std::error::Error + Send + Sync>> =
            if store.resolve(&job.reference).is_err() {
                Err(PullError::Invalid(format!(
                    "image {} does not exist locally: pull, load or tag it first",
                    job.image
                ))
                .into())
            } else {
                push(&store, &client, &job.reference, &|p| {
                    on(job, Event::Progress(p))
                })
                .map(|r| r.digest)
                .map_err(Into::into)
            };
        match res {
            Ok(digest) => {
                on(job, Event::Done);
                Ok(digest)
            }
            Err(e) => {
                on(job, Event::Failed(chain_text(&*e)));
                Err(PullError::Context {
                    what: format!("service \"{}\": pushing image {}", job.service, job.image),
                    source: e,
                })
            }
        }
    }))
}

/// Seconds since the epoch.
pub use rcompose_engine::units::time::now_secs as now;

/// When each full reference was last pulled by compose: `<root>/compose/pulls.json`
/// (`{"docker.io/library/busybox:latest": 1700000000}`), updated under a lock with an atomic
/// write. The image's own last-tag time (set by every pull, also `image pull`) counts too.
pub struct PullTimes {
    dir: PathBuf,
}

impl PullTimes {
    pub fn new(root: &Path) -> PullTimes {
        PullTimes {
            dir: root.join("compose"),
        }
    }

    fn file(&self) -> PathBuf {
        self.dir.join("pulls.json")
    }

    fn read(&self) -> BTreeMap<String, i64> {
        std::fs::read(self.file())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// The last pull of `reference`: the later of our record and the image's last-tag time.
    pub fn last_pulled(&self, reference: &str, img: Option<&ImageRecord>) -> Option<i64> {
        let ours = self.read().get(reference).copied();
        let tagged = img
            .and_then(|i| i.last_tag_time.as_deref())
            .and_then(parse_rfc3339);
        ours.max(tagged)
    }

    pub fn record(&self, reference: &str, at: i64) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .map_err(ctx(|| format!("creating {}", self.dir.display())))?;
        let lock_path = self.dir.join("pulls.lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(ctx(|| format!("opening {}", lock_path.display())))?;
        // SAFETY: flock on a descriptor we own; released when `lock` is dropped.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error())
                .map_err(ctx(|| format!("locking {}", lock_path.display())));
        }
        let mut map = self.read();
        map.insert(reference.to_string(), at);
        let json = serde_json::to_vec_pretty(&map)?;
        fsutil::atomic_write(&self.file(), &json)
            .map_err(ctx(|| format!("writing {}", self.file().display())))?;
        drop(lock);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_like_compose() {
        assert_eq!(Policy::parse("if_not_present"), Ok(Policy::Missing));
        assert_eq!(
            Policy::parse("daily"),
            Ok(Policy::Refresh(Duration::from_secs(86400)))
        );
        assert_eq!(
            Policy::parse("every_1w2d"),
            Ok(Policy::Refresh(Duration::from_secs(9 * 86400)))
        );
        assert_eq!(
            Policy::parse("every_1h30m"),
            Ok(Policy::Refresh(Duration::from_secs(5400)))
        );
        let e = Policy::parse("every_12").unwrap_err();
        assert!(e.contains("missing unit"), "{e}");
        let e = Policy::parse("sometimes").unwrap_err();
        assert!(e.contains("\"sometimes\""), "{e}");
        assert!(Policy::parse_flag("daily").is_err());
        assert_eq!(Policy::parse_flag("build"), Ok(Policy::Build));
        // Absurd intervals are an error, never a panic.
        let e = Policy::parse("every_99999999999999999999w").unwrap_err();
        assert!(e.contains("too large"), "{e}");
        let huge = format!("every_{}s", "9".repeat(400));
        assert!(Policy::parse(&huge).is_err());
    }

    #[test]
    fn up_pulls_by_policy_and_age() {
        let day = Policy::Refresh(Duration::from_secs(86400));
        assert!(up_needs_pull(Policy::Always, true, None, 0));
        assert!(!up_needs_pull(Policy::Never, false, None, 0));
        assert!(!up_needs_pull(Policy::Build, false, None, 0));
        assert!(up_needs_pull(Policy::Missing, false, None, 0));
        assert!(!up_needs_pull(Policy::Missing, true, None, 0));
        assert!(up_needs_pull(day, false, Some(100), 200));
        assert!(!up_needs_pull(day, true, Some(100), 100 + 86399));
        assert!(up_needs_pull(day, true, Some(100), 100 + 86400));
        assert!(up_needs_pull(day, true, None, 0));
    }

    #[test]
    fn pull_command_skips_like_compose() {
        let svc = |image: Option<&str>, build: bool| Service {
            name: "web".into(),
            image: image.map(String::from),
            build: build.then(Default::default),
            ..Default::default()
        };
        assert_eq!(pull_cmd_skip(&svc(None, true), None, false, false), None);
        assert_eq!(
            pull_cmd_skip(&svc(Some("x:1"), false), Some(Policy::Never), false, false),
            Some("")
        );
        assert_eq!(
            pull_cmd_skip(&svc(Some("x:1"), false), Some(Policy::Missing), true, false),
            Some("Image is already present locally")
        );
        // latest is pulled again even when present.
        assert_eq!(
            pull_cmd_skip(&svc(Some("x"), false), Some(Policy::Missing), true, false),
            None
        );
        assert_eq!(
            pull_cmd_skip(&svc(Some("x:1"), true), None, true, true),
            Some("Image can be built")
        );
        assert_eq!(
            pull_cmd_skip(&svc(Some("x:1"), false), None, true, false),
            None
        );
    }

    #[test]
    fn pull_times_round_trip_and_take_the_later_time() {
        let dir = tempfile::tempdir().unwrap();
        let t = PullTimes::new(dir.path());
        assert_eq!(t.last_pulled("docker.io/library/x:1", None), None);
        t.record("docker.io/library/x:1", 1000).unwrap();
        t.record("docker.io/library/y:1", 2000).unwrap();
        assert_eq!(t.last_pulled("docker.io/library/x:1", None), Some(1000));
        assert_eq!(t.last_pulled("docker.io/library/y:1", None), Some(2000));
    }

    #[test]
    fn bounded_runner_stops_after_a_failure_when_asked() {
        let jobs: Vec<Job> = (0..6)
            .map(|i| Job {
                service: format!("s{i}"),
                image: "x".into(),
                reference: "x".into(),
                platform: None,
            })
            .collect();
        let out = run_bounded(&jobs, 1, true, &|j| {
            if j.service == "s1" {
                Err(PullError::Invalid("boom".into()))
            } else {
                Ok(())
            }
        });
        assert!(out[0].as_ref().is_some_and(|r| r.is_ok()));
        assert!(out[1].as_ref().is_some_and(|r| r.is_err()));
        assert!(out[2..].iter().all(Option::is_none));
        let out = run_bounded(&jobs, 3, false, &|_| Ok(()));
        assert!(out.iter().all(|r| r.as_ref().is_some_and(|r| r.is_ok())));
    }
}

//! `GET /events`: docker's event stream, made by comparing snapshots of the state root
//! (containers and their status, networks, volumes, image tags) a few times a second. There
//! is no daemon to see every action, and the CLI, compose, the monitors (restarts, `--rm`)
//! and this server all change the same state: a diff of it sees what each of them did.
//!
//! What a diff cannot see (a container created, run and removed within one poll, as a quick
//! `docker run --rm`), the server records itself for what it does: a [`Journal`] of its own
//! container events, merged into the stream; an event seen both ways goes out once.
//! Not given: events older than the request (`since` in the past replays nothing), and
//! docker's events that change no state (`attach`, `exec_start`, `kill`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcompose_engine::container::model::Status;
use serde_json::{Value, json};

use crate::Context;
use crate::error::ApiError;
use crate::http::{Body, Request, Response};

const POLL: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerSnap {
    pub name: String,
    pub image: String,
    pub status: String,
    pub exit_code: i32,
    pub labels: BTreeMap<String, String>,
}

/// What the events are computed from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    pub containers: BTreeMap<String, ContainerSnap>,
    /// id → (name, driver)
    pub networks: BTreeMap<String, (String, String)>,
    pub volumes: BTreeSet<String>,
    /// image id → its tags
    pub images: BTreeMap<String, BTreeSet<String>>,
}

/// One docker event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: &'static str,
    pub action: String,
    pub id: String,
    pub attrs: BTreeMap<String, String>,
}

impl Event {
    fn new(kind: &'static str, action: &str, id: &str) -> Self {
        Self {
            kind,
            action: action.into(),
            id: id.into(),
            attrs: BTreeMap::new(),
        }
    }

    fn attr(mut self, k: &str, v: impl Into<String>) -> Self {
        self.attrs.insert(k.into(), v.into());
        self
    }

    /// docker's JSON for the event at `nanos` since the epoch.
    pub fn to_json(&self, nanos: u128) -> Value {
        let mut v = json!({
            "Type": self.kind,
            "Action": self.action,
            "Actor": {"ID": self.id, "Attributes": self.attrs},
            "scope": "local",
            "time": (nanos / 1_000_000_000) as u64,
            "timeNano": nanos as u64,
        });
        // The pre-1.22 fields docker still sends for containers (and images).
        if matches!(self.kind, "container" | "image") {
            v["status"] = json!(self.action);
            v["id"] = json!(self.id);
            if let Some(img) = self.attrs.get("image") {
                v["from"] = json!(img);
            }
        }
        v
    }
}

/// The container events this server caused, numbered, the last [`JOURNAL_LEN`] kept.
#[derive(Debug, Default)]
pub struct Journal(Mutex<(u64, VecDeque<(u64, Event)>)>);

const JOURNAL_LEN: usize = 1024;
/// How long an event from one source waits to be matched by the same from the other.
const MATCH_WINDOW: Duration = Duration::from_secs(5);

impl Journal {
    pub fn record(&self, e: Event) {
        if let Ok(mut j) = self.0.lock() {
            j.0 += 1;
            let n = j.0;
            j.1.push_back((n, e));
            while j.1.len() > JOURNAL_LEN {
                j.1.pop_front();
            }
        }
    }

    /// A container event of `cfg` (its name, image and labels as attributes).
    pub fn container(
        &self,
        action: &str,
        cfg: &rcompose_engine::container::ContainerConfig,
        extra: &[(&str, String)],
    ) {
        let snap = ContainerSnap {
            name: cfg.name.clone(),
            image: cfg.image.clone(),
            labels: cfg.labels.clone().into_iter().collect(),
            ..Default::default()
        };
        let mut e = container_event(action, &cfg.id, &snap);
        for (k, v) in extra {
            e.attrs.insert(k.to_string(), v.clone());
        }
        self.record(e);
    }

    /// The number of the last event recorded.
    fn last(&self) -> u64 {
        self.0.lock().map(|j| j.0).unwrap_or(0)
    }

    /// Events after number `after`.
    fn since(&self, after: u64) -> Vec<(u64, Event)> {
        self.0
            .lock()
            .map(|j| j.1.iter().filter(|(n, _)| *n > after).cloned().collect())
            .unwrap_or_default()
    }
}

/// Merges the journal's and the diff's events: each event is sent once, the copy from the
/// other source (within [`MATCH_WINDOW`]) is dropped. Counted, so a container that really
/// starts twice reports two starts.
#[derive(Default)]
pub struct Merge {
    from_journal: Vec<(String, std::time::Instant)>,
    from_diff: Vec<(String, std::time::Instant)>,
}

impl Merge {
    fn key(e: &Event) -> String {
        format!("{} {} {}", e.kind, e.action, e.id)
    }

    /// Whether to send `e`, which came from the journal (`journal`) or a diff.
    pub fn admit(&mut self, e: &Event, journal: bool) -> bool {
        let now = std::time::Instant::now();
        for l in [&mut self.from_journal, &mut self.from_diff] {
            l.retain(|(_, t)| now.duration_since(*t) < MATCH_WINDOW);
        }
        let key = Self::key(e);
        let (other, mine) = if journal {
            (&mut self.from_diff, &mut self.from_journal)
        } else {
            (&mut self.from_journal, &mut self.from_diff)
        };
        if let Some(i) = other.iter().position(|(k, _)| *k == key) {
            other.remove(i);
            return false;
        }
        mine.push((key, now));
        true
    }
}

fn container_event(action: &str, id: &str, c: &ContainerSnap) -> Event {
    let mut e = Event::new("container", action, id)
        .attr("image", &c.image)
        .attr("name", &c.name);
    for (k, v) in &c.labels {
        e.attrs.entry(k.clone()).or_insert_with(|| v.clone());
    }
    e
}

/// The events that lead from `before` to `after`, in docker's order (create before start,
/// die before destroy).
pub fn diff(before: &Snapshot, after: &Snapshot) -> Vec<Event> {
    let mut out = vec![];
    for (id, c) in &after.containers {
        let old = before.containers.get(id);
        let was = old.map(|o| o.status.as_str());
        if old.is_none() {
            out.push(container_event("create", id, c));
        }
        if let Some(o) = old
            && o.name != c.name
        {
            out.push(container_event("rename", id, c).attr("oldName", format!("/{}", o.name)));
        }
        match (was, c.status.as_str()) {
            (Some("running"), "paused") => out.push(container_event("pause", id, c)),
            (Some("paused"), "running") => out.push(container_event("unpause", id, c)),
            (Some("running" | "paused" | "restarting"), "exited" | "dead") => {
                out.push(container_event("die", id, c).attr("exitCode", c.exit_code.to_string()))
            }
            (None | Some("created" | "exited" | "dead"), "running") => {
                out.push(container_event("start", id, c))
            }
            _ => {}
        }
    }
    for (id, c) in &before.containers {
        if !after.containers.contains_key(id) {
            if matches!(c.status.as_str(), "running" | "paused") {
                out.push(container_event("die", id, c).attr("exitCode", c.exit_code.to_string()));
            }
            out.push(container_event("destroy", id, c));
        }
    }
    for (id, (name, driver)) in &after.networks {
        if !before.networks.contains_key(id) {
            out.push(
                Event::new("network", "create", id)
                    .attr("name", name)
                    .attr("type", driver),
            );
        }
    }
    for (id, (name, driver)) in &before.networks {
        if !after.networks.contains_key(id) {
            out.push(
                Event::new("network", "destroy", id)
                    .attr("name", name)
                    .attr("type", driver),
            );
        }
    }
    for v in after.volumes.difference(&before.volumes) {
        out.push(Event::new("volume", "create", v).attr("driver", "local"));
    }
    for v in before.volumes.difference(&after.volumes) {
        out.push(Event::new("volume", "destroy", v).attr("driver", "local"));
    }
    let none = BTreeSet::new();
    for (id, tags) in &after.images {
        let old = before.images.get(id).unwrap_or(&none);
        for t in tags.difference(old) {
            out.push(Event::new("image", "tag", id).attr("name", t));
        }
        for t in old.difference(tags) {
            out.push(Event::new("image", "untag", id).attr("name", t));
        }
    }
    for (id, tags) in &before.images {
        if !after.images.contains_key(id) {
            for t in tags {
                out.push(Event::new("image", "untag", id).attr("name", t));
            }
            out.push(Event::new("image", "delete", id));
        }
    }
    out
}

/// docker's event filters: `type`, `event`, `container`, `image`, `network`, `volume`,
/// `label`; one key's values are alternatives, keys all must hold.
pub fn matches(e: &Event, filters: &[String]) -> bool {
    let mut by_key: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for f in filters {
        let (k, v) = f.split_once('=').unwrap_or((f, ""));
        by_key.entry(k).or_default().push(v);
    }
    by_key.iter().all(|(k, vals)| {
        vals.iter().any(|v| match *k {
            "type" => e.kind == *v,
            "event" => e.action == *v,
            "container" | "network" | "volume" => {
                e.kind == *k && (e.id.starts_with(v) || e.attrs.get("name").is_some_and(|n| n == v))
            }
            "image" => {
                e.attrs.get("image").is_some_and(|i| i == v)
                    || (e.kind == "image"
                        && (e.id == *v || e.attrs.get("name").is_some_and(|n| n == v)))
            }
            "label" => match v.split_once('=') {
                Some((lk, lv)) => e.attrs.get(lk).is_some_and(|x| x == lv),
                None => e.attrs.contains_key(*v),
            },
            // Unknown keys are the client's mistake; docker refuses them before streaming.
            _ => false,
        })
    })
}

fn status_word(s: &Status) -> String {
    s.as_str().to_string()
}

/// The state now.
pub fn snapshot(ctx: &Context) -> Result<Snapshot, ApiError> {
    let mut snap = Snapshot::default();
    let eng = ctx.engine();
    for c in eng.store.list()? {
        // Removed while we looked: left out, as it will be in the next snapshot.
        let Ok(st) = eng.observe(&c.id) else { continue };
        snap.containers.insert(
            c.id.clone(),
            ContainerSnap {
                name: c.name.clone(),
                image: c.image.clone(),
                status: status_word(&st.status),
                exit_code: st.exit_code,
                labels: c.labels.clone().into_iter().collect(),
            },
        );
    }
    for n in ctx.nets()?.list()? {
        snap.networks
            .insert(n.id.clone(), (n.name.clone(), n.driver.clone()));
    }
    for v in ctx.volumes().list()? {
        snap.volumes.insert(v.name);
    }
    for i in ctx.images()?.list()? {
        snap.images
            .insert(i.id.clone(), i.familiar_tags().into_iter().collect());
    }
    Ok(snap)
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

/// docker's `until`/`since`: Unix seconds with an optional fraction → nanoseconds.
fn unix_nanos(v: &str) -> Option<u128> {
    let (s, f) = v.split_once('.').unwrap_or((v, "0"));
    let secs: u128 = s.parse().ok()?;
    let frac: u128 = format!("{f:0<9}")[..9].parse().ok()?;
    Some(secs * 1_000_000_000 + frac)
}

/// `GET /events?filters=&since=&until=`.
pub fn events(ctx: &Context, req: &Request) -> Result<Response, ApiError> {
    let filters = crate::filters(req)?;
    const KNOWN: [&str; 7] = [
        "type",
        "event",
        "container",
        "image",
        "network",
        "volume",
        "label",
    ];
    if let Some(f) = filters
        .iter()
        .find(|f| !KNOWN.contains(&f.split_once('=').map_or(f.as_str(), |(k, _)| k)))
    {
        return Err(ApiError::bad_request(format!("invalid filter '{f}'")));
    }
    let until = match req.param("until").filter(|u| !u.is_empty()) {
        Some(u) => Some(
            unix_nanos(u).ok_or_else(|| ApiError::bad_request(format!("invalid until {u:?}")))?,
        ),
        None => None,
    };
    let mut last = snapshot(ctx)?;
    let mut seen = ctx.journal.last();
    let ctx = ctx.clone();
    let stream = move |w: &mut dyn Write| -> std::io::Result<()> {
        let mut merge = Merge::default();
        loop {
            if until.is_some_and(|u| now_nanos() >= u) {
                return Ok(());
            }
            std::thread::sleep(POLL);
            let Ok(now) = snapshot(&ctx) else { continue };
            let t = now_nanos();
            let recorded = ctx.journal.since(seen);
            if let Some((n, _)) = recorded.last() {
                seen = *n;
            }
            let events = recorded
                .into_iter()
                .map(|(_, e)| (e, true))
                .chain(diff(&last, &now).into_iter().map(|e| (e, false)));
            for (e, journal) in events {
                if merge.admit(&e, journal) && matches(&e, &filters) {
                    writeln!(w, "{}", e.to_json(t))?;
                }
            }
            // Nothing changed: a write of nothing would not notice a client that left.
            w.flush()?;
            last = now;
        }
    };
    Ok(Response::new(
        200,
        Body::Stream("application/json", Box::new(stream)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(status: &str) -> ContainerSnap {
        ContainerSnap {
            name: "web".into(),
            image: "busybox".into(),
            status: status.into(),
            exit_code: 3,
            labels: [("com.docker.compose.service".to_string(), "web".to_string())].into(),
        }
    }

    fn actions(before: &Snapshot, after: &Snapshot) -> Vec<String> {
        diff(before, after)
            .iter()
            .map(|e| format!("{} {}", e.kind, e.action))
            .collect()
    }

    #[test]
    fn container_lifecycle_from_snapshots() {
        let empty = Snapshot::default();
        let mut running = Snapshot::default();
        running.containers.insert("abc".into(), c("running"));
        assert_eq!(
            actions(&empty, &running),
            ["container create", "container start"]
        );
        let mut exited = Snapshot::default();
        exited.containers.insert("abc".into(), c("exited"));
        let die = diff(&running, &exited);
        assert_eq!(die[0].action, "die");
        assert_eq!(die[0].attrs["exitCode"], "3");
        assert_eq!(die[0].attrs["com.docker.compose.service"], "web");
        assert_eq!(
            actions(&running, &empty),
            ["container die", "container destroy"]
        );
        assert_eq!(actions(&exited, &empty), ["container destroy"]);
        let mut paused = Snapshot::default();
        paused.containers.insert("abc".into(), c("paused"));
        assert_eq!(actions(&running, &paused), ["container pause"]);
        assert_eq!(actions(&paused, &running), ["container unpause"]);
    }

    #[test]
    fn networks_volumes_and_image_tags() {
        let empty = Snapshot::default();
        let mut s = Snapshot::default();
        s.networks
            .insert("n1".into(), ("p_default".into(), "bridge".into()));
        s.volumes.insert("p_data".into());
        s.images
            .insert("sha256:1".into(), ["app:1".to_string()].into());
        assert_eq!(
            actions(&empty, &s),
            ["network create", "volume create", "image tag"]
        );
        assert_eq!(
            actions(&s, &empty),
            [
                "network destroy",
                "volume destroy",
                "image untag",
                "image delete"
            ]
        );
    }

    #[test]
    fn an_event_from_both_sources_goes_out_once_and_repeats_count() {
        let e = Event::new("container", "start", "abc");
        let mut m = Merge::default();
        assert!(m.admit(&e, true));
        assert!(!m.admit(&e, false), "the diff's copy of a journal event");
        assert!(m.admit(&e, false), "a second real start");
        assert!(!m.admit(&e, true));
        let j = Journal::default();
        j.record(e.clone());
        j.record(Event::new("container", "die", "abc"));
        assert_eq!(j.since(0).len(), 2);
        assert_eq!(j.since(1)[0].1.action, "die");
        assert_eq!(j.last(), 2);
    }

    #[test]
    fn filters_as_docker_reads_them() {
        let mut running = Snapshot::default();
        running.containers.insert("abc".into(), c("running"));
        let evs = diff(&Snapshot::default(), &running);
        let keep = |f: &[&str]| {
            let f: Vec<String> = f.iter().map(|s| s.to_string()).collect();
            evs.iter()
                .filter(|e| matches(e, &f))
                .map(|e| e.action.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(keep(&["event=start"]), ["start"]);
        assert_eq!(keep(&["event=start", "event=create"]), ["create", "start"]);
        assert_eq!(keep(&["container=web", "type=container"]).len(), 2);
        assert_eq!(keep(&["label=com.docker.compose.service=web"]).len(), 2);
        assert!(keep(&["type=network"]).is_empty());
        assert!(keep(&["container=other"]).is_empty());
        let j = evs[1].to_json(1_700_000_000_123_456_789);
        assert_eq!(j["Action"], "start");
        assert_eq!(j["time"], 1_700_000_000u64);
        assert_eq!(j["from"], "busybox");
        assert_eq!(j["Actor"]["Attributes"]["name"], "web");
    }
}

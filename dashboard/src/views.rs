//! What the page shows, as JSON: containers (with CPU and memory from their cgroup),
//! compose projects grouped from the containers' `com.docker.compose.*` labels, images,
//! networks and volumes. Read-only: the same engine and network calls as `ps`, `image ls`,
//! `network ls`, `volume ls` and `system df`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use rcompose_api::{ApiError, Context};
use rcompose_engine::container::ContainerError;
use rcompose_engine::container::inspect::{effective_health, status_text};
use rcompose_engine::container::model::Status;
use rcompose_engine::container::stats;
use rcompose_engine::units::time::{now_secs, parse_rfc3339};
use rcompose_wire::netwire::live;
use serde::Serialize;

/// The compose labels the project view reads (as `compose::labels`; the dashboard reads
/// containers of any project, so it only needs their names).
const PROJECT: &str = "com.docker.compose.project";
const SERVICE: &str = "com.docker.compose.service";
const DEPENDS_ON: &str = "com.docker.compose.depends_on";
const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
const ONEOFF: &str = "com.docker.compose.oneoff";

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Port {
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ContainerView {
    pub id: String,
    pub name: String,
    pub image: String,
    /// `running`, `exited`, … (docker's `State`).
    pub state: String,
    /// docker's STATUS column: `Up 5 minutes (healthy)`.
    pub status: String,
    pub health: Option<String>,
    /// Seconds since the start, while it runs.
    pub uptime: Option<i64>,
    pub ports: Vec<Port>,
    pub project: Option<String>,
    pub service: Option<String>,
    /// `service:condition` pairs from the `depends_on` label.
    pub depends_on: Vec<(String, String)>,
    pub working_dir: Option<String>,
    /// A one-off `rcompose run` container (kept out of the project view, as `ps` does).
    pub oneoff: bool,
    /// Percent of one CPU since the previous look (none at the first look).
    pub cpu_percent: Option<f64>,
    pub mem_usage: Option<u64>,
    pub mem_limit: Option<u64>,
}

/// CPU time seen at the previous look, per container, to turn totals into a rate.
#[derive(Default)]
pub struct CpuSamples(Mutex<HashMap<String, (u64, u64)>>);

impl CpuSamples {
    /// Percent of one CPU used between the previous call and this one.
    fn rate(&self, id: &str, cpu_ns: u64, host_ns: u64) -> Option<f64> {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let prev = m.insert(id.to_string(), (cpu_ns, host_ns));
        let (pc, ph) = prev?;
        let host_delta = host_ns.checked_sub(ph).filter(|d| *d > 0)?;
        let cpu_delta = cpu_ns.saturating_sub(pc);
        Some(cpu_delta as f64 / host_delta as f64 * stats::online_cpus() as f64 * 100.0)
    }

    /// Forgets the containers that are gone.
    fn keep_only(&self, ids: &[&str]) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|id, _| ids.contains(&id.as_str()));
    }
}

/// `db:service_healthy:false,cache:service_started:true` → `[(db, service_healthy), …]`.
pub fn parse_depends_on(label: &str) -> Vec<(String, String)> {
    label
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|d| {
            let mut parts = d.split(':');
            let svc = parts.next().unwrap_or_default().to_string();
            let cond = parts.next().unwrap_or("service_started").to_string();
            (svc, cond)
        })
        .collect()
}

/// Every container of the root, newest first.
pub fn containers(ctx: &Context, cpu: &CpuSamples) -> Result<Vec<ContainerView>, ApiError> {
    let eng = ctx.engine();
    let nets = ctx.nets()?;
    let mut list = eng.store.list()?;
    list.reverse();
    let host_ns = stats::host_cpu_ns();
    let now = now_secs();
    let mut out = vec![];
    for c in list {
        let st = match eng.observe(&c.id) {
            Ok(st) => st,
            // Removed while we listed.
            Err(ContainerError::Io { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let health = effective_health(&c, &st).map(|h| h.status);
        let up = matches!(st.status, Status::Running | Status::Paused);
        let sample = up.then(|| stats::sample(&c.id)).flatten();
        let ports = live::ports(&nets, &c.id)
            .iter()
            .map(|p| Port {
                host_ip: p.host_ip.to_string(),
                host_port: p.host_port,
                container_port: p.container_port,
                proto: p.proto.to_string(),
            })
            .collect();
        let label = |k: &str| c.labels.get(k).cloned();
        out.push(ContainerView {
            status: status_text(&st, health.as_deref()),
            state: st.status.as_str().to_string(),
            uptime: up
                .then(|| parse_rfc3339(&st.started_at))
                .flatten()
                .map(|t| (now - t).max(0)),
            cpu_percent: sample
                .as_ref()
                .and_then(|s| cpu.rate(&c.id, s.cpu_ns, host_ns)),
            mem_usage: sample.as_ref().map(|s| s.mem_usage),
            mem_limit: sample.as_ref().map(|s| s.mem_limit),
            health,
            ports,
            project: label(PROJECT),
            service: label(SERVICE),
            depends_on: label(DEPENDS_ON)
                .map(|d| parse_depends_on(&d))
                .unwrap_or_default(),
            working_dir: label(WORKING_DIR),
            oneoff: label(ONEOFF).is_some_and(|v| v == "True"),
            id: c.id,
            name: c.name,
            image: c.image,
        });
    }
    cpu.keep_only(&out.iter().map(|c| c.id.as_str()).collect::<Vec<_>>());
    Ok(out)
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServiceView {
    pub name: String,
    pub depends_on: Vec<(String, String)>,
    /// The service's containers (replicas), by name.
    pub containers: Vec<String>,
    /// `running` when all run, `exited` when none does, else `partial`.
    pub state: String,
    pub health: Option<String>,
    pub ports: Vec<Port>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProjectView {
    pub name: String,
    pub working_dir: Option<String>,
    pub services: Vec<ServiceView>,
}

/// Groups the containers that carry a project label into projects and services (one-off
/// `run` containers left out, as compose's `ps` does).
pub fn projects(list: &[ContainerView]) -> Vec<ProjectView> {
    let mut by: BTreeMap<&str, BTreeMap<&str, Vec<&ContainerView>>> = BTreeMap::new();
    for c in list.iter().filter(|c| !c.oneoff) {
        if let (Some(p), Some(s)) = (&c.project, &c.service) {
            by.entry(p).or_default().entry(s).or_default().push(c);
        }
    }
    by.into_iter()
        .map(|(name, services)| ProjectView {
            name: name.to_string(),
            working_dir: services
                .values()
                .flatten()
                .find_map(|c| c.working_dir.clone()),
            services: services
                .into_iter()
                .map(|(svc, cs)| service_view(svc, &cs))
                .collect(),
        })
        .collect()
}

fn service_view(name: &str, cs: &[&ContainerView]) -> ServiceView {
    let running = cs.iter().filter(|c| c.state == "running").count();
    let state = match running {
        0 if cs.len() == 1 => cs[0].state.clone(),
        0 => "exited".to_string(),
        n if n == cs.len() => "running".to_string(),
        _ => "partial".to_string(),
    };
    // The worst health of the replicas.
    let health = ["unhealthy", "starting", "healthy"]
        .into_iter()
        .find(|h| cs.iter().any(|c| c.health.as_deref() == Some(*h)))
        .map(String::from);
    ServiceView {
        name: name.to_string(),
        depends_on: cs
            .iter()
            .map(|c| c.depends_on.clone())
            .max_by_key(|d| d.len())
            .unwrap_or_default(),
        containers: cs.iter().map(|c| c.name.clone()).collect(),
        state,
        health,
        ports: cs.iter().flat_map(|c| c.ports.clone()).collect(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageView {
    pub id: String,
    pub short_id: String,
    pub tags: Vec<String>,
    pub size: u64,
    pub created: Option<String>,
    pub used_by: Vec<String>,
}

pub fn images(ctx: &Context) -> Result<Vec<ImageView>, ApiError> {
    let store = ctx.images()?;
    let users = store.image_users()?;
    let names = container_names(ctx)?;
    Ok(store
        .list()?
        .into_iter()
        .map(|img| ImageView {
            used_by: users
                .get(&img.id)
                .into_iter()
                .flatten()
                .map(|id| names.get(id).cloned().unwrap_or_else(|| id.clone()))
                .collect(),
            short_id: img.short_id().to_string(),
            tags: img.familiar_tags(),
            size: img.size,
            created: img.created().map(String::from),
            id: img.id,
        })
        .collect())
}

fn container_names(ctx: &Context) -> Result<HashMap<String, String>, ApiError> {
    Ok(ctx
        .engine()
        .store
        .list()?
        .into_iter()
        .map(|c| (c.id, c.name))
        .collect())
}

#[derive(Debug, Clone, Serialize)]
pub struct Member {
    pub name: String,
    pub ipv4: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct NetworkView {
    pub name: String,
    pub id: String,
    pub driver: String,
    pub subnet: String,
    pub gateway: String,
    pub subnet6: Option<String>,
    pub internal: bool,
    pub project: Option<String>,
    pub members: Vec<Member>,
}

pub fn networks(ctx: &Context) -> Result<Vec<NetworkView>, ApiError> {
    Ok(ctx
        .nets()?
        .list()?
        .into_iter()
        .map(|n| NetworkView {
            members: n
                .endpoints
                .values()
                .map(|e| Member {
                    name: e.container_name.clone(),
                    ipv4: e.ip.to_string(),
                })
                .collect(),
            subnet: n.subnet.to_string(),
            gateway: n.gateway.to_string(),
            subnet6: n.ipv6.map(|p| p.subnet.to_string()),
            internal: n.internal,
            project: n.labels.get(PROJECT).cloned(),
            name: n.name,
            id: n.id,
            driver: n.driver,
        })
        .collect())
}

#[derive(Debug, Clone, Serialize)]
pub struct VolumeView {
    pub name: String,
    pub driver: String,
    pub mountpoint: String,
    pub created: String,
    pub project: Option<String>,
    /// Bytes under the volume, as `system df -v` counts them.
    pub size: u64,
    pub used_by: Vec<String>,
}

pub fn volumes(ctx: &Context) -> Result<Vec<VolumeView>, ApiError> {
    let eng = ctx.engine();
    let usage = rcompose_engine::usage::disk_usage(&eng, &ctx.root)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let sizes: HashMap<&str, u64> = usage
        .volume_rows
        .iter()
        .map(|r| (r.name.as_str(), r.size))
        .collect();
    let mut out = vec![];
    for v in ctx.volumes().list()? {
        out.push(VolumeView {
            size: sizes.get(v.name.as_str()).copied().unwrap_or(0),
            used_by: eng.volume_users(&v.name)?,
            mountpoint: v.mountpoint.display().to_string(),
            project: v.labels.get(PROJECT).cloned(),
            created: v.created_at,
            driver: v.driver,
            name: v.name,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, project: &str, svc: &str, state: &str, deps: &str) -> ContainerView {
        ContainerView {
            id: format!("id-{name}"),
            name: name.into(),
            image: "busybox".into(),
            state: state.into(),
            status: String::new(),
            health: None,
            uptime: None,
            ports: vec![],
            project: Some(project.into()),
            service: Some(svc.into()),
            depends_on: parse_depends_on(deps),
            working_dir: Some("/srv/p".into()),
            oneoff: false,
            cpu_percent: None,
            mem_usage: None,
            mem_limit: None,
        }
    }

    #[test]
    fn depends_on_label_is_read_as_compose_writes_it() {
        assert_eq!(
            parse_depends_on("db:service_healthy:false,cache:service_started:true"),
            [
                ("db".to_string(), "service_healthy".to_string()),
                ("cache".to_string(), "service_started".to_string())
            ]
        );
        assert!(parse_depends_on("").is_empty());
    }

    #[test]
    fn containers_group_into_projects_and_services() {
        let mut plain = c("lone", "x", "y", "running", "");
        plain.project = None;
        let mut oneoff = c("q-a-run-1", "q", "a", "running", "");
        oneoff.oneoff = true;
        let list = vec![
            c("p-web-1", "p", "web", "running", "db:service_healthy:false"),
            c("p-web-2", "p", "web", "exited", "db:service_healthy:false"),
            c("p-db-1", "p", "db", "exited", ""),
            c("q-a-1", "q", "a", "running", ""),
            plain,
            oneoff,
        ];
        let ps = projects(&list);
        assert_eq!(
            ps.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["p", "q"]
        );
        let p = &ps[0];
        assert_eq!(p.working_dir.as_deref(), Some("/srv/p"));
        let web = p.services.iter().find(|s| s.name == "web").unwrap();
        assert_eq!(web.state, "partial");
        assert_eq!(web.containers, ["p-web-1", "p-web-2"]);
        assert_eq!(web.depends_on[0].0, "db");
        let db = p.services.iter().find(|s| s.name == "db").unwrap();
        assert_eq!(db.state, "exited");
        assert_eq!(ps[1].services[0].containers, ["q-a-1"]);
    }

    #[test]
    fn the_worst_health_of_the_replicas_is_the_services() {
        let mut a = c("a", "p", "s", "running", "");
        let mut b = c("b", "p", "s", "running", "");
        a.health = Some("healthy".into());
        b.health = Some("unhealthy".into());
        let s = &projects(&[a, b])[0].services[0];
        assert_eq!(
            (s.state.as_str(), s.health.as_deref()),
            ("running", Some("unhealthy"))
        );
    }

    #[test]
    fn cpu_rate_needs_two_looks() {
        let s = CpuSamples::default();
        assert_eq!(s.rate("x", 100, 1000), None);
        let r = s.rate("x", 600, 2000).unwrap();
        assert!((r - 50.0 * stats::online_cpus() as f64).abs() < 1e-9);
        // The host clock did not move: no rate rather than a division by zero.
        assert_eq!(s.rate("x", 700, 2000), None);
        s.keep_only(&["y"]);
        assert_eq!(
            s.rate("x", 800, 3000),
            None,
            "a forgotten container starts over"
        );
    }
}

//! Observed state: what exists for a project, read only from the `com.docker.compose.*` labels
//! on containers, networks and volumes (like compose's `observed_state.go`). The backend lists
//! raw objects; this module turns them into a per-service view. Pure: no I/O.

use std::collections::BTreeMap;

use crate::labels;

/// A container as the backend lists it (engine-agnostic).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerSummary {
    pub id: String,
    pub name: String,
    pub image: String,
    pub image_id: String,
    pub command: String,
    /// RFC 3339.
    pub created: String,
    pub status: RunState,
    pub exit_code: i32,
    /// `starting`, `healthy`, `unhealthy`; `None` without a healthcheck.
    pub health: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// docker's `1.2.3.4:8080->80/tcp` forms.
    pub ports: Vec<String>,
    pub started_at: String,
    pub finished_at: String,
    pub restart_count: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum RunState {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Exited,
    Dead,
}

impl RunState {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Restarting => "restarting",
            Self::Exited => "exited",
            Self::Dead => "dead",
        }
    }

    /// Running, paused or restarting: the process exists (or will again).
    pub fn is_up(&self) -> bool {
        matches!(self, Self::Running | Self::Paused | Self::Restarting)
    }
}

/// A network or volume as listed by the backend.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectSummary {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// One service container of the project.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedContainer {
    pub summary: ContainerSummary,
    pub service: String,
    pub number: u32,
    pub oneoff: bool,
    pub config_hash: String,
    pub config_keys: BTreeMap<String, String>,
}

/// Everything that exists for one project.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObservedState {
    pub project: String,
    /// Service containers (not one-off), by service, sorted by container number.
    pub services: BTreeMap<String, Vec<ObservedContainer>>,
    /// One-off (`run`) containers.
    pub oneoff: Vec<ObservedContainer>,
    /// Network key (`default`, `back`) → engine name.
    pub networks: BTreeMap<String, String>,
    /// Volume key → engine name.
    pub volumes: BTreeMap<String, String>,
}

impl ObservedState {
    /// Builds the project's view from everything the backend listed; objects of other projects
    /// and unlabelled objects are ignored.
    pub fn from_objects(
        project: &str,
        containers: &[ContainerSummary],
        networks: &[ObjectSummary],
        volumes: &[ObjectSummary],
    ) -> Self {
        let mut out = ObservedState {
            project: project.to_string(),
            ..Default::default()
        };
        for c in containers {
            if c.labels.get(labels::PROJECT).map(String::as_str) != Some(project) {
                continue;
            }
            let Some(service) = c.labels.get(labels::SERVICE) else {
                continue;
            };
            let oc = ObservedContainer {
                summary: c.clone(),
                service: service.clone(),
                number: c
                    .labels
                    .get(labels::CONTAINER_NUMBER)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
                oneoff: c.labels.get(labels::ONEOFF).map(String::as_str) == Some("True"),
                config_hash: c
                    .labels
                    .get(labels::CONFIG_HASH)
                    .cloned()
                    .unwrap_or_default(),
                config_keys: c
                    .labels
                    .get(labels::CONFIG_KEYS)
                    .map(|s| labels::parse_config_keys(s))
                    .unwrap_or_default(),
            };
            if oc.oneoff {
                out.oneoff.push(oc);
            } else {
                out.services.entry(service.clone()).or_default().push(oc);
            }
        }
        for list in out.services.values_mut() {
            list.sort_by(|a, b| {
                a.number
                    .cmp(&b.number)
                    .then(a.summary.name.cmp(&b.summary.name))
            });
        }
        for (objs, label, dest) in [
            (networks, labels::NETWORK, &mut out.networks),
            (volumes, labels::VOLUME, &mut out.volumes),
        ] {
            for o in objs {
                if o.labels.get(labels::PROJECT).map(String::as_str) != Some(project) {
                    continue;
                }
                if let Some(key) = o.labels.get(label) {
                    dest.insert(key.clone(), o.name.clone());
                }
            }
        }
        out
    }

    /// All service containers, in service then number order.
    pub fn containers(&self) -> impl Iterator<Item = &ObservedContainer> {
        self.services.values().flatten()
    }

    /// The next free container number for `service`.
    pub fn next_number(&self, service: &str) -> u32 {
        self.services
            .get(service)
            .and_then(|l| l.iter().map(|c| c.number).max())
            .unwrap_or(0)
            + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, project: &str, service: &str, n: &str, oneoff: bool) -> ContainerSummary {
        let mut labels = BTreeMap::new();
        labels.insert(labels::PROJECT.to_string(), project.to_string());
        labels.insert(labels::SERVICE.to_string(), service.to_string());
        labels.insert(labels::CONTAINER_NUMBER.to_string(), n.to_string());
        labels.insert(
            labels::ONEOFF.to_string(),
            if oneoff { "True" } else { "False" }.to_string(),
        );
        ContainerSummary {
            id: format!("id-{name}"),
            name: name.into(),
            labels,
            ..Default::default()
        }
    }

    #[test]
    fn groups_by_service_and_ignores_other_projects() {
        let list = vec![
            c("p-web-2", "p", "web", "2", false),
            c("p-web-1", "p", "web", "1", false),
            c("q-web-1", "q", "web", "1", false),
            c("p-web-run-ab12", "p", "web", "1", true),
            ContainerSummary {
                name: "plain".into(),
                ..Default::default()
            },
        ];
        let mut net = ObjectSummary {
            name: "p_default".into(),
            ..Default::default()
        };
        net.labels.insert(labels::PROJECT.into(), "p".into());
        net.labels.insert(labels::NETWORK.into(), "default".into());
        let o = ObservedState::from_objects("p", &list, &[net], &[]);
        let names: Vec<_> = o.containers().map(|c| c.summary.name.as_str()).collect();
        assert_eq!(names, ["p-web-1", "p-web-2"]);
        assert_eq!(o.oneoff.len(), 1);
        assert_eq!(o.next_number("web"), 3);
        assert_eq!(o.next_number("db"), 1);
        assert_eq!(o.networks["default"], "p_default");
    }

    #[test]
    fn config_keys_round_trip() {
        let m = labels::parse_config_keys("environment.A=1234,image=abcd,junk");
        assert_eq!(m.len(), 2);
        assert_eq!(
            labels::format_config_keys(&m),
            "environment.A=1234,image=abcd"
        );
    }
}

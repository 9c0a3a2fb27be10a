//! The plan `reconcile` returns and `execute` runs: networks and volumes to create, then the
//! services level by level (a level depends only on earlier ones), then orphans to remove.
//! `down` plans with the same type (`ops::down::plan`): containers to remove, then networks
//! and volumes to remove. Every operation carries its cause, and the plan prints as stable
//! text (`up --dry-run`, `down --dry-run`; plan tests compare this text, like compose's
//! `plan_test.go`).

use std::fmt;

use crate::model::Dependency;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectAction {
    Create,
    /// `external: true`: must already exist; checked before anything is created.
    External,
    /// `down`: removed after the containers.
    Remove,
}

/// A network or volume operation.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectOp {
    /// The key in the compose file (`default`, `db-data`).
    pub key: String,
    /// The engine name (`demo_default`).
    pub name: String,
    pub action: ObjectAction,
    pub cause: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerAction {
    /// Create a new container (and start it unless `start` is false).
    Create { start: bool },
    /// Stop and remove the old container, create the new one with the same name and number.
    Recreate { start: bool },
    /// Start an existing stopped container.
    Start,
    /// Nothing to do.
    Keep,
    /// Stop and remove.
    Remove,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContainerOp {
    pub action: ContainerAction,
    pub service: String,
    pub name: String,
    pub number: u32,
    /// The existing container for recreate/start/keep/remove.
    pub id: Option<String>,
    pub cause: String,
}

/// What happens to one service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServicePlan {
    pub service: String,
    /// Dependencies this run waits for before starting the service (only those in the plan).
    pub wait_for: Vec<(String, Dependency)>,
    pub ops: Vec<ContainerOp>,
}

impl ServicePlan {
    /// Whether any container of the service is created, recreated or started by this plan.
    pub fn starts_something(&self) -> bool {
        self.ops.iter().any(|o| {
            matches!(
                o.action,
                ContainerAction::Create { start: true }
                    | ContainerAction::Recreate { start: true }
                    | ContainerAction::Start
            )
        })
    }

    pub fn changes_something(&self) -> bool {
        self.ops.iter().any(|o| o.action != ContainerAction::Keep)
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub project: String,
    pub networks: Vec<ObjectOp>,
    pub volumes: Vec<ObjectOp>,
    pub levels: Vec<Vec<ServicePlan>>,
    pub orphans: Vec<ContainerOp>,
    /// Things the user should know (orphans left in place, …); the CLI prints them.
    pub warnings: Vec<String>,
}

impl Plan {
    pub fn services(&self) -> impl Iterator<Item = &ServicePlan> {
        self.levels.iter().flatten()
    }

    pub fn service(&self, name: &str) -> Option<&ServicePlan> {
        self.services().find(|s| s.service == name)
    }

    /// True when running the plan would change nothing.
    pub fn is_noop(&self) -> bool {
        self.networks
            .iter()
            .all(|n| n.action != ObjectAction::Create)
            && self
                .volumes
                .iter()
                .all(|v| v.action != ObjectAction::Create)
            && self.services().all(|s| !s.changes_something())
            && self.orphans.is_empty()
    }
}

impl fmt::Display for ObjectOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.action {
            ObjectAction::Create => "create",
            ObjectAction::External => "external, must exist",
            ObjectAction::Remove => "remove",
        };
        write!(f, "{}: {what}", self.name)?;
        if !self.cause.is_empty() {
            write!(f, " ({})", self.cause)?;
        }
        Ok(())
    }
}

impl fmt::Display for ContainerOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.action {
            ContainerAction::Create { start: true } => "create, start",
            ContainerAction::Create { start: false } => "create",
            ContainerAction::Recreate { start: true } => "recreate, start",
            ContainerAction::Recreate { start: false } => "recreate",
            ContainerAction::Start => "start",
            ContainerAction::Keep => "keep",
            ContainerAction::Remove => "remove",
        };
        write!(f, "container {}: {what}", self.name)?;
        if !self.cause.is_empty() {
            write!(f, " ({})", self.cause)?;
        }
        Ok(())
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "project {}", self.project)?;
        let removed = |o: &&ObjectOp| o.action == ObjectAction::Remove;
        for n in self.networks.iter().filter(|o| !removed(o)) {
            writeln!(f, "network {n}")?;
        }
        for v in self.volumes.iter().filter(|o| !removed(o)) {
            writeln!(f, "volume {v}")?;
        }
        for (i, level) in self.levels.iter().enumerate() {
            writeln!(f, "level {i}:")?;
            for s in level {
                write!(f, "  service {}", s.service)?;
                if !s.wait_for.is_empty() {
                    let waits: Vec<String> = s
                        .wait_for
                        .iter()
                        .map(|(d, dep)| {
                            let mut w = format!("{d} {}", dep.condition);
                            if !dep.required {
                                w.push_str(" (optional)");
                            }
                            w
                        })
                        .collect();
                    write!(f, " after {}", waits.join(", "))?;
                }
                writeln!(f, ":")?;
                for op in &s.ops {
                    writeln!(f, "    {op}")?;
                }
            }
        }
        if !self.orphans.is_empty() {
            writeln!(f, "orphans:")?;
            for op in &self.orphans {
                writeln!(f, "  {op}")?;
            }
        }
        // Removals come last: what uses a network or volume goes first.
        for n in self.networks.iter().filter(removed) {
            writeln!(f, "network {n}")?;
        }
        for v in self.volumes.iter().filter(removed) {
            writeln!(f, "volume {v}")?;
        }
        Ok(())
    }
}

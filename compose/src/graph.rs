//! The `depends_on` graph: cycle detection that names the cycle, and start levels (services in
//! one level depend only on earlier levels, so each level can start in parallel).

use std::collections::{BTreeMap, BTreeSet};

use petgraph::graph::{DiGraph, NodeIndex};

use crate::model::Project;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GraphError {
    #[error("dependency cycle detected: {}", cycle.join(" -> "))]
    Cycle { cycle: Vec<String> },
    #[error("service {service:?} depends on unknown service {dependency:?}")]
    Unknown { service: String, dependency: String },
}

/// Edges point from a service to what it depends on.
#[derive(Debug, Clone)]
pub struct DependencyGraph {
    names: Vec<String>,
    deps: BTreeMap<String, BTreeSet<String>>,
}

impl DependencyGraph {
    /// Builds the graph of the enabled services and rejects cycles.
    pub fn new(project: &Project) -> Result<Self, GraphError> {
        let mut deps = BTreeMap::new();
        for (name, svc) in &project.services {
            let mut set = BTreeSet::new();
            for dep in svc.depends_on.keys() {
                if !project.services.contains_key(dep) {
                    return Err(GraphError::Unknown {
                        service: name.clone(),
                        dependency: dep.clone(),
                    });
                }
                set.insert(dep.clone());
            }
            deps.insert(name.clone(), set);
        }
        let graph = DependencyGraph {
            names: project.services.keys().cloned().collect(),
            deps,
        };
        graph.check_cycles()?;
        Ok(graph)
    }

    fn check_cycles(&self) -> Result<(), GraphError> {
        let index: BTreeMap<&str, usize> = self
            .names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let mut g: DiGraph<(), ()> = DiGraph::new();
        for _ in &self.names {
            g.add_node(());
        }
        for (name, deps) in &self.deps {
            for d in deps {
                g.add_edge(
                    NodeIndex::new(index[name.as_str()]),
                    NodeIndex::new(index[d.as_str()]),
                    (),
                );
            }
        }
        if petgraph::algo::toposort(&g, None).is_ok() {
            return Ok(());
        }
        // Find one cycle to print: depth-first search with an explicit path, in name order.
        for start in &self.names {
            let mut path = vec![start.clone()];
            if let Some(cycle) = self.find_cycle(start, &mut path, &mut BTreeSet::new()) {
                return Err(GraphError::Cycle { cycle });
            }
        }
        Err(GraphError::Cycle { cycle: vec![] })
    }

    fn find_cycle(
        &self,
        node: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        for dep in self.deps.get(node).into_iter().flatten() {
            if let Some(pos) = path.iter().position(|p| p == dep) {
                let mut cycle = path[pos..].to_vec();
                cycle.push(dep.clone());
                return Some(cycle);
            }
            if done.contains(dep) {
                continue;
            }
            path.push(dep.clone());
            if let Some(c) = self.find_cycle(dep, path, done) {
                return Some(c);
            }
            path.pop();
        }
        done.insert(node.to_string());
        None
    }

    /// What `service` depends on directly.
    pub fn dependencies(&self, service: &str) -> Vec<String> {
        self.deps
            .get(service)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Services that depend directly on `service`.
    pub fn dependents(&self, service: &str) -> Vec<String> {
        self.deps
            .iter()
            .filter(|(_, d)| d.contains(service))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Start order as levels: level 0 has no dependencies; each later level depends only on
    /// earlier ones. Names are sorted within a level. Stop order is the reverse.
    pub fn levels(&self) -> Vec<Vec<String>> {
        let mut placed: BTreeSet<String> = BTreeSet::new();
        let mut levels = Vec::new();
        while placed.len() < self.names.len() {
            let level: Vec<String> = self
                .names
                .iter()
                .filter(|n| {
                    !placed.contains(*n) && self.deps[*n].iter().all(|d| placed.contains(d))
                })
                .cloned()
                .collect();
            if level.is_empty() {
                break; // unreachable: cycles are rejected in new()
            }
            placed.extend(level.iter().cloned());
            levels.push(level);
        }
        levels
    }

    /// `services` plus everything they depend on, transitively (for `up web`).
    pub fn with_dependencies(&self, services: &[String]) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut todo: Vec<String> = services.to_vec();
        while let Some(s) = todo.pop() {
            if out.insert(s.clone()) {
                todo.extend(self.dependencies(&s));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Dependency, Service};

    fn project(edges: &[(&str, &[&str])]) -> Project {
        let mut p = Project::default();
        for (name, deps) in edges {
            let mut svc = Service {
                name: name.to_string(),
                ..Default::default()
            };
            for d in *deps {
                svc.depends_on.insert(
                    d.to_string(),
                    Dependency {
                        condition: "service_started".into(),
                        restart: false,
                        required: true,
                        extensions: Default::default(),
                    },
                );
            }
            p.services.insert(name.to_string(), svc);
        }
        p
    }

    #[test]
    fn levels_in_parallel_groups() {
        let g = DependencyGraph::new(&project(&[
            ("web", &["api"]),
            ("api", &["db", "cache"]),
            ("db", &[]),
            ("cache", &[]),
        ]))
        .unwrap();
        assert_eq!(
            g.levels(),
            vec![vec!["cache", "db"], vec!["api"], vec!["web"]]
        );
        assert_eq!(g.dependents("api"), vec!["web"]);
        assert_eq!(g.with_dependencies(&["api".into()]).len(), 3);
    }

    #[test]
    fn cycle_is_printed() {
        let err = DependencyGraph::new(&project(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"])]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "dependency cycle detected: a -> b -> c -> a"
        );
        let err = DependencyGraph::new(&project(&[("a", &["a"])])).unwrap_err();
        assert_eq!(err.to_string(), "dependency cycle detected: a -> a");
    }
}

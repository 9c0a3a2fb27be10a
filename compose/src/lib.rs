//! rcompose-compose: everything that understands a Compose project without touching the kernel.
//!
//! The load pipeline (`load`) turns Compose files into a typed [`model::Project`]; `graph`
//! orders services by `depends_on`; `render` prints the canonical form; `hash` gives the
//! per-service config hash and `labels` the names and labels of what a project creates.
//! `observe` → `reconcile` → `plan` → `execute` drive an engine through the
//! [`execute::Backend`] trait; `ops` holds the other compose verbs over the same trait.
//! This crate never prints and never exits: it returns typed errors and warnings.

pub mod convert;
pub mod execute;
pub mod graph;
pub mod hash;
pub mod labels;
pub mod load;
pub mod model;
pub mod observe;
pub mod ops;
pub mod plan;
pub mod reconcile;
pub mod render;

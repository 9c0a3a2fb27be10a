//! The wiring between the compose orchestrator, the engine and the networking crate:
//!
//! - [`backend`]: the compose [`Backend`](rcompose_compose::execute::Backend) over the engine
//!   (containers, volumes, image store) and the networks, with the translation of a compose
//!   service into an engine container config, its network plan, secrets and pull policy;
//! - [`docker`]: docker's options (flags and compose keys alike) → the engine's;
//! - [`netwire`]: a container's network plan and the calls that apply it around every start
//!   and undo it on stop/rm, shared by plain containers and compose services;
//! - [`stack`]: a project converted to swarm objects, deployed through a Docker daemon's
//!   Engine API (`rcompose stack`), with the small HTTP client it needs.
//!
//! It never prints (except the opt-in `RCOMPOSE_TRACE_TIMING` lines of [`backend::timing`]) and
//! never exits; the binary renders.

pub mod backend;
pub mod docker;
pub mod netwire;
pub mod run_extras;
pub mod stack;

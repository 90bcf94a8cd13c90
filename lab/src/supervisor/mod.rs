//! The supervisor: runs a leaf's code in sandboxed worker processes under a
//! budget and scores what they produced, so the metric is computed where the
//! code under judgement never ran. No pyo3 here: the worker side lives in
//! `python/`, and the two meet only through a process boundary ([`protocol`]).
//!
//! Layout: `protocol` (spec, roles, events, keeper reports), `env` (the venv
//! and a worker's whole environment), `policy` (each role's sandbox), `keeper`
//! (`lab __keeper`: the subreaper that ends a worker's whole tree), `launch`
//! (one keeper and worker, its pipes, deadline and log cap), `outcome` (why a
//! worker ended), `progress` (the live stderr line), `curve` (what the code
//! reported, in time, for the views), `requires` (`python.requires`
//! against the venv, before a run records anything), `prepared` (the verified
//! cache of the frozen data preparation), `memo` (the `lab.memo` directories: scope and cap), `scoring` (outputs against targets),
//! `probes` (causality probes for language models), `shm` (what workers leave
//! in `/dev/shm`), `pipeline` (the workers of a smoke or full tier). What is recorded and decided from a tier lives in
//! `lifecycle`.

pub mod curve;
pub mod env;
pub mod keeper;
pub mod launch;
pub mod memo;
pub mod outcome;
pub mod pipeline;
pub mod policy;
pub mod prepared;
pub mod probes;
pub mod progress;
pub mod protocol;
pub mod requires;
pub mod scoring;
pub mod shm;

pub use outcome::ExitReason;

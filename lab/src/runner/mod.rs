//! The supervisor: runs a leaf's code in worker processes under a budget and
//! turns what happened into recorded runs, a verdict and, with `--decide`, a
//! commit or a restore. No pyo3 here: the worker side lives in `python/`, and
//! the two meet only through a process boundary ([`protocol`]).
//!
//! Layout: `protocol` (spec and events), `env` (virtual environment, worker
//! command), `launch` (one worker for one phase), `supervise` (deadline, kill,
//! reap), `outcome` (why a run ended), `progress` (live stderr line), `tier`
//! (the workers of a smoke or full tier), `predictions` (prepared data cache and
//! harness scoring), `integrity` (lock and mutable-file checks), `decide` (the
//! verdict, through the gate), `judge` (the gate on recorded experiments), `flags`
//! (seed-only and eval-only diffs), `archive` (what is left of discarded
//! candidates), `baseline` (`lab baseline`'s reruns), `heldout` (the sealed
//! held-out split and its read counter), `inputs` (declared inputs resolved to
//! upstream leaders' files, and the comparability key), `checkpoint` (`lab checkpoint`), `session` (the whole `lab run`),
//! `doctor` (`lab doctor`'s worker).

pub mod archive;
pub mod baseline;
pub mod checkpoint;
pub mod decide;
pub mod doctor;
pub mod env;
pub mod flags;
pub mod heldout;
pub mod inputs;
pub mod integrity;
pub mod judge;
mod launch;
pub mod outcome;
pub mod predictions;
pub mod progress;
pub mod protocol;
pub mod session;
pub mod supervise;
mod tier;

pub use outcome::ExitReason;
pub use session::{RunOptions, RunSummary, run};

//! The experiment lifecycle: what a run is recorded as, how it is decided, and
//! what happens to the leaf's files afterwards. The processes themselves are the
//! supervisor's (`supervisor/`); this layer records and judges what they left.
//!
//! Layout: `session` (the whole `lab run`: check, snapshot, record, decide),
//! `keep` (what a decision does to the leaf's files), `record` (the rows a run
//! writes), `integrity` (lock, mutable-file and symlink checks),
//! `inputs` (declared inputs resolved to upstream leaders' files, and the
//! comparability key), `decide` (the verdict, through the gate), `judge` (the
//! gate on recorded experiments), `flags` (seed-only and eval-only diffs), `equivalent` (Python
//! rewrites with an unchanged syntax tree),
//! `archive` (what is left of discarded candidates), `baseline` (`lab
//! baseline`'s reruns), `heldout` (the sealed held-out split and its read
//! counter), `sensitivity` (what the gate can detect on a leaf, its ceiling, the keeps noise explains), `checkpoint` (`lab checkpoint`), `doctor` (`lab doctor`'s worker),
//! `verify` (`lab verify`'s checks of files, scores and commit anchors).

pub mod archive;
pub mod baseline;
pub mod checkpoint;
pub mod decide;
pub mod doctor;
pub mod equivalent;
pub mod flags;
pub mod heldout;
pub mod inputs;
pub mod integrity;
pub mod judge;
pub mod keep;
mod record;
pub mod sensitivity;
pub mod session;
pub mod verify;

pub use session::{RunOptions, RunSummary, run};

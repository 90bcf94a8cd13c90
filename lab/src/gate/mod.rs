//! The honest keep gate: pure statistics that decide whether a candidate beats
//! the current leader by more than measured noise. Numbers in, numbers out: no
//! I/O, no printing, and every random draw comes from a caller-given seed.
//!
//! Two kinds of evidence reach [`decide`]: per-item predictions on a shared
//! validation set (a paired bootstrap, [`paired_bootstrap`]) and one metric per
//! run with the leader repeated under several seeds (a t interval). Both end in
//! the same rule: keep only when the interval's lower bound clears
//! `min_improvement`. [`naive_keep`] is the rule this replaces, kept for
//! comparison in the benchmark.
//!
//! Layout: `kind` names metrics and goals; `metrics` scores predictions; `lm`
//! scores a language model's logits (bits per byte);
//! `rank` holds the weighted rank statistics that scoring and the bootstrap
//! share; `bootstrap` (with `resample`, its fast draw loop) and `scalar` build
//! intervals; `decide` turns an interval into a verdict.

mod bootstrap;
mod decide;
mod kind;
pub mod lm;
mod metrics;
mod rank;
mod resample;
mod scalar;

pub use bootstrap::{BootstrapError, BootstrapEstimate, BootstrapOptions, paired_bootstrap};
pub use decide::{
    Evidence, GateConfig, GateError, GateReport, ItemEvidence, PairedSamples, ScalarRuns, Sensitivity, Verdict, decide,
    deterministic, naive_keep,
};
pub use kind::{Goal, MetricKind, Scorer};
pub use metrics::{MetricError, per_sample_errors, score, statistic_on, validate};
pub use scalar::{Reproduction, reproduction, run_sd};

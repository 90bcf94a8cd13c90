//! Analyses across recorded runs of a predictions-mode leaf: whether recent
//! candidates only turned knobs ([`saturation`]), and blending kept models into
//! a new candidate that goes through the same gate ([`blend`]).
//!
//! Everything here reads prediction files back from disk, so everything here
//! first checks them against the sha256 recorded when they were scored
//! (`crate::evidence`): a changed file is refused (exit 3), never silently used.
//! The statistics are the gate's (`gate::score`); [`weights`] only searches.
//!
//! Layout: `weights` (the pure weight search and
//! error correlations), `saturation`, `blend` (the candidate: experiment, files,
//! run, gate, result).

pub mod blend;
pub mod saturation;
pub mod weights;

//! `lab`: a protocol for autonomous research loops.
//!
//! The binary in `main.rs` is thin; everything it does lives in these modules. The
//! layers and the one-way dependencies between them are described in AGENTS.md.
//! Data reaches stdout only through `output` (a closed or full stdout is never a panic).

#![deny(clippy::print_stdout)]

pub mod analysis;
pub mod cli;
pub mod cmd;
pub mod ctx;
pub mod error;
pub mod evidence;
pub mod fingerprint;
pub mod gate;
pub mod ids;
pub mod layout;
pub mod leaf;
pub mod lifecycle;
pub mod mcp;
pub mod outfile;
pub mod output;
pub mod plot;
pub mod python;
pub mod report;
pub mod root;
pub mod sandbox;
pub mod serve;
pub mod stale;
pub mod store;
pub mod submit;
pub mod supervisor;
pub mod vcs;
pub mod yaml;

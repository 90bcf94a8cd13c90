//! `lab`: a protocol for autonomous research loops.
//!
//! The binary in `main.rs` is thin; everything it does lives in these modules. The
//! layers and the one-way dependencies between them are described in AGENTS.md.

pub mod gate;

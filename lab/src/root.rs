//! The lab root: the directory holding `lab.yaml`, and where its database lives.
//!
//! Found by `--root`/`LAB_ROOT`, else by walking up from the working directory.
//! The data folder is `.lab/` beside `lab.yaml`, except in a linked git worktree,
//! where it is the main worktree's `.lab/` for the same root: every worktree of a
//! repository shares one research log, so parallel agents see each other's work.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::error::LabError;
use crate::gate::Goal;
use crate::store::{OpenMode, Store};
use crate::vcs;

pub const MANIFEST: &str = "lab.yaml";
pub const DATA_DIR: &str = ".lab";

/// `lab.yaml`: settings that hold for the whole lab.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootManifest {
    /// Schema version of this file.
    pub version: u32,
    pub name: String,
    /// Where `lab new` puts leaves, relative to the root.
    #[serde(default = "default_leaves_dir")]
    pub leaves: PathBuf,
    /// A running experiment with no known budget is stale after this long.
    #[serde(default = "default_stale_after", with = "humantime_serde_compat")]
    pub stale_after: Duration,
    /// Goals of metrics that no leaf manifest declares (for "best so far").
    #[serde(default)]
    pub metrics: BTreeMap<String, Goal>,
}

fn default_leaves_dir() -> PathBuf {
    PathBuf::from("leaves")
}

fn default_stale_after() -> Duration {
    Duration::from_secs(6 * 3600)
}

/// Durations in manifests are written as people write them: `90s`, `5m`, `6h`.
pub mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| D::Error::custom(format!("invalid duration `{text}`: {e}")))
    }

    /// The same for an optional duration.
    pub mod option {
        use std::time::Duration;

        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => super::serialize(d, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            #[derive(Deserialize)]
            struct Wrapped(#[serde(with = "super")] Duration);
            Ok(Option::<Wrapped>::deserialize(d)?.map(|w| w.0))
        }
    }
}

impl RootManifest {
    pub fn new(name: &str) -> Self {
        Self {
            version: 1,
            name: name.to_owned(),
            leaves: default_leaves_dir(),
            stale_after: default_stale_after(),
            metrics: BTreeMap::new(),
        }
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = crate::yaml::read(path)?;
        let manifest: Self =
            serde_norway::from_str(&text).map_err(|e| LabError::usage(format!("invalid `{}`: {e}", path.display())))?;
        if manifest.version != 1 {
            return Err(LabError::refused(format!(
                "`{}` has version {}; this lab understands version 1",
                path.display(),
                manifest.version
            ))
            .into());
        }
        Ok(manifest)
    }
}

/// A resolved lab root.
#[derive(Debug, Clone)]
pub struct LabRoot {
    pub dir: PathBuf,
    pub manifest: RootManifest,
    /// Where the database and run artifacts live (shared across worktrees).
    pub data_dir: PathBuf,
}

impl LabRoot {
    /// Resolve the root from an explicit path or by walking up from `cwd`.
    pub fn discover(explicit: Option<&Path>, cwd: &Path) -> Result<Self> {
        let dir = match explicit {
            Some(dir) => {
                let dir = absolute(dir, cwd);
                if !dir.join(MANIFEST).is_file() {
                    return Err(LabError::usage(format!("`{}` is not a lab root (no {MANIFEST})", dir.display()))
                        .hint("run `lab init` there, or point --root / LAB_ROOT at a directory with lab.yaml")
                        .into());
                }
                dir
            }
            None => cwd.ancestors().find(|d| d.join(MANIFEST).is_file()).map(Path::to_path_buf).ok_or_else(|| {
                LabError::usage(format!("no {MANIFEST} in `{}` or any parent directory", cwd.display()))
                    .hint("run `lab init` to make this directory a lab root, or pass --root")
            })?,
        };
        Self::open(dir)
    }

    pub fn open(dir: PathBuf) -> Result<Self> {
        let manifest = RootManifest::load(&dir.join(MANIFEST))?;
        let data_dir = shared_data_dir(&dir)?;
        Ok(Self { dir, manifest, data_dir })
    }

    pub fn db_path(&self) -> PathBuf {
        self.layout().db()
    }

    /// The paths inside `.lab/`.
    pub fn layout(&self) -> crate::layout::Layout {
        crate::layout::Layout::new(&self.data_dir)
    }

    /// Open (creating on first use, where there is no data folder yet) the
    /// research database. The data folder keeps itself out of git, whatever the
    /// repository ignores.
    pub fn open_store(&self) -> Result<Store> {
        self.open_store_with(OpenMode::CreateIfNew)
    }

    pub fn open_store_with(&self, mode: OpenMode) -> Result<Store> {
        let store = Store::open(&self.db_path(), mode)?;
        let ignore = self.data_dir.join(".gitignore");
        if !ignore.exists() {
            fs::write(&ignore, "*\n").with_context(|| format!("cannot write `{}`", ignore.display()))?;
        }
        Ok(store)
    }

    /// The leaf (by directory name) that contains `path`, if any: the nearest
    /// directory at or above `path`, below the root, holding a `leaf.yaml`.
    pub fn leaf_containing(&self, path: &Path) -> Option<String> {
        let path = absolute(path, &self.dir);
        path.ancestors()
            .take_while(|d| d.starts_with(&self.dir) && *d != self.dir)
            .find(|d| d.join("leaf.yaml").is_file())
            .and_then(|d| d.file_name())
            .map(|n| n.to_string_lossy().into_owned())
    }
}

fn absolute(path: &Path, base: &Path) -> PathBuf {
    let joined = if path.is_absolute() { path.to_path_buf() } else { base.join(path) };
    joined.canonicalize().unwrap_or(joined)
}

/// `.lab/` beside the root, or the main worktree's when `dir` is in a linked one.
fn shared_data_dir(dir: &Path) -> Result<PathBuf> {
    Ok(match vcs::main_worktree_equivalent(dir)? {
        Some(main_dir) => main_dir.join(DATA_DIR),
        None => dir.join(DATA_DIR),
    })
}

impl LabRoot {
    /// Where leaves live (`leaves:` in lab.yaml): what discovery walks.
    pub fn leaves_dir(&self) -> PathBuf {
        self.dir.join(&self.manifest.leaves)
    }

    /// The goal of a metric: declared by the leaf's manifest (its metric or a
    /// guard), else by the root manifest's `metrics` map. Loads only that one
    /// leaf's manifest, per call; a leaf that is gone or malformed declares nothing.
    pub fn goal_of(&self, leaf: Option<&str>, metric: &str) -> Option<Goal> {
        let declared = leaf
            .and_then(|name| crate::leaf::discover::find_dir(&self.leaves_dir(), name))
            .and_then(|dir| crate::leaf::Manifest::load(&dir.join(crate::leaf::manifest::FILE)).ok())
            .and_then(|manifest| manifest.goal_of(metric));
        declared.or_else(|| self.manifest.metrics.get(metric).copied())
    }
}

//! Resolving a leaf's declared inputs to files of upstream leaders, and the
//! comparability key every comparison of the leaf's results uses.
//!
//! [`comparability`] is the one way to get that key: `lab run`, `lab baseline`,
//! `lab gate`, `lab holdout`, `lab checkpoint`, `lab saturation` and
//! `lab submit` all call it. An input resolves to `.lab/runs/<leader>/full/artifact/<file>`
//! of the upstream leaf's current leader, where the leader is itself chosen
//! under the upstream's comparability key (so rl follows sft, which follows
//! pretrain). No upstream leaf in this lab, or no leader yet: the input is
//! missing and the leaf runs on its fallback, unless the input is required
//! ([`Comparability::require`], which `lab run` calls). A leader whose file is
//! gone, or differs from the sha256 recorded when its run ended, is refused.

use anyhow::{Context as _, Result};

use crate::error::LabError;
use crate::fingerprint;
use crate::leaf::inputs::{Found, ResolvedInput, comparability_key};
use crate::leaf::{Leaf, discover, lock};
use crate::root::LabRoot;
use crate::store::Store;
use crate::store::runs;

/// What a leaf's results are compared under, and the inputs it came from.
#[derive(Debug, Clone)]
pub struct Comparability {
    /// [`comparability_key`] of the lock and the inputs.
    pub key: String,
    pub inputs: Vec<ResolvedInput>,
}

impl Comparability {
    /// Refuse (exit 3) when a required input has no upstream file, naming the leaf to run first.
    pub fn require(&self, leaf: &Leaf) -> Result<()> {
        for input in &self.inputs {
            let spec = &leaf.manifest.inputs[&input.name];
            if spec.required && input.found.is_none() {
                return Err(LabError::refused(format!(
                    "leaf `{}` needs input `{}` ({} of leaf `{}`'s leader): {}",
                    leaf.name(),
                    input.name,
                    input.file,
                    input.leaf,
                    input.missing.as_deref().unwrap_or("not found")
                ))
                .hint(format!(
                    "run `lab run {} --decide` first; its leader's `{}` is the input",
                    input.leaf, input.file
                ))
                .into());
            }
        }
        Ok(())
    }
}

/// The comparability key of `leaf` and its resolved inputs.
pub fn comparability(lab: &LabRoot, store: &Store, leaf: &Leaf) -> Result<Comparability> {
    resolve(lab, store, leaf, &mut vec![leaf.name().to_owned()])
}

/// `chain`: the leaves being resolved, downstream first, to refuse a cycle.
fn resolve(lab: &LabRoot, store: &Store, leaf: &Leaf, chain: &mut Vec<String>) -> Result<Comparability> {
    let lock_sha256 = lock::Lock::sha256(&leaf.dir)?;
    let mut inputs = Vec::new();
    for (name, spec) in &leaf.manifest.inputs {
        let (found, missing) = match upstream_file(lab, store, &spec.leaf, &spec.file, chain)
            .with_context(|| format!("cannot resolve input `{name}` of leaf `{}`", leaf.name()))?
        {
            Ok(found) => (Some(found), None),
            Err(missing) => (None, Some(missing)),
        };
        inputs.push(ResolvedInput {
            name: name.clone(),
            leaf: spec.leaf.clone(),
            file: spec.file.clone(),
            found,
            missing,
        });
    }
    Ok(Comparability { key: comparability_key(&lock_sha256, &inputs), inputs })
}

/// The upstream leader's file, or why there is none.
fn upstream_file(
    lab: &LabRoot,
    store: &Store,
    upstream: &str,
    file: &str,
    chain: &mut Vec<String>,
) -> Result<Result<Found, String>> {
    if chain.iter().any(|c| c == upstream) {
        let cycle = format!("{} -> {upstream}", chain.join(" -> "));
        return Err(LabError::usage(format!("the inputs of these leaves form a cycle: {cycle}"))
            .hint("an input must come from a leaf upstream; remove one of the inputs")
            .into());
    }
    let Some(dir) = discover::find_dir(&lab.leaves_dir(), upstream) else {
        return Ok(Err(format!("there is no leaf `{upstream}` in this lab")));
    };
    let leaf = Leaf::load(&dir)?;
    chain.push(upstream.to_owned());
    let key = resolve(lab, store, &leaf, chain)?.key;
    chain.pop();
    let metric = &leaf.manifest.metric;
    let Some(leader) = runs::leader(store.conn(), upstream, &metric.name, metric.goal, &key)? else {
        return Ok(Err(format!("leaf `{upstream}` has no leader yet under its current leaf.lock and inputs")));
    };
    let leader_id: crate::ids::ExperimentId = leader.experiment.parse()?;
    let path = lab.layout().run(leader_id).tier("full").artifact().join(file);
    if !path.is_file() {
        return Err(LabError::refused(format!(
            "the leader {} of leaf `{upstream}` has no `{file}`: `{}` is missing",
            leader.experiment,
            path.display()
        ))
        .hint(format!("restore its run directory, or keep a new leader with `lab run {upstream} --decide`"))
        .into());
    }
    let sha256 = fingerprint::sha256_file(&path).with_context(|| format!("cannot read `{}`", path.display()))?;
    let recorded = super::judge::last_full_files(store, leader_id)?;
    if let Some(record) = recorded.iter().find(|f| f.kind == "artifact" && f.name == file)
        && record.sha256 != sha256
    {
        return Err(LabError::refused(format!(
            "`{}`, the `{file}` of leaf `{upstream}`'s leader {leader_id}, changed since its run ended \
             (sha256 {sha256}, recorded {})",
            path.display(),
            record.sha256
        ))
        .hint(format!("restore it, or keep a new leader with `lab run {upstream} --decide`"))
        .into());
    }
    Ok(Ok(Found { experiment: leader.experiment, path, sha256 }))
}

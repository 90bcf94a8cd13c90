//! Prediction files read back as evidence: each one is checked against the
//! sha256 recorded with its run before a single value is used.
//!
//! Invariants: a missing or changed file is a refusal (exit 3) that names the
//! experiment, the file and both fingerprints; nothing here writes.

use anyhow::Result;

use crate::error::LabError;
use crate::fingerprint;
use crate::ids::ExperimentId;
use crate::runner::predictions;
use crate::store::candidates::ScoredRun;
use crate::store::runs::RunFile;

/// The values of a recorded file of `owner`, after its fingerprint matched.
pub fn read_verified(owner: ExperimentId, file: &RunFile) -> Result<Vec<f64>> {
    let path = std::path::Path::new(&file.path);
    let what = format!("the {} {} file of {owner} (`{}`)", file.name, file.kind, file.path);
    let actual = fingerprint::sha256_file(path).map_err(|e| {
        LabError::refused(format!("{what} cannot be read ({e}); it was recorded with sha256 {}", file.sha256))
            .hint("restore the file from a backup, or rerun the experiment")
    })?;
    if actual != file.sha256 {
        return Err(LabError::refused(format!(
            "{what} changed since it was scored: sha256 {actual}, recorded {}",
            file.sha256
        ))
        .hint("a prediction file is evidence: restore it, or rerun the experiment")
        .into());
    }
    Ok(predictions::read_flat(path)?.to_vec())
}

/// The verified predictions of `run` on `split`; a usage error when the run saved none.
pub fn predictions(run: &ScoredRun, split: &str) -> Result<Vec<f64>> {
    let file = run.predictions(split).ok_or_else(|| {
        LabError::usage(format!("{} saved no `{split}` predictions", run.experiment))
            .hint("only predictions-mode runs that returned every split can be compared")
    })?;
    read_verified(run.experiment, file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Exit, LabError};

    #[test]
    fn a_changed_or_missing_file_is_refused_and_a_matching_one_read() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("val.npy");
        ndarray_npy::write_npy(&path, &ndarray::Array1::from(vec![1.0, 2.0])).unwrap();
        let sha256 = fingerprint::sha256_file(&path).unwrap();
        let file =
            RunFile { kind: "predictions", name: "val".into(), path: path.display().to_string(), sha256, len: None };
        assert_eq!(read_verified(ExperimentId(3), &file).unwrap(), [1.0, 2.0]);
        ndarray_npy::write_npy(&path, &ndarray::Array1::from(vec![1.0, 2.5])).unwrap();
        let err = read_verified(ExperimentId(3), &file).unwrap_err();
        assert_eq!(err.downcast_ref::<LabError>().unwrap().exit, Exit::Refused);
        assert!(err.to_string().contains("val predictions file of e3") && err.to_string().contains("changed"), "{err}");
        std::fs::remove_file(&path).unwrap();
        let err = read_verified(ExperimentId(3), &file).unwrap_err();
        assert_eq!(err.downcast_ref::<LabError>().unwrap().exit, Exit::Refused, "{err}");
    }
}

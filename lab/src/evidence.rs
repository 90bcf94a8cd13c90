//! Recorded files read back as evidence: each one is re-hashed against the
//! sha256 recorded with its run before a single value is used. The one reader
//! of run files: the gate, held-out transfer, checkpoints, blends, saturation,
//! submissions and `lab verify` all come through here.
//!
//! Invariants: a missing or changed file is a refusal (exit 3) that names the
//! experiment, the file and both fingerprints; the bytes that were hashed are
//! the bytes that are parsed (no second read to race with); nothing here writes.

use anyhow::Result;

use crate::error::LabError;
use crate::fingerprint;
use crate::ids::ExperimentId;
use crate::store::candidates::ScoredRun;
use crate::store::runs::RunFile;
use crate::supervisor::scoring;

/// The bytes of a recorded file of `owner`, after its fingerprint matched.
pub fn bytes(owner: ExperimentId, file: &RunFile) -> Result<Vec<u8>> {
    let what = format!("the {} {} file of {owner} (`{}`)", file.name, file.kind, file.path);
    let bytes = std::fs::read(&file.path).map_err(|e| {
        LabError::refused(format!("{what} cannot be read ({e}); it was recorded with sha256 {}", file.sha256))
            .hint("restore the file from a backup, or rerun the experiment")
    })?;
    let actual = fingerprint::sha256_hex(&bytes);
    if actual != file.sha256 {
        return Err(LabError::refused(format!(
            "{what} changed since it was scored: sha256 {actual}, recorded {}",
            file.sha256
        ))
        .hint("a scored file is evidence: restore it, or rerun the experiment")
        .into());
    }
    Ok(bytes)
}

/// Whether a recorded file still has its recorded bytes (for reports that list every mismatch).
pub fn holds(owner: ExperimentId, file: &RunFile) -> Result<(), String> {
    bytes(owner, file).map(drop).map_err(|e| format!("{e:#}"))
}

/// The values of a recorded `.npy` file of `owner`, one per item, after its fingerprint matched.
pub fn values(owner: ExperimentId, file: &RunFile) -> Result<Vec<f64>> {
    let array = scoring::array_from_bytes(&bytes(owner, file)?)?;
    Ok(scoring::flat(array, &file.path)?.to_vec())
}

/// The per-item `metric` scores of a recorded `scores` file of `owner` (a JSON
/// object of per-item lists), after its fingerprint matched.
pub fn scores(owner: ExperimentId, file: &RunFile, metric: &str) -> Result<Vec<f64>> {
    let bytes = bytes(owner, file)?;
    let bad = || LabError::failure(format!("the {} scores file of {owner} has no numeric `{metric}` list", file.name));
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let list = value.get(metric).and_then(serde_json::Value::as_array).ok_or_else(bad)?;
    Ok(list.iter().map(crate::supervisor::protocol::decode_number).collect::<Option<Vec<f64>>>().ok_or_else(bad)?)
}

/// The recorded file of `kind` and `name` among `files`.
pub fn find<'a>(files: &'a [RunFile], kind: &str, name: &str) -> Option<&'a RunFile> {
    files.iter().find(|f| f.kind == kind && f.name == name)
}

/// The verified predictions of `run` on `split`; a usage error when the run saved none.
pub fn predictions(run: &ScoredRun, split: &str) -> Result<Vec<f64>> {
    let file = run.predictions(split).ok_or_else(|| {
        LabError::usage(format!("{} saved no `{split}` predictions", run.experiment))
            .hint("only predictions-mode runs that returned every split can be compared")
    })?;
    values(run.experiment, file)
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
        assert_eq!(values(ExperimentId(3), &file).unwrap(), [1.0, 2.0]);
        ndarray_npy::write_npy(&path, &ndarray::Array1::from(vec![1.0, 2.5])).unwrap();
        let err = values(ExperimentId(3), &file).unwrap_err();
        assert_eq!(err.downcast_ref::<LabError>().unwrap().exit, Exit::Refused);
        assert!(err.to_string().contains("val predictions file of e3") && err.to_string().contains("changed"), "{err}");
        std::fs::remove_file(&path).unwrap();
        let err = values(ExperimentId(3), &file).unwrap_err();
        assert_eq!(err.downcast_ref::<LabError>().unwrap().exit, Exit::Refused, "{err}");
    }
}

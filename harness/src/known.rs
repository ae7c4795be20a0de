//! Known findings (`--known FILE`): violations already understood and
//! written up, which a run counts and explores past instead of stopping.
//! The nightly job of an engine with findings fails only on a new one.

use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownFinding {
    /// A short name, the key in the run's `known` counts.
    pub id: String,
    /// The violation kind it shows as.
    pub kind: String,
    /// Its cause as `hwmodel::signature` computes it: what a failure must
    /// equal to be this finding.
    pub signature: String,
    /// What it is, for the person reading the file.
    #[serde(default)]
    pub about: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Known {
    /// The engine these findings belong to.
    pub engine: String,
    pub findings: Vec<KnownFinding>,
}

impl Known {
    /// Read and check a known-findings file; the error is one line.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read known findings {}: {e}", path.display()))?;
        let k: Known =
            serde_json::from_str(&text).map_err(|e| format!("corrupt known findings {}: {e}", path.display()))?;
        if let Some(f) = k.findings.iter().find(|f| hwmodel::ViolationKind::ALL.iter().all(|v| v.name() != f.kind)) {
            return Err(format!("known findings {}: {:?} names unknown kind {:?}", path.display(), f.id, f.kind));
        }
        if let Some(f) = k.findings.iter().find(|f| !f.signature.starts_with(&format!("{}: ", f.kind))) {
            return Err(format!(
                "known findings {}: {:?}'s signature is not of kind {:?}",
                path.display(),
                f.id,
                f.kind
            ));
        }
        Ok(k)
    }

    /// The id of the known finding with this signature, if any.
    pub fn matches(&self, signature: &str) -> Option<&str> {
        self.findings.iter().find(|f| f.signature == signature).map(|f| f.id.as_str())
    }
}

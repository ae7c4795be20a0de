//! Failure files: everything needed to re-run a failure exactly, written
//! before the process exits.

use crate::run::Recorded;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const FORMAT: u32 = 3;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailureFile {
    pub format: u32,
    /// The stress version that wrote it; replays need the same model.
    pub version: String,
    pub scenario: String,
    /// The run's base seed, and the seed of the chunk the failure was in.
    pub seed: u64,
    pub chunk_seed: u64,
    pub scheduler: String,
    pub engine: String,
    /// `--atc-inv-disabled`: what an endpoint does with a racing ATC_INV.
    pub atc_inv_disabled: String,
    /// `--rwlock`, if the run set one (else the scenario chose, from the
    /// schedule's own choices).
    pub rwlock: Option<String>,
    pub mode: String,
    pub mutant: Option<String>,
    pub cpus: usize,
    /// `--fault-rate` in parts per million, if the run set one.
    pub fault_ppm: Option<u32>,
    /// `--max-steps`, if the run set one.
    pub max_steps: Option<u64>,
    pub depth: usize,
    pub schedule_index: u64,
    pub kind: String,
    pub explanation: String,
    pub detail: String,
    pub trace_hash: u64,
    /// Context switches that left a runnable task, for comparing shrinks.
    pub preemptions: usize,
    pub shrunk: bool,
    /// The replay ends at the first violation (a shrunk schedule: nothing
    /// after it is part of the story).
    pub stops_at_violation: bool,
    /// The cap a shrinker put on the scenario's loops, if any.
    pub size: Option<usize>,
    /// The schedule: data seed and every decision. Absent for failures on
    /// real threads, which cannot be replayed.
    pub schedule: Option<Recorded>,
    /// Every event of the failing schedule up to the violation, with its
    /// actor (gzip and base64 when long).
    #[serde(with = "crate::trace")]
    pub trace: Vec<crate::trace::Line>,
}

impl FailureFile {
    /// Write under `dir`; returns the path.
    pub fn write(&self, dir: &Path) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let tag = self.mutant.as_deref().unwrap_or(&self.engine);
        let shrunk = if self.shrunk { "-shrunk" } else { "" };
        let path = dir.join(format!("{}-{tag}-{}-{}{shrunk}.json", self.scenario, self.seed, self.schedule_index));
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&path, text)?;
        Ok(path)
    }

    /// The picture of the failing interleaving, beside the file at `path`.
    pub fn write_picture(&self, path: &Path) -> std::io::Result<PathBuf> {
        let svg_path = path.with_extension("svg");
        let verdict = self.trace.last().map_or(0, |l| l.seq);
        std::fs::write(&svg_path, crate::picture::svg(&self.trace, &self.kind, &self.detail, verdict))?;
        Ok(svg_path)
    }

    /// Read and check a replay file; the error is one line for the user.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read replay file {}: {e}", path.display()))?;
        let f: FailureFile =
            serde_json::from_str(&text).map_err(|e| format!("corrupt replay file {}: {e}", path.display()))?;
        if f.format != FORMAT {
            return Err(format!("replay file {} has format {}, this stress reads {FORMAT}", path.display(), f.format));
        }
        if f.version != env!("CARGO_PKG_VERSION") {
            return Err(format!(
                "replay file {} was written by stress {}, this is {}",
                path.display(),
                f.version,
                env!("CARGO_PKG_VERSION")
            ));
        }
        Ok(f)
    }
}

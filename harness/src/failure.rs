//! Failure files: everything needed to re-run a failure exactly, written
//! before the process exits.

use crate::config::Config;
use crate::known::Known;
use crate::run::{self, Found, Recorded, RunStats};
use hwmodel::Odds;
use scenarios::{Params, Scenario};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const FORMAT: u32 = 6;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailureFile {
    pub format: u32,
    /// The stress version that wrote it; replays need the same model.
    pub version: String,
    /// The run's configuration for this scenario, with the PCT depth of
    /// the chunk the failure was in, and what a shrinker narrowed.
    pub config: Config,
    /// The seed of the chunk the failure was in.
    pub chunk_seed: u64,
    pub schedule_index: u64,
    pub kind: String,
    pub explanation: String,
    pub detail: String,
    /// Its cause (`hwmodel::signature`); files written before signatures
    /// have none.
    #[serde(default)]
    pub signature: String,
    pub trace_hash: u64,
    /// Context switches that left a runnable task, for comparing shrinks.
    pub preemptions: usize,
    pub shrunk: bool,
    /// The odds the failing schedule's world ran with, as it set or drew
    /// them (none for a failure that ended its thread, such as a livelock).
    pub odds: Option<Odds>,
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
        let c = &self.config;
        let tag = c.world.mutant.map_or(c.world.engine.name(), |m| m.name());
        let shrunk = if self.shrunk { "-shrunk" } else { "" };
        let name = format!("{}-{tag}-{}-{}{shrunk}.json", c.scenario, c.world.seed, self.schedule_index);
        let path = dir.join(name);
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
        Self::parse(&text, &path.display().to_string())
    }

    /// Parse and check the text of a replay file read from `origin`.
    pub fn parse(text: &str, origin: &str) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct Head {
            format: u32,
        }
        let head: Head = serde_json::from_str(text).map_err(|e| format!("corrupt replay file {origin}: {e}"))?;
        if head.format != FORMAT {
            return Err(format!("replay file {origin} has format {}, this stress reads {FORMAT}", head.format));
        }
        let f: FailureFile = serde_json::from_str(text).map_err(|e| format!("corrupt replay file {origin}: {e}"))?;
        if f.version != env!("CARGO_PKG_VERSION") {
            return Err(format!(
                "replay file {origin} was written by stress {}, this is {}",
                f.version,
                env!("CARGO_PKG_VERSION")
            ));
        }
        f.config.scenario().map_err(|e| format!("replay file {origin} names an {e}"))?;
        Ok(f)
    }

    /// The scenario and parameters a replay runs with: every event kept,
    /// stopping where it stopped.
    pub fn replay_params(&self) -> Result<(&'static Scenario, Params), String> {
        let sc = self.config.scenario()?;
        Ok((sc, Params { full_trace: true, ..self.config.world }))
    }

    /// Run the recorded schedule once under its own configuration, with
    /// every event kept. `known` findings are counted instead of reported.
    pub fn replay(&self, known: Option<&'static Known>) -> Result<Replayed, String> {
        let (sc, params) = self.replay_params()?;
        let Some(schedule) = &self.schedule else {
            return Err(format!(
                "{} failed on real threads ({} mode): rerun it with --mode threads --seed {}",
                self.config.scenario,
                self.config.mode.name(),
                self.config.world.seed
            ));
        };
        let stats = run::replay(sc, params, schedule, self.config.max_steps, known);
        Ok(Replayed { sc, params, stats })
    }

    /// The violation `r` ended in, if it is this file's: same kind, same
    /// trace hash.
    pub fn verdict<'r>(&self, r: &'r Replayed) -> Result<&'r Found, String> {
        // A finding `--known` counts is not the replay's failure, but is
        // still this file's.
        match r.stats.failure(&self.signature).or(r.stats.found.as_ref()) {
            Some(g) if g.kind == self.kind && g.trace_hash == self.trace_hash => Ok(g),
            Some(g) => Err(format!(
                "replay diverged: got {} with trace hash {:#x}, the file has {} with {:#x}",
                g.kind, g.trace_hash, self.kind, self.trace_hash
            )),
            None => Err(format!("replay did not reproduce the {} in {}", self.kind, self.config.scenario)),
        }
    }
}

/// One replay of a failure file.
pub struct Replayed {
    pub sc: &'static Scenario,
    pub params: Params,
    pub stats: RunStats,
}

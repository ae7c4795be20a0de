//! Failure files: everything needed to re-run a failure exactly, written
//! before the process exits.

use crate::cli::{AtcMode, EngineKind, RwLockChoice};
use crate::known::Known;
use crate::run::{self, Found, Recorded, RunStats};
use engine::Mutant;
use scenarios::{Params, Scenario};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const FORMAT: u32 = 5;

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
    /// The generated operations a shrinker removed (`Params::skip_ops`).
    #[serde(default)]
    pub skip_ops: u64,
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
        Self::parse(&text, &path.display().to_string())
    }

    /// Parse and check the text of a replay file read from `origin`.
    pub fn parse(text: &str, origin: &str) -> Result<Self, String> {
        let f: FailureFile = serde_json::from_str(text).map_err(|e| format!("corrupt replay file {origin}: {e}"))?;
        if f.format != FORMAT {
            return Err(format!("replay file {origin} has format {}, this stress reads {FORMAT}", f.format));
        }
        if f.version != env!("CARGO_PKG_VERSION") {
            return Err(format!(
                "replay file {origin} was written by stress {}, this is {}",
                f.version,
                env!("CARGO_PKG_VERSION")
            ));
        }
        Ok(f)
    }

    /// The engine, endpoint mode, rwlock and mutant it was recorded with.
    pub fn setting(&self) -> Result<Setting, String> {
        let mutant = match self.mutant.as_deref() {
            Some(m) => Some(Mutant::from_name(m).ok_or_else(|| format!("replay file names unknown mutant {m:?}"))?),
            None => None,
        };
        let engine = <EngineKind as clap::ValueEnum>::from_str(&self.engine, false)
            .map_err(|_| format!("replay file names unknown engine {:?}", self.engine))?;
        let atc = <AtcMode as clap::ValueEnum>::from_str(&self.atc_inv_disabled, false)
            .map_err(|_| format!("replay file names unknown --atc-inv-disabled mode {:?}", self.atc_inv_disabled))?;
        let rwlock = match self.rwlock.as_deref() {
            Some(k) => Some(
                <RwLockChoice as clap::ValueEnum>::from_str(k, false)
                    .map_err(|_| format!("replay file names unknown --rwlock kind {k:?}"))?,
            ),
            None => None,
        };
        Ok(Setting { engine, atc, rwlock, mutant })
    }

    /// The scenario and parameters a replay of it runs with: every event
    /// kept, stopping where it stopped.
    pub fn replay_params(&self, s: &Setting) -> Result<(&'static Scenario, Params), String> {
        let sc = scenarios::find(&self.scenario)
            .ok_or_else(|| format!("replay file names unknown scenario {:?}", self.scenario))?;
        let params = Params {
            cpus: self.cpus,
            engine: crate::app::engine_of(s.engine),
            mutant: s.mutant,
            seed: self.seed,
            fault_ppm: self.fault_ppm,
            atc_inv_disabled: s.atc.model(),
            rwlock: s.rwlock.map(RwLockChoice::model),
            full_trace: true,
            stop_at_violation: self.stops_at_violation,
            size: self.size,
            skip_ops: self.skip_ops,
        };
        Ok((sc, params))
    }
}

impl FailureFile {
    /// Run the recorded schedule once under its own setting, with every
    /// event kept. `known` findings are counted instead of reported.
    pub fn replay(&self, set: &Setting, known: Option<&'static Known>) -> Result<Replayed, String> {
        let (sc, params) = self.replay_params(set)?;
        let Some(schedule) = &self.schedule else {
            return Err(format!(
                "{} failed on real threads ({} mode): rerun it with --mode threads --seed {}",
                self.scenario, self.mode, self.seed
            ));
        };
        let stats = run::replay(sc, params, schedule, self.max_steps, known);
        Ok(Replayed { sc, params, stats })
    }

    /// The violation `r` ended in, if it is this file's: same kind, same
    /// trace hash.
    pub fn verdict<'r>(&self, r: &'r Replayed) -> Result<&'r Found, String> {
        match &r.stats.found {
            Some(g) if g.kind == self.kind && g.trace_hash == self.trace_hash => Ok(g),
            Some(g) => Err(format!(
                "replay diverged: got {} with trace hash {:#x}, the file has {} with {:#x}",
                g.kind, g.trace_hash, self.kind, self.trace_hash
            )),
            None => Err(format!("replay did not reproduce the {} in {}", self.kind, self.scenario)),
        }
    }
}

/// One replay of a failure file.
pub struct Replayed {
    pub sc: &'static Scenario,
    pub params: Params,
    pub stats: RunStats,
}

/// What a failure file was recorded under.
pub struct Setting {
    pub engine: EngineKind,
    pub atc: AtcMode,
    pub rwlock: Option<RwLockChoice>,
    pub mutant: Option<Mutant>,
}

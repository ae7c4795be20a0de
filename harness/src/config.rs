//! The run configuration: one typed value built once from the command
//! line (`Cli::config`), printed at the top of every run, narrowed to one
//! scenario for each run of it, stored whole in a failure file and read
//! back by replay with serde.

use scenarios::{Params, Scenario};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchedulerKind {
    Pct,
    Random,
    Dfs,
    Loom,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModeKind {
    Model,
    Threads,
}

impl SchedulerKind {
    pub fn name(self) -> &'static str {
        match self {
            SchedulerKind::Pct => "pct",
            SchedulerKind::Random => "random",
            SchedulerKind::Dfs => "dfs",
            SchedulerKind::Loom => "loom",
        }
    }
}

/// How schedules are made: each drawn anew by the scheduler, or guided by
/// what earlier ones reached (`guide`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExploreKind {
    #[default]
    Fresh,
    Feedback,
}

impl ExploreKind {
    pub fn name(self) -> &'static str {
        match self {
            ExploreKind::Fresh => "fresh",
            ExploreKind::Feedback => "feedback",
        }
    }
}

impl ModeKind {
    pub fn name(self) -> &'static str {
        match self {
            ModeKind::Model => "model",
            ModeKind::Threads => "threads",
        }
    }
}

/// PCT depths the chunks of a run cycle through when `--depth` is not
/// given. A generated world runs ten threads or more, and an ordering bug
/// between three of them needs several priority changes among the rest:
/// depths 10 and 20 find the swarm's bugs several times faster than 3 to
/// 7 do, while the hand-written scenarios still catch theirs at any depth.
pub const DEPTHS: [usize; 5] = [10, 20, 3, 40, 5];

/// Schedules explored under one seed; the unit of `--jobs` and `--shard`.
pub(crate) const CHUNK: u64 = 500;
/// A guided chunk is longer: its corpus learns only within it.
const FEEDBACK_CHUNK: u64 = 10_000;

/// The series `--engine c` compiled: where it was read and a hash of its
/// text, so that a replay runs the same C.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesRef {
    pub paths: Vec<String>,
    pub hash: String,
    /// The functions the project's glue provided because the input lacks
    /// their whole body.
    pub from_glue: Vec<String>,
}

/// What a run explores, and how.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// The scenario; in the command line's own configuration, the names it
    /// selected, comma-separated, or empty for the whole catalogue.
    pub scenario: String,
    pub scheduler: SchedulerKind,
    /// How schedules are made (files written before guided exploration
    /// were all fresh).
    #[serde(default)]
    pub explore: ExploreKind,
    /// PCT depth; `None`: each chunk takes its own from `DEPTHS`.
    pub depth: Option<usize>,
    pub mode: ModeKind,
    /// A schedule's step bound; `None`: the world's own.
    pub max_steps: Option<u64>,
    /// The world: seed, engine, mutant, endpoint mode, rwlock, CPUs (0 in
    /// the command line's configuration when each scenario takes its
    /// own), fault rate, and what a shrinker narrowed.
    #[serde(flatten)]
    pub world: Params,
    /// The C `--engine c` ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<SeriesRef>,
}

impl Config {
    /// This configuration for one scenario: its name, and its own CPU count
    /// unless one was given.
    pub fn for_scenario(&self, sc: &Scenario) -> Config {
        let cpus = if self.world.cpus == 0 { sc.cpus } else { self.world.cpus };
        Config { scenario: sc.name.into(), world: Params { cpus, ..self.world }, ..self.clone() }
    }

    /// Schedules per chunk, each chunk under its own seed.
    pub fn chunk(&self) -> u64 {
        match self.explore {
            ExploreKind::Fresh => CHUNK,
            ExploreKind::Feedback => FEEDBACK_CHUNK,
        }
    }

    /// Where chunk `chunk` draws its fresh schedules, as (seed, PCT depth)
    /// of each part, `seed` giving a fresh chunk's seed: a guided chunk
    /// spans as many of the fresh run's chunks as it makes fresh
    /// schedules, the next ones after the chunk before it; a fresh chunk
    /// is its own one part.
    pub fn fresh_parts(&self, chunk: u64, seed: impl Fn(u64) -> u64) -> Vec<(u64, usize)> {
        let per = crate::guide::fresh_in(self.chunk()).div_ceil(CHUNK);
        (chunk * per..(chunk + 1) * per).map(|c| (seed(c), self.depth_of(c))).collect()
    }

    /// The PCT depth of chunk `chunk`.
    pub fn depth_of(&self, chunk: u64) -> usize {
        self.depth.unwrap_or(DEPTHS[chunk as usize % DEPTHS.len()])
    }

    /// The scenario this configuration names, if it names one.
    pub fn scenario(&self) -> Result<&'static Scenario, String> {
        scenarios::find(&self.scenario).ok_or_else(|| format!("unknown scenario {:?}", self.scenario))
    }
}

impl std::fmt::Display for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let w = &self.world;
        let each = if self.scenario.is_empty() { "each scenario's own" } else { "the scenario's" };
        let scenario = if self.scenario.is_empty() { "the whole catalogue" } else { &self.scenario };
        let depth = self.depth.map_or_else(|| format!("{DEPTHS:?} by chunk"), |d| d.to_string());
        let rwlock = w.rwlock.map_or(each, |k| k.name());
        let mutant = w.mutant.map_or("none", |m| m.name());
        let cpus = if w.cpus == 0 { each.to_string() } else { w.cpus.to_string() };
        let fault = w.fault_ppm.map_or_else(|| each.to_string(), |p| format!("{} ppm", p));
        write!(
            f,
            "seed {} · scenario {scenario} · engine {} · scheduler {} (depth {depth}) · explore {} · mode {} · \
             atc-inv-disabled {} · rwlock {rwlock} · mutant {mutant} · cpus {cpus} · fault rate {fault}",
            w.seed,
            w.engine.name(),
            self.scheduler.name(),
            self.explore.name(),
            self.mode.name(),
            w.atc_inv_disabled.name()
        )?;
        if let Some(n) = self.max_steps {
            write!(f, " · max steps {n}")?;
        }
        if let Some(n) = w.size {
            write!(f, " · size {n}")?;
        }
        if w.skip_ops != 0 {
            write!(f, " · skip ops {:#x}", w.skip_ops)?;
        }
        if w.stop_at_violation {
            write!(f, " · stops at the violation")?;
        }
        if let Some(s) = &self.series {
            write!(f, " · series {} ({})", s.paths.join(" + "), s.hash)?;
        }
        Ok(())
    }
}

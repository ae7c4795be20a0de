//! The `stress` command line, as specified in DESIGN.md. Every bad input is
//! turned into one line of text and exit code 2.

use crate::config::{Config, ExploreKind, ModeKind, SchedulerKind, SeriesRef};
use clap::Parser;
use engine::{Engine, Mutant};
use hwmodel::AtcInvDisabled;
use scenarios::Params;
use smmu_sync::RwLockKind;
use std::path::PathBuf;

pub const EXIT_OK: i32 = 0;
pub const EXIT_VIOLATION: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

/// A value parser for a model enum named by `name`, listing `names`.
fn named<T: Clone + Send + Sync + 'static>(
    names: impl IntoIterator<Item = &'static str>,
    from: fn(&str) -> Option<T>,
) -> impl clap::builder::TypedValueParser<Value = T> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(names).map(move |s: String| from(&s).expect("a listed name"))
}

fn engine_parser() -> impl clap::builder::TypedValueParser<Value = Engine> {
    named(Engine::ALL.map(Engine::name), Engine::from_name)
}

fn atc_parser() -> impl clap::builder::TypedValueParser<Value = AtcInvDisabled> {
    named(AtcInvDisabled::ALL.map(AtcInvDisabled::name), AtcInvDisabled::from_name)
}

fn rwlock_parser() -> impl clap::builder::TypedValueParser<Value = RwLockKind> {
    named(RwLockKind::ALL.map(RwLockKind::name), RwLockKind::from_name)
}

fn parse_mutant(s: &str) -> Result<Mutant, String> {
    Mutant::from_name(s).ok_or_else(|| format!("unknown mutant {s:?} (see --list)"))
}

/// One shard of the seed space: this run takes every seed index `i` with
/// `i % count == index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

fn parse_shard(s: &str) -> Result<Shard, String> {
    let (k, n) = s.split_once('/').ok_or("expected K/N, e.g. 0/4")?;
    let index = k.parse().map_err(|_| format!("shard index {k:?} is not a number"))?;
    let count: u64 = n.parse().map_err(|_| format!("shard count {n:?} is not a number"))?;
    if count == 0 || index >= count {
        return Err(format!("need 0 <= K < N, got {index}/{count}"));
    }
    Ok(Shard { index, count })
}

/// Deterministic stress of the SMMUv3 invalidation array.
#[derive(Clone, Debug, Parser)]
#[command(name = "stress", version, about)]
pub struct Cli {
    /// One scenario (repeatable); default: the whole catalogue
    #[arg(long, value_name = "NAME")]
    pub scenario: Vec<String>,
    /// Base seed; default: from the clock, always printed
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Schedules per scenario
    #[arg(long, value_name = "N")]
    pub iterations: Option<u64>,
    #[arg(long, value_enum, default_value_t = SchedulerKind::Pct)]
    pub scheduler: SchedulerKind,
    /// PCT depth
    #[arg(long, value_name = "D")]
    pub depth: Option<usize>,
    /// Simulated CPU threads (default per scenario)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub cpus: Option<u32>,
    /// fenced (default): the project's proposal | v9: seed 001 as written |
    /// legacy: the kernel before the series | c: the series' own C, from
    /// --series
    #[arg(long, value_name = "KIND", value_parser = engine_parser())]
    pub engine: Option<Engine>,
    /// The input of --engine c: a patch series (mbox or diff, as b4 am or
    /// git format-patch writes it) or arm-smmu-v3.c; given twice, a .c and
    /// its .h
    #[arg(long, value_name = "PATH")]
    pub series: Vec<PathBuf>,
    /// What an endpoint does with an ATC_INV that raced its ATS disable:
    /// error (default: a violation) | complete (harmless) | timeout (the
    /// CMD_SYNC reports CERROR_ATC_INV_SYNC)
    #[arg(long, value_name = "MODE", value_parser = atc_parser())]
    pub atc_inv_disabled: Option<AtcInvDisabled>,
    /// The kernel rwlock: queued (qrwlock: a reader in interrupt context
    /// passes a waiting writer) | fair (every reader waits behind one).
    /// Default: the swarm draws one per schedule, irq-unmap runs fair, the
    /// other scenarios queued
    #[arg(long, value_name = "KIND", value_parser = rwlock_parser())]
    pub rwlock: Option<RwLockKind>,
    #[arg(long, value_enum, default_value_t = ModeKind::Model)]
    pub mode: ModeKind,
    /// How schedules are made: each drawn fresh by --scheduler, or
    /// feedback: the fresh run's schedules, with every third (after the
    /// first 1 000 of a chunk) a mutation of an earlier schedule that
    /// reached rare coverage goals
    #[arg(long, value_enum, default_value_t = ExploreKind::Fresh)]
    pub explore: ExploreKind,
    /// Inject one catalogued bug
    #[arg(long, value_name = "NAME", conflicts_with = "mutants", value_parser = parse_mutant)]
    pub mutant: Option<Mutant>,
    /// Mutation score table over all|A,B,...; exit 0 only if every one is caught
    #[arg(long, value_name = "LIST")]
    pub mutants: Option<String>,
    /// Re-run a saved failure exactly
    #[arg(long, value_name = "FILE")]
    pub replay: Option<PathBuf>,
    /// Known findings to count and explore past (JSON; see findings/):
    /// the run goes on past every failure, counts each distinct signature,
    /// shrinks the first of each and fails only if one is not known
    #[arg(long, value_name = "FILE")]
    pub known: Option<PathBuf>,
    /// With --known: end the run at the first failure no finding explains
    #[arg(long, requires = "known")]
    pub stop_at_new: bool,
    /// Run only shard K of N of the seed space
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    pub shard: Option<Shard>,
    /// Parallel workers (default: one per core)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub jobs: Option<u32>,
    /// Chance in 0..1 that each fallible driver call fails (default: the
    /// swarm draws one per schedule, other scenarios inject none)
    #[arg(long, value_name = "P")]
    pub fault_rate: Option<f64>,
    /// Step bound of one schedule before it counts as a livelock (default:
    /// derived from the world's size)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1000..))]
    pub max_steps: Option<u64>,
    #[arg(long, value_name = "SECS")]
    pub time_budget: Option<f64>,
    /// Time to spend shrinking each failure found
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub shrink_budget: f64,
    /// A failure file as plain text for a reply on the list: the cause,
    /// the interleaving in CPU columns, the model's assumptions, the
    /// replay command (to stdout)
    #[arg(long, value_name = "FAILURE_FILE")]
    pub report: Option<PathBuf>,
    /// Write a Rust regression test that replays this failure file and
    /// asserts its verdict (to stdout)
    #[arg(long, value_name = "FAILURE_FILE")]
    pub emit_test: Option<PathBuf>,
    /// Where failure files go
    #[arg(long, value_name = "DIR", default_value = "stress-failures")]
    pub out: PathBuf,
    /// One JSON object on stdout; human text on stderr
    #[arg(long)]
    pub json: bool,
    /// Scenarios, and mutants with the scenario that catches each
    #[arg(long)]
    pub list: bool,
}

/// What `main` should do after parsing: run, or print text and exit.
pub enum Parsed {
    Run(Box<Cli>),
    Exit { text: String, code: i32 },
}

/// Parse `args` (program name first). Help and version exit 0 with clap's
/// full text; every other error is one line and exit 2.
pub fn parse<I, T>(args: I) -> Parsed
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) if e.exit_code() == EXIT_OK => return Parsed::Exit { text: e.to_string(), code: EXIT_OK },
        Err(e) => {
            let first = e.to_string().lines().next().unwrap_or("bad usage").to_string();
            return Parsed::Exit { text: format!("stress: {first}"), code: EXIT_USAGE };
        }
    };
    if let Err(line) = validate(&cli) {
        return Parsed::Exit { text: format!("stress: error: {line}"), code: EXIT_USAGE };
    }
    Parsed::Run(Box::new(cli))
}

fn validate(cli: &Cli) -> Result<(), String> {
    if let Some(name) = cli.scenario.iter().find(|n| scenarios::find(n).is_none() && *n != "barrier-pairing") {
        return Err(format!("unknown scenario {name:?} (see --list)"));
    }
    if let Some(list) = cli.mutants.as_deref().filter(|m| *m != "all") {
        if let Some(bad) = list.split(',').find(|m| Mutant::from_name(m).is_none()) {
            return Err(format!("unknown mutant {bad:?} in --mutants (see --list)"));
        }
    }
    if let Some(n) = cli.iterations.filter(|n| *n == 0) {
        return Err(format!("--iterations must be at least 1, got {n}"));
    }
    if cli.depth == Some(0) {
        return Err("--depth must be at least 1".into());
    }
    if matches!(cli.scheduler, SchedulerKind::Loom | SchedulerKind::Dfs) && cli.mode == ModeKind::Threads {
        let s = if cli.scheduler == SchedulerKind::Loom { "loom" } else { "dfs" };
        return Err(format!("--scheduler {s} explores the model's schedules; --mode threads has none to explore"));
    }
    let unguided = matches!(cli.scheduler, SchedulerKind::Loom | SchedulerKind::Dfs) || cli.mode == ModeKind::Threads;
    if cli.explore == ExploreKind::Feedback && unguided {
        return Err(
            "--explore feedback mutates recorded schedules: it needs --scheduler pct or random, --mode model".into()
        );
    }
    if cli.scheduler == SchedulerKind::Loom {
        if cli.engine.is_some_and(|e| e != Engine::Fenced) {
            return Err("the loom model is the default engine's barrier pairing; it has no other --engine".into());
        }
        if cli.mutants.is_some() {
            return Err("--mutants runs each mutant's scenario; it cannot run under --scheduler loom".into());
        }
        if let Some(m) = cli.mutant.filter(|m| !LOOM_MUTANTS.contains(m)) {
            return Err(format!("the loom model has no switch for mutant {:?}", m.name()));
        }
    }
    if cli.engine == Some(Engine::C) {
        if cli.series.is_empty() && cli.replay.is_none() {
            return Err("--engine c compiles the series' own C: give it with --series PATH".into());
        }
        if cli.mode == ModeKind::Threads {
            return Err("--engine c runs under the model's scheduler only; it has no --mode threads".into());
        }
    } else if !cli.series.is_empty() && cli.replay.is_none() {
        return Err("--series is the input of --engine c".into());
    }
    if cli.series.len() > 2 {
        return Err(format!("--series takes one patch series, or a .c and its .h; got {} paths", cli.series.len()));
    }
    if cli.mutants.is_some() && cli.engine.is_some_and(|e| e != Engine::Fenced) {
        return Err(
            "--mutants scores the fenced design, whose only bugs are the mutants; run it without --engine".into()
        );
    }
    if cli.time_budget.is_some_and(|t| !(t.is_finite() && t > 0.0)) {
        return Err("--time-budget must be a positive number of seconds".into());
    }
    if !(cli.shrink_budget.is_finite() && (0.0..=3600.0).contains(&cli.shrink_budget)) {
        return Err("--shrink-budget must be between 0 and 3600 seconds".into());
    }
    if let Some(p) = cli.fault_rate.filter(|p| !(0.0..=1.0).contains(p)) {
        return Err(format!("--fault-rate must be a probability between 0 and 1, got {p}"));
    }
    Ok(())
}

impl Cli {
    /// The run's configuration: what this command line asks for, with
    /// `seed` as its base seed.
    pub fn config(&self, seed: u64, series: Option<SeriesRef>) -> Config {
        Config {
            series,
            scenario: self.scenario.join(","),
            scheduler: self.scheduler,
            explore: self.explore,
            depth: self.depth,
            mode: self.mode,
            max_steps: self.max_steps,
            world: Params {
                cpus: self.cpus.map_or(0, |c| c as usize),
                engine: self.engine.unwrap_or_default(),
                mutant: self.mutant,
                seed,
                fault_ppm: self.fault_ppm(),
                atc_inv_disabled: self.atc_inv_disabled.unwrap_or_default(),
                rwlock: self.rwlock,
                full_trace: false,
                stop_at_violation: false,
                size: None,
                skip_ops: 0,
            },
        }
    }

    /// Worker threads: `--jobs`, or one per core.
    pub fn jobs(&self) -> usize {
        self.jobs.map_or_else(|| std::thread::available_parallelism().map_or(1, usize::from), |j| j as usize)
    }

    /// `--fault-rate` in parts per million.
    pub fn fault_ppm(&self) -> Option<u32> {
        self.fault_rate.map(|p| (p * f64::from(engine::PPM)).round() as u32)
    }
}

/// The mutants the loom model of the barrier pairing can switch in.
pub const LOOM_MUTANTS: [Mutant; 2] = [Mutant::NoSmpMbInvRange, Mutant::PublishWithoutBarrier];

/// The mutants `--mutants` names, in catalogue order.
pub fn mutant_list(arg: &str) -> Vec<Mutant> {
    if arg == "all" {
        return Mutant::ALL.to_vec();
    }
    arg.split(',').filter_map(Mutant::from_name).collect()
}

/// The `--list` text: every scenario, then every mutant with the scenario
/// that catches it.
pub fn list() -> String {
    let mut out = String::from("scenarios:\n");
    for s in scenarios::CATALOGUE {
        let legacy = if s.multi_smmu { " [not legacy: one domain on several SMMUs]" } else { "" };
        out.push_str(&format!("  {:<18} {}{legacy}\n", s.name, s.about));
    }
    out.push_str(&format!(
        "  {:<18} {}\n",
        "barrier-pairing", "loom only (--scheduler loom): the smp_mb pairing of unmap vs attach"
    ));
    out.push_str("engines (--engine):\n");
    for (name, what) in [
        ("fenced", "default: the project's proposal: the series with the fixes of its later versions, ATS turned off only after the old entries are fenced (see README)"),
        ("v9", "seed 001's patches 1-7 as written, bugs included; findings/v9-known.json lists what stress finds in it"),
        ("legacy", "the kernel before the series: one SMMU per domain, a device list under a spinlock, ATS off in attach_prepare; findings/legacy-known.json lists what stress finds in it"),
        ("c", "the series' own C, extracted from --series PATH and compiled at run time, in v9's attach order; takes findings/v9-known.json"),
    ] {
        out.push_str(&format!("  {name:<18} {what}\n"));
    }
    out.push_str("mutants (caught by, as):\n");
    for m in Mutant::ALL {
        let (by, kind) = (scenarios::catcher(*m).name, m.expected_kind().name());
        out.push_str(&format!("  {:<36} {by:<18} {kind:<24} {}\n", m.name(), m.what()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit_code(args: &[&str]) -> (i32, String) {
        match parse(std::iter::once("stress").chain(args.iter().copied())) {
            Parsed::Run(_) => (-1, String::new()),
            Parsed::Exit { text, code } => (code, text),
        }
    }

    #[test]
    fn bad_input_is_one_line_and_exit_2() {
        for args in [
            &["--nonsense"][..],
            &["--seed", "x"],
            &["--scheduler", "fifo"],
            &["--shard", "4/4"],
            &["--shard", "1"],
            &["--jobs", "0"],
            &["--scenario", "no-such-thing"],
            &["--mutant", "no-such-bug"],
            &["--mutants", "no-such-bug"],
            &["--time-budget", "-1"],
            &["--mutant", "a", "--mutants", "all"],
            &["--fault-rate", "1.5"],
            &["--fault-rate", "-0.1"],
            &["--fault-rate", "NaN"],
            &["--cpus", "65"],
            &["--max-steps", "10"],
            &["--engine", "v10"],
            &["--atc-inv-disabled", "maybe"],
            &["--known"],
            &["--stop-at-new"],
            &["--explore", "aimless"],
            &["--explore", "feedback", "--scheduler", "dfs"],
            &["--explore", "feedback", "--mode", "threads"],
            &["--engine", "c"],
            &["--series", "x.patch"],
            &["--engine", "c", "--series", "x.patch", "--mode", "threads"],
            &["--engine", "v9", "--mutants", "all"],
            &["--engine", "c", "--series", "a", "--series", "b", "--series", "c"],
        ] {
            let (code, text) = exit_code(args);
            assert_eq!(code, EXIT_USAGE, "{args:?}");
            assert_eq!(text.trim_end().lines().count(), 1, "{args:?}: {text}");
            assert!(text.starts_with("stress: error: "), "{args:?}: {text}");
        }
    }

    #[test]
    fn help_exits_0_and_good_flags_run() {
        assert_eq!(exit_code(&["--help"]).0, EXIT_OK);
        assert_eq!(exit_code(&["--seed", "7", "--shard", "1/4", "--json"]).0, -1);
    }

    #[test]
    fn shard_parses() {
        assert_eq!(parse_shard("2/8"), Ok(Shard { index: 2, count: 8 }));
    }
}

//! What `stress` does with a parsed command line.

use crate::cli::{self, Cli, Parsed, EXIT_OK, EXIT_USAGE, EXIT_VIOLATION};
use crate::config::{Config, ModeKind, SchedulerKind, SeriesRef};
use crate::failure::{FailureFile, FORMAT};
use crate::known::Known;
use crate::report::{self, MutantRow, RunRow};
use crate::run::{self, Found, Plan, Race, RunStats};
use crate::shrink::shrink;
use engine::{Engine, Mutant};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use scenarios::{Params, Scenario, CATALOGUE};
use smmu_sync::plain::Mutex;
use smmu_sync::{enter, Backend};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `--known`, loaded once before any exploration.
static KNOWN: std::sync::OnceLock<Known> = std::sync::OnceLock::new();
const LOOM_SCENARIO: &str = "barrier-pairing";

pub fn main<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match cli::parse(args) {
        Parsed::Run(cli) => cli,
        Parsed::Exit { text, code } => {
            if code == EXIT_OK {
                print!("{text}");
            } else {
                eprintln!("{text}");
            }
            return code;
        }
    };
    if cli.list {
        print!("{}", cli::list());
        return EXIT_OK;
    }
    if env!("STRESS_OPT_LEVEL") == "0" {
        eprintln!(
            "stress: warning: this build is not optimised (opt-level 0): every schedule runs about twenty times \
             slower than under cargo run --release"
        );
    }
    // A failure must reach disk: find out now, not when one is found.
    if let Err(e) = writable(&cli.out) {
        eprintln!("stress: error: cannot write failure files to {}: {e}", cli.out.display());
        return EXIT_USAGE;
    }
    run::install_panic_hook();
    // The replay file, read first: its engine and series decide what to load.
    let replaying = match cli.replay.as_deref().map(FailureFile::load).transpose() {
        Ok(f) => f,
        Err(msg) => {
            eprintln!("stress: error: {msg}");
            return EXIT_USAGE;
        }
    };
    let engine = replaying.as_ref().map_or(cli.engine.unwrap_or_default(), |f| f.config.world.engine);
    let series = match load_series(&cli, engine, replaying.as_ref().and_then(|f| f.config.series.as_ref())) {
        Ok(s) => s,
        Err(msg) => {
            eprintln!("stress: error: {msg}");
            return EXIT_USAGE;
        }
    };
    if let Some(m) = cli.mutant.filter(|m| !engine.honours(*m)) {
        eprintln!(
            "stress: error: mutant {} breaks a line the {} design does not run (see --list)",
            m.name(),
            engine.name()
        );
        return EXIT_USAGE;
    }
    if let Some(path) = &cli.known {
        match Known::load(path) {
            Ok(k) if k.engine != engine.name() && k.engine != engine.known_as().name() => {
                eprintln!(
                    "stress: error: {} lists findings of --engine {}, this run is {}",
                    path.display(),
                    k.engine,
                    engine.name()
                );
                return EXIT_USAGE;
            }
            Ok(k) => drop(KNOWN.set(k)),
            Err(msg) => {
                eprintln!("stress: error: {msg}");
                return EXIT_USAGE;
            }
        }
    }
    if let (Some(path), Some(f)) = (&cli.replay, replaying) {
        return replay_file(&cli, path, f);
    }
    // Text made from a failure file, to stdout.
    let from_file = [
        (&cli.report, crate::lore::report as fn(&Path) -> Result<String, String>),
        (&cli.emit_test, crate::regression::emit),
    ];
    if let Some((path, make)) = from_file.into_iter().find_map(|(p, make)| p.as_deref().map(|p| (p, make))) {
        return match make(path) {
            Ok(text) => {
                print!("{text}");
                EXIT_OK
            }
            Err(msg) => {
                eprintln!("stress: error: {msg}");
                EXIT_USAGE
            }
        };
    }
    let seed =
        cli.seed.unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64));
    let config = cli.config(seed, series);
    eprintln!("stress: {config}");
    match &cli.mutants {
        Some(list) => mutation_score(&cli, &config, list),
        None => stress(&cli, &config),
    }
}

/// For `--engine c`: read, extract, compile and install the series (from
/// `--series`, or the paths a replay file recorded), and say which
/// functions came from the input and which from the glue. A replay needs
/// the series it recorded: the same text, by hash.
fn load_series(cli: &Cli, engine: Engine, recorded: Option<&SeriesRef>) -> Result<Option<SeriesRef>, String> {
    if engine != Engine::C {
        return Ok(None);
    }
    let paths: Vec<PathBuf> = match (cli.series.is_empty(), recorded) {
        (false, _) => cli.series.clone(),
        (true, Some(r)) => r.paths.iter().map(PathBuf::from).collect(),
        (true, None) => return Err("--engine c compiles the series' own C: give it with --series PATH".into()),
    };
    let started = Instant::now();
    let s = engine::c::Series::load(&paths)?;
    let this = SeriesRef { paths: s.paths.clone(), hash: format!("{:016x}", s.hash), from_glue: s.from_glue.clone() };
    if let Some(r) = recorded.filter(|r| r.hash != this.hash) {
        return Err(format!(
            "replay file was recorded against series {} (hash {}); {} has hash {}",
            r.paths.join(" + "),
            r.hash,
            this.paths.join(" + "),
            this.hash
        ));
    }
    eprintln!(
        "stress: series {} (hash {}) compiled in {:.1} s; from the input ({}): {}",
        this.paths.join(" + "),
        this.hash,
        started.elapsed().as_secs_f64(),
        s.from_input.len(),
        s.from_input.join(", ")
    );
    eprintln!("stress: from the project's glue ({}): {}", s.from_glue.len(), s.from_glue.join(", "));
    engine::c::install(s);
    Ok(Some(this))
}

/// Create `dir` and prove a file can be written in it.
fn writable(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(format!(".stress-probe-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}

/// The seed of chunk `chunk` of scenario `name`: independent streams, so a
/// shard or a worker can start anywhere.
fn chunk_seed(base: u64, name: &str, chunk: u64) -> u64 {
    let name_hash = crate::run::fnv(name.as_bytes());
    ChaCha8Rng::seed_from_u64(base ^ name_hash.rotate_left(17) ^ chunk.wrapping_mul(0x9e37_79b9_7f4a_7c15)).next_u64()
}

/// A run's result with where its failure was.
struct Explored {
    stats: RunStats,
    chunk_seed: u64,
    /// Index of the failing schedule in the whole run.
    index: u64,
}

/// Explore `total` schedules of the scenario `cfg` names in chunks, over
/// `cli.jobs` workers, keeping only this shard's chunks; stop everyone at
/// the first failure, unless `--known` says to explore past it; with
/// `want`, at the first failure of that kind.
fn explore(
    cli: &Cli,
    cfg: &Config,
    total: u64,
    deadline: Option<Instant>,
    pb: &ProgressBar,
    want: Option<hwmodel::ViolationKind>,
) -> Explored {
    let sc = cfg.scenario().expect("a scenario the command line named");
    let params = cfg.world;
    let chunk_len = cfg.chunk();
    let chunks: Vec<u64> =
        (0..total.div_ceil(chunk_len)).filter(|i| cli.shard.is_none_or(|s| i % s.count == s.index)).collect();
    let next = AtomicUsize::new(0);
    // The earliest chunk that failed: no chunk starts after one has, and a
    // running chunk after it gives up (`run::Race`).
    let first_failed = Arc::new(AtomicU64::new(u64::MAX));
    let past_new = KNOWN.get().is_some() && !cli.stop_at_new;
    let results = Mutex::new(Vec::new());
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..cli.jobs() {
            s.spawn(|| loop {
                let k = next.fetch_add(1, Relaxed);
                if k >= chunks.len()
                    || first_failed.load(Relaxed) != u64::MAX
                    || deadline.is_some_and(|d| Instant::now() >= d)
                {
                    break;
                }
                let chunk = chunks[k];
                let n = chunk_len.min(total - chunk * chunk_len);
                let seed = chunk_seed(params.seed, sc.name, chunk);
                let race = Race::new(first_failed.clone(), chunk);
                let plan = Plan {
                    scheduler: cfg.scheduler,
                    seed,
                    schedules: n,
                    depth: cfg.depth_of(chunk),
                    deadline,
                    max_steps: cfg.max_steps,
                    known: KNOWN.get(),
                    past_new,
                    policy: (None, 0),
                    explore: cfg.explore,
                    want,
                    race: Some(race.clone()),
                    fresh: cfg.fresh_parts(chunk, |c| chunk_seed(params.seed, sc.name, c)),
                };
                let r = match cfg.mode {
                    ModeKind::Model => run::explore(sc, params, plan),
                    ModeKind::Threads => run::threads(sc, params, n, &plan),
                };
                if r.found.is_some() && !past_new {
                    race.fail();
                }
                pb.inc(r.schedules);
                results.lock().push((chunk, seed, r));
            });
        }
    });
    let mut results = results.into_inner();
    results.sort_by_key(|r| r.0);
    let mut out = Explored { stats: RunStats::default(), chunk_seed: 0, index: 0 };
    for (chunk, seed, r) in results {
        let s = &mut out.stats;
        s.absorb(&r, chunk * chunk_len);
        if s.found.is_none() {
            if let Some(f) = r.found {
                out.index = chunk * chunk_len + f.index;
                out.chunk_seed = seed;
                s.found = Some(Found { index: out.index, ..f });
            }
        }
    }
    out.stats.elapsed = start.elapsed();
    out
}

fn progress(cli: &Cli, total: u64) -> ProgressBar {
    if cli.json {
        return ProgressBar::hidden();
    }
    // indicatif draws only when stderr is a terminal.
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} schedules {msg}").unwrap_or(ProgressStyle::default_bar()),
    );
    pb
}

/// Everything about a failure worth writing down, in file form: the
/// configuration it ran under, with its chunk's PCT depth and `world` (a
/// shrinker's narrower one, if shrunk).
fn failure_file(cfg: &Config, world: Params, e: &Explored, f: &Found, shrunk: bool) -> FailureFile {
    let config = Config { depth: Some(cfg.depth_of(e.index / cfg.chunk())), world, ..cfg.clone() };
    let replayable = cfg.mode == ModeKind::Model && cfg.scheduler != SchedulerKind::Loom;
    FailureFile {
        format: FORMAT,
        version: env!("CARGO_PKG_VERSION").into(),
        config,
        chunk_seed: e.chunk_seed,
        schedule_index: e.index,
        kind: f.kind.clone(),
        explanation: f.explanation.clone(),
        detail: f.detail.clone(),
        signature: f.signature.clone(),
        trace_hash: f.trace_hash,
        preemptions: f.schedule.preemptions(),
        shrunk,
        odds: f.odds,
        schedule: replayable.then(|| f.schedule.clone()),
        trace: f.trace.clone(),
    }
}

fn print_failure(f: &Found) {
    eprintln!("\nviolation: {}\n  {}\n  signature: {}\n  {}", f.kind, f.detail, f.signature, f.explanation);
}

/// The story as a text timeline, one column per actor.
fn print_timeline(f: &Found) {
    if f.trace.is_empty() {
        return;
    }
    let verdict = f.trace.last().map_or(0, |l| l.seq);
    eprintln!("  timeline (* the story, !! the verdict):");
    for line in crate::picture::text(&f.trace, &f.detail, verdict).lines() {
        eprintln!("    {line}");
    }
}

/// Write the failure (first, before anything else can go wrong), replay it
/// with every event kept to prove it reproduces and to tell the whole story,
/// then shrink it and write the shrunk copy with its picture. `tell` prints
/// all of that as it goes. A loom failure (`replay_with` false) replays by
/// re-running the model.
fn record_failure(cli: &Cli, cfg: &Config, e: &Explored, tell: bool) -> report::FailureRow {
    let f = e.stats.found.as_ref().expect("a failure");
    let params = cfg.world;
    let file = failure_file(cfg, params, e, f, false);
    let written = file.write(&cli.out);
    let path = written.as_ref().map_or_else(|err| format!("(not written: {err})"), |p| p.display().to_string());
    if tell {
        print_failure(f);
        eprintln!("  failure file: {path}");
    }
    let mut row = report::FailureRow::new(f, e.index, path);
    let (Ok(sc), Some(_), Ok(path)) = (cfg.scenario(), &file.schedule, written) else {
        if tell {
            print_timeline(f);
        }
        return row;
    };
    let full = Params { full_trace: true, ..params };
    let again = run::replay(sc, full, &f.schedule, cfg.max_steps, KNOWN.get());
    let g = again.failure(&f.signature).filter(|g| g.kind == f.kind && g.trace_hash == f.trace_hash);
    if tell {
        let same =
            if g.is_some() { "same violation, same trace hash" } else { "DIVERGED: the model is not deterministic" };
        eprintln!("  replayed: {same}");
    }
    row.replay_matches = Some(g.is_some());
    if let Some(g) = g {
        // The whole story, in place of the tail the exploration kept.
        let _ = FailureFile { trace: g.trace.clone(), ..file.clone() }.write(&cli.out);
    }
    let budget = Duration::from_secs_f64(cli.shrink_budget);
    let started = Instant::now();
    let (p2, shrunk) = shrink(sc, params, e.stats.clone(), budget, cfg.max_steps);
    row.shrink_seconds = Some(started.elapsed().as_secs_f64());
    let g = shrunk.found.as_ref().expect("shrink keeps a failure");
    let told = run::replay(sc, Params { full_trace: true, ..p2 }, &g.schedule, cfg.max_steps, None);
    let Some(g) = told.found.as_ref().filter(|t| t.kind == g.kind && t.trace_hash == g.trace_hash) else {
        eprintln!("  shrunk schedule DIVERGED on replay: the model is not deterministic; not written");
        return row;
    };
    let e2 = Explored { stats: shrunk.clone(), chunk_seed: e.chunk_seed, index: e.index };
    let sfile = failure_file(cfg, p2, &e2, g, true);
    match sfile.write(&cli.out) {
        Ok(p) => {
            if tell {
                eprintln!(
                    "  shrunk in {:.1} s: {} preemptions -> {}, {} steps -> {}, {} CPUs -> {}: {}",
                    started.elapsed().as_secs_f64(),
                    f.schedule.preemptions(),
                    g.schedule.preemptions(),
                    f.schedule.steps,
                    g.schedule.steps,
                    params.cpus,
                    p2.cpus,
                    p.display()
                );
            }
            row.shrunk_file = Some(p.display().to_string());
            row.shrunk_preemptions = Some(g.schedule.preemptions());
            row.shrunk_steps = Some(g.schedule.steps);
            row.picture = sfile.write_picture(&p).ok().map(|p| p.display().to_string());
        }
        Err(err) => eprintln!("  shrunk copy not written: {err}"),
    }
    if row.picture.is_none() {
        row.picture = file.write_picture(&path).ok().map(|p| p.display().to_string());
    }
    if tell {
        if let Some(pic) = &row.picture {
            eprintln!("  picture: {pic}");
        }
        print_timeline(g);
    }
    row
}

/// Signatures a run records at most: a cause that changes with every
/// schedule would otherwise shrink forever.
const MAX_RECORDED: usize = 32;

/// The first failure of each signature a `--known` run saw, written and
/// shrunk like the run's own (`failure`, already recorded): each one's
/// replay file (shrunk, else the original), by signature. New ones are
/// told as they are.
fn record_signatures(
    cli: &Cli,
    cfg: &Config,
    stats: &RunStats,
    failure: Option<&report::FailureRow>,
) -> BTreeMap<String, String> {
    let mut replays = BTreeMap::new();
    if let Some(f) = failure {
        replays.insert(f.signature.clone(), f.shrunk_file.clone().unwrap_or_else(|| f.replay_file.clone()));
    }
    for (sig, seen) in &stats.signatures {
        if replays.len() >= MAX_RECORDED {
            break;
        }
        if replays.contains_key(sig) {
            continue;
        }
        let index = seen.first.index;
        let only = RunStats { found: Some(seen.first.clone()), ..RunStats::default() };
        let e = Explored { stats: only, chunk_seed: seen.chunk_seed, index };
        let row = record_failure(cli, cfg, &e, seen.id.is_none());
        replays.insert(sig.clone(), row.shrunk_file.unwrap_or(row.replay_file));
    }
    replays
}

/// Scenarios the command line selects, plus a note for each one skipped.
fn selected(cli: &Cli, cfg: &Config) -> Vec<&'static Scenario> {
    let all: Vec<&'static Scenario> = if !cli.scenario.is_empty() {
        cli.scenario.iter().filter_map(|n| scenarios::find(n)).collect()
    } else if let Some(m) = cfg.world.mutant {
        vec![scenarios::catcher(m)]
    } else {
        CATALOGUE.iter().collect()
    };
    all.into_iter()
        .filter(|s| {
            let ok = s.supports(cfg.world.engine);
            if !ok {
                eprintln!(
                    "stress: skipping {}: the {} design cannot put one domain on several SMMUs",
                    s.name,
                    cfg.world.engine.name()
                );
            }
            ok
        })
        .collect()
}

fn stress(cli: &Cli, config: &Config) -> i32 {
    if config.scheduler == SchedulerKind::Loom || cli.scenario.iter().any(|s| s == LOOM_SCENARIO) {
        return loom_run(cli, config);
    }
    let scenarios = selected(cli, config);
    let total_of = |sc: &Scenario| cli.iterations.unwrap_or(sc.schedules);
    let pb = progress(cli, scenarios.iter().map(|sc| total_of(sc)).sum());
    let deadline = cli.time_budget.map(|s| Instant::now() + Duration::from_secs_f64(s));
    let mut rows = Vec::new();
    for sc in &scenarios {
        pb.set_message(sc.name);
        let cfg = config.for_scenario(sc);
        let e = explore(cli, &cfg, total_of(sc), deadline, &pb, None);
        let failure = e.stats.found.is_some().then(|| pb.suspend(|| record_failure(cli, &cfg, &e, true)));
        let replays = pb.suspend(|| record_signatures(cli, &cfg, &e.stats, failure.as_ref()));
        rows.push(RunRow::new(&cfg, &e.stats, failure, &replays));
    }
    pb.finish_and_clear();
    report::runs(cli.json, config.world.seed, &rows);
    if rows.iter().any(|r| r.failure.is_some()) {
        EXIT_VIOLATION
    } else {
        EXIT_OK
    }
}

/// The loom model of the barrier pairing: every C11 execution of it.
fn loom_run(cli: &Cli, config: &Config) -> i32 {
    let mutant = config.world.mutant;
    let smp_mb = mutant != Some(Mutant::NoSmpMbInvRange);
    // The default engine's attach side: dma_wmb before the STE/CD.
    let attach = if mutant == Some(Mutant::PublishWithoutBarrier) {
        scenarios::AttachBarrier::None
    } else {
        scenarios::AttachBarrier::DmaWmb
    };
    let executions = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let start = Instant::now();
    let n = executions.clone();
    let r = std::panic::catch_unwind(move || {
        loom::model(move || {
            n.fetch_add(1, Relaxed);
            let _b = enter(Backend::Loom);
            scenarios::barrier_pairing(smp_mb, attach);
        })
    });
    let stats = RunStats {
        schedules: executions.load(Relaxed),
        elapsed: start.elapsed(),
        found: r.err().map(|p| Found::from_panic(0, run::Recorded::default(), run::panic_message(p.as_ref()), &[])),
        ..RunStats::default()
    };
    let cfg = Config {
        scenario: LOOM_SCENARIO.into(),
        scheduler: SchedulerKind::Loom,
        world: Params { cpus: 3, ..config.world },
        ..config.clone()
    };
    let e = Explored { index: stats.schedules.saturating_sub(1), stats, chunk_seed: 0 };
    let failure = e.stats.found.is_some().then(|| record_failure(cli, &cfg, &e, true));
    report::runs(cli.json, cfg.world.seed, &[RunRow::new(&cfg, &e.stats, failure, &BTreeMap::new())]);
    if e.stats.found.is_some() {
        EXIT_VIOLATION
    } else {
        EXIT_OK
    }
}

fn mutation_score(cli: &Cli, config: &Config, list: &str) -> i32 {
    let mutants = cli::mutant_list(list);
    // Without --iterations a mutant gets a fifth of its scenario's default
    // length: 20 000 schedules of a hand-written one, 200 000 of swarm.
    let budget = |sc: &Scenario| cli.iterations.unwrap_or(sc.schedules / 5);
    // `--scenario S` runs every mutant against S alone; by default each
    // runs against the scenario written for it.
    let against: Vec<&'static Scenario> = cli.scenario.iter().filter_map(|n| scenarios::find(n)).collect();
    let runs: Vec<(Mutant, &'static Scenario)> = mutants
        .iter()
        .flat_map(|m| {
            let scs = if against.is_empty() { vec![scenarios::catcher(*m)] } else { against.clone() };
            scs.into_iter().map(move |sc| (*m, sc))
        })
        .collect();
    let pb = progress(cli, runs.iter().map(|(_, sc)| budget(sc)).sum());
    let mut rows = Vec::new();
    for (m, sc) in runs {
        pb.set_message(m.name());
        let world = Params { mutant: Some(m), ..config.world };
        let cfg = Config { world, ..config.clone() }.for_scenario(sc);
        let deadline = cli.time_budget.map(|s| Instant::now() + Duration::from_secs_f64(s));
        // Explored past failures of other kinds: those are reported, and
        // written down, but they are not the bug the switch plants.
        // (Threads mode, and a panic that unwinds out of shuttle, report
        // any kind as the run's failure: the kind decides.)
        let mut e = explore(cli, &cfg, budget(sc), deadline, &pb, Some(m.expected_kind()));
        if e.stats.found.is_none() {
            if let Some((other, seed)) = e.stats.other.take() {
                (e.index, e.chunk_seed) = (other.index, seed);
                e.stats.found = Some(other);
            }
        }
        let kind = e.stats.found.as_ref().map(|f| f.kind.clone());
        let caught = kind.as_deref() == Some(m.expected_kind().name());
        let failure = kind.is_some().then(|| record_failure(cli, &cfg, &e, false));
        rows.push(MutantRow {
            name: m.name(),
            scenario: sc.name,
            caught,
            schedules_to_failure: kind.is_some().then_some(e.index + 1),
            seconds: e.stats.elapsed.as_secs_f64(),
            kind,
            expected_kind: m.expected_kind().name(),
            failure,
        });
    }
    pb.finish_and_clear();
    report::mutants(cli.json, &rows);
    if rows.iter().all(|r| r.caught) {
        EXIT_OK
    } else {
        EXIT_VIOLATION
    }
}

fn replay_file(cli: &Cli, path: &Path, f: FailureFile) -> i32 {
    let bad = |msg: String| {
        eprintln!("stress: error: {msg}");
        EXIT_USAGE
    };
    let w = &f.config.world;
    if let Some(e) = cli.engine.filter(|e| *e != w.engine) {
        return bad(format!("replay file was recorded with --engine {}, not {}", w.engine.name(), e.name()));
    }
    if let Some(m) = cli.atc_inv_disabled.filter(|m| *m != w.atc_inv_disabled) {
        return bad(format!(
            "replay file was recorded with --atc-inv-disabled {}, not {}",
            w.atc_inv_disabled.name(),
            m.name()
        ));
    }
    if let Some(k) = cli.rwlock.filter(|k| Some(*k) != w.rwlock) {
        let recorded = w.rwlock.map_or("(the scenario's choice)", |k| k.name());
        return bad(format!("replay file was recorded with --rwlock {recorded}, not {}", k.name()));
    }
    eprintln!("stress: {}", f.config);
    if f.config.scheduler == SchedulerKind::Loom {
        return loom_run(cli, &f.config);
    }
    if let Some(schedule) = &f.schedule {
        eprintln!("stress: replaying {} ({} scheduling steps)", path.display(), schedule.steps);
    }
    let r = match f.replay(KNOWN.get()) {
        Ok(r) => r,
        Err(msg) => return bad(msg),
    };
    match f.verdict(&r) {
        Ok(g) => {
            print_failure(g);
            print_timeline(g);
            eprintln!("  reproduced: same violation, same trace hash {:#x}", g.trace_hash);
            let e = Explored { stats: r.stats.clone(), chunk_seed: f.chunk_seed, index: f.schedule_index };
            let mut row = report::FailureRow::new(g, f.schedule_index, path.display().to_string());
            row.replay_matches = Some(true);
            report::runs(cli.json, w.seed, &[RunRow::new(&f.config, &e.stats, Some(row), &BTreeMap::new())]);
            EXIT_VIOLATION
        }
        Err(msg) => bad(msg),
    }
}

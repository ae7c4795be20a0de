//! What `stress` does with a parsed command line.

use crate::cli::{
    self, Cli, EngineKind, ModeKind, Parsed, RwLockChoice, SchedulerKind, EXIT_OK, EXIT_USAGE, EXIT_VIOLATION,
};
use crate::failure::{FailureFile, FORMAT};
use crate::known::Known;
use crate::report::{self, MutantRow, RunRow};
use crate::run::{self, Found, Plan, RunStats};
use crate::shrink::shrink;
use engine::{Engine, Mutant};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use scenarios::{Params, Scenario, CATALOGUE};
use smmu_sync::plain::Mutex;
use smmu_sync::{enter, Backend};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Schedules explored under one seed; the unit of `--jobs` and `--shard`.
pub const CHUNK: u64 = 500;
/// PCT depths the chunks of a run cycle through when `--depth` is not
/// given. A generated world runs ten threads or more, and an ordering bug
/// between three of them needs several priority changes among the rest:
/// depths 10 and 20 find the swarm's bugs several times faster than 3 to
/// 7 do, while the hand-written scenarios still catch theirs at any depth.
const DEPTHS: [usize; 5] = [10, 20, 3, 40, 5];
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
    // A failure must reach disk: find out now, not when one is found.
    if let Err(e) = writable(&cli.out) {
        eprintln!("stress: error: cannot write failure files to {}: {e}", cli.out.display());
        return EXIT_USAGE;
    }
    run::install_panic_hook();
    if let Some(path) = &cli.known {
        match Known::load(path) {
            Ok(k) if k.engine != report::name(cli.engine()) => {
                eprintln!(
                    "stress: error: {} lists findings of --engine {}, this run is {}",
                    path.display(),
                    k.engine,
                    report::name(cli.engine())
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
    if let Some(path) = &cli.replay {
        return replay_file(&cli, path);
    }
    if let Some(path) = &cli.emit_test {
        return match crate::regression::emit(path) {
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
    eprintln!("stress: seed {seed}");
    match &cli.mutants {
        Some(list) => mutation_score(&cli, seed, list),
        None => stress(&cli, seed),
    }
}

/// Create `dir` and prove a file can be written in it.
fn writable(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(format!(".stress-probe-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}

pub(crate) fn engine_of(k: EngineKind) -> Engine {
    match k {
        EngineKind::Fenced => Engine::Fenced,
        EngineKind::V9 => Engine::V9,
        EngineKind::Legacy => Engine::Legacy,
    }
}

/// The seed of chunk `chunk` of scenario `name`: independent streams, so a
/// shard or a worker can start anywhere.
fn chunk_seed(base: u64, name: &str, chunk: u64) -> u64 {
    let name_hash = crate::run::fnv(name.as_bytes());
    ChaCha8Rng::seed_from_u64(base ^ name_hash.rotate_left(17) ^ chunk.wrapping_mul(0x9e37_79b9_7f4a_7c15)).next_u64()
}

/// The PCT depth of chunk `chunk`.
fn depth_of(cli: &Cli, chunk: u64) -> usize {
    cli.depth.unwrap_or(DEPTHS[chunk as usize % DEPTHS.len()])
}

/// A run's result with where its failure was.
struct Explored {
    stats: RunStats,
    chunk_seed: u64,
    /// Index of the failing schedule in the whole run.
    index: u64,
}

/// Explore `total` schedules of `sc` in chunks, over `cli.jobs` workers,
/// keeping only this shard's chunks; stop everyone at the first failure.
fn explore(
    cli: &Cli,
    sc: &'static Scenario,
    params: Params,
    total: u64,
    deadline: Option<Instant>,
    pb: &ProgressBar,
) -> Explored {
    let chunks: Vec<u64> =
        (0..total.div_ceil(CHUNK)).filter(|i| cli.shard.is_none_or(|s| i % s.count == s.index)).collect();
    let (next, stop) = (AtomicUsize::new(0), AtomicBool::new(false));
    let results = Mutex::new(Vec::new());
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..cli.jobs() {
            s.spawn(|| loop {
                let k = next.fetch_add(1, Relaxed);
                if k >= chunks.len() || stop.load(Relaxed) || deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let chunk = chunks[k];
                let n = CHUNK.min(total - chunk * CHUNK);
                let seed = chunk_seed(params.seed, sc.name, chunk);
                let plan = Plan {
                    scheduler: cli.scheduler,
                    seed,
                    schedules: n,
                    depth: depth_of(cli, chunk),
                    deadline,
                    max_steps: cli.max_steps,
                    known: KNOWN.get(),
                    policy: (None, 0),
                };
                let r = match cli.mode {
                    ModeKind::Model => run::explore(sc, params, plan),
                    ModeKind::Threads => run::threads(sc, params, n, &plan),
                };
                stop.fetch_or(r.found.is_some(), Relaxed);
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
        s.absorb(&r);
        if s.found.is_none() {
            if let Some(f) = r.found {
                out.index = chunk * CHUNK + f.index;
                out.chunk_seed = seed;
                s.found = Some(f);
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

/// Everything about a failure worth writing down, in file form.
fn failure_file(cli: &Cli, sc: &str, params: Params, e: &Explored, f: &Found, shrunk: bool) -> FailureFile {
    let (stops_at_violation, size, skip_ops) = (params.stop_at_violation, params.size, params.skip_ops);
    FailureFile {
        format: FORMAT,
        version: env!("CARGO_PKG_VERSION").into(),
        scenario: sc.into(),
        seed: params.seed,
        chunk_seed: e.chunk_seed,
        scheduler: report::name(cli.scheduler),
        engine: report::name(params.engine),
        atc_inv_disabled: report::name(cli.atc_mode()),
        rwlock: cli.rwlock.map(report::name),
        mode: report::name(cli.mode),
        mutant: params.mutant.map(|m| m.name().into()),
        cpus: params.cpus,
        fault_ppm: params.fault_ppm,
        max_steps: cli.max_steps,
        depth: depth_of(cli, e.index / CHUNK),
        schedule_index: e.index,
        kind: f.kind.clone(),
        explanation: f.explanation.clone(),
        detail: f.detail.clone(),
        trace_hash: f.trace_hash,
        preemptions: f.schedule.preemptions(),
        shrunk,
        stops_at_violation,
        size,
        skip_ops,
        schedule: (cli.mode == ModeKind::Model && cli.scheduler != SchedulerKind::Loom).then(|| f.schedule.clone()),
        trace: f.trace.clone(),
    }
}

fn print_failure(f: &Found) {
    eprintln!("\nviolation: {}\n  {}\n  {}", f.kind, f.detail, f.explanation);
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
/// all of that as it goes. `sc` is `None` for loom, whose failures replay by
/// re-running the model.
fn record_failure(
    cli: &Cli,
    name: &str,
    sc: Option<&'static Scenario>,
    params: Params,
    e: &Explored,
    tell: bool,
) -> report::FailureRow {
    let f = e.stats.found.as_ref().expect("a failure");
    let file = failure_file(cli, name, params, e, f, false);
    let written = file.write(&cli.out);
    let path = written.as_ref().map_or_else(|err| format!("(not written: {err})"), |p| p.display().to_string());
    if tell {
        print_failure(f);
        eprintln!("  failure file: {path}");
    }
    let mut row = report::FailureRow::new(f, e.index, path);
    let (Some(sc), Some(_), Ok(path)) = (sc, &file.schedule, written) else {
        if tell {
            print_timeline(f);
        }
        return row;
    };
    let full = Params { full_trace: true, ..params };
    let again = run::replay(sc, full, &f.schedule, cli.max_steps, KNOWN.get());
    let g = again.found.as_ref().filter(|g| g.kind == f.kind && g.trace_hash == f.trace_hash);
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
    let (p2, shrunk) = shrink(sc, params, e.stats.clone(), budget, cli.max_steps);
    row.shrink_seconds = Some(started.elapsed().as_secs_f64());
    let g = shrunk.found.as_ref().expect("shrink keeps a failure");
    let told = run::replay(sc, Params { full_trace: true, ..p2 }, &g.schedule, cli.max_steps, None);
    let Some(g) = told.found.as_ref().filter(|t| t.kind == g.kind && t.trace_hash == g.trace_hash) else {
        eprintln!("  shrunk schedule DIVERGED on replay: the model is not deterministic; not written");
        return row;
    };
    let e2 = Explored { stats: shrunk.clone(), chunk_seed: e.chunk_seed, index: e.index };
    let sfile = failure_file(cli, sc.name, p2, &e2, g, true);
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

/// Scenarios the command line selects, plus a note for each one skipped.
fn selected(cli: &Cli, mutant: Option<Mutant>, engine: Engine) -> Vec<&'static Scenario> {
    let all: Vec<&'static Scenario> = if !cli.scenario.is_empty() {
        cli.scenario.iter().filter_map(|n| scenarios::find(n)).collect()
    } else if let Some(m) = mutant {
        vec![scenarios::catcher(m)]
    } else {
        CATALOGUE.iter().collect()
    };
    all.into_iter()
        .filter(|s| {
            let ok = s.supports(engine);
            if !ok {
                eprintln!("stress: skipping {}: the legacy design cannot put one domain on several SMMUs", s.name);
            }
            ok
        })
        .collect()
}

fn stress(cli: &Cli, seed: u64) -> i32 {
    let mutant = cli.mutant.as_deref().and_then(Mutant::from_name);
    let engine = engine_of(cli.engine());
    if cli.scheduler == SchedulerKind::Loom || cli.scenario.iter().any(|s| s == LOOM_SCENARIO) {
        return loom_run(cli, seed, mutant);
    }
    let scenarios = selected(cli, mutant, engine);
    let total_of = |sc: &Scenario| cli.iterations.unwrap_or(sc.schedules);
    let pb = progress(cli, scenarios.iter().map(|sc| total_of(sc)).sum());
    let deadline = cli.time_budget.map(|s| Instant::now() + Duration::from_secs_f64(s));
    let mut rows = Vec::new();
    for sc in &scenarios {
        pb.set_message(sc.name);
        let params = params_for(cli, sc, engine, mutant, seed);
        let e = explore(cli, sc, params, total_of(sc), deadline, &pb);
        let failure =
            e.stats.found.is_some().then(|| pb.suspend(|| record_failure(cli, sc.name, Some(sc), params, &e, true)));
        rows.push(RunRow::new(sc.name, seed, cli, params, &e.stats, failure));
    }
    pb.finish_and_clear();
    report::runs(cli, seed, &rows);
    if rows.iter().any(|r| r.failure.is_some()) {
        EXIT_VIOLATION
    } else {
        EXIT_OK
    }
}

fn loom_run(cli: &Cli, seed: u64, mutant: Option<Mutant>) -> i32 {
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
        found: r.err().map(|p| Found::from_panic(0, run::Recorded::default(), run::panic_message(p.as_ref()))),
        ..RunStats::default()
    };
    let params = Params {
        cpus: 3,
        engine: Engine::Fenced,
        mutant,
        seed,
        fault_ppm: None,
        atc_inv_disabled: cli.atc_mode().model(),
        rwlock: None,
        full_trace: false,
        stop_at_violation: false,
        size: None,
        skip_ops: 0,
    };
    let e = Explored { index: stats.schedules.saturating_sub(1), stats, chunk_seed: 0 };
    let failure = e.stats.found.is_some().then(|| record_failure(cli, LOOM_SCENARIO, None, params, &e, true));
    report::runs(cli, seed, &[RunRow::new(LOOM_SCENARIO, seed, cli, params, &e.stats, failure)]);
    if e.stats.found.is_some() {
        EXIT_VIOLATION
    } else {
        EXIT_OK
    }
}

/// What one scenario runs with under this command line.
fn params_for(cli: &Cli, sc: &Scenario, engine: Engine, mutant: Option<Mutant>, seed: u64) -> Params {
    Params {
        cpus: cli.cpus.map_or(sc.cpus, |c| c as usize),
        engine,
        mutant,
        seed,
        fault_ppm: cli.fault_ppm(),
        atc_inv_disabled: cli.atc_mode().model(),
        rwlock: cli.rwlock.map(RwLockChoice::model),
        full_trace: false,
        stop_at_violation: false,
        size: None,
        skip_ops: 0,
    }
}

fn mutation_score(cli: &Cli, seed: u64, list: &str) -> i32 {
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
        let params = params_for(cli, sc, Engine::Fenced, Some(m), seed);
        let deadline = cli.time_budget.map(|s| Instant::now() + Duration::from_secs_f64(s));
        let e = explore(cli, sc, params, budget(sc), deadline, &pb);
        let caught = e.stats.found.is_some();
        let failure = caught.then(|| record_failure(cli, sc.name, Some(sc), params, &e, false));
        rows.push(MutantRow {
            name: m.name(),
            scenario: sc.name,
            caught,
            schedules_to_failure: caught.then_some(e.index + 1),
            seconds: e.stats.elapsed.as_secs_f64(),
            kind: e.stats.found.as_ref().map(|f| f.kind.clone()),
            failure,
        });
    }
    pb.finish_and_clear();
    report::mutants(cli, &rows);
    if rows.iter().all(|r| r.caught) {
        EXIT_OK
    } else {
        EXIT_VIOLATION
    }
}

fn replay_file(cli: &Cli, path: &Path) -> i32 {
    let bad = |msg: String| {
        eprintln!("stress: error: {msg}");
        EXIT_USAGE
    };
    let f = match FailureFile::load(path) {
        Ok(f) => f,
        Err(msg) => return bad(msg),
    };
    let set = match f.setting() {
        Ok(s) => s,
        Err(msg) => return bad(msg),
    };
    if let Some(k) = cli.engine.filter(|k| *k != set.engine) {
        return bad(format!("replay file was recorded with --engine {}, not {}", f.engine, report::name(k)));
    }
    if let Some(m) = cli.atc_inv_disabled.filter(|m| *m != set.atc) {
        return bad(format!(
            "replay file was recorded with --atc-inv-disabled {}, not {}",
            f.atc_inv_disabled,
            report::name(m)
        ));
    }
    if cli.rwlock.is_some() && cli.rwlock != set.rwlock {
        let recorded = f.rwlock.as_deref().unwrap_or("(the scenario's choice)");
        return bad(format!("replay file was recorded with --rwlock {recorded}, not {}", report::name(cli.rwlock)));
    }
    if f.scheduler == "loom" {
        let loom_cli = Cli { scheduler: SchedulerKind::Loom, ..cli.clone() };
        return loom_run(&loom_cli, f.seed, set.mutant);
    }
    if let Some(schedule) = &f.schedule {
        eprintln!("stress: replaying {} ({} scheduling steps)", path.display(), schedule.steps);
    }
    let r = match f.replay(&set, KNOWN.get()) {
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
            report::runs(cli, f.seed, &[RunRow::new(r.sc.name, f.seed, cli, r.params, &e.stats, Some(row))]);
            EXIT_VIOLATION
        }
        Err(msg) => bad(msg),
    }
}

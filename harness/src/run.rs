//! Running a scenario under a scheduler: shuttle (PCT, random, DFS) with
//! every decision recorded so a failure can be replayed exactly, or real OS
//! threads.

use crate::config::{ExploreKind, SchedulerKind};
use crate::guide::{Guide, Learn};
use crate::known::Known;
use crate::schedule::{default_task, Progress};
pub use crate::schedule::{Follow, Recorded, Switch, NO_TASK};
use hwmodel::Coverage;
use scenarios::{Outcome, Params, Scenario};
use shuttle::scheduler::{DfsScheduler, PctScheduler, RandomScheduler, Schedule, Scheduler, Task, TaskId};
use shuttle::{Config, FailurePersistence, MaxSteps, Runner};
use smmu_sync::plain::Mutex;
use smmu_sync::{enter, Backend, Bounds};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Shuttle's own step bound: a backstop behind the world's bound, which
/// every scheduling point counts against (`smmu_sync::tick`).
const MAX_STEPS: usize = 4_000_000;
/// The wall-clock watchdog of one schedule; a correct one takes well under
/// a millisecond.
pub const WATCHDOG: Duration = Duration::from_secs(20);

/// A schedule that violated the oracle, or panicked.
#[derive(Clone, Debug)]
pub struct Found {
    /// Index of the failing schedule in this run.
    pub index: u64,
    pub schedule: Recorded,
    pub kind: String,
    pub explanation: String,
    pub detail: String,
    pub trace: Vec<crate::trace::Line>,
    pub trace_hash: u64,
    /// The odds its world ran with, when the oracle's verdict says.
    pub odds: Option<hwmodel::Odds>,
    /// Its cause (`hwmodel::signature`): what `--known` matches.
    pub signature: String,
    /// How the schedule was made (`Learn::made_by`): drawn by the
    /// `--scheduler`, a guide's ending or havoc, or a recording followed;
    /// none in threads mode.
    pub made_by: Option<&'static str>,
}

impl Found {
    fn from_outcome(index: u64, schedule: Recorded, o: &Outcome, v: &hwmodel::Violation) -> Self {
        Found { trace_hash: o.trace_hash, ..Self::from_violation(index, schedule, v) }
    }

    /// A violation that ended its execution (`stop_at_violation`): the
    /// trace hash is the trace's up to it.
    fn from_violation(index: u64, schedule: Recorded, v: &hwmodel::Violation) -> Self {
        Found {
            index,
            schedule,
            kind: v.kind.name().into(),
            explanation: v.kind.explain().into(),
            detail: v.detail.clone(),
            trace: v.trace.iter().map(crate::trace::Line::of).collect(),
            trace_hash: v.hash,
            odds: Some(v.odds),
            signature: v.signature.clone(),
            made_by: None,
        }
    }

    /// A panic: shuttle's deadlock and step-bound panics, the watchdog's
    /// livelock report, a model check that panics with a kind name first
    /// (loom), or a plain bug.
    /// `site`: each involved thread's kernel functions
    /// (`smmu_sync::failure_site`), empty for a panic outside the model.
    pub fn from_panic(index: u64, schedule: Recorded, msg: String, site: &[String]) -> Self {
        use hwmodel::ViolationKind as K;
        let kind = if msg.contains("max_steps") || msg.contains("step bound") {
            K::Livelock
        } else if msg.contains("deadlock") {
            K::Deadlock
        } else {
            K::ALL.iter().copied().find(|k| msg.starts_with(k.name())).unwrap_or(K::Panic)
        };
        Found {
            index,
            schedule,
            kind: kind.name().into(),
            explanation: kind.explain().into(),
            // A panic has no oracle trace; its message names where each
            // thread stood, so the same message is the same ending.
            trace_hash: fnv(msg.as_bytes()),
            detail: msg,
            trace: Vec::new(),
            odds: None,
            signature: hwmodel::signature::of_site(kind, site),
            made_by: None,
        }
    }
}

/// FNV-1a: stable across runs and platforms, unlike `DefaultHasher`.
pub fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// What a run of many schedules produced.
#[derive(Clone, Debug, Default)]
pub struct RunStats {
    pub schedules: u64,
    pub steps: u64,
    pub elapsed: Duration,
    pub stale_ages: BTreeMap<u64, u64>,
    /// A hash over every schedule's trace hash, in order.
    pub trace_hash: u64,
    pub found: Option<Found>,
    /// Coverage goals reached, summed over schedules.
    pub coverage: Coverage,
    /// The most scheduling steps and threads any one schedule took: PCT's
    /// k and n.
    pub max_steps: u64,
    pub max_threads: usize,
    /// Schedules explored under each PCT depth.
    pub pct_schedules: BTreeMap<usize, u64>,
    /// With `--known`, every signature seen, known or not.
    pub signatures: BTreeMap<String, Seen>,
    /// In a run after one kind (`Plan::want`), the first failure of
    /// another kind, with its chunk's seed: reported, not taken for the
    /// one wanted.
    pub other: Option<(Found, u64)>,
}

/// A signature in a run with `--known`: the finding it is (none if the
/// file lacks it), how many schedules showed it, and the first of them,
/// complete, with the seed of the chunk that ran it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub id: Option<String>,
    pub count: u64,
    pub first: Found,
    pub chunk_seed: u64,
}

impl RunStats {
    /// Count stale hits into this run's age histogram.
    pub fn add_ages(&mut self, ages: &BTreeMap<u64, u64>) {
        for (age, n) in ages {
            *self.stale_ages.entry(*age).or_default() += n;
        }
    }

    /// Fold the next schedule's (or chunk's) trace hash into the run's, in
    /// order: the same seed and options give the same run hash.
    pub fn fold_trace(&mut self, trace_hash: u64) {
        self.trace_hash = (self.trace_hash ^ trace_hash).wrapping_mul(0x100_0000_01b3);
    }

    /// Add a chunk's figures (not its failure) to the run's; its schedules
    /// are numbered from `offset` in the run.
    pub fn absorb(&mut self, other: &RunStats, offset: u64) {
        self.schedules += other.schedules;
        self.steps += other.steps;
        self.fold_trace(other.trace_hash);
        self.add_ages(&other.stale_ages);
        self.coverage.add(&other.coverage);
        self.max_steps = self.max_steps.max(other.max_steps);
        self.max_threads = self.max_threads.max(other.max_threads);
        for (d, n) in &other.pct_schedules {
            *self.pct_schedules.entry(*d).or_default() += n;
        }
        if self.other.is_none() {
            self.other = other.other.clone().map(|(f, seed)| (Found { index: f.index + offset, ..f }, seed));
        }
        for (sig, seen) in &other.signatures {
            match self.signatures.get_mut(sig) {
                Some(mine) => mine.count += seen.count,
                None => {
                    let mut first = seen.clone();
                    first.first.index += offset;
                    self.signatures.insert(sig.clone(), first);
                }
            }
        }
    }

    /// Schedules that showed a known finding, by its id.
    pub fn known(&self) -> BTreeMap<String, u64> {
        let mut by_id = BTreeMap::new();
        for seen in self.signatures.values() {
            if let Some(id) = &seen.id {
                *by_id.entry(id.clone()).or_default() += seen.count;
            }
        }
        by_id
    }

    /// The failure with this signature: the run's own, or the first of a
    /// signature `--known` counted.
    pub fn failure(&self, signature: &str) -> Option<&Found> {
        let own = self.found.as_ref().filter(|f| f.signature == signature);
        own.or_else(|| self.signatures.get(signature).map(|s| &s.first))
    }

    /// PCT's guarantee for a bug of depth `d`: each schedule run with PCT
    /// depth `e >= d` finds it with probability at least 1/(n k^(e-1)), for
    /// n threads and k steps; the chance all of them missed it.
    pub fn pct_miss(&self, d: usize) -> Option<f64> {
        let (n, k) = (self.max_threads.max(1) as f64, self.max_steps.max(1) as f64);
        let mut log_miss = None;
        for (&e, &runs) in self.pct_schedules.range(d..) {
            let per = 1.0 / (n * k.powi(e as i32 - 1));
            *log_miss.get_or_insert(0.0) += runs as f64 * (-per).ln_1p();
        }
        log_miss.map(f64::exp)
    }

    /// PCT schedules that count towards a depth-`d` guarantee.
    pub fn pct_runs(&self, d: usize) -> u64 {
        self.pct_schedules.range(d..).map(|(_, n)| n).sum()
    }
}

#[derive(Default)]
struct Shared {
    current: Recorded,
    stop: bool,
    race: Option<Race>,
    stats: RunStats,
    /// Highest task id seen in the current schedule.
    top_task: usize,
    /// The current schedule's failure was kept before its last decisions
    /// (`complete` adds them).
    incomplete: bool,
    /// The goals the schedule that just ended reached, for the scheduler
    /// to learn from (`Learn`).
    reached: Option<Coverage>,
    /// How the current schedule was made (`Learn::made_by`).
    made_by: &'static str,
}

impl Shared {
    /// The schedule now ending (the `index`th) ended in `f`, which is the
    /// finding `id` of `--known`, or none of them. A run with `--known`
    /// counts it under its signature; the first failure no finding explains
    /// is the run's, and ends it unless `past_new`. A run after one kind
    /// keeps a failure of another aside and goes on.
    fn note(&mut self, f: Found, id: Option<&str>, plan: Pursuit) {
        let Pursuit { known, past_new, want } = plan;
        let f = Found { made_by: Some(self.made_by), ..f };
        if want.is_some_and(|k| f.kind != k.name()) {
            self.stats.other.get_or_insert((f, 0));
            return;
        }
        if known.is_some() {
            let seen = self.stats.signatures.entry(f.signature.clone()).or_insert_with(|| Seen {
                id: id.map(str::to_string),
                count: 0,
                first: f.clone(),
                chunk_seed: 0,
            });
            seen.count += 1;
        }
        if id.is_none() && self.stats.found.is_none() {
            self.stats.found = Some(f);
            self.stop = !past_new;
            if let Some(r) = self.race.as_ref().filter(|_| self.stop) {
                r.fail();
            }
        }
    }

    /// Give a failure kept while its schedule was still running the
    /// decisions that came after: a replay must make them too.
    fn complete(&mut self) {
        if !std::mem::take(&mut self.incomplete) {
            return;
        }
        let index = self.stats.schedules.saturating_sub(1);
        let firsts = self.stats.signatures.values_mut().map(|s| &mut s.first);
        let other = self.stats.other.as_mut().map(|(f, _)| f);
        for f in firsts.chain(self.stats.found.as_mut()).chain(other).filter(|f| f.index == index) {
            f.schedule = self.current.clone();
        }
    }
}

/// Wraps a scheduler and writes down every decision it makes that the
/// default would not have, and every data choice. A failure report
/// (`smmu_sync::die`) ends its execution at the next decision.
struct Recorder<S> {
    inner: S,
    shared: Arc<Mutex<Shared>>,
    progress: Progress,
    /// The default the schedule is written against (`Recorded::prefer`,
    /// `Recorded::starve`).
    policy: (Option<usize>, u64),
    pursuit: Pursuit,
}

/// Which failures end a run (`Plan`'s `known`, `past_new` and `want`).
#[derive(Clone, Copy)]
struct Pursuit {
    known: Option<&'static Known>,
    past_new: bool,
    want: Option<hwmodel::ViolationKind>,
}

impl<S> Recorder<S> {
    /// The execution ended in `report` (a verdict, a livelock or a
    /// deadlock), at its last decision: `Shared::note`.
    fn conclude(&self, report: Box<dyn std::any::Any + Send>) {
        let mut s = self.shared.lock();
        let index = s.stats.schedules;
        s.stats.schedules += 1;
        // Its decisions so far (shuttle's own count is out of reach while
        // it asks the scheduler).
        let steps = s.current.steps;
        s.stats.steps += steps;
        s.stats.max_steps = s.stats.max_steps.max(steps);
        s.stats.max_threads = s.stats.max_threads.max(s.top_task + 1);
        let found = match report.downcast_ref::<hwmodel::Violation>() {
            Some(v) => Found::from_violation(index, s.current.clone(), v),
            None => {
                let site = smmu_sync::failure_site();
                Found::from_panic(index, s.current.clone(), panic_message(report.as_ref()), &site)
            }
        };
        s.stats.fold_trace(found.trace_hash);
        let id = self.pursuit.known.and_then(|k| k.matches(&found.signature));
        s.note(found, id, self.pursuit);
    }
}

impl<S: Scheduler + Learn> Scheduler for Recorder<S> {
    fn new_execution(&mut self) -> Option<Schedule> {
        {
            let mut sh = self.shared.lock();
            if sh.stop || sh.race.as_ref().is_some_and(Race::lost) {
                return None;
            }
            sh.complete();
            if let Some(reached) = sh.reached.take() {
                self.inner.learn(&sh.current, &reached);
            }
        }
        let s = self.inner.new_execution()?;
        // The execution's first decisions come before its body starts: the
        // last one's failure must not be taken for this one's.
        smmu_sync::begin_execution(Bounds::default());
        let mut sh = self.shared.lock();
        sh.current = Recorded { prefer: self.policy.0, starve: self.policy.1, ..Recorded::default() };
        sh.top_task = 0;
        sh.made_by = self.inner.made_by();
        self.progress = Progress::default();
        Some(s)
    }

    fn next_task(&mut self, runnable: &[&Task], current: Option<TaskId>, yielding: bool) -> Option<TaskId> {
        if smmu_sync::fired() {
            if let Some(report) = smmu_sync::take_failure() {
                self.conclude(report);
            }
            return None;
        }
        let t = self.inner.next_task(runnable, current, yielding)?;
        let after = self.progress.decide(current);
        self.progress.running = t.into();
        let mut sh = self.shared.lock();
        sh.current.steps += 1;
        if t != default_task(runnable, current, yielding, self.policy) {
            let preempt = current.is_some_and(|c| runnable.iter().any(|r| r.id() == c));
            sh.current.switches.push(Switch { after, task: t.into(), preempt });
        }
        let top = runnable.iter().map(|r| usize::from(r.id())).max().unwrap_or(0);
        sh.top_task = sh.top_task.max(top);
        Some(t)
    }

    fn next_u64(&mut self) -> u64 {
        let v = self.inner.next_u64();
        if !smmu_sync::fired() {
            let mut sh = self.shared.lock();
            sh.current.data.push(v);
            sh.current.data_from.push(self.progress.drawer());
        }
        v
    }
}

thread_local! {
    /// Set while this thread drives shuttle, whose task panics we report
    /// ourselves instead of letting the default hook print them.
    static QUIET_PANICS: Cell<bool> = const { Cell::new(false) };
}

/// Install once: panics inside a shuttle run are captured and reported as
/// violations; any other panic prints as usual.
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !QUIET_PANICS.with(Cell::get) {
            default(info);
        }
    }));
}

pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
}

/// The chunks of one run, explored side by side: the run's failure is
/// its earliest chunk's, so a chunk gives up once an earlier one failed
/// rather than run on to its end for nothing.
#[derive(Clone, Debug)]
pub struct Race {
    first_failed: Arc<AtomicU64>,
    chunk: u64,
}

impl Race {
    pub fn new(first_failed: Arc<AtomicU64>, chunk: u64) -> Self {
        Race { first_failed, chunk }
    }

    /// This chunk failed: no chunk after it need go on.
    pub fn fail(&self) {
        self.first_failed.fetch_min(self.chunk, Relaxed);
    }

    fn lost(&self) -> bool {
        self.first_failed.load(Relaxed) < self.chunk
    }
}

/// How to explore.
#[derive(Clone, Debug)]
pub struct Plan {
    pub scheduler: SchedulerKind,
    pub seed: u64,
    pub schedules: u64,
    pub depth: usize,
    pub deadline: Option<Instant>,
    /// A schedule's step bound; `None`: the world's own.
    pub max_steps: Option<u64>,
    /// Findings to count and explore past.
    pub known: Option<&'static Known>,
    /// With `known`: explore past failures it does not explain too, each
    /// signature counted, instead of stopping at the first.
    pub past_new: bool,
    /// The default scheduling policy's preferred and starved tasks (a
    /// replay's).
    pub policy: (Option<usize>, u64),
    /// Fresh schedules from `scheduler`, or guided ones.
    pub explore: ExploreKind,
    /// Stop only at a failure of this kind (a mutant's expected one),
    /// keeping the first of any other aside (`RunStats::other`).
    pub want: Option<hwmodel::ViolationKind>,
    /// The run's other chunks, if it has any.
    pub race: Option<Race>,
    /// Where a guide draws its fresh schedules, as (seed, PCT depth) of
    /// each part in turn; empty: one part, `seed` and `depth`.
    pub fresh: Vec<(u64, usize)>,
}

/// The bounds one schedule starts under.
fn bounds(max_steps: Option<u64>) -> Bounds {
    Bounds { limit: max_steps, deadline: Some(Instant::now() + WATCHDOG) }
}

/// Explore `plan.schedules` schedules of `sc` (stopping at the first
/// failure or the deadline) under shuttle.
pub fn explore(sc: &'static Scenario, params: Params, plan: Plan) -> RunStats {
    let start = Instant::now();
    let n = plan.schedules as usize;
    let mut r = match plan.scheduler {
        SchedulerKind::Pct => guided(sc, params, |seed, depth| PctScheduler::new_from_seed(seed, depth, n), &plan),
        SchedulerKind::Random => guided(sc, params, |seed, _| RandomScheduler::new_from_seed(seed, n), &plan),
        SchedulerKind::Dfs => drive(sc, params, DfsScheduler::new(Some(n), true), &plan),
        SchedulerKind::Loom => unreachable!("loom runs its own model"),
    };
    if plan.scheduler == SchedulerKind::Pct {
        r.pct_schedules.insert(plan.depth, r.schedules);
    }
    r.elapsed = start.elapsed();
    r
}

/// The schedules `make(seed, depth)` draws, or a guide's that draws its
/// fresh ones from the plan's fresh parts in turn.
fn guided<S: Scheduler + Learn + 'static>(
    sc: &'static Scenario,
    params: Params,
    make: impl Fn(u64, usize) -> S,
    plan: &Plan,
) -> RunStats {
    match plan.explore {
        ExploreKind::Fresh => drive(sc, params, make(plan.seed, plan.depth), plan),
        ExploreKind::Feedback => {
            let parts = if plan.fresh.is_empty() { vec![(plan.seed, plan.depth)] } else { plan.fresh.clone() };
            let fresh = parts.iter().map(|&(seed, depth)| make(seed, depth)).collect();
            drive(sc, params, Guide::new(fresh, crate::config::CHUNK, plan.seed, plan.schedules), plan)
        }
    }
}

/// A plan that runs one given schedule.
fn once(max_steps: Option<u64>, known: Option<&'static Known>, policy: (Option<usize>, u64)) -> Plan {
    let (scheduler, seed, schedules, depth, deadline) = (SchedulerKind::Random, 0, 1, 0, None);
    Plan {
        scheduler,
        seed,
        schedules,
        depth,
        deadline,
        max_steps,
        known,
        past_new: false,
        policy,
        explore: ExploreKind::Fresh,
        want: None,
        race: None,
        fresh: Vec::new(),
    }
}

/// Run exactly `schedule` once; its failure is the first violation that is
/// not a known finding, as when it was found.
pub fn replay(
    sc: &'static Scenario,
    params: Params,
    schedule: &Recorded,
    max_steps: Option<u64>,
    known: Option<&'static Known>,
) -> RunStats {
    let policy = (schedule.prefer, schedule.starve);
    drive(sc, params, Follow::new(schedule.clone()), &once(max_steps, known, policy))
}

/// Run exactly `schedule` once, stopping at nothing but its end: what a
/// shrinker tries.
pub fn follow(sc: &'static Scenario, params: Params, schedule: &Recorded, max_steps: Option<u64>) -> RunStats {
    replay(sc, params, schedule, max_steps, None)
}

/// Run shuttle until it stops.
fn drive<S: Scheduler + Learn + 'static>(sc: &'static Scenario, params: Params, inner: S, plan: &Plan) -> RunStats {
    let (deadline, max_steps, known) = (plan.deadline, plan.max_steps, plan.known);
    let pursuit = Pursuit { known, past_new: plan.past_new, want: plan.want };
    let shared = Arc::new(Mutex::new(Shared { race: plan.race.clone(), ..Shared::default() }));
    let mut config = Config::new();
    config.failure_persistence = FailurePersistence::None;
    config.silence_warnings = true;
    config.max_steps = MaxSteps::FailAfter(MAX_STEPS);
    config.max_time = deadline.map(|d| d.saturating_duration_since(Instant::now()));
    let progress = Progress::default();
    let recorder = Recorder { inner, shared: shared.clone(), progress, policy: plan.policy, pursuit };
    let runner = Runner::new(recorder, config);
    let body = {
        let shared = shared.clone();
        move || {
            let _b = enter(Backend::Shuttle);
            smmu_sync::begin_execution(bounds(max_steps));
            let outcome = sc.run(&params);
            let steps = smmu_sync::steps();
            let mut s = shared.lock();
            s.stats.schedules += 1;
            s.stats.steps += steps;
            s.stats.max_steps = s.stats.max_steps.max(steps);
            s.stats.max_threads = s.stats.max_threads.max(s.top_task + 1);
            s.stats.add_ages(&outcome.stale_ages);
            s.stats.coverage.add(&outcome.coverage);
            s.reached = Some(outcome.coverage.clone());
            // The schedule's failure: one no finding explains, if any.
            let id = |v: &hwmodel::Violation| known.and_then(|k| k.matches(&v.signature));
            let wanted = |v: &&hwmodel::Violation| pursuit.want.is_none_or(|k| v.kind == k);
            let v = (outcome.violations.iter().filter(wanted).find(|v| id(v).is_none()))
                .or(outcome.violations.iter().find(|v| id(v).is_none()))
                .or(outcome.violations.first());
            if let Some(v) = v.filter(|_| !s.stop) {
                let found = Found::from_outcome(s.stats.schedules - 1, s.current.clone(), &outcome, v);
                s.note(found, id(v), pursuit);
                s.incomplete = true;
            }
            s.stats.fold_trace(outcome.trace_hash);
        }
    };
    let start = Instant::now();
    QUIET_PANICS.with(|q| q.set(true));
    // A report ends its execution without a panic (`Recorder::conclude`);
    // what unwinds to here is a bug of the model or shuttle's own bounds.
    let r = catch_unwind(AssertUnwindSafe(|| runner.run(body)));
    QUIET_PANICS.with(|q| q.set(false));
    let mut s = shared.lock();
    s.complete();
    for seen in s.stats.signatures.values_mut() {
        seen.chunk_seed = plan.seed;
    }
    if let Some((_, seed)) = s.stats.other.as_mut() {
        *seed = plan.seed;
    }
    if let Err(p) = r {
        let index = s.stats.schedules;
        s.stats.schedules += 1;
        s.stats.max_threads = s.stats.max_threads.max(s.top_task + 1);
        let found = Found {
            made_by: Some(s.made_by),
            ..Found::from_panic(index, s.current.clone(), panic_message(p.as_ref()), &[])
        };
        s.stats.found.get_or_insert(found);
    }
    s.stats.elapsed = start.elapsed();
    std::mem::take(&mut s.stats)
}

/// Run `sc` `n` times on real OS threads: no schedule control and nothing to
/// replay, but real concurrency and real atomics.
pub fn threads(sc: &'static Scenario, params: Params, n: u64, plan: &Plan) -> RunStats {
    let start = Instant::now();
    let mut st = RunStats::default();
    for i in 0..n {
        if plan.deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        st.schedules += 1;
        smmu_sync::begin_execution(bounds(plan.max_steps));
        let outcome = match catch_unwind(AssertUnwindSafe(|| sc.run(&params))) {
            Ok(o) => o,
            Err(p) => {
                st.found = Some(Found::from_panic(i, Recorded::default(), panic_message(p.as_ref()), &[]));
                break;
            }
        };
        st.add_ages(&outcome.stale_ages);
        st.coverage.add(&outcome.coverage);
        if let Some(v) = outcome.violations.first() {
            st.found = Some(Found::from_outcome(i, Recorded::default(), &outcome, v));
            break;
        }
    }
    st.elapsed = start.elapsed();
    st
}

//! The watchdog over one execution: a step counter that every scheduling
//! point and every loop of the driver advances, a wall-clock deadline, and
//! where each simulated thread last said it was. A schedule that runs past
//! either bound ends with a panic whose message starts with `livelock`,
//! naming every thread's place, so a loop that never yields is reported
//! instead of hanging the process.
//!
//! Under shuttle every task of an execution runs on the caller's OS thread,
//! so one thread-local holds the whole execution's state. Under std each OS
//! thread is one simulated thread and inherits its spawner's bounds.

use crate::backend::{backend, Backend};
use std::cell::RefCell;
use std::time::Instant;

/// How often the wall clock is read, in ticks.
const CLOCK_EVERY: u64 = 1 << 12;

/// Where one simulated thread is.
#[derive(Clone, Debug, Default)]
struct Place {
    name: String,
    op: &'static str,
    arg: u64,
    /// Running its interrupt handler.
    irq: bool,
    /// The simulated CPU this thread is, if it is one.
    cpu: Option<usize>,
    /// Which of its operations the thread is in (`begin_segment`).
    segment: u64,
    /// The kernel functions it is in, outermost first (`kernel_fn`); an
    /// interrupt's handler stacks on the code it interrupted after "irq".
    funcs: Vec<&'static str>,
}

struct Watch {
    ticks: u64,
    limit: Option<u64>,
    deadline: Option<Instant>,
    /// Set while a single task builds or checks a world: no scheduling
    /// points (the facade's atomics and locks skip shuttle's switch too),
    /// so no steps are spent there.
    quiet: bool,
    /// The report has been made: the execution is over.
    fired: bool,
    /// Under shuttle, the first failure's report, for the harness to take
    /// when its scheduler ends the execution (`take_failure`).
    failure: Option<Box<dyn std::any::Any + Send>>,
    /// Where the failure was found: the function stack of each thread it
    /// involves (`failure_site`).
    site: Vec<String>,
    places: Vec<Place>,
}

impl Watch {
    /// Constant, so that the thread-local needs no lazy initialisation:
    /// every C function the `c` design enters ticks it.
    const NEW: Watch = Watch {
        ticks: 0,
        limit: None,
        deadline: None,
        quiet: false,
        fired: false,
        failure: None,
        site: Vec::new(),
        places: Vec::new(),
    };
}

thread_local! {
    static WATCH: RefCell<Watch> = const { RefCell::new(Watch::NEW) };
    static SIMULATED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Count one access that went through the simulation (simulated memory, a
/// trace event, a model lock's bookkeeping).
pub fn simulate() {
    SIMULATED.with(|c| c.set(c.get() + 1));
}

/// Accesses this OS thread made through the simulation, watchdog ticks
/// included: per thread, so that a benchmark's reader is not charged for
/// its writer. A native fast path leaves it unchanged.
pub fn simulated_accesses() -> u64 {
    SIMULATED.with(std::cell::Cell::get) + ticks()
}

/// The bounds a new execution runs under: `limit` ticks and a deadline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bounds {
    pub limit: Option<u64>,
    pub deadline: Option<Instant>,
}

/// Start watching an execution: reset the counter and the places, arm
/// `bounds` (`crate::begin_execution` resets the rest of the facade).
pub(crate) fn begin(bounds: Bounds) {
    WATCH.with(|w| {
        let mut w = w.borrow_mut();
        *w = Watch { limit: bounds.limit, deadline: bounds.deadline, ..Watch::NEW };
    });
}

/// Bound this execution at `limit` steps unless the harness set a bound:
/// a world that knows its own size calls this once it is built.
pub fn default_step_bound(limit: u64) {
    WATCH.with(|w| {
        let mut w = w.borrow_mut();
        w.limit.get_or_insert(limit);
    });
}

/// The bounds this thread runs under, for a spawned std thread to inherit.
pub(crate) fn bounds() -> Bounds {
    WATCH.with(|w| {
        let w = w.borrow();
        Bounds { limit: w.limit, deadline: w.deadline }
    })
}

/// Whether this execution has ended in a failure report: under shuttle the
/// harness's scheduler stops it at its next decision, which is not part of
/// the schedule.
pub fn fired() -> bool {
    WATCH.with(|w| w.borrow().fired)
}

/// Ticks so far in this execution.
pub fn ticks() -> u64 {
    WATCH.with(|w| w.borrow().ticks)
}

/// Index of the current simulated thread within its execution.
pub fn task_index() -> usize {
    match backend() {
        Backend::Shuttle => shuttle::current::get_current_task().map_or(0, usize::from),
        Backend::Std | Backend::Native | Backend::Loom => 0,
    }
}

/// An identity of the current simulated thread that no other thread of the
/// execution shares: the task index under shuttle, a per-OS-thread number
/// under std (where every thread's index is 0).
pub fn task_id() -> usize {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1 << 20);
    thread_local! {
        static ID: usize = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    match backend() {
        Backend::Shuttle => task_index(),
        Backend::Std | Backend::Native | Backend::Loom => ID.with(|id| *id),
    }
}

/// The current thread's name, for reports.
pub(crate) fn task_name(k: usize) -> String {
    WATCH.with(|w| w.borrow().places.get(k).map_or_else(|| format!("task {k}"), |p| p.label(k)))
}

/// The thread takes an interrupt: its place is saved for `leave_irq`.
pub(crate) fn enter_irq() -> (&'static str, u64) {
    let k = task_index();
    let mut saved = ("", 0);
    with_place(k, |p| {
        saved = (p.op, p.arg);
        p.irq = true;
        p.funcs.push("irq");
    });
    saved
}

/// The handler returns to where the thread was.
pub(crate) fn leave_irq((op, arg): (&'static str, u64)) {
    with_place(task_index(), |p| {
        p.irq = false;
        p.op = op;
        p.arg = arg;
        if let Some(at) = p.funcs.iter().rposition(|f| *f == "irq") {
            p.funcs.truncate(at);
        }
    });
}

/// The current thread is in kernel function `name` until the guard drops:
/// what a finding's signature and report name.
pub fn kernel_fn(name: &'static str) -> KernelFn {
    if backend() == Backend::Native {
        // Nothing tells a story natively: no frame to push.
        return KernelFn { task: usize::MAX, depth: 0 };
    }
    let k = task_index();
    let mut depth = 0;
    with_place(k, |p| {
        depth = p.funcs.len();
        p.funcs.push(name);
    });
    KernelFn { task: k, depth }
}

#[must_use = "the function is left when the guard drops"]
pub struct KernelFn {
    task: usize,
    depth: usize,
}

impl Drop for KernelFn {
    fn drop(&mut self) {
        if self.task == usize::MAX {
            return;
        }
        // An execution that ended abandons its threads where they stand;
        // the next one starts with fresh places.
        WATCH.with(|w| {
            if let Some(p) = w.borrow_mut().places.get_mut(self.task) {
                p.funcs.truncate(self.depth);
            }
        });
    }
}

/// The innermost kernel function the current thread is in ("" if none).
pub fn current_fn() -> &'static str {
    let k = task_index();
    WATCH.with(|w| w.borrow().places.get(k).and_then(|p| p.funcs.last().copied()).unwrap_or(""))
}

fn stack_of(w: &Watch, k: usize) -> String {
    w.places.get(k).map_or(String::new(), |p| p.funcs.join(" > "))
}

/// The current thread's kernel functions, outermost first, " > " between.
pub fn task_stack() -> String {
    let k = task_index();
    WATCH.with(|w| stack_of(&w.borrow(), k))
}

/// Name the threads a failure about to be reported involves (a deadlock's
/// cycle) and what they wait on; by default it is the reporting thread
/// alone.
pub(crate) fn set_site(tasks: &[usize], on: &str) {
    WATCH.with(|w| {
        let mut w = w.borrow_mut();
        if !w.fired {
            w.site = tasks.iter().map(|&k| stack_of(&w, k)).collect();
            w.site.push(format!("on {on}"));
        }
    });
}

/// Where this execution's failure was found: each involved thread's kernel
/// functions, outermost first.
pub fn failure_site() -> Vec<String> {
    WATCH.with(|w| w.borrow().site.clone())
}

/// Name the current simulated thread ("cpu 2", "endpoint 1").
pub fn name_task(name: impl Into<String>) {
    let k = task_index();
    let name = name.into();
    with_place(k, |p| p.name = name);
}

/// Say that the current thread is simulated CPU `n`.
pub fn set_task_cpu(n: usize) {
    with_place(task_index(), |p| p.cpu = Some(n));
}

/// The current thread starts its `k`th operation (counting up from 1; 0
/// is everything before the first). A recorded schedule anchors the
/// switches and data choices inside an operation to it, so a shrinker can
/// leave out an earlier one without moving them.
pub fn begin_segment(k: u64) {
    with_place(task_index(), |p| p.segment = k);
}

/// The operation task `k` (a task index) is in.
pub fn segment_of(k: usize) -> u64 {
    WATCH.with(|w| w.borrow().places.get(k).map_or(0, |p| p.segment))
}

/// The simulated CPU the current thread is, if it is one.
pub fn task_cpu() -> Option<usize> {
    let k = task_index();
    WATCH.with(|w| w.borrow().places.get(k).and_then(|p| p.cpu))
}

/// Say what the current thread is doing, for a livelock report.
pub fn locate(op: &'static str, arg: u64) {
    if backend() == Backend::Native {
        return;
    }
    let k = task_index();
    with_place(k, |p| {
        p.op = op;
        p.arg = arg;
    });
}

impl Place {
    fn label(&self, k: usize) -> String {
        let irq = if self.irq { " (in irq)" } else { "" };
        let name = if self.name.is_empty() { format!("task {k}") } else { self.name.clone() };
        format!("{name}{irq}")
    }
}

fn with_place(k: usize, f: impl FnOnce(&mut Place)) {
    WATCH.with(|w| {
        let mut w = w.borrow_mut();
        if w.places.len() <= k {
            w.places.resize(k + 1, Place::default());
        }
        f(&mut w.places[k]);
    });
}

/// Drop scheduling points until the next `spawn`: for building or checking
/// a world while only one thread exists. Returns the previous setting.
pub fn set_quiet(quiet: bool) -> bool {
    WATCH.with(|w| std::mem::replace(&mut w.borrow_mut().quiet, quiet))
}

/// Whether only one thread exists and setup or final checks are running.
pub fn is_quiet() -> bool {
    WATCH.with(|w| w.borrow().quiet)
}

/// One step of progress, or of a loop that may never end. Ends the
/// execution with a `livelock` report (`die`) once its bounds are exceeded.
#[inline]
pub fn tick() {
    tick_by(1);
}

/// `n` ticks at once: a caller that counts its own (the `c` design's C,
/// whose every function entry is one) and reports them in batches.
pub fn tick_by(n: u64) {
    if backend() == Backend::Native {
        return;
    }
    let (over, fired) = WATCH.with(|w| {
        let mut w = w.borrow_mut();
        let before = w.ticks;
        w.ticks += n;
        let steps = w.limit.is_some_and(|l| w.ticks > l);
        let clock = w.ticks / CLOCK_EVERY != before / CLOCK_EVERY;
        let late = clock && w.deadline.is_some_and(|d| Instant::now() >= d);
        let over = (!w.fired && (steps || late)).then(|| report(&w, steps));
        (over, w.fired)
    });
    if let Some(msg) = over {
        die(msg);
    }
    // After the report the execution ends at the next scheduling decision:
    // another thread caught in a loop that never yields must reach one.
    if fired && backend() == Backend::Shuttle {
        shuttle::thread::yield_now();
    }
}

/// End the execution with a failure report: the model's way of saying the
/// kernel would oops here. Under shuttle the first report of an execution
/// is kept for the harness (`take_failure`) and the thread waits at a
/// scheduling point, where the harness's scheduler ends the execution and
/// shuttle abandons every thread where it stands: no panic, so nothing is
/// printed. Under std and loom it panics with the report.
pub fn die(msg: String) -> ! {
    die_with(Box::new(msg))
}

/// As `die`, with any payload (a panic message is a `String`): a model
/// that ends an execution on purpose hands its verdict to the harness.
pub fn die_with(payload: Box<dyn std::any::Any + Send>) -> ! {
    if backend() != Backend::Shuttle {
        std::panic::resume_unwind(payload);
    }
    let k = task_index();
    WATCH.with(|w| {
        let mut w = w.borrow_mut();
        if !std::mem::replace(&mut w.fired, true) {
            w.failure = Some(payload);
            if w.site.is_empty() {
                w.site = vec![stack_of(&w, k)];
            }
        }
    });
    loop {
        shuttle::thread::yield_now();
    }
}

/// The report that ended this execution, once: what a panic would have
/// carried.
pub fn take_failure() -> Option<Box<dyn std::any::Any + Send>> {
    WATCH.with(|w| w.borrow_mut().failure.take())
}

fn report(w: &Watch, steps: bool) -> String {
    let why = if steps {
        format!("{} steps without finishing (bound {})", w.ticks, w.limit.unwrap_or(0))
    } else {
        format!("the wall-clock watchdog expired after {} steps", w.ticks)
    };
    let places: Vec<String> = w
        .places
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.name.is_empty() || !p.op.is_empty())
        .map(|(k, p)| {
            let op = if p.op.is_empty() { "(started)" } else { p.op };
            format!("{}: {op} {:#x}", p.label(k), p.arg)
        })
        .collect();
    format!("livelock: {why}; where each thread is: {}", places.join("; "))
}

/// A shuttle scheduler that ends an execution once it has failed
/// (`die`): what a test driving shuttle directly wraps its scheduler in.
/// After the run, `take_failure` gives the report.
pub struct StopOnFailure<S>(pub S);

impl<S: shuttle::scheduler::Scheduler> shuttle::scheduler::Scheduler for StopOnFailure<S> {
    fn new_execution(&mut self) -> Option<shuttle::scheduler::Schedule> {
        self.0.new_execution()
    }

    fn next_task(
        &mut self,
        runnable: &[&shuttle::scheduler::Task],
        current: Option<shuttle::scheduler::TaskId>,
        is_yielding: bool,
    ) -> Option<shuttle::scheduler::TaskId> {
        if fired() {
            return None;
        }
        self.0.next_task(runnable, current, is_yielding)
    }

    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
}

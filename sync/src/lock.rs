//! Locks. `Mutex` blocks (the kernel's `mutex` and, taken with interrupts
//! saved, `spinlock_t`); a panic while one is held is already a reported
//! failure of the schedule, so poisoning is ignored rather than turned into
//! a second panic. `RwLock` is the kernel's spinning `rwlock_t`, with the
//! reader-versus-waiting-writer rule of a queued or of a fair lock, and a
//! wait-for graph that turns a spin nobody can end into a `deadlock`
//! report instead of a hang.

use crate::backend::{backend, Backend};
use std::cell::RefCell;
use std::ops::{Deref, DerefMut};

fn unpoison<G>(r: Result<G, std::sync::PoisonError<G>>) -> G {
    r.unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub struct Mutex<T>(MutexInner<T>);

enum MutexInner<T> {
    Std(std::sync::Mutex<T>),
    /// Shuttle's lock orders the tasks; the data sits in a std mutex that
    /// only its holder touches. While a single thread builds or checks a
    /// world (`is_quiet`) shuttle's lock is skipped: it would count two
    /// steps per use where nothing can interleave.
    Shuttle(shuttle::sync::Mutex<()>, std::sync::Mutex<T>),
    Loom(loom::sync::Mutex<T>),
}

impl<T> Mutex<T> {
    pub fn new(v: T) -> Self {
        Self(match backend() {
            Backend::Std | Backend::Native => MutexInner::Std(std::sync::Mutex::new(v)),
            Backend::Shuttle => MutexInner::Shuttle(shuttle::sync::Mutex::new(()), std::sync::Mutex::new(v)),
            Backend::Loom => MutexInner::Loom(loom::sync::Mutex::new(v)),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, T> {
        let line = crate::cost::line_of(self);
        crate::cost::rmw(line);
        let inner = match &self.0 {
            MutexInner::Std(m) => MutexGuardInner::Std(unpoison(m.lock())),
            MutexInner::Shuttle(order, data) => {
                let order = (!crate::watch::is_quiet()).then(|| unpoison(order.lock()));
                let data = match data.try_lock() {
                    Ok(g) => g,
                    Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
                    Err(std::sync::TryLockError::WouldBlock) => {
                        panic!("a lock taken while the world was built is still held once its threads run")
                    }
                };
                MutexGuardInner::Shuttle { data, _order: order }
            }
            MutexInner::Loom(m) => MutexGuardInner::Loom(unpoison(m.lock())),
        };
        MutexGuard(inner, line)
    }
}

/// Dropping it unlocks; the lock word's line is the contention model's.
pub struct MutexGuard<'a, T>(MutexGuardInner<'a, T>, u64);

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        crate::cost::rmw(self.1);
    }
}

enum MutexGuardInner<'a, T> {
    Std(std::sync::MutexGuard<'a, T>),
    /// The data's guard drops first: shuttle's release is a scheduling
    /// point, and the next holder takes the data there.
    Shuttle {
        data: std::sync::MutexGuard<'a, T>,
        _order: Option<shuttle::sync::MutexGuard<'a, ()>>,
    },
    Loom(loom::sync::MutexGuard<'a, T>),
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        match &self.0 {
            MutexGuardInner::Std(g) | MutexGuardInner::Shuttle { data: g, .. } => g,
            MutexGuardInner::Loom(g) => g,
        }
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        match &mut self.0 {
            MutexGuardInner::Std(g) | MutexGuardInner::Shuttle { data: g, .. } => g,
            MutexGuardInner::Loom(g) => g,
        }
    }
}

/// Which `rwlock_t` the model runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RwLockKind {
    /// The kernel's queued rwlock (`qrwlock`): a reader in interrupt
    /// context takes the lock even while a writer waits; a reader in task
    /// context queues behind a waiting writer.
    #[default]
    Queued,
    /// A fair lock: every reader waits behind a waiting writer.
    Fair,
}

impl RwLockKind {
    pub const ALL: [RwLockKind; 2] = [RwLockKind::Queued, RwLockKind::Fair];

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            RwLockKind::Queued => "queued",
            RwLockKind::Fair => "fair",
        }
    }
}

/// Who holds and who waits, by `task_id`.
#[derive(Default)]
struct LockState {
    writer: Option<usize>,
    readers: Vec<usize>,
    writers_waiting: Vec<usize>,
}

type Shared = std::sync::Arc<crate::plain::Mutex<LockState>>;

/// A thread spinning on a lock.
struct Wait {
    task: usize,
    lock: Shared,
    kind: RwLockKind,
    write: bool,
    irq: bool,
}

impl Wait {
    /// The threads that must move before this one can take the lock.
    fn blockers(&self) -> Vec<usize> {
        let st = self.lock.lock();
        let mut b: Vec<usize> = st.writer.into_iter().collect();
        if self.write {
            b.extend(&st.readers);
        } else if self.kind == RwLockKind::Fair || !self.irq {
            b.extend(st.writers_waiting.iter().filter(|&&t| t != self.task));
        }
        b
    }
}

thread_local! {
    /// Every spinner of the running execution (shuttle runs them all on
    /// this OS thread), innermost last: a thread spinning in its interrupt
    /// handler is stuck there, whatever its interrupted code waited for.
    static WAITS: RefCell<Vec<Wait>> = const { RefCell::new(Vec::new()) };
    /// This execution's interrupt read-lock attempts: with a writer
    /// waiting, without, and with a writer waiting on a lock the
    /// interrupted code holds for read.
    static IRQ_READS: std::cell::Cell<[u64; 3]> = const { std::cell::Cell::new([0; 3]) };
}

/// A new execution: nobody waits.
pub(crate) fn reset() {
    WAITS.with(|w| w.borrow_mut().clear());
    IRQ_READS.with(|c| c.set([0; 3]));
}

/// How often this execution's interrupt handlers asked for an rwlock's
/// read side while a writer waited, and with no writer waiting: the two
/// orders of the interrupt-reader deadlock (an "interleaving goal"); and
/// how often one did so on a lock its own interrupted code held for read,
/// the state that deadlocks a fair rwlock and that a queued one lets pass.
pub fn irq_reads() -> [u64; 3] {
    IRQ_READS.with(std::cell::Cell::get)
}

/// A cycle of spinners from `me` back to `me`, if the wait-for graph has
/// one: then none of them can ever move.
fn cycle_from(me: usize) -> Option<Vec<usize>> {
    // Each spinning thread's innermost wait, as edges to its blockers. A
    // wait from task context while the thread runs its handler is not
    // current: the handler is running, not spinning.
    let edges: Vec<(usize, Vec<usize>)> = WAITS.with(|w| {
        let waits = w.borrow();
        let mut edges: Vec<(usize, Vec<usize>)> = Vec::new();
        for w in waits.iter().rev() {
            if w.irq == crate::irq::task_in_irq(w.task) && edges.iter().all(|(t, _)| *t != w.task) {
                edges.push((w.task, w.blockers()));
            }
        }
        edges
    });
    let blockers = |t: usize| edges.iter().find(|(u, _)| *u == t).map(|(_, b)| b.as_slice());
    // Depth-first: `stack` holds the path and, per node, the next blocker
    // to try.
    let mut stack: Vec<(usize, usize)> = vec![(me, 0)];
    let mut seen = vec![me];
    while let Some(&mut (t, ref mut next)) = stack.last_mut() {
        let Some(&b) = blockers(t).and_then(|bs| bs.get(*next)) else {
            stack.pop();
            continue;
        };
        *next += 1;
        if b == me {
            return Some(stack.iter().map(|(t, _)| *t).collect());
        }
        if !seen.contains(&b) {
            seen.push(b);
            stack.push((b, 0));
        }
    }
    None
}

fn describe(cycle: &[usize], kind: RwLockKind) -> String {
    let names: Vec<String> = cycle.iter().map(|&t| crate::watch::task_name(t)).collect();
    let mut chain = names.join(" waits for ");
    chain.push_str(&format!(" waits for {}", names[0]));
    format!("deadlock: {chain}, each spinning on a {} rwlock that only the next can release", kind.name())
}

/// The kernel's `rwlock_t`, without data: the driver's rwlocks guard
/// nothing but the order of events around them. Under the native backend
/// it is a bare lock word, as `qrwlock` is; otherwise the model's state.
pub struct RwLock {
    kind: RwLockKind,
    state: Held,
    /// Where the lock word sits, for the contention model: the line of the
    /// structure that embeds it, once placed (`set_line`).
    line: Option<u64>,
}

enum Held {
    /// Shared with the wait-for graph of spinners.
    Model(Shared),
    Native(native::Word),
}

impl RwLock {
    pub fn new(kind: RwLockKind) -> Self {
        let state = match backend() {
            Backend::Native => Held::Native(Default::default()),
            Backend::Std | Backend::Shuttle | Backend::Loom => Held::Model(Shared::default()),
        };
        Self { kind, state, line: None }
    }

    /// The lock word shares cache line `line` with what it is embedded in
    /// (the kernel's `struct arm_smmu_invs` keeps it beside `num_invs`).
    pub fn set_line(&mut self, line: u64) {
        self.line = Some(line);
    }

    fn line(&self) -> u64 {
        self.line.unwrap_or_else(|| crate::cost::line_of(self))
    }

    /// `read_lock`: interrupts stay as they are.
    pub fn read_lock(&self) -> RwLockReadGuard<'_> {
        self.spin(false);
        RwLockReadGuard { lock: self, _irq: None }
    }

    /// `read_lock_irqsave`: interrupts off first, then the lock.
    pub fn read_lock_irqsave(&self) -> RwLockReadGuard<'_> {
        let irq = crate::irq::local_irq_save();
        self.spin(false);
        RwLockReadGuard { lock: self, _irq: Some(irq) }
    }

    /// `write_lock_irqsave`.
    pub fn write_lock_irqsave(&self) -> RwLockWriteGuard<'_> {
        let irq = crate::irq::local_irq_save();
        self.spin(true);
        RwLockWriteGuard { lock: self, _irq: Some(irq) }
    }

    /// `write_lock`: interrupts stay as they are.
    pub fn write_lock(&self) -> RwLockWriteGuard<'_> {
        self.spin(true);
        RwLockWriteGuard { lock: self, _irq: None }
    }

    /// The lock taken for a caller that unlocks in a later call (a C
    /// caller's `read_unlock`): held until the returned value drops.
    pub fn lock_shared(self: &std::sync::Arc<Self>, write: bool, irqsave: bool) -> RwLockHeld {
        let irq = irqsave.then(crate::irq::local_irq_save);
        self.spin(write);
        RwLockHeld { lock: self.clone(), write, _irq: irq }
    }

    fn unlock(&self, write: bool) {
        let state = match &self.state {
            Held::Native(word) if write => return word.write_unlock(),
            Held::Native(word) => return word.read_unlock(),
            Held::Model(state) => state,
        };
        crate::cost::rmw(self.line());
        let mut st = state.lock();
        if write {
            st.writer = None;
        } else if let Some(k) = st.readers.iter().rposition(|&t| t == crate::watch::task_id()) {
            st.readers.swap_remove(k);
        }
    }

    /// Spin until the lock is taken; report a deadlock if the spin can
    /// never end.
    fn spin(&self, write: bool) {
        let state = match &self.state {
            Held::Native(word) => return word.lock(write),
            Held::Model(state) => state,
        };
        crate::cost::rmw(self.line());
        crate::thread::schedule_point();
        let me = crate::watch::task_id();
        let irq = crate::irq::in_interrupt();
        let mut waiting = false;
        if irq && !write {
            let st = state.lock();
            let writer = !st.writers_waiting.is_empty();
            let own = writer && st.readers.contains(&me);
            IRQ_READS.with(|c| {
                let mut n = c.get();
                n[usize::from(!writer)] += 1;
                n[2] += u64::from(own);
                c.set(n);
            });
        }
        loop {
            if self.try_take(state, me, write, irq) {
                break;
            }
            if !waiting {
                waiting = true;
                let lock = state.clone();
                WAITS.with(|w| w.borrow_mut().push(Wait { task: me, lock, kind: self.kind, write, irq }));
            }
            if let Some(cycle) = cycle_from(me) {
                crate::watch::set_site(&cycle, &format!("a {} rwlock", self.kind.name()));
                crate::watch::die(describe(&cycle, self.kind));
            }
            crate::thread::yield_now();
        }
        if waiting {
            WAITS.with(|w| {
                let mut w = w.borrow_mut();
                if let Some(k) = w.iter().rposition(|w| w.task == me) {
                    w.remove(k);
                }
            });
        }
    }

    fn try_take(&self, state: &Shared, me: usize, write: bool, irq: bool) -> bool {
        let mut st = state.lock();
        if write {
            if st.writer.is_none() && st.readers.is_empty() {
                st.writers_waiting.retain(|&t| t != me);
                st.writer = Some(me);
                return true;
            }
            if !st.writers_waiting.contains(&me) {
                st.writers_waiting.push(me);
            }
            return false;
        }
        let behind_writer = !st.writers_waiting.is_empty() && (self.kind == RwLockKind::Fair || !irq);
        if st.writer.is_none() && !behind_writer {
            st.readers.push(me);
            return true;
        }
        false
    }
}

/// Held for read; dropping it is `read_unlock` (and `irqrestore`).
pub struct RwLockReadGuard<'a> {
    lock: &'a RwLock,
    _irq: Option<crate::irq::IrqSave>,
}

impl Drop for RwLockReadGuard<'_> {
    fn drop(&mut self) {
        self.lock.unlock(false);
    }
}

/// Held for write; dropping it is `write_unlock` (and `irqrestore`).
pub struct RwLockWriteGuard<'a> {
    lock: &'a RwLock,
    _irq: Option<crate::irq::IrqSave>,
}

impl Drop for RwLockWriteGuard<'_> {
    fn drop(&mut self) {
        self.lock.unlock(true);
    }
}

/// Held for read or write past the borrow that took it
/// (`RwLock::lock_shared`); dropping it unlocks.
pub struct RwLockHeld {
    lock: std::sync::Arc<RwLock>,
    write: bool,
    _irq: Option<crate::irq::IrqSave>,
}

impl Drop for RwLockHeld {
    fn drop(&mut self) {
        self.lock.unlock(self.write);
    }
}

/// The native lock word, as `qrwlock` keeps it: a reader count above a
/// writer-locked and a writer-waiting bit. Readers queue behind a waiting
/// writer (benchmarks take no interrupts).
mod native {
    use std::sync::atomic::{AtomicU32, Ordering};

    const LOCKED: u32 = 1;
    const WAITING: u32 = 2;
    const READER: u32 = 4;

    /// Spins before a waiter yields its CPU.
    const SPINS: u32 = 1000;

    #[derive(Default)]
    pub(super) struct Word(AtomicU32);

    /// One wait: `cpu_relax` as the kernel's qrwlock spins, so a writer
    /// takes the lock as soon as the last reader leaves; a yield once the
    /// wait is long, for a holder that lost its CPU.
    fn relax(spins: &mut u32) {
        if *spins < SPINS {
            *spins += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }

    impl Word {
        pub(super) fn lock(&self, write: bool) {
            if write {
                return self.write_lock();
            }
            // The fast path is one atomic add, as `queued_read_lock`'s.
            while self.0.fetch_add(READER, Ordering::Acquire) & (LOCKED | WAITING) != 0 {
                self.0.fetch_sub(READER, Ordering::Relaxed);
                let mut spins = 0;
                while self.0.load(Ordering::Relaxed) & (LOCKED | WAITING) != 0 {
                    relax(&mut spins);
                }
            }
        }

        fn write_lock(&self) {
            let mut spins = 0;
            loop {
                let c = self.0.load(Ordering::Relaxed);
                if c & !WAITING == 0 {
                    if self.0.compare_exchange(c, LOCKED, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                        return;
                    }
                } else if c & WAITING == 0 {
                    self.0.fetch_or(WAITING, Ordering::Relaxed);
                }
                relax(&mut spins);
            }
        }

        pub(super) fn read_unlock(&self) {
            self.0.fetch_sub(READER, Ordering::Release);
        }

        pub(super) fn write_unlock(&self) {
            self.0.fetch_and(!LOCKED, Ordering::Release);
        }
    }
}

//! The sync facade: the only code in the workspace that knows whether it runs
//! on real threads (std), under shuttle's controlled scheduler, or under
//! loom's exhaustive C11 model checker.
//!
//! One build serves all three. The backend is chosen at run time by the
//! thread that builds a world (`enter`), and every primitive records the
//! backend it was created under, so a world built inside a shuttle execution
//! is made of shuttle primitives. Shuttle and loom both run their simulated
//! threads as coroutines on the caller's OS thread, which is why a plain
//! thread-local is enough to carry the choice into every task.

mod atomic;
mod backend;
mod choice;
pub mod cost;
#[allow(unsafe_code)]
mod epoch;
mod irq;
mod lock;
mod thread;
mod watch;

pub use atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
pub use backend::{backend, enter, Backend, BackendGuard};
pub use choice::random_below;
pub use epoch::{frees_on_this_thread, Collector, Guard, Handle, Rcu, Retire, Retired};
pub use irq::{clear_irq_handler, in_interrupt, local_irq_save, raise_irq, set_irq_handler, IrqSave};
pub use lock::{irq_reads, Mutex, MutexGuard, RwLock, RwLockHeld, RwLockKind, RwLockReadGuard, RwLockWriteGuard};
pub use thread::{schedule_point, spawn, steps, yield_now, JoinHandle};
pub use watch::{
    begin_segment, current_fn, default_step_bound, die, die_with, failure_site, fired, is_quiet, kernel_fn, locate,
    name_task, segment_of, set_quiet, set_task_cpu, simulate, simulated_accesses, take_failure, task_cpu, task_id,
    task_index, task_stack, tick, tick_by, ticks, Bounds, KernelFn, StopOnFailure,
};

/// Start an execution on this thread: the watchdog armed with `bounds`,
/// no interrupt pending, nobody spinning on a lock.
pub fn begin_execution(bounds: Bounds) {
    watch::begin(bounds);
    irq::reset();
    lock::reset();
}

/// Primitives that are never scheduling points, for state that only one
/// thread touches at a time (writer-private counters serialized by a lock, the
/// oracle's bookkeeping). A `plain::Mutex` must never be held across a
/// scheduling point: under shuttle every task shares one OS thread.
pub mod plain {
    pub use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize};
    use std::sync::{MutexGuard, PoisonError};

    /// A std mutex that, like the facade's, ignores poisoning: a panic while
    /// it was held is already a reported failure.
    #[derive(Debug, Default)]
    pub struct Mutex<T>(std::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub const fn new(v: T) -> Self {
            Self(std::sync::Mutex::new(v))
        }

        pub fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(PoisonError::into_inner)
        }

        pub fn get_mut(&mut self) -> &mut T {
            self.0.get_mut().unwrap_or_else(PoisonError::into_inner)
        }

        pub fn into_inner(self) -> T {
            self.0.into_inner().unwrap_or_else(PoisonError::into_inner)
        }
    }
}

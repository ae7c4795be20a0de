use std::cell::Cell;

/// Which world the current OS thread is simulating.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Real OS threads and std primitives.
    Std,
    /// Inside a shuttle execution: every primitive is a scheduling point.
    Shuttle,
    /// Inside a loom model: C11 atomics, exhaustive interleavings.
    Loom,
    /// Real OS threads timed as the kernel would run: std primitives with
    /// none of the model's instrumentation (rwlocks as a bare lock word, no
    /// watchdog ticks, no interrupt bookkeeping). For benchmarks.
    Native,
}

thread_local! {
    static BACKEND: Cell<Backend> = const { Cell::new(Backend::Std) };
}

/// The backend primitives created now on this thread will use.
pub fn backend() -> Backend {
    BACKEND.with(Cell::get)
}

/// Restores the previous backend when dropped.
#[must_use = "the backend is restored when the guard drops"]
pub struct BackendGuard(Backend);

impl Drop for BackendGuard {
    fn drop(&mut self) {
        BACKEND.with(|b| b.set(self.0));
    }
}

/// Select the backend for everything this thread (and, under shuttle or
/// loom, every simulated thread it spawns) creates until the guard drops.
/// Call it first thing inside the shuttle or loom test closure.
pub fn enter(b: Backend) -> BackendGuard {
    BackendGuard(BACKEND.with(|c| c.replace(b)))
}

use crate::backend::{backend, enter, Backend};

pub struct JoinHandle<T>(JoinInner<T>);

enum JoinInner<T> {
    Std(std::thread::JoinHandle<T>),
    Shuttle(shuttle::thread::JoinHandle<T>),
    Loom(loom::thread::JoinHandle<T>),
}

/// Spawn a simulated thread (a CPU or a device) on the current backend.
/// Real OS threads inherit the spawner's backend so they build std objects.
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    crate::watch::set_quiet(false);
    JoinHandle(match backend() {
        b @ (Backend::Std | Backend::Native) => {
            let bounds = crate::watch::bounds();
            JoinInner::Std(std::thread::spawn(move || {
                let _g = enter(b);
                // A new OS thread: its interrupt and lock state start empty.
                crate::watch::begin(bounds);
                f()
            }))
        }
        Backend::Shuttle => JoinInner::Shuttle(shuttle::thread::spawn(f)),
        Backend::Loom => JoinInner::Loom(loom::thread::spawn(f)),
    })
}

impl<T> JoinHandle<T> {
    /// Wait for the thread; `Err` carries its panic payload.
    pub fn join(self) -> std::thread::Result<T> {
        match self.0 {
            JoinInner::Std(h) => h.join(),
            JoinInner::Shuttle(h) => h.join(),
            JoinInner::Loom(h) => h.join(),
        }
    }
}

/// Give up the CPU, e.g. inside a spin loop. Under loom this also tells the
/// checker the thread cannot progress until another one does.
pub fn yield_now() {
    crate::watch::tick();
    match backend() {
        Backend::Std | Backend::Native => std::thread::yield_now(),
        Backend::Shuttle => {
            shuttle::thread::yield_now();
            crate::irq::poll();
        }
        Backend::Loom => loom::thread::yield_now(),
    }
}

/// A plain context switch under shuttle, as its own atomics and locks make
/// before each operation; nothing while a single thread builds or checks a
/// world (`set_quiet`), nor under std or loom.
pub(crate) fn switch_point() {
    if backend() == Backend::Shuttle && !crate::watch::is_quiet() {
        shuttle::thread::sleep(std::time::Duration::ZERO);
    }
}

/// A place where the scheduler may switch to another thread, and where the
/// thread may take an interrupt (see `irq`). Free under std; under shuttle a plain context switch (unlike
/// `yield_now`, which PCT treats as a hint to deprioritise the caller).
/// Loom switches only at its own atomics, so this is a no-op there.
#[inline]
pub fn schedule_point() {
    if crate::watch::is_quiet() {
        return;
    }
    crate::watch::tick();
    if backend() == Backend::Shuttle {
        shuttle::thread::sleep(std::time::Duration::ZERO);
        crate::irq::poll();
    }
}

/// Scheduling decisions taken so far in the current shuttle execution (its
/// "steps"); 0 outside shuttle.
pub fn steps() -> u64 {
    match backend() {
        Backend::Shuttle => shuttle::current::context_switches() as u64,
        Backend::Std | Backend::Native | Backend::Loom => 0,
    }
}

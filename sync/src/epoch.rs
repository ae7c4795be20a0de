//! The epoch-protected pointer: the Rust stand-in for an `__rcu` pointer with
//! `rcu_dereference`, `rcu_assign_pointer` and `kfree_rcu`. This module is
//! the only place in the workspace with `unsafe`.
//!
//! Under std and shuttle it is crossbeam-epoch through an explicit
//! [`Collector`] with one [`Handle`] (epoch participant) per simulated thread.
//! The global default collector is never used: it keys participants by OS
//! thread, and every shuttle task shares one OS thread.
//!
//! Under loom the pointer is a loom `AtomicPtr`, so loom explores which array
//! a reader sees; nothing is reclaimed until the `Rcu` is dropped, because
//! crossbeam's own fences are invisible to loom and could not justify a free.

use crate::backend::{backend, Backend};
use crate::thread::schedule_point;
use crossbeam_epoch as cb;
use std::sync::atomic::Ordering;

thread_local! {
    /// Replaced objects this OS thread has freed.
    static FREED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn count_free(n: u64) {
    FREED.with(|f| f.set(f.get() + n));
}

/// How many replaced objects the calling OS thread has freed: shows who
/// pays for reclamation, readers or the writer.
pub fn frees_on_this_thread() -> u64 {
    FREED.with(std::cell::Cell::get)
}

/// Owns the epoch state of one simulated machine.
pub struct Collector(Option<cb::Collector>);

impl Collector {
    pub fn new() -> Self {
        Self(match backend() {
            Backend::Loom => None,
            Backend::Std | Backend::Native | Backend::Shuttle => Some(cb::Collector::new()),
        })
    }

    /// A new participant, for one simulated thread. Not `Send`: register it
    /// on the thread that will use it.
    pub fn register(&self) -> Handle {
        Handle(self.0.as_ref().map(cb::Collector::register))
    }
}

impl Default for Collector {
    fn default() -> Self {
        Self::new()
    }
}

/// The contention model's name for the collector's global epoch word.
const GLOBAL_EPOCH_LINE: u64 = u64::MAX;

/// One simulated thread's epoch participant.
pub struct Handle(Option<cb::LocalHandle>);

impl Handle {
    /// Enter a read-side critical section (`rcu_read_lock`).
    pub fn pin(&self) -> Guard {
        // The participant's own epoch word, and the global epoch it copies.
        crate::cost::write_private(crate::cost::line_of(self));
        crate::cost::read(GLOBAL_EPOCH_LINE);
        Guard(self.0.as_ref().map(cb::LocalHandle::pin))
    }

    pub fn is_pinned(&self) -> bool {
        self.0.as_ref().is_some_and(cb::LocalHandle::is_pinned)
    }

    /// `synchronize_rcu`: return once every reader pinned before the call
    /// has unpinned. Under loom nothing is reclaimed, so there is nothing to
    /// wait for.
    pub fn synchronize(&self) {
        let Some(h) = &self.0 else { return };
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = done.clone();
        h.pin().defer(move || flag.store(true, Ordering::Release));
        while !done.load(Ordering::Acquire) {
            h.pin().flush();
            crate::thread::yield_now();
        }
    }
}

/// A pinned read-side critical section; references loaded under it stay
/// valid until it drops.
pub struct Guard(Option<cb::Guard>);

impl Guard {
    /// Push this participant's deferred frees to the global queue and run
    /// those whose grace period has passed. Writers call it so that readers
    /// do not pay for reclamation.
    pub fn flush(&self) {
        if let Some(g) = &self.0 {
            g.flush();
        }
    }

    /// Run `f` once every reader pinned now has unpinned (`call_rcu`).
    /// Under loom nothing is reclaimed, so `f` never runs.
    pub fn defer(&self, f: impl FnOnce() + Send + 'static) {
        if let Some(g) = &self.0 {
            g.defer(f);
        }
    }

    fn epoch(&self) -> &cb::Guard {
        self.0.as_ref().expect("an epoch guard from a loom handle used on a std/shuttle Rcu")
    }
}

/// What a retired object does when it is freed while a reader may still see
/// it: a model-mode use-after-free becomes an observable flag, not UB.
pub trait Retire: Send + Sync + 'static {
    fn poison(&self);
}

/// An epoch-protected pointer to a `T`; never null.
///
/// Each published object has a version, the first 0. A model that keeps
/// the pointer itself in simulated memory stores the version there and
/// maps what a CPU reads back with [`Rcu::load_version`], so a CPU that has
/// not yet seen a new pointer still finds the object it replaced, for as
/// long as the writer has not retired it.
pub struct Rcu<T: Retire> {
    slot: Slot<T>,
    /// Objects past their grace period, waiting for the writer to free them
    /// (see [`Retired::defer_to_writer`]).
    graveyard: std::sync::Arc<crate::plain::Mutex<Vec<Box<T>>>>,
    /// The current version, and the replaced objects not yet retired; one
    /// lock so that a lookup sees a publication whole.
    versions: crate::plain::Mutex<Versions<T>>,
}

struct Versions<T> {
    current: u64,
    replaced: Vec<(u64, *const T)>,
}

enum Slot<T> {
    Epoch(cb::Atomic<T>),
    Loom { ptr: loom::sync::atomic::AtomicPtr<T>, retired: crate::plain::Mutex<Vec<*mut T>> },
}

// SAFETY: the raw pointers in `Slot::Loom` and in `versions` are uniquely
// owned boxes of `T` that are only dereferenced as `&T`; `T: Send + Sync`
// makes sharing them safe.
unsafe impl<T: Retire> Send for Rcu<T> {}
unsafe impl<T: Retire> Sync for Rcu<T> {}

impl<T: Retire> Rcu<T> {
    pub fn new(v: T) -> Self {
        let slot = match backend() {
            Backend::Loom => Slot::Loom {
                ptr: loom::sync::atomic::AtomicPtr::new(Box::into_raw(Box::new(v))),
                retired: crate::plain::Mutex::new(Vec::new()),
            },
            Backend::Std | Backend::Native | Backend::Shuttle => Slot::Epoch(cb::Atomic::new(v)),
        };
        Self {
            slot,
            graveyard: Default::default(),
            versions: crate::plain::Mutex::new(Versions { current: 0, replaced: Vec::new() }),
        }
    }

    /// The version of the current object.
    pub fn version(&self) -> u64 {
        self.versions.lock().current
    }

    /// The version `read` returns and the object published as it, if it is
    /// current or replaced but not yet retired; valid while `g` is held.
    /// `read` (a load of the version from wherever the model keeps the
    /// pointer) runs under the lock retirement takes, so on real threads a
    /// version cannot be retired between its load and its lookup. Not a
    /// scheduling point: `read` must not be one either.
    pub fn load_version<'g>(&'g self, g: &'g Guard, read: impl FnOnce() -> u64) -> (u64, Option<&'g T>) {
        let versions = self.versions.lock();
        let v = read();
        if v == versions.current {
            return (v, Some(self.current(g)));
        }
        let Some(&(_, p)) = versions.replaced.iter().find(|(u, _)| *u == v) else { return (v, None) };
        // SAFETY: a replaced object leaves `replaced` only when it is
        // handed to the collector, which frees it only after every guard
        // pinned before then, `g` included, is gone.
        (v, Some(unsafe { &*p }))
    }

    fn current<'g>(&'g self, g: &'g Guard) -> &'g T {
        match &self.slot {
            Slot::Epoch(a) => {
                let p = a.load(Ordering::Acquire, g.epoch());
                // SAFETY: the pointer is never null, and an object replaced
                // after this load is only destroyed once `g` is unpinned.
                unsafe { p.deref() }
            }
            Slot::Loom { ptr, .. } => {
                // SAFETY: under loom no object is freed before `self` drops,
                // and the returned reference cannot outlive `self`.
                unsafe { &*ptr.load(Ordering::Acquire) }
            }
        }
    }

    /// Free what [`Retired::defer_to_writer`] handed back. Writers call it
    /// so that readers never run destructors.
    pub fn reclaim(&self) {
        let dead = std::mem::take(&mut *self.graveyard.lock());
        count_free(dead.len() as u64);
        drop(dead);
    }

    /// `rcu_dereference`: the current object, valid while `g` is held.
    /// A scheduling point under shuttle.
    pub fn load<'g>(&'g self, g: &'g Guard) -> &'g T {
        schedule_point();
        self.current(g)
    }

    /// The current object, for what only the oracle may see: not a
    /// scheduling point, so looking does not change the schedule.
    pub fn peek<'g>(&'g self, g: &'g Guard) -> &'g T {
        self.current(g)
    }

    /// Whether `obj` is still the current object; not a scheduling point.
    pub fn is_current(&self, obj: &T, g: &Guard) -> bool {
        match &self.slot {
            Slot::Epoch(a) => std::ptr::eq(a.load(Ordering::Acquire, g.epoch()).as_raw(), obj),
            Slot::Loom { ptr, .. } => std::ptr::eq(ptr.load(Ordering::Acquire), obj),
        }
    }

    /// `rcu_assign_pointer`: make `new` the current object and hand back the
    /// one it replaced, which must then be retired. A scheduling point under
    /// shuttle.
    pub fn publish<'g>(&'g self, new: T, g: &'g Guard) -> Retired<'g, T> {
        schedule_point();
        let mut versions = self.versions.lock();
        let old = match &self.slot {
            Slot::Epoch(a) => Old::Epoch(a.swap(cb::Owned::new(new), Ordering::AcqRel, g.epoch())),
            Slot::Loom { ptr, .. } => Old::Loom(ptr.swap(Box::into_raw(Box::new(new)), Ordering::AcqRel)),
        };
        let version = versions.current;
        let raw = match old {
            Old::Epoch(p) => p.as_raw(),
            Old::Loom(p) => p.cast_const(),
        };
        versions.replaced.push((version, raw));
        versions.current += 1;
        Retired { rcu: self, old, guard: g, version }
    }
}

impl<T: Retire> Drop for Rcu<T> {
    fn drop(&mut self) {
        match &mut self.slot {
            Slot::Epoch(a) => {
                let a = std::mem::replace(a, cb::Atomic::null());
                // SAFETY: `&mut self` proves no reader holds a reference
                // derived from this pointer; replaced objects own themselves
                // through their deferred destructors.
                drop(unsafe { a.into_owned() });
            }
            Slot::Loom { ptr, retired } => {
                let cur = ptr.with_mut(|p| *p);
                for p in retired.get_mut().drain(..).chain([cur]) {
                    // SAFETY: each pointer came from `Box::into_raw` exactly once.
                    drop(unsafe { Box::from_raw(p) });
                }
            }
        }
    }
}

/// A raw pointer moved into a deferred closure.
struct SendPtr<T>(*mut T);

enum Old<'g, T> {
    Epoch(cb::Shared<'g, T>),
    Loom(*mut T),
}

/// An object unlinked by [`Rcu::publish`]; readers that loaded it before the
/// swap may still be using it.
#[must_use = "a replaced object must be retired with defer_free or free_now"]
pub struct Retired<'g, T: Retire> {
    rcu: &'g Rcu<T>,
    old: Old<'g, T>,
    guard: &'g Guard,
    version: u64,
}

impl<'g, T: Retire> Retired<'g, T> {
    /// The replaced object, for the writer to read before retiring it.
    pub fn get(&self) -> &'g T {
        match self.old {
            // SAFETY: the writer's guard keeps the replaced object alive.
            Old::Epoch(p) => unsafe { p.deref() },
            // SAFETY: loom mode frees nothing before the `Rcu` drops.
            Old::Loom(p) => unsafe { &*p },
        }
    }

    /// No longer found by [`Rcu::load_version`]: it is being retired.
    fn unlist(&self) {
        self.rcu.versions.lock().replaced.retain(|(v, _)| *v != self.version);
    }

    /// `kfree_rcu`: free it once every reader that might see it is gone.
    pub fn defer_free(self) {
        self.unlist();
        match self.old {
            Old::Epoch(p) => {
                let raw = SendPtr(p.as_raw().cast_mut());
                let free = move || {
                    let raw = raw;
                    count_free(1);
                    // SAFETY: unlinked by `publish` and past its grace period
                    // when this runs; the pointer came from `Owned::new`.
                    drop(unsafe { Box::from_raw(raw.0) });
                };
                // SAFETY: the object is unlinked, so only readers pinned
                // before the swap can reach it, and the collector waits for
                // them before running `free`.
                unsafe { self.guard.epoch().defer_unchecked(free) }
            }
            Old::Loom(p) => self.keep_until_drop(p),
        }
    }

    /// As `defer_free`, but whoever ends the grace period only hands the
    /// object back; [`Rcu::reclaim`] frees it. Crossbeam runs deferred work
    /// in whichever participant collects, every 128th pin a reader; this
    /// keeps destructors off the readers' path.
    pub fn defer_to_writer(self) {
        self.unlist();
        match self.old {
            Old::Epoch(p) => {
                let (grave, raw) = (self.rcu.graveyard.clone(), SendPtr(p.as_raw().cast_mut()));
                let hand_back = move || {
                    let raw = raw;
                    // SAFETY: unlinked by `publish` and past its grace period
                    // when this runs; the pointer came from `Owned::new`.
                    let b = unsafe { Box::from_raw(raw.0) };
                    grave.lock().push(b);
                };
                // SAFETY: the closure only moves the object into the
                // graveyard once no reader can reach it.
                unsafe { self.guard.epoch().defer_unchecked(hand_back) }
            }
            Old::Loom(p) => self.keep_until_drop(p),
        }
    }

    /// The bug this harness must catch: free without a grace period. The
    /// object is poisoned at once, so a reader still inside its critical
    /// section sees the flag; its memory is still only released after the
    /// grace period, keeping the bug observable and the process sound.
    pub fn free_now(self) {
        self.get().poison();
        self.defer_free();
    }

    fn keep_until_drop(&self, p: *mut T) {
        if let Slot::Loom { retired, .. } = &self.rcu.slot {
            retired.lock().push(p);
        }
    }
}

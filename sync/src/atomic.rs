use crate::backend::{backend, Backend};
pub use std::sync::atomic::Ordering;

/// A memory fence: a real one under std, a C11 fence loom reasons about, and
/// a scheduling point (shuttle is sequentially consistent, so it is no more)
/// under shuttle.
pub fn fence(order: Ordering) {
    match backend() {
        Backend::Std | Backend::Native => std::sync::atomic::fence(order),
        Backend::Shuttle => shuttle::sync::atomic::fence(order),
        Backend::Loom => loom::sync::atomic::fence(order),
    }
}

/// Each operation of an atomic runs on its backend's type; under shuttle,
/// a std atomic after a context switch, which is all shuttle's own
/// atomics are to this model (it keeps its own memory model in `hwmodel`),
/// without the switch while a single thread builds or checks a world.
macro_rules! op {
    ($self:ident, $inner:ident, $a:ident => $e:expr) => {
        match &$self.0 {
            $inner::Std($a) => $e,
            $inner::Shuttle($a) => {
                crate::thread::switch_point();
                $e
            }
            $inner::Loom($a) => $e,
        }
    };
}

macro_rules! atomic {
    ($name:ident, $inner:ident, $t:ty) => {
        pub struct $name($inner);

        enum $inner {
            Std(std::sync::atomic::$name),
            Shuttle(std::sync::atomic::$name),
            Loom(loom::sync::atomic::$name),
        }

        impl $name {
            pub fn new(v: $t) -> Self {
                Self(match backend() {
                    Backend::Std | Backend::Native => $inner::Std(std::sync::atomic::$name::new(v)),
                    Backend::Shuttle => $inner::Shuttle(std::sync::atomic::$name::new(v)),
                    Backend::Loom => $inner::Loom(loom::sync::atomic::$name::new(v)),
                })
            }
            #[inline]
            pub fn load(&self, o: Ordering) -> $t {
                op!(self, $inner, a => a.load(o))
            }
            #[inline]
            pub fn store(&self, v: $t, o: Ordering) {
                op!(self, $inner, a => a.store(v, o))
            }
            #[inline]
            pub fn swap(&self, v: $t, o: Ordering) -> $t {
                op!(self, $inner, a => a.swap(v, o))
            }
            #[inline]
            pub fn compare_exchange(&self, cur: $t, new: $t, ok: Ordering, err: Ordering) -> Result<$t, $t> {
                op!(self, $inner, a => a.compare_exchange(cur, new, ok, err))
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(&self.load(Ordering::Relaxed), f)
            }
        }
    };
    ($name:ident, $inner:ident, $t:ty, int) => {
        atomic!($name, $inner, $t);

        impl $name {
            #[inline]
            pub fn fetch_add(&self, v: $t, o: Ordering) -> $t {
                op!(self, $inner, a => a.fetch_add(v, o))
            }
            #[inline]
            pub fn fetch_sub(&self, v: $t, o: Ordering) -> $t {
                op!(self, $inner, a => a.fetch_sub(v, o))
            }
        }
    };
}

atomic!(AtomicBool, AtomicBoolInner, bool);
atomic!(AtomicU32, AtomicU32Inner, u32, int);
atomic!(AtomicU64, AtomicU64Inner, u64, int);
atomic!(AtomicUsize, AtomicUsizeInner, usize, int);

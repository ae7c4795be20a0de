//! Blocking locks. A panic while a lock is held is already a reported
//! failure of the schedule, so poisoning is ignored rather than turned into a
//! second panic.

use crate::backend::{backend, dispatch, Backend};
use std::ops::{Deref, DerefMut};

fn unpoison<G>(r: Result<G, std::sync::PoisonError<G>>) -> G {
    r.unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A guard enum over the three backends' guard types, derefing to `T`.
macro_rules! guard {
    ($name:ident, $inner:ident, $std:ident, $shuttle:ident, $loom:ident) => {
        pub struct $name<'a, T>($inner<'a, T>);

        enum $inner<'a, T> {
            Std(std::sync::$std<'a, T>),
            Shuttle(shuttle::sync::$shuttle<'a, T>),
            Loom(loom::sync::$loom<'a, T>),
        }

        impl<T> Deref for $name<'_, T> {
            type Target = T;
            fn deref(&self) -> &T {
                dispatch!(&self.0, $inner, g => g)
            }
        }
    };
}

macro_rules! guard_mut {
    ($name:ident, $inner:ident) => {
        impl<T> DerefMut for $name<'_, T> {
            fn deref_mut(&mut self) -> &mut T {
                dispatch!(&mut self.0, $inner, g => g)
            }
        }
    };
}

guard!(MutexGuard, MutexGuardInner, MutexGuard, MutexGuard, MutexGuard);
guard!(RwLockReadGuard, ReadGuardInner, RwLockReadGuard, RwLockReadGuard, RwLockReadGuard);
guard!(RwLockWriteGuard, WriteGuardInner, RwLockWriteGuard, RwLockWriteGuard, RwLockWriteGuard);
guard_mut!(MutexGuard, MutexGuardInner);
guard_mut!(RwLockWriteGuard, WriteGuardInner);

pub struct Mutex<T>(MutexInner<T>);

enum MutexInner<T> {
    Std(std::sync::Mutex<T>),
    Shuttle(shuttle::sync::Mutex<T>),
    Loom(loom::sync::Mutex<T>),
}

impl<T> Mutex<T> {
    pub fn new(v: T) -> Self {
        Self(match backend() {
            Backend::Std => MutexInner::Std(std::sync::Mutex::new(v)),
            Backend::Shuttle => MutexInner::Shuttle(shuttle::sync::Mutex::new(v)),
            Backend::Loom => MutexInner::Loom(loom::sync::Mutex::new(v)),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, T> {
        MutexGuard(match &self.0 {
            MutexInner::Std(m) => MutexGuardInner::Std(unpoison(m.lock())),
            MutexInner::Shuttle(m) => MutexGuardInner::Shuttle(unpoison(m.lock())),
            MutexInner::Loom(m) => MutexGuardInner::Loom(unpoison(m.lock())),
        })
    }
}

/// A reader-writer lock; models the kernel's `rwlock_t` (the ATS fence).
pub struct RwLock<T>(RwLockInner<T>);

enum RwLockInner<T> {
    Std(std::sync::RwLock<T>),
    Shuttle(shuttle::sync::RwLock<T>),
    Loom(loom::sync::RwLock<T>),
}

impl<T> RwLock<T> {
    pub fn new(v: T) -> Self {
        Self(match backend() {
            Backend::Std => RwLockInner::Std(std::sync::RwLock::new(v)),
            Backend::Shuttle => RwLockInner::Shuttle(shuttle::sync::RwLock::new(v)),
            Backend::Loom => RwLockInner::Loom(loom::sync::RwLock::new(v)),
        })
    }

    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        RwLockReadGuard(match &self.0 {
            RwLockInner::Std(l) => ReadGuardInner::Std(unpoison(l.read())),
            RwLockInner::Shuttle(l) => ReadGuardInner::Shuttle(unpoison(l.read())),
            RwLockInner::Loom(l) => ReadGuardInner::Loom(unpoison(l.read())),
        })
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        RwLockWriteGuard(match &self.0 {
            RwLockInner::Std(l) => WriteGuardInner::Std(unpoison(l.write())),
            RwLockInner::Shuttle(l) => WriteGuardInner::Shuttle(unpoison(l.write())),
            RwLockInner::Loom(l) => WriteGuardInner::Loom(unpoison(l.write())),
        })
    }
}

//! What the kernel around the driver provides: a WARN log the oracle reads,
//! and fail_nth fault injection on every fallible step.

use smmu_sync::plain::{AtomicU64, Mutex};
use std::sync::atomic::Ordering::Relaxed;

use crate::{Errno, InvDesc, Mutant};

/// A driver `WARN_ON`: the code detected a broken invariant and carried on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Warning {
    /// An entry in `to_unref` is not in the array, or is already trash.
    UnrefAbsent(InvDesc),
    /// `merge` produced two entries out of order (or equal): its input
    /// `to_merge` was not sorted.
    MergeUnsorted { index: usize },
    /// `purge` found more trash than entries.
    PurgeCounters { num_invs: usize, num_trashes: usize },
    /// A master's preallocated `build_invs` was too small.
    BuildInvsOverflow { capacity: usize },
}

/// Where an injected failure can land.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultSite {
    InvsMerge,
    InvsPurge,
    /// The per-attachment bookkeeping the kernel allocates in attach_prepare.
    MasterDomain,
}

/// The per-world kernel environment. Writers reach it under their own locks;
/// its state is never held across a scheduling point.
#[derive(Default)]
pub struct Env {
    mutant: Option<Mutant>,
    warnings: Mutex<Vec<Warning>>,
    fallible_calls: AtomicU64,
    fail_nth: AtomicU64,
    injected: Mutex<Option<FaultSite>>,
}

impl Env {
    pub fn new() -> Self {
        Self::default()
    }

    /// A world running with one catalogued bug switched on.
    pub fn with_mutant(mutant: Option<Mutant>) -> Self {
        Self { mutant, ..Self::default() }
    }

    /// Whether the bug `m` is switched on.
    pub fn mutant(&self, m: Mutant) -> bool {
        self.mutant == Some(m)
    }

    pub fn warn(&self, w: Warning) {
        self.warnings.lock().push(w);
    }

    /// The WARNs since the last call.
    pub fn take_warnings(&self) -> Vec<Warning> {
        std::mem::take(&mut *self.warnings.lock())
    }

    /// Like iommufd's fail_nth: the `n`th fallible call from now fails with
    /// `-ENOMEM`; 0 disarms.
    pub fn set_fail_nth(&self, n: u64) {
        self.fallible_calls.store(0, Relaxed);
        *self.injected.lock() = None;
        self.fail_nth.store(n, Relaxed);
    }

    /// Fallible calls made since the last `set_fail_nth`.
    pub fn fallible_calls(&self) -> u64 {
        self.fallible_calls.load(Relaxed)
    }

    /// Where the armed failure landed, once it has.
    pub fn injected(&self) -> Option<FaultSite> {
        *self.injected.lock()
    }

    /// Every allocation the driver makes goes through here first.
    pub fn alloc(&self, site: FaultSite) -> Result<(), Errno> {
        let n = self.fallible_calls.fetch_add(1, Relaxed) + 1;
        if n == self.fail_nth.load(Relaxed) {
            *self.injected.lock() = Some(site);
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }
}

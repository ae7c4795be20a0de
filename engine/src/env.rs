//! What the kernel around the driver provides: a WARN log the oracle reads,
//! and fault injection on every fallible step: iommufd's fail_nth for
//! tests, and a seed-drawn failure rate for runs (FoundationDB's
//! "buggify"), whose every decision is a data choice of the schedule.

use smmu_sync::plain::{AtomicU32, AtomicU64, Mutex};
use smmu_sync::{random_below, RwLockKind};
use std::sync::atomic::Ordering::Relaxed;

use crate::types::InvDesc;
use crate::{Errno, Mutant};
use hwmodel::Goal;

/// Failure rates are in parts per million.
pub const PPM: u32 = 1_000_000;

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
    /// A `WARN_ON` of the series' own C: where, and the condition.
    Kernel { function: String, line: u32, condition: String },
}

/// Where an injected failure can land.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultSite {
    InvsMerge,
    InvsPurge,
    /// The per-attachment bookkeeping the kernel allocates in attach_prepare.
    MasterDomain,
    /// `arm_smmu_domain_alloc`: the domain and its empty array.
    DomainAlloc,
    /// `arm_smmu_attach_prepare_vmaster`, for a nested target.
    Vmaster,
    /// `iommufd_object_alloc`: any iommufd object.
    IommufdObject,
    /// `iommufd_hw_queue_alloc_phys`: the access and its page array.
    HwQueueAccess,
}

impl FaultSite {
    pub const ALL: [FaultSite; 7] = [
        FaultSite::InvsMerge,
        FaultSite::InvsPurge,
        FaultSite::MasterDomain,
        FaultSite::DomainAlloc,
        FaultSite::Vmaster,
        FaultSite::IommufdObject,
        FaultSite::HwQueueAccess,
    ];

    /// The coverage goal an injection here reaches.
    pub fn goal(self) -> Goal {
        match self {
            FaultSite::InvsMerge => Goal::FaultInvsMerge,
            FaultSite::InvsPurge => Goal::FaultInvsPurge,
            FaultSite::MasterDomain => Goal::FaultMasterDomain,
            FaultSite::DomainAlloc => Goal::FaultDomainAlloc,
            FaultSite::Vmaster => Goal::FaultVmaster,
            FaultSite::IommufdObject => Goal::FaultIommufdObject,
            FaultSite::HwQueueAccess => Goal::FaultHwQueueAccess,
        }
    }
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
    /// Chance that any fallible call fails, in parts per million.
    fault_ppm: AtomicU32,
    /// Failures injected at each site, for coverage.
    injections: [AtomicU64; FaultSite::ALL.len()],
    /// How the kernel's `rwlock_t` treats readers behind a waiting writer.
    rwlock: RwLockKind,
}

impl Env {
    pub fn new() -> Self {
        Self::default()
    }

    /// A world running with one catalogued bug switched on.
    pub fn with_mutant(mutant: Option<Mutant>) -> Self {
        Self { mutant, ..Self::default() }
    }

    /// The same world's kernel with `kind` rwlocks.
    pub fn with_rwlock(self, kind: RwLockKind) -> Self {
        Self { rwlock: kind, ..self }
    }

    pub fn rwlock(&self) -> RwLockKind {
        self.rwlock
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

    /// Make every fallible call fail with probability `ppm` / 1e6.
    pub fn set_fault_ppm(&self, ppm: u32) {
        self.fault_ppm.store(ppm.min(PPM), Relaxed);
    }

    /// Every allocation the driver makes goes through here first.
    pub fn alloc(&self, site: FaultSite) -> Result<(), Errno> {
        let n = self.fallible_calls.fetch_add(1, Relaxed) + 1;
        let ppm = u64::from(self.fault_ppm.load(Relaxed));
        // A draw of 0 never fails, so a shrinker zeroing data choices
        // removes faults.
        let buggify = ppm > 0 && random_below(u64::from(PPM)) >= u64::from(PPM) - ppm;
        if n == self.fail_nth.load(Relaxed) || buggify {
            *self.injected.lock() = Some(site);
            self.injections[site as usize].fetch_add(1, Relaxed);
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// Failures injected so far, by site.
    pub fn injections(&self) -> impl Iterator<Item = (FaultSite, u64)> + '_ {
        FaultSite::ALL.iter().map(|s| (*s, self.injections[*s as usize].load(Relaxed)))
    }
}

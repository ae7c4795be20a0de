//! `struct arm_smmu_invs` as patch 3 of seed 001 (v9) writes it, translated
//! statement by statement and not fixed: `arm_smmu_inv_cmp` ignores the
//! SSID, so ATS entries of two PASIDs on one stream ID collapse into one;
//! `arm_smmu_invs_purge` does not set `has_ats` on its copy; a failed purge
//! returns ERR_PTR(-ENOMEM), which the caller publishes.

use crate::env::{Env, FaultSite, Warning};
use crate::types::{Inv, InvDesc, InvsError};
use crate::words::{ArrayWords, View};
use crate::Errno;
use hwmodel::{CpuId, Machine};
use smmu_sync::{plain, AtomicUsize, Ordering::Relaxed, Retire, RwLock, RwLockKind};

/// `arm_smmu_invs`, or the ERR_PTR a failed allocation returned in its
/// place.
pub struct Invs {
    inv: Box<[Inv]>,
    num_invs: AtomicUsize,
    num_trashes: plain::AtomicUsize,
    rwlock: RwLock,
    has_ats: bool,
    words: ArrayWords,
    /// Set when this "array" is really ERR_PTR(err): any dereference oopses.
    err: Option<Errno>,
    poisoned: plain::AtomicBool,
}

impl Retire for Invs {
    fn poison(&self) {
        self.poisoned.store(true, Relaxed);
    }
}

impl Default for Invs {
    fn default() -> Self {
        Self::alloc(Vec::new(), RwLockKind::default())
    }
}

/// `arm_smmu_inv_cmp`: (smmu, type, id), and not the SSID.
fn inv_cmp(l: &InvDesc, r: &InvDesc) -> i32 {
    let (l, r) = ((l.smmu, l.ty, l.id), (r.smmu, r.ty, r.id));
    l.cmp(&r) as i32
}

impl Invs {
    /// `arm_smmu_invs_alloc` filled with `inv`; `has_ats` stays false
    /// unless the caller sets it, as in the seed.
    fn alloc(inv: Vec<Inv>, lock: RwLockKind) -> Self {
        let n = inv.len();
        Self {
            inv: inv.into_boxed_slice(),
            num_invs: AtomicUsize::new(n),
            num_trashes: plain::AtomicUsize::new(0),
            rwlock: RwLock::new(lock),
            has_ats: false,
            words: ArrayWords::default(),
            err: None,
            poisoned: plain::AtomicBool::new(false),
        }
    }

    /// Put the array in simulated memory, written by `cpu`. An ERR_PTR
    /// points at nothing: its walkers oops before reading a word.
    pub fn place(&mut self, m: &Machine, cpu: CpuId) {
        if self.err.is_none() {
            let users: Vec<u32> = self.inv.iter().map(Inv::users).collect();
            self.words.place(m, cpu, self.num_invs(), self.has_ats, &users);
        }
    }

    /// The array as walkers read it.
    pub fn words(&self) -> &ArrayWords {
        &self.words
    }

    /// ERR_PTR(`e`), as published by a caller that only checks for NULL.
    pub fn err_ptr(e: Errno) -> Self {
        Self { err: Some(e), ..Self::default() }
    }

    /// The error this pointer encodes, if it is an ERR_PTR.
    pub fn err(&self) -> Option<Errno> {
        self.err
    }

    pub fn num_invs(&self) -> usize {
        self.num_invs.load(Relaxed)
    }

    pub fn num_trashes(&self) -> usize {
        self.num_trashes.load(Relaxed)
    }

    pub fn has_ats(&self) -> bool {
        self.has_ats
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Relaxed)
    }

    pub fn rwlock(&self) -> &RwLock {
        &self.rwlock
    }

    /// `invs->inv[k]`.
    pub fn inv(&self, k: usize) -> &Inv {
        &self.inv[k]
    }

    /// The entries up to `num_invs`, trash included.
    pub fn entries(&self) -> &[Inv] {
        &self.inv[..self.num_invs().min(self.inv.len())]
    }

    /// `arm_smmu_invs_iter_next`: the first live entry from `next`.
    fn iter_next(&self, next: usize, idx: &mut usize) -> Option<&Inv> {
        let mut next = next;
        loop {
            smmu_sync::tick();
            if next >= self.num_invs() {
                *idx = next;
                return None;
            }
            if self.inv[next].users() == 0 {
                next += 1;
                continue;
            }
            *idx = next;
            return Some(&self.inv[next]);
        }
    }

    /// `arm_smmu_invs_iter_next_cmp`.
    fn iter_next_cmp(&self, next_l: usize, idx_l: &mut usize, r: &[InvDesc], next_r: usize, idx_r: &mut usize) -> i32 {
        let cur_l = self.iter_next(next_l, idx_l);
        *idx_r = next_r;
        let Some(cur_l) = cur_l else { return 1 };
        if next_r >= r.len() {
            return -1;
        }
        inv_cmp(cur_l, &r[next_r])
    }

    /// `arm_smmu_invs_for_each_cmp`: `f(i, j, cmp)` for each step of the
    /// merge walk of this array (live entries) against `r`.
    fn for_each_cmp(&self, r: &[InvDesc], mut f: impl FnMut(usize, usize, i32)) {
        let (mut i, mut j) = (0, 0);
        let mut cmp = self.iter_next_cmp(0, &mut i, r, 0, &mut j);
        while i < self.num_invs() || j < r.len() {
            smmu_sync::tick();
            f(i, j, cmp);
            let (next_i, next_j) = (i + usize::from(cmp <= 0), j + usize::from(cmp >= 0));
            cmp = self.iter_next_cmp(next_i, &mut i, r, next_j, &mut j);
        }
    }

    /// `arm_smmu_invs_merge`.
    pub fn merge(&self, to_merge: &[InvDesc], env: &Env) -> Result<Invs, Errno> {
        let mut num_invs = 0;
        self.for_each_cmp(to_merge, |_, _, _| num_invs += 1);
        env.alloc(FaultSite::InvsMerge)?;
        let mut new: Vec<Inv> = Vec::with_capacity(num_invs);
        let mut has_ats = false;
        self.for_each_cmp(to_merge, |i, j, cmp| {
            let inv = match cmp {
                c if c < 0 => Inv::new(self.inv[i].desc, self.inv[i].users()),
                0 => Inv::new(self.inv[i].desc, self.inv[i].users() + 1),
                _ => Inv::new(to_merge[j], 1),
            };
            // WARN_ON_ONCE(arm_smmu_inv_cmp(new - 1, new) == 1)
            if new.last().is_some_and(|prev| inv_cmp(prev, &inv) == 1) {
                env.warn(Warning::MergeUnsorted { index: new.len() });
            }
            has_ats |= inv.ty.is_ats();
            new.push(inv);
        });
        let mut out = Self::alloc(new, env.rwlock());
        out.has_ats = has_ats;
        Ok(out)
    }

    /// `arm_smmu_invs_unref`; stores go through `v` once the array is
    /// placed.
    pub fn unref(&self, to_unref: &[InvDesc], env: &Env, v: Option<View>, mut free_fn: impl FnMut(&Inv)) {
        let mut num_invs = 0;
        let mut num_trashes = self.num_trashes();
        self.for_each_cmp(to_unref, |i, j, cmp| {
            if cmp < 0 {
                // not found in to_unref, leave alone
                num_invs = i + 1;
            } else if cmp == 0 {
                // refcount_dec_and_test
                let users = self.inv[i].users() - 1;
                self.inv[i].set_users(users);
                self.words.dec_users(v, i);
                if users != 0 {
                    num_invs = i + 1;
                    return;
                }
                free_fn(&self.inv[i]);
                num_trashes += 1;
            } else {
                // item in to_unref is not in invs or already a trash
                env.warn(Warning::UnrefAbsent(to_unref[j]));
            }
        });
        // Exclude any tailing trash
        num_trashes -= self.num_invs() - num_invs;
        self.num_trashes.store(num_trashes, Relaxed);
        // The lock is required to fence concurrent ATS operations.
        let w = self.rwlock.write_lock_irqsave();
        // WRITE_ONCE(invs->num_invs, num_invs)
        self.num_invs.store(num_invs, Relaxed);
        self.words.store_num_invs(v, num_invs);
        // write_unlock_irqrestore: a release.
        if let Some(v) = v {
            v.mem.release(v.cpu);
        }
        drop(w);
    }

    /// `arm_smmu_invs_purge`: `Ok(None)` for NULL, `Err` for ERR_PTR.
    pub fn purge(&self, env: &Env) -> Result<Option<Invs>, Errno> {
        let (num_invs, num_trashes) = (self.num_invs(), self.num_trashes());
        if num_invs < num_trashes {
            env.warn(Warning::PurgeCounters { num_invs, num_trashes });
            return Ok(None);
        }
        if num_invs == 0 || num_trashes == 0 {
            return Ok(None);
        }
        env.alloc(FaultSite::InvsPurge)?;
        // arm_smmu_invs_for_each_entry copies each live entry; the seed
        // never sets has_ats on the copy.
        let mut i = 0;
        let mut new = Vec::with_capacity(num_invs - num_trashes);
        while let Some(inv) = self.iter_next(i, &mut i) {
            new.push(Inv::new(inv.desc, inv.users()));
            i += 1;
        }
        if new.len() != num_invs - num_trashes {
            env.warn(Warning::PurgeCounters { num_invs, num_trashes });
        }
        Ok(Some(Self::alloc(new, env.rwlock())))
    }
}

impl Invs {
    /// Facts 1-2 in the seed's own order (its `arm_smmu_inv_cmp`), and that
    /// an array holding ATS entries says so: its walkers take the ATS read
    /// lock only when `has_ats` is set.
    pub fn check(&self) -> Result<(), InvsError> {
        let (num_invs, num_trashes, max_invs) = (self.num_invs(), self.num_trashes(), self.inv.len());
        if !(num_trashes <= num_invs && num_invs <= max_invs) {
            return Err(InvsError::Counters { num_trashes, num_invs, max_invs });
        }
        let e = self.entries();
        if let Some(index) = (1..e.len()).find(|&k| inv_cmp(&e[k - 1], &e[k]) >= 0) {
            return Err(InvsError::Unsorted { index });
        }
        let counted = e.iter().filter(|i| i.users() == 0).count();
        if counted != 0 {
            return Err(InvsError::TrashInFreshArray { num_trashes: counted });
        }
        if !self.has_ats && e.iter().any(|i| i.ty.is_ats()) {
            return Err(InvsError::HasAtsStale);
        }
        Ok(())
    }
}

impl std::fmt::Debug for Invs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("v9::Invs")
            .field("num_invs", &self.num_invs())
            .field("num_trashes", &self.num_trashes())
            .field("has_ats", &self.has_ats)
            .field("err", &self.err)
            .field("inv", &self.entries())
            .finish()
    }
}

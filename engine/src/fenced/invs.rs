//! The proposal's per-domain invalidation array (the kernel's `struct
//! arm_smmu_invs`), with the fixes of the series' later versions: entries
//! sort and match by SSID too, `users` is a plain counter, purged copies
//! keep `has_ats`, and a failed purge leaves the trash where it is.
//!
//! A sorted array of everything an invalidation of the domain must reach:
//! ASIDs/VMIDs per SMMU and ATC entries per stream ID. Readers walk it
//! without locks under an epoch guard; writers (serialized by the ASID lock)
//! replace it with `merge`/`purge` copies or shrink it in place with `unref`.
//!
//! Costs: `merge` and `unref` are O(n + m) for an array of n and an input of
//! m entries, `purge` is O(n), and iteration is O(n) with no allocation.

use crate::env::{Env, FaultSite, Warning};
use crate::types::{Inv, InvDesc, InvsError};
use crate::words::{ArrayWords, View};
use crate::{Errno, Mutant};
use hwmodel::{CpuId, Machine};
use smmu_sync::{plain, AtomicUsize, Ordering::Relaxed, Retire, RwLock, RwLockKind};
use std::cmp::Ordering;

/// The invalidation array. Replaced copies are retired through an epoch
/// grace period; in model mode a premature free poisons it.
pub struct Invs {
    inv: Box<[Inv]>,
    /// Entries a reader must walk; READ_ONCE by readers, shrunk by `unref`.
    num_invs: AtomicUsize,
    /// Writer-private: only touched under the ASID lock.
    num_trashes: plain::AtomicUsize,
    has_ats: bool,
    /// Held for read by walkers of an array with ATS entries and for write by
    /// `unref`, so that once `unref` returns no ATC invalidation built from
    /// the entries it dropped is still in flight.
    rwlock: RwLock,
    /// `num_invs`, `has_ats` and `users` as other CPUs see them.
    words: ArrayWords,
    poisoned: plain::AtomicBool,
}

impl Retire for Invs {
    fn poison(&self) {
        self.poisoned.store(true, Relaxed);
    }
}

impl Default for Invs {
    fn default() -> Self {
        Self::from_entries(Vec::new(), RwLockKind::default())
    }
}

/// One step of the ordered walk of an array's live entries against a sorted
/// input (`arm_smmu_invs_for_each_cmp`).
enum Step {
    /// Only in the array (index into it).
    Left(usize),
    /// In both (array index, input index).
    Both(usize),
    /// Only in the input (index into it).
    Right(usize),
}

struct CmpWalk<'a> {
    invs: &'a Invs,
    input: &'a [InvDesc],
    end: usize,
    i: usize,
    j: usize,
}

impl Iterator for CmpWalk<'_> {
    type Item = Step;

    fn next(&mut self) -> Option<Step> {
        while self.i < self.end && self.invs.inv[self.i].users() == 0 {
            self.i += 1;
        }
        let left = self.invs.inv[..self.end].get(self.i);
        let order = match (left, self.input.get(self.j)) {
            (None, None) => return None,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(l), Some(r)) => l.cmp_key(r),
        };
        let step = match order {
            Ordering::Less => Step::Left(self.i),
            Ordering::Equal => Step::Both(self.i),
            Ordering::Greater => Step::Right(self.j),
        };
        self.i += usize::from(order.is_le());
        self.j += usize::from(order.is_ge());
        Some(step)
    }
}

impl Invs {
    fn from_entries(inv: Vec<Inv>, lock: RwLockKind) -> Self {
        let n = inv.len();
        Self {
            has_ats: inv.iter().any(|i| i.ty.is_ats()),
            inv: inv.into_boxed_slice(),
            num_invs: AtomicUsize::new(n),
            num_trashes: plain::AtomicUsize::new(0),
            rwlock: RwLock::new(lock),
            words: ArrayWords::default(),
            poisoned: plain::AtomicBool::new(false),
        }
    }

    /// Put the array in simulated memory, written by `cpu`: what other CPUs
    /// read once they find it.
    pub fn place(&mut self, m: &Machine, cpu: CpuId) {
        let users: Vec<u32> = self.inv.iter().map(Inv::users).collect();
        self.words.place(m, cpu, self.num_invs(), self.has_ats, &users);
        if let Some(line) = self.words.line() {
            self.rwlock.set_line(line);
        }
    }

    /// The array as walkers read it.
    pub fn words(&self) -> &ArrayWords {
        &self.words
    }

    /// An empty array, as every domain starts with.
    pub fn new() -> Self {
        Self::default()
    }

    pub fn max_invs(&self) -> usize {
        self.inv.len()
    }

    /// READ_ONCE of the walk length.
    pub fn num_invs(&self) -> usize {
        self.num_invs.load(Relaxed)
    }

    pub fn num_trashes(&self) -> usize {
        self.num_trashes.load(Relaxed)
    }

    pub fn has_ats(&self) -> bool {
        self.has_ats
    }

    /// True once the array was freed; a reader that sees it used freed memory.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Relaxed)
    }

    /// The ATS fence.
    pub fn rwlock(&self) -> &RwLock {
        &self.rwlock
    }

    /// Entry `k`, whatever `num_invs` says now.
    pub fn inv(&self, k: usize) -> &Inv {
        &self.inv[k]
    }

    /// All entries up to `num_invs`, trash included.
    pub fn entries(&self) -> &[Inv] {
        &self.inv[..self.num_invs().min(self.inv.len())]
    }

    /// The live entries, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Inv> {
        self.entries().iter().filter(|i| i.users() != 0)
    }

    fn cmp_walk<'a>(&'a self, input: &'a [InvDesc]) -> CmpWalk<'a> {
        CmpWalk { invs: self, input, end: self.entries().len(), i: 0, j: 0 }
    }

    /// A new array holding this one's live entries plus `to_merge` (sorted):
    /// matching entries gain a user, new ones start with one. Trash is
    /// dropped. An unsorted `to_merge` is warned about, as the kernel does.
    pub fn merge(&self, to_merge: &[InvDesc], env: &Env) -> Result<Invs, Errno> {
        env.alloc(FaultSite::InvsMerge)?;
        let mut out: Vec<Inv> = Vec::with_capacity(self.entries().len() + to_merge.len());
        for step in self.cmp_walk(to_merge) {
            let (desc, users) = match step {
                Step::Left(i) => (self.inv[i].desc, self.inv[i].users()),
                Step::Both(i) => (self.inv[i].desc, self.inv[i].users() + 1),
                Step::Right(j) => (to_merge[j], 1),
            };
            if out.last().is_some_and(|prev| prev.cmp_key(&desc).is_ge()) {
                env.warn(Warning::MergeUnsorted { index: out.len() });
            }
            out.push(Inv::new(desc, users));
        }
        Ok(Self::from_entries(out, env.rwlock()))
    }

    /// Drop one user from each entry of `to_unref`, in place. Cannot fail.
    /// `free_fn` runs for each entry that reaches zero users; trailing trash
    /// is trimmed from `num_invs` under the write lock. Stores go through
    /// `v` once the array is placed. Returns `num_trashes`.
    pub fn unref(&self, to_unref: &[InvDesc], env: &Env, v: Option<View>, mut free_fn: impl FnMut(&Inv)) -> usize {
        let old_num = self.entries().len();
        let mut num = 0;
        let mut trashes = self.num_trashes();
        for step in self.cmp_walk(to_unref) {
            match step {
                Step::Left(i) => num = i + 1,
                Step::Both(i) => {
                    let inv = &self.inv[i];
                    let users = inv.users() - 1;
                    inv.set_users(users);
                    self.words.store_users(v, i, users);
                    if users > 0 {
                        num = i + 1;
                    } else {
                        free_fn(inv);
                        trashes += 1;
                    }
                }
                Step::Right(j) => env.warn(Warning::UnrefAbsent(to_unref[j])),
            }
        }
        // Everything from `num` on is trash, counted above or by an earlier unref.
        trashes -= old_num - num;
        self.num_trashes.store(trashes, Relaxed);
        // Taking the write lock waits out every walker that may still issue
        // ATC invalidations built from the entries just dropped.
        let fence = (!env.mutant(Mutant::UnrefWithoutAtsFence)).then(|| self.rwlock.write_lock_irqsave());
        self.num_invs.store(num, Relaxed);
        self.words.store_num_invs(v, num);
        if let (Some(_), Some(v)) = (&fence, v) {
            // write_unlock's release: the next reader sees what unref wrote.
            v.mem.release(v.cpu);
        }
        drop(fence);
        trashes
    }

    /// A new array without the trash, or `None` when there is none to drop.
    pub fn purge(&self, env: &Env) -> Result<Option<Invs>, Errno> {
        let (num_invs, num_trashes) = (self.entries().len(), self.num_trashes());
        if num_invs < num_trashes {
            env.warn(Warning::PurgeCounters { num_invs, num_trashes });
            return Ok(None);
        }
        if num_invs == 0 || num_trashes == 0 {
            return Ok(None);
        }
        env.alloc(FaultSite::InvsPurge)?;
        Ok(Some(Self::from_entries(self.iter().map(|i| Inv::new(i.desc, i.users())).collect(), env.rwlock())))
    }

    /// Facts 1-2: strictly sorted, counters consistent, `has_ats` true when
    /// any ATS entry exists. `fresh` adds the rule for merge/purge results:
    /// no trash at all.
    pub fn check(&self, fresh: bool) -> Result<(), InvsError> {
        let (num_invs, num_trashes, max_invs) = (self.num_invs(), self.num_trashes(), self.max_invs());
        if !(num_trashes <= num_invs && num_invs <= max_invs) {
            return Err(InvsError::Counters { num_trashes, num_invs, max_invs });
        }
        let entries = self.entries();
        if let Some(index) = (1..entries.len()).find(|&k| entries[k - 1].cmp_key(&entries[k]).is_ge()) {
            return Err(InvsError::Unsorted { index });
        }
        let counted = entries.iter().filter(|i| i.users() == 0).count();
        if counted != num_trashes {
            return Err(InvsError::TrashCount { counted, recorded: num_trashes });
        }
        if fresh && num_trashes != 0 {
            return Err(InvsError::TrashInFreshArray { num_trashes });
        }
        if !self.has_ats && entries.iter().any(|i| i.ty.is_ats()) {
            return Err(InvsError::HasAtsStale);
        }
        Ok(())
    }
}

impl std::fmt::Debug for Invs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invs")
            .field("num_invs", &self.num_invs())
            .field("num_trashes", &self.num_trashes())
            .field("max_invs", &self.max_invs())
            .field("has_ats", &self.has_ats)
            .field("inv", &self.entries())
            .finish()
    }
}

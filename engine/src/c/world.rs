//! One world's state behind the series' C, and the model's side of each
//! shim primitive: the C's heap and where each block lives in model
//! memory, its rwlocks, the arrays it published (with their versions, for
//! the trace), the fault site of the call in progress. Every primitive
//! that another CPU could observe goes through the model's memory with its
//! store buffers, and is a scheduling point. Without a kernel (the series'
//! test, the differential test) the primitives act on the C's memory only.

use super::heap::{extract, insert, Freed, Heap};
use super::Series;
use crate::env::{FaultSite, Warning};
use crate::kernel::Kernel;
use crate::types::{Inv, InvDesc, InvType, InvsError};
use crate::Mutant;
use hwmodel::{Actor, CpuId, DomainId, EndpointId, Event, Goal, SmmuId, ViolationKind, Word, PAGE};
use smmu_sync::{plain, RwLock, RwLockHeld};
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

struct Held {
    task: usize,
    lock: u64,
    write: bool,
    /// Until the C unlocks it: dropping it unlocks.
    _guard: RwLockHeld,
}

/// The largest value `IS_ERR` takes for an error pointer.
const MAX_ERRNO: usize = 4095;

pub(super) fn is_err(p: usize) -> bool {
    p > usize::MAX - MAX_ERRNO
}

pub(super) struct World {
    pub series: Arc<Series>,
    heap: plain::Mutex<Heap>,
    locks: plain::Mutex<Vec<Arc<RwLock>>>,
    held: plain::Mutex<Vec<Held>>,
    /// Blocks `kfree_rcu` freed, to poison after the next grace period.
    pending_rcu: plain::Mutex<Vec<usize>>,
    /// The C domain at each host address, and each array's version: the
    /// order its domain published it in (0: the first, empty one).
    domains: plain::Mutex<HashMap<usize, DomainId>>,
    versions: plain::Mutex<HashMap<usize, u64>>,
    current: plain::Mutex<HashMap<DomainId, u64>>,
    /// The fault site of each task's call in progress: another task may
    /// run (and allocate) while one is inside the C.
    site: plain::Mutex<HashMap<usize, FaultSite>>,
    /// The SMMU array (one block, in id order) and each master's struct.
    smmus: plain::Mutex<Option<usize>>,
    masters: plain::Mutex<HashMap<EndpointId, usize>>,
    /// The attach state (attaches are serialized by the ASID lock).
    state: plain::Mutex<Option<usize>>,
    /// The array each task's walk loaded last, and the commands it issued.
    loaded: plain::Mutex<HashMap<usize, usize>>,
    issued: plain::Mutex<HashMap<usize, usize>>,
    /// Without a kernel: the next allocation fails; the WARNs hit.
    pub fail_next: plain::AtomicBool,
    pub warnings: plain::Mutex<Vec<Warning>>,
}

fn cpu() -> CpuId {
    CpuId(smmu_sync::task_cpu().unwrap_or(0))
}

impl World {
    pub fn new(series: Arc<Series>) -> Self {
        Self {
            series,
            heap: Default::default(),
            locks: Default::default(),
            held: Default::default(),
            pending_rcu: Default::default(),
            domains: Default::default(),
            versions: Default::default(),
            current: Default::default(),
            site: Default::default(),
            smmus: Default::default(),
            masters: Default::default(),
            state: Default::default(),
            loaded: Default::default(),
            issued: Default::default(),
            fail_next: Default::default(),
            warnings: Default::default(),
        }
    }

    /// Allocate `size` bytes for the C without a fault site, its model
    /// memory at `model` (0: a fresh range).
    pub fn alloc_at(&self, k: Option<&Kernel>, size: usize, model: u64) -> usize {
        let model = match (model, k) {
            (0, Some(k)) => k.machine.alloc((size as u64).next_power_of_two().max(PAGE)),
            (m, _) => m,
        };
        self.heap.lock().alloc(size, model)
    }

    /// This task's calls into the C allocate at `site` (until `None`).
    pub fn set_site(&self, site: Option<FaultSite>) {
        let task = smmu_sync::task_id();
        match site {
            Some(s) => self.site.lock().insert(task, s),
            None => self.site.lock().remove(&task),
        };
    }

    pub fn register_domain(&self, host: usize, id: DomainId) {
        self.domains.lock().insert(host, id);
    }

    pub fn smmus(&self) -> Option<usize> {
        *self.smmus.lock()
    }

    pub fn set_smmus(&self, base: usize) {
        *self.smmus.lock() = Some(base);
    }

    pub fn master(&self, ep: EndpointId) -> Option<usize> {
        self.masters.lock().get(&ep).copied()
    }

    pub fn set_master(&self, ep: EndpointId, host: usize) {
        self.masters.lock().insert(ep, host);
    }

    pub fn state(&self) -> Option<usize> {
        *self.state.lock()
    }

    pub fn set_state(&self, host: usize) {
        *self.state.lock() = Some(host);
    }

    /// The blocks `kfree_rcu` freed since the last call.
    pub fn take_pending_rcu(&self) -> Vec<usize> {
        std::mem::take(&mut *self.pending_rcu.lock())
    }

    /// Poison a block whose grace period has passed.
    pub fn poison(&self, host: usize) {
        if let Some(b) = self.heap.lock().find_mut(host) {
            b.freed = Freed::Yes;
        }
    }

    /// A walk begins on this task: forget what the last one loaded.
    pub fn begin_walk(&self) {
        self.loaded.lock().remove(&smmu_sync::task_id());
        self.issued.lock().insert(smmu_sync::task_id(), 0);
    }

    /// The array the walk loaded, and the commands it issued.
    pub fn end_walk(&self) -> (Option<usize>, usize) {
        let task = smmu_sync::task_id();
        (self.loaded.lock().remove(&task), self.issued.lock().remove(&task).unwrap_or(0))
    }

    /// The word of a heap address, after checking it was not freed: a read
    /// or write of a freed block through a primitive is a use-after-free.
    fn word(&self, addr: usize, what: &str) -> Option<super::heap::Word> {
        let (w, freed) = self.heap.lock().word(addr)?;
        if freed == Freed::Yes {
            smmu_sync::die(format!(
                "{}: the series' C {what} {addr:#x}, in a block it had freed",
                ViolationKind::UseAfterFree.name()
            ));
        }
        Some(w)
    }

    /// `READ_ONCE`: the CPU's own newest store, else what memory holds; a
    /// word the model never saw stored reads as the C wrote it.
    pub fn read(&self, k: Option<&Kernel>, addr: usize, size: usize) -> Option<u64> {
        let w = self.word(addr, "read")?;
        let seen = k.and_then(|k| {
            k.machine.mem.before_load();
            k.machine.mem.peek_opt(cpu(), w.model)
        });
        let heap = self.heap.lock();
        // A word `rcu_assign_pointer` wrote holds a model address there.
        let seen = seen.map(|v| if heap.is_pointer(w.model) { heap.to_host(v) as u64 } else { v });
        let word = seen.or_else(|| heap.get(w.host))?;
        Some(extract(word, addr - w.host, size))
    }

    /// `WRITE_ONCE`: the C's memory at once (its own later plain loads see
    /// it), another CPU once the store drains.
    pub fn write(&self, k: Option<&Kernel>, addr: usize, size: usize, val: u64) -> bool {
        let Some(w) = self.word(addr, "wrote") else { return false };
        let word = {
            let heap = self.heap.lock();
            let word = insert(heap.get(w.host).unwrap_or(0), addr - w.host, size, val);
            heap.set(w.host, word);
            word
        };
        if let Some(k) = k {
            k.machine.mem.store(cpu(), w.model, word);
        }
        true
    }

    /// An atomic add to `size` bytes (a refcount); `ordered`: a full barrier
    /// first. Returns the old value, as this CPU's view has it.
    pub fn add(&self, k: Option<&Kernel>, addr: usize, size: usize, delta: i64, ordered: bool) -> Option<u64> {
        let w = self.word(addr, "updated")?;
        if let (true, Some(k)) = (ordered, k) {
            k.machine.mem.smp_mb(cpu());
        }
        let shift = addr - w.host;
        let (old, word) = {
            let heap = self.heap.lock();
            let word = heap.get(w.host).unwrap_or(0);
            let old = extract(word, shift, size);
            let new = insert(word, shift, size, old.wrapping_add_signed(delta));
            heap.set(w.host, new);
            (old, new)
        };
        if let Some(k) = k {
            k.machine.mem.store_coherent(cpu(), w.model, word);
        }
        Some(old)
    }

    /// `rcu_dereference(*p)`: the pointer this CPU finds, with the array
    /// load in the trace. An error pointer is dereferenced right after: an
    /// oops.
    pub fn deref(&self, k: Option<&Kernel>, p: usize) -> Option<usize> {
        let w = self.word(p, "dereferenced")?;
        let val = self.read(None, p, 8).unwrap_or(0) as usize;
        let Some(k) = k else { return Some(val) };
        let mem = &k.machine.mem;
        mem.before_load();
        let val = mem.peek_opt(cpu(), w.model).map_or(val, |v| self.heap.lock().to_host(v));
        let base = self.heap.lock().find(p).map(|(off, _)| p - off);
        let domain = base.and_then(|b| self.domains.lock().get(&b).copied());
        if let Some(domain) = domain {
            let version = self.versions.lock().get(&val).copied().unwrap_or(0);
            k.machine.oracle.record(Actor::on(cpu()), Event::ArrayLoad { domain, version });
            if version != self.current.lock().get(&domain).copied().unwrap_or(0) {
                k.machine.oracle.cover(Goal::StalePointerLoaded);
            }
            if is_err(val) {
                smmu_sync::die(format!(
                    "{}: the series' C dereferenced {domain:?}'s invalidation array, which is ERR_PTR({})",
                    ViolationKind::ErrPtrDeref.name(),
                    -(val as isize)
                ));
            }
            self.loaded.lock().insert(smmu_sync::task_id(), val);
        }
        Some(val)
    }

    /// `rcu_assign_pointer(*p, v)`: the oracle checks the array, the new
    /// array's initialising stores are buffered, then the pointer as a
    /// release store.
    pub fn assign(&self, k: Option<&Kernel>, p: usize, v: usize) -> bool {
        let Some(w) = self.word(p, "published through") else { return false };
        {
            let heap = self.heap.lock();
            heap.set(w.host, v as u64);
        }
        let Some(k) = k else { return true };
        let base = self.heap.lock().find(p).map(|(off, _)| p - off);
        let domain = base.and_then(|b| self.domains.lock().get(&b).copied());
        if let Some(domain) = domain.filter(|_| !is_err(v)) {
            let entries = self.entries(v);
            k.cover_array(&self.invs(v));
            if let Err(e) = check(&entries, self.series.counts(v)) {
                k.machine.oracle.report(ViolationKind::ArrayInvariant, format!("{domain:?} publishing: {e}"));
            }
        }
        let contents = self.heap.lock().contents(v);
        let mem = &k.machine.mem;
        if let Some((model, words)) = contents {
            mem.store_words(cpu(), model, &words);
        }
        let val = self.heap.lock().pointer_at(w.model, v);
        if k.env.mutant(Mutant::PublishPlainStore) {
            mem.store_as(cpu(), w.model, val, Word::ArrayPtr);
        } else {
            mem.store_release(cpu(), w.model, val, Word::ArrayPtr);
        }
        if let Some(domain) = domain {
            let version = {
                let mut cur = self.current.lock();
                let c = cur.entry(domain).or_insert(0);
                *c += 1;
                *c
            };
            self.versions.lock().insert(v, version);
            k.machine.oracle.record(Actor::on(cpu()), Event::Publish { domain, version });
        }
        true
    }

    pub fn barrier(&self, k: Option<&Kernel>, kind: i32) {
        let Some(k) = k else { return };
        smmu_sync::schedule_point();
        match kind {
            0 => k.machine.mem.smp_mb(cpu()),
            1 => k.machine.mem.dma_wmb(cpu()),
            // Loads are performed in order in this model.
            _ => {}
        }
    }

    /// `kzalloc`: a new block, or NULL where a fault is injected.
    pub fn zalloc(&self, k: Option<&Kernel>, size: usize) -> usize {
        let site = self.site.lock().get(&smmu_sync::task_id()).copied();
        let fail = match (k, site) {
            (Some(k), Some(site)) => k.env.alloc(site).is_err(),
            (Some(_), None) => false,
            (None, _) => self.fail_next.swap(false, Relaxed),
        };
        if fail {
            return 0;
        }
        self.alloc_at(k, size, 0)
    }

    /// `kfree` (poisoned at once) or `kfree_rcu` (after a grace period).
    pub fn free(&self, k: Option<&Kernel>, p: usize, rcu: bool) {
        let immediately = !rcu || k.is_some_and(|k| k.env.mutant(Mutant::FreeReplacedArrayImmediately));
        let mut heap = self.heap.lock();
        match heap.find_mut(p) {
            Some(b) if immediately => b.freed = Freed::Yes,
            Some(b) => {
                b.freed = Freed::AfterGracePeriod;
                drop(heap);
                self.pending_rcu.lock().push(p);
            }
            None if k.is_some() => {
                drop(heap);
                smmu_sync::die(format!("panic: the series' C freed {p:#x}, which its allocator never returned"));
            }
            None => {}
        }
    }

    pub fn rwlock_new(&self, k: Option<&Kernel>) -> u64 {
        let Some(k) = k else { return 0 };
        let mut locks = self.locks.lock();
        locks.push(Arc::new(RwLock::new(k.env.rwlock())));
        locks.len() as u64
    }

    pub fn lock(&self, k: Option<&Kernel>, id: u64, write: bool, irqsave: bool) {
        if k.is_none() || id == 0 {
            return;
        }
        let lock = self.locks.lock()[id as usize - 1].clone();
        let guard = lock.lock_shared(write, irqsave);
        self.held.lock().push(Held { task: smmu_sync::task_id(), lock: id, write, _guard: guard });
    }

    /// An unlock: the holder's stores drain (the release), then the lock.
    pub fn unlock(&self, k: Option<&Kernel>, id: u64, write: bool) {
        let Some(k) = k.filter(|_| id != 0) else { return };
        smmu_sync::schedule_point();
        k.machine.mem.release(cpu());
        let task = smmu_sync::task_id();
        let held = {
            let mut held = self.held.lock();
            let at = held.iter().rposition(|h| h.task == task && h.lock == id && h.write == write);
            at.map(|i| held.remove(i))
        };
        drop(held);
    }

    pub fn warn(&self, k: Option<&Kernel>, function: String, line: u32, condition: String) {
        let w = Warning::Kernel { function, line, condition };
        match k {
            Some(k) => k.env.warn(w),
            None => self.warnings.lock().push(w),
        }
    }

    /// Commands from a batch, then a CMD_SYNC, on the SMMU the batch chose;
    /// `Err`: the opcode of the first entry no SMMU command has.
    pub fn issue(&self, k: Option<&Kernel>, smmu: u32, cmds: Result<Vec<hwmodel::Cmd>, u8>) {
        let Some(k) = k else { return };
        let mut cmds = cmds.unwrap_or_else(|opcode| {
            smmu_sync::die(format!(
                "{}: the series' C issued opcode {opcode:#x}, which no SMMU command has",
                ViolationKind::IllegalCommand.name()
            ))
        });
        if let Some(n) = self.issued.lock().get_mut(&smmu_sync::task_id()) {
            *n += cmds.len();
        }
        cmds.push(hwmodel::Cmd::sync());
        k.machine.submit(cpu(), SmmuId(smmu), &cmds);
    }

    /// The C array at `invs` as the model's entries, for coverage.
    pub fn invs(&self, invs: usize) -> Vec<Inv> {
        self.entries(invs).into_iter().map(|e| Inv::new(e.desc, e.users)).collect()
    }

    /// The entries of the C array at `invs`, as plain loads.
    pub fn entries(&self, invs: usize) -> Vec<Entry> {
        if invs == 0 || is_err(invs) {
            return Vec::new();
        }
        let (_, num_invs, _, _) = self.series.counts(invs);
        (0..num_invs).map(|i| self.series.entry(invs, i)).collect()
    }

    /// Every entry the array at `invs` was built with, trash and trimmed
    /// tail included: each had users then, and a walk of it visits no
    /// other (the array never grows in place), whatever its CPU's view of
    /// `num_invs` and the users counts.
    pub fn built_with(&self, invs: usize) -> Vec<Entry> {
        if invs == 0 || is_err(invs) {
            return Vec::new();
        }
        let (max_invs, _, _, _) = self.series.counts(invs);
        (0..max_invs).map(|i| self.series.entry(invs, i)).collect()
    }
}

/// One entry of a C array, as the glue reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub desc: InvDesc,
    pub users: u32,
}

/// The C's entry type numbers, as `enum arm_smmu_inv_type` orders them.
pub(super) fn inv_type(t: i32) -> Option<InvType> {
    [InvType::S1Asid, InvType::S2Vmid, InvType::S2VmidS1Clear, InvType::Ats, InvType::AtsFull].get(t as usize).copied()
}

/// Facts 1-2 on a freshly published C array: counters in order, entries
/// strictly sorted by (smmu, type, id, and ssid for ATS types: a series
/// that compares SSIDs passes, one that merges them has no duplicates),
/// no trash, and `has_ats` set when an ATS entry is there.
fn check(
    entries: &[Entry],
    (max_invs, num_invs, num_trashes, has_ats): (usize, usize, usize, bool),
) -> Result<(), InvsError> {
    if !(num_trashes <= num_invs && num_invs <= max_invs) {
        return Err(InvsError::Counters { num_trashes, num_invs, max_invs });
    }
    if let Some(index) = (1..entries.len()).find(|&k| entries[k - 1].desc.cmp_key(&entries[k].desc).is_ge()) {
        return Err(InvsError::Unsorted { index });
    }
    let trash = entries.iter().filter(|e| e.users == 0).count();
    if trash != 0 {
        return Err(InvsError::TrashInFreshArray { num_trashes: trash });
    }
    if !has_ats && entries.iter().any(|e| e.desc.ty.is_ats()) {
        return Err(InvsError::HasAtsStale);
    }
    Ok(())
}

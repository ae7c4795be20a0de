//! Memory shared by the CPUs and the SMMU, with a store buffer per CPU.
//!
//! Shuttle runs every atomic as sequentially consistent, so a missing barrier
//! could never show. Here a CPU's stores (page tables, STEs, CDs, and the
//! driver's state other CPUs read: array pointers, `num_invs`, `users`) sit
//! in its buffer until drained; other CPUs and the SMMU read drained memory,
//! a CPU its own buffer first. Drains happen at barriers, and otherwise
//! whenever the scheduler's data choices say so, in any order that keeps
//! same-address stores in program order and respects store-store fences
//! (`dma_wmb`, and the one a release store carries). Loads are performed in
//! program order: ARM may reorder loads too, but the protocols here read
//! through an address dependency (`rcu_dereference`) or under a lock's
//! acquire, which forbid that. Memory is multi-copy atomic: a drained store
//! is visible to every observer at once, as ARMv8 guarantees.
//!
//! Internal state sits behind plain mutexes that are never held across a
//! scheduling point; the interesting interleavings come from the explicit
//! scheduling points at each access.

use crate::native::Native;
use crate::odds::Odds;
use crate::oracle::Oracle;
use crate::types::{Actor, Addr, CpuId, Event, Word};
use rustc_hash::FxHashMap as HashMap;
use smmu_sync::{plain, random_below, schedule_point};
use std::collections::VecDeque;
use std::sync::atomic::Ordering::{self, Relaxed};
use std::sync::Arc;

struct Pending {
    addr: Addr,
    val: u64,
    /// Stores may not drain ahead of a store with a lower fence number.
    fence: u32,
    /// Followed in the trace: its store and when it drained.
    what: Option<Word>,
}

#[derive(Default)]
struct StoreBuffer {
    entries: VecDeque<Pending>,
    fence: u32,
}

impl StoreBuffer {
    /// Indices of stores that may reach memory next.
    fn drainable(&self) -> impl Iterator<Item = usize> + '_ {
        let oldest_fence = self.entries.front().map_or(0, |p| p.fence);
        self.entries.iter().enumerate().filter_map(move |(k, p)| {
            let in_order = p.fence == oldest_fence;
            let first_for_addr = self.entries.iter().take(k).all(|q| q.addr != p.addr);
            (in_order && first_for_addr).then_some(k)
        })
    }
}

pub struct Memory {
    visible: plain::Mutex<HashMap<Addr, u64>>,
    buffers: Vec<plain::Mutex<StoreBuffer>>,
    /// Stores sitting in any buffer; lets the common empty case skip the scan.
    buffered: plain::AtomicUsize,
    /// Where followed stores and their drains are recorded.
    observer: Option<Arc<Oracle>>,
    /// One access in this many drains a buffered store (`Odds::drain`).
    drain_odds: u64,
    /// A native machine's words; then no store is ever buffered.
    native: Option<Native>,
}

impl Memory {
    pub fn new(cpus: usize) -> Self {
        Self {
            visible: plain::Mutex::new(HashMap::default()),
            buffers: (0..cpus).map(|_| plain::Mutex::new(StoreBuffer::default())).collect(),
            buffered: plain::AtomicUsize::new(0),
            observer: None,
            drain_odds: Odds::DEFAULT.drain,
            native: None,
        }
    }

    /// Memory for timing the driver alone: plain atomics at the kernel's
    /// orderings, nothing buffered, nothing traced (`native`).
    pub fn native(cpus: usize) -> Self {
        Self { native: Some(Native::new()), ..Self::new(cpus) }
    }

    pub fn is_native(&self) -> bool {
        self.native.is_some()
    }

    /// Record followed stores, and when they drain, in `oracle`'s trace.
    pub fn observe(&mut self, oracle: Arc<Oracle>) {
        self.observer = Some(oracle);
    }

    fn note(&self, actor: Actor, e: Event) {
        if let Some(o) = &self.observer {
            o.record(actor, e);
        }
    }

    fn note_drained(&self, cpu: CpuId, drained: &[Pending]) {
        for p in drained {
            if let Some(what) = p.what {
                self.note(Actor::Drain(cpu.0), Event::Visible { what, addr: p.addr, val: p.val });
            }
        }
    }

    fn buffer(&self, cpu: CpuId) -> std::sync::MutexGuard<'_, StoreBuffer> {
        self.buffers[cpu.0].lock()
    }

    fn visible(&self) -> std::sync::MutexGuard<'_, HashMap<Addr, u64>> {
        self.visible.lock()
    }

    /// A CPU store: buffered, visible to the SMMU only once drained. While
    /// a world is built by its one thread, nothing can tell a buffered
    /// store from a drained one, so stores go straight to memory.
    pub fn store(&self, cpu: CpuId, addr: Addr, val: u64) {
        self.push(cpu, addr, val, None);
    }

    /// A store the trace follows: the page-table, STE/CD and array-pointer
    /// writes a failure's story is told with.
    pub fn store_as(&self, cpu: CpuId, addr: Addr, val: u64, what: Word) {
        self.push(cpu, addr, val, Some(what));
    }

    fn push(&self, cpu: CpuId, addr: Addr, val: u64, what: Option<Word>) {
        if let Some(n) = &self.native {
            return n.store(addr, val, Relaxed);
        }
        smmu_sync::simulate();
        smmu_sync::cost::write(addr >> 6);
        if smmu_sync::is_quiet() && self.buffer(cpu).entries.is_empty() {
            self.visible().insert(addr, val);
            return;
        }
        schedule_point();
        let mut b = self.buffer(cpu);
        let fence = b.fence;
        b.entries.push_back(Pending { addr, val, fence, what });
        drop(b);
        self.buffered.fetch_add(1, Relaxed);
        if let Some(what) = what {
            self.note(Actor::on(cpu), Event::Store { what, addr, val });
        }
        self.drain_some();
    }

    /// A release store (`smp_store_release`, `rcu_assign_pointer`): it
    /// reaches memory only after every earlier store of `cpu`; later stores
    /// may still overtake it.
    pub fn store_release(&self, cpu: CpuId, addr: Addr, val: u64, what: Word) {
        if let Some(n) = &self.native {
            return n.store(addr, val, Ordering::Release);
        }
        self.dma_wmb(cpu);
        self.store_as(cpu, addr, val, what);
    }

    /// Stores to consecutive words with no scheduling point between them:
    /// initialising memory nothing else can reach yet (a new array).
    pub fn store_words(&self, cpu: CpuId, base: Addr, vals: &[u64]) {
        if let Some(n) = &self.native {
            for (k, &val) in vals.iter().enumerate() {
                n.store(base + 8 * k as u64, val, Relaxed);
            }
            return;
        }
        smmu_sync::simulate();
        if smmu_sync::is_quiet() && self.buffer(cpu).entries.is_empty() {
            let mut v = self.visible();
            for (k, &val) in vals.iter().enumerate() {
                v.insert(base + 8 * k as u64, val);
            }
            return;
        }
        schedule_point();
        let mut b = self.buffer(cpu);
        let fence = b.fence;
        let at = |k: usize| base + 8 * k as u64;
        b.entries.extend(vals.iter().enumerate().map(|(k, &val)| Pending { addr: at(k), val, fence, what: None }));
        drop(b);
        self.buffered.fetch_add(vals.len(), Relaxed);
        self.drain_some();
    }

    /// A lock's release (`spin_unlock`, `write_unlock`, `mutex_unlock`). The
    /// model's lock words are sequentially consistent, visible the moment
    /// they change, so everything the CPU stored before the unlock must be
    /// visible by then: a drain, as `smp_mb`.
    pub fn release(&self, cpu: CpuId) {
        // Natively the lock's own release orders the stores.
        if self.native.is_none() {
            self.smp_mb(cpu);
        }
    }

    /// A relaxed atomic add (`atomic_inc`, `atomic_dec`): performed at the
    /// point of coherence, so visible to all at once, without ordering the
    /// CPU's other buffered stores. Returns the old value.
    pub fn fetch_add(&self, cpu: CpuId, addr: Addr, delta: i64) -> u64 {
        if let Some(n) = &self.native {
            return n.fetch_add(addr, delta);
        }
        smmu_sync::simulate();
        smmu_sync::cost::rmw(addr >> 6);
        schedule_point();
        if self.buffer(cpu).entries.iter().any(|p| p.addr == addr) {
            // Coherence: the CPU's own plain stores to the word come first.
            self.smp_mb(cpu);
        }
        let mut v = self.visible();
        let old = v.get(&addr).copied().unwrap_or(0);
        v.insert(addr, old.wrapping_add_signed(delta));
        old
    }

    /// An atomic read-modify-write whose result the caller computed from its
    /// own view (a C refcount operation): performed at the point of
    /// coherence, after the CPU's own buffered stores to the word, visible
    /// to all at once, without ordering the CPU's other stores.
    pub fn store_coherent(&self, cpu: CpuId, addr: Addr, val: u64) {
        if let Some(n) = &self.native {
            return n.store(addr, val, Relaxed);
        }
        smmu_sync::simulate();
        schedule_point();
        if self.buffer(cpu).entries.iter().any(|p| p.addr == addr) {
            self.smp_mb(cpu);
        }
        self.visible().insert(addr, val);
    }

    /// A CPU load: its own newest buffered store to `addr` if any, else memory.
    pub fn load(&self, cpu: CpuId, addr: Addr) -> u64 {
        if let Some(n) = &self.native {
            return n.load(addr, Relaxed);
        }
        self.before_load();
        self.peek(cpu, addr)
    }

    /// What a load does before it reads: a scheduling point, and maybe a
    /// drain. For a caller that must read with `peek` under a lock of its
    /// own.
    pub fn before_load(&self) {
        smmu_sync::simulate();
        if self.native.is_some() {
            return;
        }
        schedule_point();
        self.drain_some();
    }

    /// A CPU load that is not a scheduling point.
    pub fn peek(&self, cpu: CpuId, addr: Addr) -> u64 {
        if let Some(n) = &self.native {
            return n.load(addr, Relaxed);
        }
        smmu_sync::simulate();
        smmu_sync::cost::read(addr >> 6);
        let own = self.buffer(cpu).entries.iter().rev().find(|p| p.addr == addr).map(|p| p.val);
        own.unwrap_or_else(|| self.read_visible(addr))
    }

    /// As `peek`, but `None` for a word no store has ever reached, in the
    /// CPU's buffer or in memory: memory the model does not follow.
    pub fn peek_opt(&self, cpu: CpuId, addr: Addr) -> Option<u64> {
        if let Some(n) = &self.native {
            return Some(n.load(addr, Relaxed));
        }
        smmu_sync::simulate();
        let own = self.buffer(cpu).entries.iter().rev().find(|p| p.addr == addr).map(|p| p.val);
        own.or_else(|| self.visible().get(&addr).copied())
    }

    /// The CPU's view of `n` consecutive words from `base`, with no
    /// scheduling point: for a table no other thread writes (one being
    /// freed).
    pub fn peek_words(&self, cpu: CpuId, base: Addr, n: u64) -> Vec<u64> {
        if let Some(native) = &self.native {
            return (0..n).map(|k| native.load(base + 8 * k, Relaxed)).collect();
        }
        smmu_sync::simulate();
        let (buf, vis) = (self.buffer(cpu), self.visible());
        (0..n)
            .map(|k| {
                let addr = base + 8 * k;
                let own = buf.entries.iter().rev().find(|p| p.addr == addr).map(|p| p.val);
                own.unwrap_or_else(|| vis.get(&addr).copied().unwrap_or(0))
            })
            .collect()
    }

    /// A load by the SMMU or a device: drained memory only.
    pub fn load_dev(&self, addr: Addr) -> u64 {
        if let Some(n) = &self.native {
            return n.load(addr, Ordering::Acquire);
        }
        smmu_sync::simulate();
        schedule_point();
        self.drain_some();
        self.read_visible(addr)
    }

    fn read_visible(&self, addr: Addr) -> u64 {
        self.visible().get(&addr).copied().unwrap_or(0)
    }

    /// `cmpxchg`: if `addr` holds `old`, make it `new`; returns what it held.
    /// An atomic RMW acts at the point of coherence, so the CPU's earlier
    /// stores are drained first and the result is visible to all at once.
    pub fn cmpxchg(&self, cpu: CpuId, addr: Addr, old: u64, new: u64) -> u64 {
        if let Some(n) = &self.native {
            return n.cmpxchg(addr, old, new);
        }
        smmu_sync::simulate();
        schedule_point();
        self.smp_mb(cpu);
        let mut v = self.visible();
        let cur = v.get(&addr).copied().unwrap_or(0);
        if cur == old {
            v.insert(addr, new);
        }
        cur
    }

    /// `smp_mb`: every earlier store of `cpu` is visible before any later
    /// access.
    pub fn smp_mb(&self, cpu: CpuId) {
        if self.native.is_some() {
            return Native::fence(Ordering::SeqCst);
        }
        smmu_sync::simulate();
        if self.buffered.load(Relaxed) == 0 {
            // Nothing to drain: just the real barrier.
            smmu_sync::fence(std::sync::atomic::Ordering::SeqCst);
            return;
        }
        let drained: Vec<Pending> = self.buffer(cpu).entries.drain(..).collect();
        self.buffered.fetch_sub(drained.len(), Relaxed);
        let mut v = self.visible();
        for p in &drained {
            v.insert(p.addr, p.val);
        }
        drop(v);
        self.note_drained(cpu, &drained);
    }

    /// `dma_mb`: as `smp_mb`, towards the device as well; in this model
    /// the SMMU reads the same memory, so it is the same drain.
    pub fn dma_mb(&self, cpu: CpuId) {
        self.smp_mb(cpu);
    }

    /// `dma_wmb`: earlier stores of `cpu` become visible before later ones;
    /// loads are not ordered.
    pub fn dma_wmb(&self, cpu: CpuId) {
        if self.native.is_some() {
            return Native::fence(Ordering::Release);
        }
        smmu_sync::simulate();
        self.buffer(cpu).fence += 1;
    }

    /// `cpu`'s buffered stores that a store made now could overtake: those
    /// since its last store-store fence.
    pub fn overtakable(&self, cpu: CpuId) -> Vec<(Addr, u64)> {
        let b = self.buffer(cpu);
        b.entries.iter().filter(|p| p.fence == b.fence).map(|p| (p.addr, p.val)).collect()
    }

    /// Stores still buffered by `cpu`.
    pub fn pending(&self, cpu: CpuId) -> usize {
        self.buffer(cpu).entries.len()
    }

    /// Let the scheduler's data choices move a buffered store to memory:
    /// at one access in `Odds::drain`, one drainable store of one CPU. Rare
    /// enough that a store can stay buffered across another CPU's whole
    /// operation, as a real one can stay unobserved behind a later load.
    fn drain_some(&self) {
        if self.buffered.load(Relaxed) == 0 || random_below(self.drain_odds) != 0 {
            return;
        }
        let busy: Vec<usize> = (0..self.buffers.len()).filter(|&c| !self.buffer(CpuId(c)).entries.is_empty()).collect();
        let Some(&cpu) = busy.get(random_below(busy.len().max(1) as u64) as usize) else { return };
        let mut b = self.buffer(CpuId(cpu));
        let choices: Vec<usize> = b.drainable().collect();
        // On real threads another thread may have drained it meanwhile.
        let Some(&k) = choices.get(random_below(choices.len().max(1) as u64) as usize) else { return };
        let p = b.entries.remove(k).expect("drainable index");
        drop(b);
        self.buffered.fetch_sub(1, Relaxed);
        self.visible().insert(p.addr, p.val);
        self.note_drained(CpuId(cpu), &[p]);
    }
}

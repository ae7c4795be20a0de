//! Driver state that other CPUs read, kept in simulated memory so that it
//! goes through the store buffers like the page tables do: an array's
//! `num_invs`, `has_ats` and `users` (WRITE_ONCE / READ_ONCE, refcount
//! ops). Each design keeps its own pointer words in the domain's frame.
//!
//! The writer keeps the same values in Rust as well: writers are serialized
//! by the ASID lock, whose release drains their stores, so a writer's own
//! view is always its latest values. Only walkers read what another CPU
//! may not yet have made visible.

use hwmodel::{Addr, CpuId, Machine, Memory, PAGE};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};

/// A CPU's view of simulated memory.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub mem: &'a Memory,
    pub cpu: CpuId,
}

impl<'a> View<'a> {
    pub fn new(m: &'a Machine, cpu: CpuId) -> Self {
        Self { mem: &m.mem, cpu }
    }
}

/// Word offsets in an array's frame.
const NUM_INVS: u64 = 0;
const HAS_ATS: u64 = 8;
const USERS: u64 = 16;

/// Where an array's reader-visible words live, once it is placed. An
/// array never placed (a domain's first, empty one) reads as zeroed
/// memory: no entries, no ATS. On a native machine the words are the
/// array's own plain atomics, accessed at the kernel's orderings: a
/// writer churning arrays would otherwise fill native memory, which never
/// frees.
#[derive(Default)]
pub struct ArrayWords(Place);

#[derive(Default)]
enum Place {
    #[default]
    Nowhere,
    Simulated(Addr),
    Native(Box<[AtomicU64]>),
}

impl ArrayWords {
    /// The allocation's initialising stores, buffered on `cpu` like any
    /// others: until they drain, another CPU reads zero, as from the
    /// kzalloc'ed memory they fill.
    pub(crate) fn place(&mut self, m: &Machine, cpu: CpuId, num_invs: usize, has_ats: bool, users: &[u32]) {
        let vals: Vec<u64> =
            [num_invs as u64, u64::from(has_ats)].into_iter().chain(users.iter().map(|&u| u64::from(u))).collect();
        if m.is_native() {
            // Published by the release store of the array's pointer.
            self.0 = Place::Native(vals.into_iter().map(AtomicU64::new).collect());
            return;
        }
        let base = m.alloc((8 * vals.len() as u64).next_power_of_two().max(PAGE));
        m.mem.store_words(cpu, base, &vals);
        self.0 = Place::Simulated(base);
    }

    /// The word at byte offset `off`, wherever it lives: a store or RMW by
    /// a writer with a view, or a read by a walker.
    fn word<R>(&self, off: u64, sim: impl FnOnce(Addr) -> R, native: impl FnOnce(&AtomicU64) -> R) -> Option<R> {
        match &self.0 {
            Place::Nowhere => None,
            Place::Simulated(base) => Some(sim(base + off)),
            Place::Native(words) => Some(native(&words[(off / 8) as usize])),
        }
    }

    /// The cache line of the words' start, once placed in simulated
    /// memory: where the kernel's array keeps its counts and its lock.
    pub(crate) fn line(&self) -> Option<u64> {
        match &self.0 {
            Place::Simulated(base) => Some(base >> 6),
            Place::Nowhere | Place::Native(_) => None,
        }
    }

    /// WRITE_ONCE of entry `k`'s user count.
    pub(crate) fn store_users(&self, v: Option<View>, k: usize, users: u32) {
        if let Some(v) = v {
            self.word(
                USERS + 8 * k as u64,
                |a| v.mem.store(v.cpu, a, u64::from(users)),
                |w| w.store(u64::from(users), Relaxed),
            );
        }
    }

    /// A fully ordered decrement of entry `k`'s user count
    /// (`refcount_dec_and_test`): earlier stores first, then the RMW.
    pub(crate) fn dec_users(&self, v: Option<View>, k: usize) {
        if let Some(v) = v {
            let sim = |a| {
                v.mem.smp_mb(v.cpu);
                v.mem.fetch_add(v.cpu, a, -1);
            };
            self.word(USERS + 8 * k as u64, sim, |w| {
                w.fetch_sub(1, SeqCst);
            });
        }
    }

    /// WRITE_ONCE of `num_invs`.
    pub(crate) fn store_num_invs(&self, v: Option<View>, n: usize) {
        if let Some(v) = v {
            self.word(NUM_INVS, |a| v.mem.store(v.cpu, a, n as u64), |w| w.store(n as u64, Relaxed));
        }
    }

    /// READ_ONCE(num_invs) by a walker on `v`'s CPU.
    pub fn num_invs(&self, v: View) -> usize {
        self.read(v, NUM_INVS) as usize
    }

    /// `has_ats` as a walker reads it.
    pub fn has_ats(&self, v: View) -> bool {
        self.read(v, HAS_ATS) != 0
    }

    /// Entry `k`'s user count as a walker reads it.
    pub fn users(&self, v: View, k: usize) -> u32 {
        self.read(v, USERS + 8 * k as u64) as u32
    }

    fn read(&self, v: View, off: u64) -> u64 {
        self.word(off, |a| v.mem.peek(v.cpu, a), |w| w.load(Relaxed)).unwrap_or(0)
    }
}

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

/// Where an array's reader-visible words live, once it is placed in
/// memory. An array never placed (a domain's first, empty one) reads as
/// zeroed memory: no entries, no ATS.
#[derive(Default)]
pub struct ArrayWords(Option<Addr>);

impl ArrayWords {
    /// The allocation's initialising stores, buffered on `cpu` like any
    /// others: until they drain, another CPU reads zero, as from the
    /// kzalloc'ed memory they fill.
    pub(crate) fn place(&mut self, m: &Machine, cpu: CpuId, num_invs: usize, has_ats: bool, users: &[u32]) {
        let words = 2 + users.len() as u64;
        let base = m.alloc((8 * words).next_power_of_two().max(PAGE));
        let vals: Vec<u64> =
            [num_invs as u64, u64::from(has_ats)].into_iter().chain(users.iter().map(|&u| u64::from(u))).collect();
        m.mem.store_words(cpu, base, &vals);
        self.0 = Some(base);
    }

    /// WRITE_ONCE of entry `k`'s user count.
    pub(crate) fn store_users(&self, v: Option<View>, k: usize, users: u32) {
        if let (Some(base), Some(v)) = (self.0, v) {
            v.mem.store(v.cpu, base + USERS + 8 * k as u64, u64::from(users));
        }
    }

    /// A fully ordered decrement of entry `k`'s user count
    /// (`refcount_dec_and_test`): earlier stores first, then the RMW.
    pub(crate) fn dec_users(&self, v: Option<View>, k: usize) {
        if let (Some(base), Some(v)) = (self.0, v) {
            v.mem.smp_mb(v.cpu);
            v.mem.fetch_add(v.cpu, base + USERS + 8 * k as u64, -1);
        }
    }

    /// WRITE_ONCE of `num_invs`.
    pub(crate) fn store_num_invs(&self, v: Option<View>, n: usize) {
        if let (Some(base), Some(v)) = (self.0, v) {
            v.mem.store(v.cpu, base + NUM_INVS, n as u64);
        }
    }

    /// READ_ONCE(num_invs) by a walker on `v`'s CPU.
    pub fn num_invs(&self, v: View) -> usize {
        self.0.map_or(0, |b| v.mem.peek(v.cpu, b + NUM_INVS) as usize)
    }

    /// `has_ats` as a walker reads it.
    pub fn has_ats(&self, v: View) -> bool {
        self.0.is_some_and(|b| v.mem.peek(v.cpu, b + HAS_ATS) != 0)
    }

    /// Entry `k`'s user count as a walker reads it.
    pub fn users(&self, v: View, k: usize) -> u32 {
        self.0.map_or(0, |b| v.mem.peek(v.cpu, b + USERS + 8 * k as u64) as u32)
    }
}

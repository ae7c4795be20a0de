//! Driver state that other CPUs read, kept in simulated memory so that it
//! goes through the store buffers like the page tables do: a domain's array
//! pointers (`rcu_assign_pointer` / `rcu_dereference`), an array's
//! `num_invs`, `has_ats` and `users` (WRITE_ONCE / READ_ONCE, refcount
//! ops), and the legacy design's `nr_ats_masters`.
//!
//! The writer keeps the same values in Rust as well: writers are serialized
//! by the ASID lock, whose release drains their stores, so a writer's own
//! view is always its latest values. Only walkers read what another CPU
//! may not yet have made visible.

use crate::domain::{Domain, MasterDomain};
use crate::driver::{Cpu, Driver};
use hwmodel::{Actor, Addr, CpuId, DomainId, Event, Machine, Memory, Word, PAGE};
use smmu_sync::{Guard, IrqSave, MutexGuard, Rcu, Retire, Retired};
use std::ops::{Deref, DerefMut};

/// A CPU's view of simulated memory.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub mem: &'a Memory,
    pub cpu: CpuId,
}

impl<'a> View<'a> {
    pub fn new(m: &'a Machine, cpu: &Cpu) -> Self {
        Self { mem: &m.mem, cpu: cpu.id }
    }
}

/// Word offsets in a domain's frame.
pub(crate) const INVS_PTR: u64 = 0;
pub(crate) const V9_PTR: u64 = 8;
pub(crate) const NR_ATS_MASTERS: u64 = 16;

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

impl Driver {
    /// `rcu_dereference(*ptr)`: the object `cpu` finds through the pointer
    /// word at `ptr`. A version the writer already retired means the
    /// writer freed what a reader could still reach.
    pub(crate) fn rcu_dereference<'g, T: Retire>(
        &self,
        cpu: &Cpu,
        domain: DomainId,
        rcu: &'g Rcu<T>,
        ptr: Addr,
        g: &'g Guard,
    ) -> &'g T {
        let mem = &self.machine.mem;
        mem.before_load();
        let (v, obj) = rcu.load_version(g, || mem.peek(cpu.id, ptr));
        self.machine.oracle.record(Actor::on(cpu.id), Event::ArrayLoad { domain, version: v });
        if v != rcu.version() {
            self.machine.oracle.cover(hwmodel::Goal::StalePointerLoaded);
        }
        obj.unwrap_or_else(|| {
            smmu_sync::die(format!(
                "{}: {:?} loaded array version {v} from {ptr:#x}, which its writer had already freed",
                hwmodel::ViolationKind::UseAfterFree.name(),
                cpu.id
            ))
        })
    }

    /// `rcu_assign_pointer(*ptr, new)`: a release store of the new
    /// version, so the array's initialising stores are visible first.
    pub(crate) fn rcu_assign_pointer<'g, T: Retire>(
        &self,
        cpu: &Cpu,
        domain: DomainId,
        rcu: &'g Rcu<T>,
        ptr: Addr,
        new: T,
        g: &'g Guard,
    ) -> Retired<'g, T> {
        let old = rcu.publish(new, g);
        let version = rcu.version();
        self.machine.oracle.record(Actor::on(cpu.id), Event::Publish { domain, version });
        if self.env.mutant(crate::Mutant::PublishPlainStore) {
            self.machine.mem.store_as(cpu.id, ptr, version, Word::ArrayPtr);
        } else {
            self.machine.mem.store_release(cpu.id, ptr, version, Word::ArrayPtr);
        }
        old
    }
}

/// `spin_lock_irqsave` held: dropping it is the unlock's release (the
/// holder's stores drain), then `spin_unlock_irqrestore`.
pub(crate) struct SpinGuard<'a, T> {
    v: View<'a>,
    guard: Option<MutexGuard<'a, T>>,
    _irq: IrqSave,
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.guard.as_ref().expect("held until dropped")
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard.as_mut().expect("held until dropped")
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    fn drop(&mut self) {
        self.v.mem.release(self.v.cpu);
        self.guard.take();
    }
}

impl Driver {
    /// The legacy design's `devices_lock`, taken as the kernel takes it:
    /// `spin_lock_irqsave`, since invalidations may run in interrupts.
    pub(crate) fn devices_lock<'a>(&'a self, cpu: &Cpu, d: &'a Domain) -> SpinGuard<'a, Vec<MasterDomain>> {
        let irq = smmu_sync::local_irq_save();
        let guard = Some(d.legacy.devices.lock());
        SpinGuard { v: View::new(&self.machine, cpu), guard, _irq: irq }
    }

    /// `synchronize_rcu`: a grace period, which implies a full barrier on
    /// every CPU. The caller's matters: once its stores are visible, a
    /// reader that starts after the grace period finds the new pointers.
    pub(crate) fn synchronize_rcu(&self, cpu: &Cpu) {
        self.machine.mem.smp_mb(cpu.id);
        cpu.epoch.synchronize();
    }
}

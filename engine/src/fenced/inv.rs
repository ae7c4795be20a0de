//! `arm_smmu_domain_inv_range` as the proposal has it: the barrier, the
//! array load, the ATS read lock with interrupts saved (v11), and a walk
//! that skips trash and advances past a skipped S1 clear. Lock-free except
//! for that read lock, taken only when the array holds ATS entries; no
//! allocation.

use super::{invs, INVS_PTR};
use crate::cmdq::{self, Walk};
use crate::domain::Domain;
use crate::kernel::{Cpu, Kernel};
use crate::words::View;
use crate::Mutant;
use hwmodel::Goal;

/// `arm_smmu_domain_inv_range`.
pub(super) fn domain_inv_range(k: &Kernel, cpu: &Cpu, d: &Domain, iova: u64, size: u64, granule: u64, leaf: bool) {
    // Pairs with the barrier after publishing an array: either this load
    // sees the new array, or the walker that reads the new STE sees our
    // page-table write.
    if !k.env.mutant(Mutant::NoSmpMbInvRange) {
        k.machine.mem.smp_mb(cpu.id);
    }
    let guard = cpu.epoch.pin();
    let invs = k.rcu_dereference(cpu, d.id, invs(d), d.words + INVS_PTR, &guard);
    let v = View::new(&k.machine, cpu.id);
    // Invalidations run in interrupt context too: with a plain read lock,
    // an interrupt on this CPU could read-lock again behind a writer
    // waiting for this very reader.
    let words = invs.words();
    let ats_lock = words.has_ats(v).then(|| {
        if k.env.mutant(Mutant::ReadLockInIrqWithoutIrqsave) {
            invs.rwlock().read_lock()
        } else {
            invs.rwlock().read_lock_irqsave()
        }
    });
    let walk = __domain_inv_range(k, cpu, invs, iova, size, granule, leaf);
    if !super::invs(d).is_current(invs, &guard) {
        k.cover_old_array(invs.entries(), super::invs(d).peek(&guard).entries());
    }
    // Dropping the ATS read lock touches the array one last time.
    let poisoned = walk.poisoned || (ats_lock.is_some() && invs.is_poisoned());
    if ats_lock.is_some() {
        // read_unlock's release.
        k.machine.mem.release(cpu.id);
    }
    drop(ats_lock);
    cmdq::report_walk(k, d, Walk { poisoned, ..walk }, size, granule);
}

/// `__arm_smmu_domain_inv_range`: the live entries up to `num_invs`, as
/// this CPU reads their user counts, in batches (`cmdq::inv_entries`).
fn __domain_inv_range(
    k: &Kernel,
    cpu: &Cpu,
    invs: &super::Invs,
    iova: u64,
    size: u64,
    granule: u64,
    leaf: bool,
) -> Walk {
    let v = View::new(&k.machine, cpu.id);
    let words = invs.words();
    let trash = std::cell::Cell::new(false);
    let live = (0..words.num_invs(v))
        .filter(|&i| {
            let users = words.users(v, i);
            trash.set(trash.get() || users == 0);
            users != 0
        })
        .map(|i| &invs.inv(i).desc);
    let walk = cmdq::inv_entries(k, cpu, live, iova, size, granule, leaf, || invs.is_poisoned());
    if trash.get() {
        k.machine.oracle.cover(Goal::TrashWalked);
    }
    walk
}

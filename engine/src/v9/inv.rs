//! `arm_smmu_domain_inv_range` and `__arm_smmu_domain_inv_range` as patch 6
//! of seed 001 (v9) writes them: loop shape, control flow, trash skipping,
//! lock and barrier calls. Not fixed: when an S2_VMID_S1_CLEAR entry is
//! skipped because the range is "too big", `continue` jumps back to the
//! loop test without advancing `cur`, so a full invalidation of a nesting
//! parent never ends.

use super::{invs, Invs, INVS_PTR};
use crate::cmdq::{self, atc_inv_cmd, end_batch, size_too_big, Batch, Walk};
use crate::domain::Domain;
use crate::kernel::{Cpu, Kernel};
use crate::types::InvType;
use crate::words::View;
use hwmodel::{Cmd, Goal, ViolationKind};

/// `arm_smmu_domain_inv_range`.
pub(super) fn domain_inv_range(k: &Kernel, cpu: &Cpu, d: &Domain, iova: u64, size: u64, granule: u64, leaf: bool) {
    // smp_mb(), paired with the one after the array update in a
    // concurrent attach.
    k.machine.mem.smp_mb(cpu.id);
    // rcu_read_lock(); invs = rcu_dereference(smmu_domain->invs);
    let guard = cpu.epoch.pin();
    let invs = k.rcu_dereference(cpu, d.id, invs(d), d.words + INVS_PTR, &guard);
    oops_on_err_ptr(d, invs, "arm_smmu_domain_inv_range");
    let v = View::new(&k.machine, cpu.id);
    // Avoid locking unless ATS is being used.
    let walk = if invs.words().has_ats(v) {
        let r = invs.rwlock().read_lock();
        let walk = __domain_inv_range(k, cpu, invs, iova, size, granule, leaf);
        // read_unlock's release.
        k.machine.mem.release(cpu.id);
        drop(r);
        walk
    } else {
        __domain_inv_range(k, cpu, invs, iova, size, granule, leaf)
    };
    if !super::invs(d).is_current(invs, &guard) {
        k.cover_old_array(invs.entries(), super::invs(d).peek(&guard).entries());
    }
    cmdq::report_walk(k, d, walk, size, granule);
}

/// Dereferencing ERR_PTR(-ENOMEM) published as an array is a kernel oops:
/// the thread dies there, so the model's thread panics with the
/// violation's name first (how the harness reads a panic's kind).
pub(super) fn oops_on_err_ptr(d: &Domain, invs: &Invs, site: &str) {
    if let Some(e) = invs.err() {
        let kind = ViolationKind::ErrPtrDeref.name();
        smmu_sync::die(format!("{kind}: {site} dereferenced {:?}'s invalidation array, which is ERR_PTR({e})", d.id));
    }
}

/// `__arm_smmu_domain_inv_range`.
fn __domain_inv_range(k: &Kernel, cpu: &Cpu, invs: &Invs, iova: u64, size: u64, granule: u64, leaf: bool) -> Walk {
    let mut cmds = Batch::new(k, cpu);
    let mut walk = Walk::default();
    let v = View::new(&k.machine, cpu.id);
    let users = |i: usize| invs.words().users(v, i);
    // end = cur + READ_ONCE(invs->num_invs)
    let end = invs.words().num_invs(v);
    let mut cur = 0;
    // Skip any leading entry marked as a trash
    while cur != end && users(cur) == 0 {
        cur += 1;
    }
    if (0..end).any(|i| users(i) == 0) {
        k.machine.oracle.cover(Goal::TrashWalked);
    }
    while cur != end {
        smmu_sync::tick();
        walk.poisoned |= invs.is_poisoned();
        let inv = invs.inv(cur);
        let smmu = inv.smmu;
        let f = k.machine.smmu(smmu).features;
        walk.bound += cmdq::command_bound(f, granule);
        match inv.ty {
            InvType::S1Asid | InvType::S2Vmid => cmds.emit(inv, iova, size, granule, leaf),
            InvType::S2VmidS1Clear => {
                // CMDQ_OP_TLBI_S12_VMALL already flushed S1 entries
                if size_too_big(f, size, granule) {
                    continue;
                }
                cmds.add(smmu, Cmd { vmid: inv.id as u16, ..Cmd::new(inv.size_opcode) });
            }
            InvType::Ats => cmds.add(smmu, atc_inv_cmd(inv.id, inv.ssid, iova, size)),
            InvType::AtsFull => cmds.add(smmu, atc_inv_cmd(inv.id, 0, 0, 0)),
        }
        // Skip any trash entry in-between
        let mut next = cur + 1;
        while next != end && users(next) == 0 {
            next += 1;
        }
        let why = (next != end).then(|| end_batch(k, inv, invs.inv(next)));
        if cmds.pending() > 0 && why.is_none_or(|w| w.is_some()) {
            if let Some(Some(g)) = why {
                k.machine.oracle.cover(g);
            }
            cmds.submit();
        }
        cur = next;
    }
    walk.issued = cmds.issued();
    walk
}

//! Invalidation as upstream did it before the series
//! (`arm_smmu_tlb_inv_range_domain`, `arm_smmu_atc_inv_domain`): the
//! domain's tag on its one SMMU (and the nested stage-1 clear of a nesting
//! parent), then, if any master on the list uses ATS, ATC invalidations
//! built under the list's lock for the masters whose `ats_enabled` is set,
//! submitted after the unlock.

use super::devices::devices_lock;
use super::{state, NR_ATS_MASTERS};
use crate::cmdq::{self, atc_inv_cmd, Batch};
use crate::domain::Domain;
use crate::kernel::{Cpu, Kernel};
use crate::types::{InvDesc, InvType};
use hwmodel::SmmuId;

/// `arm_smmu_tlb_inv_range_domain`.
pub(super) fn domain_inv_range(k: &Kernel, cpu: &Cpu, d: &Domain, iova: u64, size: u64, granule: u64, leaf: bool) {
    let Some(smmu) = state(d).smmu() else {
        // In the kernel a domain only gets its page table at its first
        // attach; ours exist from allocation, so order the PTE write here
        // as that attach would.
        k.machine.mem.smp_mb(cpu.id);
        return;
    };
    let f = k.machine.smmu(smmu).features;
    let tag = d.tag_inv(smmu, f);
    let clear = InvDesc::new(smmu, f.e2h, InvType::S2VmidS1Clear, tag.id, 0, 0);
    let tlbis = [tag, clear];
    let n = if d.nest_parent() { 2 } else { 1 };
    cmdq::inv_entries(k, cpu, tlbis[..n].iter(), iova, size, granule, leaf, || false);
    atc_inv_domain(k, cpu, d, smmu, iova, size);
}

/// `arm_smmu_atc_inv_domain`.
fn atc_inv_domain(k: &Kernel, cpu: &Cpu, d: &Domain, smmu: SmmuId, iova: u64, size: u64) {
    if !k.machine.smmu(smmu).features.ats {
        return;
    }
    // The TLBIs are complete before the count is read, so a master that
    // enables ATS after the read cannot cache what they removed.
    k.machine.mem.smp_mb(cpu.id);
    // atomic_read(&nr_ats_masters)
    if k.machine.mem.load(cpu.id, d.words + NR_ATS_MASTERS) == 0 {
        return;
    }
    let mut cmds = Batch::new(k, cpu);
    {
        let devices = devices_lock(k, cpu, d);
        for md in devices.iter() {
            // if (!master->ats_enabled) continue;
            if k.machine.mem.load(cpu.id, md.ats_enabled) == 0 {
                continue;
            }
            for &sid in &md.sids {
                // A nesting parent changed: the whole ATC.
                let cmd =
                    if md.nested_ats_flush { atc_inv_cmd(sid, 0, 0, 0) } else { atc_inv_cmd(sid, md.ssid, iova, size) };
                cmds.add(smmu, cmd);
            }
        }
    }
    cmds.submit();
}

/// `arm_smmu_domain_free_paging`: the domain's tag leaves the IOTLB of
/// its SMMU.
pub(super) fn domain_free(k: &Kernel, cpu: &Cpu, d: &Domain) {
    if let Some(smmu) = state(d).smmu() {
        cmdq::flush_tag(k, cpu, &d.tag_inv(smmu, k.machine.smmu(smmu).features));
    }
}

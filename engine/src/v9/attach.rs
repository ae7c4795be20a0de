//! Attach and detach as patches 4-5 of seed 001 (v9) sequence them, with
//! upstream's `arm_smmu_attach_prepare` / `arm_smmu_attach_commit` around
//! them. Where the seed shows only context, the upstream kernel it applies
//! to is modelled: the body of the ATS-off block in prepare is
//! `pci_disable_ats(); wmb();`, and commit flushes the whole ATC when ATS
//! goes off. The order that results: the new domain's array is published,
//! ATS is disabled at the endpoint, the STE/CD is written, the ATC is
//! flushed, and only then does the old domain drop the master's entries.

use super::{invs, Invs, INVS_PTR};
use crate::attach::{self, AttachState};
use crate::cmdq;
use crate::domain::{Domain, Target};
use crate::env::FaultSite;
use crate::master::MasterState;
use crate::words::View;
use crate::{Errno, Mutant};
use hwmodel::{Goal, ViolationKind};

/// `arm_smmu_attach_prepare`, with `arm_smmu_attach_prepare_invs` first.
pub(super) fn attach_prepare<'a>(st: &AttachState<'a>, ms: &mut MasterState) -> Result<(), Errno> {
    let k = st.k;
    let mut new_invs = attach_prepare_invs(st, ms)?;
    // The old domain's to_unref is built into master->build_invs with
    // master->ats_enabled; its inputs cannot change before commit, so
    // `install_old_domain_invs` builds the same entries again.
    if let Some(d) = st.target.domain() {
        if matches!(st.target, Target::Nested { .. }) {
            // arm_smmu_attach_prepare_vmaster; on failure
            // err_unprepare_invs frees new_invs.
            k.env.alloc(FaultSite::Vmaster)?;
        }
        k.env.alloc(FaultSite::MasterDomain)?;
        // list_add to smmu_domain->devices: the model keeps no list here.
        install_new_domain_invs(st, d, new_invs.take().expect("merged above"));
    }
    if !st.ats && st.old_ats {
        if st.old.domain().is_some() {
            // The old domain's array still holds the master's ATS
            // entries: its unref comes in commit.
            k.machine.oracle.cover(Goal::AtsOffOlderArray);
        }
        // pci_disable_ats(); wmb(): the config write completes before the
        // STE is configured.
        k.machine.set_ats(st.m.ep, false);
    }
    Ok(())
}

/// `arm_smmu_attach_prepare_invs`: the new domain's merged array.
fn attach_prepare_invs<'a>(st: &AttachState<'a>, ms: &mut MasterState) -> Result<Option<Invs>, Errno> {
    let Some(d) = st.target.domain() else { return Ok(None) };
    let old_invs = current_invs(st, d);
    super::inv::oops_on_err_ptr(d, old_invs, "arm_smmu_attach_prepare_invs");
    let build_invs = ms.build_invs(st.m, &st.k.env, st.ats, st.ssid, d).ok_or(Errno::EINVAL)?;
    Ok(Some(old_invs.merge(build_invs, &st.k.env)?))
}

/// `arm_smmu_install_ste_for_dev` / `arm_smmu_write_cd_entry`: v9's
/// `arm_smmu_write_entry` has no `dma_wmb()` before the first word.
pub(super) fn install_ste_for_dev(st: &AttachState) {
    attach::install_ste_for_dev(st, false, &mut || {});
}

/// `arm_smmu_attach_commit`.
pub(super) fn attach_commit<'a>(st: &AttachState<'a>, ms: &mut MasterState) {
    if st.ats && !st.old_ats {
        // arm_smmu_enable_ats: ATC invalidation of PASID 0 flushes the
        // whole ATC, then pci_enable_ats.
        attach::atc_inv_master(st, 0);
        st.k.machine.set_ats(st.m.ep, true);
    } else if st.ats && st.old_ats {
        attach::atc_inv_master(st, st.ssid);
    } else if !st.ats && st.old_ats {
        // ATS is being switched off, invalidate the entire ATC
        attach::atc_inv_master(st, 0);
    }
    // arm_smmu_remove_master_domain: no list in this model.
    install_old_domain_invs(st, ms);
    // master->ats_enabled = state->ats_enabled: in `Driver::attach`.
}

/// `rcu_dereference_protected(smmu_domain->invs, ...)`.
fn current_invs<'a>(st: &AttachState<'a>, d: &'a Domain) -> &'a Invs {
    st.k.rcu_dereference(st.cpu, d.id, invs(d), d.words + INVS_PTR, st.guard)
}

/// `arm_smmu_install_new_domain_invs`: "Must be installed before
/// arm_smmu_install_ste_for_dev()".
fn install_new_domain_invs<'a>(st: &AttachState<'a>, d: &'a Domain, new_invs: Invs) {
    let _f = smmu_sync::kernel_fn("arm_smmu_install_new_domain_invs");
    publish_invs(st, d, new_invs);
}

/// `rcu_assign_pointer(*invs_ptr, new_invs); smp_mb(); kfree_rcu(old)`:
/// the free waits for the attach's end, when every CPU sees the pointer.
fn publish_invs<'a>(st: &AttachState<'a>, d: &'a Domain, mut new_invs: Invs) {
    let k = st.k;
    check(st, d, &new_invs);
    new_invs.place(&k.machine, st.cpu.id);
    let old_invs = k.rcu_assign_pointer(st.cpu, d.id, invs(d), d.words + INVS_PTR, new_invs, st.guard);
    if !k.env.mutant(Mutant::PublishWithoutBarrier) {
        k.machine.mem.smp_mb(st.cpu.id);
    }
    let guard = st.guard;
    st.retire_later(move || k.retire(invs(d), old_invs, guard));
}

/// `arm_smmu_install_old_domain_invs`: "Should be installed after
/// arm_smmu_install_ste_for_dev()". On a re-attach the array unref'd is
/// the one `install_new_domain_invs` just published, which is the
/// domain's current array.
fn install_old_domain_invs<'a>(st: &AttachState<'a>, ms: &mut MasterState) {
    let _f = smmu_sync::kernel_fn("arm_smmu_install_old_domain_invs");
    let k = st.k;
    let Some(d) = st.old.domain() else { return };
    let old_invs = current_invs(st, d);
    super::inv::oops_on_err_ptr(d, old_invs, "arm_smmu_invs_unref");
    let Some(to_unref) = ms.build_invs(st.m, &k.env, st.old_ats, st.ssid, d) else {
        // The kernel passes the NULL scratch to unref and oopses; the
        // WARN that made it NULL is reported already.
        return;
    };
    // arm_smmu_inv_flush_iotlb_tag for each entry reaching zero users.
    let v = Some(View::new(&k.machine, st.cpu.id));
    old_invs.unref(to_unref, &k.env, v, |inv| cmdq::flush_tag(k, st.cpu, inv));
    let new_invs = match old_invs.purge(&k.env) {
        Ok(None) => return,
        Ok(Some(new_invs)) => new_invs,
        // `if (!new_invs) return;` lets ERR_PTR(-ENOMEM) through.
        Err(e) => Invs::err_ptr(e),
    };
    publish_invs(st, d, new_invs);
}

/// `arm_smmu_blocking_set_dev_pasid`.
pub(super) fn blocking_set_dev_pasid<'a>(st: &AttachState<'a>, ms: &mut MasterState) {
    // arm_smmu_attach_prepare_invs(&state, NULL): the old domain's
    // to_unref only, built again below.
    // arm_smmu_clear_cd(master, pasid)
    install_ste_for_dev(st);
    if st.old_ats {
        attach::atc_inv_master(st, st.ssid);
    }
    // arm_smmu_remove_master_domain: no list in this model.
    install_old_domain_invs(st, ms);
}

/// The oracle's check of every array v9 publishes (facts 1-2, and that an
/// array with ATS entries says so, or its walkers skip the lock).
fn check(st: &AttachState, d: &Domain, invs: &Invs) {
    st.k.cover_array(invs.entries());
    if let Err(e) = invs.check() {
        st.k.machine.oracle.report(ViolationKind::ArrayInvariant, format!("{:?} publishing: {e}", d.id));
    }
}

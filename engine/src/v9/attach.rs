//! Attach and detach as patches 4-5 of seed 001 (v9) sequence them, with
//! upstream's `arm_smmu_attach_prepare` / `arm_smmu_attach_commit` around
//! them. Where the seed shows only context, the upstream kernel it applies
//! to is modelled: the body of the ATS-off block in prepare is
//! `pci_disable_ats(); wmb();`, and commit flushes the whole ATC when ATS
//! goes off. The order that results: the new domain's array is published,
//! ATS is disabled at the endpoint, the STE/CD is written, the ATC is
//! flushed, and only then does the old domain drop the master's entries.

use super::invs::Invs;
use crate::attach::Move;
use crate::domain::{Domain, Target};
use crate::driver::Driver;
use crate::env::FaultSite;
use crate::master::MasterState;
use crate::shared::{View, V9_PTR};
use crate::{Errno, Mutant};
use hwmodel::{Goal, ViolationKind};

impl Driver {
    /// `arm_smmu_attach_dev` (and `arm_smmu_attach_dev_ste`,
    /// `arm_smmu_set_pasid`, `arm_smmu_blocking_set_dev_pasid`).
    pub(crate) fn move_v9<'a>(&'a self, mv: &Move<'a>, ms: &mut MasterState) -> Result<(), Errno> {
        if mv.ssid != 0 && mv.target.domain().is_none() {
            self.v9_blocking_set_dev_pasid(mv, ms);
            return Ok(());
        }
        self.v9_attach_prepare(mv, ms)?;
        // arm_smmu_install_ste_for_dev / arm_smmu_write_cd_entry: v9's
        // arm_smmu_write_entry has no dma_wmb() before the first word.
        self.write_ste_cd(mv, false, &mut || {});
        self.v9_attach_commit(mv, ms);
        Ok(())
    }

    /// `rcu_dereference_protected(smmu_domain->invs, ...)`.
    fn v9_invs<'a>(&self, mv: &Move<'a>, d: &'a Domain) -> &'a Invs {
        self.rcu_dereference(mv.cpu, d.id, &d.v9, d.words + V9_PTR, mv.guard)
    }

    /// `rcu_assign_pointer(*invs_ptr, new_invs); smp_mb(); kfree_rcu(old)`:
    /// the free waits for the move's end, when every CPU sees the pointer.
    fn v9_publish<'a>(&'a self, mv: &Move<'a>, d: &'a Domain, mut new_invs: Invs) {
        self.v9_check(d, &new_invs);
        new_invs.place(&self.machine, mv.cpu.id);
        let old_invs = self.rcu_assign_pointer(mv.cpu, d.id, &d.v9, d.words + V9_PTR, new_invs, mv.guard);
        if !self.env.mutant(Mutant::PublishWithoutBarrier) {
            self.machine.mem.smp_mb(mv.cpu.id);
        }
        let guard = mv.guard;
        mv.replaced.borrow_mut().push(Box::new(move || self.retire(&d.v9, old_invs, guard)));
    }

    /// `arm_smmu_attach_prepare`, with `arm_smmu_attach_prepare_invs` first.
    fn v9_attach_prepare<'a>(&'a self, mv: &Move<'a>, ms: &mut MasterState) -> Result<(), Errno> {
        let mut new_invs = None;
        if let Some(d) = mv.target.domain() {
            let old_invs = self.v9_invs(mv, d);
            self.v9_oops_on_err_ptr(d, old_invs, "arm_smmu_attach_prepare_invs");
            let build_invs = ms.build_invs(mv.m, &self.env, mv.ats, mv.ssid, d).ok_or(Errno::EINVAL)?;
            new_invs = Some(old_invs.merge(build_invs, &self.env)?);
        }
        // The old domain's to_unref is built into master->build_invs with
        // master->ats_enabled; its inputs cannot change before commit, so
        // `v9_install_old_domain_invs` builds the same entries again.
        if let Some(d) = mv.target.domain() {
            if matches!(mv.target, Target::Nested { .. }) {
                // arm_smmu_attach_prepare_vmaster; on failure
                // err_unprepare_invs frees new_invs.
                self.env.alloc(FaultSite::Vmaster)?;
            }
            self.env.alloc(FaultSite::MasterDomain)?;
            // list_add to smmu_domain->devices: the model keeps no list here.
            self.v9_install_new_domain_invs(mv, d, new_invs.take().expect("merged above"));
        }
        if !mv.ats && mv.old_ats {
            if mv.old.domain().is_some() {
                // The old domain's array still holds the master's ATS
                // entries: its unref comes in commit.
                self.machine.oracle.cover(Goal::AtsOffOlderArray);
            }
            // pci_disable_ats(); wmb(): the config write completes before
            // the STE is configured.
            self.machine.set_ats(mv.m.ep, false);
        }
        Ok(())
    }

    /// `arm_smmu_install_new_domain_invs`: "Must be installed before
    /// arm_smmu_install_ste_for_dev()".
    fn v9_install_new_domain_invs<'a>(&'a self, mv: &Move<'a>, d: &'a Domain, new_invs: Invs) {
        self.v9_publish(mv, d, new_invs);
    }

    /// `arm_smmu_attach_commit`.
    fn v9_attach_commit<'a>(&'a self, mv: &Move<'a>, ms: &mut MasterState) {
        if mv.ats && !mv.old_ats {
            // arm_smmu_enable_ats: ATC invalidation of PASID 0 flushes the
            // whole ATC, then pci_enable_ats.
            self.atc_inv_master(mv.cpu, mv.m, 0);
            self.machine.set_ats(mv.m.ep, true);
        } else if mv.ats && mv.old_ats {
            self.atc_inv_master(mv.cpu, mv.m, mv.ssid);
        } else if !mv.ats && mv.old_ats {
            // ATS is being switched off, invalidate the entire ATC
            self.atc_inv_master(mv.cpu, mv.m, 0);
        }
        // arm_smmu_remove_master_domain: no list in this model.
        self.v9_install_old_domain_invs(mv, ms);
        // master->ats_enabled = state->ats_enabled: in `Driver::attach`.
    }

    /// `arm_smmu_install_old_domain_invs`: "Should be installed after
    /// arm_smmu_install_ste_for_dev()". On a re-attach the array unref'd is
    /// the one `v9_install_new_domain_invs` just published, which is the
    /// domain's current array.
    fn v9_install_old_domain_invs<'a>(&'a self, mv: &Move<'a>, ms: &mut MasterState) {
        let Some(d) = mv.old.domain() else { return };
        let old_invs = self.v9_invs(mv, d);
        self.v9_oops_on_err_ptr(d, old_invs, "arm_smmu_invs_unref");
        let Some(to_unref) = ms.build_invs(mv.m, &self.env, mv.old_ats, mv.ssid, d) else {
            // The kernel passes the NULL scratch to unref and oopses; the
            // WARN that made it NULL is reported already.
            return;
        };
        // arm_smmu_inv_flush_iotlb_tag for each entry reaching zero users.
        old_invs.unref(to_unref, &self.env, Some(View::new(&self.machine, mv.cpu)), |inv| self.flush_tag(mv.cpu, inv));
        let new_invs = match old_invs.purge(&self.env) {
            Ok(None) => return,
            Ok(Some(new_invs)) => new_invs,
            // `if (!new_invs) return;` lets ERR_PTR(-ENOMEM) through.
            Err(e) => Invs::err_ptr(e),
        };
        self.v9_publish(mv, d, new_invs);
    }

    /// `arm_smmu_blocking_set_dev_pasid`.
    fn v9_blocking_set_dev_pasid<'a>(&'a self, mv: &Move<'a>, ms: &mut MasterState) {
        // arm_smmu_attach_prepare_invs(&state, NULL): the old domain's
        // to_unref only, built again below.
        // arm_smmu_clear_cd(master, pasid)
        self.write_ste_cd(mv, false, &mut || {});
        if mv.old_ats {
            self.atc_inv_master(mv.cpu, mv.m, mv.ssid);
        }
        // arm_smmu_remove_master_domain: no list in this model.
        self.v9_install_old_domain_invs(mv, ms);
    }

    /// The oracle's check of every array v9 publishes (facts 1-2, and that
    /// an array with ATS entries says so, or its walkers skip the lock).
    fn v9_check(&self, d: &Domain, invs: &Invs) {
        self.cover_array(invs.entries());
        if let Err(e) = invs.check() {
            self.machine.oracle.report(ViolationKind::ArrayInvariant, format!("{:?} publishing: {e}", d.id));
        }
    }
}

//! The steps in which the designs differ, under the kernel's names: what a
//! driver's ops table points at. Each design is a folder (`fenced/`, `v9/`,
//! `legacy/`) whose `mod.rs` implements this trait by calling functions of
//! the same names in its `attach.rs` and `inv.rs`; the code around the
//! calls (`Driver`) never asks which design runs.

use crate::attach::{self, AttachState};
use crate::domain::{Domain, Stage};
use crate::kernel::{Cpu, Kernel};
use crate::master::{Master, MasterState};
use crate::types::InvDesc;
use crate::Errno;
use hwmodel::{Addr, DomainId, Goal};
use std::any::Any;

pub trait Design: Any + Send + Sync {
    /// `arm_smmu_domain_alloc`: what a new domain keeps to be invalidated
    /// (its first, empty array, or the pre-series device list). `words` is
    /// the domain's frame in model memory.
    fn domain_alloc(&self, k: &Kernel, id: DomainId, stage: Stage, words: Addr) -> Box<dyn Any + Send + Sync>;

    /// `arm_smmu_attach_dev` and `arm_smmu_set_pasid`: prepare, install the
    /// STE/CD, commit. On error nothing has changed.
    fn attach_dev<'a>(&'a self, st: &AttachState<'a>, ms: &mut MasterState) -> Result<(), Errno> {
        {
            let _f = smmu_sync::kernel_fn("arm_smmu_attach_prepare");
            self.attach_prepare(st, ms)?;
        }
        {
            let _f = smmu_sync::kernel_fn("arm_smmu_install_ste_for_dev");
            self.install_ste_for_dev(st);
        }
        let _f = smmu_sync::kernel_fn("arm_smmu_attach_commit");
        self.attach_commit(st, ms);
        Ok(())
    }

    /// `arm_smmu_attach_prepare`: everything that can fail, and what must
    /// happen before the STE/CD changes.
    fn attach_prepare<'a>(&'a self, st: &AttachState<'a>, ms: &mut MasterState) -> Result<(), Errno>;

    /// `arm_smmu_install_ste_for_dev` / `arm_smmu_write_cd_entry`, with the
    /// `dma_wmb` the series added in v10.
    fn install_ste_for_dev<'a>(&'a self, st: &AttachState<'a>) {
        attach::install_ste_for_dev(st, true, &mut || {});
    }

    /// `arm_smmu_attach_commit`: what follows the STE/CD write, including
    /// ATS on and leaving the old domain.
    fn attach_commit<'a>(&'a self, st: &AttachState<'a>, ms: &mut MasterState);

    /// `arm_smmu_blocking_set_dev_pasid`: a PASID goes to blocked, which
    /// cannot fail.
    fn blocking_set_dev_pasid<'a>(&'a self, st: &AttachState<'a>, ms: &mut MasterState) -> Result<(), Errno> {
        self.attach_dev(st, ms)
    }

    /// ATS off after an attach that dropped it has returned and released
    /// its locks, for a design that waits for that; designs that turn it
    /// off in `attach_prepare` do nothing here.
    fn disable_ats(&self, _k: &Kernel, _cpu: &Cpu, _m: &Master, _ats: bool, _old_ats: bool) {}

    /// `arm_smmu_domain_inv_range`: invalidate [iova, iova + size) of `d`
    /// wherever it may be cached; size 0 means everything.
    #[allow(clippy::too_many_arguments)]
    fn domain_inv_range(&self, k: &Kernel, cpu: &Cpu, d: &Domain, iova: u64, size: u64, granule: u64, leaf: bool);

    /// What freeing a domain nothing is attached to must flush.
    fn domain_free(&self, _k: &Kernel, _cpu: &Cpu, _d: &Domain) {}

    /// `arm_smmu_device_remove`, once the instance's masters have left
    /// every domain: wait until no walker can still reach the instance
    /// (fact 7).
    fn device_remove(&self, k: &Kernel, cpu: &Cpu) {
        if !k.env.mutant(crate::Mutant::RemoveSmmuWithoutGracePeriod) {
            k.synchronize_rcu(cpu);
        }
    }

    /// The ASID/VMID entries `domains` still invalidate (fact 5: no other
    /// tag may stay cached).
    fn domain_tags(&self, k: &Kernel, cpu: &Cpu, domains: &[&Domain]) -> Vec<InvDesc>;

    /// Whether this design can reach coverage goal `g` at all.
    fn can_reach(&self, g: Goal) -> bool;

    /// Whether one domain may span several SMMUs.
    fn spans_smmus(&self) -> bool {
        true
    }

    /// Whether the line mutant `m` breaks is code this design runs.
    fn honours(&self, _m: crate::Mutant) -> bool {
        true
    }
}

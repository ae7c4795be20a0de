//! The kernel before the series: one SMMU per domain, a list of attached
//! masters under a spinlock, and a count of ATS masters that lets an
//! invalidation skip the list. Attach and invalidation as upstream's
//! `arm_smmu_attach_prepare`, `arm_smmu_attach_commit` and
//! `arm_smmu_atc_inv_domain` order them: ATS is turned off at the endpoint
//! in prepare, before the STE changes, while the master is still on the
//! old domain's list, and an invalidation sends ATC_INVs to the masters on
//! the list whose `master->ats_enabled` it reads as set. The baseline the
//! series is compared against, as it really was.

mod attach;
mod devices;
mod inv;

use crate::attach::AttachState;
use crate::design::Design;
use crate::domain::{Domain, Stage};
use crate::kernel::{Cpu, Kernel};
use crate::master::MasterState;
use crate::types::InvDesc;
use crate::Errno;
use devices::MasterDomain;
use hwmodel::{Addr, DomainId, EndpointId, Goal, SmmuId};
use smmu_sync::{plain, Mutex};
use std::any::Any;
use std::collections::BTreeMap;

/// `atomic_t nr_ats_masters`, at this offset in the domain's frame.
const NR_ATS_MASTERS: u64 = 16;

/// The pre-series driver's state beyond its domains.
#[derive(Default)]
pub struct Legacy {
    /// Where each master's `ats_enabled` lives in simulated memory: written
    /// by its attaches, read by other CPUs' invalidations, with no lock in
    /// common. Placed at a master's first attach.
    ats_enabled: plain::Mutex<BTreeMap<EndpointId, Addr>>,
}

/// The pre-series `struct arm_smmu_domain`'s invalidation state.
struct LegacyDomain {
    /// `smmu_domain->smmu`, set by the first attach: the domain cannot span
    /// SMMUs.
    smmu: plain::Mutex<Option<SmmuId>>,
    /// `devices` under `devices_lock`. Only ever read and written under the
    /// lock, whose release drains the holder's stores, so the list lives in
    /// Rust memory: the store buffers could not reorder it.
    devices: Mutex<Vec<MasterDomain>>,
}

impl LegacyDomain {
    fn smmu(&self) -> Option<SmmuId> {
        *self.smmu.lock()
    }
}

fn state(d: &Domain) -> &LegacyDomain {
    d.state::<LegacyDomain>()
}

impl Design for Legacy {
    fn domain_alloc(&self, _k: &Kernel, _id: DomainId, _stage: Stage, _words: Addr) -> Box<dyn Any + Send + Sync> {
        Box::new(LegacyDomain { smmu: plain::Mutex::new(None), devices: Mutex::new(Vec::new()) })
    }

    fn attach_prepare<'a>(&'a self, st: &AttachState<'a>, _ms: &mut MasterState) -> Result<(), Errno> {
        attach::attach_prepare(self, st)
    }

    fn install_ste_for_dev<'a>(&'a self, st: &AttachState<'a>) {
        attach::install_ste_for_dev(st);
    }

    fn attach_commit<'a>(&'a self, st: &AttachState<'a>, _ms: &mut MasterState) {
        attach::attach_commit(self, st);
    }

    fn blocking_set_dev_pasid<'a>(&'a self, st: &AttachState<'a>, _ms: &mut MasterState) -> Result<(), Errno> {
        attach::blocking_set_dev_pasid(st);
        Ok(())
    }

    fn domain_inv_range(&self, k: &Kernel, cpu: &Cpu, d: &Domain, iova: u64, size: u64, granule: u64, leaf: bool) {
        inv::domain_inv_range(k, cpu, d, iova, size, granule, leaf);
    }

    /// A domain's tag stays live on its SMMU until the domain is freed,
    /// and the free flushes it.
    fn domain_free(&self, k: &Kernel, cpu: &Cpu, d: &Domain) {
        inv::domain_free(k, cpu, d);
    }

    /// No array can hold an instance a walker still reaches: nothing to
    /// wait for.
    fn device_remove(&self, _k: &Kernel, _cpu: &Cpu) {}

    fn domain_tags(&self, k: &Kernel, _cpu: &Cpu, domains: &[&Domain]) -> Vec<InvDesc> {
        domains.iter().filter_map(|d| state(d).smmu().map(|s| d.tag_inv(s, k.machine.smmu(s).features))).collect()
    }

    /// No arrays, no fallible array copies, no SMMU removal under a
    /// walker, no domain on several SMMUs, and no rwlock.
    fn can_reach(&self, g: Goal) -> bool {
        use Goal::*;
        !matches!(
            g,
            TrashWalked
                | WalkerOnOldArray
                | AtsJoinedMidWalk
                | TwoPasidsOneSid
                | ArraySpansSmmus
                | BatchEndSmmu
                | BatchEndAts
                | FaultInvsMerge
                | FaultInvsPurge
                | AtsOffOlderArray
                | SmmuRemovedAttached
                | StalePointerLoaded
                | LoadBeforePublish
                | PublishBeforeLoad
                | LoadBeforePurge
                | PurgeBeforeLoad
                | AtsOffBeforeAtcInv
                | IrqReadWriterWaiting
                | IrqReadNoWriter
                | IrqReadOwnReader
        )
    }

    fn spans_smmus(&self) -> bool {
        false
    }
}

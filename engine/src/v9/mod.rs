//! Seed 001 (PATCH v9 1-7/7) as written: the invalidation array, the attach
//! sequence and the invalidation walker translated statement by statement,
//! each function named after the seed's. Where the seed is wrong this code
//! is wrong the same way, so `stress --engine v9` can find it; the fixes
//! live in `fenced/`, under the same file and function names.

mod attach;
mod inv;
mod invs;

pub use invs::Invs;

use crate::attach::AttachState;
use crate::design::Design;
use crate::domain::{Domain, Stage};
use crate::kernel::{Cpu, Kernel};
use crate::master::MasterState;
use crate::types::InvDesc;
use crate::Errno;
use hwmodel::{Addr, DomainId, Goal};
use smmu_sync::Rcu;
use std::any::Any;

/// The domain's array pointer, at this offset in the domain's frame.
const INVS_PTR: u64 = 8;

/// Seed 001's driver: no state beyond its domains' arrays.
pub struct V9;

/// `smmu_domain->invs`.
struct V9Domain {
    invs: Rcu<Invs>,
}

/// A domain's array, for tests of this design.
pub fn invs(d: &Domain) -> &Rcu<Invs> {
    &d.state::<V9Domain>().invs
}

impl Design for V9 {
    fn domain_alloc(&self, _k: &Kernel, _id: DomainId, _stage: Stage, _words: Addr) -> Box<dyn Any + Send + Sync> {
        Box::new(V9Domain { invs: Rcu::new(Invs::default()) })
    }

    fn attach_prepare<'a>(&'a self, st: &AttachState<'a>, ms: &mut MasterState) -> Result<(), Errno> {
        attach::attach_prepare(st, ms)
    }

    fn install_ste_for_dev<'a>(&'a self, st: &AttachState<'a>) {
        attach::install_ste_for_dev(st);
    }

    fn attach_commit<'a>(&'a self, st: &AttachState<'a>, ms: &mut MasterState) {
        attach::attach_commit(st, ms);
    }

    fn blocking_set_dev_pasid<'a>(&'a self, st: &AttachState<'a>, ms: &mut MasterState) -> Result<(), Errno> {
        attach::blocking_set_dev_pasid(st, ms);
        Ok(())
    }

    fn domain_inv_range(&self, k: &Kernel, cpu: &Cpu, d: &Domain, iova: u64, size: u64, granule: u64, leaf: bool) {
        inv::domain_inv_range(k, cpu, d, iova, size, granule, leaf);
    }

    fn domain_tags(&self, _k: &Kernel, cpu: &Cpu, domains: &[&Domain]) -> Vec<InvDesc> {
        let guard = cpu.epoch.pin();
        domains
            .iter()
            .flat_map(|d| {
                let invs = invs(d).load(&guard);
                inv::oops_on_err_ptr(d, invs, "the next use of the array");
                invs.entries().iter().filter(|i| i.users() != 0).map(|i| i.desc)
            })
            .collect()
    }

    /// v9's comparison merges two PASIDs of one stream ID into one entry,
    /// and its failed purge kills the thread before the run's end.
    fn can_reach(&self, g: Goal) -> bool {
        !matches!(g, Goal::TwoPasidsOneSid | Goal::FaultInvsPurge)
    }
}

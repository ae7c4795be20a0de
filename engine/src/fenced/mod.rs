//! The project's proposal: seed 001's design with the fixes its later
//! versions made (ATS entries sort and match by SSID, `users` read with
//! `READ_ONCE`, a failed purge leaves trash, purged copies keep `has_ats`,
//! the walker advances past a skipped S1 clear, the `dma_wmb` before an
//! STE/CD write from v10, `read_lock_irqsave` on the ATS lock from v11),
//! and this project's own change to the ATS-off order (see `attach.rs`).
//! Same files and function names as `v9/`: `diff -r v9 fenced` is the
//! review.

mod attach;
mod inv;
mod invs;

pub use attach::replace_invs;
pub use invs::Invs;

use crate::attach::AttachState;
use crate::design::Design;
use crate::domain::{Domain, Stage};
use crate::kernel::{Cpu, Kernel};
use crate::master::{Master, MasterState};
use crate::types::InvDesc;
use crate::Errno;
use hwmodel::{Addr, DomainId, Goal, SmmuId};
use smmu_sync::{plain, Rcu};
use std::any::Any;
use std::collections::BTreeSet;

/// The domain's array pointer, at this offset in the domain's frame.
const INVS_PTR: u64 = 0;

/// The proposal's driver-wide state.
#[derive(Default)]
pub struct Fenced {
    /// Stream IDs (by SMMU) with a live ATS entry in an array replaced
    /// since their master last turned ATS off after a grace period: a
    /// walker may still hold that array and send them ATC_INVs that no
    /// `unref` fences. Written by array writers, under the ASID lock.
    ats_replaced: plain::Mutex<BTreeSet<(SmmuId, u32)>>,
}

/// `smmu_domain->invs`.
struct FencedDomain {
    invs: Rcu<Invs>,
}

/// A domain's array, for tests and benchmarks of this design.
pub fn invs(d: &Domain) -> &Rcu<Invs> {
    &d.state::<FencedDomain>().invs
}

impl Design for Fenced {
    fn domain_alloc(&self, _k: &Kernel, _id: DomainId, _stage: Stage, _words: Addr) -> Box<dyn Any + Send + Sync> {
        Box::new(FencedDomain { invs: Rcu::new(Invs::new()) })
    }

    fn attach_prepare<'a>(&'a self, st: &AttachState<'a>, ms: &mut MasterState) -> Result<(), Errno> {
        attach::attach_prepare(self, st, ms)
    }

    fn install_ste_for_dev<'a>(&'a self, st: &AttachState<'a>) {
        attach::install_ste_for_dev(st);
    }

    fn attach_commit<'a>(&'a self, st: &AttachState<'a>, ms: &mut MasterState) {
        attach::attach_commit(self, st, ms);
    }

    fn disable_ats(&self, k: &Kernel, cpu: &Cpu, m: &Master, ats: bool, old_ats: bool) {
        attach::disable_ats(self, k, cpu, m, ats, old_ats);
    }

    fn domain_inv_range(&self, k: &Kernel, cpu: &Cpu, d: &Domain, iova: u64, size: u64, granule: u64, leaf: bool) {
        inv::domain_inv_range(k, cpu, d, iova, size, granule, leaf);
    }

    fn domain_tags(&self, _k: &Kernel, cpu: &Cpu, domains: &[&Domain]) -> Vec<InvDesc> {
        let guard = cpu.epoch.pin();
        domains.iter().flat_map(|d| invs(d).load(&guard).iter().map(|i| i.desc)).collect()
    }

    /// Its walkers read-lock with interrupts off: no interrupt runs on a
    /// CPU that holds the ATS read side.
    fn can_reach(&self, g: Goal) -> bool {
        g != Goal::IrqReadOwnReader
    }
}

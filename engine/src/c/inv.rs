//! `arm_smmu_domain_inv_range`: the series' own walker, run inside an RCU
//! read-side critical section the model holds around the call (the C's
//! `rcu_read_lock` is the pin), with the oracle's checks of a walk after.

use super::{cdomain, world, C};
use crate::cmdq::{command_bound, report_walk, Walk};
use crate::domain::Domain;
use crate::kernel::{Cpu, Kernel};
use hwmodel::Goal;

#[allow(clippy::too_many_arguments)]
pub(super) fn domain_inv_range(
    c: &C,
    k: &Kernel,
    cpu: &Cpu,
    d: &Domain,
    iova: u64,
    size: u64,
    granule: u64,
    leaf: bool,
) {
    let guard = cpu.epoch.pin();
    c.world.begin_walk();
    c.call(k).domain_inv_range(cdomain(d), iova, size, granule, leaf);
    let (loaded, issued) = c.world.end_walk();
    drop(guard);
    k.report_warnings();
    let Some(walked) = loaded else { return };
    if c.world.entries(walked).iter().any(|e| e.users == 0) {
        k.machine.oracle.cover(Goal::TrashWalked);
    }
    let current = c.call(k).domain_invs(cdomain(d));
    // An ERR_PTR the domain now holds is reported at its next dereference.
    if current != walked && !world::is_err(current) {
        let (walked, current) = (c.world.invs(walked), c.world.invs(current));
        k.cover_old_array(&walked, &current);
    }
    // The bound of an instrumented walk is over the entries it visited;
    // this walk is the series' and visits a subset of these.
    let bound =
        c.world.built_with(walked).iter().map(|e| command_bound(k.machine.smmu(e.desc.smmu).features, granule)).sum();
    report_walk(k, d, Walk { issued, bound, poisoned: false }, size, granule);
}

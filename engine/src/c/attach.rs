//! Attach and detach in v9's order, calling the series' C where seed 001
//! calls its functions: `arm_smmu_attach_prepare_invs` and
//! `arm_smmu_install_new_domain_invs` in `arm_smmu_attach_prepare`,
//! `arm_smmu_install_old_domain_invs` in `arm_smmu_attach_commit` and in
//! `arm_smmu_blocking_set_dev_pasid`. What the series only shows as
//! context (ATS off in prepare, the ATC flushes in commit, the STE/CD
//! write without a barrier) is v9's Rust, `engine/src/v9/attach.rs`.

use super::{cdomain, C};
use crate::attach::{self, AttachState};
use crate::domain::Target;
use crate::env::FaultSite;
use crate::Errno;
use hwmodel::Goal;

/// The C state for this attach, with the master's ATS state as the C sees
/// it (`master->ats_enabled`).
fn begin(c: &C, st: &AttachState) -> usize {
    let k = st.k;
    let master = c.master(k, st.m);
    let call = c.call(k);
    call.master_set_ats(master, st.old_ats);
    let state = c.state(k);
    let old = st.old.domain().map_or(0, |d| cdomain(d));
    call.state_init(state, master, old, st.ssid, st.ats);
    state
}

/// `arm_smmu_attach_prepare`.
pub(super) fn attach_prepare(c: &C, st: &AttachState) -> Result<(), Errno> {
    let k = st.k;
    let state = begin(c, st);
    let new = st.target.domain().map_or(0, |d| cdomain(d));
    // The merge is the only allocation of arm_smmu_attach_prepare_invs.
    c.world.set_site(Some(FaultSite::InvsMerge));
    let r = c.call(k).attach_prepare_invs(state, new);
    c.world.set_site(None);
    if r != 0 {
        return Err(if r == -12 { Errno::ENOMEM } else { Errno::EINVAL });
    }
    if st.target.domain().is_some() {
        let allocs = if matches!(st.target, Target::Nested { .. }) {
            // arm_smmu_attach_prepare_vmaster
            k.env.alloc(FaultSite::Vmaster)
        } else {
            Ok(())
        };
        if let Err(e) = allocs.and_then(|()| k.env.alloc(FaultSite::MasterDomain)) {
            // err_unprepare_invs
            c.call(k).unprepare_invs(state);
            return Err(e);
        }
        c.call(k).install_new_domain_invs(state);
    }
    if !st.ats && st.old_ats {
        if st.old.domain().is_some() {
            k.machine.oracle.cover(Goal::AtsOffOlderArray);
        }
        // pci_disable_ats(); wmb()
        k.machine.set_ats(st.m.ep, false);
    }
    Ok(())
}

/// As v9's: no `dma_wmb()` before the first word.
pub(super) fn install_ste_for_dev(st: &AttachState) {
    attach::install_ste_for_dev(st, false, &mut || {});
}

/// `arm_smmu_attach_commit`.
pub(super) fn attach_commit<'a>(c: &'a C, st: &AttachState<'a>) {
    if st.ats && !st.old_ats {
        attach::atc_inv_master(st, 0);
        st.k.machine.set_ats(st.m.ep, true);
    } else if st.ats && st.old_ats {
        attach::atc_inv_master(st, st.ssid);
    } else if !st.ats && st.old_ats {
        attach::atc_inv_master(st, 0);
    }
    install_old_domain_invs(c, st);
}

/// `arm_smmu_blocking_set_dev_pasid`.
pub(super) fn blocking_set_dev_pasid<'a>(c: &'a C, st: &AttachState<'a>) {
    let state = begin(c, st);
    // arm_smmu_attach_prepare_invs(&state, NULL): builds the old domain's
    // to_unref, allocates nothing.
    c.call(st.k).attach_prepare_invs(state, 0);
    install_ste_for_dev(st);
    if st.old_ats {
        attach::atc_inv_master(st, st.ssid);
    }
    install_old_domain_invs(c, st);
}

/// The C's `arm_smmu_install_old_domain_invs`, whose purge is the one
/// allocation; then what the C freed with `kfree_rcu` this attach is
/// poisoned once the attach's locks are released and a grace period has
/// passed, as the Rust designs retire replaced arrays.
fn install_old_domain_invs<'a>(c: &'a C, st: &AttachState<'a>) {
    let k = st.k;
    c.world.set_site(Some(FaultSite::InvsPurge));
    c.call(k).install_old_domain_invs(c.state(k));
    c.world.set_site(None);
    for block in c.world.take_pending_rcu() {
        let (world, guard) = (c.world.clone(), st.guard);
        st.retire_later(move || {
            guard.defer(move || world.poison(block));
            guard.flush();
        });
    }
}

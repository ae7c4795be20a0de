//! Attach and detach in the proposal's order (fact 4):
//!
//! 1. the new domain publishes its merged array;
//! 2. from then on it invalidates for the master;
//! 3. the STE/CD is written;
//! 4. the old domain still invalidates for the master;
//! 5. the old domain unrefs the master's entries and, if that left trash,
//!    publishes a purged array.
//!
//! Everything that can fail happens before step 1. Unlike seed 001, ATS
//! stays on at the endpoint until the old entries are fenced (the unref's
//! write lock, and a grace period when an older copy of the array holds
//! them): a move that turns it off first stops translation requests with
//! EATS=0 and empties the ATC, and an ATS master's new domain is flushed
//! before the master may answer translation requests in it.

use super::{invs, Fenced, Invs, INVS_PTR};
use crate::attach::{self, AttachState};
use crate::cmdq;
use crate::domain::{Domain, Target};
use crate::env::FaultSite;
use crate::kernel::{Cpu, Kernel};
use crate::master::{Master, MasterState};
use crate::words::View;
use crate::{Errno, Mutant};
use hwmodel::{Goal, ViolationKind};

/// `arm_smmu_attach_prepare`.
pub(super) fn attach_prepare<'a>(f: &'a Fenced, st: &AttachState<'a>, ms: &mut MasterState) -> Result<(), Errno> {
    let k = st.k;
    let new_invs = attach_prepare_invs(st, ms)?;
    // The kernel's vmaster (nested only) and master_domain allocations,
    // for a paging target only; dropping `new_invs` on failure is the
    // whole unwind, nothing has been published.
    if matches!(st.target, Target::Nested { .. }) {
        k.env.alloc(FaultSite::Vmaster)?;
    }
    if st.target.domain().is_some() {
        k.env.alloc(FaultSite::MasterDomain)?;
    }
    if let (Some(d), Some(new_invs)) = (st.target.domain(), new_invs) {
        st.defer_publish(move |st| install_new_domain_invs(f, st, d, new_invs));
    }
    // The STE/CD write's dma_wmb orders the new pointer before the STE/CD
    // word: pairs with the smp_mb in domain_inv_range.
    if !k.env.mutant(Mutant::NewInvsAfterSte) && !k.env.mutant(Mutant::PublishWithoutBarrier) {
        st.publish_pending();
    }
    if k.env.mutant(Mutant::OldInvsBeforeSte) {
        install_old_domain_invs(f, st, ms);
    }
    flush_before_ats(st);
    stop_translation_requests(st);
    Ok(())
}

/// `arm_smmu_attach_prepare_invs`: the new domain's merged array.
fn attach_prepare_invs<'a>(st: &AttachState<'a>, ms: &mut MasterState) -> Result<Option<Invs>, Errno> {
    let Some(d) = st.target.domain() else { return Ok(None) };
    let to_merge = ms.build_invs(st.m, &st.k.env, st.ats, st.ssid, d).ok_or(Errno::EINVAL)?;
    Ok(Some(current_invs(st, d).merge(to_merge, &st.k.env)?))
}

/// `arm_smmu_install_ste_for_dev`, with the `dma_wmb` before each word.
pub(super) fn install_ste_for_dev(st: &AttachState) {
    let late = st.k.env.mutant(Mutant::PublishWithoutBarrier);
    attach::install_ste_for_dev(st, true, &mut || {
        if late {
            st.publish_pending();
        }
    });
}

/// `arm_smmu_attach_commit`.
pub(super) fn attach_commit<'a>(f: &'a Fenced, st: &AttachState<'a>, ms: &mut MasterState) {
    st.publish_pending();
    // ATS on once the STE allows it; if it stays on, flush the ATC because
    // the translation under it changed (a move turning it off flushed it
    // in `stop_translation_requests`).
    if st.ats && !st.old_ats {
        st.k.machine.set_ats(st.m.ep, true);
    } else if st.ats && st.old_ats {
        attach::atc_inv_master(st, st.ssid);
    }
    if !st.k.env.mutant(Mutant::OldInvsBeforeSte) {
        install_old_domain_invs(f, st, ms);
    }
}

/// `rcu_dereference_protected(smmu_domain->invs, ...)`: the array `d`
/// publishes now, as this writer under the ASID lock sees it.
fn current_invs<'a>(st: &AttachState<'a>, d: &'a Domain) -> &'a Invs {
    st.k.rcu_dereference(st.cpu, d.id, invs(d), d.words + INVS_PTR, st.guard)
}

/// `arm_smmu_install_new_domain_invs`: "Must be installed before
/// arm_smmu_install_ste_for_dev()".
fn install_new_domain_invs<'a>(f: &'a Fenced, st: &AttachState<'a>, d: &'a Domain, new_invs: Invs) {
    let _f = smmu_sync::kernel_fn("arm_smmu_install_new_domain_invs");
    publish_invs(f, st, d, new_invs);
}

/// `rcu_assign_pointer(*invs_ptr, new_invs); kfree_rcu(old_invs)`: the
/// one replaced is retired when the attach ends.
fn publish_invs<'a>(f: &'a Fenced, st: &AttachState<'a>, d: &'a Domain, mut new_invs: Invs) {
    let k = st.k;
    if let Err(e) = new_invs.check(true) {
        k.machine.oracle.report(ViolationKind::ArrayInvariant, format!("{:?} publishing: {e}", d.id));
    }
    k.cover_array(new_invs.entries());
    new_invs.place(&k.machine, st.cpu.id);
    let old_invs = k.rcu_assign_pointer(st.cpu, d.id, invs(d), d.words + INVS_PTR, new_invs, st.guard);
    mark_ats_replaced(f, old_invs.get());
    let guard = st.guard;
    st.retire_later(move || k.retire(invs(d), old_invs, guard));
}

/// Step 5, `arm_smmu_install_old_domain_invs`: drop the master's entries
/// (built with its current ATS state) from the old domain's array,
/// flushing tags that lose their last user, then publish a purged copy.
/// Cannot fail: if the purge cannot allocate, the trash stays and walkers
/// skip it.
fn install_old_domain_invs<'a>(f: &'a Fenced, st: &AttachState<'a>, ms: &mut MasterState) {
    let _f = smmu_sync::kernel_fn("arm_smmu_install_old_domain_invs");
    let k = st.k;
    let Some(d) = st.old.domain() else { return };
    let ats = if k.env.mutant(Mutant::OldInvsWithNewAts) { st.ats } else { st.old_ats };
    let Some(to_unref) = ms.build_invs(st.m, &k.env, ats, st.ssid, d) else {
        return;
    };
    // A re-attach finds here the array step 1 just published.
    let old_invs = current_invs(st, d);
    old_invs.unref(to_unref, &k.env, Some(View::new(&k.machine, st.cpu.id)), |inv| {
        if !k.env.mutant(Mutant::NoFlushOnLastUnref) {
            cmdq::flush_tag(k, st.cpu, inv);
        }
    });
    if let Err(e) = old_invs.check(false) {
        k.machine.oracle.report(ViolationKind::ArrayInvariant, format!("{:?} after unref: {e}", d.id));
    }
    if let Ok(Some(new_invs)) = old_invs.purge(&k.env) {
        publish_invs(f, st, d, new_invs);
    }
}

/// Before the master may answer translation requests in the new domain:
/// flush the domain's ASID/VMID on the master's SMMU. The IOTLB is
/// shared by tag, so an unmap that loaded the array before this master
/// joined (and so sends it no ATC_INV) may still have a stale entry
/// there for the device's ATC to fill from. The pre-series kernel closed
/// this by reading `nr_ats_masters` after the TLBI's CMD_SYNC
/// (`arm_smmu_atc_inv_domain`); v9 reads its array once, before the
/// TLBIs, and loses that order. Here either the unmap's load saw the new
/// array (so it invalidates this ATC after its TLBI), or its PTE write
/// was visible before the publication and so before this flush (the
/// submit's barrier orders them), and no walk after it can cache the
/// old PTE.
fn flush_before_ats(st: &AttachState) {
    let Some(d) = st.target.domain() else { return };
    if st.ats && !st.k.env.mutant(Mutant::NoTlbFlushBeforeAts) {
        cmdq::flush_tag(st.k, st.cpu, &d.tag_inv(st.m.smmu, st.m.features));
    }
}

/// Before a move that turns ATS off: keep the old configuration but stop
/// serving translation requests (EATS = 0), then empty the ATC. Otherwise
/// the device could cache the new domain's translations while its STE
/// still allows ATS, and the new domain's array, built without ATS
/// entries, would never invalidate them. ATS itself stays on at the
/// endpoint until the old entries are fenced (`disable_ats`).
fn stop_translation_requests(st: &AttachState) {
    if st.ats || !st.old_ats || st.ssid != 0 {
        return;
    }
    let ste = attach::ste_for(st.old, st.m.cd_table, false);
    attach::write_stes(st.k, st.cpu, st.m, ste, true, &mut || {});
    attach::atc_inv_master(st, 0);
}

/// Turn ATS off once no ATC invalidation built from the master's old
/// entries can still be in flight. Walkers of the old domain's current
/// array were fenced by the unref's write lock; walkers of an array
/// replaced while it held a live ATS entry of the master (a re-attach's
/// own merge, another master's attach, a PASID's domain) only by a grace
/// period. Its stream IDs are forgotten before the grace period starts, so
/// an array replaced meanwhile marks them again.
pub(super) fn disable_ats(f: &Fenced, k: &Kernel, cpu: &Cpu, m: &Master, ats: bool, old_ats: bool) {
    if ats || !old_ats {
        return;
    }
    let mut older_copies = false;
    {
        let mut marked = f.ats_replaced.lock();
        for sid in &m.streams {
            older_copies |= marked.remove(&(m.smmu, *sid));
        }
    }
    if older_copies {
        k.machine.oracle.cover(Goal::AtsOffOlderArray);
        if !k.env.mutant(Mutant::AtsOffWithoutGracePeriod) {
            k.synchronize_rcu(cpu);
        }
    }
    k.machine.set_ats(m.ep, false);
}

/// Walkers may still hold `replaced`: each live ATS entry's stream needs
/// a grace period before its master turns ATS off. (Trash was fenced by
/// the `unref` that made it.)
fn mark_ats_replaced(f: &Fenced, replaced: &Invs) {
    let live_ats = replaced.iter().filter(|i| i.desc.ty.is_ats() && i.users() > 0);
    f.ats_replaced.lock().extend(live_ats.map(|i| (i.desc.smmu, i.desc.id)));
}

/// Publish `new_invs` as `d`'s array outside any attach, under the ASID
/// lock and with its release: for benchmarks and tests that need arrays
/// no attach sequence builds (trash between live entries).
pub fn replace_invs(drv: &crate::Driver, cpu: &Cpu, d: &Domain, mut new_invs: Invs) {
    let f: &Fenced = drv.design().expect("replace_invs is the fenced design's");
    let _asid_lock = drv.asid_lock.lock();
    let guard = cpu.epoch.pin();
    new_invs.place(&drv.machine, cpu.id);
    let old_invs = drv.rcu_assign_pointer(cpu, d.id, invs(d), d.words + INVS_PTR, new_invs, &guard);
    mark_ats_replaced(f, old_invs.get());
    drv.machine.mem.release(cpu.id);
    drv.retire(invs(d), old_invs, &guard);
}

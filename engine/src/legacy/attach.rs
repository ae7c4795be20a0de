//! Attach and detach as upstream ordered them before the series
//! (`arm_smmu_attach_prepare` / `arm_smmu_attach_commit`): the master joins
//! the new domain's list in prepare, so that both domains invalidate for
//! it while the STE changes, and leaves the old domain's list in commit.
//! ATS is disabled at the endpoint in prepare, before the STE write, while
//! the old domain still lists the master and `master->ats_enabled` still
//! says ATS; `master->ats_enabled` takes its new value only at the end of
//! commit, after ATS was enabled at the endpoint.

use super::devices::{devices_lock, MasterDomain};
use super::{state, Legacy, NR_ATS_MASTERS};
use crate::attach::{self, AttachState};
use crate::domain::Target;
use crate::env::FaultSite;
use crate::Errno;
use hwmodel::Addr;

/// `arm_smmu_attach_prepare`.
pub(super) fn attach_prepare(l: &Legacy, st: &AttachState) -> Result<(), Errno> {
    let k = st.k;
    if let Some(d) = st.target.domain() {
        let dom = state(d);
        // arm_smmu_attach_dev: a domain finalised on one SMMU cannot be
        // attached to a master of another.
        if dom.smmu().is_some_and(|s| s != st.m.smmu) {
            return Err(Errno::EINVAL);
        }
        if matches!(st.target, Target::Nested { .. }) {
            // arm_smmu_attach_prepare_vmaster
            k.env.alloc(FaultSite::Vmaster)?;
        }
        // kzalloc(sizeof(*master_domain))
        k.env.alloc(FaultSite::MasterDomain)?;
        *dom.smmu.lock() = Some(st.m.smmu);
        let md = MasterDomain {
            ep: st.m.ep,
            ssid: st.ssid,
            sids: st.m.streams.clone(),
            nested_ats_flush: nested_ats_flush(st.target),
            ats_enabled: ats_enabled(l, st),
        };
        let mut devices = devices_lock(k, st.cpu, d);
        if st.ats {
            // atomic_inc(&smmu_domain->nr_ats_masters)
            k.machine.mem.fetch_add(st.cpu.id, d.words + NR_ATS_MASTERS, 1);
        }
        // list_add: at the head.
        devices.insert(0, md);
    }
    if !st.ats && st.old_ats {
        // pci_disable_ats(); wmb(): the config write completes before the
        // STE is configured.
        k.machine.set_ats(st.m.ep, false);
    }
    Ok(())
}

/// `arm_smmu_install_ste_for_dev` / `arm_smmu_write_cd_entry`: before the
/// series' v10, `arm_smmu_write_entry` has no `dma_wmb()` before the first
/// word.
pub(super) fn install_ste_for_dev(st: &AttachState) {
    attach::install_ste_for_dev(st, false, &mut || {});
}

/// `arm_smmu_attach_commit`.
pub(super) fn attach_commit(l: &Legacy, st: &AttachState) {
    if st.ats && !st.old_ats {
        // arm_smmu_enable_ats: ATC invalidation of PASID 0 flushes the
        // whole ATC, then pci_enable_ats.
        attach::atc_inv_master(st, 0);
        st.k.machine.set_ats(st.m.ep, true);
    } else if st.ats && st.old_ats {
        // The translation has changed: flush the ATC.
        attach::atc_inv_master(st, st.ssid);
    } else if !st.ats && st.old_ats {
        // ATS is being switched off, invalidate the entire ATC
        attach::atc_inv_master(st, 0);
    }
    remove_master_domain(st, st.old);
    // master->ats_enabled = state->ats_enabled: a plain store, visible to
    // other CPUs once it drains.
    st.k.machine.mem.store(st.cpu.id, ats_enabled(l, st), u64::from(st.ats));
}

/// `arm_smmu_blocking_set_dev_pasid`.
pub(super) fn blocking_set_dev_pasid(st: &AttachState) {
    // arm_smmu_clear_cd(master, pasid)
    install_ste_for_dev(st);
    if st.old_ats {
        attach::atc_inv_master(st, st.ssid);
    }
    remove_master_domain(st, st.old);
}

/// `arm_smmu_remove_master_domain`: the first matching entry leaves the
/// list (on a re-attach the list holds two identical ones), and the ATS
/// count drops if `master->ats_enabled` still says ATS.
fn remove_master_domain(st: &AttachState, old: &Target) {
    let Some(d) = old.domain() else { return };
    let k = st.k;
    let mut devices = devices_lock(k, st.cpu, d);
    let nested = nested_ats_flush(old);
    let found = devices.iter().position(|md| md.ep == st.m.ep && md.ssid == st.ssid && md.nested_ats_flush == nested);
    if let Some(i) = found {
        devices.remove(i);
        if st.old_ats {
            // atomic_dec(&smmu_domain->nr_ats_masters)
            k.machine.mem.fetch_add(st.cpu.id, d.words + NR_ATS_MASTERS, -1);
        }
    }
}

/// Whether an invalidation of the domain must flush the master's whole
/// ATC: a nested attachment (the guest's stage 1 is not known to the host).
fn nested_ats_flush(t: &Target) -> bool {
    matches!(t, Target::Nested { .. })
}

/// The master's `ats_enabled` word, placed at its first attach (zero: no
/// ATS, as probe leaves it).
fn ats_enabled(l: &Legacy, st: &AttachState) -> Addr {
    *l.ats_enabled.lock().entry(st.m.ep).or_insert_with(|| st.k.machine.alloc_frame())
}

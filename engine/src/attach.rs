//! What every design's attach shares: the attach in progress (the kernel's
//! `struct arm_smmu_attach_state`), the STE/CD writes, and the checks the
//! kernel makes before touching anything. The order of the steps around
//! them is each design's (`Design::attach_dev`).

use crate::cmdq;
use crate::domain::{GuestS1, Stage, Target};
use crate::kernel::{Cpu, Kernel};
use crate::master::{Master, MasterState};
use crate::Errno;
use hwmodel::{Addr, Cd, Cmd, Opcode, Ste};
use smmu_sync::Guard;
use std::cell::RefCell;

/// A deferred step of an attach, run with the attach it belongs to.
type Deferred<'a> = Box<dyn FnOnce(&AttachState<'a>) + 'a>;

/// One attach in progress: who moves where, with which ATS state.
pub struct AttachState<'a> {
    pub k: &'a Kernel,
    pub cpu: &'a Cpu,
    pub m: &'a Master,
    pub ssid: u32,
    pub old: &'a Target,
    pub target: &'a Target,
    /// ATS as this attach leaves it, and as it found it.
    pub ats: bool,
    pub old_ats: bool,
    pub guard: &'a Guard,
    /// Arrays this attach replaced, retired (`kfree_rcu`) once the pointers
    /// that replaced them are visible to every CPU.
    replaced: RefCell<Vec<Box<dyn FnOnce() + 'a>>>,
    /// A publication a design prepared but holds back (`publish_pending`).
    pending: RefCell<Option<Deferred<'a>>>,
}

impl<'a> AttachState<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        k: &'a Kernel,
        cpu: &'a Cpu,
        m: &'a Master,
        ssid: u32,
        old: &'a Target,
        target: &'a Target,
        ats: bool,
        old_ats: bool,
        guard: &'a Guard,
    ) -> Self {
        Self { k, cpu, m, ssid, old, target, ats, old_ats, guard, replaced: RefCell::default(), pending: None.into() }
    }

    /// Run `retire` when the attach ends.
    pub(crate) fn retire_later(&self, retire: impl FnOnce() + 'a) {
        self.replaced.borrow_mut().push(Box::new(retire));
    }

    /// The retirements `retire_later` queued, once the attach's locks are
    /// released.
    pub(crate) fn retire_replaced(&self) {
        self.replaced.take().into_iter().for_each(|retire| retire());
    }

    /// Hold back a publication until `publish_pending`.
    pub(crate) fn defer_publish(&self, publish: impl FnOnce(&AttachState<'a>) + 'a) {
        *self.pending.borrow_mut() = Some(Box::new(publish));
    }

    /// Run the publication held back, if it has not run yet.
    pub(crate) fn publish_pending(&self) {
        let publish = self.pending.borrow_mut().take();
        if let Some(publish) = publish {
            publish(self);
        }
    }
}

/// `arm_smmu_install_ste_for_dev` (and `arm_smmu_write_cd_entry` for a
/// PASID or a stage-1 RID): point the master's STEs (or one CD) at the
/// target and tell the SMMU. As `arm_smmu_write_entry` does, each entry is
/// synced (CFGI and CMD_SYNC) before the next is written, so a new STE
/// never meets an old cached CD. With `barrier`, a `dma_wmb` orders what
/// an entry points to before it (`arm_smmu_write_entry` from v10 on).
/// `after_barrier` runs between that barrier and each word's store.
pub(crate) fn install_ste_for_dev(st: &AttachState, barrier: bool, after_barrier: &mut dyn FnMut()) {
    let AttachState { k, cpu, m, ssid, target, ats, .. } = *st;
    let cd = cd_for(target);
    if ssid != 0 || cd.is_some() {
        write_barrier(k, cpu, barrier);
        after_barrier();
        k.machine.write_cd(cpu.id, m.cd_table, ssid, cd);
        let mut cmds: Vec<Cmd> = m.streams.iter().map(|&sid| Cmd { sid, ssid, ..Cmd::new(Opcode::CfgiCd) }).collect();
        cmds.push(Cmd::sync());
        k.machine.submit(cpu.id, m.smmu, &cmds);
    }
    if ssid == 0 {
        write_stes(k, cpu, m, ste_for(target, m.cd_table, ats), barrier, after_barrier);
    }
}

/// `dma_wmb` before an STE/CD word: what it points to is visible first.
fn write_barrier(k: &Kernel, cpu: &Cpu, barrier: bool) {
    if barrier && !k.env.mutant(crate::Mutant::NoDmaWmbBeforeSte) {
        k.machine.mem.dma_wmb(cpu.id);
    }
}

/// Write `ste` for each of the master's streams, then CFGI_STE each and
/// wait for the sync.
pub(crate) fn write_stes(k: &Kernel, cpu: &Cpu, m: &Master, ste: Ste, barrier: bool, after_barrier: &mut dyn FnMut()) {
    write_barrier(k, cpu, barrier);
    after_barrier();
    for &sid in &m.streams {
        k.machine.write_ste(cpu.id, m.smmu, sid, ste);
    }
    let mut cmds: Vec<Cmd> = m.streams.iter().map(|&sid| Cmd { sid, ..Cmd::new(Opcode::CfgiSte) }).collect();
    cmds.push(Cmd::sync());
    k.machine.submit(cpu.id, m.smmu, &cmds);
}

/// `arm_smmu_atc_inv_master` for the attach's master.
pub(crate) fn atc_inv_master(st: &AttachState, ssid: u32) {
    cmdq::atc_inv_master(st.k, st.cpu, st.m.smmu, &st.m.streams, ssid);
}

/// Whether any PASID of the master is attached to a domain.
pub(crate) fn pasids_in_use(ms: &MasterState) -> bool {
    ms.attached.iter().any(|(ssid, t)| *ssid != 0 && t.domain().is_some())
}

/// What the kernel refuses before touching anything: a nested target needs
/// a nesting parent and the RID; a PASID takes only a stage-1 or SVA
/// domain (`arm_smmu_s1_set_dev_pasid`), under a RID whose STE holds the CD
/// table; the RID cannot leave its CD table while PASIDs use it. Upstream
/// also lets PASIDs run under a blocked or identity RID by switching the
/// STE to a CD table with S1DSS; the model refuses that with EINVAL/EBUSY.
pub(crate) fn check_attach(ms: &MasterState, ssid: u32, target: &Target) -> Result<(), Errno> {
    let rid_is_s1 = matches!(ms.attached.get(&0), Some(Target::Domain(d)) if matches!(d.stage, Stage::S1 { .. }));
    match target {
        Target::Nested { parent, .. } if !parent.nest_parent() || ssid != 0 => Err(Errno::EINVAL),
        Target::Domain(d) if ssid == 0 && matches!(d.stage, Stage::Sva { .. }) => Err(Errno::EINVAL),
        Target::Domain(d) if ssid != 0 && (matches!(d.stage, Stage::S2 { .. }) || !rid_is_s1) => Err(Errno::EINVAL),
        Target::Identity if ssid != 0 => Err(Errno::EINVAL),
        Target::Domain(d) if matches!(d.stage, Stage::S1 { .. }) => Ok(()),
        _ if ssid == 0 && pasids_in_use(ms) => Err(Errno::EBUSY),
        _ => Ok(()),
    }
}

/// The CD a target needs at its SSID, if any.
fn cd_for(target: &Target) -> Option<Cd> {
    match target {
        Target::Domain(d) => match d.stage {
            Stage::S1 { asid } | Stage::Sva { asid } => Some(Cd { asid, root: d.pt.root }),
            Stage::S2 { .. } => None,
        },
        Target::Nested { s1: GuestS1::Identity { asid }, .. } => Some(Cd { asid: *asid, root: 0 }),
        // The guest writes its own CDs.
        Target::Nested { s1: GuestS1::CdTable(_), .. } => None,
        Target::Blocked | Target::Identity => None,
    }
}

/// The STE a RID attach of `target` installs.
pub(crate) fn ste_for(target: &Target, cd_table: Addr, eats: bool) -> Ste {
    match target {
        Target::Domain(d) => match d.stage {
            Stage::S2 { vmid, .. } => Ste::S2 { vmid, root: d.pt.root, eats },
            Stage::S1 { .. } | Stage::Sva { .. } => Ste::S1 { cd_table, eats },
        },
        Target::Nested { parent, s1 } => {
            let Stage::S2 { vmid, .. } = parent.stage else { unreachable!("checked in attach") };
            let (cd_table, guest_cd) = match s1 {
                GuestS1::CdTable(ipa) => (*ipa, true),
                GuestS1::Identity { .. } => (cd_table, false),
            };
            Ste::Nested { cd_table, vmid, root: parent.pt.root, eats, guest_cd }
        }
        Target::Blocked => Ste::Abort,
        Target::Identity => Ste::Bypass,
    }
}

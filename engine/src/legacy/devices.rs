//! The pre-series device list: `struct arm_smmu_master_domain` entries on
//! `smmu_domain->devices`, under `devices_lock`.

use super::{state, LegacyDomain};
use crate::domain::Domain;
use crate::kernel::{Cpu, Kernel};
use hwmodel::{Addr, CpuId, EndpointId, Memory};
use smmu_sync::{IrqSave, MutexGuard};
use std::ops::{Deref, DerefMut};

/// One attachment on a domain's list.
pub(super) struct MasterDomain {
    pub ep: EndpointId,
    pub ssid: u32,
    pub sids: Vec<u32>,
    /// Set for a nested attachment: an invalidation of the nesting parent
    /// flushes the master's whole ATC.
    pub nested_ats_flush: bool,
    /// Where the master's `ats_enabled` lives: read, not kept here.
    pub ats_enabled: Addr,
}

/// `spin_lock_irqsave(&smmu_domain->devices_lock)` held: dropping it is the
/// unlock's release (the holder's stores drain), then the irqrestore.
pub(super) struct DevicesGuard<'a> {
    mem: &'a Memory,
    cpu: CpuId,
    guard: Option<MutexGuard<'a, Vec<MasterDomain>>>,
    _irq: IrqSave,
}

impl Deref for DevicesGuard<'_> {
    type Target = Vec<MasterDomain>;
    fn deref(&self) -> &Vec<MasterDomain> {
        self.guard.as_ref().expect("held until dropped")
    }
}

impl DerefMut for DevicesGuard<'_> {
    fn deref_mut(&mut self) -> &mut Vec<MasterDomain> {
        self.guard.as_mut().expect("held until dropped")
    }
}

impl Drop for DevicesGuard<'_> {
    fn drop(&mut self) {
        self.mem.release(self.cpu);
        self.guard.take();
    }
}

/// Take `d`'s `devices_lock` as the kernel does: `spin_lock_irqsave`, since
/// invalidations run in interrupts too.
pub(super) fn devices_lock<'a>(k: &'a Kernel, cpu: &Cpu, d: &'a Domain) -> DevicesGuard<'a> {
    let irq = smmu_sync::local_irq_save();
    let dom: &'a LegacyDomain = state(d);
    let guard = Some(dom.devices.lock());
    DevicesGuard { mem: &k.machine.mem, cpu: cpu.id, guard, _irq: irq }
}

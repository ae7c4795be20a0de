//! The arm-smmu-v3 vIOMMU: `arm_vsmmu_cache_invalidate` over a guest's
//! array of native commands, each converted by
//! `arm_vsmmu_convert_user_cmd` before any is issued.

use super::array::{copy_entry, UserArray, ENTRY_SIZE};
use crate::driver::Driver;
use crate::kernel::Cpu;
use crate::{Errno, Mutant};
use hwmodel::{Cmd, Opcode, SmmuId, ViolationKind};
use smmu_sync::Mutex;
use std::collections::BTreeMap;

/// `IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3`.
pub const DATA_ARM_SMMUV3: u32 = 1;
/// Commands per cmdq batch; the op takes one batch less the closing sync.
pub const CMDQ_BATCH_ENTRIES: usize = 64;

/// A guest's virtual SMMU over one physical SMMU.
pub struct Vsmmu {
    pub smmu: SmmuId,
    /// The VMID of the nesting parent, substituted into every TLBI.
    pub vmid: u16,
    /// Virtual stream ID -> physical stream ID: the vIOMMU's vDEVICEs.
    vsids: Mutex<BTreeMap<u32, u32>>,
    /// SSIDSIZE the vSMMU advertises: SSIDs at or above `1 << ssid_bits`
    /// are out of range.
    pub ssid_bits: u32,
    /// For the oracle only (no VMM or guest reads it): each guest entry, as
    /// the guest wrote it, that this vSMMU put on the host queue, and how
    /// many entries it told user space it handled.
    pub issued: Mutex<Vec<[u64; 2]>>,
    pub reported: Mutex<u64>,
}

/// The guest's opcodes a vSMMU converts, as mainline's
/// `arm_vsmmu_convert_user_cmd` lists them: stage-1 TLBIs (under the
/// guest's VMID), TLBI_NSNH_ALL (as TLBI_NH_ALL of that VMID), and the
/// commands naming one of its devices.
fn guest_opcode(op: Opcode, drv: &Driver) -> bool {
    match op {
        Opcode::TlbiNsnhAll => !drv.env.mutant(Mutant::VsmmuNsnhAllRefused),
        _ => matches!(
            op,
            Opcode::TlbiNhVa
                | Opcode::TlbiNhVaa
                | Opcode::TlbiNhAsid
                | Opcode::TlbiNhAll
                | Opcode::AtcInv
                | Opcode::CfgiCd
                | Opcode::CfgiCdAll
        ),
    }
}

/// Whether a guest command with a legal opcode is still illegal: reserved
/// bits or fields the opcode does not take are set, a range or ATC span
/// does not encode, or an SSID lies beyond the vSMMU's SSIDSIZE. What to do
/// with such a command is the question Robin Murphy raises in seed 002; this
/// model takes Jason Gunthorpe's answer there: fail the ioctl (EIO, like an
/// illegal opcode) and let the VMM raise CERROR_ILL. Passing it on would let
/// the guest make the host's queue stall on CERROR_ILL, or have the host
/// SMMU act on fields it never validated.
fn illegal_field(c: &Cmd, raw: [u64; 2], range_inv: bool, ssid_bits: u32) -> bool {
    let takes_ssid = c.op == Opcode::CfgiCd || (c.op == Opcode::AtcInv && c.ssv);
    c.canonical().encode() != raw
        || c.illegal(range_inv).is_some()
        || (takes_ssid && u64::from(c.ssid) >> ssid_bits != 0)
}

impl Vsmmu {
    /// A vIOMMU with no vDEVICE yet.
    pub fn new(smmu: SmmuId, vmid: u16, ssid_bits: u32) -> Self {
        Self {
            smmu,
            vmid,
            vsids: Mutex::new(BTreeMap::new()),
            ssid_bits,
            issued: Mutex::new(Vec::new()),
            reported: Mutex::new(0),
        }
    }

    /// A vDEVICE's virtual stream ID comes or goes.
    pub(super) fn set_vsid(&self, vsid: u32, sid: Option<u32>) {
        let mut v = self.vsids.lock();
        match sid {
            Some(sid) => v.insert(vsid, sid),
            None => v.remove(&vsid),
        };
    }

    pub(super) fn has_vsid(&self, vsid: u32) -> bool {
        self.vsids.lock().contains_key(&vsid)
    }

    /// For the oracle: whether this vSMMU would convert the entry now, so a
    /// CERROR_ILL at it is the VMM's misplacement rather than the kernel's
    /// refusal.
    pub fn accepts(&self, drv: &Driver, raw: [u64; 2]) -> bool {
        self.convert(drv, raw).is_ok()
    }

    /// `arm_vsmmu_convert_user_cmd`: only invalidations a guest may send,
    /// with the vSMMU's VMID and physical stream IDs substituted.
    fn convert(&self, drv: &Driver, raw: [u64; 2]) -> Result<Cmd, Errno> {
        let mut c = Cmd::decode(raw).filter(|c| guest_opcode(c.op, drv)).ok_or(Errno::EIO)?;
        let range_inv = drv.machine.smmu(self.smmu).features.range_inv;
        if !drv.env.mutant(Mutant::VsmmuIllegalFieldAccepted) && illegal_field(&c, raw, range_inv, self.ssid_bits) {
            return Err(Errno::EIO);
        }
        match c.op {
            Opcode::AtcInv | Opcode::CfgiCd | Opcode::CfgiCdAll => {
                let sid = *self.vsids.lock().get(&c.sid).ok_or(Errno::EIO)?;
                if !drv.env.mutant(Mutant::VsmmuVsidPassedThrough) {
                    c.sid = sid;
                }
            }
            // Every VMID's entries would be the host's to lose: the guest's
            // own, under its VMID.
            Opcode::TlbiNsnhAll => c = Cmd { vmid: self.vmid, ..Cmd::new(Opcode::TlbiNhAll) },
            _ if drv.env.mutant(Mutant::VsmmuGuestVmidPassedThrough) => {}
            _ => c.vmid = self.vmid,
        }
        Ok(c)
    }
}

impl Driver {
    /// `arm_vsmmu_cache_invalidate` (seed 000): one call handles at most
    /// one batch of the array. The whole batch is converted before any of
    /// it is issued; an illegal command fails the batch with nothing
    /// issued and `entry_num` 0, so user space learns only where the
    /// failing batch starts.
    pub fn vsmmu_cache_invalidate(&self, cpu: &Cpu, v: &Vsmmu, array: &mut UserArray) -> Result<(), Errno> {
        let _f = smmu_sync::kernel_fn("arm_vsmmu_cache_invalidate");
        if array.ty != DATA_ARM_SMMUV3 {
            array.entry_num = 0;
            return Err(Errno::EINVAL);
        }
        if array.entry_num == 0 {
            // A zero-length array only probes the type, validated above.
            return if self.env.mutant(Mutant::VsmmuZeroLengthEinval) { Err(Errno::EINVAL) } else { Ok(()) };
        }
        let n = (array.entry_num as usize).min(CMDQ_BATCH_ENTRIES - 1);
        let mut raw = [[0u64; 2]; CMDQ_BATCH_ENTRIES - 1];
        let mut cmds = [Cmd::sync(); CMDQ_BATCH_ENTRIES];
        for (i, words) in raw.iter_mut().enumerate().take(n) {
            let mut entry = [0u8; ENTRY_SIZE];
            if let Err(e) = copy_entry(&mut entry, array, DATA_ARM_SMMUV3, i as u32) {
                array.entry_num = 0;
                return Err(e);
            }
            *words = [0, 8].map(|o| u64::from_le_bytes(entry[o..o + 8].try_into().expect("8 bytes")));
        }
        for i in 0..n {
            match v.convert(self, raw[i]) {
                Ok(c) => cmds[i] = c,
                Err(e) => {
                    // The bug the conversion-first design fixed: report what
                    // was converted although none of it was issued.
                    array.entry_num = if self.env.mutant(Mutant::VsmmuReportUnissued) { i as u32 } else { 0 };
                    self.note_reported(v, array.entry_num);
                    return Err(e);
                }
            }
        }
        self.machine.submit(cpu.id, v.smmu, &cmds[..=n]);
        v.issued.lock().extend_from_slice(&raw[..n]);
        array.entry_num = n as u32;
        self.note_reported(v, array.entry_num);
        Ok(())
    }

    /// The oracle's check: user space is never told a command was handled
    /// that never reached the queue.
    fn note_reported(&self, v: &Vsmmu, n: u32) {
        let mut reported = v.reported.lock();
        *reported += u64::from(n);
        let issued = v.issued.lock().len();
        if *reported > issued as u64 {
            let detail = format!("user space was told {} commands were handled; {issued} reached the queue", *reported);
            self.machine.oracle.report(ViolationKind::UnissuedReported, detail);
        }
    }
}

//! The iommufd vSMMU paths: a guest's array of native invalidation commands
//! (the core loop and the driver op), and hardware queues in guest memory.

use crate::driver::Driver;
use crate::kernel::Cpu;
use crate::{Errno, Mutant};
use hwmodel::{Cmd, Opcode, SmmuId, ViolationKind, PAGE};
use smmu_sync::Mutex;
use std::collections::BTreeMap;

/// `IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3`.
pub const DATA_ARM_SMMUV3: u32 = 1;
/// Size of `struct iommu_viommu_arm_smmuv3_invalidate` (one queue entry).
pub const ENTRY_SIZE: usize = 16;
/// Commands per cmdq batch; the op takes one batch less the closing sync.
pub const CMDQ_BATCH_ENTRIES: usize = 64;

/// `struct iommu_user_data_array`: `entry_num` entries of `entry_len`
/// bytes from offset `uptr` of the user memory `mem`. On return
/// `entry_num` says how many were handled.
#[derive(Clone, Copy, Debug)]
pub struct UserArray<'a> {
    pub ty: u32,
    pub mem: &'a [u8],
    pub uptr: usize,
    pub entry_len: u32,
    pub entry_num: u32,
}

/// `iommu_copy_struct_from_user_array`: entry `index` into `dst`. A shorter
/// user entry is zero-filled; bytes past the kernel's struct must be zero.
pub fn copy_entry(dst: &mut [u8; ENTRY_SIZE], a: &UserArray, ty: u32, index: u32) -> Result<(), Errno> {
    if a.ty != ty || a.entry_len == 0 {
        return Err(Errno::EINVAL);
    }
    let len = a.entry_len as usize;
    let start = (index as usize).checked_mul(len).and_then(|o| o.checked_add(a.uptr)).ok_or(Errno::EFAULT)?;
    let src = start.checked_add(len).and_then(|end| a.mem.get(start..end)).ok_or(Errno::EFAULT)?;
    let n = len.min(ENTRY_SIZE);
    if src[n..].iter().any(|b| *b != 0) {
        return Err(Errno::E2BIG);
    }
    dst.fill(0);
    dst[..n].copy_from_slice(&src[..n]);
    Ok(())
}

/// The iommufd core: hand `op` the not-yet-handled rest of `array` until
/// every entry is handled or it fails. `array.entry_num` ends as the total
/// handled. A zero-length array is passed once, to probe the type.
pub fn cache_invalidate_user(
    array: &mut UserArray,
    mut op: impl FnMut(&mut UserArray) -> Result<(), Errno>,
) -> Result<(), Errno> {
    let total = array.entry_num;
    if total == 0 {
        return op(array);
    }
    let mut done = 0;
    while done < total {
        let mut rest = UserArray {
            uptr: array.uptr + done as usize * array.entry_len as usize,
            entry_num: total - done,
            ..*array
        };
        let r = op(&mut rest);
        done += rest.entry_num.min(total - done);
        if r.is_err() || rest.entry_num == 0 {
            array.entry_num = done;
            return r.and(Err(Errno::EINVAL));
        }
    }
    array.entry_num = done;
    Ok(())
}

/// A guest's virtual SMMU over one physical SMMU.
pub struct Vsmmu {
    pub smmu: SmmuId,
    /// The VMID of the nesting parent, substituted into every TLBI.
    pub vmid: u16,
    /// Virtual stream ID -> physical stream ID, for the guest's devices.
    pub vsids: BTreeMap<u32, u32>,
    /// SSIDSIZE the vSMMU advertises: SSIDs at or above `1 << ssid_bits`
    /// are out of range.
    pub ssid_bits: u32,
    /// For the oracle only (no VMM or guest reads it): each guest entry, as
    /// the guest wrote it, that this vSMMU put on the host queue, and how
    /// many entries it told user space it handled.
    pub issued: Mutex<Vec<[u64; 2]>>,
    pub reported: Mutex<u64>,
}

/// The guest's opcodes a vSMMU passes on: invalidations by ASID or VA
/// under the guest's VMID, and those naming one of its devices.
fn guest_opcode(op: Opcode) -> bool {
    matches!(op, Opcode::TlbiNhVa | Opcode::TlbiNhAsid | Opcode::TlbiNhAll | Opcode::AtcInv | Opcode::CfgiCd)
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
    pub fn new(smmu: SmmuId, vmid: u16, vsids: BTreeMap<u32, u32>, ssid_bits: u32) -> Self {
        Self { smmu, vmid, vsids, ssid_bits, issued: Mutex::new(Vec::new()), reported: Mutex::new(0) }
    }

    /// `arm_vsmmu_convert_user_cmd`: only invalidations a guest may send,
    /// with the vSMMU's VMID and physical stream IDs substituted.
    fn convert(&self, drv: &Driver, raw: [u64; 2]) -> Result<Cmd, Errno> {
        let mut c = Cmd::decode(raw).filter(|c| guest_opcode(c.op)).ok_or(Errno::EIO)?;
        let range_inv = drv.machine.smmu(self.smmu).features.range_inv;
        if !drv.env.mutant(Mutant::VsmmuIllegalFieldAccepted) && illegal_field(&c, raw, range_inv, self.ssid_bits) {
            return Err(Errno::EIO);
        }
        match c.op {
            Opcode::AtcInv | Opcode::CfgiCd => {
                let sid = *self.vsids.get(&c.sid).ok_or(Errno::EIO)?;
                if !drv.env.mutant(Mutant::VsmmuVsidPassedThrough) {
                    c.sid = sid;
                }
            }
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

/// `enum iommu_hw_queue_type`.
pub const HW_QUEUE_TYPE_DEFAULT: u32 = 0;
pub const HW_QUEUE_TYPE_TEGRA241_CMDQV: u32 = 1;

/// The one vIOMMU object the model's IOAS serves.
pub const VIOMMU_ID: u32 = 1;
/// LVCMDQs per VINTF the tegra241-cmdqv op accepts.
pub const MAX_QUEUES: u32 = 2;

/// `struct iommu_hw_queue_alloc`'s inputs.
#[derive(Clone, Copy, Debug)]
pub struct HwQueueAlloc {
    pub flags: u32,
    pub viommu_id: u32,
    pub ty: u32,
    pub index: u32,
    pub nesting_parent_iova: u64,
    pub length: u64,
}

/// A live hardware queue reading guest memory at `base_pa`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HwQueue {
    pub id: u32,
    pub ty: u32,
    pub index: u32,
    pub iova: u64,
    pub length: u64,
    pub base_pa: u64,
    /// Whether an access object pinned its pages.
    pinned: bool,
}

#[derive(Default)]
struct IoasState {
    /// Guest physical page -> host physical page.
    pages: BTreeMap<u64, u64>,
    /// Ranges pinned by access objects: (iova, length).
    pins: Vec<(u64, u64)>,
    queues: Vec<HwQueue>,
    next_id: u32,
}

/// An IOAS (the nesting parent's guest-physical address space) with the
/// HW queues of one vIOMMU.
pub struct Ioas {
    state: Mutex<IoasState>,
}

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.0.saturating_add(b.1) && b.0 < a.0.saturating_add(a.1)
}

impl Default for Ioas {
    fn default() -> Self {
        Self::new()
    }
}

impl Ioas {
    pub fn new() -> Self {
        Self { state: Mutex::new(IoasState::default()) }
    }

    /// IOAS_MAP of whole pages `iova..iova+len` to `pa..`.
    pub fn map(&self, iova: u64, pa: u64, len: u64) {
        let mut s = self.state.lock();
        for k in (0..len).step_by(PAGE as usize) {
            s.pages.insert(iova + k, pa + k);
        }
    }

    /// IOAS_UNMAP: refused with EBUSY while an access pins any of it.
    pub fn unmap(&self, drv: &Driver, iova: u64, len: u64) -> Result<(), Errno> {
        let mut s = self.state.lock();
        if s.pins.iter().any(|p| overlaps(*p, (iova, len))) {
            return Err(Errno::EBUSY);
        }
        if let Some(q) = s.queues.iter().find(|q| overlaps((q.iova, q.length), (iova, len))) {
            let detail =
                format!("IOAS unmap of {iova:#x}+{len:#x} while HW queue {} reads {:#x}+{:#x}", q.id, q.iova, q.length);
            drv.machine.oracle.report(ViolationKind::QueueUnmapped, detail);
        }
        let range: Vec<u64> = s.pages.range(iova..iova.saturating_add(len)).map(|(k, _)| *k).collect();
        for k in range {
            s.pages.remove(&k);
        }
        Ok(())
    }

    /// `iommufd_hw_queue_alloc_ioctl` (seed 004) for a queue the HW reads
    /// by physical address, in the seed's order: argument checks, the
    /// vIOMMU and its op for the type, then `iommufd_hw_queue_alloc_phys`
    /// (pin, then contiguity), and only then the driver's
    /// `hw_queue_init_phys`, whose index rules fail after the pinning; any
    /// failure releases what was pinned.
    pub fn hw_queue_alloc(&self, drv: &Driver, cmd: HwQueueAlloc) -> Result<HwQueue, Errno> {
        if cmd.flags != 0 || cmd.ty == HW_QUEUE_TYPE_DEFAULT {
            return Err(Errno::EOPNOTSUPP);
        }
        if cmd.length == 0 {
            return Err(Errno::EINVAL);
        }
        cmd.nesting_parent_iova.checked_add(cmd.length - 1).ok_or(Errno::EOVERFLOW)?;
        if cmd.viommu_id != VIOMMU_ID {
            return Err(Errno::ENOENT);
        }
        // get_hw_queue_size: the vIOMMU only knows the CMDQV type.
        if cmd.ty != HW_QUEUE_TYPE_TEGRA241_CMDQV {
            return Err(Errno::EOPNOTSUPP);
        }
        let mut s = self.state.lock();
        let (base_pa, pinned) = Self::alloc_phys(&mut s, drv, &cmd)?;
        let same_type = s.queues.iter().filter(|q| q.ty == cmd.ty).count() as u32;
        // tegra241-cmdqv's hw_queue_init_phys: a bounded, unused index,
        // allocated in order.
        let init = if cmd.index >= MAX_QUEUES {
            Err(Errno::EINVAL)
        } else if s.queues.iter().any(|q| q.ty == cmd.ty && q.index == cmd.index) {
            Err(Errno::EEXIST)
        } else if cmd.index != same_type {
            Err(Errno::EIO)
        } else {
            Ok(())
        };
        if let Err(e) = init {
            if pinned {
                s.pins.pop();
            }
            return Err(e);
        }
        s.next_id += 1;
        let q = HwQueue {
            id: s.next_id,
            ty: cmd.ty,
            index: cmd.index,
            iova: cmd.nesting_parent_iova,
            length: cmd.length,
            base_pa,
            pinned,
        };
        s.queues.push(q);
        Ok(q)
    }

    /// `iommufd_hw_queue_alloc_phys` as seed 004 (v8) has it. Its offset is
    /// `iova - PAGE_ALIGN(iova)`, and PAGE_ALIGN rounds up: for an
    /// unaligned IOVA the u64 wraps and the overflow checks return ERANGE,
    /// so only page-aligned queues can be allocated (its review points
    /// this out). Pins, then checks the pages are contiguous; returns the
    /// base PA and whether the pages stay pinned.
    fn alloc_phys(s: &mut IoasState, drv: &Driver, cmd: &HwQueueAlloc) -> Result<(u64, bool), Errno> {
        let iova = cmd.nesting_parent_iova;
        let offset = iova.wrapping_sub(iova.next_multiple_of(PAGE));
        let length = offset.checked_add(cmd.length).and_then(|l| l.checked_add(PAGE - 1)).ok_or(Errno::ERANGE)?;
        let max_npages = length / PAGE;
        // iommufd_access_pin_pages: every page must be mapped.
        let pages: Vec<u64> = (0..max_npages)
            .map(|k| s.pages.get(&(iova + k * PAGE)).copied().ok_or(Errno::ENOENT))
            .collect::<Result<_, _>>()?;
        if pages.windows(2).any(|w| w[1] != w[0] + PAGE) {
            return Err(Errno::EFAULT);
        }
        let pinned = !drv.env.mutant(Mutant::HwQueueUnpinned);
        if pinned {
            s.pins.push((iova, cmd.length));
        }
        Ok((pages[0], pinned))
    }

    /// Destroy a queue: unpin and release its pages.
    pub fn hw_queue_destroy(&self, id: u32) -> Result<(), Errno> {
        let mut s = self.state.lock();
        let k = s.queues.iter().position(|q| q.id == id).ok_or(Errno::ENOENT)?;
        let q = s.queues.remove(k);
        if q.pinned {
            if let Some(p) = s.pins.iter().position(|p| *p == (q.iova, q.length)) {
                s.pins.remove(p);
            }
        }
        Ok(())
    }

    /// The hardware reads its queue: the memory must still be mapped.
    pub fn hw_read(&self, drv: &Driver, q: &HwQueue) {
        let s = self.state.lock();
        if !s.queues.contains(q) {
            return;
        }
        let first = q.iova & !(PAGE - 1);
        let missing = (first..q.iova + q.length).step_by(PAGE as usize).find(|p| !s.pages.contains_key(p));
        if let Some(p) = missing {
            let detail = format!("HW queue {} read guest page {p:#x}, which is no longer mapped", q.id);
            drv.machine.oracle.report(ViolationKind::QueueUnmapped, detail);
        }
    }
}

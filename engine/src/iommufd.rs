//! The iommufd vSMMU paths: a guest's array of native invalidation commands
//! (the core loop and the driver op), and hardware queues in guest memory.

use crate::driver::{Cpu, Driver};
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
    /// Array indices of commands reported to the guest as CERROR_ILL.
    pub cerror_ill: Mutex<Vec<u64>>,
    /// Commands this vSMMU has put on the queue, and told user space it
    /// handled: the oracle holds the second to the first.
    pub issued: Mutex<u64>,
    pub reported: Mutex<u64>,
}

impl Vsmmu {
    pub fn new(smmu: SmmuId, vmid: u16, vsids: BTreeMap<u32, u32>) -> Self {
        Self { smmu, vmid, vsids, cerror_ill: Mutex::new(Vec::new()), issued: Mutex::new(0), reported: Mutex::new(0) }
    }

    /// `arm_vsmmu_convert_user_cmd`: only invalidations a guest may send,
    /// with the vSMMU's VMID and physical stream IDs substituted.
    fn convert(&self, raw: [u64; 2]) -> Result<Cmd, Errno> {
        let mut c = Cmd::decode(raw).ok_or(Errno::EIO)?;
        match c.op {
            Opcode::TlbiNhVa | Opcode::TlbiNhAsid | Opcode::TlbiNhAll => c.vmid = self.vmid,
            Opcode::AtcInv | Opcode::CfgiCd => c.sid = *self.vsids.get(&c.sid).ok_or(Errno::EIO)?,
            _ => return Err(Errno::EIO),
        }
        Ok(c)
    }
}

impl Driver {
    /// `arm_vsmmu_cache_invalidate`: one call handles at most one batch of
    /// the array. The whole batch is converted before any of it is issued;
    /// an illegal command fails the batch with nothing issued and is
    /// reflected to the guest as CERROR_ILL at its index. `first` is the
    /// index of `array`'s first entry in the guest's whole array.
    pub fn vsmmu_cache_invalidate(&self, cpu: &Cpu, v: &Vsmmu, array: &mut UserArray, first: u64) -> Result<(), Errno> {
        if array.ty != DATA_ARM_SMMUV3 {
            array.entry_num = 0;
            return Err(Errno::EINVAL);
        }
        if array.entry_num == 0 {
            // A zero-length array only probes the type, validated above.
            return if self.env.mutant(Mutant::VsmmuZeroLengthEinval) { Err(Errno::EINVAL) } else { Ok(()) };
        }
        let n = (array.entry_num as usize).min(CMDQ_BATCH_ENTRIES - 1);
        let mut raw = [[0u8; ENTRY_SIZE]; CMDQ_BATCH_ENTRIES - 1];
        let mut cmds = [Cmd::sync(); CMDQ_BATCH_ENTRIES];
        for (i, entry) in raw.iter_mut().enumerate().take(n) {
            if let Err(e) = copy_entry(entry, array, DATA_ARM_SMMUV3, i as u32) {
                array.entry_num = 0;
                return Err(e);
            }
        }
        for i in 0..n {
            let words = [0, 8].map(|o| u64::from_le_bytes(raw[i][o..o + 8].try_into().expect("8 bytes")));
            match v.convert(words) {
                Ok(c) => cmds[i] = c,
                Err(e) => {
                    v.cerror_ill.lock().push(first + i as u64);
                    // The bug the conversion-first design fixed: report what
                    // was converted although none of it was issued.
                    array.entry_num = if self.env.mutant(Mutant::VsmmuReportUnissued) { i as u32 } else { 0 };
                    self.note_reported(v, array.entry_num);
                    return Err(e);
                }
            }
        }
        self.machine.submit(cpu.id, v.smmu, &cmds[..=n]);
        *v.issued.lock() += n as u64;
        array.entry_num = n as u32;
        self.note_reported(v, array.entry_num);
        Ok(())
    }

    /// The oracle's check: user space is never told a command was handled
    /// that never reached the queue.
    fn note_reported(&self, v: &Vsmmu, n: u32) {
        let mut reported = v.reported.lock();
        *reported += u64::from(n);
        let issued = *v.issued.lock();
        if *reported > issued {
            let detail = format!("user space was told {} commands were handled; {issued} reached the queue", *reported);
            self.machine.oracle.report(ViolationKind::UnissuedReported, detail);
        }
    }
}

/// `enum iommu_hw_queue_type`.
pub const HW_QUEUE_TYPE_DEFAULT: u32 = 0;
pub const HW_QUEUE_TYPE_TEGRA241_CMDQV: u32 = 1;

/// `struct iommu_hw_queue_alloc`'s inputs.
#[derive(Clone, Copy, Debug)]
pub struct HwQueueAlloc {
    pub flags: u32,
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

    /// `iommufd_hw_queue_alloc_ioctl` for a queue the HW reads by physical
    /// address: checks in the kernel's order, then an access pins the
    /// pages, which must be physically contiguous.
    pub fn hw_queue_alloc(&self, drv: &Driver, cmd: HwQueueAlloc) -> Result<HwQueue, Errno> {
        if cmd.flags != 0 || cmd.ty == HW_QUEUE_TYPE_DEFAULT {
            return Err(Errno::EOPNOTSUPP);
        }
        if cmd.length == 0 {
            return Err(Errno::EINVAL);
        }
        cmd.nesting_parent_iova.checked_add(cmd.length - 1).ok_or(Errno::EOVERFLOW)?;
        let mut s = self.state.lock();
        let same_type = s.queues.iter().filter(|q| q.ty == cmd.ty).count() as u32;
        if s.queues.iter().any(|q| q.ty == cmd.ty && q.index == cmd.index) {
            return Err(Errno::EEXIST);
        }
        if cmd.index != same_type {
            return Err(Errno::EIO);
        }
        let first = cmd.nesting_parent_iova & !(PAGE - 1);
        let last = (cmd.nesting_parent_iova + cmd.length - 1) & !(PAGE - 1);
        let mut base_pa = None;
        for page in (first..=last).step_by(PAGE as usize) {
            let pa = *s.pages.get(&page).ok_or(Errno::ENOENT)?;
            let want = base_pa.map_or(pa, |b: u64| b + (page - first));
            if pa != want {
                return Err(Errno::EFAULT);
            }
            base_pa.get_or_insert(pa);
        }
        let pinned = !drv.env.mutant(Mutant::HwQueueUnpinned);
        if pinned {
            s.pins.push((cmd.nesting_parent_iova, cmd.length));
        }
        s.next_id += 1;
        let q = HwQueue {
            id: s.next_id,
            ty: cmd.ty,
            index: cmd.index,
            iova: cmd.nesting_parent_iova,
            length: cmd.length,
            base_pa: base_pa.expect("at least one page") + (cmd.nesting_parent_iova - first),
            pinned,
        };
        s.queues.push(q);
        Ok(q)
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

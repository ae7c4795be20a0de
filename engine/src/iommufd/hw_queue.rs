//! `IOMMU_IOAS_MAP`/`UNMAP` against the pins on an IOAS, and
//! `IOMMUFD_CMD_HW_QUEUE_ALLOC` (seed 004): hardware queues a vIOMMU reads
//! from guest memory, with tegra241-cmdqv's index rules and the
//! dependency of each queue on the one below it.

use super::ioas::{
    overlaps, HwQueue, HwQueueAlloc, IoasState, HW_QUEUE_TYPE_DEFAULT, HW_QUEUE_TYPE_TEGRA241_CMDQV, MAX_QUEUES,
};
use super::objects::{Data, Ictx, ObjType, Table};
use crate::driver::Driver;
use crate::env::FaultSite;
use crate::{Errno, Mutant};
use hwmodel::{ViolationKind, PAGE};

impl Ictx {
    /// `IOMMU_IOAS_MAP` of whole pages `iova..iova+len` to `pa..`.
    pub fn ioas_map(&self, ioas_id: u32, iova: u64, pa: u64, len: u64) -> Result<(), Errno> {
        let mut t = self.table.lock();
        let s = t.ioas_mut(ioas_id)?;
        for k in (0..len).step_by(PAGE as usize) {
            s.pages.insert(iova + k, pa + k);
        }
        Ok(())
    }

    /// `IOMMU_IOAS_UNMAP`: EBUSY while an access pins any of it. The oracle
    /// reports an unmap under a queue the hardware still reads.
    pub fn ioas_unmap(&self, drv: &Driver, ioas_id: u32, iova: u64, len: u64) -> Result<(), Errno> {
        let _f = smmu_sync::kernel_fn("iommufd_ioas_unmap");
        let mut t = self.table.lock();
        let under = t.objs.iter().find_map(|(_, o)| match &o.data {
            Data::HwQueue(q) if overlaps((q.iova, q.length), (iova, len)) => Some(*q),
            _ => None,
        });
        let s = t.ioas_mut(ioas_id)?;
        if s.pins.iter().any(|p| overlaps(*p, (iova, len))) {
            return Err(Errno::EBUSY);
        }
        if let Some(q) = under {
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
    /// vIOMMU and its op for the type, the object's allocation, then
    /// `iommufd_hw_queue_alloc_phys` (pin, then contiguity), and only then
    /// the driver's `hw_queue_init_phys`, whose index rules fail after the
    /// pinning, and its `iommufd_hw_queue_depend` on the queue below. Any
    /// failure leaves no object, pin or dependency behind.
    pub fn hw_queue_alloc(&self, drv: &Driver, cmd: HwQueueAlloc) -> Result<HwQueue, Errno> {
        let _f = smmu_sync::kernel_fn("iommufd_hw_queue_alloc_ioctl");
        if cmd.flags != 0 || cmd.ty == HW_QUEUE_TYPE_DEFAULT {
            return Err(Errno::EOPNOTSUPP);
        }
        if cmd.length == 0 {
            return Err(Errno::EINVAL);
        }
        cmd.nesting_parent_iova.checked_add(cmd.length - 1).ok_or(Errno::EOVERFLOW)?;
        let mut t = self.table.lock();
        let parent = t.get(cmd.viommu_id, ObjType::Viommu)?.deps[0];
        // get_hw_queue_size: the vIOMMU only knows the CMDQV type.
        if cmd.ty != HW_QUEUE_TYPE_TEGRA241_CMDQV {
            return Err(Errno::EOPNOTSUPP);
        }
        Self::object_alloc(drv)?;
        let ioas_id = t.get(parent, ObjType::HwptPaging)?.deps[0];
        let (base_pa, pinned) = Self::alloc_phys(t.ioas_mut(ioas_id)?, drv, &cmd)?;
        let slot = |t: &Table, index: u32| {
            t.objs.iter().find_map(|(id, o)| match &o.data {
                Data::HwQueue(q) if q.viommu == cmd.viommu_id && q.ty == cmd.ty && q.index == index => Some(*id),
                _ => None,
            })
        };
        // tegra241-cmdqv's hw_queue_init_phys: a bounded, unused index;
        // the hardware maps queues in ascending order, so the one below
        // must exist, and unmaps them in descending order, so this one
        // depends on it.
        let below = cmd.index.checked_sub(1).map(|i| slot(&t, i));
        let init = if cmd.index >= MAX_QUEUES {
            Err(Errno::EINVAL)
        } else if slot(&t, cmd.index).is_some() {
            Err(Errno::EEXIST)
        } else if below == Some(None) {
            Err(Errno::EIO)
        } else {
            Ok(())
        };
        if let Err(e) = init {
            if pinned {
                t.ioas_mut(ioas_id)?.pins.pop();
            }
            return Err(e);
        }
        let q = HwQueue {
            id: t.next_id + 1,
            viommu: cmd.viommu_id,
            ty: cmd.ty,
            index: cmd.index,
            iova: cmd.nesting_parent_iova,
            length: cmd.length,
            base_pa,
            pinned: pinned.then_some(ioas_id),
        };
        let deps = [cmd.viommu_id].into_iter().chain(below.flatten()).collect();
        let id = t.insert(Data::HwQueue(q), deps);
        debug_assert_eq!(id, q.id);
        Ok(q)
    }

    /// `iommufd_hw_queue_alloc_phys` as seed 004 (v8) has it. Its offset is
    /// `iova - PAGE_ALIGN(iova)`, and PAGE_ALIGN rounds up: for an
    /// unaligned IOVA the u64 wraps and the overflow checks return ERANGE,
    /// so only page-aligned queues can be allocated (its review points
    /// this out). The access and its page array are allocated (a fault
    /// site), the pages pinned, then checked contiguous; returns the base
    /// PA and whether the pages stay pinned.
    fn alloc_phys(s: &mut IoasState, drv: &Driver, cmd: &HwQueueAlloc) -> Result<(u64, bool), Errno> {
        let iova = cmd.nesting_parent_iova;
        let offset = iova.wrapping_sub(iova.next_multiple_of(PAGE));
        let length = offset.checked_add(cmd.length).and_then(|l| l.checked_add(PAGE - 1)).ok_or(Errno::ERANGE)?;
        let max_npages = length / PAGE;
        drv.env.alloc(FaultSite::HwQueueAccess)?;
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

    /// The hardware reads its queue: the memory must still be mapped.
    pub fn hw_read(&self, drv: &Driver, q: &HwQueue) {
        let mut t = self.table.lock();
        if !matches!(t.objs.get(&q.id), Some(o) if matches!(&o.data, Data::HwQueue(live) if live == q)) {
            return;
        }
        let Some(ioas_id) = t
            .get(q.viommu, ObjType::Viommu)
            .ok()
            .map(|v| v.deps[0])
            .and_then(|hwpt| t.get(hwpt, ObjType::HwptPaging).ok().map(|h| h.deps[0]))
        else {
            return;
        };
        let Ok(s) = t.ioas_mut(ioas_id) else { return };
        let first = q.iova & !(PAGE - 1);
        let missing = (first..q.iova + q.length).step_by(PAGE as usize).find(|p| !s.pages.contains_key(p));
        if let Some(p) = missing {
            let detail = format!("HW queue {} read guest page {p:#x}, which is no longer mapped", q.id);
            drv.machine.oracle.report(ViolationKind::QueueUnmapped, detail);
        }
    }
}

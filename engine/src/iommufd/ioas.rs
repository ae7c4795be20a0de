//! What the object layer stores for an IOAS and a HW queue: an IOAS's
//! guest-physical pages and the ranges access objects pin, and a live
//! queue's place in guest memory.

use std::collections::BTreeMap;

/// `enum iommu_hw_queue_type`.
pub const HW_QUEUE_TYPE_DEFAULT: u32 = 0;
pub const HW_QUEUE_TYPE_TEGRA241_CMDQV: u32 = 1;

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
    pub viommu: u32,
    pub ty: u32,
    pub index: u32,
    pub iova: u64,
    pub length: u64,
    pub base_pa: u64,
    /// The IOAS its pages are pinned in, if an access pinned them.
    pub(super) pinned: Option<u32>,
}

/// An IOAS: guest physical page -> host physical page, and the ranges
/// access objects pin, as (iova, length).
#[derive(Default)]
pub(super) struct IoasState {
    pub pages: BTreeMap<u64, u64>,
    pub pins: Vec<(u64, u64)>,
}

impl IoasState {
    /// An access releases its pin of `iova..iova+length`.
    pub fn unpin(&mut self, iova: u64, length: u64) {
        if let Some(p) = self.pins.iter().position(|p| *p == (iova, length)) {
            self.pins.remove(p);
        }
    }
}

/// Whether two (start, length) ranges share a byte.
pub(super) fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.0.saturating_add(b.1) && b.0 < a.0.saturating_add(a.1)
}

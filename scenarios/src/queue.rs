//! A VMM's hardware queue in guest memory (IOMMUFD_CMD_HW_QUEUE_ALLOC), the
//! hardware reading it, and the VMM unmapping guest memory under it.

use crate::rig::Rig;
use engine::iommufd::{HwQueue, HwQueueAlloc, Ioas, HW_QUEUE_TYPE_TEGRA241_CMDQV, VIOMMU_ID};
use engine::Driver;
use hwmodel::PAGE;
use smmu_sync::Mutex;

/// Guest memory mapped into the IOAS, and the queue that may live in it.
pub struct Queues {
    ioas: Ioas,
    live: Mutex<Option<HwQueue>>,
}

/// Where the guest memory starts, and how many pages of it there are; the
/// queue takes the first two.
const IOVA: u64 = 0x4000_0000;
pub const PAGES: u64 = 4;

impl Queues {
    pub fn new(r: &Rig) -> Self {
        let ioas = Ioas::new();
        ioas.map(IOVA, r.drv.machine.alloc(PAGES * PAGE), PAGES * PAGE);
        Self { ioas, live: Mutex::new(None) }
    }

    /// The VMM allocates the queue, lets the hardware use it, destroys it.
    pub fn cycle(&self, drv: &Driver) {
        let cmd = HwQueueAlloc {
            flags: 0,
            viommu_id: VIOMMU_ID,
            ty: HW_QUEUE_TYPE_TEGRA241_CMDQV,
            index: 0,
            nesting_parent_iova: IOVA,
            length: 2 * PAGE,
        };
        let Ok(q) = self.ioas.hw_queue_alloc(drv, cmd) else { return };
        *self.live.lock() = Some(q);
        smmu_sync::yield_now();
        *self.live.lock() = None;
        let _ = self.ioas.hw_queue_destroy(q.id);
    }

    /// The hardware reads the queue, if one is live.
    pub fn read(&self, drv: &Driver) {
        let q = *self.live.lock();
        if let Some(q) = q {
            self.ioas.hw_read(drv, &q);
        }
    }

    /// The VMM unmaps guest page `k`.
    pub fn unmap(&self, drv: &Driver, k: u64) {
        let _ = self.ioas.unmap(drv, IOVA + k * PAGE, PAGE);
    }
}

//! A VMM's hardware queues in guest memory (IOMMUFD_CMD_HW_QUEUE_ALLOC),
//! the hardware reading them, and the VMM unmapping guest memory under
//! them and destroying them.

use crate::rig::Rig;
use engine::iommufd::{HwQueue, HwQueueAlloc, Ictx, HW_QUEUE_TYPE_TEGRA241_CMDQV};
use engine::{Driver, Errno};
use hwmodel::{SmmuId, ViolationKind, PAGE};
use smmu_sync::Mutex;

/// Guest memory mapped into an IOAS, a vIOMMU over it, and the queues that
/// may live in it.
pub struct Queues {
    ictx: Ictx,
    ioas: u32,
    viommu: u32,
    live: Mutex<Vec<HwQueue>>,
}

/// Where the guest memory starts, and how many pages of it there are;
/// queue 0 takes the first two, queue 1 the third.
const IOVA: u64 = 0x4000_0000;
pub const PAGES: u64 = 4;

impl Queues {
    pub fn new(r: &Rig) -> Self {
        let (drv, ictx) = (&r.drv, Ictx::new());
        let (ioas, viommu) = (|| {
            let ioas = ictx.ioas_alloc(drv)?;
            ictx.ioas_map(ioas, IOVA, drv.machine.alloc(PAGES * PAGE), PAGES * PAGE)?;
            let hwpt = ictx.hwpt_alloc(drv, ioas, true, 1)?;
            Ok::<_, Errno>((ioas, ictx.viommu_alloc(drv, hwpt, SmmuId(0), 4)?))
        })()
        .expect("setup runs without injected faults");
        Self { ictx, ioas, viommu, live: Mutex::new(Vec::new()) }
    }

    fn alloc(&self, drv: &Driver, index: u32, page: u64, pages: u64) -> Option<HwQueue> {
        let cmd = HwQueueAlloc {
            flags: 0,
            viommu_id: self.viommu,
            ty: HW_QUEUE_TYPE_TEGRA241_CMDQV,
            index,
            nesting_parent_iova: IOVA + page * PAGE,
            length: pages * PAGE,
        };
        let q = self.ictx.hw_queue_alloc(drv, cmd).ok()?;
        self.live.lock().push(q);
        Some(q)
    }

    /// The VMM allocates queues 0 and 1, lets the hardware use them, and
    /// destroys them; first in the wrong order, which the uAPI must refuse
    /// with EBUSY while queue 1 depends on queue 0.
    pub fn cycle(&self, drv: &Driver) {
        let Some(q0) = self.alloc(drv, 0, 0, 2) else { return };
        let q1 = self.alloc(drv, 1, 2, 1);
        smmu_sync::yield_now();
        if q1.is_some() {
            let r = self.ictx.destroy(drv, q0.id);
            if r != Err(Errno::EBUSY) {
                let detail = format!("IOMMU_DESTROY of HW queue 0 while queue 1 depends on it returned {r:?}");
                drv.machine.oracle.report(ViolationKind::UapiContract, detail);
                self.live.lock().retain(|q| q.id != q0.id);
            }
        }
        for q in [q1, Some(q0)].into_iter().flatten() {
            self.live.lock().retain(|l| l.id != q.id);
            let _ = self.ictx.destroy(drv, q.id);
        }
    }

    /// The hardware reads every live queue.
    pub fn read(&self, drv: &Driver) {
        let live = self.live.lock().clone();
        for q in live {
            self.ictx.hw_read(drv, &q);
        }
    }

    /// The VMM unmaps guest page `k`.
    pub fn unmap(&self, drv: &Driver, k: u64) {
        let _ = self.ictx.ioas_unmap(drv, self.ioas, IOVA + k * PAGE, PAGE);
    }
}

//! Shared by the hwmodel tests: a small world, and running a body over many
//! seeded shuttle schedules.
#![allow(dead_code)] // each test file uses its own subset

use hwmodel::*;
use shuttle::scheduler::RandomScheduler;
use shuttle::{Config, Runner};
use smmu_sync::{enter, Backend};
use std::sync::{Arc, Mutex};
/// How many of `schedules` seeded random schedules of `body` return true.
pub fn count_schedules(seed: u64, schedules: usize, body: impl Fn() -> bool + Send + Sync + 'static) -> usize {
    let hits = Arc::new(Mutex::new(0usize));
    let h = hits.clone();
    Runner::new(RandomScheduler::new_from_seed(seed, schedules), Config::new()).run(move || {
        let _b = enter(Backend::Shuttle);
        if body() {
            *h.lock().unwrap() += 1;
        }
    });
    let n = *hits.lock().unwrap();
    n
}

pub const CPU: CpuId = CpuId(0);
pub const SID: u32 = 1;
pub const ASID: u16 = 5;
pub const IOVA: u64 = 0x20_0000;

pub struct World {
    pub m: Machine,
    pub ep: EndpointId,
    pub pt: PageTable,
    pub cd_table: Addr,
    pub smmu: SmmuId,
}

/// One SMMU (refetching nothing on its own), one ATS-capable endpoint on
/// SID 1 attached stage-1 to domain 1 (ASID 5), one page mapped at IOVA;
/// all of it visible to the SMMU.
pub fn world(features: Features) -> (World, u64) {
    let mut m = Machine::new(1);
    // Exact command effects: no speculative refill after an invalidation.
    m.set_refetch(false);
    let smmu = m.add_smmu(features);
    let ep = m.add_endpoint(smmu, &[SID], true);
    let pt = PageTable::new(&m, DomainId(1));
    let cd_table = m.alloc_frame();
    m.write_cd(CPU, cd_table, 0, Some(Cd { asid: ASID, root: pt.root }));
    m.write_ste(CPU, smmu, SID, Ste::S1 { cd_table, eats: true });
    let pa = m.alloc_frame();
    pt.map(&m, CPU, IOVA, pa, PAGE).unwrap();
    m.mem.smp_mb(CPU);
    (World { m, ep, pt, cd_table, smmu }, pa)
}

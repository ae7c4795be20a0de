//! The command queue's freedom to complete effects in any order between two
//! syncs is what makes the walker's batching rules necessary: an ATC_INV in
//! the same window as the TLBI lets the device refill its ATC from the IOTLB
//! entry the TLBI has not removed yet.

mod common;

use common::{count_schedules, world, World, ASID, CPU, IOVA, SID};
use hwmodel::*;
use smmu_sync::spawn;
use std::sync::Arc;

const SCHEDULES: usize = 1000;

/// Unmap one page while the device keeps reading it; `split` puts the
/// ATC_INV behind its own sync, as the walker does. True if the oracle saw a
/// stale translation.
fn unmap_under_dma(split: bool) -> bool {
    let (World { m, ep, pt, smmu, .. }, pa) = world(Features { ats: true, ..Features::default() });
    m.set_ats(ep, true);
    m.dma(ep, SID, 0, IOVA);
    let m = Arc::new(m);

    let dev = {
        let m = m.clone();
        spawn(move || {
            for _ in 0..4 {
                m.dma(ep, SID, 0, IOVA);
            }
        })
    };
    pt.unmap(&m, CPU, IOVA, PAGE).unwrap();
    let tlbi = Cmd { asid: ASID, addr: IOVA, leaf: true, ..Cmd::new(Opcode::TlbiNhVa) };
    let atc_inv = Cmd { sid: SID, addr: IOVA, atc_size: 12, ..Cmd::new(Opcode::AtcInv) };
    if split {
        m.submit(CPU, smmu, &[tlbi, Cmd::sync()]);
        m.submit(CPU, smmu, &[atc_inv, Cmd::sync()]);
    } else {
        m.submit(CPU, smmu, &[tlbi, atc_inv, Cmd::sync()]);
    }
    m.oracle.unmap_returned(DomainId(1), IOVA, pa, PAGE);
    dev.join().unwrap();
    m.dma(ep, SID, 0, IOVA);
    m.oracle.violations().iter().any(|v| v.kind == ViolationKind::StaleTranslation)
}

#[test]
fn atc_inv_in_the_tlbi_window_lets_a_stale_entry_back() {
    let stale = count_schedules(7, SCHEDULES, || unmap_under_dma(false));
    assert!(stale > 0, "no stale ATC refill in {SCHEDULES} schedules");
    eprintln!("TLBI and ATC_INV under one sync: {stale}/{SCHEDULES} schedules stale");
}

#[test]
fn a_sync_between_tlbi_and_atc_inv_closes_the_window() {
    assert_eq!(count_schedules(7, SCHEDULES, || unmap_under_dma(true)), 0);
}

/// Two CPUs map pages in the same 2 MiB region at once: both race to
/// install its level-3 table, and both mappings must survive.
#[test]
fn racing_table_installs_keep_both_mappings() {
    let lost = count_schedules(9, SCHEDULES, || {
        let m = Arc::new(Machine::new(2));
        let pt = Arc::new(PageTable::new(&m, DomainId(1)));
        let cpus: Vec<_> = (0..2)
            .map(|c| {
                let (m, pt) = (m.clone(), pt.clone());
                spawn(move || pt.map(&m, CpuId(c), c as u64 * PAGE, m.alloc_frame(), PAGE))
            })
            .collect();
        let maps: Vec<_> = cpus.into_iter().map(|t| t.join().unwrap()).collect();
        (0..2).for_each(|c| m.mem.smp_mb(CpuId(c)));
        maps.iter().any(Result::is_err) || (0..2).any(|c| pgtable::walk(&m.mem, pt.root, c * PAGE).leaf.is_none())
    });
    assert_eq!(lost, 0);
}

/// The attaching CPU fills a new domain's table, then points SSID 1's CD
/// at it while the device keeps issuing DMA there. True if the device
/// faulted in the new table on the IOVA it had mapped.
fn attach_filled_domain(ordered: bool) -> bool {
    let (w, _) = world(Features::default());
    let pt2 = PageTable::new(&w.m, DomainId(2));
    pt2.map(&w.m, CPU, IOVA, w.m.alloc_frame(), PAGE).unwrap();
    w.m.oracle.map_returned(DomainId(2), IOVA, 0, PAGE);
    w.m.oracle.attach_begin(w.ep, 1, Allowed::Domain(DomainId(2)));
    if ordered {
        w.m.mem.dma_wmb(CPU);
    }
    w.m.write_cd(CPU, w.cd_table, 1, Some(Cd { asid: ASID + 1, root: pt2.root }));
    for _ in 0..4 {
        w.m.dma(w.ep, SID, 1, IOVA);
    }
    w.m.oracle.violations().iter().any(|v| v.kind == ViolationKind::MissingTranslation)
}

#[test]
fn a_cd_that_outruns_its_page_table_is_a_missing_translation() {
    let missing = count_schedules(11, SCHEDULES, || attach_filled_domain(false));
    assert!(missing > 0, "the CD never reached memory ahead of the PTE in {SCHEDULES} schedules");
    eprintln!("CD written without dma_wmb: {missing}/{SCHEDULES} schedules fault in the new table");
}

#[test]
fn dma_wmb_keeps_the_page_table_ahead_of_the_cd() {
    assert_eq!(count_schedules(11, SCHEDULES, || attach_filled_domain(true)), 0);
}

//! Loom explores every C11 execution of the barrier pairing, with each
//! barrier on the attach side and with or without the unmap side's.

use scenarios::AttachBarrier;
use smmu_sync::{enter, Backend};

fn explore(smp_mb: bool, attach: AttachBarrier) -> bool {
    std::panic::catch_unwind(|| {
        loom::model(move || {
            let _b = enter(Backend::Loom);
            scenarios::barrier_pairing(smp_mb, attach);
        })
    })
    .is_ok()
}

#[test]
fn pairing_holds_with_smp_mb_on_both_sides() {
    assert!(explore(true, AttachBarrier::SmpMb));
}

#[test]
fn pairing_holds_with_dma_wmb_on_the_attach_side() {
    assert!(explore(true, AttachBarrier::DmaWmb));
}

#[test]
fn loom_finds_the_missing_attach_side_barrier() {
    assert!(!explore(true, AttachBarrier::None));
}

#[test]
fn loom_finds_the_missing_smp_mb() {
    assert!(!explore(false, AttachBarrier::SmpMb));
}

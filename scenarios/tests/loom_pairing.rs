//! Loom explores every C11 execution of the barrier pairing, with each
//! barrier on the attach side and with or without the unmap side's.

use scenarios::AttachBarrier;
use smmu_sync::{enter, Backend};

/// Whether every execution holds; else the failure's message.
fn explore(smp_mb: bool, attach: AttachBarrier) -> Result<(), String> {
    std::panic::catch_unwind(|| {
        loom::model(move || {
            let _b = enter(Backend::Loom);
            scenarios::barrier_pairing(smp_mb, attach);
        })
    })
    .map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

/// The stale translation the pairing exists to prevent, not any failure
/// (a loom limit or a bug of the model would also panic).
fn finds_the_stale_translation(r: Result<(), String>) {
    let msg = r.expect_err("every execution held");
    assert!(msg.starts_with("stale-translation: the SMMU walked the new STE"), "another failure: {msg}");
}

#[test]
fn pairing_holds_with_smp_mb_on_both_sides() {
    assert_eq!(explore(true, AttachBarrier::SmpMb), Ok(()));
}

#[test]
fn pairing_holds_with_dma_wmb_on_the_attach_side() {
    assert_eq!(explore(true, AttachBarrier::DmaWmb), Ok(()));
}

#[test]
fn loom_finds_the_missing_attach_side_barrier() {
    finds_the_stale_translation(explore(true, AttachBarrier::None));
}

#[test]
fn loom_finds_the_missing_smp_mb() {
    finds_the_stale_translation(explore(false, AttachBarrier::SmpMb));
}

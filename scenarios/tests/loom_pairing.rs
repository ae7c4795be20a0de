//! Loom explores every C11 execution of the barrier pairing.

use smmu_sync::{enter, Backend};

fn explore(smp_mb: bool) -> bool {
    std::panic::catch_unwind(|| {
        loom::model(move || {
            let _b = enter(Backend::Loom);
            scenarios::barrier_pairing(smp_mb);
        })
    })
    .is_ok()
}

#[test]
fn pairing_holds_with_both_barriers() {
    assert!(explore(true));
}

#[test]
fn loom_finds_the_missing_smp_mb() {
    assert!(!explore(false));
}

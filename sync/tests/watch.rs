//! The watchdog: a loop that never yields still ends, with a livelock
//! report that says where each thread was.

use smmu_sync::{begin_execution, locate, name_task, tick, Bounds};
use std::panic::catch_unwind;
use std::time::{Duration, Instant};

fn spin_until_stopped(bounds: Bounds) -> String {
    let r = catch_unwind(move || {
        begin_execution(bounds);
        name_task("cpu 1");
        locate("domain_inv_range", 3);
        loop {
            tick();
        }
    });
    let payload = r.expect_err("the loop must be stopped");
    payload.downcast_ref::<String>().cloned().unwrap_or_default()
}

#[test]
fn a_loop_past_its_step_bound_is_a_livelock_naming_each_thread() {
    let msg = spin_until_stopped(Bounds { limit: Some(1000), deadline: None });
    assert!(msg.starts_with("livelock: 1001 steps without finishing (bound 1000)"), "{msg}");
    assert!(msg.contains("cpu 1: domain_inv_range 0x3"), "{msg}");
}

#[test]
fn a_loop_past_its_deadline_is_stopped_by_the_wall_clock() {
    let deadline = Instant::now() + Duration::from_millis(20);
    let msg = spin_until_stopped(Bounds { limit: None, deadline: Some(deadline) });
    assert!(msg.starts_with("livelock: the wall-clock watchdog expired"), "{msg}");
    assert!(Instant::now() >= deadline);
}

#[test]
fn an_unbounded_execution_counts_but_never_stops() {
    begin_execution(Bounds::default());
    for _ in 0..100_000 {
        tick();
    }
    assert_eq!(smmu_sync::ticks(), 100_000);
}

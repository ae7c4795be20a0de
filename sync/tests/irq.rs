//! Interrupts and the kernel rwlock: a handler that read-locks what its
//! own CPU read-holds deadlocks behind a waiting writer under a fair lock,
//! gets through under the queued lock, and never meets the writer when the
//! task-context reader saved interrupts.
#![cfg(not(miri))] // shuttle switches stacks with inline assembly

use shuttle::scheduler::RandomScheduler;
use shuttle::{Config, Runner};
use smmu_sync::{
    begin_execution, clear_irq_handler, enter, in_interrupt, name_task, raise_irq, schedule_point, set_irq_handler,
    spawn, take_failure, task_index, Backend, Bounds, RwLock, RwLockKind, StopOnFailure,
};
use std::sync::Arc;

const SCHEDULES: u64 = 300;

/// One CPU reads under the lock, taking at most one interrupt whose
/// handler read-locks too; another CPU write-locks with interrupts saved.
fn reader_vs_writer(kind: RwLockKind, irqsave: bool) {
    begin_execution(Bounds { limit: Some(100_000), deadline: None });
    let lock = Arc::new(RwLock::new(kind));
    let reader = {
        let lock = lock.clone();
        spawn(move || {
            name_task("cpu 1");
            let me = task_index();
            let l = lock.clone();
            raise_irq();
            set_irq_handler(2, move || {
                assert!(in_interrupt());
                assert_eq!(task_index(), me, "a handler runs on the CPU it interrupted");
                let _g = l.read_lock_irqsave();
                schedule_point();
            });
            for _ in 0..3 {
                let _g = if irqsave { lock.read_lock_irqsave() } else { lock.read_lock() };
                schedule_point();
                schedule_point();
            }
            clear_irq_handler();
        })
    };
    let writer = spawn(move || {
        name_task("cpu 2");
        for _ in 0..2 {
            let _g = lock.write_lock_irqsave();
            schedule_point();
        }
    });
    reader.join().unwrap();
    writer.join().unwrap();
}

/// Run `body` under one seeded shuttle schedule; the report that ended
/// it, if one did.
fn once(seed: u64, body: impl Fn() + Send + Sync + 'static) -> Option<String> {
    Runner::new(StopOnFailure(RandomScheduler::new_from_seed(seed, 1)), Config::new()).run(move || {
        let _b = enter(Backend::Shuttle);
        body();
    });
    take_failure().map(|p| p.downcast_ref::<String>().cloned().unwrap_or_default())
}

/// How many of `SCHEDULES` seeded schedules ended in a deadlock report,
/// and the first report.
fn deadlocks(kind: RwLockKind, irqsave: bool) -> (u64, Option<String>) {
    let mut first = None;
    let mut n = 0;
    for seed in 0..SCHEDULES {
        if let Some(msg) = once(seed, move || reader_vs_writer(kind, irqsave)) {
            assert!(msg.starts_with("deadlock"), "an unexpected failure: {msg}");
            n += 1;
            first.get_or_insert(msg);
        }
    }
    (n, first)
}

#[test]
fn plain_read_lock_deadlocks_in_irq_behind_a_waiting_writer_under_a_fair_lock() {
    let (n, msg) = deadlocks(RwLockKind::Fair, false);
    assert!(n > 0, "no deadlock in {SCHEDULES} schedules");
    let msg = msg.unwrap();
    assert!(msg.contains("cpu 1 (in irq) waits for cpu 2 waits for cpu 1 (in irq)"), "{msg}");
    eprintln!("fair rwlock, plain read_lock: {n}/{SCHEDULES} schedules deadlock: {msg}");
}

#[test]
fn plain_read_lock_in_irq_passes_a_waiting_writer_under_the_queued_lock() {
    assert_eq!(deadlocks(RwLockKind::Queued, false).0, 0);
}

#[test]
fn read_lock_irqsave_never_deadlocks_under_either_lock() {
    assert_eq!(deadlocks(RwLockKind::Fair, true).0, 0);
    assert_eq!(deadlocks(RwLockKind::Queued, true).0, 0);
}

#[test]
fn a_task_context_reader_queues_behind_a_waiting_writer_even_under_the_queued_lock() {
    // A recursive read_lock in task context is what the queued lock does
    // not allow: the second acquisition waits behind the writer, which
    // waits for the first.
    let mut n = 0;
    for seed in 0..SCHEDULES {
        let report = once(seed, || {
            begin_execution(Bounds { limit: Some(100_000), deadline: None });
            let lock = Arc::new(RwLock::new(RwLockKind::Queued));
            let l = lock.clone();
            let writer = spawn(move || drop(l.write_lock_irqsave()));
            let outer = lock.read_lock();
            schedule_point();
            drop(lock.read_lock());
            drop(outer);
            writer.join().unwrap();
        });
        // The deadlock report, not any failure: a panic would unwind out of
        // `once` and fail the test.
        if let Some(msg) = report {
            assert!(msg.starts_with("deadlock: task 0 waits for task 1"), "an unexpected failure: {msg}");
            n += 1;
        }
    }
    assert!(n > 0, "the nested reader never queued behind the writer");
}

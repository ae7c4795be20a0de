//! Litmus tests of the CPU memory model: the weak outcomes a missing barrier
//! allows must show up within a bounded number of schedules, and never with
//! the barrier.

mod common;

use common::count_schedules;
use hwmodel::mem::{CpuId, Memory};
use smmu_sync::spawn;
use std::sync::Arc;

const SCHEDULES: usize = 2000;
const X: u64 = 0x1000;
const Y: u64 = 0x2000;

/// Schedules out of `SCHEDULES` in which `body` saw the weak outcome.
fn count_weak(seed: u64, body: fn(&Arc<Memory>) -> bool) -> usize {
    count_schedules(seed, SCHEDULES, move || body(&Arc::new(Memory::new(2))))
}

/// Store buffering: each CPU stores to one location, then loads the other.
/// Both loads returning 0 is the weak outcome `smp_mb` forbids.
fn store_buffering(mem: &Arc<Memory>, barrier: bool) -> bool {
    let side = |me: usize, mine: u64, other: u64| {
        let mem = mem.clone();
        spawn(move || {
            mem.store(CpuId(me), mine, 1);
            if barrier {
                mem.smp_mb(CpuId(me));
            }
            mem.load(CpuId(me), other)
        })
    };
    let (a, b) = (side(0, X, Y), side(1, Y, X));
    let (r0, r1) = (a.join().unwrap(), b.join().unwrap());
    r0 == 0 && r1 == 0
}

/// Message passing to the SMMU: a CPU writes data then a flag (as the
/// driver writes a page table then the STE that points at it); the device
/// seeing the flag but not the data is the weak outcome `dma_wmb` forbids.
fn message_passing(mem: &Arc<Memory>, barrier: bool) -> bool {
    let cpu = {
        let mem = mem.clone();
        spawn(move || {
            mem.store(CpuId(0), X, 1);
            if barrier {
                mem.dma_wmb(CpuId(0));
            }
            mem.store(CpuId(0), Y, 1);
        })
    };
    let dev = {
        let mem = mem.clone();
        spawn(move || {
            let flag = mem.load_dev(Y);
            flag == 1 && mem.load_dev(X) == 0
        })
    };
    cpu.join().unwrap();
    dev.join().unwrap()
}

#[test]
fn store_buffering_is_weak_without_smp_mb() {
    let weak = count_weak(1, |m| store_buffering(m, false));
    assert!(weak > 0, "no weak outcome in {SCHEDULES} schedules");
    eprintln!("store buffering without smp_mb: {weak}/{SCHEDULES} schedules weak");
}

#[test]
fn store_buffering_never_weak_with_smp_mb() {
    assert_eq!(count_weak(1, |m| store_buffering(m, true)), 0);
}

#[test]
fn message_passing_is_weak_without_dma_wmb() {
    let weak = count_weak(2, |m| message_passing(m, false));
    assert!(weak > 0, "no weak outcome in {SCHEDULES} schedules");
    eprintln!("message passing without dma_wmb: {weak}/{SCHEDULES} schedules weak");
}

#[test]
fn message_passing_never_weak_with_dma_wmb() {
    assert_eq!(count_weak(2, |m| message_passing(m, true)), 0);
}

#[test]
fn same_address_stores_drain_in_program_order() {
    let stale = count_weak(3, |mem| {
        let cpu = {
            let mem = mem.clone();
            spawn(move || {
                mem.store(CpuId(0), X, 1);
                mem.store(CpuId(0), X, 2);
            })
        };
        let dev = {
            let mem = mem.clone();
            spawn(move || (mem.load_dev(X), mem.load_dev(X)))
        };
        cpu.join().unwrap();
        let (a, b) = dev.join().unwrap();
        b < a
    });
    assert_eq!(stale, 0, "a device saw a newer value, then an older one");
}

#[test]
fn a_cpu_reads_its_own_buffered_store() {
    let mem = Memory::new(1);
    mem.store(CpuId(0), X, 5);
    assert_eq!(mem.load(CpuId(0), X), 5);
    mem.smp_mb(CpuId(0));
    assert_eq!(mem.pending(CpuId(0)), 0);
    assert_eq!(mem.load_dev(X), 5);
}

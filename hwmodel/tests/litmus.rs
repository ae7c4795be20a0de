//! Litmus tests of the memory model, between CPUs and from a CPU to the
//! SMMU: the weak outcome a missing barrier allows must show up within a
//! bounded number of schedules, and never with the barrier.

mod common;

use common::count_schedules;
use hwmodel::Word;
use hwmodel::{CpuId, Memory};
use smmu_sync::spawn;
use std::sync::Arc;

const SCHEDULES: usize = 2000;
const X: u64 = 0x1000;
const Y: u64 = 0x2000;
const Z: u64 = 0x3000;

/// The three-thread pairing needs one drain order out of many: more runs.
const PAIRING_SCHEDULES: usize = 20_000;

/// Schedules out of `SCHEDULES` in which `body` saw the weak outcome.
fn count_weak(seed: u64, body: fn(&Arc<Memory>) -> bool) -> usize {
    count_weak_in(seed, SCHEDULES, body)
}

fn count_weak_in(seed: u64, schedules: usize, body: fn(&Arc<Memory>) -> bool) -> usize {
    count_schedules(seed, schedules, move || body(&Arc::new(Memory::new(3))))
}

/// The weak outcome shows up at least once in `schedules`.
fn expect_weak(what: &str, seed: u64, schedules: usize, body: fn(&Arc<Memory>) -> bool) {
    let weak = count_weak_in(seed, schedules, body);
    assert!(weak > 0, "{what}: no weak outcome in {schedules} schedules");
    eprintln!("{what}: {weak}/{schedules} schedules weak");
}

/// Message passing between CPUs: data, then a flag (as an attach fills an
/// array, then publishes the pointer to it). Another CPU seeing the flag
/// but not the data is the weak outcome a release store forbids.
fn message_passing_cpus(mem: &Arc<Memory>, release: bool) -> bool {
    let writer = {
        let mem = mem.clone();
        spawn(move || {
            mem.store(CpuId(0), X, 1);
            if release {
                mem.store_release(CpuId(0), Y, 1, Word::ArrayPtr);
            } else {
                mem.store(CpuId(0), Y, 1);
            }
        })
    };
    let reader = {
        let mem = mem.clone();
        spawn(move || {
            let flag = mem.load(CpuId(1), Y);
            flag == 1 && mem.load(CpuId(1), X) == 0
        })
    };
    writer.join().unwrap();
    reader.join().unwrap()
}

/// What the attach side does between publishing the array and writing the
/// STE.
#[derive(Clone, Copy)]
enum AttachBarrier {
    None,
    DmaWmb,
    SmpMb,
}

/// The pairing of fact 10. CPU 0 unmaps: clears the PTE (X), then loads
/// the array pointer (Y). CPU 1 attaches: publishes the array (Y), then
/// writes the STE (Z). The SMMU walks through the STE to the PTE. Weak: the
/// SMMU uses the new STE and still sees the PTE, while the unmap's
/// invalidation used the old array, so nothing removes what it cached.
fn unmap_attach_pairing(mem: &Arc<Memory>, unmap_mb: bool, attach: AttachBarrier) -> bool {
    mem.store(CpuId(2), X, 1);
    mem.smp_mb(CpuId(2));
    let unmap = {
        let mem = mem.clone();
        spawn(move || {
            mem.store(CpuId(0), X, 0);
            if unmap_mb {
                mem.smp_mb(CpuId(0));
            }
            mem.load(CpuId(0), Y)
        })
    };
    let attach = {
        let mem = mem.clone();
        spawn(move || {
            mem.store(CpuId(1), Y, 1);
            match attach {
                AttachBarrier::None => {}
                AttachBarrier::DmaWmb => mem.dma_wmb(CpuId(1)),
                AttachBarrier::SmpMb => mem.smp_mb(CpuId(1)),
            }
            mem.store(CpuId(1), Z, 1);
        })
    };
    let smmu = {
        let mem = mem.clone();
        spawn(move || (mem.load_dev(Z) == 1).then(|| mem.load_dev(X)))
    };
    let new_array_seen = unmap.join().unwrap() == 1;
    attach.join().unwrap();
    let cached = smmu.join().unwrap();
    !new_array_seen && cached == Some(1)
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
    expect_weak("store buffering without smp_mb", 1, SCHEDULES, |m| store_buffering(m, false));
}

#[test]
fn store_buffering_never_weak_with_smp_mb() {
    assert_eq!(count_weak(1, |m| store_buffering(m, true)), 0);
}

#[test]
fn message_passing_is_weak_without_dma_wmb() {
    expect_weak("message passing without dma_wmb", 2, SCHEDULES, |m| message_passing(m, false));
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

#[test]
fn message_passing_between_cpus_is_weak_without_release() {
    expect_weak("message passing between CPUs without release", 4, SCHEDULES, |m| message_passing_cpus(m, false));
}

#[test]
fn message_passing_between_cpus_never_weak_with_release() {
    assert_eq!(count_weak(4, |m| message_passing_cpus(m, true)), 0);
}

#[test]
fn unmap_attach_pairing_never_weak_with_smp_mb_on_both_sides() {
    assert_eq!(count_weak_in(5, PAIRING_SCHEDULES, |m| unmap_attach_pairing(m, true, AttachBarrier::SmpMb)), 0);
}

#[test]
fn unmap_attach_pairing_never_weak_with_dma_wmb_on_the_attach_side() {
    // Store-store order on the attach side is enough: memory is multi-copy
    // atomic, so an SMMU that sees the STE sees the array pointer, and the
    // unmap's full barrier put its PTE write before its pointer load.
    assert_eq!(count_weak_in(5, PAIRING_SCHEDULES, |m| unmap_attach_pairing(m, true, AttachBarrier::DmaWmb)), 0);
}

#[test]
fn unmap_attach_pairing_is_weak_without_the_attach_side_barrier() {
    expect_weak("unmap/attach pairing, no attach barrier", 5, PAIRING_SCHEDULES, |m| {
        unmap_attach_pairing(m, true, AttachBarrier::None)
    });
}

#[test]
fn unmap_attach_pairing_is_weak_without_the_unmap_side_barrier() {
    expect_weak("unmap/attach pairing, no unmap barrier", 5, PAIRING_SCHEDULES, |m| {
        unmap_attach_pairing(m, false, AttachBarrier::SmpMb)
    });
}

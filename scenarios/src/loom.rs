//! The barrier pairing of fact 10 as a C11 model for loom: an unmap's PTE
//! write and array load against an attach's array publication and STE
//! write, with the SMMU walking through the new STE.

use smmu_sync::{fence, spawn, AtomicBool, AtomicU64, Collector, Ordering, Rcu, Retire};
use std::sync::Arc;

/// Whether the published array names the newly attached master.
struct Array {
    covers_new_master: bool,
}

impl Retire for Array {
    fn poison(&self) {}
}

/// What the attach side puts between publishing the array and writing the
/// STE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachBarrier {
    /// Nothing (`publish-without-barrier`).
    None,
    /// The STE store is ordered after the publication, as `dma_wmb` orders
    /// it in the default engine: a release store.
    DmaWmb,
    /// A full fence, as v9's `smp_mb()` after `rcu_assign_pointer`.
    SmpMb,
}

/// One execution; panics if the SMMU cached the old PTE through the new STE
/// while the unmap's invalidation missed the new master. `smp_mb` is the
/// unmap side's full barrier (`no-smp-mb-inv-range` drops it); `attach` the
/// attach side's.
pub fn barrier_pairing(smp_mb: bool, attach: AttachBarrier) {
    let collector = Arc::new(Collector::new());
    let pte = Arc::new(AtomicU64::new(1));
    let ste_attached = Arc::new(AtomicBool::new(false));
    let invs = Arc::new(Rcu::new(Array { covers_new_master: false }));

    let unmap = {
        let (c, pte, invs) = (collector.clone(), pte.clone(), invs.clone());
        spawn(move || {
            let h = c.register();
            pte.store(0, Ordering::Relaxed);
            if smp_mb {
                fence(Ordering::SeqCst);
            }
            invs.load(&h.pin()).covers_new_master
        })
    };
    let attach = {
        let (c, ste, invs) = (collector.clone(), ste_attached.clone(), invs.clone());
        spawn(move || {
            let h = c.register();
            invs.publish(Array { covers_new_master: true }, &h.pin()).defer_free();
            match attach {
                AttachBarrier::None => ste.store(true, Ordering::Relaxed),
                AttachBarrier::DmaWmb => ste.store(true, Ordering::Release),
                AttachBarrier::SmpMb => {
                    fence(Ordering::SeqCst);
                    ste.store(true, Ordering::Relaxed);
                }
            }
        })
    };
    let smmu = {
        let (pte, ste) = (pte.clone(), ste_attached.clone());
        spawn(move || {
            if !ste.load(Ordering::Acquire) {
                return None;
            }
            // The SMMU observes memory multi-copy atomically, as ARM does;
            // an SC fence is how C11 says so.
            fence(Ordering::SeqCst);
            Some(pte.load(Ordering::Relaxed))
        })
    };
    let covered = unmap.join().unwrap();
    attach.join().unwrap();
    let cached = smmu.join().unwrap();
    assert!(
        covered || cached != Some(1),
        "stale-translation: the SMMU walked the new STE and cached the unmapped PTE, and the unmap's \
         invalidation used the array without the new master"
    );
}

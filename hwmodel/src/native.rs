//! A native machine's memory, for timing the driver alone: every word a
//! plain atomic accessed at the kernel's ordering, no store buffers, no
//! scheduling points, no trace. Words are found by address in a fixed
//! open-addressed table; a word is placed the first time it is stored and
//! never leaves, which suits what a benchmark's world stores (STEs,
//! pointer words, per-master flags) but not a growing heap: arrays, which
//! a churning writer places without end, keep their words in their own
//! allocation on a native machine (`engine::words::ArrayWords`).

use smmu_sync::plain::AtomicU64;
use std::sync::atomic::Ordering;

/// Slots in the table: 4 MiB of keys and values, far more words than a
/// benchmark's world stores.
const SLOTS: usize = 1 << 18;

pub(crate) struct Native {
    /// Address + 1 of the word in each slot; 0 for a free slot.
    keys: Box<[AtomicU64]>,
    vals: Box<[AtomicU64]>,
}

impl Native {
    pub(crate) fn new() -> Self {
        let table = || (0..SLOTS).map(|_| AtomicU64::new(0)).collect();
        Self { keys: table(), vals: table() }
    }

    /// The word at `addr`, placed if `place` and it is not there yet.
    fn word(&self, addr: u64, place: bool) -> Option<&AtomicU64> {
        let key = addr + 1;
        // Fibonacci hashing of the word index spreads consecutive words.
        let mut i = ((addr >> 3).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - SLOTS.ilog2())) as usize;
        for _ in 0..SLOTS {
            match self.keys[i].load(Ordering::Acquire) {
                k if k == key => return Some(&self.vals[i]),
                0 if !place => return None,
                0 => match self.keys[i].compare_exchange(0, key, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => return Some(&self.vals[i]),
                    Err(k) if k == key => return Some(&self.vals[i]),
                    Err(_) => {}
                },
                _ => {}
            }
            i = (i + 1) % SLOTS;
        }
        panic!("a native machine's memory holds {SLOTS} words; this world stores more");
    }

    /// A load at `order`; a word never stored reads as zero.
    pub(crate) fn load(&self, addr: u64, order: Ordering) -> u64 {
        self.word(addr, false).map_or(0, |w| w.load(order))
    }

    pub(crate) fn store(&self, addr: u64, val: u64, order: Ordering) {
        self.word(addr, true).expect("placed").store(val, order);
    }

    pub(crate) fn fetch_add(&self, addr: u64, delta: i64) -> u64 {
        let w = self.word(addr, true).expect("placed");
        w.fetch_add(delta as u64, Ordering::Relaxed)
    }

    /// A real fence: native memory is the machine's own.
    pub(crate) fn fence(order: Ordering) {
        std::sync::atomic::fence(order);
    }

    pub(crate) fn cmpxchg(&self, addr: u64, old: u64, new: u64) -> u64 {
        let w = self.word(addr, true).expect("placed");
        w.compare_exchange(old, new, Ordering::SeqCst, Ordering::SeqCst).unwrap_or_else(|cur| cur)
    }
}

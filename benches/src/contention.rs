//! A contention model for more CPUs than the machine has. One CPU's
//! invalidation is recorded as the cache lines it touches
//! (`smmu_sync::cost`, from the design's own code on a counting machine);
//! `cpus` copies of it then run in lock step, access by access, over lines
//! kept MSI-style: a read of a line another CPU wrote since this one last
//! had it costs one transfer; a write costs one invalidation per other CPU
//! that read the line since its last write. Transfers of one line happen
//! one at a time (the line can be in one place), each taking
//! `TRANSFER` local accesses' time; everything else costs one. What comes
//! out is modelled time per invalidation, the longest CPU's time over the
//! invalidations each ran: flat when CPUs share nothing they write, growing
//! with the CPUs when every invalidation writes one line they all read.
//!
//! Not modelled: the command queue (every design shares it), crossbeam's
//! collection every 128th pin (which reads every participant's epoch), and
//! any cost of lines nobody writes (read-only entries are shared freely).

use smmu_sync::cost::Access;
use std::collections::HashMap;

/// A line transfer, in local accesses: about 100 cycles against 4.
pub const TRANSFER: u64 = 25;

#[derive(Default)]
struct Line {
    /// CPUs holding a copy since the last write (the writer among them).
    readers: u64,
    written: bool,
    /// When the line is free to move again.
    free_at: u64,
}

/// Modelled time per invalidation when `cpus` CPUs (at most 64) each run
/// `seq` `rounds` times in lock step, each invalidation also doing `work`
/// local accesses of its own (its walk over entries nobody writes).
pub fn time_per_invalidation(seq: &[Access], work: u64, cpus: usize, rounds: usize) -> f64 {
    assert!((1..=64).contains(&cpus), "the model keeps copies in a 64-bit mask");
    let mut lines: HashMap<(u64, usize), Line> = HashMap::new();
    let mut clock = vec![0u64; cpus];
    for _ in 0..rounds {
        for now in clock.iter_mut() {
            *now += work;
        }
        for a in seq {
            for (c, now) in clock.iter_mut().enumerate() {
                let me = 1u64 << c;
                let l = lines.entry((a.line, if a.private { c } else { usize::MAX })).or_default();
                let transfers = if a.write {
                    u64::from((l.readers & !me).count_ones())
                } else {
                    u64::from(l.written && l.readers & me == 0)
                };
                if a.write {
                    (l.readers, l.written) = (me, true);
                } else {
                    l.readers |= me;
                }
                if transfers == 0 {
                    *now += 1;
                } else {
                    let start = (*now).max(l.free_at);
                    *now = start + transfers * TRANSFER;
                    l.free_at = *now;
                }
            }
        }
    }
    clock.iter().copied().max().unwrap_or(0) as f64 / rounds as f64
}

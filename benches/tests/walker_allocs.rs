//! The invalidation walk allocates nothing: commands are batched in a fixed
//! array, whatever the number of entries, trash or batches.

use benches::{fixture, Design};

/// Allocations made by the calling thread during one invalidation, after a
/// first call has registered the thread's epoch handle.
fn allocations(live: usize, trash: bool, design: Design) -> u64 {
    let f = fixture(live, trash, false);
    let cpu = f.driver(design).cpu(1);
    f.invalidate(design, &cpu);
    allocation_counter::measure(|| f.invalidate(design, &cpu)).count_total
}

#[test]
fn the_walker_allocates_nothing() {
    // 512 live entries fill several 64-command batches.
    for live in [1, 8, 512] {
        for trash in [false, true] {
            for design in Design::ALL {
                assert_eq!(allocations(live, trash, design), 0, "{} live {live} trash {trash}", design.name());
            }
        }
    }
}

//! Data choices that belong to the schedule.

use crate::backend::{backend, Backend};

thread_local! {
    static STD_RNG: std::cell::Cell<u64> = const { std::cell::Cell::new(0x9e37_79b9_7f4a_7c15) };
}

/// A choice in `0..n` (n > 0) that belongs to the schedule: under shuttle it
/// comes from the scheduler's seeded source, so a replay makes the same
/// choice. Real threads use a per-thread xorshift (their interleaving is not
/// reproducible anyway). Loom explores no data choices: always 0.
pub fn random_below(n: u64) -> u64 {
    let r = match backend() {
        Backend::Shuttle => shuttle::rand::RngCore::next_u64(&mut shuttle::rand::thread_rng()),
        Backend::Std | Backend::Native => STD_RNG.with(|s| {
            let mut x = s.get();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            s.set(x);
            x
        }),
        Backend::Loom => 0,
    };
    r % n
}

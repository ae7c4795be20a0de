//! Running a body over many seeded shuttle schedules.

use shuttle::scheduler::RandomScheduler;
use shuttle::{Config, Runner};
use smmu_sync::{enter, Backend};
use std::sync::{Arc, Mutex};

/// How many of `schedules` seeded random schedules of `body` return true.
pub fn count_schedules(seed: u64, schedules: usize, body: impl Fn() -> bool + Send + Sync + 'static) -> usize {
    let hits = Arc::new(Mutex::new(0usize));
    let h = hits.clone();
    Runner::new(RandomScheduler::new_from_seed(seed, schedules), Config::new()).run(move || {
        let _b = enter(Backend::Shuttle);
        if body() {
            *h.lock().unwrap() += 1;
        }
    });
    let n = *hits.lock().unwrap();
    n
}

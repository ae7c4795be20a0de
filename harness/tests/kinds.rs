//! The violation kinds no catalogued mutant plants: a model thread that
//! panics outside the oracle's checks is reported as a `panic`, with a
//! schedule that replays to it, not lost and not taken for another kind.

use harness::config::{ExploreKind, SchedulerKind};
use harness::run::{explore, Plan};
use scenarios::{Outcome, Params, Scenario};

/// One thread indexes past the end of a vector on some schedules: the
/// other thread's store must come first, as a model bug's would.
static PANICS: Scenario = Scenario::new("panics", "a model thread that panics", 2, 200, |_| {
    let flag = std::sync::Arc::new(smmu_sync::AtomicU64::new(0));
    let f = flag.clone();
    let t = smmu_sync::spawn(move || f.store(3, smmu_sync::Ordering::SeqCst));
    let v = [0u64; 2];
    let at = flag.load(smmu_sync::Ordering::SeqCst) as usize;
    let _ = std::hint::black_box(v[at]);
    let _ = t.join();
    Outcome::default()
});

#[test]
fn a_model_thread_that_panics_is_reported_as_a_panic() {
    let plan = Plan {
        scheduler: SchedulerKind::Pct,
        seed: 1,
        schedules: PANICS.schedules,
        depth: 3,
        deadline: None,
        max_steps: None,
        known: None,
        past_new: false,
        policy: (None, 0),
        explore: ExploreKind::Fresh,
        want: None,
        race: None,
        fresh: Vec::new(),
    };
    let stats = explore(&PANICS, Params::plain(&PANICS, engine::Engine::Fenced, 1), plan);
    let found = stats.found.expect("some schedule runs the store first");
    assert_eq!(found.kind, "panic", "{}", found.detail);
    assert!(found.detail.contains("index out of bounds"), "{}", found.detail);
}

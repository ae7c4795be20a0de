//! The CI guard on the native fast path: each design's invalidation at 8
//! live entries, run natively, must make no simulated access (a count, not
//! a timing: CI machines are too noisy for timing gates). Prints each
//! design's time per call (the median of rounds that alternate the
//! designs) and the epoch design's ratio to the floor, for the log. Exit 1 if any simulated access was made. With design
//! names as arguments, only those run (for a profiler).

use benches::{fixture, Design};
use smmu_sync::{enter, simulated_accesses, Backend};
use std::process::ExitCode;
use std::time::Instant;

/// Calls timed per design: `$FAST_PATH_CALLS`, default 200 000.
fn calls() -> u32 {
    std::env::var("FAST_PATH_CALLS").ok().and_then(|s| s.parse().ok()).unwrap_or(200_000)
}

/// Rounds the calls are split into.
const ROUNDS: u32 = 20;

fn main() -> ExitCode {
    let _native = enter(Backend::Native);
    let f = fixture(8, false, false);
    let calls = calls();
    let only: Vec<String> = std::env::args().skip(1).collect();
    let runs: Vec<Design> =
        Design::ALL.into_iter().filter(|d| only.is_empty() || only.iter().any(|n| n == d.name())).collect();
    let cpus: Vec<_> = runs.iter().map(|&d| f.driver(d).cpu(1)).collect();
    for (&design, cpu) in runs.iter().zip(&cpus) {
        for _ in 0..calls / 10 {
            f.invalidate(design, cpu);
        }
    }
    // Rounds alternate the designs, so a stretch of machine noise lands
    // on all of them alike; each design's figure is its median round.
    let mut rounds: Vec<Vec<f64>> = vec![Vec::new(); Design::ALL.len()];
    let before = simulated_accesses();
    for _ in 0..ROUNDS {
        for (&design, cpu) in runs.iter().zip(&cpus) {
            let t = Instant::now();
            for _ in 0..calls / ROUNDS {
                f.invalidate(design, cpu);
            }
            rounds[design as usize].push(t.elapsed().as_nanos() as f64 / f64::from(calls / ROUNDS));
        }
    }
    let simulated = simulated_accesses() - before;
    let median: Vec<f64> = rounds
        .iter_mut()
        .map(|r| {
            r.sort_by(f64::total_cmp);
            r.get(r.len() / 2).copied().unwrap_or(f64::NAN)
        })
        .collect();
    for &design in &runs {
        println!("{:<8} {:>8.1} ns/call (median of {ROUNDS} rounds)", design.name(), median[design as usize]);
    }
    println!("simulated accesses: {simulated}");
    let leaked = simulated != 0;
    let ratio = |d: Design| median[d as usize] / median[Design::Bare as usize];
    println!(
        "read side at 8 entries: epoch {:.2}x bare, rwlock {:.2}x bare",
        ratio(Design::Epoch),
        ratio(Design::RwLock)
    );
    if leaked {
        eprintln!("fast-path: the native fast path went through the simulation");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

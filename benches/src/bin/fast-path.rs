//! The CI guard on the native fast path: each design's invalidation at 8
//! live entries, run natively, must make no simulated access (a count, not
//! a timing: CI machines are too noisy for timing gates). Prints each
//! design's mean time per call and the epoch design's ratio to the floor,
//! for the log. Exit 1 if any simulated access was made. With design
//! names as arguments, only those run (for a profiler).

use benches::{fixture, Design};
use smmu_sync::{enter, simulated_accesses, Backend};
use std::process::ExitCode;
use std::time::Instant;

/// Calls timed per design: `$FAST_PATH_CALLS`, default 200 000.
fn calls() -> u32 {
    std::env::var("FAST_PATH_CALLS").ok().and_then(|s| s.parse().ok()).unwrap_or(200_000)
}

fn main() -> ExitCode {
    let _native = enter(Backend::Native);
    let f = fixture(8, false, false);
    let mut mean = Vec::new();
    let mut leaked = false;
    let calls = calls();
    let only: Vec<String> = std::env::args().skip(1).collect();
    for design in Design::ALL {
        if !only.is_empty() && !only.iter().any(|n| n == design.name()) {
            mean.push(f64::NAN);
            continue;
        }
        let cpu = f.driver(design).cpu(1);
        for _ in 0..calls / 10 {
            f.invalidate(design, &cpu);
        }
        let before = simulated_accesses();
        let t = Instant::now();
        for _ in 0..calls {
            f.invalidate(design, &cpu);
        }
        let ns = t.elapsed().as_nanos() as f64 / f64::from(calls);
        let simulated = simulated_accesses() - before;
        leaked |= simulated != 0;
        println!("{:<8} {ns:>8.1} ns/call  simulated accesses: {simulated}", design.name());
        mean.push(ns);
    }
    let ratio = |d: Design| mean[d as usize] / mean[Design::Bare as usize];
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

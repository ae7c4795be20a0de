//! What running the series' own C costs against its Rust translation: the
//! same scenarios, seeds, PCT depth and schedule counts under `--engine v9`
//! and `--engine c`, past v9's known findings (which are the C's too), so
//! that both run every schedule, each the fastest of three alternating
//! runs. Reports µs per schedule and per step and the C's cost as a
//! multiple of v9's; the target is at most 1.5x per schedule. Needs the series: `SMMU_SERIES=PATH cargo bench --bench
//! c_design` (without it the bench says so and exits 0).

use engine::Engine;
use harness::config::{ExploreKind, SchedulerKind};
use harness::known::Known;
use harness::run::{explore, Plan};
use scenarios::Params;
use std::time::Instant;

const SCHEDULES: u64 = 10_000;
/// Each engine runs each scenario this many times, alternating, and keeps
/// its fastest: the machine's noise only ever adds time.
const ROUNDS: usize = 3;
const SEED: u64 = 2026;
const SCENARIOS: [&str; 7] =
    ["unmap-vs-detach", "ats-toggle", "replace", "two-smmus", "nesting-s1-clear", "irq-unmap", "swarm"];

fn main() {
    let Some(paths) = engine::c::series_from_env() else {
        println!("c_design: skipped, SMMU_SERIES is not set");
        return;
    };
    let series = match engine::c::Series::load(&paths) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("c_design: {e}");
            std::process::exit(2);
        }
    };
    engine::c::install(series);
    harness::run::install_panic_hook();
    let known_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../findings/v9-known.json");
    let known: &'static Known = Box::leak(Box::new(Known::load(std::path::Path::new(known_path)).expect("v9-known")));
    println!(
        "{:<18} {:>9} {:>11} {:>11} {:>10} {:>10} {:>7}",
        "scenario", "schedules", "v9 µs/sch", "c µs/sch", "v9 ns/stp", "c ns/stp", "c/v9"
    );
    let (mut total_v9, mut total_c) = (0.0, 0.0);
    for name in SCENARIOS {
        let sc = scenarios::find(name).expect("a catalogue scenario");
        let cost = |engine: Engine| {
            let params = Params::plain(sc, engine, SEED);
            let plan = Plan {
                scheduler: SchedulerKind::Pct,
                seed: SEED,
                schedules: SCHEDULES,
                depth: 10,
                deadline: None,
                max_steps: None,
                known: Some(known),
                past_new: true,
                policy: (None, 0),
                explore: ExploreKind::Fresh,
                want: None,
                race: None,
                fresh: Vec::new(),
            };
            let t = Instant::now();
            let r = explore(sc, params, plan);
            let secs = t.elapsed().as_secs_f64();
            if let Some(f) = &r.found {
                println!("  {name} on {}: a failure v9's file does not know: {} {}", engine.name(), f.kind, f.detail);
            }
            (secs * 1e6 / r.schedules.max(1) as f64, secs * 1e9 / r.steps.max(1) as f64, secs)
        };
        let fastest = |a: (f64, f64, f64), b: (f64, f64, f64)| if b.2 < a.2 { b } else { a };
        let (mut v9, mut c) = (cost(Engine::V9), cost(Engine::C));
        for _ in 1..ROUNDS {
            v9 = fastest(v9, cost(Engine::V9));
            c = fastest(c, cost(Engine::C));
        }
        let ((v9_sch, v9_stp, v9_s), (c_sch, c_stp, c_s)) = (v9, c);
        total_v9 += v9_s;
        total_c += c_s;
        println!(
            "{name:<18} {SCHEDULES:>9} {v9_sch:>11.1} {c_sch:>11.1} {v9_stp:>10.0} {c_stp:>10.0} {:>6.2}x",
            c_sch / v9_sch
        );
    }
    println!("c_design/total     {:.1} s v9, {:.1} s c: {:.2}x per schedule", total_v9, total_c, total_c / total_v9);
}

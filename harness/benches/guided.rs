//! Guided against fresh exploration, seed by seed: `cargo bench -p harness
//! --bench guided`. For each seed, `stress --scenario swarm --mutants M
//! --explore fresh` and `--explore feedback` (PCT, `--jobs 2`); prints the
//! schedules each took to catch each mutant and which way made the catching
//! schedule, each explore's median and their ratio. Medians of a few seeds
//! are coarse, but a guided run makes the fresh run's own schedules between
//! its own, so each seed also says which came first: the count of seeds a
//! guided schedule was first at, against the share of the schedules that
//! are guided (a guide no better per schedule than the `--scheduler`) and
//! that share weighted by the guided schedules' measured length (no better
//! per step), with the binomial tail of each.
//!
//! `GUIDED_SEEDS` (default `1-10`), `GUIDED_MUTANTS` (default the three
//! slowest), `GUIDED_ITERATIONS` (default: `stress`'s own budget per
//! mutant, 200 000 for the swarm).

use harness::guide::{fresh_in, GUIDED_ONE_IN};
use serde_json::Value;
use std::process::Command;

const SLOWEST: &str = "no-tlb-flush-before-ats,read-lock-in-irq-without-irqsave,ats-off-without-grace-period";
/// `stress`'s budget per mutant on the swarm without `--iterations`.
const DEFAULT_BUDGET: u64 = 200_000;
/// Schedules of the length measurement: two guided chunks.
const COST_SCHEDULES: u64 = 20_000;

fn stress(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_stress"))
        .args(args)
        .args(["--json", "--out", &std::env::temp_dir().join("guided-bench").display().to_string()])
        .output()
        .expect("stress runs");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        let err = String::from_utf8_lossy(&out.stderr);
        fail(&format!("stress {}: {}", args.join(" "), err.lines().last().unwrap_or("no output")))
    })
}

/// A bad setting or a `stress` that gave no table: one line, exit 2.
fn fail(msg: &str) -> ! {
    eprintln!("guided: {msg}");
    std::process::exit(2)
}

fn seeds() -> Vec<u64> {
    let spec = std::env::var("GUIDED_SEEDS").unwrap_or_else(|_| "1-10".into());
    let range = |s: &str| -> Option<Vec<u64>> {
        match s.split_once('-') {
            Some((a, b)) => Some((a.parse().ok()?..=b.parse().ok()?).collect()),
            None => Some(vec![s.parse().ok()?]),
        }
    };
    spec.split(',')
        .flat_map(|s| range(s.trim()).unwrap_or_else(|| fail(&format!("GUIDED_SEEDS: not a seed list: {spec}"))))
        .collect()
}

/// Schedules to catch (`None`: a miss) and the way that made the
/// catching schedule, by mutant.
fn caught(v: &Value) -> Vec<(String, Option<u64>, String)> {
    let rows = v["mutants"].as_array().expect("a mutant table");
    rows.iter()
        .map(|m| {
            let n = m["caught"].as_bool().unwrap_or(false).then(|| m["schedules_to_failure"].as_u64()).flatten();
            let by = m["failure"]["made_by"].as_str().unwrap_or("-").to_string();
            (m["name"].as_str().unwrap_or("?").to_string(), n, by)
        })
        .collect()
}

/// One seed's catch of one mutant: fresh, guided, and the way that made
/// the guided run's catching schedule.
struct Seed {
    seed: u64,
    fresh: Option<u64>,
    guided: Option<u64>,
    made_by: String,
}

fn median(mut xs: Vec<u64>) -> f64 {
    xs.sort_unstable();
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2] as f64
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) as f64 / 2.0
    }
}

/// P(X >= k) for X ~ Binomial(n, p).
fn tail(k: usize, n: usize, p: f64) -> f64 {
    let choose = |n: usize, i: usize| (0..i).fold(1.0, |c, j| c * (n - j) as f64 / (j + 1) as f64);
    (k..=n).map(|i| choose(n, i) * p.powi(i as i32) * (1.0 - p).powi((n - i) as i32)).sum()
}

/// Steps per schedule of the swarm's schedules made `explore`.
fn length(explore: &str) -> f64 {
    let n = COST_SCHEDULES.to_string();
    let v = stress(&["--scenario", "swarm", "--iterations", &n, "--seed", "7", "--jobs", "1", "--explore", explore]);
    let run = &v["runs"][0];
    run["steps"].as_f64().expect("steps") / run["schedules"].as_f64().expect("schedules")
}

fn main() {
    let mutants = std::env::var("GUIDED_MUTANTS").unwrap_or_else(|_| SLOWEST.into());
    let iterations = std::env::var("GUIDED_ITERATIONS").ok();
    let budget = iterations.as_deref().map_or(DEFAULT_BUDGET, |s| {
        s.parse().unwrap_or_else(|_| fail(&format!("GUIDED_ITERATIONS: not a count: {s}")))
    });
    let seeds = seeds();
    // Guided schedules' length over fresh ones', from the two explores'
    // mean lengths and the share of guided schedules in the measured run.
    let (fresh_len, guided_run_len) = (length("fresh"), length("feedback"));
    let chunk = COST_SCHEDULES / 2;
    let share = 1.0 - fresh_in(chunk) as f64 / chunk as f64;
    let longer = 1.0 + (guided_run_len / fresh_len - 1.0) / share;
    // After a chunk's warm-up one schedule in GUIDED_ONE_IN is guided:
    // the most a guide no better than fresh would be first.
    let by_schedule = 1.0 / GUIDED_ONE_IN as f64;
    let by_step = by_schedule * longer / (1.0 - by_schedule + by_schedule * longer);
    println!(
        "steps per schedule: fresh {fresh_len:.1}, feedback {guided_run_len:.1}; a guided schedule {longer:.2}x a fresh one"
    );
    let mut rows: Vec<(String, Vec<Seed>)> = Vec::new();
    for &seed in &seeds {
        let s = seed.to_string();
        let run = |explore: &str| {
            let mut args = vec!["--scenario", "swarm", "--mutants", &mutants, "--seed", &s, "--jobs", "2"];
            args.extend(["--explore", explore, "--shrink-budget", "0"]);
            if let Some(n) = iterations.as_deref() {
                args.extend(["--iterations", n]);
            }
            caught(&stress(&args))
        };
        let (fresh, guided) = (run("fresh"), run("feedback"));
        eprintln!("guided: seed {seed} run both ways");
        for ((name, f, _), (_, g, by)) in fresh.into_iter().zip(guided) {
            let at = match rows.iter().position(|r| r.0 == name) {
                Some(i) => i,
                None => {
                    rows.push((name, Vec::new()));
                    rows.len() - 1
                }
            };
            rows[at].1.push(Seed { seed, fresh: f, guided: g, made_by: by });
        }
    }
    let show = |n: Option<u64>| n.map_or(format!(">{budget}"), |n| n.to_string());
    for (name, per_seed) in &rows {
        println!("\n{name}");
        println!("{:>6} {:>10} {:>10}  made by", "seed", "fresh", "feedback");
        for r in per_seed {
            println!("{:>6} {:>10} {:>10}  {}", r.seed, show(r.fresh), show(r.guided), r.made_by);
        }
        let med =
            |pick: fn(&Seed) -> Option<u64>| median(per_seed.iter().map(|r| pick(r).unwrap_or(budget + 1)).collect());
        let (mf, mg) = (med(|r| r.fresh), med(|r| r.guided));
        let decided = per_seed.iter().filter(|r| r.fresh.is_some() || r.guided.is_some()).count();
        let first =
            per_seed.iter().filter(|r| r.guided.is_some() && matches!(r.made_by.as_str(), "ending" | "havoc")).count();
        println!(
            "median fresh {mf}, feedback {mg} ({:.2}); a guided schedule first at {first} of {decided} seeds: \
             p {:.4} against no better per schedule (first at {by_schedule:.2}), p {:.4} per step ({by_step:.2})",
            mg / mf,
            tail(first, decided, by_schedule),
            tail(first, decided, by_step),
        );
    }
}

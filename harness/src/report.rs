//! Reports: a table for people, and the JSON contract of DESIGN.md.

use crate::config::Config;
use crate::run::{Found, RunStats};
use hwmodel::Goal;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize)]
pub struct FailureRow {
    pub kind: String,
    /// Its cause (`hwmodel::signature`), kept by shrinking.
    pub signature: String,
    pub schedule_index: u64,
    pub replay_file: String,
    pub trace_hash: u64,
    pub detail: String,
    pub shrunk_file: Option<String>,
    /// The picture of the shrunk (or else the original) interleaving.
    pub picture: Option<String>,
    /// Preemptions and scheduling steps, before and after shrinking.
    pub preemptions: usize,
    pub steps: u64,
    pub shrunk_preemptions: Option<usize>,
    pub shrunk_steps: Option<u64>,
    pub shrink_seconds: Option<f64>,
    /// Whether replaying the schedule gave the same trace hash.
    pub replay_matches: Option<bool>,
    /// How the schedule was made (`run::Found::made_by`): `fresh` by the
    /// `--scheduler`, a guide's `ending` or `havoc`, or `recording` on a
    /// replay.
    pub made_by: Option<&'static str>,
}

impl FailureRow {
    pub fn new(f: &Found, schedule_index: u64, replay_file: String) -> Self {
        Self {
            kind: f.kind.clone(),
            signature: f.signature.clone(),
            schedule_index,
            replay_file,
            trace_hash: f.trace_hash,
            detail: f.detail.clone(),
            shrunk_file: None,
            picture: None,
            preemptions: f.schedule.preemptions(),
            steps: f.schedule.steps,
            shrunk_preemptions: None,
            shrunk_steps: None,
            shrink_seconds: None,
            replay_matches: None,
            made_by: f.made_by,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct RunRow {
    /// The run's configuration for this scenario (`rwlock` and `fault_ppm`
    /// null where the scenario chose).
    #[serde(flatten)]
    pub config: Config,
    pub schedules: u64,
    pub steps: u64,
    pub seconds: f64,
    pub schedules_per_sec: f64,
    pub steps_per_sec: f64,
    pub violations: u64,
    /// A hash over every schedule's trace: the same seed and options give
    /// the same value.
    pub trace_hash: u64,
    /// Stale hits by age in completed CMD_SYNCs since the unmap returned.
    pub stale_ages: BTreeMap<u64, u64>,
    /// How often each coverage goal this engine can reach was reached.
    pub coverage: BTreeMap<&'static str, u64>,
    /// PCT's guarantee for a depth-3 bug over this run, if it ran PCT.
    pub pct: Option<PctGuarantee>,
    /// Schedules that showed a known finding (`--known`), by its id.
    pub known: BTreeMap<String, u64>,
    /// With `--known`, every distinct signature the run saw, known or
    /// new, like a crash dashboard.
    pub signatures: Vec<SignatureRow>,
    pub failure: Option<FailureRow>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SignatureRow {
    pub signature: String,
    /// The known finding's id; none for a new one.
    pub id: Option<String>,
    pub count: u64,
    pub first_schedule: u64,
    /// Its first failure's shrunk (else original) replay file; none past
    /// the number a run records.
    pub replay: Option<String>,
}

/// After `schedules` PCT schedules of depth `depth` or more, with at most
/// `threads` threads and `steps` steps each, a bug of depth `depth` is
/// missed with probability at most `miss`.
#[derive(Clone, Debug, Serialize)]
pub struct PctGuarantee {
    pub depth: usize,
    pub schedules: u64,
    pub threads: usize,
    pub steps: u64,
    pub miss: f64,
}

/// The depth PCT's guarantee is stated for.
const GUARANTEE_DEPTH: usize = 3;

impl RunRow {
    /// `replays`: the replay file of each signature's first failure.
    pub fn new(config: &Config, s: &RunStats, failure: Option<FailureRow>, replays: &BTreeMap<String, String>) -> Self {
        let secs = s.elapsed.as_secs_f64().max(1e-9);
        let engine = config.world.engine;
        Self {
            config: config.clone(),
            schedules: s.schedules,
            steps: s.steps,
            seconds: s.elapsed.as_secs_f64(),
            schedules_per_sec: s.schedules as f64 / secs,
            steps_per_sec: s.steps as f64 / secs,
            violations: (s.signatures.values().filter(|g| g.id.is_none()).count() as u64)
                .max(u64::from(failure.is_some())),
            trace_hash: s.trace_hash,
            stale_ages: s.stale_ages.clone(),
            coverage: s.coverage.iter().filter(|(g, _)| engine.can_reach(*g)).map(|(g, n)| (g.name(), n)).collect(),
            pct: s.pct_miss(GUARANTEE_DEPTH).map(|miss| PctGuarantee {
                depth: GUARANTEE_DEPTH,
                schedules: s.pct_runs(GUARANTEE_DEPTH),
                threads: s.max_threads,
                steps: s.max_steps,
                miss,
            }),
            known: s.known(),
            signatures: s
                .signatures
                .iter()
                .map(|(sig, seen)| SignatureRow {
                    signature: sig.clone(),
                    id: seen.id.clone(),
                    count: seen.count,
                    first_schedule: seen.first.index,
                    replay: replays.get(sig).cloned(),
                })
                .collect(),
            failure,
        }
    }

    fn goals_reached(&self) -> usize {
        self.coverage.values().filter(|n| **n > 0).count()
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct MutantRow {
    pub name: &'static str,
    pub scenario: &'static str,
    pub caught: bool,
    pub schedules_to_failure: Option<u64>,
    pub seconds: f64,
    /// What the run failed on, if it did; caught only as `expected_kind`.
    pub kind: Option<String>,
    pub expected_kind: &'static str,
    /// The failure file, its shrunk copy and picture, and how much smaller.
    pub failure: Option<FailureRow>,
}

/// Human text goes to stdout, or to stderr when stdout carries JSON.
fn say(json: bool, text: &str) {
    if json {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
}

fn ages(a: &BTreeMap<u64, u64>) -> String {
    if a.is_empty() {
        return "-".into();
    }
    a.iter().map(|(age, n)| format!("{age}:{n}")).collect::<Vec<_>>().join(" ")
}

pub fn runs(json: bool, seed: u64, rows: &[RunRow]) {
    let mut t = format!(
        "{:<18} {:>9} {:>10} {:>12} {:>6} {:>8} {:>10}  {}\n",
        "scenario", "schedules", "sched/s", "steps/s", "goals", "viol", "seconds", "stale ages (syncs:hits)"
    );
    for r in rows {
        t.push_str(&format!(
            "{:<18} {:>9} {:>10.0} {:>12.0} {:>6} {:>8} {:>10.2}  {}\n",
            r.config.scenario,
            r.schedules,
            r.schedules_per_sec,
            r.steps_per_sec,
            format!("{}/{}", r.goals_reached(), r.coverage.len()),
            r.violations,
            r.seconds,
            ages(&r.stale_ages)
        ));
    }
    // Goals a run never reached say the generator missed them; one
    // schedule (a replay) says nothing of the kind.
    for r in rows.iter().filter(|r| r.config.scenario == "swarm" && r.schedules > 1) {
        let missed: Vec<&str> = r.coverage.iter().filter(|(_, n)| **n == 0).map(|(g, _)| *g).collect();
        if !missed.is_empty() {
            t.push_str(&format!("{}: goals never reached: {}\n", r.config.scenario, missed.join(", ")));
        }
    }
    // A hand-written scenario that misses a state it is written to reach
    // no longer tests what it is named for.
    for r in rows.iter().filter(|r| r.schedules > 1) {
        let Some(sc) = scenarios::find(&r.config.scenario) else { continue };
        let missed: Vec<&str> =
            sc.goals.iter().map(|g| g.name()).filter(|g| r.coverage.get(g).is_some_and(|n| *n == 0)).collect();
        if !missed.is_empty() {
            t.push_str(&format!("{}: its own goals never reached: {}\n", sc.name, missed.join(", ")));
        }
    }
    // What a clean run measured, one line per run when few ran, the
    // generator's alone in a full run: the goals reached and the rarest.
    // (PCT's bound stays in the JSON: at these step counts it promises
    // nothing.)
    for r in rows.iter().filter(|r| (rows.len() <= 2 || r.config.scenario == "swarm") && r.schedules > 1) {
        let order = |g: &str| Goal::ALL.iter().any(|k| k.name() == g && k.is_order());
        let reached = |f: &dyn Fn(&str) -> bool| {
            let all: Vec<_> = r.coverage.iter().filter(|(g, _)| f(g)).collect();
            (all.iter().filter(|(_, n)| **n > 0).count(), all.len())
        };
        let (states, of_states) = reached(&|g| !order(g));
        let (orders, of_orders) = reached(&order);
        let mut rare: Vec<(&str, u64)> = r.coverage.iter().filter(|(_, n)| **n > 0).map(|(g, n)| (*g, *n)).collect();
        rare.sort_by_key(|(g, n)| (*n, *g));
        let rarest: Vec<String> = rare.iter().take(3).map(|(g, n)| format!("{g} {n}")).collect();
        t.push_str(&format!(
            "{}: {} schedules reached {states}/{of_states} state goals and {orders}/{of_orders} interleaving goals; \
             rarest: {}\n",
            r.config.scenario,
            r.schedules,
            rarest.join(", ")
        ));
    }
    for r in rows.iter().filter(|r| !r.signatures.is_empty()) {
        t.push_str(&format!("{}: distinct signatures\n", r.config.scenario));
        t.push_str(&format!("  {:<28} {:>8} {:>10}  signature\n", "finding", "count", "first"));
        for g in &r.signatures {
            let id = g.id.clone().unwrap_or_else(|| "NEW".into());
            t.push_str(&format!("  {id:<28} {:>8} {:>10}  {}\n", g.count, g.first_schedule, g.signature));
            if let Some(replay) = &g.replay {
                t.push_str(&format!("  {:<28} {:>8} {:>10}  replay: {replay}\n", "", "", ""));
            }
        }
    }
    let violations: u64 = rows.iter().map(|r| r.violations).sum();
    t.push_str(&format!("seed {seed}: {} scenarios, {violations} violations\n", rows.len()));
    say(json, &t);
    if json {
        let v = serde_json::json!({ "seed": seed, "runs": rows, "violations": violations });
        println!("{v}");
    }
}

pub fn mutants(json: bool, rows: &[MutantRow]) {
    let mut t = format!(
        "{:<36} {:<18} {:>7} {:>10} {:>8}  {:<23} {:>13} {:>11}  {}\n",
        "mutant", "scenario", "caught", "schedules", "seconds", "as", "preemptions", "steps", "made by"
    );
    for r in rows {
        let shrunk =
            |before: usize, after: Option<usize>| after.map_or(before.to_string(), |a| format!("{before}->{a}"));
        let (pre, steps) = r.failure.as_ref().map_or(("-".into(), "-".into()), |f| {
            (shrunk(f.preemptions, f.shrunk_preemptions), shrunk(f.steps as usize, f.shrunk_steps.map(|s| s as usize)))
        });
        t.push_str(&format!(
            "{:<36} {:<18} {:>7} {:>10} {:>8.2}  {:<23} {:>13} {:>11}  {}\n",
            r.name,
            r.scenario,
            match (r.caught, &r.kind) {
                (true, _) => "yes",
                (false, Some(_)) => "other",
                (false, None) => "NO",
            },
            r.schedules_to_failure.map_or("-".into(), |n| n.to_string()),
            r.seconds,
            match &r.kind {
                Some(k) if k != r.expected_kind => format!("{k} (not {})", r.expected_kind),
                k => k.clone().unwrap_or_else(|| "-".into()),
            },
            pre,
            steps,
            r.failure.as_ref().and_then(|f| f.made_by).unwrap_or("-")
        ));
    }
    let caught = rows.iter().filter(|r| r.caught).count();
    t.push_str(&format!("{caught}/{} mutants caught as the bug each plants\n", rows.len()));
    say(json, &t);
    if json {
        let v = serde_json::json!({ "mutants": rows, "caught": caught, "total": rows.len() });
        println!("{v}");
    }
}

//! Shrinking a failing schedule: fewer CPUs; a preferred task and starved
//! tasks for the default policy; then, replaying each candidate to its
//! first violation, delta debugging over the schedule's switches
//! (each dropped one lets the running task go on) and over its data choices
//! (each zeroed one takes the model's first option: no fault, no
//! interrupt, the smallest generated world, the first command to complete,
//! the oldest buffered store drained); then
//! each generated operation left out in turn. A candidate is kept if it
//! fails with the same signature (the same cause) and is no larger.

use crate::run::{self, Recorded, RunStats};
use scenarios::{Params, Scenario};
use std::time::Instant;

/// What the shrinker runs candidates with and keeps.
struct Shrinker {
    sc: &'static Scenario,
    params: Params,
    signature: String,
    max_steps: Option<u64>,
    deadline: Instant,
    best: RunStats,
}

/// A schedule's size: preemptions first, then steps, then live data.
fn size(r: &Recorded) -> (usize, u64, usize) {
    (r.preemptions(), r.steps, r.data.iter().filter(|v| **v != 0).count())
}

impl Shrinker {
    fn schedule(&self) -> &Recorded {
        &self.best.found.as_ref().expect("a failure").schedule
    }

    fn out_of_time(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Look for the failure in the world `p` describes: the current
    /// schedule first, then a short PCT search. Keeps what it finds.
    fn smaller_world(&mut self, p: Params) -> bool {
        if self.out_of_time() {
            return false;
        }
        let r = run::follow(self.sc, p, self.schedule(), self.max_steps);
        let r = if r.found.as_ref().is_some_and(|f| f.signature == self.signature) {
            r
        } else {
            let plan = run::Plan {
                scheduler: crate::config::SchedulerKind::Pct,
                seed: p.seed,
                schedules: 2000,
                depth: 3,
                deadline: Some(self.deadline),
                max_steps: self.max_steps,
                known: None,
                past_new: false,
                policy: (None, 0),
                explore: crate::config::ExploreKind::Fresh,
                want: None,
                race: None,
                fresh: Vec::new(),
            };
            run::explore(self.sc, p, plan)
        };
        let found = r
            .found
            .as_ref()
            .is_some_and(|f| f.signature == self.signature && f.schedule.steps <= self.schedule().steps);
        if found {
            self.params = p;
            self.best = r;
        }
        found
    }

    /// Replay `candidate`; keep it (as it actually ran) if it fails the
    /// same way and is no larger.
    fn try_keep(&mut self, candidate: Recorded) -> bool {
        let r = run::follow(self.sc, self.params, &candidate, self.max_steps);
        let keep = r
            .found
            .as_ref()
            .is_some_and(|f| f.signature == self.signature && size(&f.schedule) <= size(self.schedule()));
        if keep {
            self.best = r;
        }
        keep
    }

    /// Leave out each generated operation in turn (`Params::skip_ops`);
    /// keep the world if the schedule, as it is, still fails the same way
    /// in fewer steps. A scenario without generated operations ignores the
    /// bits and so never shrinks here. (A short search in the world without
    /// the operation was tried too: what PCT finds there is never shorter
    /// than a shrunk schedule.)
    fn fewer_ops(&mut self) {
        for bit in 0..(self.params.cpus * scenarios::OPS_PER_WORKER).min(64) {
            if self.out_of_time() {
                return;
            }
            let p = Params { skip_ops: self.params.skip_ops | 1 << bit, ..self.params };
            if p.skip_ops == self.params.skip_ops {
                continue;
            }
            let r = run::follow(self.sc, p, self.schedule(), self.max_steps);
            let smaller = r.found.as_ref().is_some_and(|f| {
                f.signature == self.signature
                    && size(&f.schedule) <= size(self.schedule())
                    && f.schedule.steps < self.schedule().steps
            });
            if smaller {
                self.params = p;
                self.best = r;
            }
        }
    }

    /// The default policy: the thread the story is about first (each task
    /// in turn as the one the default runs whenever it can), and the threads
    /// it does not need before the violation starved (each in turn run only
    /// when nothing else can).
    fn policy(&mut self, tasks: usize) {
        for t in 1..tasks {
            if self.out_of_time() {
                return;
            }
            let candidate = Recorded { prefer: Some(t), ..self.schedule().clone() };
            self.try_keep(candidate);
        }
        for t in 1..tasks {
            if self.out_of_time() {
                return;
            }
            let starve = self.schedule().starve | 1 << t;
            let candidate = Recorded { starve, ..self.schedule().clone() };
            self.try_keep(candidate);
        }
    }

    /// Delta debugging over the items `pick` selects: try dropping chunks,
    /// halving the chunk size down to one item, until a pass drops nothing.
    fn ddmin(&mut self, count: fn(&Recorded) -> usize, drop: fn(&Recorded, std::ops::Range<usize>) -> Recorded) {
        let mut chunk = count(self.schedule()).div_ceil(2).max(1);
        loop {
            let mut dropped = false;
            let mut start = 0;
            while start < count(self.schedule()) {
                if self.out_of_time() {
                    return;
                }
                let end = (start + chunk).min(count(self.schedule()));
                if self.try_keep(drop(self.schedule(), start..end)) {
                    dropped = true;
                } else {
                    start = end;
                }
            }
            if chunk == 1 && !dropped {
                return;
            }
            chunk = (chunk / 2).max(1);
        }
    }
}

fn without_switches(r: &Recorded, range: std::ops::Range<usize>) -> Recorded {
    let mut r = r.clone();
    r.switches.drain(range);
    r
}

/// Zero the `range`th through last of the non-zero data choices.
fn zero_data(r: &Recorded, range: std::ops::Range<usize>) -> Recorded {
    let mut r = r.clone();
    let live: Vec<usize> = (0..r.data.len()).filter(|&k| r.data[k] != 0).collect();
    for &k in &live[range] {
        r.data[k] = 0;
    }
    r
}

fn live_data(r: &Recorded) -> usize {
    r.data.iter().filter(|v| **v != 0).count()
}

/// The smallest failure found within `budget`, with the CPU count it needs
/// and its replays stopping at the violation. Always at least as small as
/// the input.
pub fn shrink(
    sc: &'static Scenario,
    params: Params,
    found: RunStats,
    budget: std::time::Duration,
    max_steps: Option<u64>,
) -> (Params, RunStats) {
    let deadline = Instant::now() + budget;
    let signature = found.found.as_ref().map(|f| f.signature.clone()).unwrap_or_default();
    let params = Params { stop_at_violation: true, full_trace: false, ..params };
    let mut s = Shrinker { sc, params, signature, max_steps, deadline, best: found };
    // The input itself, ending at its violation.
    let input = s.schedule().clone();
    s.try_keep(input);
    // A smaller world first: fewer CPUs, then fewer pages, rounds and
    // operations; each found again by a short search, smallest first.
    for cpus in 1..params.cpus {
        if s.smaller_world(Params { cpus, ..s.params }) {
            break;
        }
    }
    for size in 1..=3 {
        if s.smaller_world(Params { size: Some(size), ..s.params }) {
            break;
        }
    }
    let tasks = s.best.max_threads.min(64);
    loop {
        let before = size(s.schedule());
        s.policy(tasks);
        s.ddmin(|r| r.switches.len(), without_switches);
        s.ddmin(live_data, zero_data);
        s.fewer_ops();
        if s.out_of_time() || size(s.schedule()) == before {
            break;
        }
    }
    (s.params, s.best)
}

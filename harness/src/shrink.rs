//! Shrinking a failing schedule: drop preemptions one at a time while the
//! same kind of violation still happens, then try fewer CPUs.

use crate::run::{self, Recorded, RunStats};
use scenarios::{Params, Scenario};
use shuttle::scheduler::{DataSource, RandomDataSource, Schedule, Scheduler, Task, TaskId};
use std::time::Instant;

/// Follows a recorded schedule, except that at decision `skip` it keeps the
/// running task if it can. Past a divergence it follows the recording
/// while the recorded task is runnable, else keeps the current task.
struct Guided {
    tasks: Vec<usize>,
    skip: usize,
    pos: usize,
    seed: u64,
    data: RandomDataSource,
    done: bool,
}

impl Scheduler for Guided {
    fn new_execution(&mut self) -> Option<Schedule> {
        if std::mem::replace(&mut self.done, true) {
            return None;
        }
        self.data = RandomDataSource::initialize(self.seed);
        Some(Schedule::new(self.seed))
    }

    fn next_task(&mut self, runnable: &[&Task], current: Option<TaskId>, _yielding: bool) -> Option<TaskId> {
        let k = self.pos;
        self.pos += 1;
        let can = |t: usize| runnable.iter().any(|r| usize::from(r.id()) == t);
        let keep = current.map(usize::from).filter(|&c| can(c));
        let want = self.tasks.get(k).copied().filter(|&t| can(t));
        let pick = match (k == self.skip, keep, want) {
            (true, Some(c), _) => c,
            (_, _, Some(t)) => t,
            (_, Some(c), None) => c,
            (_, None, None) => usize::from(runnable[0].id()),
        };
        Some(TaskId::from(pick))
    }

    fn next_u64(&mut self) -> u64 {
        self.data.next_u64()
    }
}

/// Indices of decisions that switched away from the previous task.
fn switch_points(s: &Recorded) -> Vec<usize> {
    let tasks: Vec<usize> = s.steps.iter().flatten().copied().collect();
    (1..tasks.len()).filter(|&k| tasks[k] != tasks[k - 1]).collect()
}

/// The smallest failure found within `budget`: its schedule, CPU count and
/// stats. Always at least as small as the input.
pub fn shrink(
    sc: &'static Scenario,
    params: Params,
    found: RunStats,
    budget: std::time::Duration,
    max_steps: Option<u64>,
) -> (Params, RunStats) {
    let deadline = Instant::now() + budget;
    let kind = found.found.as_ref().map(|f| f.kind.clone()).unwrap_or_default();
    let mut best = (params, found);
    // Fewer CPUs first: a smaller world shrinks faster.
    for cpus in 1..params.cpus {
        if Instant::now() >= deadline {
            break;
        }
        let p = Params { cpus, ..params };
        let plan = run::Plan {
            scheduler: crate::cli::SchedulerKind::Pct,
            seed: params.seed,
            schedules: 2000,
            depth: 3,
            deadline: Some(deadline),
            max_steps,
            known: None,
        };
        let r = run::explore(sc, p, plan);
        if r.found.as_ref().is_some_and(|f| f.kind == kind) {
            best = (p, r);
            break;
        }
    }
    loop {
        let schedule = best.1.found.as_ref().expect("a failure").schedule.clone();
        let tasks: Vec<usize> = schedule.steps.iter().flatten().copied().collect();
        let mut improved = false;
        for skip in switch_points(&schedule).into_iter().rev() {
            if Instant::now() >= deadline {
                return best;
            }
            let g = Guided {
                tasks: tasks.clone(),
                skip,
                pos: 0,
                seed: schedule.seed,
                data: RandomDataSource::initialize(schedule.seed),
                done: false,
            };
            let r = run::drive_with(sc, best.0, g, max_steps);
            let better =
                r.found.as_ref().is_some_and(|f| f.kind == kind && f.schedule.preemptions() < schedule.preemptions());
            if better {
                best.1 = r;
                improved = true;
                break;
            }
        }
        if !improved {
            return best;
        }
    }
}

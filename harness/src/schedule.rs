//! A schedule as data (`Recorded`), the default policy it is written
//! against, and the scheduler that replays one (`Follow`).

use serde::{Deserialize, Serialize};
use shuttle::scheduler::{Schedule, Scheduler, Task, TaskId};
use std::collections::{BTreeMap, VecDeque};

/// One scheduling decision that was not the default one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Switch {
    /// Where it happens: the task that had been running (`NO_TASK` before
    /// the first), the operation it was in (`smmu_sync::begin_segment`) and
    /// how many decisions had followed its steps in that operation before.
    /// Anchored to that task's own progress rather than to the schedule's
    /// step count, a switch stays where it was when a shrinker drops an
    /// earlier switch or leaves out an earlier operation.
    pub after: (usize, u64, u64),
    pub task: usize,
    /// Whether it took the CPU from a task that could have gone on.
    pub preempt: bool,
}

/// One schedule as data: each scheduling decision that differed from the
/// default (see `default_task`), and every data choice with the task that
/// drew it. That is enough to replay it exactly, and it is what a shrinker
/// edits: drop a switch and the default takes over there, zero a data
/// choice and the model takes its smallest option (every draw of 0 is).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    /// Scheduling decisions in all: the schedule's length in steps.
    pub steps: u64,
    /// A task the default runs whenever it can (a shrinker's choice: the
    /// thread whose steps the story is about, first).
    #[serde(default)]
    pub prefer: Option<usize>,
    /// Tasks (a bit each) the default runs only when nothing else can (a
    /// shrinker's choice: threads the story does not need before its end).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub starve: u64,
    pub switches: Vec<Switch>,
    pub data: Vec<u64>,
    /// The task, and its operation, that drew each of `data`: each gets its
    /// own draws back in order however the tasks interleave and whichever
    /// operations run.
    pub data_from: Vec<(usize, u64)>,
}

/// The "running task" before the first decision.
pub const NO_TASK: usize = usize::MAX;

/// Decisions so far that followed each task's steps in its current
/// operation: where a switch is anchored (`Switch::after`).
#[derive(Default)]
pub(crate) struct Progress {
    /// By task id: its operation and the decisions in it so far. The
    /// decision before any task ran is the only one after `NO_TASK`.
    decisions: Vec<(u64, u64)>,
    /// The task chosen last: the one drawing data now.
    pub(crate) running: usize,
}

impl Progress {
    /// A decision after `current`'s step: its anchor.
    pub(crate) fn decide(&mut self, current: Option<TaskId>) -> (usize, u64, u64) {
        let Some(c) = current.map(usize::from) else { return (NO_TASK, 0, 0) };
        if self.decisions.len() <= c {
            self.decisions.resize(c + 1, (0, 0));
        }
        let segment = smmu_sync::segment_of(c);
        let d = &mut self.decisions[c];
        if d.0 != segment {
            *d = (segment, 0);
        }
        d.1 += 1;
        (c, segment, d.1 - 1)
    }

    /// Who draws a data choice now.
    pub(crate) fn drawer(&self) -> (usize, u64) {
        (self.running, smmu_sync::segment_of(self.running))
    }
}

impl Recorded {
    /// Switches that took the CPU from a task that could have gone on.
    pub fn preemptions(&self) -> usize {
        self.switches.iter().filter(|s| s.preempt).count()
    }
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// What a schedule does where it says nothing, among the runnable tasks not
/// starved (all of them if every one is): the preferred task if it can run
/// and is not spinning; a task that yields (it is spinning) hands over to
/// the next runnable task in id order; otherwise the running task goes on;
/// a task that cannot, to the lowest runnable one.
pub(crate) fn default_task(
    runnable: &[&Task],
    current: Option<TaskId>,
    yielding: bool,
    (prefer, starve): (Option<usize>, u64),
) -> TaskId {
    let all: Vec<usize> = runnable.iter().map(|t| usize::from(t.id())).collect();
    let fed: Vec<usize> = all.iter().copied().filter(|&t| t >= 64 || starve >> t & 1 == 0).collect();
    let ids = if fed.is_empty() { all } else { fed };
    let cur = current.map(usize::from).filter(|c| ids.contains(c));
    if let Some(p) = prefer.filter(|p| ids.contains(p) && !(yielding && cur == Some(*p))) {
        return TaskId::from(p);
    }
    let pick = match cur {
        Some(c) if yielding => ids.iter().copied().filter(|&t| t > c).min().or_else(|| ids.iter().copied().min()),
        Some(c) => Some(c),
        None => ids.iter().copied().min(),
    };
    TaskId::from(pick.unwrap_or(0))
}

/// Replays a `Recorded`: its switches where the task can run, the default
/// elsewhere; each task's data choices, then zeros.
pub struct Follow {
    policy: (Option<usize>, u64),
    switches: BTreeMap<(usize, u64, u64), usize>,
    data: BTreeMap<(usize, u64), VecDeque<u64>>,
    progress: Progress,
    started: bool,
}

impl Follow {
    pub fn new(rec: Recorded) -> Self {
        let mut data: BTreeMap<(usize, u64), VecDeque<u64>> = BTreeMap::new();
        for (v, from) in rec.data.iter().zip(&rec.data_from) {
            data.entry(*from).or_default().push_back(*v);
        }
        Self {
            policy: (rec.prefer, rec.starve),
            switches: rec.switches.iter().map(|s| (s.after, s.task)).collect(),
            data,
            progress: Progress::default(),
            started: false,
        }
    }
}

impl Follow {
    /// The next decision: the task at `random` (an index into `runnable`)
    /// if given, else the recorded switch here if its task can run, else
    /// the default.
    pub(crate) fn choose(
        &mut self,
        runnable: &[&Task],
        current: Option<TaskId>,
        yielding: bool,
        random: Option<usize>,
    ) -> TaskId {
        let forced = self.switches.get(&self.progress.decide(current)).copied();
        let can = |t: usize| runnable.iter().any(|r| usize::from(r.id()) == t);
        let t = match (random, forced.filter(|&t| can(t))) {
            (Some(k), _) => runnable[k].id(),
            (None, Some(t)) => TaskId::from(t),
            (None, None) => default_task(runnable, current, yielding, self.policy),
        };
        self.progress.running = t.into();
        t
    }

    /// The running task's next recorded data choice, if it has one left.
    pub(crate) fn recorded_u64(&mut self) -> Option<u64> {
        self.data.get_mut(&self.progress.drawer()).and_then(|q| q.pop_front())
    }
}

impl Scheduler for Follow {
    fn new_execution(&mut self) -> Option<Schedule> {
        if std::mem::replace(&mut self.started, true) {
            return None;
        }
        Some(Schedule::new(0))
    }

    fn next_task(&mut self, runnable: &[&Task], current: Option<TaskId>, yielding: bool) -> Option<TaskId> {
        Some(self.choose(runnable, current, yielding, None))
    }

    fn next_u64(&mut self) -> u64 {
        self.recorded_u64().unwrap_or(0)
    }
}

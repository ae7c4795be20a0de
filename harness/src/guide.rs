//! Feedback-directed exploration (`--explore feedback`): a corpus of
//! recorded schedules kept because they reached a coverage goal, or a pair
//! of goals, that few schedules reach; each new schedule is either drawn
//! fresh by the `--scheduler` or a mutation of a corpus entry, entries near
//! rare goals chosen more often (AFL's corpus and energy, over schedules
//! and data choices instead of bytes). One guide per chunk, seeded from the
//! chunk's seed: what it finds does not depend on `--jobs`, and whatever it
//! runs is recorded like any schedule, so a failure replays alone.

use crate::schedule::{Follow, Recorded};
use hwmodel::{Coverage, Goal};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shuttle::scheduler::{DfsScheduler, PctScheduler, RandomScheduler, Schedule, Scheduler, Task, TaskId};
use std::collections::{BTreeSet, HashSet};

/// What a scheduler learns from a schedule it made, once it has ended:
/// the schedule as recorded, and the goals it reached.
pub trait Learn {
    fn learn(&mut self, _schedule: &Recorded, _reached: &Coverage) {}
}

impl Learn for PctScheduler {}
impl Learn for RandomScheduler {}
impl Learn for DfsScheduler {}
impl Learn for Follow {}

/// Corpus entries kept at most; a fuller corpus replaces its dullest.
const CORPUS: usize = 256;
/// One schedule in this many is drawn fresh once the corpus has entries:
/// the corpus can only lead where fresh schedules have been.
const FRESH_ONE_IN: u32 = 3;
/// A goal is rare while at most this share (per mille) of the chunk's
/// schedules reached it.
const RARE_PER_MILLE: u64 = 10;

struct Entry {
    schedule: Recorded,
    goals: Vec<Goal>,
    /// Its energy: how rare its goals are now (`Guide::rescore`).
    score: f64,
}

/// A corpus entry, mutated: followed like a recording, with some
/// decisions (by number) taken at random among the runnable tasks.
struct Mutated {
    follow: Follow,
    random_at: BTreeSet<u64>,
    decisions: u64,
}

pub struct Guide<S> {
    fresh: S,
    rng: ChaCha8Rng,
    corpus: Vec<Entry>,
    /// Schedules that reached each goal, and the goal pairs reached.
    reached: Vec<u64>,
    pairs: HashSet<(Goal, Goal)>,
    schedules: u64,
    left: u64,
    running: Option<Mutated>,
}

impl<S: Scheduler> Guide<S> {
    /// `schedules` schedules, the fresh ones drawn by `fresh`.
    pub fn new(fresh: S, seed: u64, schedules: u64) -> Self {
        Guide {
            fresh,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x6775_6964_6521),
            corpus: Vec::new(),
            reached: vec![0; Goal::ALL.len()],
            pairs: HashSet::new(),
            schedules: 0,
            left: schedules,
            running: None,
        }
    }

    /// How much an entry reaching `goals` is worth running again now.
    fn score(&self, goals: &[Goal]) -> f64 {
        goals.iter().map(|g| 1.0 / (1 + self.reached[*g as usize]) as f64).sum()
    }

    fn rescore(&mut self) {
        let scores: Vec<f64> = self.corpus.iter().map(|e| self.score(&e.goals)).collect();
        for (e, s) in self.corpus.iter_mut().zip(scores) {
            e.score = s;
        }
    }

    /// A corpus entry, by energy.
    fn pick(&mut self) -> usize {
        let total: f64 = self.corpus.iter().map(|e| e.score).sum();
        let mut x = self.rng.random::<f64>() * total;
        for (i, e) in self.corpus.iter().enumerate() {
            if x < e.score {
                return i;
            }
            x -= e.score;
        }
        self.corpus.len() - 1
    }

    /// Entry `i`'s schedule with one to four changes: a switch dropped,
    /// moved or given to another task, a decision made at random, a data
    /// choice's bit flipped or the whole choice redrawn, or another entry's
    /// data spliced in.
    fn mutate(&mut self, i: usize) -> Mutated {
        let mut r = self.corpus[i].schedule.clone();
        let mut random_at = BTreeSet::new();
        let tasks: Vec<usize> = r.data_from.iter().map(|d| d.0).chain(r.switches.iter().map(|s| s.task)).collect();
        for _ in 0..self.rng.random_range(1..=4) {
            let n = r.switches.len();
            match self.rng.random_range(0..7) {
                0 if n > 0 => drop(r.switches.remove(self.rng.random_range(0..n))),
                1 if n > 0 => {
                    let s = &mut r.switches[self.rng.random_range(0..n)];
                    let by = self.rng.random_range(1..=8);
                    s.after.2 = if self.rng.random() { s.after.2 + by } else { s.after.2.saturating_sub(by) };
                }
                2 if n > 0 && !tasks.is_empty() => {
                    r.switches[self.rng.random_range(0..n)].task = tasks[self.rng.random_range(0..tasks.len())];
                }
                3 if !r.data.is_empty() => {
                    let k = self.rng.random_range(0..r.data.len());
                    r.data[k] ^= 1 << self.rng.random_range(0..64);
                }
                4 if !r.data.is_empty() => {
                    let k = self.rng.random_range(0..r.data.len());
                    r.data[k] = self.rng.random();
                }
                5 if self.corpus.len() > 1 => {
                    let other = &self.corpus[self.rng.random_range(0..self.corpus.len())].schedule;
                    (r.data, r.data_from) = (other.data.clone(), other.data_from.clone());
                }
                _ => {
                    random_at.insert(self.rng.random_range(0..r.steps.max(1)));
                }
            }
        }
        Mutated { follow: Follow::new(r), random_at, decisions: 0 }
    }
}

impl<S: Scheduler> Learn for Guide<S> {
    fn learn(&mut self, schedule: &Recorded, reached: &Coverage) {
        self.schedules += 1;
        let goals: Vec<Goal> = reached.iter().filter(|(_, n)| *n > 0).map(|(g, _)| g).collect();
        let rare = |n: u64| n * 1000 <= self.schedules * RARE_PER_MILLE;
        let mut novel = goals.iter().any(|g| rare(self.reached[*g as usize]));
        for (k, a) in goals.iter().enumerate() {
            for b in &goals[k + 1..] {
                novel |= self.pairs.insert((*a, *b));
            }
        }
        for g in &goals {
            self.reached[*g as usize] += 1;
        }
        if self.schedules.is_power_of_two() || self.schedules.is_multiple_of(256) {
            self.rescore();
        }
        if !novel {
            return;
        }
        let score = self.score(&goals);
        let entry = Entry { schedule: schedule.clone(), goals, score };
        if self.corpus.len() < CORPUS {
            self.corpus.push(entry);
        } else if let Some(k) =
            (0..self.corpus.len()).min_by(|a, b| self.corpus[*a].score.total_cmp(&self.corpus[*b].score))
        {
            if self.corpus[k].score < score {
                self.corpus[k] = entry;
            }
        }
    }
}

impl<S: Scheduler> Scheduler for Guide<S> {
    fn new_execution(&mut self) -> Option<Schedule> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        if self.corpus.is_empty() || self.rng.random_ratio(1, FRESH_ONE_IN) {
            self.running = None;
            return self.fresh.new_execution();
        }
        let i = self.pick();
        self.running = Some(self.mutate(i));
        Some(Schedule::new(0))
    }

    fn next_task(&mut self, runnable: &[&Task], current: Option<TaskId>, yielding: bool) -> Option<TaskId> {
        let Some(m) = self.running.as_mut() else { return self.fresh.next_task(runnable, current, yielding) };
        let random = m.random_at.contains(&m.decisions).then(|| self.rng.random_range(0..runnable.len()));
        m.decisions += 1;
        Some(m.follow.choose(runnable, current, yielding, random))
    }

    fn next_u64(&mut self) -> u64 {
        let Some(m) = self.running.as_mut() else { return self.fresh.next_u64() };
        m.follow.recorded_u64().unwrap_or_else(|| self.rng.random())
    }
}

//! Feedback-directed exploration (`--explore feedback`). A guide makes the
//! fresh run's own schedules, in order (drawn by the `--scheduler` from the
//! fresh run's chunks over the same indices), and after a warm-up puts a
//! guided one after every two: a corpus entry, kept because it reached a
//! coverage goal or a pair of goals that few schedules reach, given a new
//! ending or small changes, entries near rare goals and each goal's
//! shortest chosen more often (AFL's corpus, energy and favoured entries,
//! over schedules and data choices instead of bytes). One guide per chunk,
//! seeded from the chunk's seed: what it finds does not depend on
//! `--jobs`, and whatever it runs is recorded like any schedule, so a
//! failure replays alone.

use crate::schedule::{Follow, Recorded};
use hwmodel::{Coverage, Goal};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shuttle::scheduler::{DfsScheduler, PctScheduler, RandomScheduler, Schedule, Scheduler, Task, TaskId};
use std::collections::{BTreeSet, HashSet};

/// What a scheduler learns from a schedule it made, once it has ended:
/// the schedule as recorded, and the goals it reached; and how it made
/// the schedule it runs now, so that a failure says whether a guide or
/// the `--scheduler` found it.
pub trait Learn {
    fn learn(&mut self, _schedule: &Recorded, _reached: &Coverage) {}
    fn made_by(&self) -> &'static str {
        "fresh"
    }
}

impl Learn for PctScheduler {}
impl Learn for RandomScheduler {}
impl Learn for DfsScheduler {}
impl Learn for Follow {
    fn made_by(&self) -> &'static str {
        "recording"
    }
}

/// Corpus entries kept at most; a fuller corpus replaces its dullest.
const CORPUS: usize = 256;
/// After the warm-up one schedule in this many is guided, the rest fresh:
/// the fresh run's schedules keep coming in order between the guided
/// ones, so a bug the fresh run catches at its n-th schedule a guided run
/// catches by about its (1.5n)-th, whatever the corpus does.
pub const GUIDED_ONE_IN: u64 = 3;
/// Each way of guiding is chosen at least this share of the time,
/// whatever it has yielded: one that yields nothing now may later.
const FLOOR: f64 = 0.1;
/// Schedules at the start of a chunk that are all fresh: the fresh run's
/// first ones, which catch the shallow bugs as soon as it does, and the
/// corpus's first entries.
const WARM: u64 = 1000;
/// How fast a way's yield forgets: about the last 1/(1-DECAY) schedules
/// made that way count.
const DECAY: f64 = 0.998;
/// The energy of an entry that is no goal's shortest, as a share.
const UNFAVOURED: f64 = 0.05;
/// A goal is rare while at most this share (per mille) of the chunk's
/// schedules reached it.
const RARE_PER_MILLE: u64 = 10;

/// The ways a guided schedule is made (a fresh one is drawn by the
/// `--scheduler`): a corpus entry's prefix with a new ending; a corpus
/// entry with one to four small changes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Way {
    Ending,
    Havoc,
}

const GUIDED: [Way; 2] = [Way::Ending, Way::Havoc];

/// What one way has yielded lately: schedules made, and of those the ones
/// the corpus kept, both decayed.
#[derive(Clone, Copy, Default)]
struct Yield {
    made: f64,
    kept: f64,
}

impl Yield {
    fn rate(self) -> f64 {
        (self.kept + 0.5) / (self.made + 1.0)
    }
}

struct Entry {
    schedule: Recorded,
    goals: Vec<Goal>,
    /// Its energy: how rare its goals are now (`Guide::rescore`).
    score: f64,
}

/// A corpus entry, mutated: followed like a recording, with some
/// decisions (by number) taken at random among the runnable tasks; with an
/// ending, from its decision on the running task goes on but is switched
/// away from at random (at the entry's own rate of switches) and data is
/// drawn anew: the entry's prefix, which reached a rare state, with a new
/// ending. Endings draw from the guide's own generator, so the fresh
/// schedules stay the fresh run's.
struct Mutated {
    follow: Follow,
    random_at: BTreeSet<u64>,
    ending: Option<Ending>,
    decisions: u64,
}

#[derive(Clone, Copy)]
struct Ending {
    from: u64,
    switch: f64,
}

impl Mutated {
    fn ending_now(&self) -> Option<Ending> {
        self.ending.filter(|e| self.decisions >= e.from)
    }
}

/// Fresh schedules among a guide's first `schedules`: its warm-up, then
/// all but one in `GUIDED_ONE_IN` (`Guide::choose_way`).
pub fn fresh_in(schedules: u64) -> u64 {
    let guided = schedules / GUIDED_ONE_IN - WARM.min(schedules) / GUIDED_ONE_IN;
    schedules - guided
}

pub struct Guide<S> {
    /// Fresh schedules come from each in turn, `per` from each: the fresh
    /// run's chunks over the same schedule indices, so a guided run makes
    /// the fresh run's schedules, in order, between its own.
    fresh: Vec<S>,
    per: u64,
    fresh_made: u64,
    /// The part the running fresh schedule comes from.
    part: usize,
    schedules_total: u64,
    rng: ChaCha8Rng,
    corpus: Vec<Entry>,
    /// Schedules that reached each goal, and the goal pairs reached.
    reached: Vec<u64>,
    pairs: HashSet<(Goal, Goal)>,
    schedules: u64,
    left: u64,
    running: Option<Mutated>,
    /// The way the running schedule was made (none: fresh), and what
    /// each way yields.
    way: Option<Way>,
    yields: [Yield; GUIDED.len()],
}

impl<S: Scheduler> Guide<S> {
    /// `schedules` schedules, the fresh ones drawn by each of `fresh` in
    /// turn, `per` from each.
    pub fn new(fresh: Vec<S>, per: u64, seed: u64, schedules: u64) -> Self {
        assert!(!fresh.is_empty(), "fresh schedules come from somewhere");
        Guide {
            per: per.max(1),
            fresh,
            fresh_made: 0,
            part: 0,
            schedules_total: schedules,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x6775_6964_6521),
            corpus: Vec::new(),
            reached: vec![0; Goal::ALL.len()],
            pairs: HashSet::new(),
            schedules: 0,
            left: schedules,
            running: None,
            way: None,
            yields: [Yield::default(); GUIDED.len()],
        }
    }

    /// How much an entry reaching `goals` is worth running again now.
    fn score(&self, goals: &[Goal]) -> f64 {
        goals.iter().map(|g| 1.0 / (1 + self.reached[*g as usize]) as f64).sum()
    }

    /// Each entry's energy anew, an entry that is the shortest to reach
    /// some goal (AFL's favoured) at full energy, the others at
    /// `UNFAVOURED` of it: a goal's shortest schedule is the cheapest and
    /// least diluted way back to it.
    fn rescore(&mut self) {
        let mut shortest: Vec<Option<usize>> = vec![None; Goal::ALL.len()];
        for (i, e) in self.corpus.iter().enumerate() {
            for g in &e.goals {
                let best = &mut shortest[*g as usize];
                if best.is_none_or(|b| self.corpus[b].schedule.steps > e.schedule.steps) {
                    *best = Some(i);
                }
            }
        }
        let scores: Vec<f64> = self
            .corpus
            .iter()
            .enumerate()
            .map(|(i, e)| self.score(&e.goals) * if shortest.contains(&Some(i)) { 1.0 } else { UNFAVOURED })
            .collect();
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

    /// The way to make the next schedule: fresh while warming up and two
    /// times in three after; else a way of guiding, each by its recent
    /// yield, none less often than `FLOOR`.
    fn choose_way(&mut self) -> Option<Way> {
        let started = self.schedules_total - self.left;
        if self.corpus.is_empty() || started <= WARM || !started.is_multiple_of(GUIDED_ONE_IN) {
            return None;
        }
        let total: f64 = GUIDED.iter().map(|w| self.yields[*w as usize].rate()).sum();
        let share = |y: Yield| FLOOR + (1.0 - FLOOR * GUIDED.len() as f64) * y.rate() / total;
        let mut x = self.rng.random::<f64>();
        for w in GUIDED {
            x -= share(self.yields[w as usize]);
            if x < 0.0 {
                return Some(w);
            }
        }
        Some(Way::Havoc)
    }

    /// Entry `i`'s schedule up to a random decision, then the fresh
    /// scheduler's.
    fn ending(&mut self, i: usize) -> Mutated {
        let r = self.corpus[i].schedule.clone();
        let from = self.rng.random_range(0..r.steps.max(1));
        let switch = (r.switches.len() + 1) as f64 / (r.steps + 1) as f64;
        Mutated {
            follow: Follow::new(r),
            random_at: BTreeSet::new(),
            ending: Some(Ending { from, switch }),
            decisions: 0,
        }
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
        Mutated { follow: Follow::new(r), random_at, ending: None, decisions: 0 }
    }
}

impl<S: Scheduler> Learn for Guide<S> {
    fn made_by(&self) -> &'static str {
        match self.way {
            None => "fresh",
            Some(Way::Ending) => "ending",
            Some(Way::Havoc) => "havoc",
        }
    }

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
        if let Some(w) = self.way {
            let y = &mut self.yields[w as usize];
            y.made = y.made * DECAY + 1.0;
            y.kept = y.kept * DECAY + f64::from(u8::from(novel));
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
        self.way = self.choose_way();
        let part = ((self.fresh_made / self.per) as usize).min(self.fresh.len() - 1);
        let m = match self.way {
            None => {
                self.fresh_made += 1;
                self.running = None;
                self.part = part;
                return self.fresh[part].new_execution();
            }
            Some(Way::Ending) => {
                let i = self.pick();
                self.ending(i)
            }
            Some(Way::Havoc) => {
                let i = self.pick();
                self.mutate(i)
            }
        };
        self.running = Some(m);
        Some(Schedule::new(0))
    }

    fn next_task(&mut self, runnable: &[&Task], current: Option<TaskId>, yielding: bool) -> Option<TaskId> {
        let Some(m) = self.running.as_mut() else {
            return self.fresh[self.part].next_task(runnable, current, yielding);
        };
        if let Some(e) = m.ending_now() {
            let go_on = current.filter(|c| !yielding && runnable.iter().any(|t| t.id() == *c));
            return match go_on {
                Some(c) if !self.rng.random_bool(e.switch) => Some(c),
                _ => Some(runnable[self.rng.random_range(0..runnable.len())].id()),
            };
        }
        let random = m.random_at.contains(&m.decisions).then(|| self.rng.random_range(0..runnable.len()));
        m.decisions += 1;
        Some(m.follow.choose(runnable, current, yielding, random))
    }

    fn next_u64(&mut self) -> u64 {
        let Some(m) = self.running.as_mut() else { return self.fresh[self.part].next_u64() };
        if m.ending_now().is_some() {
            return self.rng.random();
        }
        m.follow.recorded_u64().unwrap_or_else(|| self.rng.random())
    }
}

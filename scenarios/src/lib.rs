//! Named workloads: which world to build, which CPU and device threads to
//! spawn, and what each one does. A scenario runs one schedule's worth of
//! work on whatever backend the caller entered (shuttle, loom or real
//! threads) and returns what the oracle saw.

mod catalogue;
mod guest;
mod loom;
mod queue;
mod rig;
mod swarm;

use engine::{Engine, Mutant};
use hwmodel::{AtcInvDisabled, Coverage, Goal, Violation};
use smmu_sync::RwLockKind;
use std::collections::BTreeMap;

pub use catalogue::CATALOGUE;
pub use loom::{barrier_pairing, AttachBarrier};

/// What a scenario is run with: its world's configuration (part of the
/// run's, which stores it in failure files) and how the run is written
/// down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Params {
    /// Worker CPU threads (the scenario may add a few of its own).
    pub cpus: usize,
    pub engine: Engine,
    pub mutant: Option<Mutant>,
    /// The run's base seed, for the record; every choice a scenario makes is
    /// a data choice of the schedule, so a replay makes it again.
    pub seed: u64,
    /// Chance that each fallible driver call fails, in parts per million;
    /// `None`: the swarm draws one per schedule, other scenarios use 0.
    pub fault_ppm: Option<u32>,
    /// What endpoints do with an ATC_INV that raced their ATS disable.
    pub atc_inv_disabled: AtcInvDisabled,
    /// The kernel's rwlock semantics; `None`: the swarm draws one per
    /// schedule, `irq-unmap` runs the fair lock, the others the queued one.
    pub rwlock: Option<RwLockKind>,
    /// How the run is written down: every event kept (a failure's story,
    /// never part of the configuration), and the execution ended at its
    /// first violation (a shrinker's replay).
    #[serde(skip)]
    pub full_trace: bool,
    pub stop_at_violation: bool,
    /// A cap on the scenario's loops (pages, rounds, moves, operations): a
    /// shrinker's smaller worlds. `None`: as written.
    pub size: Option<usize>,
    /// Operations a shrinker removed from a generated world, a bit each
    /// (`skips_op`); the world is drawn as before, they just do not run.
    pub skip_ops: u64,
}

/// Bits of `Params::skip_ops` per worker.
pub const OPS_PER_WORKER: usize = 8;

impl Params {
    /// `sc` as written on `engine` from `seed`: no mutant, no faults beyond
    /// the scenario's own, nothing recorded beyond a run's.
    pub fn plain(sc: &Scenario, engine: Engine, seed: u64) -> Self {
        Self {
            cpus: sc.cpus,
            engine,
            mutant: None,
            seed,
            fault_ppm: None,
            atc_inv_disabled: Default::default(),
            rwlock: None,
            full_trace: false,
            stop_at_violation: false,
            size: None,
            skip_ops: 0,
        }
    }

    /// Whether worker `w`'s operation `k` is one a shrinker removed.
    pub fn skips_op(&self, w: usize, k: usize) -> bool {
        let bit = w * OPS_PER_WORKER + k;
        k < OPS_PER_WORKER && bit < 64 && self.skip_ops >> bit & 1 == 1
    }

    /// `n` items of a loop, or fewer under a `size` cap (at least one).
    pub fn upto(&self, n: usize) -> usize {
        self.size.map_or(n, |s| n.min(s.max(1)))
    }
}

/// What one run of a scenario produced.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub violations: Vec<Violation>,
    pub trace_hash: u64,
    pub events: u64,
    /// Age (completed CMD_SYNCs since unmap returned) -> stale hits.
    pub stale_ages: BTreeMap<u64, u64>,
    pub coverage: Coverage,
}

/// A catalogue entry.
pub struct Scenario {
    pub name: &'static str,
    pub about: &'static str,
    /// Worker CPUs when `--cpus` is not given.
    pub cpus: usize,
    /// Needs one domain on several SMMUs, which the legacy design cannot do.
    pub multi_smmu: bool,
    /// Schedules a run explores when `--iterations` is not given.
    pub schedules: u64,
    /// The states it is written to reach (the generator's are all of
    /// them): a run that misses one says so, as the scenario no longer
    /// tests what it is named for.
    pub goals: &'static [Goal],
    run: fn(&Params) -> Outcome,
}

impl Scenario {
    /// A scenario of one's own: `run` builds a world, spawns its threads
    /// and returns what the oracle saw.
    pub const fn new(
        name: &'static str,
        about: &'static str,
        cpus: usize,
        schedules: u64,
        run: fn(&Params) -> Outcome,
    ) -> Self {
        Self { name, about, cpus, multi_smmu: false, schedules, goals: &[], run }
    }

    /// Run once on the current backend.
    pub fn run(&self, p: &Params) -> Outcome {
        (self.run)(p)
    }

    /// Whether the scenario means anything for `engine`.
    pub fn supports(&self, engine: Engine) -> bool {
        engine.spans_smmus() || !self.multi_smmu
    }
}

pub fn find(name: &str) -> Option<&'static Scenario> {
    CATALOGUE.iter().find(|s| s.name == name)
}

/// The scenario that catches `m`: the one a reviewer should run after
/// touching the line the mutant breaks.
pub fn catcher(m: Mutant) -> &'static Scenario {
    let name = match m {
        Mutant::NewInvsAfterSte => "two-smmus",
        Mutant::OldInvsBeforeSte => "unmap-vs-detach",
        Mutant::NoSmpMbInvRange => "swarm",
        Mutant::NoDmaWmbBeforeSte => "live-attach",
        Mutant::NoFlushOnLastUnref => "asid-reuse",
        Mutant::UnrefWithoutAtsFence => "ats-toggle",
        Mutant::AtsInTlbiBatch => "map-unmap-storm",
        Mutant::S1ClearAlwaysSkipped => "nesting-s1-clear",
        Mutant::FreeReplacedArrayImmediately => "blocked-attach",
        Mutant::RemoveSmmuWithoutGracePeriod => "smmu-removal",
        Mutant::UnsortedStreamIds => "map-unmap-storm",
        Mutant::AtsOffWithoutGracePeriod => "reattach-ats",
        Mutant::VsmmuReportUnissued => "vsmmu-malformed",
        Mutant::VsmmuZeroLengthEinval => "vsmmu-invalidate",
        Mutant::VsmmuIllegalFieldAccepted => "vsmmu-malformed",
        Mutant::VsmmuGuestVmidPassedThrough => "vsmmu-invalidate",
        Mutant::VsmmuVsidPassedThrough => "vsmmu-invalidate",
        Mutant::VmmCerrorAtBatchStart => "vsmmu-malformed",
        Mutant::HwQueueUnpinned => "hw-queue-vs-unmap",
        Mutant::HwQueueDestroyIgnoresDependency => "hw-queue-vs-unmap",
        Mutant::VsmmuNsnhAllRefused => "vsmmu-invalidate",
        Mutant::HwptInvalidateAnyObjectType => "vsmmu-malformed",
        Mutant::PublishWithoutBarrier => "replace",
        Mutant::PublishPlainStore => "irq-unmap",
        Mutant::ReadLockInIrqWithoutIrqsave => "irq-unmap",
        // `replace` finds it too, but slowly (138 277 schedules on seed 1)
        // since ATS-off waits a grace period whenever an array that held the
        // master's ATS entry was replaced; swarm at 5 346.
        Mutant::NoTlbFlushBeforeAts => "swarm",
        Mutant::OldInvsWithNewAts => "replace",
        Mutant::SizeTooBigIgnored => "swarm",
        Mutant::VmmResumesAfterBatch => "vsmmu-malformed",
    };
    find(name).expect("catalogued scenario")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_names_are_unique() {
        let mut names: Vec<_> = CATALOGUE.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CATALOGUE.len());
    }
}

//! Fixtures shared by the benchmarks: the same invalidation work under each
//! read-side design, over a machine whose command queue only counts, and
//! the contention model.

pub mod contention;

use engine::fenced::{replace_invs, Invs};
use engine::{inv_entries, Cpu, Domain, DomainKind, Driver, Engine, Env, InvDesc, InvType, Master, Target};
use hwmodel::{Features, Machine, SmmuId, PAGE};
use smmu_sync::Ordering;
use std::sync::Arc;
use std::sync::RwLock;

pub const IOVA: u64 = 0x10_0000;

/// One way to find out what an invalidation must reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Design {
    /// The series: barrier, epoch pin, array load, ATS read lock if needed.
    Epoch,
    /// Barrier, then a reader-writer lock around a plain vector.
    RwLock,
    /// The pre-series driver: one SMMU, a device list under a spinlock.
    Legacy,
    /// Walking the entries with no barrier, pin or lock: the floor.
    Bare,
}

impl Design {
    pub const ALL: [Design; 4] = [Design::Epoch, Design::RwLock, Design::Legacy, Design::Bare];

    pub fn name(self) -> &'static str {
        match self {
            Design::Epoch => "epoch",
            Design::RwLock => "rwlock",
            Design::Legacy => "legacy",
            Design::Bare => "bare",
        }
    }
}

/// A domain whose invalidation covers `live` entries (one S1_ASID, plus an
/// ATS entry per stream ID of one master), under every design.
pub struct Fixture {
    pub epoch: Arc<Driver>,
    pub legacy: Arc<Driver>,
    pub dom: Arc<Domain>,
    pub legacy_dom: Arc<Domain>,
    /// The live entries, for the RwLock design (a std lock: benches run on
    /// real threads only), and bare for the floor.
    pub rw: Arc<RwLock<Vec<InvDesc>>>,
    pub bare: Vec<InvDesc>,
    /// A second master the latency run's writer attaches and detaches.
    pub epoch_mover: Arc<Master>,
    pub legacy_mover: Arc<Master>,
}

fn ats() -> Features {
    Features { ats: true, ..Features::default() }
}

/// The live entries: S1_ASID then ATS for stream IDs 0, 2, 4, ...
fn live_descs(asid: u16, live: usize) -> Vec<InvDesc> {
    let s1 = InvDesc::new(SmmuId(0), false, InvType::S1Asid, asid.into(), 0, 0);
    let ats = (0..live - 1).map(|k| InvDesc::new(SmmuId(0), false, InvType::Ats, 2 * k as u32, 0, 0));
    std::iter::once(s1).chain(ats).collect()
}

/// A driver on a native machine (`Machine::native`) with one ATS SMMU, a master whose stream
/// IDs are 0..n, and a mover with stream ID 511.
fn driver(
    machine: fn(usize) -> Machine,
    engine: Engine,
    sids: usize,
    writer_reclaims: bool,
) -> (Driver, Master, Master) {
    let mut m = machine(8);
    let smmu = m.add_smmu(ats());
    let ids: Vec<u32> = (0..sids as u32).collect();
    let ep = m.add_endpoint(smmu, &ids, true);
    let mover = m.add_endpoint(smmu, &[511], true);
    let mut drv = Driver::new(m, Env::new(), engine);
    drv.writer_reclaims = writer_reclaims;
    let (master, mover) = (drv.probe(ep), drv.probe(mover));
    (drv, master, mover)
}

/// `live` entries; with `trash`, as many trash entries between them; on
/// native machines.
pub fn fixture(live: usize, trash: bool, writer_reclaims: bool) -> Fixture {
    fixture_on(Machine::native, live, trash, writer_reclaims)
}

/// The same on machines `machine` makes (`Machine::counting` to record
/// what the fast path touches).
pub fn fixture_on(machine: fn(usize) -> Machine, live: usize, trash: bool, writer_reclaims: bool) -> Fixture {
    let (epoch, _, epoch_mover) = driver(machine, Engine::Fenced, 1, writer_reclaims);
    let cpu = epoch.cpu(0);
    let dom = epoch.alloc_domain(DomainKind::S1).unwrap();
    let descs = live_descs(dom.tag(), live);
    // Published directly so trash can sit between live entries; the odd
    // stream IDs interleave with the live ATS entries.
    let junk: Vec<InvDesc> = if trash {
        (0..live).map(|k| InvDesc::new(SmmuId(0), false, InvType::Ats, 2 * k as u32 + 1, 0, 0)).collect()
    } else {
        Vec::new()
    };
    let mut all: Vec<InvDesc> = descs.iter().chain(&junk).copied().collect();
    all.sort_by(|a, b| a.cmp_key(b));
    let env = Env::new();
    let array = Invs::new().merge(&all, &env).expect("no injected failure");
    array.unref(&junk, &env, None, |_| {});
    replace_invs(&epoch, &cpu, &dom, array);

    let (legacy, master, legacy_mover) = driver(machine, Engine::Legacy, live - 1, writer_reclaims);
    let legacy_dom = legacy.alloc_domain(DomainKind::S1).unwrap();
    let lcpu = legacy.cpu(0);
    legacy.attach(&lcpu, &master, 0, Target::Domain(legacy_dom.clone()), live > 1).expect("legacy attach");
    Fixture {
        epoch: Arc::new(epoch),
        legacy: Arc::new(legacy),
        dom,
        legacy_dom,
        rw: Arc::new(RwLock::new(descs.clone())),
        bare: descs,
        epoch_mover: Arc::new(epoch_mover),
        legacy_mover: Arc::new(legacy_mover),
    }
}

impl Fixture {
    /// One invalidation of a page under `design`, from `cpu` (a CPU of the
    /// epoch driver, or of the legacy one for `Design::Legacy`).
    pub fn invalidate(&self, design: Design, cpu: &Cpu) {
        match design {
            Design::Epoch => self.epoch.domain_inv_range(cpu, &self.dom, IOVA, PAGE, PAGE, true),
            Design::Legacy => self.legacy.domain_inv_range(cpu, &self.legacy_dom, IOVA, PAGE, PAGE, true),
            Design::RwLock => {
                smmu_sync::fence(Ordering::SeqCst);
                let entries = self.rw.read().unwrap_or_else(std::sync::PoisonError::into_inner);
                inv_entries(&self.epoch, cpu, entries.iter(), IOVA, PAGE, PAGE, true, || false);
            }
            Design::Bare => {
                inv_entries(&self.epoch, cpu, self.bare.iter(), IOVA, PAGE, PAGE, true, || false);
            }
        }
    }

    /// Commands one call under `design` issues: the same for every design,
    /// or the comparison is not like for like.
    pub fn commands_per_call(&self, design: Design, cpu: &Cpu) -> u64 {
        let machine = &self.driver(design).machine;
        let before = machine.counted();
        self.invalidate(design, cpu);
        machine.counted() - before
    }

    /// The driver a design's CPUs belong to.
    pub fn driver(&self, design: Design) -> &Arc<Driver> {
        if design == Design::Legacy {
            &self.legacy
        } else {
            &self.epoch
        }
    }
}

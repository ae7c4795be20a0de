//! The series' own C as a design: the functions of a patch series (or of a
//! kernel source file) that keep the array, walk it and install it at
//! attach, extracted from the user's input (`extract.rs`), compiled
//! against the project's shim (`shim/`, `build.rs`) and run under the
//! same scheduler, memory model and oracle as the Rust designs. The order
//! around the calls into the C (the STE/CD write, ATS on and off) is v9's:
//! `attach.rs` calls the C at the seed's call sites. No line of the
//! series is in this tree; `stress --engine c --series PATH` reads it.

mod attach;
mod build;
mod extract;
#[allow(unsafe_code)]
mod ffi;
mod heap;
mod inv;
mod world;

use crate::attach::AttachState;
use crate::design::Design;
use crate::domain::{Domain, Stage};
use crate::kernel::{Cpu, Kernel};
use crate::master::{Master, MasterState};
use crate::types::InvDesc;
use crate::{Errno, Mutant};
use hwmodel::{Addr, DomainId, Goal, SmmuId, PAGE};
use std::any::Any;
use std::path::PathBuf;
use std::sync::Arc;
use world::{Entry, World};

pub use world::Entry as CEntry;

/// A series loaded: what was read, what came from where, the compiled C.
pub struct Series {
    /// The inputs, as given, and a hash of their text: a replay needs the
    /// same series.
    pub paths: Vec<String>,
    pub hash: u64,
    /// The series' functions, macros and types taken from the input, and
    /// those the glue provides because the input lacks their whole body.
    pub from_input: Vec<String>,
    pub from_glue: Vec<String>,
    lib: ffi::Lib,
}

/// FNV-1a over the inputs' text, in order.
fn hash_inputs(texts: &[String]) -> u64 {
    texts
        .iter()
        .flat_map(|t| t.bytes().chain([0u8]))
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

impl Series {
    /// Read, extract, compile and load the series at `paths` (one patch
    /// series, or a `.c` and its `.h`). The error is one line naming what
    /// is missing or what does not compile.
    pub fn load(paths: &[PathBuf]) -> Result<Arc<Series>, String> {
        let mut inputs = Vec::new();
        for p in paths {
            let text =
                std::fs::read_to_string(p).map_err(|e| format!("cannot read the series {}: {e}", p.display()))?;
            inputs.push(extract::Input { path: p.display().to_string(), text });
        }
        let ex = extract::extract(&inputs)?;
        let lib_path = build::build(&build::unit(&ex))?;
        let lib = ffi::Lib::open(&lib_path)?;
        let texts: Vec<String> = inputs.into_iter().map(|i| i.text).collect();
        Ok(Arc::new(Series {
            paths: paths.iter().map(|p| p.display().to_string()).collect(),
            hash: hash_inputs(&texts),
            from_input: ex.from_input,
            from_glue: ex.from_glue,
            lib,
        }))
    }

    /// The hash `load` would give the series at `paths` now.
    pub fn hash_of(paths: &[PathBuf]) -> Result<u64, String> {
        let texts = paths
            .iter()
            .map(|p| std::fs::read_to_string(p).map_err(|e| format!("cannot read the series {}: {e}", p.display())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(hash_inputs(&texts))
    }

    fn counts(&self, invs: usize) -> (usize, usize, usize, bool) {
        ffi::Call::plain(&self.lib).counts(invs)
    }

    fn entry(&self, invs: usize, i: usize) -> Entry {
        let (smmu, ty, id, ssid, users, _, _) = ffi::Call::plain(&self.lib).entry(invs, i);
        let ty = world::inv_type(ty).unwrap_or(crate::InvType::AtsFull);
        Entry { desc: InvDesc::new(SmmuId(smmu), false, ty, id, ssid, 0), users: users as u32 }
    }

    /// Run the series' own KUnit test (`arm_smmu_v3_invs_test`) against
    /// its C: (expectations held, failed, line of the first failure), or
    /// `None` if the input has no test.
    pub fn kunit(self: &Arc<Self>) -> Option<(i32, i32, i32)> {
        let world = World::new(self.clone());
        ffi::Call::new(&self.lib, &world, None).kunit()
    }
}

/// The series' array functions alone, outside any world: no scheduler,
/// no model memory, its allocations and WARNs its own. For the series'
/// KUnit test and the differential test against the v9 translation.
pub struct Standalone {
    world: World,
    smmus: usize,
}

/// An array the series' C allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CInvs(usize);

impl Series {
    /// A standalone instance with `smmus` SMMU instances, in id order.
    pub fn standalone(self: &Arc<Self>, smmus: u32) -> Standalone {
        let world = World::new(self.clone());
        let call = ffi::Call::new(&self.lib, &world, None);
        let size = call.size(ffi::Size::Smmu);
        let base = world.alloc_at(None, size * smmus.max(1) as usize, 0);
        for id in 0..smmus {
            call.smmu_init(base + size * id as usize, id, 0);
        }
        Standalone { world, smmus: base }
    }
}

impl Standalone {
    fn call(&self) -> ffi::Call<'_> {
        ffi::Call::new(&self.world.series.lib, &self.world, None)
    }

    /// An array of `entries` (their SMMU, type, id and SSID), as
    /// `arm_smmu_master_build_invs` fills one.
    pub fn build(&self, entries: &[InvDesc]) -> CInvs {
        let call = self.call();
        let size = call.size(ffi::Size::Smmu);
        let smmus: Vec<usize> = entries.iter().map(|e| self.smmus + size * e.smmu.0 as usize).collect();
        let types: Vec<i32> = entries.iter().map(|e| e.ty as i32).collect();
        let ids: Vec<u32> = entries.iter().map(|e| e.id).collect();
        let ssids: Vec<u32> = entries.iter().map(|e| e.ssid).collect();
        CInvs(call.invs_build(&smmus, &types, &ids, &ssids))
    }

    /// `arm_smmu_invs_merge`: a new array, or the error its ERR_PTR holds.
    pub fn merge(&self, invs: CInvs, to_merge: CInvs) -> Result<CInvs, Errno> {
        Self::result(self.call().invs_merge(invs.0, to_merge.0)).map(|p| CInvs(p.expect("merge never returns NULL")))
    }

    /// `arm_smmu_invs_unref` with no flush callback.
    pub fn unref(&self, invs: CInvs, to_unref: CInvs) {
        self.call().invs_unref(invs.0, to_unref.0);
    }

    /// `arm_smmu_invs_purge`: a new array, none (NULL), or an error.
    pub fn purge(&self, invs: CInvs) -> Result<Option<CInvs>, Errno> {
        Self::result(self.call().invs_purge(invs.0)).map(|p| p.map(CInvs))
    }

    fn result(p: usize) -> Result<Option<usize>, Errno> {
        match p {
            0 => Ok(None),
            p if world::is_err(p) => Err(if -(p as isize) == 12 { Errno::ENOMEM } else { Errno::EINVAL }),
            p => Ok(Some(p)),
        }
    }

    pub fn free(&self, invs: CInvs) {
        self.call().kfree(invs.0);
    }

    /// (max_invs, num_invs, num_trashes, has_ats).
    pub fn counts(&self, invs: CInvs) -> (usize, usize, usize, bool) {
        self.world.series.counts(invs.0)
    }

    /// The entries up to `num_invs`, trash included.
    pub fn entries(&self, invs: CInvs) -> Vec<CEntry> {
        self.world.entries(invs.0)
    }

    /// Arm (or disarm) a failure of the C's next allocation.
    pub fn fail_next_alloc(&self, armed: bool) {
        self.world.fail_next.store(armed, std::sync::atomic::Ordering::Relaxed);
    }

    /// The WARNs the C hit since the last call.
    pub fn take_warnings(&self) -> Vec<crate::Warning> {
        std::mem::take(&mut *self.world.warnings.lock())
    }
}

/// The series tests run: the paths in `SMMU_SERIES` (one, or a `.c` and
/// its `.h` joined by `:`), a relative one taken from the current
/// directory or else from the workspace root (CI sets
/// `../shared/seeds/001_160d3a3c42ecf529.txt`, relative to the root). `None`
/// when unset: such tests say so and pass.
pub fn series_from_env() -> Option<Vec<PathBuf>> {
    let var = std::env::var_os("SMMU_SERIES")?;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    Some(std::env::split_paths(&var).map(|p| if p.is_relative() && !p.exists() { root.join(p) } else { p }).collect())
}

static INSTALLED: std::sync::RwLock<Option<Arc<Series>>> = std::sync::RwLock::new(None);

/// The series `Engine::C` runs from now on, in this process.
pub fn install(series: Arc<Series>) {
    *INSTALLED.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(series);
}

/// The series `install` set.
pub fn installed() -> Option<Arc<Series>> {
    INSTALLED.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
}

/// The design: one world's C state over the installed series.
pub struct C {
    world: Arc<World>,
}

impl C {
    /// A new world, made at the start of an execution.
    pub fn new(series: Arc<Series>) -> Self {
        ffi::Call::plain(&series.lib).reset_ticks();
        Self { world: Arc::new(World::new(series)) }
    }

    fn call<'a>(&'a self, k: &Kernel) -> ffi::Call<'a> {
        ffi::Call::new(&self.world.series.lib, &self.world, Some(k))
    }

    /// The C SMMU array, in id order, built at first need.
    fn smmus(&self, k: &Kernel) -> usize {
        if let Some(base) = self.world.smmus() {
            return base;
        }
        let call = self.call(k);
        let size = call.size(ffi::Size::Smmu);
        let smmus: Vec<_> = k.machine.smmus().map(|s| (s.id, s.features)).collect();
        let base = self.world.alloc_at(Some(k), size * smmus.len().max(1), 0);
        for (id, f) in smmus {
            let bits = [(f.range_inv, ffi::FEAT_RANGE_INV), (f.e2h, ffi::FEAT_E2H), (f.ats, ffi::FEAT_ATS)]
                .into_iter()
                .filter(|(on, _)| *on)
                .fold(0, |b, (_, bit)| b | bit);
            call.smmu_init(base + size * id.0 as usize, id.0, bits);
        }
        self.world.set_smmus(base);
        base
    }

    /// The C master for `m`, built at its first attach.
    fn master(&self, k: &Kernel, m: &Master) -> usize {
        if let Some(cm) = self.world.master(m.ep) {
            return cm;
        }
        let smmus = self.smmus(k);
        let call = self.call(k);
        let smmu = smmus + call.size(ffi::Size::Smmu) * m.smmu.0 as usize;
        let cm = self.world.alloc_at(Some(k), call.size(ffi::Size::Master), 0);
        let streams = self.world.alloc_at(Some(k), call.size(ffi::Size::Stream) * m.streams.len().max(1), 0);
        // The probe-time scratch allocation never fails here, as the Rust
        // designs' cannot.
        let r = call.master_init(cm, smmu, streams, &m.streams, m.ats_supported);
        assert_eq!(r, 0, "the scratch array is allocated at no fault site");
        self.world.set_master(m.ep, cm);
        cm
    }

    /// The attach state the world reuses (the ASID lock serializes attaches).
    fn state(&self, k: &Kernel) -> usize {
        self.world.state().unwrap_or_else(|| {
            let s = self.world.alloc_at(Some(k), self.call(k).size(ffi::Size::State), 0);
            self.world.set_state(s);
            s
        })
    }
}

/// The C domain a Rust domain stands for.
struct CDomain {
    host: usize,
}

fn cdomain(d: &Domain) -> usize {
    d.state::<CDomain>().host
}

/// The mutants whose lines are Rust this design runs: the shared STE/CD
/// and RCU primitives, SMMU removal, probe, and the vSMMU paths.
const HONOURED: &[Mutant] = &[
    Mutant::PublishPlainStore,
    Mutant::FreeReplacedArrayImmediately,
    Mutant::RemoveSmmuWithoutGracePeriod,
    Mutant::UnsortedStreamIds,
    Mutant::VsmmuReportUnissued,
    Mutant::VsmmuZeroLengthEinval,
    Mutant::VsmmuIllegalFieldAccepted,
    Mutant::VsmmuGuestVmidPassedThrough,
    Mutant::VsmmuVsidPassedThrough,
    Mutant::VmmCerrorAtBatchStart,
    Mutant::VmmResumesAfterBatch,
    Mutant::HwQueueUnpinned,
    Mutant::HwQueueDestroyIgnoresDependency,
    Mutant::VsmmuNsnhAllRefused,
    Mutant::HwptInvalidateAnyObjectType,
];

impl Design for C {
    fn domain_alloc(&self, k: &Kernel, id: DomainId, stage: Stage, words: Addr) -> Box<dyn Any + Send + Sync> {
        let call = self.call(k);
        // The C domain sits in the domain's own frame, so the oracle finds
        // its array pointer where it looks for a domain's.
        let host = self.world.alloc_at(Some(k), call.size(ffi::Size::Domain), words);
        let (stage, tag, nest_parent) = match stage {
            Stage::S1 { asid } => (0, asid, false),
            Stage::S2 { vmid, nest_parent } => (1, vmid, nest_parent),
            Stage::Sva { asid } => (2, asid, false),
        };
        let r = call.domain_init(host, stage, tag, nest_parent, PAGE);
        assert_eq!(r, 0, "the first array is allocated at no fault site");
        self.world.register_domain(host, id);
        Box::new(CDomain { host })
    }

    fn attach_prepare<'a>(&'a self, st: &AttachState<'a>, _ms: &mut MasterState) -> Result<(), Errno> {
        attach::attach_prepare(self, st)
    }

    fn install_ste_for_dev<'a>(&'a self, st: &AttachState<'a>) {
        attach::install_ste_for_dev(st);
    }

    fn attach_commit<'a>(&'a self, st: &AttachState<'a>, _ms: &mut MasterState) {
        attach::attach_commit(self, st);
    }

    fn blocking_set_dev_pasid<'a>(&'a self, st: &AttachState<'a>, _ms: &mut MasterState) -> Result<(), Errno> {
        attach::blocking_set_dev_pasid(self, st);
        Ok(())
    }

    fn domain_inv_range(&self, k: &Kernel, cpu: &Cpu, d: &Domain, iova: u64, size: u64, granule: u64, leaf: bool) {
        inv::domain_inv_range(self, k, cpu, d, iova, size, granule, leaf);
    }

    fn domain_tags(&self, k: &Kernel, _cpu: &Cpu, domains: &[&Domain]) -> Vec<InvDesc> {
        let call = self.call(k);
        let mut tags = Vec::new();
        for d in domains {
            let invs = call.domain_invs(cdomain(d));
            if world::is_err(invs) {
                smmu_sync::die(format!(
                    "{}: the next use of {:?}'s invalidation array dereferences ERR_PTR({})",
                    hwmodel::ViolationKind::ErrPtrDeref.name(),
                    d.id,
                    -(invs as isize)
                ));
            }
            tags.extend(self.world.entries(invs).into_iter().filter(|e| e.users != 0).map(|e| e.desc));
        }
        tags
    }

    fn can_reach(&self, _g: Goal) -> bool {
        true
    }

    fn honours(&self, m: Mutant) -> bool {
        HONOURED.contains(&m)
    }
}

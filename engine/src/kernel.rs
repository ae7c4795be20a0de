//! What every design runs on: the machine, the kernel environment, the
//! epoch collector, the ASID lock, and the kernel services the designs
//! call (RCU pointer operations, grace periods, barriers, coverage). No
//! code here knows which design runs.

use crate::env::Env;
use crate::types::Inv;
use hwmodel::{Actor, Addr, CpuId, DomainId, Event, Goal, Machine, ViolationKind, Word};
use smmu_sync::{Collector, Guard, Handle, Mutex, Rcu, Retire, Retired};

/// One simulated CPU: its store buffer and its epoch participant. Create it
/// on the thread that will use it.
pub struct Cpu {
    pub id: CpuId,
    pub epoch: Handle,
}

pub struct Kernel {
    pub machine: Machine,
    pub env: Env,
    /// Writers free replaced arrays themselves, so that readers, which
    /// crossbeam makes collect garbage every 128th pin, never run
    /// destructors.
    pub writer_reclaims: bool,
    collector: Collector,
    /// `arm_smmu_asid_lock`: serializes every writer of every array.
    pub(crate) asid_lock: Mutex<()>,
}

impl Kernel {
    pub(crate) fn new(machine: Machine, env: Env) -> Self {
        Self { machine, env, writer_reclaims: false, collector: Collector::new(), asid_lock: Mutex::new(()) }
    }

    pub fn cpu(&self, id: usize) -> Cpu {
        Cpu { id: CpuId(id), epoch: self.collector.register() }
    }

    /// `rcu_dereference(*ptr)`: the object `cpu` finds through the pointer
    /// word at `ptr`. A version the writer already retired means the
    /// writer freed what a reader could still reach.
    pub(crate) fn rcu_dereference<'g, T: Retire>(
        &self,
        cpu: &Cpu,
        domain: DomainId,
        rcu: &'g Rcu<T>,
        ptr: Addr,
        g: &'g Guard,
    ) -> &'g T {
        let mem = &self.machine.mem;
        if mem.is_native() {
            // The pointer itself, acquire-loaded: no model word, no trace,
            // no scheduling point.
            return rcu.peek(g);
        }
        mem.before_load();
        let (v, obj) = rcu.load_version(g, || mem.peek(cpu.id, ptr));
        self.machine.oracle.record(Actor::on(cpu.id), Event::ArrayLoad { domain, version: v });
        if v != rcu.version() {
            self.machine.oracle.cover(Goal::StalePointerLoaded);
        }
        obj.unwrap_or_else(|| {
            smmu_sync::die(format!(
                "{}: {:?} loaded array version {v} from {ptr:#x}, which its writer had already freed",
                ViolationKind::UseAfterFree.name(),
                cpu.id
            ))
        })
    }

    /// `rcu_assign_pointer(*ptr, new)`: a release store of the new
    /// version, so the array's initialising stores are visible first.
    pub(crate) fn rcu_assign_pointer<'g, T: Retire>(
        &self,
        cpu: &Cpu,
        domain: DomainId,
        rcu: &'g Rcu<T>,
        ptr: Addr,
        new: T,
        g: &'g Guard,
    ) -> Retired<'g, T> {
        let old = rcu.publish(new, g);
        let version = rcu.version();
        self.machine.oracle.record(Actor::on(cpu.id), Event::Publish { domain, version });
        if self.env.mutant(crate::Mutant::PublishPlainStore) {
            self.machine.mem.store_as(cpu.id, ptr, version, Word::ArrayPtr);
        } else {
            self.machine.mem.store_release(cpu.id, ptr, version, Word::ArrayPtr);
        }
        old
    }

    /// `kfree_rcu` of an array `publish` replaced, and this writer's share
    /// of reclamation.
    pub(crate) fn retire<T: Retire>(&self, rcu: &Rcu<T>, old: Retired<'_, T>, guard: &Guard) {
        if self.env.mutant(crate::Mutant::FreeReplacedArrayImmediately) {
            old.free_now();
        } else if self.writer_reclaims {
            old.defer_to_writer();
        } else {
            old.defer_free();
        }
        guard.flush();
        if self.writer_reclaims {
            rcu.reclaim();
        }
    }

    /// `synchronize_rcu`: a grace period, which implies a full barrier on
    /// every CPU. The caller's matters: once its stores are visible, a
    /// reader that starts after the grace period finds the new pointers.
    pub(crate) fn synchronize_rcu(&self, cpu: &Cpu) {
        self.machine.mem.smp_mb(cpu.id);
        cpu.epoch.synchronize();
    }

    /// Report the WARNs the driver hit since the last call.
    pub(crate) fn report_warnings(&self) {
        for w in self.env.take_warnings() {
            self.machine.oracle.report(ViolationKind::DriverWarn, format!("WARN: {w:?}"));
        }
    }

    /// The array shapes worth reaching: one spanning SMMUs, one with ATS
    /// entries for two PASIDs of one stream ID.
    pub(crate) fn cover_array(&self, e: &[Inv]) {
        let o = &self.machine.oracle;
        if e.windows(2).any(|w| w[0].smmu != w[1].smmu) {
            o.cover(Goal::ArraySpansSmmus);
        }
        if e.windows(2).any(|w| w[0].ty.is_ats() && w[0].ty == w[1].ty && w[0].id == w[1].id && w[0].smmu == w[1].smmu)
        {
            o.cover(Goal::TwoPasidsOneSid);
        }
    }

    /// A walk ended on `walked` after its domain had published `current`.
    pub(crate) fn cover_old_array(&self, walked: &[Inv], current: &[Inv]) {
        let o = &self.machine.oracle;
        o.cover(Goal::WalkerOnOldArray);
        if ats_joined(walked, current) {
            o.cover(Goal::AtsJoinedMidWalk);
        }
    }
}

/// Whether `new` has an ATS entry `old` lacks: a master (or PASID) joined
/// with ATS after a walker loaded `old`.
fn ats_joined(old: &[Inv], new: &[Inv]) -> bool {
    let key = |i: &Inv| (i.desc.smmu, i.desc.ty, i.desc.id, i.desc.ssid);
    new.iter().filter(|i| i.desc.ty.is_ats()).any(|n| !old.iter().any(|o| key(o) == key(n)))
}

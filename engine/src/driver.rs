//! The driver instance: the machine it drives, the kernel environment, the
//! epoch collector, the ASID lock, and the flows that are not attach.

use crate::domain::{Domain, LegacyDomain, Stage};
use crate::env::{Env, FaultSite};
use crate::invs::{InvDesc, InvType, Invs};
use crate::master::Master;
use crate::{Errno, Mutant};
use hwmodel::{
    Coverage, CpuId, DomainId, EndpointId, Goal, Machine, PageTable, PtError, SmmuId, TlbKind, TlbTag, ViolationKind,
    BLOCK, PAGE,
};
use smmu_sync::{plain, Collector, Handle, Mutex, Rcu};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// One simulated CPU: its store buffer and its epoch participant. Create it
/// on the thread that will use it.
pub struct Cpu {
    pub id: CpuId,
    pub epoch: Handle,
}

/// Which invalidation design drives the hardware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// The project's proposal: the series' per-domain arrays with the fixes
    /// its later versions made, and ATS turned off only once no ATC
    /// invalidation built from the master's old entries can be in flight
    /// (the unref's write lock, and a grace period when an older copy of
    /// the array holds them).
    Fenced,
    /// Patches 1-7 of seed 001 as written, bugs included (`crate::v9`).
    V9,
    /// What the series replaced: one SMMU per domain and a locked device
    /// list.
    Legacy,
}

impl Engine {
    /// Whether this design can reach `g` at all: the pre-series design has
    /// no arrays, no fallible array copies, no vmaster and no SMMU removal.
    pub fn can_reach(self, g: Goal) -> bool {
        use Goal::*;
        // v9's comparison merges two PASIDs of one stream ID into one entry,
        // and its failed purge kills the thread before the run's end.
        if self == Engine::V9 && matches!(g, TwoPasidsOneSid | FaultInvsPurge) {
            return false;
        }
        let array_only = matches!(
            g,
            TrashWalked
                | WalkerOnOldArray
                | AtsJoinedMidWalk
                | TwoPasidsOneSid
                | ArraySpansSmmus
                | BatchEndSmmu
                | BatchEndAts
                | FaultInvsMerge
                | FaultInvsPurge
                | AtsOffOlderArray
                | SmmuRemovedAttached
                | FaultVmaster
                | StalePointerLoaded
        );
        self != Engine::Legacy || !array_only
    }

    /// Whether the design keeps per-domain invalidation arrays.
    pub fn has_arrays(self) -> bool {
        self != Engine::Legacy
    }
}

/// What kind of domain to allocate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DomainKind {
    S1,
    S2 { nest_parent: bool },
    Sva,
}

pub struct Driver {
    pub machine: Machine,
    pub env: Env,
    pub engine: Engine,
    /// Writers free replaced arrays themselves, so that readers, which
    /// crossbeam makes collect garbage every 128th pin, never run
    /// destructors.
    pub writer_reclaims: bool,
    collector: Collector,
    /// `arm_smmu_asid_lock`: serializes every writer of every array.
    pub(crate) asid_lock: Mutex<()>,
    next_domain: plain::AtomicU32,
    /// Free ASIDs and VMIDs, reused most-recent first so reuse is common.
    free_tags: plain::Mutex<Vec<u16>>,
    next_tag: plain::AtomicU32,
    /// Stream IDs (by SMMU) with a live ATS entry in an array replaced
    /// since their master last turned ATS off after a grace period: a
    /// walker may still hold that array and send them ATC_INVs that no
    /// `unref` fences. Written by array writers, under the ASID lock.
    pub(crate) ats_replaced: plain::Mutex<std::collections::BTreeSet<(SmmuId, u32)>>,
}

impl Driver {
    pub fn new(machine: Machine, env: Env, engine: Engine) -> Self {
        Self {
            machine,
            env,
            engine,
            writer_reclaims: false,
            collector: Collector::new(),
            asid_lock: Mutex::new(()),
            next_domain: plain::AtomicU32::new(1),
            free_tags: plain::Mutex::new(Vec::new()),
            next_tag: plain::AtomicU32::new(1),
            ats_replaced: plain::Mutex::default(),
        }
    }

    pub fn cpu(&self, id: usize) -> Cpu {
        Cpu { id: CpuId(id), epoch: self.collector.register() }
    }

    /// `arm_smmu_probe_device`: a master for endpoint `ep`, attached to
    /// nothing (its STEs abort).
    pub fn probe(&self, ep: EndpointId) -> Master {
        let e = self.machine.endpoint(ep);
        let features = self.machine.smmu(e.smmu).features;
        Master::probe(&self.env, ep, e.smmu, features, &e.sids, e.ats_capable, self.machine.alloc_frame())
    }

    /// `arm_smmu_domain_alloc` and the domain's finalise: a fresh domain
    /// with an empty array and an ASID or VMID.
    pub fn alloc_domain(&self, kind: DomainKind) -> Result<Arc<Domain>, Errno> {
        self.env.alloc(FaultSite::DomainAlloc)?;
        let id = DomainId(self.next_domain.fetch_add(1, Relaxed));
        let tag = self.alloc_tag();
        let stage = match kind {
            DomainKind::S1 => Stage::S1 { asid: tag },
            DomainKind::S2 { nest_parent } => Stage::S2 { vmid: tag, nest_parent },
            DomainKind::Sva => Stage::Sva { asid: tag },
        };
        let pt = PageTable::new(&self.machine, id);
        // Every word starts at 0: version 0 of each array pointer is the
        // empty array, and no master uses ATS.
        let words = self.machine.alloc_domain_words(id);
        Ok(Arc::new(Domain {
            id,
            stage,
            pt,
            invs: Rcu::new(Invs::new()),
            v9: Rcu::new(crate::v9::Invs::default()),
            words,
            legacy: LegacyDomain::new(),
        }))
    }

    fn alloc_tag(&self) -> u16 {
        let reused = self.free_tags.lock().pop();
        if reused.is_some() {
            self.machine.oracle.cover(Goal::TagReused);
        }
        reused.unwrap_or_else(|| self.next_tag.fetch_add(1, Relaxed) as u16)
    }

    /// What this world reached: the oracle's goals and the injected faults.
    pub fn coverage(&self) -> Coverage {
        let mut c = self.machine.oracle.coverage();
        for (site, n) in self.env.injections() {
            c.add_count(site.goal(), n);
        }
        c
    }

    /// Free a domain nothing is attached to; its ASID/VMID goes back to the
    /// pool for the next domain. The epoch engine flushed the tag on its
    /// last unref; the legacy one flushes it here, on its one SMMU.
    pub fn free_domain(&self, cpu: &Cpu, d: Arc<Domain>) {
        if let (Engine::Legacy, Some(smmu)) = (self.engine, d.legacy.smmu()) {
            self.flush_tag(cpu, &d.tag_inv(smmu, self.machine.smmu(smmu).features));
        }
        self.free_tags.lock().push(d.tag());
    }

    /// Map `size` bytes (a page or a block) at `iova` to fresh memory, then
    /// tell the device (a doorbell write orders the PTEs before it).
    pub fn map(&self, cpu: &Cpu, d: &Domain, iova: u64, size: u64) -> Result<u64, PtError> {
        smmu_sync::locate("map", iova);
        let pa = self.machine.alloc(size);
        d.pt.map(&self.machine, cpu.id, iova, pa, size)?;
        self.machine.mem.smp_mb(cpu.id);
        self.machine.oracle.map_returned(d.id, iova, pa, size);
        Ok(pa)
    }

    /// Map without telling any device: how iommufd fills a new domain from
    /// an IOAS before attaching it. Only the attach's barriers, on this same
    /// CPU, order these PTEs before the SMMU can reach them.
    pub fn populate(&self, cpu: &Cpu, d: &Domain, iova: u64, size: u64) -> Result<u64, PtError> {
        smmu_sync::locate("populate", iova);
        let pa = self.machine.alloc(size);
        d.pt.map(&self.machine, cpu.id, iova, pa, size)?;
        self.machine.oracle.map_returned(d.id, iova, pa, size);
        Ok(pa)
    }

    /// `iommu_unmap` + `iotlb_sync`: clear the PTE, invalidate, and only
    /// then return. SVA domains invalidate through the mmu-notifier range
    /// path (page granule, not leaf-only).
    pub fn unmap(&self, cpu: &Cpu, d: &Domain, iova: u64, size: u64) -> Result<u64, PtError> {
        smmu_sync::locate("unmap", iova);
        self.machine.oracle.unmap_begin(d.id, iova, size);
        let pa = d.pt.unmap(&self.machine, cpu.id, iova, size)?;
        match d.stage {
            Stage::Sva { .. } => self.domain_inv_range(cpu, d, iova, size, PAGE, false),
            _ => self.domain_inv_range(cpu, d, iova, size, size, true),
        }
        self.machine.oracle.unmap_returned(d.id, iova, pa, size);
        Ok(pa)
    }

    /// `tlb_inv_walk`: a table was freed; leaf-only is not enough.
    pub fn tlb_inv_walk(&self, cpu: &Cpu, d: &Domain, iova: u64, size: u64, granule: u64) {
        self.domain_inv_range(cpu, d, iova, size, granule, false);
    }

    /// An unmap covering a whole 2 MiB region mapped with pages: io-pgtable
    /// frees the level-3 table and flushes the walk (`tlb_inv_walk` at the
    /// page granule). Returns the pages it unmapped.
    pub fn unmap_table(&self, cpu: &Cpu, d: &Domain, iova: u64) -> Result<Vec<u64>, PtError> {
        smmu_sync::locate("unmap_table", iova);
        self.machine.oracle.unmap_begin(d.id, iova, BLOCK);
        let pages = d.pt.unmap_table(&self.machine, cpu.id, iova)?;
        self.tlb_inv_walk(cpu, d, iova, BLOCK, PAGE);
        for &(va, pa) in &pages {
            self.machine.oracle.unmap_returned(d.id, va, pa, PAGE);
        }
        Ok(pages.into_iter().map(|(_, pa)| pa).collect())
    }

    /// Remove an SMMU instance: its masters go to blocked (dropping their
    /// entries from every array), then a grace period passes so that no
    /// walker still holding an older array can reach the instance.
    pub fn remove_smmu(&self, cpu: &Cpu, smmu: SmmuId, masters: &[&Master]) -> Result<(), Errno> {
        smmu_sync::locate("remove_smmu", u64::from(smmu.0));
        for m in masters.iter().filter(|m| m.smmu == smmu) {
            // PASIDs first: the RID leaves its CD table last.
            let ssids: Vec<u32> = m.state.lock().attached.keys().rev().copied().collect();
            for ssid in ssids {
                if m.state.lock().attached.get(&ssid).is_some_and(|t| t.domain().is_some()) {
                    self.machine.oracle.cover(Goal::SmmuRemovedAttached);
                }
                self.attach(cpu, m, ssid, crate::Target::Blocked, false)?;
            }
        }
        if !self.env.mutant(Mutant::RemoveSmmuWithoutGracePeriod) {
            self.synchronize_rcu(cpu);
        }
        self.machine.remove_smmu(smmu);
        Ok(())
    }

    /// Report the WARNs the driver hit since the last call.
    pub(crate) fn report_warnings(&self) {
        for w in self.env.take_warnings() {
            self.machine.oracle.report(ViolationKind::DriverWarn, format!("WARN: {w:?}"));
        }
    }

    /// Fact 5 at a quiescent point: every ASID/VMID still cached in an IOTLB
    /// must be in one of `domains`' arrays.
    /// In the legacy design a domain's tag stays live on its SMMU until the
    /// domain is freed.
    pub fn check_tags(&self, cpu: &Cpu, domains: &[&Domain]) {
        let guard = cpu.epoch.pin();
        let live: Vec<InvDesc> = match self.engine {
            Engine::Fenced => domains.iter().flat_map(|d| d.invs.load(&guard).iter().map(|i| i.desc)).collect(),
            Engine::V9 => domains
                .iter()
                .flat_map(|d| {
                    let invs = d.v9.load(&guard);
                    self.v9_oops_on_err_ptr(d, invs, "the next use of the array");
                    invs.entries().iter().filter(|i| i.users() != 0).map(|i| i.desc)
                })
                .collect(),
            Engine::Legacy => domains
                .iter()
                .filter_map(|d| d.legacy.smmu().map(|s| d.tag_inv(s, self.machine.smmu(s).features)))
                .collect(),
        };
        self.machine.check_tags(|smmu, tag: &TlbTag| {
            live.iter().any(|inv| {
                inv.smmu == smmu
                    && match (inv.ty, tag.kind) {
                        (InvType::S1Asid, TlbKind::S1Nh | TlbKind::S1El2) => inv.id == u32::from(tag.asid),
                        (InvType::S2Vmid, TlbKind::S2 | TlbKind::Nested) => inv.id == u32::from(tag.vmid),
                        _ => false,
                    }
            })
        });
    }
}

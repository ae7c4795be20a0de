//! The driver's entry points (what the IOMMU core and io-pgtable call):
//! probe, domain allocation and free, map and unmap, attach, invalidation,
//! SMMU removal. Each runs the steps every design shares and hands the
//! rest to its design.

use crate::attach::{self, AttachState};
use crate::design::Design;
use crate::dispatch::Engine;
use crate::domain::{Domain, Stage, Target};
use crate::env::{Env, FaultSite};
use crate::kernel::{Cpu, Kernel};
use crate::master::Master;
use crate::types::{InvDesc, InvType};
use crate::Errno;
use hwmodel::{
    Coverage, DomainId, EndpointId, Goal, Machine, PageTable, PtError, SmmuId, TlbKind, TlbTag, BLOCK, PAGE,
};
use smmu_sync::plain;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// What kind of domain to allocate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DomainKind {
    S1,
    S2 { nest_parent: bool },
    Sva,
}

pub struct Driver {
    k: Kernel,
    design: Box<dyn Design>,
    next_domain: plain::AtomicU32,
    /// Free ASIDs and VMIDs, reused most-recent first so reuse is common.
    free_tags: plain::Mutex<Vec<u16>>,
    next_tag: plain::AtomicU32,
}

impl Deref for Driver {
    type Target = Kernel;
    fn deref(&self) -> &Kernel {
        &self.k
    }
}

impl DerefMut for Driver {
    fn deref_mut(&mut self) -> &mut Kernel {
        &mut self.k
    }
}

impl Driver {
    pub fn new(machine: Machine, env: Env, engine: Engine) -> Self {
        Self {
            k: Kernel::new(machine, env),
            design: engine.design(),
            next_domain: plain::AtomicU32::new(1),
            free_tags: plain::Mutex::new(Vec::new()),
            next_tag: plain::AtomicU32::new(1),
        }
    }

    /// The design as its own type, for its tests and benchmarks.
    pub fn design<T: Design>(&self) -> Option<&T> {
        (&*self.design as &dyn std::any::Any).downcast_ref()
    }

    /// `arm_smmu_probe_device`: a master for endpoint `ep`, attached to
    /// nothing (its STEs abort).
    pub fn probe(&self, ep: EndpointId) -> Master {
        let e = self.machine.endpoint(ep);
        let features = self.machine.smmu(e.smmu).features;
        Master::probe(&self.env, ep, e.smmu, features, &e.sids, e.ats_capable, self.machine.alloc_frame())
    }

    /// `arm_smmu_domain_alloc` and the domain's finalise: a fresh domain
    /// with an ASID or VMID and its design's empty invalidation state.
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
        // Every word starts at 0: version 0 of the array pointer is the
        // empty array, and no master uses ATS.
        let words = self.machine.alloc_domain_words(id);
        let invs = self.design.domain_alloc(&self.k, id, stage, words);
        Ok(Arc::new(Domain { id, stage, pt, words, invs }))
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

    /// Whether the line mutant `m` breaks is code this design runs.
    pub fn honours(&self, m: crate::Mutant) -> bool {
        self.design.honours(m)
    }

    /// Whether this design can reach coverage goal `g`.
    pub fn can_reach(&self, g: Goal) -> bool {
        self.design.can_reach(g)
    }

    /// Free a domain nothing is attached to; its ASID/VMID goes back to the
    /// pool for the next domain.
    pub fn free_domain(&self, cpu: &Cpu, d: Arc<Domain>) {
        let _f = smmu_sync::kernel_fn("arm_smmu_domain_free");
        self.design.domain_free(&self.k, cpu, &d);
        self.free_tags.lock().push(d.tag());
    }

    /// Map `size` bytes (a page or a block) at `iova` to fresh memory, then
    /// tell the device (a doorbell write orders the PTEs before it).
    pub fn map(&self, cpu: &Cpu, d: &Domain, iova: u64, size: u64) -> Result<u64, PtError> {
        let _f = smmu_sync::kernel_fn("iommu_map");
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
        let _f = smmu_sync::kernel_fn("iopt_fill_domain");
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
        let _f = smmu_sync::kernel_fn("iommu_unmap");
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
        let _f = smmu_sync::kernel_fn("iommu_unmap");
        smmu_sync::locate("unmap_table", iova);
        self.machine.oracle.unmap_begin(d.id, iova, BLOCK);
        let pages = d.pt.unmap_table(&self.machine, cpu.id, iova)?;
        self.tlb_inv_walk(cpu, d, iova, BLOCK, PAGE);
        for &(va, pa) in &pages {
            self.machine.oracle.unmap_returned(d.id, va, pa, PAGE);
        }
        Ok(pages.into_iter().map(|(_, pa)| pa).collect())
    }

    /// `arm_smmu_domain_inv_range`: invalidate [iova, iova + size) of
    /// `domain` wherever it may be cached; size 0 means everything.
    pub fn domain_inv_range(&self, cpu: &Cpu, domain: &Domain, iova: u64, size: u64, granule: u64, leaf: bool) {
        let _f = smmu_sync::kernel_fn("arm_smmu_domain_inv_range");
        smmu_sync::locate("domain_inv_range", u64::from(domain.id.0));
        if smmu_sync::in_interrupt() {
            self.machine.oracle.cover(Goal::IrqInvalidation);
        }
        if domain.nest_parent() && self.machine.smmus().any(|s| crate::size_too_big(s.features, size, granule)) {
            self.machine.oracle.cover(Goal::NsizeNestParent);
        }
        self.design.domain_inv_range(&self.k, cpu, domain, iova, size, granule, leaf);
    }

    /// `arm_smmu_domain_inv`: flush the whole domain.
    pub fn domain_inv(&self, cpu: &Cpu, domain: &Domain) {
        self.domain_inv_range(cpu, domain, 0, 0, 0, false);
    }

    /// Attach `target` to `m` at `ssid` (0: the RID). `want_ats` asks for
    /// ATS on a RID attach to a paging domain; PASID attaches keep the
    /// master's ATS state. On error nothing has changed.
    pub fn attach(&self, cpu: &Cpu, m: &Master, ssid: u32, target: Target, want_ats: bool) -> Result<(), Errno> {
        let _f = smmu_sync::kernel_fn(if ssid == 0 { "arm_smmu_attach_dev" } else { "arm_smmu_set_pasid" });
        smmu_sync::locate("attach", u64::from(ssid));
        let mut ms = m.state.lock();
        attach::check_attach(&ms, ssid, &target)?;
        let _asid_lock = self.asid_lock.lock();
        let old = ms.attached.get(&ssid).cloned().unwrap_or(Target::Blocked);
        self.machine.oracle.attach_begin(m.ep, ssid, target.allowed());
        let old_ats = ms.ats_enabled;
        // PASIDs keep the master's ATS state, and so does the RID while
        // PASIDs use its CD table (the kernel's cd_needs_ats).
        let ats = if ssid == 0 && !attach::pasids_in_use(&ms) {
            want_ats && m.ats_supported && target.domain().is_some()
        } else {
            old_ats
        };
        let r = {
            let guard = cpu.epoch.pin();
            let st = AttachState::new(&self.k, cpu, m, ssid, &old, &target, ats, old_ats, &guard);
            let r = if ssid != 0 && target.domain().is_none() {
                self.design.blocking_set_dev_pasid(&st, &mut ms)
            } else {
                self.design.attach_dev(&st, &mut ms)
            };
            // The ASID lock's and the group mutex's release. Only then are
            // the new pointers visible to every CPU, and only then may what
            // they replaced go: the kernel's grace period implies as much.
            self.machine.mem.release(cpu.id);
            st.retire_replaced();
            r
        };
        // Unpinned: a grace period waits for every pinned CPU, this one too.
        let r = r.map(|()| {
            let _f = smmu_sync::kernel_fn("arm_smmu_disable_ats");
            self.design.disable_ats(&self.k, cpu, m, ats, old_ats);
            ats
        });
        self.report_warnings();
        let now = if r.is_ok() { &target } else { &old };
        self.machine.oracle.attach_returned(m.ep, ssid, now.allowed());
        let ats = r?;
        if ssid == 0 {
            ms.ats_enabled = ats;
        }
        ms.attached.insert(ssid, target);
        Ok(())
    }

    /// Remove an SMMU instance: its masters go to blocked (dropping their
    /// entries from every domain), then the design waits until no walker
    /// can reach the instance.
    pub fn remove_smmu(&self, cpu: &Cpu, smmu: SmmuId, masters: &[&Master]) -> Result<(), Errno> {
        let _f = smmu_sync::kernel_fn("arm_smmu_device_remove");
        smmu_sync::locate("remove_smmu", u64::from(smmu.0));
        for m in masters.iter().filter(|m| m.smmu == smmu) {
            // PASIDs first: the RID leaves its CD table last.
            let ssids: Vec<u32> = m.state.lock().attached.keys().rev().copied().collect();
            for ssid in ssids {
                if m.state.lock().attached.get(&ssid).is_some_and(|t| t.domain().is_some()) {
                    self.machine.oracle.cover(Goal::SmmuRemovedAttached);
                }
                self.attach(cpu, m, ssid, Target::Blocked, false)?;
            }
        }
        self.design.device_remove(&self.k, cpu);
        self.machine.remove_smmu(smmu);
        Ok(())
    }

    /// Fact 5 at a quiescent point: every ASID/VMID still cached in an IOTLB
    /// must be one `domains` still invalidate.
    pub fn check_tags(&self, cpu: &Cpu, domains: &[&Domain]) {
        let live: Vec<InvDesc> = self.design.domain_tags(&self.k, cpu, domains);
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

//! The invalidation fast path: `arm_smmu_domain_inv_range` and the command
//! encodings it uses. Lock-free except for the ATS read lock, which it takes
//! only when the array holds ATS entries; no allocation. Also the legacy
//! design's path, for comparison.

use crate::domain::Domain;
use crate::driver::{Cpu, Driver, Engine};
use crate::invs::{InvDesc, InvType};
use crate::shared::{View, INVS_PTR, NR_ATS_MASTERS};
use crate::Mutant;
use hwmodel::{Cmd, Features, Goal, Opcode, SmmuId, ViolationKind};
use std::borrow::Borrow;

/// Commands per submission, the closing CMD_SYNC included.
const BATCH: usize = 64;
/// Range commands one entry can need at most: each covers up to 31 << scale
/// pages, so a range of up to 2^64 bytes takes a few dozen.
const MAX_RANGE_CMDS: usize = 64;

/// `arm_smmu_inv_size_too_big`: whether to use the no-size command.
pub fn size_too_big(f: Features, size: u64, granule: u64) -> bool {
    if size == 0 || size == u64::MAX {
        return true;
    }
    if f.range_inv {
        return false;
    }
    size >= max_tlbi_ops(granule) * granule
}

/// Like arm64's MAX_TLBI_OPS: past this many per-granule TLBIs, one
/// whole-ASID/VMID command is cheaper than risking a soft lockup.
fn max_tlbi_ops(granule: u64) -> u64 {
    1 << (granule.max(8).ilog2() - 3)
}

/// `arm_smmu_atc_inv_to_cmd`: one ATC_INV covering [iova, iova + size) as a
/// naturally aligned power-of-two span; size 0 means the whole ATC. SSID 0
/// (IOMMU_NO_PASID) is sent without SSV, which covers every PASID.
pub fn atc_inv_cmd(sid: u32, ssid: u32, iova: u64, size: u64) -> Cmd {
    let base = Cmd { sid, ssid, ssv: ssid != 0, ..Cmd::new(Opcode::AtcInv) };
    if size == 0 {
        return Cmd { addr: 0, atc_size: 64, ..base };
    }
    let (start, end) = (iova >> 12, iova.saturating_add(size - 1) >> 12);
    let log2_span = 64 - (start ^ end).leading_zeros();
    let start = start & !((1u64 << log2_span) - 1);
    Cmd { addr: start << 12, atc_size: (log2_span + 12) as u8, ..base }
}

/// Commands queued for one SMMU, submitted with a closing sync.
pub(crate) struct Batch<'a> {
    drv: &'a Driver,
    cpu: &'a Cpu,
    smmu: SmmuId,
    cmds: [Cmd; BATCH],
    num: usize,
    issued: usize,
}

impl<'a> Batch<'a> {
    pub(crate) fn new(drv: &'a Driver, cpu: &'a Cpu) -> Self {
        Self { drv, cpu, smmu: SmmuId(0), cmds: [Cmd::sync(); BATCH], num: 0, issued: 0 }
    }

    /// `arm_smmu_cmdq_batch_add`.
    pub(crate) fn add(&mut self, smmu: SmmuId, cmd: Cmd) {
        if self.num > 0 && (self.smmu != smmu || self.num == BATCH - 1) {
            self.submit();
        }
        self.smmu = smmu;
        self.cmds[self.num] = cmd;
        self.num += 1;
        self.issued += 1;
    }

    /// Commands waiting for the next submit.
    pub(crate) fn pending(&self) -> usize {
        self.num
    }

    /// Commands added so far.
    pub(crate) fn issued(&self) -> usize {
        self.issued
    }

    pub(crate) fn submit(&mut self) {
        if self.num == 0 {
            return;
        }
        self.cmds[self.num] = Cmd::sync();
        self.drv.machine.submit(self.cpu.id, self.smmu, &self.cmds[..=self.num]);
        self.num = 0;
    }

    /// `arm_smmu_cmdq_batch_add_range`: TLBIs covering [iova, iova + size),
    /// per granule, or as RANGE_INV commands of up to 31 << scale pages.
    fn add_range(&mut self, inv: &InvDesc, mut cmd: Cmd, iova: u64, size: u64, granule: u64) {
        let f = self.drv.machine.smmu(inv.smmu).features;
        let tg = u32::from(inv.pgsize);
        let end = iova.saturating_add(size);
        let mut num_pages = 0u64;
        if f.range_inv {
            num_pages = (size >> tg).max(1);
            cmd.range.tg = ((tg - 10) / 2) as u8;
            if cmd.leaf {
                // The level the granule sits at: 3 for pages, 2 for blocks.
                cmd.range.ttl = (4 - (granule.ilog2() - 3) / (tg - 3)) as u8;
            } else if num_pages & 31 == 1 {
                // Keep SCALE and NUM from both being 0 with no TTL.
                num_pages += 1;
            }
        }
        let mut iova = iova;
        while iova < end {
            smmu_sync::tick();
            let step = if f.range_inv {
                let scale = num_pages.trailing_zeros();
                let num = (num_pages >> scale) & 31;
                cmd.range.scale = scale as u8;
                cmd.range.num = (num - 1) as u8;
                num_pages -= num << scale;
                num << (scale + tg)
            } else {
                granule
            };
            cmd.addr = iova;
            self.add(inv.smmu, cmd);
            iova = iova.saturating_add(step);
        }
    }

    /// The commands one entry needs for [iova, iova + size); for an ASID or
    /// VMID entry this is `arm_smmu_inv_to_cmdq_batch`.
    pub(crate) fn emit(&mut self, inv: &InvDesc, iova: u64, size: u64, granule: u64, leaf: bool) {
        let f = self.drv.machine.smmu(inv.smmu).features;
        let tlbi = |op| {
            let id = inv.id as u16;
            match inv.ty {
                InvType::S1Asid => Cmd { asid: id, leaf, ..Cmd::new(op) },
                _ => Cmd { vmid: id, leaf, ..Cmd::new(op) },
            }
        };
        match inv.ty {
            InvType::S1Asid | InvType::S2Vmid if size_too_big(f, size, granule) => {
                self.add(inv.smmu, tlbi(inv.nsize_opcode))
            }
            InvType::S1Asid | InvType::S2Vmid => self.add_range(inv, tlbi(inv.size_opcode), iova, size, granule),
            // A VMALL already removed the nested stage-1 entries.
            InvType::S2VmidS1Clear
                if size_too_big(f, size, granule) || self.drv.env.mutant(Mutant::S1ClearAlwaysSkipped) => {}
            InvType::S2VmidS1Clear => self.add(inv.smmu, Cmd { vmid: inv.id as u16, ..Cmd::new(Opcode::TlbiNhAll) }),
            InvType::Ats => self.add(inv.smmu, atc_inv_cmd(inv.id, inv.ssid, iova, size)),
            InvType::AtsFull => self.add(inv.smmu, atc_inv_cmd(inv.id, 0, 0, 0)),
        }
    }
}

/// What one walk did.
#[derive(Clone, Copy, Debug, Default)]
pub struct Walk {
    pub issued: usize,
    /// The most commands this array and range may take.
    pub bound: usize,
    /// A freed array was read.
    pub poisoned: bool,
}

/// The most commands one entry may take for a range at `granule`.
pub(crate) fn command_bound(f: Features, granule: u64) -> usize {
    if f.range_inv {
        MAX_RANGE_CMDS
    } else {
        max_tlbi_ops(granule) as usize
    }
}

/// `arm_smmu_invs_end_batch`: why the commands so far must complete before
/// `next`'s, if they must (as the coverage goal it reaches).
pub(crate) fn end_batch(drv: &Driver, cur: &InvDesc, next: &InvDesc) -> Option<Goal> {
    if cur.smmu != next.smmu {
        return Some(Goal::BatchEndSmmu);
    }
    // The S2 TLBIs must finish before the nested S1 clear.
    if cur.ty != InvType::S2VmidS1Clear && next.ty == InvType::S2VmidS1Clear {
        return Some(Goal::BatchEndS1Clear);
    }
    // ATC invalidations only after the IOTLB cannot refill them.
    (!cur.ty.is_ats() && next.ty.is_ats() && !drv.env.mutant(Mutant::AtsInTlbiBatch)).then_some(Goal::BatchEndAts)
}

impl Driver {
    /// `arm_smmu_domain_inv_range`: invalidate [iova, iova + size) of
    /// `domain` everywhere its array says; size 0 means everything.
    pub fn domain_inv_range(&self, cpu: &Cpu, domain: &Domain, iova: u64, size: u64, granule: u64, leaf: bool) {
        smmu_sync::locate("domain_inv_range", u64::from(domain.id.0));
        if smmu_sync::in_interrupt() {
            self.machine.oracle.cover(Goal::IrqInvalidation);
        }
        if domain.nest_parent() && self.machine.smmus().any(|s| size_too_big(s.features, size, granule)) {
            self.machine.oracle.cover(Goal::NsizeNestParent);
        }
        match self.engine {
            Engine::Legacy => return self.legacy_inv_range(cpu, domain, iova, size, granule, leaf),
            Engine::V9 => return self.v9_domain_inv_range(cpu, domain, iova, size, granule, leaf),
            Engine::Fenced => {}
        }
        // Pairs with the barrier after publishing an array: either this
        // load sees the new array, or the walker that reads the new STE
        // sees our page-table write.
        if !self.env.mutant(Mutant::NoSmpMbInvRange) {
            self.machine.mem.smp_mb(cpu.id);
        }
        let guard = cpu.epoch.pin();
        let invs = self.rcu_dereference(cpu, domain.id, &domain.invs, domain.words + INVS_PTR, &guard);
        let v = View::new(&self.machine, cpu);
        // Invalidations run in interrupt context too: with a plain read
        // lock, an interrupt on this CPU could read-lock again behind a
        // writer waiting for this very reader.
        let words = invs.words();
        let ats_lock = words.has_ats(v).then(|| {
            if self.env.mutant(Mutant::ReadLockInIrqWithoutIrqsave) {
                invs.rwlock().read_lock()
            } else {
                invs.rwlock().read_lock_irqsave()
            }
        });
        let trash = std::cell::Cell::new(false);
        let live = (0..words.num_invs(v))
            .filter(|&k| {
                let users = words.users(v, k);
                trash.set(trash.get() || users == 0);
                users != 0
            })
            .map(|k| &invs.inv(k).desc);
        let walk = self.inv_entries(cpu, live, iova, size, granule, leaf, || invs.is_poisoned());
        let o = &self.machine.oracle;
        if trash.get() {
            o.cover(Goal::TrashWalked);
        }
        if !domain.invs.is_current(invs, &guard) {
            self.cover_old_array(invs.entries(), domain.invs.peek(&guard).entries());
        }

        // Dropping the ATS read lock touches the array one last time.
        let poisoned = walk.poisoned || (ats_lock.is_some() && invs.is_poisoned());
        if ats_lock.is_some() {
            // read_unlock's release.
            self.machine.mem.release(cpu.id);
        }
        drop(ats_lock);
        self.report_walk(domain, Walk { poisoned, ..walk }, size, granule);
    }

    /// The oracle's checks on one walk: it read no freed array and issued
    /// no more commands than the bound.
    pub(crate) fn report_walk(&self, domain: &Domain, walk: Walk, size: u64, granule: u64) {
        if walk.poisoned {
            let detail = format!("domain_inv_range on {:?} walked an array freed under it", domain.id);
            self.machine.oracle.report(ViolationKind::UseAfterFree, detail);
        }
        if walk.issued > walk.bound {
            let detail = format!(
                "{} commands invalidating {size:#x} bytes at granule {granule:#x}; the bound for this array is {}",
                walk.issued, walk.bound
            );
            self.machine.oracle.report(ViolationKind::CommandBound, detail);
        }
    }

    /// The walker's core (`__arm_smmu_domain_inv_range`): the commands for
    /// `live` entries, batched per SMMU and submitted when the next entry
    /// is on another SMMU, is the first S1 clear, or is the first ATS entry.
    /// `poisoned` is asked before each entry is read. Public so benchmarks
    /// can run the same command building under other locking designs.
    #[allow(clippy::too_many_arguments)]
    pub fn inv_entries<E: Borrow<InvDesc>>(
        &self,
        cpu: &Cpu,
        live: impl Iterator<Item = E>,
        iova: u64,
        size: u64,
        granule: u64,
        leaf: bool,
        poisoned: impl Fn() -> bool,
    ) -> Walk {
        let mut batch = Batch::new(self, cpu);
        let mut walk = Walk::default();
        let mut live = live.peekable();
        while let Some(inv) = live.next() {
            smmu_sync::tick();
            let inv = inv.borrow();
            walk.poisoned |= poisoned();
            let f = self.machine.smmu(inv.smmu).features;
            walk.bound += command_bound(f, granule);
            batch.emit(inv, iova, size, granule, leaf);
            // None: the last entry; Some(None): the batch goes on.
            let why = live.peek().map(|next| end_batch(self, inv, next.borrow()));
            if batch.num > 0 && why.is_none_or(|w| w.is_some()) {
                if let Some(Some(g)) = why {
                    self.machine.oracle.cover(g);
                }
                batch.submit();
            }
        }
        walk.issued = batch.issued;
        walk
    }

    /// The pre-series invalidation: the domain's tag on its one SMMU (and
    /// the nested stage-1 clear of a nesting parent), then, if any master
    /// uses ATS, ATC invalidations for the device list, issued while its
    /// lock is held.
    fn legacy_inv_range(&self, cpu: &Cpu, d: &Domain, iova: u64, size: u64, granule: u64, leaf: bool) {
        let Some(smmu) = d.legacy.smmu() else {
            // In the kernel a legacy domain only gets its page table at its
            // first attach; ours exist from allocation, so order the PTE
            // write here as that attach would.
            self.machine.mem.smp_mb(cpu.id);
            return;
        };
        let f = self.machine.smmu(smmu).features;
        let tag = d.tag_inv(smmu, f);
        let clear = InvDesc::new(smmu, f.e2h, InvType::S2VmidS1Clear, tag.id, 0, 0);
        let tlbis = [tag, clear];
        let n = if d.nest_parent() { 2 } else { 1 };
        self.inv_entries(cpu, tlbis[..n].iter(), iova, size, granule, leaf, || false);
        // The TLBIs are complete before the count is read, so a master that
        // enables ATS after the read cannot cache what they removed.
        self.machine.mem.smp_mb(cpu.id);
        // atomic_read(&nr_ats_masters)
        if self.machine.mem.load(cpu.id, d.words + NR_ATS_MASTERS) == 0 {
            return;
        }
        let ty = if d.nest_parent() { InvType::AtsFull } else { InvType::Ats };
        let devices = self.devices_lock(cpu, d);
        let ats = devices
            .iter()
            .filter(|md| md.ats)
            .flat_map(|md| md.sids.iter().map(move |&sid| InvDesc::new(smmu, f.e2h, ty, sid, md.ssid, 0)));
        self.inv_entries(cpu, ats, iova, size, granule, leaf, || false);
    }

    /// `arm_smmu_domain_inv`: flush the whole domain.
    pub fn domain_inv(&self, cpu: &Cpu, domain: &Domain) {
        self.domain_inv_range(cpu, domain, 0, 0, 0, false);
    }

    /// A walk ended on `walked` after its domain had published `current`
    /// (either engine's walker).
    pub(crate) fn cover_old_array(&self, walked: &[crate::invs::Inv], current: &[crate::invs::Inv]) {
        let o = &self.machine.oracle;
        o.cover(Goal::WalkerOnOldArray);
        if crate::invs::ats_joined(walked, current) {
            o.cover(Goal::AtsJoinedMidWalk);
        }
    }
}

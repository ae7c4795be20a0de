//! Command building every design shares: the batch (`struct
//! arm_smmu_cmdq_batch`), range and ATC encodings, `size_too_big`, when a
//! batch must end, the walk over a run of live entries, and the oracle's
//! checks on one walk. No allocation on the fast path.

use crate::domain::Domain;
use crate::kernel::{Cpu, Kernel};
use crate::types::{InvDesc, InvType};
use crate::Mutant;
use hwmodel::{Cmd, Features, Goal, Opcode, SmmuId, ViolationKind};
use smallvec::SmallVec;
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
    k: &'a Kernel,
    cpu: &'a Cpu,
    smmu: SmmuId,
    /// Filled as commands are added, like the kernel's on-stack batch:
    /// nothing is written ahead of use.
    cmds: SmallVec<[Cmd; BATCH]>,
    issued: usize,
}

impl<'a> Batch<'a> {
    pub(crate) fn new(k: &'a Kernel, cpu: &'a Cpu) -> Self {
        Self { k, cpu, smmu: SmmuId(0), cmds: SmallVec::new(), issued: 0 }
    }

    /// `arm_smmu_cmdq_batch_add`.
    pub(crate) fn add(&mut self, smmu: SmmuId, cmd: Cmd) {
        if !self.cmds.is_empty() && (self.smmu != smmu || self.cmds.len() == BATCH - 1) {
            self.submit();
        }
        self.smmu = smmu;
        self.cmds.push(cmd);
        self.issued += 1;
    }

    /// Commands waiting for the next submit.
    pub(crate) fn pending(&self) -> usize {
        self.cmds.len()
    }

    /// Commands added so far.
    pub(crate) fn issued(&self) -> usize {
        self.issued
    }

    /// `arm_smmu_cmdq_batch_submit`.
    pub(crate) fn submit(&mut self) {
        if self.cmds.is_empty() {
            return;
        }
        self.cmds.push(Cmd::sync());
        self.k.machine.submit(self.cpu.id, self.smmu, &self.cmds);
        self.cmds.clear();
    }

    /// `arm_smmu_cmdq_batch_add_range`: TLBIs covering [iova, iova + size).
    fn add_range(&mut self, inv: &InvDesc, cmd: Cmd, iova: u64, size: u64, granule: u64) {
        let f = self.k.machine.smmu(inv.smmu).features;
        for cmd in RangeCmds::new(f, u32::from(inv.pgsize), cmd, iova, size, granule) {
            self.add(inv.smmu, cmd);
        }
    }

    /// The commands one entry needs for [iova, iova + size); for an ASID or
    /// VMID entry this is `arm_smmu_inv_to_cmdq_batch`.
    pub(crate) fn emit(&mut self, inv: &InvDesc, iova: u64, size: u64, granule: u64, leaf: bool) {
        let f = self.k.machine.smmu(inv.smmu).features;
        let tlbi = |op| {
            let id = inv.id as u16;
            match inv.ty {
                InvType::S1Asid => Cmd { asid: id, leaf, ..Cmd::new(op) },
                _ => Cmd { vmid: id, leaf, ..Cmd::new(op) },
            }
        };
        match inv.ty {
            InvType::S1Asid | InvType::S2Vmid
                if size_too_big(f, size, granule)
                    && !(self.k.env.mutant(Mutant::SizeTooBigIgnored) && size != 0 && size != u64::MAX) =>
            {
                self.add(inv.smmu, tlbi(inv.nsize_opcode))
            }
            InvType::S1Asid | InvType::S2Vmid => self.add_range(inv, tlbi(inv.size_opcode), iova, size, granule),
            // A VMALL already removed the nested stage-1 entries.
            InvType::S2VmidS1Clear
                if size_too_big(f, size, granule) || self.k.env.mutant(Mutant::S1ClearAlwaysSkipped) => {}
            InvType::S2VmidS1Clear => self.add(inv.smmu, Cmd { vmid: inv.id as u16, ..Cmd::new(Opcode::TlbiNhAll) }),
            InvType::Ats => self.add(inv.smmu, atc_inv_cmd(inv.id, inv.ssid, iova, size)),
            InvType::AtsFull => self.add(inv.smmu, atc_inv_cmd(inv.id, 0, 0, 0)),
        }
    }
}

/// The TLBIs of `arm_smmu_cmdq_batch_add_range`, one at a time: per
/// granule, or as RANGE_INV commands of up to 31 << scale pages of the
/// leaf size `1 << tg`.
pub(crate) struct RangeCmds {
    cmd: Cmd,
    iova: u64,
    end: u64,
    num_pages: u64,
    range_inv: bool,
    tg: u32,
    granule: u64,
}

impl RangeCmds {
    pub(crate) fn new(f: Features, tg: u32, mut cmd: Cmd, iova: u64, size: u64, granule: u64) -> Self {
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
        Self { cmd, iova, end: iova.saturating_add(size), num_pages, range_inv: f.range_inv, tg, granule }
    }
}

impl Iterator for RangeCmds {
    type Item = Cmd;

    fn next(&mut self) -> Option<Cmd> {
        if self.iova >= self.end {
            return None;
        }
        smmu_sync::tick();
        let step = if self.range_inv {
            let scale = self.num_pages.trailing_zeros();
            let num = (self.num_pages >> scale) & 31;
            self.cmd.range.scale = scale as u8;
            self.cmd.range.num = (num - 1) as u8;
            self.num_pages -= num << scale;
            num << (scale + self.tg)
        } else {
            self.granule
        };
        self.cmd.addr = self.iova;
        self.iova = self.iova.saturating_add(step);
        Some(self.cmd)
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

/// The most commands one entry may take for a range at `granule`: at
/// MAX_TLBI_OPS granules a range is too big, and one command serves.
pub(crate) fn command_bound(f: Features, granule: u64) -> usize {
    if f.range_inv {
        MAX_RANGE_CMDS
    } else {
        (max_tlbi_ops(granule) as usize - 1).max(1)
    }
}

/// `arm_smmu_invs_end_batch`: why the commands so far must complete before
/// `next`'s, if they must (as the coverage goal it reaches).
pub(crate) fn end_batch(k: &Kernel, cur: &InvDesc, next: &InvDesc) -> Option<Goal> {
    if cur.smmu != next.smmu {
        return Some(Goal::BatchEndSmmu);
    }
    // The S2 TLBIs must finish before the nested S1 clear.
    if cur.ty != InvType::S2VmidS1Clear && next.ty == InvType::S2VmidS1Clear {
        return Some(Goal::BatchEndS1Clear);
    }
    // ATC invalidations only after the IOTLB cannot refill them.
    (!cur.ty.is_ats() && next.ty.is_ats() && !k.env.mutant(Mutant::AtsInTlbiBatch)).then_some(Goal::BatchEndAts)
}

/// The commands for a run of `live` entries, batched per SMMU and
/// submitted when the next entry is on another SMMU, is the first S1
/// clear, or is the first ATS entry. `poisoned` is asked before each entry
/// is read. Public so benchmarks can run the same command building under
/// other locking designs.
#[allow(clippy::too_many_arguments)]
pub fn inv_entries<E: Borrow<InvDesc>>(
    k: &Kernel,
    cpu: &Cpu,
    live: impl Iterator<Item = E>,
    iova: u64,
    size: u64,
    granule: u64,
    leaf: bool,
    poisoned: impl Fn() -> bool,
) -> Walk {
    let mut batch = Batch::new(k, cpu);
    let mut walk = Walk::default();
    let mut live = live.peekable();
    while let Some(inv) = live.next() {
        smmu_sync::tick();
        let inv = inv.borrow();
        walk.poisoned |= poisoned();
        let f = k.machine.smmu(inv.smmu).features;
        walk.bound += command_bound(f, granule);
        batch.emit(inv, iova, size, granule, leaf);
        // None: the last entry; Some(None): the batch goes on.
        let why = live.peek().map(|next| end_batch(k, inv, next.borrow()));
        if batch.pending() > 0 && why.is_none_or(|w| w.is_some()) {
            if let Some(Some(g)) = why {
                k.machine.oracle.cover(g);
            }
            batch.submit();
        }
    }
    walk.issued = batch.issued;
    walk
}

/// The oracle's checks on one walk: it read no freed array and issued no
/// more commands than the bound.
pub(crate) fn report_walk(k: &Kernel, domain: &Domain, walk: Walk, size: u64, granule: u64) {
    if walk.poisoned {
        let detail = format!("domain_inv_range on {:?} walked an array freed under it", domain.id);
        k.machine.oracle.report(ViolationKind::UseAfterFree, detail);
    }
    if walk.issued > walk.bound {
        let detail = format!(
            "{} commands invalidating {size:#x} bytes at granule {granule:#x}; the bound for this array is {}",
            walk.issued, walk.bound
        );
        k.machine.oracle.report(ViolationKind::CommandBound, detail);
    }
}

/// One command and a CMD_SYNC for `inv`'s whole ASID or VMID (its no-size
/// opcode; for a VMID that covers the nested stage-1 entries too): what
/// `arm_smmu_inv_flush_iotlb_tag` and the pre-series domain free issue.
pub(crate) fn flush_tag(k: &Kernel, cpu: &Cpu, inv: &InvDesc) {
    if matches!(inv.ty, InvType::S1Asid | InvType::S2Vmid) {
        // Size 0 is "everything": the entry's no-size opcode.
        let mut batch = Batch::new(k, cpu);
        batch.emit(inv, 0, 0, 0, false);
        batch.submit();
    }
}

/// `arm_smmu_atc_inv_master`: invalidate a master's ATC for `ssid` on each
/// of its stream IDs; SSID 0 goes without SSV and so covers every PASID.
pub(crate) fn atc_inv_master(k: &Kernel, cpu: &Cpu, smmu: SmmuId, streams: &[u32], ssid: u32) {
    let mut cmds: Vec<Cmd> = streams.iter().map(|&sid| atc_inv_cmd(sid, ssid, 0, 0)).collect();
    cmds.push(Cmd::sync());
    k.machine.submit(cpu.id, smmu, &cmds);
}

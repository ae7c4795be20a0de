//! One SMMU instance: features, stream table entries and context
//! descriptors, the configuration cache, the IOTLB and the command queue.

use crate::cmd::{Cmd, Opcode, SmmuId};
use crate::types::{Addr, DomainId, Level, BLOCK, PAGE};
use rustc_hash::FxHashMap as HashMap;
use smmu_sync::plain;
use std::collections::VecDeque;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    /// Range invalidation (TLBI with NUM/SCALE/TG/TTL).
    pub range_inv: bool,
    /// Stage 1 runs in the EL2 regime: TLBI_EL2_* instead of TLBI_NH_*.
    pub e2h: bool,
    /// ATS translation requests are served.
    pub ats: bool,
}

/// A stream table entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ste {
    Abort,
    Bypass,
    /// Stage 1: a CD table indexed by SSID.
    S1 {
        cd_table: Addr,
        eats: bool,
    },
    /// Stage 2 only.
    S2 {
        vmid: u16,
        root: Addr,
        eats: bool,
    },
    /// A guest's stage 1 over a host stage 2. With `guest_cd`, `cd_table`
    /// is the guest's CD table at an IPA, and each CD's root the IPA of the
    /// guest's stage-1 table, all walked through the stage 2 at `root`.
    /// Without it the CD table is the host's and the guest's stage 1 is
    /// identity (IPA = VA): a guest with no driver of its own.
    Nested {
        cd_table: Addr,
        vmid: u16,
        root: Addr,
        eats: bool,
        guest_cd: bool,
    },
}

impl Ste {
    pub fn eats(&self) -> bool {
        matches!(self, Ste::S1 { eats: true, .. } | Ste::S2 { eats: true, .. } | Ste::Nested { eats: true, .. })
    }
}

/// A context descriptor: the ASID and stage-1 table for one SSID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cd {
    pub asid: u16,
    pub root: Addr,
}

/// Which translation regime an IOTLB entry belongs to; decides which
/// invalidation commands reach it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TlbKind {
    /// Stage 1, non-hypervisor regime (VMID 0).
    S1Nh,
    /// Stage 1 in the EL2 (E2H) regime.
    S1El2,
    /// Stage 2 only, by IPA.
    S2,
    /// Combined guest stage 1 + host stage 2: only stage-1-scoped commands
    /// (by ASID, NH_ALL) or VMALL remove it, not TLBI_S2_IPA.
    Nested,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TlbTag {
    pub kind: TlbKind,
    pub vmid: u16,
    pub asid: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlbEntry {
    pub pa: u64,
    pub level: Level,
    /// The domain whose page table the entry was walked from.
    pub domain: DomainId,
    /// That page table's generation when the page was mapped.
    pub gen: u64,
}

/// A cached table pointer: the level-3 table a walk for a 2 MiB region
/// went through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkEntry {
    pub table: Addr,
    pub domain: DomainId,
}

/// Leaf translations and a walk cache (table pointers), by regime tag.
#[derive(Default)]
pub struct Iotlb {
    entries: HashMap<(TlbTag, u64), TlbEntry>,
    walks: HashMap<(TlbTag, u64), WalkEntry>,
}

impl Iotlb {
    pub fn lookup(&self, tag: TlbTag, iova: u64) -> Option<TlbEntry> {
        [PAGE, BLOCK].into_iter().find_map(|size| {
            let e = self.entries.get(&(tag, iova & !(size - 1)))?;
            (e.level.size() == size).then_some(*e)
        })
    }

    pub fn insert(&mut self, tag: TlbTag, iova: u64, e: TlbEntry) {
        self.entries.insert((tag, iova & !(e.level.size() - 1)), e);
    }

    /// The cached level-3 table for the 2 MiB region holding `iova`.
    pub fn walk_entry(&self, tag: TlbTag, iova: u64) -> Option<WalkEntry> {
        self.walks.get(&(tag, iova & !(BLOCK - 1))).copied()
    }

    pub fn insert_walk(&mut self, tag: TlbTag, iova: u64, w: WalkEntry) {
        self.walks.insert((tag, iova & !(BLOCK - 1)), w);
    }

    /// Cached leaf translations.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Cached table pointers.
    pub fn walks_len(&self) -> usize {
        self.walks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The tags of every cached leaf or table pointer (with repeats).
    pub fn tags(&self) -> impl Iterator<Item = TlbTag> + '_ {
        self.entries.keys().chain(self.walks.keys()).map(|(t, _)| *t)
    }

    /// Apply a TLBI command's effect. By-address commands remove the leaf
    /// entries they overlap, only at the level a TTL hint names when it
    /// names one, and cached table pointers too unless they are leaf-only.
    /// By-tag commands remove everything of the tag. Returns one leaf entry
    /// it removed, if any, as (tag, IOVA).
    pub fn invalidate(&mut self, cmd: &Cmd) -> Option<(TlbTag, u64)> {
        use TlbKind::*;
        let (start, end) = (cmd.addr, cmd.addr.saturating_add(cmd.tlbi_span()));
        let overlaps = |va: u64, size: u64| va < end && start < va + size;
        let level_ok = |e: &TlbEntry| match cmd.range.ttl {
            0 => true,
            2 => e.level == Level::Block,
            3 => e.level == Level::Page,
            _ => false,
        };
        let s1 = |t: &TlbTag| matches!(t.kind, S1Nh | Nested);
        let by_va: Option<&dyn Fn(&TlbTag) -> bool> = match cmd.op {
            Opcode::TlbiNhVa => Some(&|t| s1(t) && t.asid == cmd.asid && t.vmid == cmd.vmid),
            Opcode::TlbiNhVaa => Some(&|t| s1(t) && t.vmid == cmd.vmid),
            Opcode::TlbiEl2Va => Some(&|t| t.kind == S1El2 && t.asid == cmd.asid),
            Opcode::TlbiS2Ipa => Some(&|t| t.kind == S2 && t.vmid == cmd.vmid),
            _ => None,
        };
        let mut gone = None;
        let mut kill = |k: &(TlbTag, u64), dead: bool| {
            if dead {
                gone.get_or_insert(*k);
            }
            !dead
        };
        if let Some(tag_ok) = by_va {
            self.entries.retain(|k, e| kill(k, tag_ok(&k.0) && overlaps(k.1, e.level.size()) && level_ok(e)));
            if !cmd.leaf {
                self.walks.retain(|(t, va), _| !(tag_ok(t) && overlaps(*va, BLOCK)));
            }
            return gone;
        }
        let by_tag: &dyn Fn(&TlbTag) -> bool = match cmd.op {
            Opcode::TlbiNhAsid => &|t| s1(t) && t.asid == cmd.asid && t.vmid == cmd.vmid,
            Opcode::TlbiEl2Asid => &|t| t.kind == S1El2 && t.asid == cmd.asid,
            Opcode::TlbiS12Vmall => &|t| t.kind != S1El2 && t.vmid == cmd.vmid,
            Opcode::TlbiNhAll => &|t| s1(t) && t.vmid == cmd.vmid,
            Opcode::TlbiNsnhAll => &|t| t.kind != S1El2,
            _ => return None,
        };
        self.entries.retain(|k, _| kill(k, by_tag(&k.0)));
        self.walks.retain(|(t, _), _| !by_tag(t));
        gone
    }
}

/// Cached STEs and CDs, dropped by CFGI_STE/CFGI_CD.
#[derive(Default)]
pub struct CfgCache {
    pub stes: HashMap<u32, Ste>,
    pub cds: HashMap<(u32, u32), Cd>,
}

impl CfgCache {
    pub fn invalidate(&mut self, cmd: &Cmd) {
        match cmd.op {
            // A changed STE may point at another CD table: its CDs go too.
            Opcode::CfgiSte => {
                self.stes.remove(&cmd.sid);
                self.cds.retain(|(sid, _), _| *sid != cmd.sid);
            }
            Opcode::CfgiCd => {
                self.cds.remove(&(cmd.sid, cmd.ssid));
            }
            Opcode::CfgiCdAll => {
                self.cds.retain(|(sid, _), _| *sid != cmd.sid);
            }
            _ => {}
        }
    }
}

pub(crate) enum Queued {
    /// A command, with the ATS generation of its target endpoint when it
    /// was queued (ATC_INV only).
    Cmd(Cmd, u64),
    Sync(u64),
}

/// The command queue. Commands are consumed in order; effects between two
/// CMD_SYNCs complete in an order the scheduler picks; a sync completes
/// when everything before it has taken effect.
#[derive(Default)]
pub(crate) struct CmdQueue {
    pub(crate) pending: VecDeque<Queued>,
    /// Taken off the queue, effect not yet applied.
    pub(crate) in_flight: usize,
    pub(crate) next_ticket: u64,
    pub(crate) completed: u64,
    /// An ATC_INV since the last sync was never answered: the next sync
    /// reports CERROR_ATC_INV_SYNC.
    pub(crate) atc_timeout: bool,
}

pub struct Smmu {
    pub id: SmmuId,
    pub features: Features,
    /// Stream table base: the STE of `sid` is the word at `strtab + 8 * sid`.
    pub strtab: Addr,
    pub(crate) iotlb: plain::Mutex<Iotlb>,
    pub(crate) cfg: plain::Mutex<CfgCache>,
    pub(crate) cmdq: plain::Mutex<CmdQueue>,
    pub(crate) removed: plain::AtomicBool,
    /// Bumped by every cache invalidation; a walk that started before a bump
    /// must not fill a cache with what it read.
    pub(crate) inv_seq: plain::AtomicU64,
    /// Makes "invalidate, then bump" and "check, then fill" atomic to each
    /// other, which real threads (`--mode threads`) need.
    fill: plain::Mutex<()>,
}

impl Smmu {
    pub(crate) fn new(id: SmmuId, features: Features, strtab: Addr) -> Self {
        Self {
            id,
            features,
            strtab,
            iotlb: Default::default(),
            cfg: Default::default(),
            cmdq: Default::default(),
            removed: Default::default(),
            inv_seq: Default::default(),
            fill: Default::default(),
        }
    }

    pub fn iotlb(&self) -> std::sync::MutexGuard<'_, Iotlb> {
        self.iotlb.lock()
    }

    pub(crate) fn cfg(&self) -> std::sync::MutexGuard<'_, CfgCache> {
        self.cfg.lock()
    }

    pub(crate) fn cmdq(&self) -> std::sync::MutexGuard<'_, CmdQueue> {
        self.cmdq.lock()
    }

    /// A cache invalidation, counted.
    pub(crate) fn invalidating<R>(&self, f: impl FnOnce() -> R) -> R {
        let _fill = self.fill.lock();
        let r = f();
        self.inv_seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        r
    }

    /// A cache fill by a walk that began at `seq`, done only if no
    /// invalidation has been counted since.
    pub(crate) fn fill_since<R>(&self, seq: u64, f: impl FnOnce() -> R) {
        let _fill = self.fill.lock();
        if self.inv_seq.load(std::sync::atomic::Ordering::Relaxed) == seq {
            f();
        }
    }

    pub fn is_removed(&self) -> bool {
        self.removed.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn ste_addr(&self, sid: u32) -> Addr {
        self.strtab + 8 * u64::from(sid)
    }
}

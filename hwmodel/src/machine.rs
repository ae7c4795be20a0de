//! The simulated machine: memory, SMMUs, endpoints, and the paths that
//! connect them (command submission, ATS, DMA).

use crate::cmd::{Cmd, Opcode, SmmuId};
use crate::coverage::Goal;
use crate::mem::Memory;
use crate::odds::Odds;
use crate::oracle::{Oracle, ViolationKind};
use crate::pgtable::{s2_translate, walk, walk_nested, walk_table};
use crate::smmu::{Cd, Features, Queued, Smmu, Ste, TlbEntry, TlbKind, TlbTag, WalkEntry};
use crate::types::{Actor, Addr, Cache, CpuId, DomainId, EndpointId, Event, Level, Source, Translation, Word, PAGE};
use rustc_hash::FxHashMap as HashMap;
use smmu_sync::{plain, random_below, schedule_point, yield_now};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// Physical memory starts here; frame 0 stays unused so 0 reads as "none".
const FIRST_FRAME: u64 = 1 << 32;

/// What an endpoint does with an ATC_INV that was in flight when its ATS
/// was disabled. PCIe lets a device ignore an invalidation that races the
/// disable; what follows depends on the device and the SMMU, so it is a
/// parameter of the model. An ATC_INV sent after the disable is answered
/// (upstream's attach_commit sends one on purpose).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AtcInvDisabled {
    /// Reported as the violation `atc-inv-ats-disabled`.
    #[default]
    Error,
    /// The device completes it anyway: harmless.
    Complete,
    /// The device never answers; the CMD_SYNC after it reports
    /// CERROR_ATC_INV_SYNC once the completion timeout expires (the
    /// violation `cmd-sync-timeout`), and the driver carries on as
    /// `arm_smmu_cmdq_skip_err` lets it.
    Timeout,
}

impl AtcInvDisabled {
    pub const ALL: [AtcInvDisabled; 3] = [AtcInvDisabled::Error, AtcInvDisabled::Complete, AtcInvDisabled::Timeout];

    /// The name `stress --atc-inv-disabled` takes.
    pub fn name(self) -> &'static str {
        match self {
            AtcInvDisabled::Error => "error",
            AtcInvDisabled::Complete => "complete",
            AtcInvDisabled::Timeout => "timeout",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct AtcEntry {
    pa: u64,
    domain: Option<DomainId>,
    gen: u64,
}

/// The regime of the stage-1 entries a cached STE produces, if any.
fn ste_tag_kind(ste: &Ste, f: Features) -> Option<TlbKind> {
    match ste {
        Ste::S1 { .. } if f.e2h => Some(TlbKind::S1El2),
        Ste::S1 { .. } => Some(TlbKind::S1Nh),
        Ste::Nested { .. } => Some(TlbKind::Nested),
        _ => None,
    }
}

/// A PCI function (or platform device) behind one SMMU.
pub struct Endpoint {
    pub id: EndpointId,
    pub smmu: SmmuId,
    /// Stream IDs, in the order firmware listed them.
    pub sids: Vec<u32>,
    pub ats_capable: bool,
    ats: plain::AtomicBool,
    /// Bumped when ATS is disabled: an ATC_INV queued under an older
    /// generation and applied after the disable raced it.
    ats_gen: plain::AtomicU64,
    atc: plain::Mutex<HashMap<(u32, u64), AtcEntry>>,
    /// Bumped by every ATC invalidation; an in-flight translation request
    /// that started before a bump must not fill the ATC.
    atc_seq: plain::AtomicU64,
}

impl Endpoint {
    pub fn ats_enabled(&self) -> bool {
        self.ats.load(Relaxed)
    }

    fn atc(&self) -> std::sync::MutexGuard<'_, HashMap<(u32, u64), AtcEntry>> {
        self.atc.lock()
    }

    /// Cached ATC translations.
    pub fn atc_len(&self) -> usize {
        self.atc().len()
    }
}

pub struct Machine {
    pub mem: Memory,
    pub oracle: Arc<Oracle>,
    smmus: Vec<Smmu>,
    endpoints: Vec<Endpoint>,
    by_sid: HashMap<(SmmuId, u32), EndpointId>,
    frames: plain::AtomicU64,
    owners: plain::Mutex<HashMap<Addr, DomainId>>,
    /// Frames holding a domain's array pointers (the driver's `Domain`).
    published: plain::Mutex<HashMap<Addr, DomainId>>,
    /// Page-table generation each mapped page was mapped at.
    mappings: plain::Mutex<HashMap<u64, u64>>,
    stes: plain::Mutex<Vec<Ste>>,
    cds: plain::Mutex<Vec<Cd>>,
    /// Commands submitted while `count_only`; for timing the driver alone.
    counted: plain::AtomicU64,
    count_only: bool,
    /// How often the hardware refetches right after invalidations and
    /// evicts cached configuration on its own (`Odds`).
    odds: Odds,
    atc_inv_disabled: AtcInvDisabled,
}

impl Machine {
    pub fn new(cpus: usize) -> Self {
        let oracle = Arc::new(Oracle::new());
        let mut mem = Memory::new(cpus);
        mem.observe(oracle.clone());
        Self {
            mem,
            oracle,
            smmus: Vec::new(),
            endpoints: Vec::new(),
            by_sid: HashMap::default(),
            frames: plain::AtomicU64::new(FIRST_FRAME),
            owners: Default::default(),
            published: Default::default(),
            mappings: Default::default(),
            stes: plain::Mutex::new(vec![Ste::Abort]),
            cds: Default::default(),
            counted: Default::default(),
            count_only: false,
            odds: Odds::DEFAULT,
            atc_inv_disabled: AtcInvDisabled::default(),
        }
    }

    /// How endpoints treat an ATC_INV that raced their ATS disable.
    pub fn set_atc_inv_disabled(&mut self, mode: AtcInvDisabled) {
        self.atc_inv_disabled = mode;
    }

    /// Turn speculative refetches after invalidations and configuration
    /// evictions off (for tests of exact command effects) or on.
    pub fn set_refetch(&mut self, on: bool) {
        let d = Odds::DEFAULT;
        (self.odds.refetch, self.odds.cfg_evict) = if on { (d.refetch, d.cfg_evict) } else { (0, 0) };
    }

    /// The hardware's odds in this world.
    pub fn odds(&self) -> Odds {
        self.odds
    }

    /// A machine for timing the driver alone: native memory (plain atomics
    /// at the kernel's orderings, `Memory::native`), an oracle that judges
    /// nothing, and command queues that only count what they are given.
    pub fn native(cpus: usize) -> Self {
        let oracle = Arc::new(Oracle::off());
        Self { mem: Memory::native(cpus), oracle, count_only: true, ..Self::new(cpus) }
    }

    /// A machine whose command queues only count, over simulated memory:
    /// for recording what a driver's fast path touches (`smmu_sync::cost`)
    /// without the queue every design shares.
    pub fn counting(cpus: usize) -> Self {
        Self { count_only: true, ..Self::new(cpus) }
    }

    pub fn is_native(&self) -> bool {
        self.mem.is_native()
    }

    /// Commands submitted to a native machine so far.
    pub fn counted(&self) -> u64 {
        self.counted.load(Relaxed)
    }

    pub fn add_smmu(&mut self, features: Features) -> SmmuId {
        let id = SmmuId(self.smmus.len() as u32);
        // Up to 512 stream IDs per SMMU; every STE starts as abort (0).
        let strtab = self.alloc_frame();
        self.smmus.push(Smmu::new(id, features, strtab));
        id
    }

    /// An endpoint with the given stream IDs; panics on a SID already taken,
    /// which is a bug in the world's construction.
    pub fn add_endpoint(&mut self, smmu: SmmuId, sids: &[u32], ats_capable: bool) -> EndpointId {
        let id = EndpointId(self.endpoints.len());
        for &sid in sids {
            assert!(sid < 512, "stream table holds 512 STEs");
            assert!(self.by_sid.insert((smmu, sid), id).is_none(), "SID {sid} already on {smmu:?}");
        }
        self.endpoints.push(Endpoint {
            id,
            smmu,
            sids: sids.to_vec(),
            ats_capable: ats_capable && self.smmu(smmu).features.ats,
            ats: Default::default(),
            ats_gen: Default::default(),
            atc: Default::default(),
            atc_seq: Default::default(),
        });
        id
    }

    pub fn smmus(&self) -> impl Iterator<Item = &Smmu> {
        self.smmus.iter()
    }

    pub fn smmu(&self, id: SmmuId) -> &Smmu {
        &self.smmus[id.0 as usize]
    }

    pub fn endpoint(&self, id: EndpointId) -> &Endpoint {
        &self.endpoints[id.0]
    }

    /// A fresh 4 KiB frame, zero, never handed out again in this world.
    pub fn alloc_frame(&self) -> Addr {
        self.alloc(PAGE)
    }

    /// `size` bytes (a power of two, at least a page) aligned to `size`,
    /// zero, never handed out again: the backing of a page or block mapping.
    pub fn alloc(&self, size: u64) -> Addr {
        let mut base = 0;
        let _ = self.frames.fetch_update(Relaxed, Relaxed, |cur| {
            base = cur.next_multiple_of(size);
            Some(base + size)
        });
        base
    }

    /// A fresh frame for `domain`'s driver state: its array pointers. The
    /// oracle checks the order of their stores against the STE/CD writes
    /// that point at the domain.
    pub fn alloc_domain_words(&self, domain: DomainId) -> Addr {
        let frame = self.alloc_frame();
        self.published.lock().insert(frame, domain);
        frame
    }

    pub(crate) fn set_owner(&self, root: Addr, domain: DomainId) {
        self.owners.lock().insert(root, domain);
    }

    fn owner(&self, root: Addr) -> Option<DomainId> {
        self.owners.lock().get(&root).copied()
    }

    pub(crate) fn note_mapping(&self, pa: u64, gen: u64) {
        self.mappings.lock().insert(pa & !(PAGE - 1), gen);
    }

    fn mapping_gen(&self, pa: u64) -> u64 {
        self.mappings.lock().get(&pa).copied().unwrap_or(0)
    }

    /// The word a CPU stores to make `ste` the STE of `sid`.
    pub fn write_ste(&self, cpu: CpuId, smmu: SmmuId, sid: u32, ste: Ste) {
        if let Ste::S2 { root, .. } | Ste::Nested { root, .. } = ste {
            self.check_config_order(cpu, root, "STE");
        }
        let val = {
            let mut t = self.stes.lock();
            t.push(ste);
            t.len() as u64 - 1
        };
        self.mem.store_as(cpu, self.smmu(smmu).ste_addr(sid), val, Word::Ste);
    }

    /// Install (or clear, with `None`) the CD for `ssid` in `cd_table`.
    pub fn write_cd(&self, cpu: CpuId, cd_table: Addr, ssid: u32, cd: Option<Cd>) {
        if let Some(cd) = cd {
            self.check_config_order(cpu, cd.root, "CD");
        }
        let val = cd.map_or(0, |cd| {
            let mut t = self.cds.lock();
            t.push(cd);
            t.len() as u64
        });
        self.mem.store_as(cpu, cd_table + 8 * u64::from(ssid), val, Word::Cd);
    }

    /// An STE or CD word about to be stored makes the table at `root`, and
    /// its domain, reachable. If this CPU still buffers, since its last
    /// store-store fence, a write that maps something in that table or
    /// publishes the domain's new array, the new word may reach memory first:
    /// the SMMU walks an entry that is not there yet (a missing-translation),
    /// or caches what another CPU's unmap, still loading the old array,
    /// never invalidates (an unpublished-array); whether or not a DMA lands
    /// in that window.
    fn check_config_order(&self, cpu: CpuId, root: Addr, what: &str) {
        let Some(domain) = self.owner(root) else { return };
        let behind = self.mem.overtakable(cpu);
        let maps = behind.iter().find(|&&(addr, val)| val != 0 && self.owner(addr & !(PAGE - 1)) == Some(domain));
        if let Some((addr, _)) = maps {
            let detail = format!(
                "{cpu:?} writes a {what} pointing at {domain:?}'s page table while its write of that table at \
                 {addr:#x} is still buffered with no barrier between them: the SMMU can see the {what} first and \
                 walk a table the mapping has not reached"
            );
            self.oracle.report(ViolationKind::MissingTranslation, detail);
        }
        let published = self.published.lock();
        if let Some((addr, _)) = behind.iter().find(|(addr, _)| published.get(&(addr & !(PAGE - 1))) == Some(&domain)) {
            let detail = format!(
                "{cpu:?} writes a {what} pointing at {domain:?} while its store of {domain:?}'s new array pointer \
                 at {addr:#x} is still buffered with no barrier between them: the SMMU can use the {what} before \
                 another CPU sees the array that must invalidate for it"
            );
            drop(published);
            self.oracle.report(ViolationKind::UnpublishedArray, detail);
        }
    }

    fn decode_ste(&self, v: u64) -> Ste {
        self.stes.lock().get(v as usize).copied().unwrap_or(Ste::Abort)
    }

    fn decode_cd(&self, v: u64) -> Option<Cd> {
        (v != 0).then(|| self.cds.lock()[v as usize - 1])
    }

    /// Fact 5: no ASID/VMID outside every invalidation array may keep IOTLB
    /// entries. `live` says whether a tag on an SMMU is still in some array;
    /// each dead tag still cached is reported once.
    pub fn check_tags(&self, live: impl Fn(SmmuId, &TlbTag) -> bool) {
        for s in &self.smmus {
            let mut dead: Vec<TlbTag> = s.iotlb().tags().filter(|t| !live(s.id, t)).collect();
            dead.sort_by_key(|t| (t.vmid, t.asid));
            dead.dedup();
            for tag in dead {
                let detail = format!("{:?} still caches {tag:?}, which no invalidation array holds", s.id);
                self.oracle.report(ViolationKind::StaleTag, detail);
            }
        }
    }

    /// Turn ATS on or off at the endpoint (a PCI config write). Turning it
    /// off discards the ATC.
    pub fn set_ats(&self, ep: EndpointId, enabled: bool) {
        schedule_point();
        let e = self.endpoint(ep);
        let enabled = enabled && e.ats_capable;
        let was = e.ats.swap(enabled, Relaxed);
        if was && !enabled {
            e.ats_gen.fetch_add(1, Relaxed);
        }
        if !enabled {
            e.atc().clear();
        }
        self.oracle.record(Actor::current(), Event::Ats { ep, enabled });
    }

    /// The instance goes away; any later command to it is a violation.
    pub fn remove_smmu(&self, id: SmmuId) {
        schedule_point();
        self.smmu(id).removed.store(true, Relaxed);
        self.oracle.record(Actor::current(), Event::SmmuRemoved { smmu: id });
    }

    /// Issue `cmds` on `smmu`'s queue and, if they include a CMD_SYNC, wait
    /// for it. The queue write is ordered after all of `cpu`'s earlier
    /// stores, as the driver's barrier before updating the producer index
    /// orders them.
    pub fn submit(&self, cpu: CpuId, smmu: SmmuId, cmds: &[Cmd]) {
        if self.count_only {
            // The barrier before the producer index update.
            self.mem.dma_wmb(cpu);
            self.counted.fetch_add(cmds.len() as u64, Relaxed);
            return;
        }
        schedule_point();
        // arm_smmu_cmdq_issue_cmdlist runs with interrupts off, the wait
        // for the CMD_SYNC included.
        let _irq = smmu_sync::local_irq_save();
        let s = self.smmu(smmu);
        if s.is_removed() {
            for &cmd in cmds {
                let detail = format!("{:?} submitted to removed {smmu:?}", cmd.op);
                let e = Event::Submit { smmu, cmd };
                self.oracle.violation(ViolationKind::CmdToRemovedSmmu, detail, Actor::on(cpu), e);
            }
            return;
        }
        self.mem.smp_mb(cpu);
        let mut ticket = None;
        {
            let mut q = s.cmdq();
            for &cmd in cmds {
                if let Some(why) = cmd.illegal(s.features.range_inv) {
                    // CERROR_ILL: the error handler skips the command.
                    let detail = format!("CERROR_ILL on {smmu:?}: {why}: {cmd:?}");
                    let e = Event::Submit { smmu, cmd };
                    self.oracle.violation(ViolationKind::IllegalCommand, detail, Actor::on(cpu), e);
                    continue;
                }
                self.oracle.record(Actor::on(cpu), Event::Submit { smmu, cmd });
                if cmd.range.scale > 0 {
                    self.oracle.cover(Goal::RangeScale);
                }
                if cmd.range.ttl != 0 {
                    self.oracle.cover(Goal::RangeTtl);
                }
                if cmd.op == Opcode::CmdSync {
                    q.next_ticket += 1;
                    let t = q.next_ticket;
                    q.pending.push_back(Queued::Sync(t));
                    ticket = Some(t);
                } else {
                    let gen = match self.by_sid.get(&(smmu, cmd.sid)) {
                        Some(&ep) if cmd.op == Opcode::AtcInv => self.endpoint(ep).ats_gen.load(Relaxed),
                        _ => 0,
                    };
                    q.pending.push_back(Queued::Cmd(cmd, gen));
                }
            }
        }
        if let Some(t) = ticket {
            self.wait_sync(s, t);
        }
    }

    /// Drive the queue until sync `ticket` completes: pick any command
    /// before the first pending sync, apply it, repeat; a sync completes once
    /// nothing before it is pending or in flight.
    fn wait_sync(&self, s: &Smmu, ticket: u64) {
        loop {
            // The SMMU consumes the queue on its own time.
            schedule_point();
            let mut q = s.cmdq();
            if q.completed >= ticket {
                return;
            }
            let window = q.pending.iter().take_while(|e| matches!(e, Queued::Cmd(..))).count();
            if window == 0 {
                if q.in_flight > 0 {
                    drop(q);
                    yield_now();
                    continue;
                }
                let Some(Queued::Sync(t)) = q.pending.pop_front() else {
                    unreachable!("sync {ticket} pending but the queue is empty");
                };
                q.completed = t;
                let timed_out = std::mem::take(&mut q.atc_timeout);
                drop(q);
                if timed_out {
                    let detail = format!(
                        "CMD_SYNC {t} on {:?}: CERROR_ATC_INV_SYNC, an ATC_INV before it was never answered; the \
                         invalidation waited out the completion timeout and the driver got -ETIMEDOUT",
                        s.id
                    );
                    self.oracle.violation(
                        ViolationKind::CmdSyncTimeout,
                        detail,
                        Actor::Queue(s.id),
                        Event::SyncDone { smmu: s.id, ticket: t },
                    );
                }
                self.oracle.sync_completed(s.id, t);
                continue;
            }
            let k = if window == 1 { 0 } else { random_below(window as u64) as usize };
            let Some(Queued::Cmd(cmd, gen)) = q.pending.remove(k) else { unreachable!("window holds commands") };
            q.in_flight += 1;
            drop(q);
            self.apply(s, cmd, gen);
            s.cmdq().in_flight -= 1;
        }
    }

    /// `ats_gen`: the target endpoint's ATS generation when `cmd` was queued.
    fn apply(&self, s: &Smmu, cmd: Cmd, ats_gen: u64) {
        self.oracle.record(Actor::Queue(s.id), Event::Effect { smmu: s.id, cmd });
        match cmd.op {
            Opcode::CfgiSte | Opcode::CfgiCd | Opcode::CfgiCdAll => {
                s.invalidating(|| s.cfg().invalidate(&cmd));
            }
            Opcode::AtcInv => {
                let Some(&ep) = self.by_sid.get(&(s.id, cmd.sid)) else { return };
                let e = self.endpoint(ep);
                if e.ats_gen.load(Relaxed) != ats_gen {
                    match self.atc_inv_disabled {
                        AtcInvDisabled::Error => {
                            let detail = format!(
                                "ATC_INV sid {} ssid {} was in flight when ATS was disabled on {ep:?}: the device \
                                 may drop it",
                                cmd.sid, cmd.ssid
                            );
                            // The effect is in the trace already.
                            self.oracle.report(ViolationKind::AtcInvAtsDisabled, detail);
                        }
                        AtcInvDisabled::Complete => {}
                        AtcInvDisabled::Timeout => s.cmdq().atc_timeout = true,
                    }
                    return;
                }
                let mask = !((1u128 << cmd.atc_size) - 1) as u64;
                let base = cmd.addr & mask;
                let hit = |&(ssid, page): &(u32, u64)| (!cmd.ssv || ssid == cmd.ssid) && page & mask == base;
                let gone = {
                    // Under the ATC's lock, so that no fill from before it lands after it.
                    let mut atc = e.atc();
                    let gone = atc.keys().copied().find(hit);
                    atc.retain(|k, _| !hit(k));
                    e.atc_seq.fetch_add(1, Relaxed);
                    gone
                };
                if let Some((ssid, page)) = gone.filter(|_| self.refetch()) {
                    self.refetch_atc(s, e, cmd.sid, ssid, page);
                }
            }
            Opcode::CmdSync => unreachable!("syncs are not applied"),
            _ => {
                let gone = s.invalidating(|| s.iotlb().invalidate(&cmd));
                if let Some((tag, iova)) = gone.filter(|_| self.refetch()) {
                    self.refetch_iotlb(s, tag, iova);
                }
            }
        }
    }

    /// Whether the hardware refetches what an invalidation just removed.
    fn refetch(&self) -> bool {
        Odds::one_in(self.odds.refetch)
    }

    /// The endpoint translates `page` again (an ATS translation request)
    /// and caches the answer, as its ongoing DMA to the buffer would.
    fn refetch_atc(&self, s: &Smmu, e: &Endpoint, sid: u32, ssid: u32, page: u64) {
        if !e.ats_enabled() {
            return;
        }
        self.oracle.cover(Goal::Refetch);
        let seq = e.atc_seq.load(Relaxed);
        if let Translation::Ok { pa, domain, gen, .. } = self.translate(s, sid, ssid, page, true) {
            self.fill_atc(e, (sid, ssid), page, AtcEntry { pa: pa & !(PAGE - 1), domain, gen }, seq);
        }
    }

    /// Cache a translation the endpoint requested when its ATC was at
    /// `seq`: only if ATS is still on and no invalidation came since.
    fn fill_atc(&self, e: &Endpoint, (sid, ssid): (u32, u32), page: u64, entry: AtcEntry, seq: u64) {
        let mut atc = e.atc();
        if !e.ats_enabled() || e.atc_seq.load(Relaxed) != seq {
            return;
        }
        let cached = Event::Cached { sid, ssid, iova: page, pa: entry.pa, into: Cache::Atc };
        self.oracle.record(Actor::Endpoint(e.id), cached);
        atc.insert((ssid, page), entry);
    }

    /// The SMMU walks `iova` again for `tag`, through a stream whose cached
    /// configuration produces that tag, filling the IOTLB.
    fn refetch_iotlb(&self, s: &Smmu, tag: TlbTag, iova: u64) {
        let stream = {
            let cfg = s.cfg();
            cfg.cds.iter().map(|(&(sid, ssid), cd)| (sid, ssid, cd.asid)).find(|&(sid, _, asid)| {
                asid == tag.asid
                    && cfg.stes.get(&sid).is_some_and(|ste| ste_tag_kind(ste, s.features) == Some(tag.kind))
            })
        }
        .map(|(sid, ssid, _)| (sid, ssid))
        .or_else(|| {
            let cfg = s.cfg();
            cfg.stes
                .iter()
                .find(|(_, ste)| matches!(ste, Ste::S2 { vmid, .. } if tag.kind == TlbKind::S2 && *vmid == tag.vmid))
                .map(|(sid, _)| (*sid, 0))
        });
        if let Some((sid, ssid)) = stream {
            self.oracle.cover(Goal::Refetch);
            self.translate(s, sid, ssid, iova, false);
        }
    }

    /// One DMA by `ep` on stream `sid`, substream `ssid`, at `iova`: through
    /// the ATC when ATS is on, else the SMMU. The oracle judges the result.
    pub fn dma(&self, ep: EndpointId, sid: u32, ssid: u32, iova: u64) -> Translation {
        schedule_point();
        let start = self.oracle.now();
        let e = self.endpoint(ep);
        let s = self.smmu(e.smmu);
        let page = iova & !(PAGE - 1);
        let cached = if e.ats_enabled() { e.atc().get(&(ssid, page)).copied() } else { None };
        let result = if !e.ats_enabled() {
            self.translate(s, sid, ssid, iova, false)
        } else if let Some(a) = cached {
            if ssid != 0 {
                self.oracle.cover(Goal::PasidAtcHit);
            }
            Translation::Ok { pa: a.pa + iova % PAGE, domain: a.domain, gen: a.gen, source: Source::Atc }
        } else {
            let seq = e.atc_seq.load(Relaxed);
            let r = self.translate(s, sid, ssid, iova, true);
            if let Translation::Ok { pa, domain, gen, .. } = r {
                self.fill_atc(e, (sid, ssid), page, AtcEntry { pa: pa & !(PAGE - 1), domain, gen }, seq);
            }
            r
        };
        self.oracle.judge_dma(start, ep, sid, ssid, iova, result);
        result
    }

    /// The SMMU's translation of one access (or ATS translation request).
    /// A CMD_SYNC completes only once no translation still uses what the
    /// commands before it invalidated: a translation that an invalidation
    /// overtook is redone, so it never mixes an old STE or CD with what was
    /// written after it.
    fn translate(&self, s: &Smmu, sid: u32, ssid: u32, iova: u64, ats: bool) -> Translation {
        loop {
            smmu_sync::tick();
            let seq = s.inv_seq.load(Relaxed);
            let r = self.translate_once(s, sid, ssid, iova, ats, seq);
            if s.inv_seq.load(Relaxed) == seq {
                return r;
            }
        }
    }

    fn translate_once(&self, s: &Smmu, sid: u32, ssid: u32, iova: u64, ats: bool, seq: u64) -> Translation {
        if s.is_removed() {
            return Translation::Fault { walked: None };
        }
        // The SMMU may drop configuration it cached at any time and read the
        // tables again: what a CPU has made visible can take effect before
        // its CFGI, so the driver's barriers must order it, not the cache.
        if Odds::one_in(self.odds.cfg_evict) {
            s.cfg().invalidate(&Cmd { sid, ..Cmd::new(Opcode::CfgiSte) });
        }
        let cached = s.cfg().stes.get(&sid).copied();
        let ste = match cached {
            Some(ste) => ste,
            None => {
                let ste = self.decode_ste(self.mem.load_dev(s.ste_addr(sid)));
                s.fill_since(seq, || s.cfg().stes.insert(sid, ste));
                ste
            }
        };
        if ats && !ste.eats() {
            return Translation::Fault { walked: None };
        }
        let cd = |cd_table: Addr| {
            let cached = s.cfg().cds.get(&(sid, ssid)).copied();
            if cached.is_some() {
                return cached;
            }
            let cd = self.decode_cd(self.mem.load_dev(cd_table + 8 * u64::from(ssid)))?;
            s.fill_since(seq, || s.cfg().cds.insert((sid, ssid), cd));
            Some(cd)
        };
        // `guest_s1`: the IPA of a guest's own stage-1 table, walked through
        // the stage 2 at `root`.
        let (tag, root, guest_s1) = match ste {
            Ste::Abort => return Translation::Fault { walked: None },
            // Without a CD table a substream has nothing to select
            // (C_BAD_SUBSTREAMID).
            Ste::Bypass if ssid == 0 => {
                return Translation::Ok { pa: iova, domain: None, gen: 0, source: Source::Bypass }
            }
            Ste::Bypass => return Translation::Fault { walked: None },
            Ste::S1 { cd_table, .. } => {
                let Some(cd) = cd(cd_table) else { return Translation::Fault { walked: None } };
                let kind = if s.features.e2h { TlbKind::S1El2 } else { TlbKind::S1Nh };
                (TlbTag { kind, vmid: 0, asid: cd.asid }, cd.root, None)
            }
            Ste::S2 { vmid, root, .. } if ssid == 0 => (TlbTag { kind: TlbKind::S2, vmid, asid: 0 }, root, None),
            Ste::S2 { .. } => return Translation::Fault { walked: None },
            Ste::Nested { cd_table, vmid, root, guest_cd, .. } => {
                let table = if guest_cd { s2_translate(&self.mem, root, cd_table) } else { Some(cd_table) };
                let Some(cd) = table.and_then(cd) else { return Translation::Fault { walked: None } };
                (TlbTag { kind: TlbKind::Nested, vmid, asid: cd.asid }, root, guest_cd.then_some(cd.root))
            }
        };
        let hit = s.iotlb().lookup(tag, iova);
        if let Some(t) = hit {
            let pa = t.pa + iova % t.level.size();
            return Translation::Ok { pa, domain: Some(t.domain), gen: t.gen, source: Source::Iotlb };
        }
        // A cached table pointer skips the level-2 read: if the table was
        // unlinked and the pointer not invalidated, the walk still finds
        // the old entries. A guest's stage 1 caches only the combined page;
        // its faults are the guest's business, not judged (`walked: None`).
        let (leaf, domain) = match guest_s1 {
            Some(s1_root) => match walk_nested(&self.mem, root, s1_root, iova & !(PAGE - 1)) {
                Some(pa) => (Some((pa, Level::Page)), self.owner(root)),
                None => return Translation::Fault { walked: None },
            },
            None => {
                let cached_walk = s.iotlb().walk_entry(tag, iova);
                match cached_walk {
                    Some(w) => {
                        self.oracle.cover(Goal::WalkCacheHit);
                        (walk_table(&self.mem, w.table, iova), Some(w.domain))
                    }
                    None => {
                        let domain = self.owner(root);
                        let walked = walk(&self.mem, root, iova);
                        if let (Some(table), Some(domain)) = (walked.table, domain) {
                            s.fill_since(seq, || s.iotlb().insert_walk(tag, iova, WalkEntry { table, domain }));
                        }
                        (walked.leaf, domain)
                    }
                }
            }
        };
        let Some((pa, level)) = leaf else { return Translation::Fault { walked: domain } };
        let Some(domain) = domain else { return Translation::Fault { walked: None } };
        if level == Level::Block {
            self.oracle.cover(Goal::BlockTranslated);
        }
        let gen = self.mapping_gen(pa);
        s.fill_since(seq, || {
            self.oracle.record(Actor::Walker(s.id), Event::Cached { sid, ssid, iova, pa, into: Cache::Iotlb });
            s.iotlb().insert(tag, iova, TlbEntry { pa, level, domain, gen });
        });
        Translation::Ok { pa: pa + iova % level.size(), domain: Some(domain), gen, source: Source::Walk }
    }
}

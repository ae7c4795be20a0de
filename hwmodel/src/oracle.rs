//! The oracle: judges every translation and command against what the
//! driver has promised, and keeps the event trace that explains a verdict.

use crate::cmd::SmmuId;
use crate::coverage::{Coverage, Goal};
use crate::odds::Odds;
use crate::types::{Actor, Allowed, DomainId, EndpointId, Event, Source, Step, Translation, BLOCK, PAGE};
use rustc_hash::FxHashMap as HashMap;
use smmu_sync::plain;
use std::collections::{BTreeMap, VecDeque};
use std::hash::{Hash, Hasher};

/// Events kept in the trace tail printed with a violation.
const TRACE_TAIL: usize = 64;
/// Events kept for a violation's signature: enough that the story of a
/// generated schedule (the unmap, the fill, the attach between) is whole.
const STORY_TAIL: usize = 8192;

/// Every check the oracle makes, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ViolationKind {
    StaleTranslation,
    OldDomainTranslation,
    MissingTranslation,
    UnpublishedArray,
    CmdToRemovedSmmu,
    AtcInvAtsDisabled,
    CmdSyncTimeout,
    IllegalCommand,
    ArrayInvariant,
    UseAfterFree,
    ErrPtrDeref,
    DriverWarn,
    CommandBound,
    StaleTag,
    UnissuedReported,
    GuestCommandLost,
    CerrorAtLegalCommand,
    QueueUnmapped,
    UapiContract,
    Deadlock,
    Livelock,
    Panic,
}

impl ViolationKind {
    pub const ALL: &'static [ViolationKind] = &[
        Self::StaleTranslation,
        Self::OldDomainTranslation,
        Self::MissingTranslation,
        Self::UnpublishedArray,
        Self::CmdToRemovedSmmu,
        Self::AtcInvAtsDisabled,
        Self::CmdSyncTimeout,
        Self::IllegalCommand,
        Self::ArrayInvariant,
        Self::UseAfterFree,
        Self::ErrPtrDeref,
        Self::DriverWarn,
        Self::CommandBound,
        Self::StaleTag,
        Self::UnissuedReported,
        Self::GuestCommandLost,
        Self::CerrorAtLegalCommand,
        Self::QueueUnmapped,
        Self::UapiContract,
        Self::Deadlock,
        Self::Livelock,
        Self::Panic,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::StaleTranslation => "stale-translation",
            Self::OldDomainTranslation => "old-domain-translation",
            Self::MissingTranslation => "missing-translation",
            Self::UnpublishedArray => "unpublished-array",
            Self::CmdToRemovedSmmu => "cmd-to-removed-smmu",
            Self::AtcInvAtsDisabled => "atc-inv-ats-disabled",
            Self::CmdSyncTimeout => "cmd-sync-timeout",
            Self::IllegalCommand => "illegal-command",
            Self::ArrayInvariant => "array-invariant",
            Self::UseAfterFree => "use-after-free",
            Self::ErrPtrDeref => "err-ptr-deref",
            Self::DriverWarn => "driver-warn",
            Self::CommandBound => "command-bound",
            Self::StaleTag => "stale-tag",
            Self::UnissuedReported => "unissued-reported",
            Self::GuestCommandLost => "guest-command-lost",
            Self::CerrorAtLegalCommand => "cerror-at-legal-command",
            Self::QueueUnmapped => "queue-unmapped",
            Self::UapiContract => "uapi-contract",
            Self::Deadlock => "deadlock",
            Self::Livelock => "livelock",
            Self::Panic => "panic",
        }
    }

    /// What it means, for the person reading the report.
    pub fn explain(self) -> &'static str {
        match self {
            Self::StaleTranslation => {
                "A DMA issued after unmap() returned produced the physical page that unmap removed. Some \
                 IOTLB or ATC entry survived the invalidation: an array entry was missed by the walker, a \
                 command was issued too early or to the wrong queue, or the page-table write was not yet \
                 visible when the SMMU walked. The device can now read or corrupt memory it no longer owns."
            }
            Self::OldDomainTranslation => {
                "A DMA issued after an attach (or detach) returned translated through the domain the master \
                 left. The master's STE/CD, its ATC, or an IOTLB entry under a reused ASID/VMID still \
                 pointed at the old page table, so the old domain's owner can still be reached by the device."
            }
            Self::MissingTranslation => {
                "A DMA faulted in the page table of a domain the master is attached (or attaching) to, at \
                 an IOVA that domain had mapped before the attach began. The SMMU reached the table through \
                 a newly written STE/CD before the table's entries were visible: nothing ordered the page \
                 table (and CD) writes before the STE/CD write, so a hitless domain replace makes a live \
                 device fault."
            }
            Self::UnpublishedArray => {
                "An STE/CD word that lets a master translate through a domain was written while the CPU still \
                 buffered, with no barrier between them, its store of that domain's new invalidation-array \
                 pointer. The SMMU can use the STE/CD first, while another CPU's unmap still loads the old \
                 array, which does not name the master: what the device caches through the new STE/CD is \
                 never invalidated (fact 10: the new array is ordered before the STE/CD like the page table)."
            }
            Self::CmdToRemovedSmmu => {
                "A command was submitted to an SMMU instance after it was removed. An invalidation thread \
                 still held an array naming the instance: the removal did not wait for a grace period after \
                 dropping its entries."
            }
            Self::AtcInvAtsDisabled => {
                "An ATC_INV was still in flight when ATS was disabled at its endpoint. A device may ignore an \
                 invalidation that races the disable, and the CMD_SYNC then times out. ATS was turned off \
                 while an invalidation built from the old array was outstanding: the unref did not fence \
                 readers with the array's write lock, or ATS was disabled too early."
            }
            Self::CmdSyncTimeout => {
                "A CMD_SYNC completed with CERROR_ATC_INV_SYNC: an ATC_INV before it raced an ATS disable and the \
                 device never answered. On real hardware the invalidating CPU waits out the ATS completion timeout \
                 (a second or more, possibly with interrupts off) before the driver gives up with -ETIMEDOUT."
            }
            Self::IllegalCommand => {
                "The SMMU raised CERROR_ILL: the driver built a command the hardware rejects (a range \
                 encoding it cannot take, range fields on an SMMU without RANGE_INV, a misaligned address)."
            }
            Self::ArrayInvariant => {
                "A published invalidation array broke facts 1-2: entries not strictly sorted by (smmu, type, \
                 id, ssid), num_trashes/num_invs/max_invs out of order, a trash count that does not match, or \
                 trash in a freshly built array."
            }
            Self::UseAfterFree => {
                "A reader used an invalidation array after it was freed: the writer released the replaced \
                 array without waiting for a grace period, while the reader was inside its critical section."
            }
            Self::ErrPtrDeref => {
                "The driver dereferenced an error pointer: an allocation failed, its ERR_PTR was published as a \
                 domain's invalidation array because the caller only checked for NULL, and the next walker or \
                 attach read through it. On a real machine this is a kernel oops."
            }
            Self::DriverWarn => {
                "The driver hit a WARN_ON: an unref of an entry that is not in the array, or a merge input \
                 that was not sorted. The array's user counts can no longer be trusted."
            }
            Self::CommandBound => {
                "One invalidation issued more commands than the bound for its array and range: the \
                 'too big' fallback to a whole-ASID/VMID command did not engage."
            }
            Self::StaleTag => {
                "An ASID or VMID that is in no invalidation array still has entries in an IOTLB: its last \
                 user was dropped without a flush, and whoever reuses the tag inherits stale translations."
            }
            Self::UnissuedReported => {
                "The vSMMU told user space (through entry_num) that more commands were handled than ever \
                 reached the command queue. The VMM advances its consumer index past invalidations that \
                 never happened, and the guest keeps using translations it believes are gone."
            }
            Self::GuestCommandLost => {
                "A legal command the guest queued did not reach the host's command queue exactly once: the \
                 VMM moved the guest's CONS past it, or had it skipped, without it being issued (or issued it \
                 twice). The guest believes an invalidation happened that did not."
            }
            Self::CerrorAtLegalCommand => {
                "The VMM raised CERROR_ILL at a command that is legal. The guest's error handler skips the \
                 command at CONS, so a valid invalidation is dropped; a VMM that knows only the uAPI's errno \
                 and entry_num must locate the illegal command before reflecting it."
            }
            Self::QueueUnmapped => {
                "Guest memory backing a live hardware queue was unmapped from the IOAS while the hardware \
                 could still read it: the queue's pages were not pinned through an access object, so \
                 IOAS_UNMAP did not refuse with EBUSY."
            }
            Self::UapiContract => {
                "The kernel answered a request differently from what the iommufd uAPI documents (for \
                 example, rejected a zero-length invalidation array that only probes the data type)."
            }
            Self::Deadlock => {
                "Every simulated thread is blocked on another: no thread can make progress, and on a real machine \
                 the CPUs involved hang."
            }
            Self::Livelock => {
                "The schedule ran past its step bound or its wall-clock watchdog: some thread loops without \
                 making progress (a walker that never advances, a wait that is never satisfied). The report says \
                 where each thread was."
            }
            Self::Panic => "A simulated thread panicked outside the oracle's checks.",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Violation {
    pub kind: ViolationKind,
    pub detail: String,
    /// The trace hash when it was found (what a stopped execution leaves).
    pub hash: u64,
    /// Sequence number of the event that exposed it.
    pub seq: u64,
    /// The events before it, oldest first: the last few, or all of them
    /// when the world keeps a full trace.
    pub trace: Vec<Step>,
    /// The odds the world ran with.
    pub odds: Odds,
    /// Its cause, stable across seeds and worlds (`crate::signature`).
    pub signature: String,
}

struct Unmapped {
    domain: DomainId,
    iova: u64,
    size: u64,
    /// Event sequence number at which unmap() returned.
    seq: u64,
    syncs: u64,
}

/// What one master (endpoint, SSID) may translate through, and since when.
struct Attachment {
    current: Allowed,
    /// The event from which `current` has been a target (its attach began).
    since: u64,
    /// The event that last took a target away (an attach returned).
    narrowed: u64,
    /// An attach in progress: its target, and the event that began it.
    pending: Option<(Allowed, u64)>,
}

impl Attachment {
    /// The event from which `to` has been an allowed target, if it is one.
    fn allowed_since(&self, to: Allowed) -> Option<u64> {
        match self.pending {
            Some((p, seq)) if p == to => Some(seq),
            _ => (self.current == to).then_some(self.since),
        }
    }
}

struct State {
    seq: u64,
    /// A hash of the trace: unseeded, so the same schedule of the same
    /// build always gives the same value.
    hash: rustc_hash::FxHasher,
    tail: VecDeque<Step>,
    /// Keep every event, not only the last `TRACE_TAIL`.
    full: bool,
    /// End the execution at the first violation (see `stop_at_violation`).
    stop: bool,
    /// That violation, until the lock is released (`halt`).
    halt: Option<Violation>,
    /// The odds the world runs with (not part of the trace: they are the
    /// schedule's data choices, or constants).
    odds: Odds,
    syncs: u64,
    unmapped: HashMap<u64, Unmapped>,
    attached: HashMap<(EndpointId, u32), Attachment>,
    /// Live mappings by (domain, IOVA base): event that made them, size.
    mapped: HashMap<(DomainId, u64), (u64, u64)>,
    violations: Vec<Violation>,
    stale_ages: BTreeMap<u64, u64>,
    orders: crate::orders::Orders,
}

pub struct Oracle {
    state: plain::Mutex<State>,
    /// Coverage counts, apart from the state: the walker counts goals on
    /// its fast path.
    goals: [plain::AtomicU64; Goal::ALL.len()],
    /// A native machine's oracle: it judges nothing and counts no goals,
    /// and an event recorded anyway counts as a simulated access.
    off: bool,
}

impl Default for Oracle {
    fn default() -> Self {
        Self::new()
    }
}

impl Oracle {
    pub fn new() -> Self {
        Self {
            state: plain::Mutex::new(State {
                seq: 0,
                hash: rustc_hash::FxHasher::default(),
                tail: VecDeque::with_capacity(TRACE_TAIL),
                full: false,
                stop: false,
                halt: None,
                odds: Odds::DEFAULT,
                syncs: 0,
                unmapped: HashMap::default(),
                attached: HashMap::default(),
                mapped: HashMap::default(),
                violations: Vec::new(),
                stale_ages: BTreeMap::new(),
                orders: Default::default(),
            }),
            goals: std::array::from_fn(|_| plain::AtomicU64::new(0)),
            off: false,
        }
    }

    /// The oracle of a native machine (`Machine::native`).
    pub fn off() -> Self {
        Self { off: true, ..Self::new() }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock()
    }

    /// Keep the whole trace (a replay being written down), not its tail.
    pub fn keep_full_trace(&self) {
        self.state().full = true;
    }

    /// End the execution at the first violation, with the violation as the
    /// report (`smmu_sync::die_with`): a shrinker's replays need nothing
    /// after it.
    pub fn stop_at_violation(&self) {
        self.state().stop = true;
    }

    /// Record the odds the world runs with, as it sets or draws them.
    pub fn set_odds(&self, odds: Odds) {
        self.state().odds = odds;
    }

    pub fn odds(&self) -> Odds {
        self.state().odds
    }

    /// Append to the trace; returns the event's sequence number.
    pub fn record(&self, actor: Actor, e: Event) -> u64 {
        if self.off {
            smmu_sync::simulate();
            return 0;
        }
        Self::push(&mut self.state(), actor, e)
    }

    fn push(s: &mut State, actor: Actor, event: Event) -> u64 {
        s.seq += 1;
        s.seq.hash(&mut s.hash);
        actor.hash(&mut s.hash);
        event.hash(&mut s.hash);
        if s.tail.len() == STORY_TAIL && !s.full {
            s.tail.pop_front();
        }
        let func = match actor {
            Actor::Cpu(_) | Actor::Irq(_) => smmu_sync::current_fn(),
            _ => "",
        };
        s.orders.see(s.seq, actor, &event, func);
        s.tail.push_back(Step { seq: s.seq, actor, event, func });
        s.seq
    }

    fn violate(s: &mut State, kind: ViolationKind, detail: String) {
        let story: Vec<Step> = s.tail.iter().copied().collect();
        let signature = crate::signature::of_violation(kind, &smmu_sync::task_stack(), &story);
        let trace = if s.full { story } else { story[story.len().saturating_sub(TRACE_TAIL)..].to_vec() };
        let v = Violation { kind, detail, seq: s.seq, trace, hash: s.hash.finish(), odds: s.odds, signature };
        if s.stop && s.halt.is_none() {
            s.halt = Some(v.clone());
        }
        s.violations.push(v);
    }

    /// Under `stop_at_violation`, end the execution at the violation just
    /// reported; called once the state's lock is released.
    fn halt(&self) {
        let v = self.state().halt.take();
        if let Some(v) = v {
            smmu_sync::die_with(Box::new(v));
        }
    }

    /// A check made by the driver side (array invariants, WARNs, bounds).
    pub fn report(&self, kind: ViolationKind, detail: String) {
        Self::violate(&mut self.state(), kind, detail);
        self.halt();
    }

    /// A coverage goal was reached.
    pub fn cover(&self, g: Goal) {
        if self.off {
            return;
        }
        self.goals[g as usize].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn coverage(&self) -> Coverage {
        let mut c = self.state().orders.reached.clone();
        for g in Goal::ALL {
            c.add_count(*g, self.goals[*g as usize].load(std::sync::atomic::Ordering::Relaxed));
        }
        let [waiting, none, own] = smmu_sync::irq_reads();
        c.add_count(Goal::IrqReadWriterWaiting, waiting);
        c.add_count(Goal::IrqReadNoWriter, none);
        c.add_count(Goal::IrqReadOwnReader, own);
        c
    }

    /// The sequence number of the last event: a DMA that starts now is held
    /// to every promise recorded up to and including it.
    pub fn now(&self) -> u64 {
        self.state().seq
    }

    pub(crate) fn sync_completed(&self, smmu: SmmuId, ticket: u64) {
        let mut s = self.state();
        s.syncs += 1;
        Self::push(&mut s, Actor::Queue(smmu), Event::SyncDone { smmu, ticket });
    }

    /// map() of `size` bytes at `iova` in `domain` to `pa` has returned and
    /// its stores have been made visible (the caller's doorbell barrier).
    pub fn map_returned(&self, domain: DomainId, iova: u64, pa: u64, size: u64) {
        let mut s = self.state();
        let seq = Self::push(&mut s, Actor::current(), Event::MapReturned { domain, iova, pa });
        s.mapped.insert((domain, iova), (seq, size));
    }

    /// unmap() of `size` bytes at `iova` in `domain` starts: a fault
    /// anywhere in the range is fine from now.
    pub fn unmap_begin(&self, domain: DomainId, iova: u64, size: u64) {
        let mut s = self.state();
        Self::push(&mut s, Actor::current(), Event::UnmapBegin { domain, iova });
        let end = iova.saturating_add(size);
        s.mapped.retain(|(d, va), _| !(*d == domain && iova <= *va && *va < end));
    }

    /// unmap() of `size` bytes at `iova` in `domain`, which mapped `pa`,
    /// has returned. Pages are never reused within a world, so any later
    /// translation to `pa` is stale.
    pub fn unmap_returned(&self, domain: DomainId, iova: u64, pa: u64, size: u64) {
        let mut s = self.state();
        let seq = Self::push(&mut s, Actor::current(), Event::UnmapReturned { domain, iova, pa });
        let syncs = s.syncs;
        s.unmapped.insert(pa, Unmapped { domain, iova, size, seq, syncs });
    }

    /// An attach of `ep`/`ssid` to `to` begins: until it returns, the old
    /// and the new target are both fine.
    pub fn attach_begin(&self, ep: EndpointId, ssid: u32, to: Allowed) {
        let mut s = self.state();
        let seq = Self::push(&mut s, Actor::current(), Event::AttachBegin { ep, ssid, to });
        let a = s.attached.entry((ep, ssid)).or_insert(Attachment {
            current: Allowed::Blocked,
            since: 0,
            narrowed: 0,
            pending: None,
        });
        a.pending = Some((to, seq));
    }

    /// An attach of `ep`/`ssid` has returned: from now on it may only
    /// translate as `allowed` says.
    pub fn attach_returned(&self, ep: EndpointId, ssid: u32, allowed: Allowed) {
        let mut s = self.state();
        let seq = Self::push(&mut s, Actor::current(), Event::AttachReturned { ep, ssid, allowed });
        let since = match s.attached.get(&(ep, ssid)).and_then(|a| a.pending) {
            Some((to, begun)) if to == allowed => begun,
            _ => seq,
        };
        s.attached.insert((ep, ssid), Attachment { current: allowed, since, narrowed: seq, pending: None });
    }

    /// Judge a DMA that started at sequence number `start`.
    pub(crate) fn judge_dma(&self, start: u64, ep: EndpointId, sid: u32, ssid: u32, iova: u64, result: Translation) {
        Self::judge(&mut self.state(), start, ep, sid, ssid, iova, result);
        self.halt();
    }

    fn judge(s: &mut State, start: u64, ep: EndpointId, sid: u32, ssid: u32, iova: u64, result: Translation) {
        Self::push(s, Actor::Endpoint(ep), Event::Dma { ep, sid, ssid, iova, result });
        match result {
            Translation::Ok { pa, domain, gen, source } => {
                if let Some(detail) = Self::stale(s, start, pa, gen, source) {
                    let detail = format!("{ep:?} sid {sid} ssid {ssid} iova {iova:#x} {detail}");
                    Self::violate(s, ViolationKind::StaleTranslation, detail);
                    return;
                }
                let got = domain.map_or(Allowed::Identity, Allowed::Domain);
                let Some(a) = s.attached.get(&(ep, ssid)) else { return };
                // A DMA that began before the last attach returned may still
                // use what that attach took away.
                if a.allowed_since(got).is_none() && a.narrowed <= start {
                    let detail = format!(
                        "{ep:?} sid {sid} ssid {ssid} iova {iova:#x} translated through {got:?} via {source:?}, \
                         but since event {} it may only use {:?}{}",
                        a.narrowed,
                        a.current,
                        a.pending.map_or(String::new(), |(p, _)| format!(" or {p:?}"))
                    );
                    Self::violate(s, ViolationKind::OldDomainTranslation, detail);
                }
            }
            Translation::Fault { walked: Some(d) } => {
                let Some(since) = s.attached.get(&(ep, ssid)).and_then(|a| a.allowed_since(Allowed::Domain(d))) else {
                    return;
                };
                let mapped = [PAGE, BLOCK]
                    .into_iter()
                    .find_map(|size| s.mapped.get(&(d, iova & !(size - 1))).filter(|m| m.1 == size).copied());
                if let Some((map_seq, _)) = mapped.filter(|m| m.0 < since) {
                    let detail = format!(
                        "{ep:?} sid {sid} ssid {ssid} iova {iova:#x} faulted walking {d:?}, which mapped it at \
                         event {map_seq}, before it became this master's target at event {since}"
                    );
                    Self::violate(s, ViolationKind::MissingTranslation, detail);
                }
            }
            Translation::Fault { walked: None } => {}
        }
    }

    /// If `pa` was unmapped before the DMA started, the report detail.
    fn stale(s: &mut State, start: u64, pa: u64, gen: u64, source: Source) -> Option<String> {
        let u = [PAGE, BLOCK]
            .into_iter()
            .find_map(|size| s.unmapped.get(&(pa & !(size - 1))).filter(|u| u.size == size))
            .filter(|u| u.seq <= start)?;
        let age = s.syncs - u.syncs;
        let detail = format!(
            "-> pa {pa:#x} via {source:?} (mapped at page-table generation {gen}); {:?} unmapped iova \
             {:#x} at event {} ({age} CMD_SYNCs ago)",
            u.domain, u.iova, u.seq
        );
        *s.stale_ages.entry(age).or_default() += 1;
        Some(detail)
    }

    pub(crate) fn violation(&self, kind: ViolationKind, detail: String, actor: Actor, e: Event) {
        {
            let mut s = self.state();
            Self::push(&mut s, actor, e);
            Self::violate(&mut s, kind, detail);
        }
        self.halt();
    }

    pub fn violations(&self) -> Vec<Violation> {
        self.state().violations.clone()
    }

    /// The kept events, oldest first.
    pub fn trace_tail(&self) -> Vec<Step> {
        self.state().tail.iter().copied().collect()
    }

    pub fn trace_hash(&self) -> u64 {
        self.state().hash.finish()
    }

    pub fn trace_len(&self) -> u64 {
        self.state().seq
    }

    /// Completed CMD_SYNCs so far, over every SMMU.
    pub fn syncs(&self) -> u64 {
        self.state().syncs
    }

    /// Ages (in completed CMD_SYNCs since unmap returned) of every stale
    /// hit, as age -> count.
    pub fn stale_ages(&self) -> BTreeMap<u64, u64> {
        self.state().stale_ages.clone()
    }
}

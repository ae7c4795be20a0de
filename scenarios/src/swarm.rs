//! The generator. Every schedule draws its own world and its own operation
//! mix from the schedule's data choices (`random_below`), so a replay
//! rebuilds the same world and a shrinker can simplify it: a draw of 0 is
//! always the smaller choice. Swarm testing: each schedule enables a random
//! subset of operation kinds with random weights, so what is enabled is
//! exercised hard and what is left out cannot crowd it out.
//!
//! Ownership follows the kernel's callers: each worker maps and unmaps only
//! its own IOVA region (as io-pgtable's callers must), and its interrupt
//! handler only unmaps the buffers it handed to the device; a domain that
//! may be freed, and the master attached to it, belong to one worker; so do
//! the masters of an SMMU that will be removed, and the vSMMU's nested
//! master.

use crate::guest::{self, Guest};
use crate::queue::{self, Queues};
use crate::rig::{Completions, Ep, Irq, Rig};
use crate::{Outcome, Params};
use engine::{Cpu, Domain, DomainKind, Driver, GuestS1, Master, Stage, Target};
use hwmodel::{Features, SmmuId, BLOCK, PAGE};
use smmu_sync::{plain, random_below, JoinHandle, RwLockKind};
use std::cell::Cell;
use std::sync::Arc;

thread_local! {
    /// Unused bits of the last generator draw, and how many there are.
    static BITS: Cell<(u64, u32)> = const { Cell::new((0, 0)) };
}

/// `b` bits of generator choice. Choices are sliced from whole data
/// choices, so a world costs about a dozen draws instead of a hundred, and a
/// draw zeroed by a shrinker still gives the smallest choice of each slice.
fn bits(b: u32) -> u64 {
    BITS.with(|c| {
        let (mut word, mut left) = c.get();
        if left < b {
            (word, left) = (random_below(u64::MAX), 63);
        }
        c.set((word >> b, left - b));
        word & ((1 << b) - 1)
    })
}

/// A choice in `0..n`.
fn below(n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    (bits(usize::BITS - (n - 1).leading_zeros()) % n as u64) as usize
}

/// True with probability 1/n; a draw of 0 says no.
fn one_in(n: u64) -> bool {
    below(n as usize) as u64 == n - 1
}

fn pick<T: Clone>(xs: &[T]) -> T {
    xs[below(xs.len())].clone()
}

/// Pages each worker maps at the start of its region.
const PAGES: usize = 4;

/// Most rounds of DMA a device makes over its buffers.
const DEVICE_ROUNDS: usize = 12;

/// Worker `w`'s region: a 2 MiB table of pages, a 2 MiB block, and a
/// table of its interrupt handler's buffers (apart, so that freeing the
/// first table never races the handler).
fn page(w: usize, k: usize) -> u64 {
    3 * BLOCK * (w as u64 + 1) + (k * PAGE as usize) as u64
}

fn block(w: usize) -> u64 {
    3 * BLOCK * (w as u64 + 1) + BLOCK
}

fn irq_page(w: usize, k: usize) -> u64 {
    3 * BLOCK * (w as u64 + 1) + 2 * BLOCK + (k * PAGE as usize) as u64
}

/// Operation kinds a schedule can enable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Map,
    Unmap,
    Block,
    Table,
    Flush,
    AttachRid,
    AttachPasid,
    DetachPasid,
    Reattach,
    Populate,
    Lifecycle,
    RemoveSmmu,
    Guest,
    HwQueue,
    /// Buffers completed in interrupt context: the workers take interrupts.
    Irq,
}

const KINDS: [Kind; 15] = [
    Kind::Map,
    Kind::Unmap,
    Kind::Block,
    Kind::Table,
    Kind::Flush,
    Kind::AttachRid,
    Kind::AttachPasid,
    Kind::DetachPasid,
    Kind::Reattach,
    Kind::Populate,
    Kind::Lifecycle,
    Kind::RemoveSmmu,
    Kind::Guest,
    Kind::HwQueue,
    Kind::Irq,
];

/// Where a RID attach goes.
#[derive(Clone, Copy, Debug)]
enum To {
    Domain(usize),
    Nested(usize),
    Blocked,
    Identity,
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Map(usize, usize),
    Unmap(usize, usize),
    MapBlock(usize),
    UnmapBlock(usize),
    UnmapTable(usize),
    Flush(usize),
    AttachRid {
        m: usize,
        to: To,
        ats: bool,
    },
    AttachPasid {
        m: usize,
        ssid: u32,
        to: usize,
    },
    DetachPasid {
        m: usize,
        ssid: u32,
    },
    Reattach {
        m: usize,
    },
    Populate {
        m: usize,
        ssid: u32,
    },
    Lifecycle,
    RemoveSmmu,
    Guest(guest::Array),
    Queue,
    IoasUnmap(u64),
    /// Map a buffer for the device; the interrupt handler unmaps it.
    IrqBuffer(usize, usize),
}

/// The drawn mix: a weight per kind, 0 for a disabled kind.
struct Mix([u32; KINDS.len()]);

impl Mix {
    fn draw() -> Self {
        let mut w = [0; KINDS.len()];
        for (k, kind) in KINDS.iter().enumerate() {
            // Unmap is always on: it is what every invalidation oracle needs.
            if *kind == Kind::Unmap || one_in(2) {
                w[k] = 1 + below(4) as u32;
            }
        }
        Mix(w)
    }

    fn on(&self, k: Kind) -> bool {
        self.0[k as usize] > 0
    }

    /// A weighted kind among `allowed`.
    fn choose(&self, allowed: &[Kind]) -> Option<Kind> {
        let total: u32 = allowed.iter().map(|k| self.0[*k as usize]).sum();
        let mut x = below(total as usize) as u32;
        allowed.iter().copied().find(|k| {
            let w = self.0[*k as usize];
            let hit = x < w;
            x = x.saturating_sub(w);
            hit && w > 0
        })
    }
}

/// An IOVA a worker's plan touches, in which domain, and whether to unmap.
#[derive(Clone, Copy)]
struct Touch {
    domain: usize,
    unmap: bool,
    iova: u64,
}

/// A buffer a device DMAs to: its stream ID, substream ID and IOVA.
type Buffer = (u32, u32, u64);

/// One endpoint as drawn.
struct EpSpec {
    smmu: usize,
    sids: Vec<u32>,
    ats: bool,
    pasids: u32,
}

/// What the workers share.
struct Shared {
    /// Domains any worker maps in and attaches: paging domains, then SVA.
    domains: Vec<Arc<Domain>>,
    masters: Vec<Arc<Master>>,
    pasids: Vec<u32>,
    /// Every domain alive at the end, for the quiescent checks.
    live: plain::Mutex<Vec<Arc<Domain>>>,
    queues: Option<Queues>,
    guest: Option<Guest>,
}

pub fn swarm(p: &Params) -> Outcome {
    BITS.with(|c| c.set((0, 0)));
    let workers = p.cpus;
    let mix = Mix::draw();
    let smmus: Vec<Features> =
        (0..1 + below(3)).map(|_| Features { ats: !one_in(4), range_inv: one_in(2), e2h: one_in(2) }).collect();
    let mut next_sid = vec![0u32; smmus.len()];
    let eps: Vec<EpSpec> = (0..1 + below(5))
        .map(|_| {
            let smmu = below(smmus.len());
            let mut sids: Vec<u32> = (0..1 + below(3))
                .map(|_| {
                    next_sid[smmu] += 1 + below(3) as u32;
                    next_sid[smmu]
                })
                .collect();
            // Firmware lists stream IDs in any order.
            if one_in(2) {
                sids.reverse();
            }
            EpSpec { smmu, sids, ats: !one_in(4), pasids: below(4) as u32 }
        })
        .collect();
    let ep_list: Vec<Ep> = eps.iter().map(|e| Ep { smmu: e.smmu, sids: &e.sids, ats: e.ats }).collect();
    let rwlock = p.rwlock.unwrap_or(if one_in(2) { RwLockKind::Fair } else { RwLockKind::Queued });
    let r = Rig::new(&Params { cpus: workers, rwlock: Some(rwlock), ..*p }, &smmus, &ep_list, 1);
    let fault_ppm = p.fault_ppm.unwrap_or_else(|| [0, 0, 20_000, 100_000][below(4)]);

    // Roles: the last SMMU's masters belong to its remover; the first
    // master left over to the lifecycle worker; one master to the VMM.
    // The pre-series design binds a domain to its SMMU for life, so it has no
    // way to remove an instance a live domain was bound to.
    let removable = (mix.on(Kind::RemoveSmmu) && smmus.len() > 1 && p.engine.spans_smmus()).then_some(smmus.len() - 1);
    let mut owner: Vec<Option<usize>> =
        eps.iter().map(|e| (Some(e.smmu) == removable).then_some(workers - 1)).collect();
    let mut claim = |who: usize| {
        let m = owner.iter().position(Option::is_none)?;
        owner[m] = Some(who);
        Some(m)
    };
    let private_master = mix.on(Kind::Lifecycle).then(|| claim(0)).flatten();

    let kinds =
        [DomainKind::S1, DomainKind::S1, DomainKind::S2 { nest_parent: false }, DomainKind::S2 { nest_parent: true }];
    // Paging domains first (RID targets), then SVA domains (PASIDs only).
    let mut domains: Vec<Arc<Domain>> = (0..1 + below(3)).map(|_| r.domain(pick(&kinds))).collect();
    let paging = domains.len();
    let parents: Vec<usize> = (0..paging).filter(|&d| domains[d].nest_parent()).collect();
    let vmm = (mix.on(Kind::Guest) && !parents.is_empty()).then(|| claim(0)).flatten();
    if eps.iter().any(|e| e.pasids > 0) {
        domains.extend((0..1 + below(2)).map(|_| r.domain(DomainKind::Sva)));
    }
    let pasid_targets: Vec<usize> =
        (0..domains.len()).filter(|&d| !matches!(domains[d].stage, Stage::S2 { .. })).collect();
    let private = private_master.map(|_| r.domain(pick(&kinds[..3])));

    // Initial attachments: all, about half, or none of the masters, so
    // that first attaches to a domain (and to an SMMU) are common too.
    // `uses[m]`: the shared domains, and on which SSID, master m translates
    // through at the start; the plans add those it is attached to later.
    let attach_odds = [1, 2, 1000][below(3)];
    let mut uses: Vec<Vec<(usize, u32)>> = vec![Vec::new(); eps.len()];
    for (m, e) in eps.iter().enumerate() {
        if Some(m) == vmm || (Some(m) != private_master && attach_odds > 1 && !one_in(attach_odds)) {
            continue;
        }
        let d = below(paging);
        let to = match (Some(m) == private_master, below(5)) {
            (true, _) => Target::Domain(private.clone().expect("a private domain with its master")),
            (false, 0) => Target::Blocked,
            (false, 1) => Target::Identity,
            (false, 2) if !parents.is_empty() => {
                let p = pick(&parents);
                uses[m].push((p, 0));
                Target::Nested { parent: domains[p].clone(), s1: GuestS1::Identity { asid: 100 + m as u16 } }
            }
            _ => {
                uses[m].push((d, 0));
                Target::Domain(domains[d].clone())
            }
        };
        r.attach(m, 0, to, !one_in(4));
        for ssid in 1..=e.pasids {
            if !pasid_targets.is_empty() && !one_in(3) {
                let d = pick(&pasid_targets);
                if r.drv.attach(&r.cpu, &r.masters[m], ssid, Target::Domain(domains[d].clone()), false).is_ok() {
                    uses[m].push((d, ssid));
                }
            }
        }
    }
    let guest = vmm.map(|m| {
        let p = pick(&parents);
        uses[m].push((p, 0));
        Guest::attach(&r, m, domains[p].clone(), &[])
    });
    let busy: Vec<usize> = {
        let mut b: Vec<usize> = uses.iter().flatten().map(|u| u.0).collect();
        b.sort_unstable();
        b.dedup();
        b
    };
    for d in domains.iter().chain(&private) {
        for w in 0..workers {
            for k in 0..PAGES {
                if !one_in(4) {
                    let _ = r.drv.map(&r.cpu, d, page(w, k), PAGE);
                }
            }
            if mix.on(Kind::Block) && one_in(2) {
                let _ = r.drv.map(&r.cpu, d, block(w), BLOCK);
            }
        }
    }
    let queues = mix.on(Kind::HwQueue).then(|| Queues::new(&r));

    // Where the workers meet: mostly an ATS master, as ATS is where the
    // series' ordering rules are, and mostly a domain it translates through.
    let ats_capable: Vec<usize> = (0..eps.len()).filter(|&m| eps[m].ats && smmus[eps[m].smmu].ats).collect();
    let hot_master = if ats_capable.is_empty() || one_in(4) { below(eps.len()) } else { pick(&ats_capable) };
    let hot_domain = match (uses[hot_master].is_empty() || one_in(2), busy.is_empty()) {
        (false, _) => pick(&uses[hot_master]).0,
        (true, false) => pick(&busy),
        (true, true) => below(domains.len()),
    };

    // Each worker's operations.
    let plans: Vec<Vec<Op>> = (0..workers)
        .map(|w| {
            let mine: Vec<usize> = (0..eps.len()).filter(|&m| owner[m] == Some(w) && Some(m) != vmm).collect();
            let shared: Vec<usize> = (0..eps.len()).filter(|&m| owner[m].is_none()).collect();
            let mut allowed: Vec<Kind> = KINDS
                .iter()
                .copied()
                .filter(|k| match k {
                    Kind::Lifecycle => w == 0 && private.is_some(),
                    Kind::RemoveSmmu => false,
                    Kind::Guest => vmm.is_some() && w == 0,
                    Kind::AttachRid | Kind::Reattach | Kind::Populate => !shared.is_empty() || !mine.is_empty(),
                    Kind::AttachPasid | Kind::DetachPasid => !pasid_targets.is_empty(),
                    _ => true,
                })
                .collect();
            allowed.retain(|k| mix.on(*k));
            let movable: Vec<usize> =
                shared.iter().chain(&mine).copied().filter(|m| Some(*m) != private_master).collect();
            let mut ops: Vec<Op> = (0..p.upto(2 + below(3)))
                .filter_map(|_| {
                    let kind = mix.choose(&allowed)?;
                    // Half the time the schedule's hot domain and master,
                    // so that workers meet on them; else mostly a domain
                    // some device translates through.
                    let d = match below(4) {
                        0 | 1 => hot_domain,
                        2 if !busy.is_empty() => pick(&busy),
                        _ => below(domains.len()),
                    };
                    let m = match (movable.contains(&hot_master), one_in(2)) {
                        (true, true) => hot_master,
                        _ if movable.is_empty() => 0,
                        _ => pick(&movable),
                    };
                    let ssid = 1 + below(eps[m].pasids.max(1) as usize) as u32;
                    Some(match kind {
                        Kind::Map => Op::Map(d, below(PAGES)),
                        Kind::Unmap => Op::Unmap(d, below(PAGES)),
                        Kind::Block if one_in(2) => Op::MapBlock(d),
                        Kind::Block => Op::UnmapBlock(d),
                        Kind::Table => Op::UnmapTable(d),
                        Kind::Flush => Op::Flush(d),
                        Kind::AttachRid if movable.is_empty() => return None,
                        Kind::AttachRid => {
                            let to = match below(5) {
                                0 => To::Blocked,
                                1 => To::Identity,
                                2 if !parents.is_empty() => To::Nested(pick(&parents)),
                                _ => To::Domain(if d < paging { d } else { below(paging) }),
                            };
                            Op::AttachRid { m, to, ats: !one_in(3) }
                        }
                        Kind::AttachPasid if eps[m].pasids == 0 || movable.is_empty() => return None,
                        Kind::AttachPasid => Op::AttachPasid { m, ssid, to: pick(&pasid_targets) },
                        Kind::DetachPasid if eps[m].pasids == 0 || movable.is_empty() => return None,
                        Kind::DetachPasid => Op::DetachPasid { m, ssid },
                        Kind::Reattach if movable.is_empty() => return None,
                        Kind::Reattach => Op::Reattach { m },
                        Kind::Populate if movable.is_empty() => return None,
                        Kind::Populate => Op::Populate { m, ssid: if one_in(2) { 0 } else { ssid } },
                        Kind::Lifecycle => Op::Lifecycle,
                        Kind::RemoveSmmu => Op::RemoveSmmu,
                        Kind::Guest => {
                            Op::Guest(guest::Array::draw(below(80), one_in(3).then(|| below(80)), one_in(4)))
                        }
                        Kind::HwQueue if one_in(2) => Op::Queue,
                        Kind::HwQueue => Op::IoasUnmap(below(queue::PAGES as usize) as u64),
                        Kind::Irq => Op::IrqBuffer(d, below(PAGES)),
                    })
                })
                .collect();
            if removable.is_some() && w == workers - 1 {
                ops.push(Op::RemoveSmmu);
            }
            ops
        })
        .collect();

    // The IOVAs the workers touch: device drivers program their devices
    // with the buffers the CPUs map and unmap.
    // Those being unmapped, in domains its master uses, come first: a
    // device must reach a buffer before, during and after its unmap for a
    // stale entry to show.
    let touched: Vec<Touch> = plans
        .iter()
        .enumerate()
        .flat_map(|(w, ops)| {
            ops.iter().filter_map(move |op| match *op {
                Op::Unmap(d, k) => Some(Touch { domain: d, unmap: true, iova: page(w, k) }),
                Op::UnmapBlock(d) => Some(Touch { domain: d, unmap: true, iova: block(w) }),
                Op::UnmapTable(d) => Some(Touch { domain: d, unmap: true, iova: page(w, 1) }),
                Op::Flush(d) => Some(Touch { domain: d, unmap: true, iova: page(w, 0) }),
                Op::Map(d, k) => Some(Touch { domain: d, unmap: false, iova: page(w, k) }),
                Op::MapBlock(d) => Some(Touch { domain: d, unmap: false, iova: block(w) }),
                Op::IrqBuffer(d, k) => Some(Touch { domain: d, unmap: true, iova: irq_page(w, k) }),
                _ => None,
            })
        })
        .collect();
    let mut fresh: Vec<Vec<(u32, u64)>> = vec![Vec::new(); eps.len()];
    let mut live: Vec<Arc<Domain>> = domains.clone();
    live.extend(private.clone());
    let pasids: Vec<u32> = eps.iter().map(|e| e.pasids).collect();
    let sh =
        Arc::new(Shared { domains, masters: r.masters.clone(), pasids, live: plain::Mutex::new(live), queues, guest });

    // Faults from here on: setup above never fails.
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    let mut r = r.with_fault_ppm(fault_ppm);
    for (w, ops) in plans.iter().cloned().enumerate() {
        let (sh, private_master) = (sh.clone(), private_master);
        let removable = removable.map(|s| SmmuId(s as u32));
        let mut private = private.clone();
        let irq = mix.on(Kind::Irq).then(|| Irq { odds: [2, 8, 32][below(3)] });
        let p = *p;
        threads.push(r.cpu_irq(irq, move |drv, cpu, done| {
            let worker = Worker { drv, cpu, done, sh: &sh, w };
            for (k, op) in ops.into_iter().enumerate() {
                smmu_sync::begin_segment(k as u64 + 1);
                if !p.skips_op(w, k) {
                    worker.run(op, &mut private, private_master, removable);
                }
            }
        }));
    }
    // What each device's driver programs it with: buffers in the domains
    // its master uses or will be attached to, on the matching substream,
    // and the buffers of the fresh domains populated for it.
    for (p, ops) in plans.iter().enumerate() {
        for op in ops {
            match *op {
                Op::AttachRid { m, to: To::Domain(d) | To::Nested(d), .. } => uses[m].push((d, 0)),
                Op::AttachPasid { m, ssid, to } => uses[m].push((to, ssid)),
                Op::Populate { m, ssid } => fresh[m].push((ssid, page(p, 0))),
                _ => {}
            }
        }
    }
    for (m, e) in eps.iter().enumerate() {
        threads.push(device(&r, m, e, workers, &uses[m], &fresh[m], &touched));
    }
    if sh.queues.is_some() {
        let (sh, drv) = (sh.clone(), r.drv.clone());
        threads.push(smmu_sync::spawn(move || {
            smmu_sync::name_task("hw queue reader");
            if let Some(q) = &sh.queues {
                (0..3).for_each(|_| q.read(&drv));
            }
        }));
    }
    r.finish_with(threads, move |_| sh.live.lock().clone())
}

/// A device thread: a few buffers, DMAed to over a few rounds and then for
/// as long as the CPUs work. Mostly buffers being unmapped in a domain its
/// master uses: a device must reach a buffer before, during and after its
/// unmap for a stale entry to show, and a device that stopped before its
/// master was moved never shows what the move left behind.
fn device(
    r: &Rig,
    m: usize,
    e: &EpSpec,
    workers: usize,
    uses: &[(usize, u32)],
    fresh: &[(u32, u64)],
    touched: &[Touch],
) -> JoinHandle<()> {
    let buffers: Vec<Buffer> = (0..1 + below(2))
        .map(|_| {
            let sid = pick(&e.sids);
            let any_ssid = if e.pasids > 0 && one_in(2) { 1 + below(e.pasids as usize) as u32 } else { 0 };
            let w = below(workers);
            let (ssid, iova) = match below(8) {
                0 => (any_ssid, block(w) + (below(512) as u64) * PAGE),
                1 | 3 if !fresh.is_empty() => pick(fresh),
                2 if !touched.is_empty() => (any_ssid, pick(touched).iova),
                _ if !uses.is_empty() => {
                    let (d, ssid) = pick(uses);
                    let mine: Vec<&Touch> = touched.iter().filter(|t| t.domain == d).collect();
                    let unmaps: Vec<&Touch> = mine.iter().copied().filter(|t| t.unmap).collect();
                    let iova = match (unmaps.is_empty(), mine.is_empty()) {
                        (false, _) => pick(&unmaps).iova,
                        (true, false) => pick(&mine).iova,
                        (true, true) => page(w, below(PAGES)),
                    };
                    (ssid, iova)
                }
                _ => (any_ssid, page(w, below(PAGES))),
            };
            (sid, ssid, iova)
        })
        .collect();
    let rounds = 1 + below(3);
    r.dma_while_busy(m, buffers, rounds, DEVICE_ROUNDS)
}

/// A worker CPU: its driver context, its interrupt handler's queue, what
/// the workers share, and its index.
struct Worker<'a> {
    drv: &'a Driver,
    cpu: &'a Cpu,
    done: &'a Completions,
    sh: &'a Shared,
    w: usize,
}

impl Worker<'_> {
    fn run(&self, op: Op, private: &mut Option<Arc<Domain>>, private_master: Option<usize>, removable: Option<SmmuId>) {
        let Worker { drv, cpu, done, sh, w } = *self;
        let dom = |d: usize| &sh.domains[d];
        match op {
            Op::Map(d, k) => drop(drv.map(cpu, dom(d), page(w, k), PAGE)),
            Op::Unmap(d, k) => drop(drv.unmap(cpu, dom(d), page(w, k), PAGE)),
            Op::MapBlock(d) => drop(drv.map(cpu, dom(d), block(w), BLOCK)),
            Op::UnmapBlock(d) => drop(drv.unmap(cpu, dom(d), block(w), BLOCK)),
            Op::UnmapTable(d) => drop(drv.unmap_table(cpu, dom(d), page(w, 0))),
            Op::Flush(d) => drv.domain_inv(cpu, dom(d)),
            Op::AttachRid { m, to, ats } => {
                let to = match to {
                    To::Domain(d) => Target::Domain(dom(d).clone()),
                    To::Nested(d) => {
                        Target::Nested { parent: dom(d).clone(), s1: GuestS1::Identity { asid: 100 + m as u16 } }
                    }
                    To::Blocked => Target::Blocked,
                    To::Identity => Target::Identity,
                };
                let _ = drv.attach(cpu, &sh.masters[m], 0, to, ats);
            }
            Op::AttachPasid { m, ssid, to } => {
                let _ = drv.attach(cpu, &sh.masters[m], ssid, Target::Domain(dom(to).clone()), false);
            }
            Op::DetachPasid { m, ssid } => drop(drv.attach(cpu, &sh.masters[m], ssid, Target::Blocked, false)),
            Op::Reattach { m } => {
                let master = &sh.masters[m];
                let (now, ats) = {
                    let st = master.state.lock();
                    (st.attached.get(&0).cloned(), st.ats_enabled)
                };
                if let Some(now) = now {
                    let _ = drv.attach(cpu, master, 0, now, !ats);
                }
            }
            Op::Populate { m, ssid } => {
                let ssid = if sh.pasids[m] == 0 { 0 } else { ssid };
                let Ok(fresh) = drv.alloc_domain(DomainKind::S1) else { return };
                for k in 0..PAGES / 2 {
                    let _ = drv.populate(cpu, &fresh, page(w, k), PAGE);
                }
                sh.live.lock().push(fresh.clone());
                let _ = drv.attach(cpu, &sh.masters[m], ssid, Target::Domain(fresh), true);
            }
            Op::Lifecycle => {
                let (Some(m), Some(old)) = (private_master, private.take()) else { return };
                let master = &sh.masters[m];
                if drv.attach(cpu, master, 0, Target::Blocked, false).is_err() {
                    *private = Some(old);
                    return;
                }
                sh.live.lock().retain(|d| d.id != old.id);
                let kind = match old.stage {
                    Stage::S2 { nest_parent, .. } => DomainKind::S2 { nest_parent },
                    _ => DomainKind::S1,
                };
                drv.free_domain(cpu, old);
                let Ok(new) = drv.alloc_domain(kind) else { return };
                sh.live.lock().push(new.clone());
                for k in 0..PAGES {
                    let _ = drv.map(cpu, &new, page(w, k), PAGE);
                }
                let _ = drv.attach(cpu, master, 0, Target::Domain(new.clone()), true);
                *private = Some(new);
            }
            Op::RemoveSmmu => {
                let Some(smmu) = removable else { return };
                let mine: Vec<&Master> = sh.masters.iter().map(|m| m.as_ref()).filter(|m| m.smmu == smmu).collect();
                let _ = drv.remove_smmu(cpu, smmu, &mine);
            }
            Op::Guest(a) => {
                if let Some(g) = &sh.guest {
                    g.round(drv, cpu, a);
                }
            }
            Op::Queue => {
                if let Some(q) = &sh.queues {
                    q.cycle(drv);
                }
            }
            Op::IoasUnmap(k) => {
                if let Some(q) = &sh.queues {
                    q.unmap(drv, k);
                }
            }
            Op::IrqBuffer(d, k) => {
                if drv.map(cpu, dom(d), irq_page(w, k), PAGE).is_ok() {
                    done.post(dom(d), irq_page(w, k));
                }
            }
        }
    }
}

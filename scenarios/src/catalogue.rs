//! The scenarios. Each builds a small world, spawns CPU and device threads,
//! and lets the oracle judge every DMA and command. Workers own disjoint
//! IOVA pages, as io-pgtable's callers must.

use crate::guest::{Array, Guest};
use crate::queue::{self, Queues};
use crate::rig::{Ep, Irq, Rig};
use crate::{Outcome, Params, Scenario};
use engine::{Cpu, Domain, DomainKind, Driver, GuestS1, Target};
use hwmodel::{Features, Goal, PAGE};
use std::sync::Arc;

const PLAIN: Features = Features { ats: false, range_inv: false, e2h: false };
const ATS: Features = Features { ats: true, range_inv: false, e2h: false };

fn page(k: usize) -> u64 {
    0x10_0000 + k as u64 * PAGE
}

fn pages(range: std::ops::Range<usize>) -> Vec<u64> {
    range.map(page).collect()
}

fn d(t: &Arc<Domain>) -> Target {
    Target::Domain(t.clone())
}

/// Worker `c` of `n` unmaps its share of `0..total` pages of `dom`.
fn unmap_share(r: &mut Rig, dom: &Arc<Domain>, c: usize, n: usize, total: usize) -> smmu_sync::JoinHandle<()> {
    let dom = dom.clone();
    r.cpu(move |drv, cpu| {
        for k in (c..total).step_by(n) {
            let _ = drv.unmap(cpu, &dom, page(k), PAGE);
        }
    })
}

/// Map `0..n` pages of `dom` during setup.
fn premap(r: &Rig, dom: &Domain, n: usize) {
    for k in 0..n {
        let _ = r.drv.map(&r.cpu, dom, page(k), PAGE);
    }
}

/// The shape most scenarios share: workers unmap their share of `2 * cpus`
/// premapped pages of `dom` while one more CPU runs `race` and each
/// `(master, ssid, rounds)` device DMAs to those pages.
fn unmap_race<F>(
    mut r: Rig,
    p: &Params,
    dom: &Arc<Domain>,
    also: &[&Arc<Domain>],
    dmas: &[(usize, u32, usize)],
    race: Option<F>,
) -> Outcome
where
    F: FnOnce(&Driver, &Cpu) + Send + 'static,
{
    let n = p.upto(2 * p.cpus);
    premap(&r, dom, n);
    let mut t: Vec<_> = (0..p.cpus).map(|c| unmap_share(&mut r, dom, c, p.cpus, n)).collect();
    if let Some(race) = race {
        t.push(r.cpu(race));
    }
    for &(m, ssid, rounds) in dmas {
        t.push(r.dma(m, ssid, pages(0..n), rounds));
    }
    let domains: Vec<&Arc<Domain>> = std::iter::once(dom).chain(also.iter().copied()).collect();
    r.finish(t, &domains)
}

/// No racing CPU.
const NO_RACE: Option<fn(&Driver, &Cpu)> = None;

/// Default schedules of a hand-written scenario: each aims at one race and
/// finds it within a few thousand; the generator gets ten times as many
/// because what nobody catalogued is found there.
const HAND_WRITTEN_SCHEDULES: u64 = 100_000;

pub static CATALOGUE: &[Scenario] = &[
    Scenario {
        name: "map-unmap-storm",
        about: "CPUs map and unmap their own pages of one domain while an ATS and a non-ATS master DMA to them",
        cpus: 2,
        multi_smmu: false,
        schedules: HAND_WRITTEN_SCHEDULES,
        goals: &[Goal::WalkCacheHit],
        run: map_unmap_storm,
    },
    Scenario {
        name: "unmap-vs-attach",
        about: "unmap races the attach of a new ATS master to the domain, which DMAs to the pages being unmapped",
        cpus: 1,
        multi_smmu: false,
        schedules: HAND_WRITTEN_SCHEDULES,
        goals: &[Goal::WalkerOnOldArray, Goal::AtsJoinedMidWalk],
        run: unmap_vs_attach,
    },
    Scenario {
        name: "unmap-vs-detach",
        about: "unmap races the detach (to blocked) of an ATS master that keeps DMAing",
        cpus: 1,
        multi_smmu: false,
        schedules: HAND_WRITTEN_SCHEDULES,
        goals: &[Goal::AtsOffOlderArray, Goal::TrashWalked],
        run: unmap_vs_detach,
    },
    Scenario {
        name: "ats-toggle",
        about: "range invalidations race a master leaving its domain (ATS off), coming back with ATS, and leaving",
        cpus: 1,
        multi_smmu: false,
        schedules: HAND_WRITTEN_SCHEDULES,
        goals: &[Goal::AtsJoinedMidWalk],
        run: ats_toggle,
    },
    Scenario {
        name: "reattach-ats",
        about: "range invalidations race re-attaches to the same domain that turn ATS off, on and off again",
        cpus: 1,
        multi_smmu: false,
        schedules: HAND_WRITTEN_SCHEDULES,
        goals: &[Goal::AtsOffOlderArray],
        run: reattach_ats,
    },
    Scenario {
        name: "replace",
        about: "a master moves between two domains with changing ATS while both domains unmap under it",
        cpus: 2,
        multi_smmu: false,
        schedules: HAND_WRITTEN_SCHEDULES,
        goals: &[Goal::WalkerOnOldArray, Goal::TrashWalked],
        run: replace,
    },
    Scenario {
        name: "nesting-s1-clear",
        about: "a nesting parent unmaps while a nested master holds combined stage-1+2 IOTLB entries",
        cpus: 1,
        multi_smmu: false,
        schedules: HAND_WRITTEN_SCHEDULES,
        goals: &[Goal::BatchEndS1Clear],
        run: nesting_s1_clear,
    },
    Scenario {
        name: "sva",
        about: "an SVA domain on a PASID takes mm invalidations while the PASID is detached and re-attached",
        cpus: 1,
        multi_smmu: false,
        schedules: HAND_WRITTEN_SCHEDULES,
        goals: &[Goal::PasidAtcHit],
        run: sva,
    },
    Scenario {
        name: "two-smmus",
        about: "one domain shared by masters on two SMMUs; unmaps race the second SMMU's master attaching and leaving",
        cpus: 1,
        multi_smmu: true,
        schedules: HAND_WRITTEN_SCHEDULES,
        goals: &[Goal::ArraySpansSmmus, Goal::BatchEndSmmu],
        run: two_smmus,
    },
    Scenario {
        name: "smmu-removal",
        about: "an SMMU instance is removed while another CPU unmaps from a domain spanning it",
        cpus: 1,
        multi_smmu: true,
        schedules: HAND_WRITTEN_SCHEDULES,
        goals: &[Goal::SmmuRemovedAttached],
        run: smmu_removal,
    },
    Scenario {
        name: "blocked-attach",
        about: "a master is attached to the blocked domain (cannot fail, purges the array) under unmap load",
        cpus: 2,
        multi_smmu: false,
        schedules: HAND_WRITTEN_SCHEDULES,
        goals: &[Goal::LoadBeforePurge, Goal::PurgeBeforeLoad],
        run: blocked_attach,
    },
    Scenario {
        name: "asid-reuse",
        about: "the last master leaves a domain, which is freed; a new domain reuses its ASID while the device DMAs",
        cpus: 1,
        multi_smmu: false,
        schedules: HAND_WRITTEN_SCHEDULES,
        goals: &[Goal::TagReused],
        run: asid_reuse,
    },
    Scenario {
        name: "live-attach",
        about: "a CPU fills a new domain and attaches it to a PASID the device is already DMAing on",
        cpus: 1,
        multi_smmu: false,
        schedules: HAND_WRITTEN_SCHEDULES,
        goals: &[],
        run: live_attach,
    },
    Scenario {
        name: "vsmmu-invalidate",
        about: "a guest with its own stage 1 maps, DMAs, unmaps and invalidates through its vSMMU (batches longer than one cmdq batch) while the VMM re-attaches it and the host unmaps stage-2 pages it uses",
        cpus: 1,
        multi_smmu: false,
        schedules: HAND_WRITTEN_SCHEDULES,
        goals: &[Goal::BatchEndS1Clear],
        run: vsmmu_invalidate,
    },
    Scenario {
        name: "vsmmu-malformed",
        about: "a guest queues arrays each holding an illegal command (host-only opcode or a legal opcode with a bad field); the VMM, knowing only the uAPI, locates each and raises CERROR_ILL there",
        cpus: 1,
        multi_smmu: false,
        schedules: HAND_WRITTEN_SCHEDULES,
        goals: &[],
        run: vsmmu_malformed,
    },
    Scenario {
        name: "hw-queue-vs-unmap",
        about: "a HW queue is allocated in guest memory, read by the hardware and destroyed while the VMM tries to unmap it",
        cpus: 1,
        multi_smmu: false,
        schedules: HAND_WRITTEN_SCHEDULES,
        goals: &[],
        run: hw_queue_vs_unmap,
    },
    Scenario {
        name: "irq-unmap",
        about: "a CPU unmaps in task context while its completion interrupts unmap too, racing a detach's unref (fair rwlock)",
        cpus: 1,
        multi_smmu: false,
        schedules: HAND_WRITTEN_SCHEDULES,
        goals: &[Goal::IrqInvalidation, Goal::IrqReadWriterWaiting],
        run: irq_unmap,
    },
    Scenario {
        name: "swarm",
        about: "the generator: each schedule draws a world (1-3 SMMUs, 1-5 endpoints, every domain kind) and an operation mix",
        cpus: 3,
        multi_smmu: false,
        schedules: 1_000_000,
        goals: &[],
        run: crate::swarm::swarm,
    },
];

fn map_unmap_storm(p: &Params) -> Outcome {
    let eps = [Ep { smmu: 0, sids: &[3, 2], ats: true }, Ep { smmu: 0, sids: &[5, 4], ats: false }];
    let mut r = Rig::new(p, &[ATS], &eps, 0);
    let dom = r.domain(DomainKind::S1);
    r.attach(0, 0, d(&dom), true);
    r.attach(1, 0, d(&dom), false);
    let mut t: Vec<_> = (0..p.cpus)
        .map(|c| {
            let dom = dom.clone();
            let rounds = p.upto(2);
            r.cpu(move |drv, cpu| {
                for k in 0..rounds {
                    let iova = page(2 * c + k);
                    let _ = drv.map(cpu, &dom, iova, PAGE);
                    let _ = drv.unmap(cpu, &dom, iova, PAGE);
                }
            })
        })
        .collect();
    t.push(r.dma(0, 0, pages(0..2 * p.cpus), 3));
    t.push(r.dma(1, 0, pages(0..2 * p.cpus), 1));
    r.finish(t, &[&dom])
}

fn unmap_vs_attach(p: &Params) -> Outcome {
    let eps = [Ep { smmu: 0, sids: &[1], ats: false }, Ep { smmu: 0, sids: &[3, 2], ats: true }];
    let r = Rig::new(p, &[ATS], &eps, 1);
    let dom = r.domain(DomainKind::S1);
    r.attach(0, 0, d(&dom), false);
    let (to, m1) = (d(&dom), r.masters[1].clone());
    unmap_race(
        r,
        p,
        &dom,
        &[],
        &[(1, 0, 2)],
        Some(move |drv: &Driver, cpu: &Cpu| {
            let _ = drv.attach(cpu, &m1, 0, to, true);
        }),
    )
}

fn unmap_vs_detach(p: &Params) -> Outcome {
    let eps = [Ep { smmu: 0, sids: &[3, 2], ats: true }, Ep { smmu: 0, sids: &[1], ats: false }];
    let r = Rig::new(p, &[ATS], &eps, 1);
    let dom = r.domain(DomainKind::S1);
    r.attach(0, 0, d(&dom), true);
    r.attach(1, 0, d(&dom), false);
    let m0 = r.masters[0].clone();
    unmap_race(
        r,
        p,
        &dom,
        &[],
        &[(0, 0, 2)],
        Some(move |drv: &Driver, cpu: &Cpu| {
            let _ = drv.attach(cpu, &m0, 0, Target::Blocked, false);
        }),
    )
}

/// A master with ATS is unmapped under while it moves between `targets`.
fn ats_moves(p: &Params, targets: fn(&Arc<Domain>) -> [(Target, bool); 3]) -> Outcome {
    let eps = [Ep { smmu: 0, sids: &[3, 2], ats: true }];
    let r = Rig::new(p, &[ATS], &eps, 1);
    let dom = r.domain(DomainKind::S1);
    r.attach(0, 0, d(&dom), true);
    let (moves, m0, n_moves) = (targets(&dom), r.masters[0].clone(), p.upto(3));
    unmap_race(
        r,
        p,
        &dom,
        &[],
        &[(0, 0, 2)],
        Some(move |drv: &Driver, cpu: &Cpu| {
            for (to, ats) in moves.into_iter().take(n_moves) {
                let _ = drv.attach(cpu, &m0, 0, to, ats);
            }
        }),
    )
}

fn ats_toggle(p: &Params) -> Outcome {
    ats_moves(p, |dom| [(Target::Blocked, false), (d(dom), true), (Target::Blocked, false)])
}

fn reattach_ats(p: &Params) -> Outcome {
    ats_moves(p, |dom| [(d(dom), false), (d(dom), true), (d(dom), false)])
}

fn replace(p: &Params) -> Outcome {
    let eps = [Ep { smmu: 0, sids: &[3, 2], ats: true }, Ep { smmu: 0, sids: &[1], ats: false }];
    let mut r = Rig::new(p, &[ATS], &eps, 1);
    let (a, b) = (r.domain(DomainKind::S1), r.domain(DomainKind::S1));
    r.attach(1, 0, d(&a), false);
    r.attach(0, 0, d(&a), true);
    premap(&r, &a, 2);
    premap(&r, &b, 2);
    let mut t: Vec<_> = (0..p.cpus)
        .map(|c| unmap_share(&mut r, if c % 2 == 0 { &a } else { &b }, c / 2, p.cpus.div_ceil(2), 2))
        .collect();
    let (a2, b2, m0) = (a.clone(), b.clone(), r.masters[0].clone());
    let n_moves = p.upto(3);
    t.push(r.cpu(move |drv, cpu| {
        for (to, ats) in [(&b2, false), (&a2, true), (&b2, true)].into_iter().take(n_moves) {
            let _ = drv.attach(cpu, &m0, 0, Target::Domain(to.clone()), ats);
        }
    }));
    t.push(r.dma(0, 0, pages(0..2), 3));
    t.push(r.dma(1, 0, pages(0..2), 3));
    r.finish(t, &[&a, &b])
}

fn nesting_s1_clear(p: &Params) -> Outcome {
    let eps = [Ep { smmu: 0, sids: &[1], ats: false }];
    let r = Rig::new(p, &[PLAIN], &eps, 0);
    let parent = r.domain(DomainKind::S2 { nest_parent: true });
    r.attach(0, 0, Target::Nested { parent: parent.clone(), s1: GuestS1::Identity { asid: 7 } }, false);
    unmap_race(r, p, &parent, &[], &[(0, 0, 2)], NO_RACE)
}

fn sva(p: &Params) -> Outcome {
    let eps = [Ep { smmu: 0, sids: &[3, 2], ats: true }];
    let r = Rig::new(p, &[ATS], &eps, 1);
    let (rid, mm) = (r.domain(DomainKind::S1), r.domain(DomainKind::Sva));
    r.attach(0, 0, d(&rid), true);
    r.attach(0, 1, d(&mm), false);
    let (back, m0) = (d(&mm), r.masters[0].clone());
    unmap_race(
        r,
        p,
        &mm,
        &[&rid],
        &[(0, 1, 2)],
        Some(move |drv: &Driver, cpu: &Cpu| {
            let _ = drv.attach(cpu, &m0, 1, Target::Blocked, false);
            let _ = drv.attach(cpu, &m0, 1, back, false);
        }),
    )
}

fn two_smmus(p: &Params) -> Outcome {
    let eps = [Ep { smmu: 0, sids: &[1], ats: true }, Ep { smmu: 1, sids: &[3, 2], ats: true }];
    let r = Rig::new(p, &[ATS, ATS], &eps, 1);
    let dom = r.domain(DomainKind::S1);
    r.attach(0, 0, d(&dom), true);
    let (to, m1) = (d(&dom), r.masters[1].clone());
    unmap_race(
        r,
        p,
        &dom,
        &[],
        &[(1, 0, 2), (0, 0, 1)],
        Some(move |drv: &Driver, cpu: &Cpu| {
            let _ = drv.attach(cpu, &m1, 0, to, true);
            let _ = drv.attach(cpu, &m1, 0, Target::Blocked, false);
        }),
    )
}

fn smmu_removal(p: &Params) -> Outcome {
    let eps = [Ep { smmu: 0, sids: &[1], ats: false }, Ep { smmu: 1, sids: &[3], ats: false }];
    let r = Rig::new(p, &[PLAIN, PLAIN], &eps, 1);
    let dom = r.domain(DomainKind::S1);
    r.attach(0, 0, d(&dom), false);
    r.attach(1, 0, d(&dom), false);
    let m1 = r.masters[1].clone();
    unmap_race(
        r,
        p,
        &dom,
        &[],
        &[(0, 0, 1)],
        Some(move |drv: &Driver, cpu: &Cpu| {
            let _ = drv.remove_smmu(cpu, m1.smmu, &[&m1]);
        }),
    )
}

fn blocked_attach(p: &Params) -> Outcome {
    // The leaving master's ATS entries sort before the staying one's, so
    // its unref leaves trash in the middle and the purge replaces the array.
    let eps = [Ep { smmu: 0, sids: &[7, 6], ats: true }, Ep { smmu: 0, sids: &[3, 2], ats: true }];
    let r = Rig::new(p, &[ATS], &eps, 1);
    let dom = r.domain(DomainKind::S1);
    r.attach(0, 0, d(&dom), true);
    r.attach(1, 0, d(&dom), true);
    let m1 = r.masters[1].clone();
    unmap_race(
        r,
        p,
        &dom,
        &[],
        &[(1, 0, 1)],
        Some(move |drv: &Driver, cpu: &Cpu| {
            let _ = drv.attach(cpu, &m1, 0, Target::Blocked, false);
        }),
    )
}

fn asid_reuse(p: &Params) -> Outcome {
    let eps = [Ep { smmu: 0, sids: &[1], ats: false }];
    let mut r = Rig::new(p, &[PLAIN], &eps, 1);
    let old = r.domain(DomainKind::S1);
    r.attach(0, 0, d(&old), false);
    premap(&r, &old, p.cpus);
    let m0 = r.masters[0].clone();
    let mover = r.cpu(move |drv, cpu| {
        let _ = drv.attach(cpu, &m0, 0, Target::Blocked, false);
        drv.free_domain(cpu, old);
        let new = drv.alloc_domain(DomainKind::S1).ok()?;
        for k in 0..m0.streams.len().max(1) {
            let _ = drv.map(cpu, &new, page(k), PAGE);
        }
        let _ = drv.attach(cpu, &m0, 0, Target::Domain(new.clone()), false);
        drv.machine.dma(m0.ep, m0.streams[0], 0, page(0));
        Some(new)
    });
    let t = vec![r.dma(0, 0, pages(0..p.cpus), 2)];
    let new = match mover.join() {
        Ok(new) => new,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    r.finish(t, &new.iter().collect::<Vec<_>>())
}

/// Each worker unmaps its pages of an ATS domain (its walks take the ATS
/// read lock) while its interrupt handler unmaps the buffers it queued,
/// and a mover detaches and re-attaches a second master, whose unref takes
/// the write lock. By default under the fair rwlock, where a reader in
/// interrupt context waits behind a waiting writer.
fn irq_unmap(p: &Params) -> Outcome {
    let p = Params { rwlock: Some(p.rwlock.unwrap_or(smmu_sync::RwLockKind::Fair)), ..*p };
    let p = &p;
    let eps = [Ep { smmu: 0, sids: &[3, 2], ats: true }, Ep { smmu: 0, sids: &[1], ats: false }];
    let mut r = Rig::new(p, &[ATS], &eps, 1);
    let dom = r.domain(DomainKind::S1);
    r.attach(0, 0, d(&dom), true);
    r.attach(1, 0, d(&dom), false);
    let n = p.upto(2 * p.cpus);
    premap(&r, &dom, 2 * n);
    let irq = Irq { odds: 8 };
    let mut t: Vec<_> = (0..p.cpus)
        .map(|c| {
            let dom = dom.clone();
            let cpus = p.cpus;
            r.cpu_irq(Some(irq), move |drv, cpu, done| {
                for k in (c..n).step_by(cpus) {
                    // Buffer n + k goes to the device; its completion
                    // interrupt unmaps it.
                    done.post(&dom, page(n + k));
                    let _ = drv.unmap(cpu, &dom, page(k), PAGE);
                }
            })
        })
        .collect();
    let (dom2, m1) = (dom.clone(), r.masters[1].clone());
    t.push(r.cpu(move |drv, cpu| {
        for _ in 0..2 {
            let _ = drv.attach(cpu, &m1, 0, Target::Blocked, false);
            let _ = drv.attach(cpu, &m1, 0, d(&dom2), false);
        }
    }));
    t.push(r.dma(0, 0, pages(0..2 * n), 2));
    r.finish(t, &[&dom])
}

fn live_attach(p: &Params) -> Outcome {
    let eps = [Ep { smmu: 0, sids: &[1], ats: false }];
    let mut r = Rig::new(p, &[PLAIN], &eps, 0);
    let rid = r.domain(DomainKind::S1);
    r.attach(0, 0, d(&rid), false);
    let fresh = r.domain(DomainKind::S1);
    let (fresh2, m0) = (fresh.clone(), r.masters[0].clone());
    let n = p.cpus;
    let mut t = vec![r.cpu(move |drv, cpu| {
        for k in 0..n {
            let _ = drv.populate(cpu, &fresh2, page(k), PAGE);
        }
        let _ = drv.attach(cpu, &m0, 1, Target::Domain(fresh2), false);
    })];
    t.push(r.dma(0, 1, pages(0..n), 3));
    r.finish(t, &[&rid, &fresh])
}

/// A nested master on a nesting parent, its guest behind a vSMMU running a
/// round per array from its own CPU (with `race`, while the VMM re-attaches
/// it), `p.cpus` workers unmapping parent pages the guest also maps, and
/// the device DMAing to every guest IOVA.
fn vsmmu_world(p: &Params, arrays: &[Array], race: bool) -> Outcome {
    // Physical SID 5 behind the guest's vSID 1, with ATS.
    let eps = [Ep { smmu: 0, sids: &[5], ats: true }];
    let mut r = Rig::new(p, &[ATS], &eps, 2);
    let parent = r.domain(DomainKind::S2 { nest_parent: true });
    let n = 2 * p.cpus;
    premap(&r, &parent, n);
    let shared = pages(0..n);
    let guest = Arc::new(Guest::attach(&r, 0, parent.clone(), &shared));
    let (g, arrays) = (guest.clone(), arrays.to_vec());
    let mut t = vec![r.cpu(move |drv, cpu| arrays.into_iter().for_each(|a| g.round(drv, cpu, a)))];
    if race {
        t.push(r.cpu(move |drv, cpu| guest.reattach(drv, cpu)));
    }
    t.extend((0..p.cpus).map(|c| unmap_share(&mut r, &parent, c, p.cpus, n)));
    t.push(r.dma(0, 0, Guest::iovas(&shared), 2));
    r.finish(t, &[&parent])
}

/// Valid arrays, one longer than a batch, and a round with only the unmap.
fn vsmmu_invalidate(p: &Params) -> Outcome {
    vsmmu_world(p, &[Array::draw(70, None, false), Array::draw(0, None, false), Array::draw(5, None, false)], true)
}

/// Arrays with one illegal command each: past the first batch, early in
/// its batch, first, last; their kinds vary with their place in the queue.
/// Before the first, the VMM tries every malformed or misaimed ioctl.
fn vsmmu_malformed(p: &Params) -> Outcome {
    let arrays = [(100, 70), (9, 4), (3, 0), (66, 65)].map(|(n, bad)| Array::draw(n, Some(bad), n == 100));
    vsmmu_world(p, &arrays, false)
}

fn hw_queue_vs_unmap(p: &Params) -> Outcome {
    // The VMM unmaps the mapped guest pages one by one; the queue uses two.
    let mut r = Rig::new(p, &[PLAIN], &[], 2);
    let q = Arc::new(Queues::new(&r));
    let (q1, q2, q3) = (q.clone(), q.clone(), q);
    let vmm = r.cpu(move |drv, _| q1.cycle(drv));
    let hw = r.cpu(move |drv, _| (0..4).for_each(|_| q2.read(drv)));
    let unmapper = r.cpu(move |drv, _| (0..queue::PAGES).for_each(|k| q3.unmap(drv, k)));
    r.finish(vec![vmm, hw, unmapper], &[])
}

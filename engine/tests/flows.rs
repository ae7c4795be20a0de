//! Each driver flow against the model, single-threaded: what the arrays,
//! the STEs, the caches and the oracle say afterwards.

use engine::*;
use hwmodel::*;
use std::sync::Arc;

const IOVA: u64 = 0x40_0000;

struct World {
    drv: Driver,
    cpu: Cpu,
    smmus: Vec<SmmuId>,
}

fn world(n: usize, features: Features, endpoints: usize) -> (World, Vec<Master>) {
    world_on(Engine::Fenced, n, features, endpoints)
}

/// `n` SMMUs with `features`; endpoint k sits on SMMU k % n with SIDs
/// {2k+1, 2k} (listed unsorted, as firmware may).
fn world_on(engine: Engine, n: usize, features: Features, endpoints: usize) -> (World, Vec<Master>) {
    // CPU 1 is a reader's, for the tests of grace periods.
    let mut m = Machine::new(2);
    // These tests read exact command effects: no speculative refills.
    m.set_refetch(false);
    let smmus: Vec<_> = (0..n).map(|_| m.add_smmu(features)).collect();
    let eps: Vec<_> =
        (0..endpoints).map(|k| m.add_endpoint(smmus[k % n], &[2 * k as u32 + 1, 2 * k as u32], true)).collect();
    let drv = Driver::new(m, Env::new(), engine);
    let cpu = drv.cpu(0);
    let masters = eps.into_iter().map(|ep| drv.probe(ep)).collect();
    (World { drv, cpu, smmus }, masters)
}

/// An array as (type, id, ssid, users) rows.
type Rows = Vec<(InvType, u32, u32, u32)>;

fn rows(w: &World, d: &Domain) -> Rows {
    let g = w.cpu.epoch.pin();
    fenced::invs(d).load(&g).entries().iter().map(|i| (i.ty, i.id, i.ssid, i.users())).collect()
}

fn kinds(w: &World) -> Vec<ViolationKind> {
    w.drv.machine.oracle.violations().iter().map(|v| v.kind).collect()
}

fn dma(w: &World, m: &Master, ssid: u32, iova: u64) -> Translation {
    w.drv.machine.dma(m.ep, m.streams[0], ssid, iova)
}

/// A stage-1 domain with `m` attached at SSID 0.
fn attached_s1(w: &World, m: &Master, ats: bool) -> Arc<Domain> {
    let d = w.drv.alloc_domain(DomainKind::S1).unwrap();
    w.drv.attach(&w.cpu, m, 0, Target::Domain(d.clone()), ats).unwrap();
    d
}

/// Map one page at `IOVA` and let `m` translate it, filling its caches.
fn map_and_dma(w: &World, d: &Domain, m: &Master) {
    w.drv.map(&w.cpu, d, IOVA, PAGE).unwrap();
    dma(w, m, 0, IOVA);
}

/// Opcodes of the last `n` non-sync commands submitted.
/// Every command but CMD_SYNC submitted so far, in order.
fn submitted(w: &World) -> Vec<Cmd> {
    let trace = w.drv.machine.oracle.trace_tail().into_iter();
    trace
        .filter_map(|s| match s.event {
            Event::Submit { cmd, .. } if cmd.op != Opcode::CmdSync => Some(cmd),
            _ => None,
        })
        .collect()
}

/// Whether `op` waited for a reader pinned on another CPU (a walker that
/// may hold an old copy of an array): the reader unpins 50 ms after `op`
/// starts, so an `op` that returns first did not wait.
fn waits_for_a_pinned_reader(w: &World, op: impl FnOnce()) -> bool {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    let (pinned, released) = (AtomicBool::new(false), AtomicBool::new(false));
    let (drv, p, r) = (&w.drv, &pinned, &released);
    std::thread::scope(|s| {
        s.spawn(move || {
            let cpu = drv.cpu(1);
            let g = cpu.epoch.pin();
            p.store(true, SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(50));
            r.store(true, SeqCst);
            drop(g);
        });
        while !pinned.load(SeqCst) {
            std::thread::yield_now();
        }
        op();
        released.load(SeqCst)
    })
}

fn last_submits(w: &World, n: usize) -> Vec<Opcode> {
    let ops: Vec<_> = submitted(w).into_iter().map(|c| c.op).collect();
    ops[ops.len().saturating_sub(n)..].to_vec()
}

fn asid(d: &Domain) -> u32 {
    d.tag().into()
}

const ENGINES: [Engine; 2] = [Engine::Fenced, Engine::Legacy];

#[test]
fn s1_attach_map_unmap() {
    for engine in ENGINES {
        let (w, ms) = world_on(engine, 1, Features::default(), 1);
        let d = w.drv.alloc_domain(DomainKind::S1).unwrap();
        assert_eq!(ms[0].streams, [0, 1], "stream IDs sorted at probe");
        w.drv.attach(&w.cpu, &ms[0], 0, Target::Domain(d.clone()), false).unwrap();
        if engine == Engine::Fenced {
            assert_eq!(rows(&w, &d), [(InvType::S1Asid, asid(&d), 0, 1)]);
        }
        let pa = w.drv.map(&w.cpu, &d, IOVA, PAGE).unwrap();
        assert!(matches!(dma(&w, &ms[0], 0, IOVA), Translation::Ok { pa: p, .. } if p == pa));
        w.drv.unmap(&w.cpu, &d, IOVA, PAGE).unwrap();
        assert!(matches!(dma(&w, &ms[0], 0, IOVA), Translation::Fault { .. }));
        assert!(kinds(&w).is_empty(), "{engine:?}: {:?}", w.drv.machine.oracle.violations());
    }
}

#[test]
fn ats_attach_adds_one_entry_per_stream_and_unmap_clears_the_atc() {
    let (w, ms) = world(1, Features { ats: true, ..Features::default() }, 1);
    let d = attached_s1(&w, &ms[0], true);
    let a = asid(&d);
    assert_eq!(rows(&w, &d), [(InvType::S1Asid, a, 0, 1), (InvType::Ats, 0, 0, 1), (InvType::Ats, 1, 0, 1)]);
    assert!(w.drv.machine.endpoint(ms[0].ep).ats_enabled());
    map_and_dma(&w, &d, &ms[0]);
    assert_eq!(w.drv.machine.endpoint(ms[0].ep).atc_len(), 1);
    w.drv.unmap(&w.cpu, &d, IOVA, PAGE).unwrap();
    assert_eq!(w.drv.machine.endpoint(ms[0].ep).atc_len(), 0);
    assert!(matches!(dma(&w, &ms[0], 0, IOVA), Translation::Fault { .. }));
    assert!(kinds(&w).is_empty(), "{:?}", w.drv.machine.oracle.violations());
}

#[test]
fn reattach_to_the_same_domain_toggles_ats() {
    let (w, ms) = world(1, Features { ats: true, ..Features::default() }, 1);
    let d = w.drv.alloc_domain(DomainKind::S1).unwrap();
    let a = asid(&d);
    w.drv.attach(&w.cpu, &ms[0], 0, Target::Domain(d.clone()), false).unwrap();
    w.drv.attach(&w.cpu, &ms[0], 0, Target::Domain(d.clone()), true).unwrap();
    assert_eq!(rows(&w, &d), [(InvType::S1Asid, a, 0, 1), (InvType::Ats, 0, 0, 1), (InvType::Ats, 1, 0, 1)]);
    assert!(w.drv.machine.endpoint(ms[0].ep).ats_enabled());
    w.drv.attach(&w.cpu, &ms[0], 0, Target::Domain(d.clone()), false).unwrap();
    assert_eq!(rows(&w, &d), [(InvType::S1Asid, a, 0, 1)], "ATS entries purged");
    assert!(!w.drv.machine.endpoint(ms[0].ep).ats_enabled());
    assert!(kinds(&w).is_empty(), "{:?}", w.drv.machine.oracle.violations());
}

/// ATS goes off after a grace period exactly when an array holding a live
/// ATS entry of the master was replaced since its last one: a walker may
/// still hold that copy. A same-domain re-attach replaces such a copy too
/// (the first rule looked only at whether the domain republished since the
/// SSID's last merge, and missed it).
#[test]
fn ats_off_waits_a_grace_period_only_after_a_copy_with_its_entries_was_replaced() {
    // The wait itself, not the goal counted before it: fails under
    // ats-off-without-grace-period.
    let (w, ms) = world(1, Features { ats: true, ..Features::default() }, 1);
    let detach = || w.drv.attach(&w.cpu, &ms[0], 0, Target::Blocked, false).unwrap();
    let d = w.drv.alloc_domain(DomainKind::S1).unwrap();
    w.drv.attach(&w.cpu, &ms[0], 0, Target::Domain(d.clone()), true).unwrap();
    assert!(!waits_for_a_pinned_reader(&w, detach), "only the array unref fenced ever held the entries");
    w.drv.attach(&w.cpu, &ms[0], 0, Target::Domain(d.clone()), true).unwrap();
    w.drv.attach(&w.cpu, &ms[0], 0, Target::Domain(d.clone()), true).unwrap();
    assert!(waits_for_a_pinned_reader(&w, detach), "the re-attach replaced a copy holding the entries");
    w.drv.attach(&w.cpu, &ms[0], 0, Target::Domain(d.clone()), true).unwrap();
    assert!(
        !waits_for_a_pinned_reader(&w, detach),
        "the grace period cleared the marks; trash was fenced by its unref"
    );
    assert!(kinds(&w).is_empty(), "{:?}", w.drv.machine.oracle.violations());
}

#[test]
fn last_user_detach_flushes_its_asid() {
    let (w, ms) = world(1, Features::default(), 1);
    let d = attached_s1(&w, &ms[0], false);
    map_and_dma(&w, &d, &ms[0]);
    assert_eq!(w.drv.machine.smmu(w.smmus[0]).iotlb().len(), 1);
    w.drv.attach(&w.cpu, &ms[0], 0, Target::Blocked, false).unwrap();
    assert!(rows(&w, &d).is_empty());
    assert!(w.drv.machine.smmu(w.smmus[0]).iotlb().is_empty(), "fact 5: flushed on last unref");
    w.drv.check_tags(&w.cpu, &[&d]);
    assert!(matches!(dma(&w, &ms[0], 0, IOVA), Translation::Fault { walked: None }), "blocked: STE aborts");
    assert!(kinds(&w).is_empty(), "{:?}", w.drv.machine.oracle.violations());
}

#[test]
fn a_domain_on_two_smmus_invalidates_both() {
    let (w, ms) = world(2, Features::default(), 2);
    let d = w.drv.alloc_domain(DomainKind::S1).unwrap();
    for m in &ms {
        w.drv.attach(&w.cpu, m, 0, Target::Domain(d.clone()), false).unwrap();
    }
    let smmus: Vec<_> = {
        let g = w.cpu.epoch.pin();
        fenced::invs(&d).load(&g).entries().iter().map(|i| i.smmu).collect()
    };
    assert_eq!(smmus, w.smmus, "one S1_ASID entry per SMMU, in SMMU order");
    w.drv.map(&w.cpu, &d, IOVA, PAGE).unwrap();
    for m in &ms {
        dma(&w, m, 0, IOVA);
    }
    w.drv.unmap(&w.cpu, &d, IOVA, PAGE).unwrap();
    for s in &w.smmus {
        assert!(w.drv.machine.smmu(*s).iotlb().is_empty());
    }
    assert!(kinds(&w).is_empty(), "{:?}", w.drv.machine.oracle.violations());
}

#[test]
fn nesting_parent_clears_nested_stage_1_unless_vmall() {
    let (w, ms) = world(1, Features { ats: true, ..Features::default() }, 1);
    let parent = w.drv.alloc_domain(DomainKind::S2 { nest_parent: true }).unwrap();
    let nested = Target::Nested { parent: parent.clone(), s1: GuestS1::Identity { asid: 9 } };
    w.drv.attach(&w.cpu, &ms[0], 0, nested, true).unwrap();
    let v = asid(&parent);
    assert_eq!(
        rows(&w, &parent),
        [
            (InvType::S2Vmid, v, 0, 1),
            (InvType::S2VmidS1Clear, v, 0, 1),
            (InvType::AtsFull, 0, 0, 1),
            (InvType::AtsFull, 1, 0, 1)
        ]
    );
    map_and_dma(&w, &parent, &ms[0]);
    w.drv.unmap(&w.cpu, &parent, IOVA, PAGE).unwrap();
    assert!(w.drv.machine.smmu(w.smmus[0]).iotlb().is_empty(), "NH_ALL removed the combined entry");
    let atc = Opcode::AtcInv;
    assert_eq!(last_submits(&w, 4), [Opcode::TlbiS2Ipa, Opcode::TlbiNhAll, atc, atc], "ATC_INV per SID");
    w.drv.domain_inv(&w.cpu, &parent);
    assert_eq!(last_submits(&w, 3), [Opcode::TlbiS12Vmall, atc, atc], "VMALL makes the S1 clear redundant");
    assert!(kinds(&w).is_empty(), "{:?}", w.drv.machine.oracle.violations());
    assert!(!size_too_big(Features::default(), PAGE, PAGE));
    assert!(size_too_big(Features::default(), 0, PAGE), "size 0 is everything");
}

#[test]
fn sva_and_blocking_set_dev_pasid() {
    let (w, ms) = world(1, Features::default(), 1);
    let rid = attached_s1(&w, &ms[0], false);
    let sva = w.drv.alloc_domain(DomainKind::Sva).unwrap();
    w.drv.attach(&w.cpu, &ms[0], 3, Target::Domain(sva.clone()), false).unwrap();
    assert_eq!(rows(&w, &sva), [(InvType::S1Asid, asid(&sva), 0, 1)]);
    let pa = w.drv.map(&w.cpu, &sva, IOVA, PAGE).unwrap();
    assert!(matches!(dma(&w, &ms[0], 3, IOVA), Translation::Ok { pa: p, .. } if p == pa));
    w.drv.unmap(&w.cpu, &sva, IOVA, PAGE).unwrap();
    assert!(matches!(dma(&w, &ms[0], 3, IOVA), Translation::Fault { .. }));
    w.drv.attach(&w.cpu, &ms[0], 3, Target::Blocked, false).unwrap();
    assert!(rows(&w, &sva).is_empty());
    assert_eq!(rows(&w, &rid).len(), 1, "the RID domain is untouched");
    assert!(kinds(&w).is_empty(), "{:?}", w.drv.machine.oracle.violations());
}

#[test]
fn range_invalidation_uses_range_commands_and_none_for_everything() {
    let (w, ms) = world(1, Features { range_inv: true, ..Features::default() }, 1);
    let d = attached_s1(&w, &ms[0], false);
    for k in 0..5 {
        w.drv.map(&w.cpu, &d, IOVA + k * PAGE, PAGE).unwrap();
        dma(&w, &ms[0], 0, IOVA + k * PAGE);
    }
    let before = submitted(&w).len();
    w.drv.domain_inv_range(&w.cpu, &d, IOVA, 5 * PAGE, PAGE, true);
    assert!(w.drv.machine.smmu(w.smmus[0]).iotlb().is_empty());
    let sent = submitted(&w)[before..].to_vec();
    assert_eq!(sent.len(), 1, "one range command for 5 pages: {sent:?}");
    let (cmd, range) = (sent[0], sent[0].range);
    assert_eq!((cmd.op, cmd.addr, range.num, range.scale, range.tg), (Opcode::TlbiNhVa, IOVA, 4, 0, 1), "{cmd:?}");
    let before = submitted(&w).len();
    w.drv.domain_inv(&w.cpu, &d);
    let sent = submitted(&w)[before..].to_vec();
    assert_eq!(
        sent.iter().map(|c| (c.op, c.range.tg)).collect::<Vec<_>>(),
        [(Opcode::TlbiNhAsid, 0)],
        "everything: no range"
    );
    assert!(kinds(&w).is_empty(), "{:?}", w.drv.machine.oracle.violations());
    assert_eq!(atc_inv_cmd(1, 0, 0x3000, 0x2000).atc_size, 15, "pages 3-4 need the aligned 32 KiB span 0-7");
    assert_eq!(atc_inv_cmd(1, 0, 0x3000, 0x2000).addr, 0);
}

#[test]
fn smmu_removal_detaches_and_waits() {
    let (w, ms) = world(2, Features::default(), 2);
    let d = w.drv.alloc_domain(DomainKind::S1).unwrap();
    for m in &ms {
        w.drv.attach(&w.cpu, m, 0, Target::Domain(d.clone()), false).unwrap();
    }
    let refs: Vec<&Master> = ms.iter().collect();
    // A walker may still hold an array naming the SMMU: removal waits for
    // it. Fails under remove-smmu-without-grace-period.
    let remove = || w.drv.remove_smmu(&w.cpu, w.smmus[1], &refs).unwrap();
    assert!(waits_for_a_pinned_reader(&w, remove), "the SMMU went away under a pinned reader");
    assert!(w.drv.machine.smmu(w.smmus[1]).is_removed());
    assert_eq!(rows(&w, &d).len(), 1, "only the surviving SMMU's entry is left");
    w.drv.map(&w.cpu, &d, IOVA, PAGE).unwrap();
    w.drv.unmap(&w.cpu, &d, IOVA, PAGE).unwrap();
    assert!(kinds(&w).is_empty(), "{:?}", w.drv.machine.oracle.violations());
}

/// What a failed attach must leave exactly as it found it: the arrays, the
/// master's ATS state and what each SSID is attached to.
type Snapshot = (Vec<Rows>, bool, Vec<(u32, Allowed)>);

fn snapshot(w: &World, m: &Master, ds: &[&Arc<Domain>]) -> Snapshot {
    let st = m.state.lock();
    let mut attached: Vec<_> = st.attached.iter().map(|(s, t)| (*s, t.allowed())).collect();
    attached.sort_by_key(|a| a.0);
    (ds.iter().map(|d| rows(w, d)).collect(), st.ats_enabled, attached)
}

#[test]
fn fail_nth_sweep_leaves_a_failed_attach_without_trace() {
    let (w, ms) = world(1, Features { ats: true, ..Features::default() }, 2);
    let a = w.drv.alloc_domain(DomainKind::S1).unwrap();
    let b = w.drv.alloc_domain(DomainKind::S1).unwrap();
    w.drv.attach(&w.cpu, &ms[1], 0, Target::Domain(a.clone()), true).unwrap();
    w.drv.attach(&w.cpu, &ms[0], 0, Target::Domain(a.clone()), true).unwrap();
    let mut failures = 0;
    for n in 1.. {
        let before = snapshot(&w, &ms[0], &[&a, &b]);
        w.drv.env.set_fail_nth(n);
        let r = w.drv.attach(&w.cpu, &ms[0], 0, Target::Domain(b.clone()), false);
        let injected = w.drv.env.injected();
        w.drv.env.set_fail_nth(0);
        match r {
            Err(e) => {
                assert_eq!(e, Errno::ENOMEM, "n = {n}");
                assert_eq!(snapshot(&w, &ms[0], &[&a, &b]), before, "n = {n}: failed at {injected:?}");
                failures += 1;
            }
            Ok(()) => {
                // A purge that could not allocate leaves trash, which is
                // allowed; everything else must be the full move.
                let arrays = snapshot(&w, &ms[0], &[&a, &b]).0;
                let live = |rows: &Rows| rows.iter().filter(|r| r.3 > 0).count();
                assert_eq!(live(&arrays[0]), 3, "n = {n}: the other master keeps its entries in A");
                assert_eq!(arrays[1], [(InvType::S1Asid, asid(&b), 0, 1)], "n = {n}");
                if injected.is_none() {
                    break;
                }
                // Put it back for the next round.
                w.drv.attach(&w.cpu, &ms[0], 0, Target::Domain(a.clone()), true).unwrap();
            }
        }
    }
    assert_eq!(failures, 2, "merge into B and the master_domain allocation can fail");
    assert!(kinds(&w).is_empty(), "{:?}", w.drv.machine.oracle.violations());
}

#[test]
fn legacy_ats_attach_toggle_and_unmap() {
    let (w, ms) = world_on(Engine::Legacy, 1, Features { ats: true, ..Features::default() }, 1);
    let d = attached_s1(&w, &ms[0], true);
    map_and_dma(&w, &d, &ms[0]);
    assert_eq!(w.drv.machine.endpoint(ms[0].ep).atc_len(), 1);
    w.drv.unmap(&w.cpu, &d, IOVA, PAGE).unwrap();
    assert_eq!(w.drv.machine.endpoint(ms[0].ep).atc_len(), 0, "ATC_INV sent to the ATS master on the list");
    w.drv.attach(&w.cpu, &ms[0], 0, Target::Domain(d.clone()), false).unwrap();
    assert!(!w.drv.machine.endpoint(ms[0].ep).ats_enabled());
    w.drv.map(&w.cpu, &d, IOVA, PAGE).unwrap();
    w.drv.unmap(&w.cpu, &d, IOVA, PAGE).unwrap();
    assert!(kinds(&w).is_empty(), "no ATC_INV after ATS went off: {:?}", w.drv.machine.oracle.violations());
}

#[test]
fn legacy_domains_stay_on_one_smmu_and_flush_when_freed() {
    let (w, ms) = world_on(Engine::Legacy, 2, Features::default(), 2);
    let d = attached_s1(&w, &ms[0], false);
    assert_eq!(w.drv.attach(&w.cpu, &ms[1], 0, Target::Domain(d.clone()), false), Err(Errno::EINVAL));
    map_and_dma(&w, &d, &ms[0]);
    w.drv.attach(&w.cpu, &ms[0], 0, Target::Blocked, false).unwrap();
    w.drv.check_tags(&w.cpu, &[&d]);
    assert!(kinds(&w).is_empty(), "the tag stays live until the domain is freed");
    w.drv.free_domain(&w.cpu, d);
    assert!(w.drv.machine.smmu(w.smmus[0]).iotlb().is_empty(), "freeing flushed the ASID");
    assert!(kinds(&w).is_empty(), "{:?}", w.drv.machine.oracle.violations());
}

#[test]
fn tlb_inv_walk_issues_non_leaf_invalidation_through_the_array() {
    let (w, ms) = world(1, Features::default(), 1);
    let d = attached_s1(&w, &ms[0], false);
    map_and_dma(&w, &d, &ms[0]);
    assert_eq!(w.drv.machine.smmu(w.smmus[0]).iotlb().len(), 1);
    w.drv.tlb_inv_walk(&w.cpu, &d, IOVA, PAGE, PAGE);
    assert!(w.drv.machine.smmu(w.smmus[0]).iotlb().is_empty());
    let last = w.drv.machine.oracle.trace_tail().into_iter().rev().find_map(|s| match s.event {
        Event::Submit { cmd, .. } if cmd.op == Opcode::TlbiNhVa => Some(cmd),
        _ => None,
    });
    assert!(last.is_some_and(|c| !c.leaf && c.addr == IOVA), "{last:?}");
}

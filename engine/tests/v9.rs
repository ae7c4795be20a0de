//! The v9 engine does what seed 001 does, bugs included: these tests pin
//! the translation down, so a "fix" in it shows up as a failing test and
//! belongs in the default engine instead.

use engine::v9::Invs;
use engine::*;
use hwmodel::*;
use std::sync::Arc;
use InvType::*;

fn inv(ty: InvType, id: u32, ssid: u32) -> InvDesc {
    InvDesc::new(SmmuId(0), false, ty, id, ssid, 0)
}

fn rows(invs: &Invs) -> Vec<(u32, u32, u32)> {
    invs.entries().iter().map(|i| (i.id, i.ssid, i.users())).collect()
}

#[test]
fn kunit_steps_1_to_7_match_the_seed() {
    let env = Env::new();
    let invs1 = [inv(S2Vmid, 1, 0), inv(S2VmidS1Clear, 1, 0), inv(Ats, 3, 0)];
    let invs2 = [inv(S2Vmid, 1, 0), inv(Ats, 4, 0), inv(Ats, 5, 0)];
    let invs3 = [inv(S2Vmid, 1, 0), inv(Ats, 5, 0), inv(Ats, 6, 0)];
    let b = Invs::default().merge(&invs1, &env).unwrap();
    assert_eq!(rows(&b), [(1, 0, 1), (1, 0, 1), (3, 0, 1)]);
    let a = b.merge(&invs2, &env).unwrap();
    assert_eq!(rows(&a), [(1, 0, 2), (1, 0, 1), (3, 0, 1), (4, 0, 1), (5, 0, 1)]);
    a.unref(&invs2, &env, None, |_| {});
    assert_eq!(rows(&a), [(1, 0, 1), (1, 0, 1), (3, 0, 1)], "step 3: tail trimmed");
    let b = a.merge(&invs3, &env).unwrap();
    let mut flushed = Vec::new();
    b.unref(&invs1, &env, None, |i| flushed.push(i.id));
    assert_eq!(rows(&b), [(1, 0, 1), (1, 0, 0), (3, 0, 0), (5, 0, 1), (6, 0, 1)]);
    assert_eq!((b.num_trashes(), flushed), (2, vec![1, 3]));
    let a = b.purge(&env).unwrap().expect("step 6: trash to purge");
    assert_eq!(rows(&a), [(1, 0, 1), (5, 0, 1), (6, 0, 1)]);
    a.unref(&invs3, &env, None, |_| {});
    assert_eq!((a.num_invs(), a.num_trashes()), (0, 0), "step 7");
    assert!(env.take_warnings().is_empty());
}

#[test]
fn two_pasids_of_one_stream_id_collapse_into_one_entry() {
    // Steps 8-9 of the later kunit table: v9's arm_smmu_inv_cmp ignores the
    // SSID, so PASID 2 adds a user to PASID 1's entry instead of its own.
    let env = Env::new();
    let a = Invs::default().merge(&[inv(Ats, 10, 1)], &env).unwrap();
    let b = a.merge(&[inv(Ats, 10, 2)], &env).unwrap();
    assert_eq!(rows(&b), [(10, 1, 2)], "one entry, for SSID 1 only");
}

#[test]
fn purge_drops_has_ats_and_a_failed_purge_is_an_error_not_none() {
    let env = Env::new();
    let a = Invs::default().merge(&[inv(S1Asid, 1, 0), inv(Ats, 2, 0), inv(Ats, 3, 0)], &env).unwrap();
    assert!(a.has_ats());
    a.unref(&[inv(Ats, 2, 0)], &env, None, |_| {});
    let p = a.purge(&env).unwrap().unwrap();
    assert_eq!(rows(&p), [(1, 0, 1), (3, 0, 1)]);
    assert!(!p.has_ats(), "the seed never sets has_ats on a purged copy");
    assert!(p.check().is_err(), "which the oracle's check reports");
    env.set_fail_nth(1);
    assert_eq!(a.purge(&env).unwrap_err(), Errno::ENOMEM, "ERR_PTR(-ENOMEM), which the caller publishes");
}

/// One SMMU, one ATS master with PASIDs, under the v9 engine.
fn world() -> (Driver, Cpu, Master) {
    let mut m = Machine::new(1);
    m.set_refetch(false);
    let s = m.add_smmu(Features { ats: true, ..Features::default() });
    let ep = m.add_endpoint(s, &[3], true);
    let drv = Driver::new(m, Env::new(), Engine::V9);
    let cpu = drv.cpu(0);
    let master = drv.probe(ep);
    (drv, cpu, master)
}

const IOVA: u64 = 0x40_0000;

#[test]
fn an_unmap_leaves_the_second_pasid_of_a_stream_id_in_the_atc() {
    let (drv, cpu, m) = world();
    let rid = drv.alloc_domain(DomainKind::S1).unwrap();
    drv.attach(&cpu, &m, 0, Target::Domain(rid), true).unwrap();
    let d = drv.alloc_domain(DomainKind::S1).unwrap();
    for ssid in [1, 2] {
        drv.attach(&cpu, &m, ssid, Target::Domain(d.clone()), false).unwrap();
    }
    drv.map(&cpu, &d, IOVA, PAGE).unwrap();
    for ssid in [1, 2] {
        drv.machine.dma(m.ep, 3, ssid, IOVA);
    }
    drv.unmap(&cpu, &d, IOVA, PAGE).unwrap();
    assert!(matches!(drv.machine.dma(m.ep, 3, 1, IOVA), Translation::Fault { .. }), "SSID 1 was invalidated");
    drv.machine.dma(m.ep, 3, 2, IOVA);
    let kinds: Vec<_> = drv.machine.oracle.violations().iter().map(|v| v.kind).collect();
    assert_eq!(kinds, [ViolationKind::StaleTranslation], "SSID 2 still translates from its ATC");
}

#[test]
fn ats_goes_off_at_the_endpoint_before_the_old_domain_drops_the_master() {
    let (drv, cpu, m) = world();
    let d: Arc<Domain> = drv.alloc_domain(DomainKind::S1).unwrap();
    drv.attach(&cpu, &m, 0, Target::Domain(d.clone()), true).unwrap();
    drv.attach(&cpu, &m, 0, Target::Blocked, false).unwrap();
    let trace = drv.machine.oracle.trace_tail();
    let detach = trace.iter().position(|s| matches!(s.event, Event::AttachBegin { to: Allowed::Blocked, .. })).unwrap();
    let after = |want: &dyn Fn(&Event) -> bool| trace[detach..].iter().position(|s| want(&s.event));
    let ats_off = after(&|e| matches!(e, Event::Ats { enabled: false, .. })).unwrap();
    let ste = after(&|e| matches!(e, Event::Submit { cmd, .. } if cmd.op == Opcode::CfgiSte)).unwrap();
    let flush = after(&|e| matches!(e, Event::Submit { cmd, .. } if cmd.op == Opcode::TlbiNhAsid));
    assert!(ats_off < ste, "pci_disable_ats in prepare, before the STE write");
    assert!(flush.is_some_and(|f| f > ste), "the ASID flush of the last unref comes after, in commit");
}

#[test]
fn a_full_flush_of_a_nesting_parent_never_ends() {
    let (drv, cpu, m) = world();
    let parent = drv.alloc_domain(DomainKind::S2 { nest_parent: true }).unwrap();
    drv.attach(&cpu, &m, 0, Target::Nested { parent: parent.clone(), s1: GuestS1::Identity { asid: 7 } }, false)
        .unwrap();
    let spin = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        smmu_sync::begin_execution(smmu_sync::Bounds { limit: Some(10_000), deadline: None });
        drv.domain_inv(&cpu, &parent);
    }));
    let msg = spin.expect_err("the walker must be stopped by the watchdog");
    let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.starts_with("livelock") && msg.contains("domain_inv_range"), "{msg}");
    smmu_sync::begin_execution(smmu_sync::Bounds::default());
}

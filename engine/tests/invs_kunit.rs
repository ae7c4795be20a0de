//! The kernel's kunit table for the invalidation array, steps 1-11, plus the
//! bad inputs the array must report without corrupting its counters.

use engine::fenced::Invs;
use engine::{Env, FaultSite, InvDesc, InvType, Warning};
use hwmodel::SmmuId;
use InvType::*;

fn inv(ty: InvType, id: u32, ssid: u32) -> InvDesc {
    InvDesc::new(SmmuId(0), false, ty, id, ssid, 0)
}

/// Asserts ids, users, ssids (when given) and num_trashes of `invs`.
#[track_caller]
fn verify(step: u32, invs: &Invs, ids: &[u32], users: &[u32], ssids: Option<&[u32]>, trashes: usize) {
    let e = invs.entries();
    assert_eq!(e.len(), ids.len(), "step {step}: num_invs");
    assert_eq!(e.iter().map(|i| i.id).collect::<Vec<_>>(), ids, "step {step}: ids");
    assert_eq!(e.iter().map(|i| i.users()).collect::<Vec<_>>(), users, "step {step}: users");
    if let Some(ssids) = ssids {
        assert_eq!(e.iter().map(|i| i.ssid).collect::<Vec<_>>(), ssids, "step {step}: ssids");
    }
    assert_eq!(invs.num_trashes(), trashes, "step {step}: num_trashes");
    invs.check(false).unwrap_or_else(|err| panic!("step {step}: {err}"));
}

#[test]
fn kunit_steps_1_to_11() {
    let env = Env::new();
    let invs1 = [inv(S2Vmid, 1, 0), inv(S2VmidS1Clear, 1, 0), inv(Ats, 3, 0)];
    let invs2 = [inv(S2Vmid, 1, 0), inv(Ats, 4, 0), inv(Ats, 5, 0)];
    let invs3 = [inv(S2Vmid, 1, 0), inv(Ats, 5, 0), inv(Ats, 6, 0)];
    let invs4 = [inv(Ats, 10, 1), inv(Ats, 10, 3), inv(Ats, 12, 1)];
    let invs5 = [inv(Ats, 10, 2), inv(Ats, 10, 3), inv(Ats, 12, 2)];
    let mut flushed = Vec::new();

    let a = Invs::new();
    assert_eq!(a.num_invs(), 0);
    let b = a.merge(&invs1, &env).unwrap();
    verify(1, &b, &[1, 1, 3], &[1, 1, 1], None, 0);

    let a = b.merge(&invs2, &env).unwrap();
    verify(2, &a, &[1, 1, 3, 4, 5], &[2, 1, 1, 1, 1], None, 0);

    assert_eq!(a.unref(&invs2, &env, None, |i| flushed.push(i.id)), 0);
    verify(3, &a, &[1, 1, 3], &[1, 1, 1], None, 0);
    assert_eq!(a.max_invs(), 5, "step 3: unref trims in place");
    assert_eq!(flushed, [4, 5], "step 3: flush hook for entries reaching zero");

    let b = a.merge(&invs3, &env).unwrap();
    verify(4, &b, &[1, 1, 3, 5, 6], &[2, 1, 1, 1, 1], None, 0);

    flushed.clear();
    assert_eq!(b.unref(&invs1, &env, None, |i| flushed.push(i.id)), 2);
    verify(5, &b, &[1, 1, 3, 5, 6], &[1, 0, 0, 1, 1], None, 2);
    assert_eq!(flushed, [1, 3], "step 5: S2_VMID_S1_CLEAR 1 and ATS 3 reach zero");

    let a = b.purge(&env).unwrap().expect("step 6: trash to purge");
    verify(6, &a, &[1, 5, 6], &[1, 1, 1], None, 0);
    assert!(a.purge(&env).unwrap().is_none(), "step 6: no trash, nothing to purge");

    a.unref(&invs3, &env, None, |_| {});
    verify(7, &a, &[], &[], None, 0);
    assert!(a.purge(&env).unwrap().is_none(), "step 7: empty array purges to nothing");

    let b = a.merge(&invs4, &env).unwrap();
    verify(8, &b, &[10, 10, 12], &[1, 1, 1], Some(&[1, 3, 1]), 0);

    let a = b.merge(&invs5, &env).unwrap();
    verify(9, &a, &[10, 10, 10, 12, 12], &[1, 1, 2, 1, 1], Some(&[1, 2, 3, 1, 2]), 0);

    assert_eq!(a.unref(&invs5, &env, None, |_| {}), 1);
    verify(10, &a, &[10, 10, 10, 12], &[1, 0, 1, 1], Some(&[1, 2, 3, 1]), 1);

    let b = a.purge(&env).unwrap().expect("step 11: trash to purge");
    verify(11, &b, &[10, 10, 12], &[1, 1, 1], Some(&[1, 3, 1]), 0);
    assert!(b.has_ats());
    let warnings = env.take_warnings();
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn unref_of_absent_or_trash_entry_is_warned_and_counts_stay_right() {
    let env = Env::new();
    let base = Invs::new().merge(&[inv(S1Asid, 1, 0), inv(S1Asid, 2, 0), inv(Ats, 7, 0)], &env).unwrap();
    base.unref(&[inv(S1Asid, 1, 0)], &env, None, |_| {});
    verify(0, &base, &[1, 2, 7], &[0, 1, 1], None, 1);
    assert!(env.take_warnings().is_empty());

    // Already trash, and never present: both warned, nothing else changes.
    let mut flushed = 0;
    let trashes = base.unref(&[inv(S1Asid, 1, 0), inv(S1Asid, 9, 0)], &env, None, |_| flushed += 1);
    assert_eq!(trashes, 1);
    assert_eq!(flushed, 0);
    verify(0, &base, &[1, 2, 7], &[0, 1, 1], None, 1);
    assert_eq!(env.take_warnings(), [Warning::UnrefAbsent(inv(S1Asid, 1, 0)), Warning::UnrefAbsent(inv(S1Asid, 9, 0))]);
}

#[test]
fn unsorted_to_merge_is_warned_and_the_array_fails_its_check() {
    let env = Env::new();
    let out = Invs::new().merge(&[inv(Ats, 5, 0), inv(Ats, 4, 0)], &env).unwrap();
    assert_eq!(env.take_warnings(), [Warning::MergeUnsorted { index: 1 }]);
    assert!(out.check(true).is_err(), "an unsorted array must not pass the publication check");
}

#[test]
fn duplicate_in_to_merge_is_warned() {
    let env = Env::new();
    let out = Invs::new().merge(&[inv(Ats, 4, 0), inv(Ats, 4, 0)], &env).unwrap();
    assert_eq!(env.take_warnings(), [Warning::MergeUnsorted { index: 1 }]);
    assert!(out.check(true).is_err());
}

#[test]
fn ats_entries_match_by_ssid() {
    let env = Env::new();
    let a = Invs::new().merge(&[inv(Ats, 3, 1)], &env).unwrap();
    let b = a.merge(&[inv(Ats, 3, 2)], &env).unwrap();
    assert_eq!(b.num_invs(), 2, "same SID, different SSID: two entries");
    // Non-ATS types ignore ssid entirely.
    let c = b.merge(&[InvDesc { ssid: 9, ..inv(S1Asid, 3, 0) }], &env).unwrap();
    let d = c.merge(&[inv(S1Asid, 3, 0)], &env).unwrap();
    assert_eq!(d.entries()[0].users(), 2);
}

#[test]
fn sort_order_is_smmu_then_type_then_id() {
    let env = Env::new();
    let on = |smmu, ty, id| InvDesc::new(SmmuId(smmu), false, ty, id, 0, 0);
    let a = Invs::new().merge(&[on(0, Ats, 1), on(1, S1Asid, 9)], &env).unwrap();
    let b = a.merge(&[on(0, S1Asid, 7), on(0, S2Vmid, 2), on(1, S1Asid, 3)], &env).unwrap();
    let got: Vec<_> = b.entries().iter().map(|i| (i.smmu.0, i.ty, i.id)).collect();
    assert_eq!(got, [(0, S1Asid, 7), (0, S2Vmid, 2), (0, Ats, 1), (1, S1Asid, 3), (1, S1Asid, 9)]);
    assert!(env.take_warnings().is_empty());
}

#[test]
fn e2h_selects_el2_opcodes() {
    use hwmodel::Opcode;
    let d = InvDesc::new(SmmuId(0), true, S1Asid, 1, 0, 12);
    assert_eq!((d.size_opcode, d.nsize_opcode), (Opcode::TlbiEl2Va, Opcode::TlbiEl2Asid));
    let d = InvDesc::new(SmmuId(0), false, S1Asid, 1, 0, 12);
    assert_eq!((d.size_opcode, d.nsize_opcode), (Opcode::TlbiNhVa, Opcode::TlbiNhAsid));
}

#[test]
fn injected_allocation_failure_leaves_the_array_untouched() {
    let env = Env::new();
    let a = Invs::new().merge(&[inv(S1Asid, 1, 0), inv(Ats, 2, 0)], &env).unwrap();
    env.set_fail_nth(1);
    assert_eq!(a.merge(&[inv(Ats, 3, 0)], &env).unwrap_err(), engine::Errno::ENOMEM);
    assert_eq!(env.injected(), Some(FaultSite::InvsMerge));
    verify(0, &a, &[1, 2], &[1, 1], None, 0);

    a.unref(&[inv(S1Asid, 1, 0)], &env, None, |_| {});
    env.set_fail_nth(1);
    assert_eq!(a.purge(&env).unwrap_err(), engine::Errno::ENOMEM);
    assert_eq!(env.injected(), Some(FaultSite::InvsPurge));
    verify(0, &a, &[1, 2], &[0, 1], None, 1);
    env.set_fail_nth(0);
    verify(0, &a.purge(&env).unwrap().unwrap(), &[2], &[1], None, 0);
}

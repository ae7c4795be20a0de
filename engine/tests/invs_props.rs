//! Random merge/unref/purge sequences against a plain multiset model, with
//! injected allocation failures, unsorted input, and every array placed in
//! simulated memory and unref'd through a CPU's view, whose words a walker
//! must read as the array's own counts.

mod common;

use common::universe;
use engine::fenced::Invs;
use engine::{Env, Errno, InvDesc, View, Warning};
use hwmodel::{CpuId, Machine};
use proptest::prelude::*;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
enum Op {
    Merge(u16),
    Unref(u16),
    Purge,
    /// The next allocation fails: a merge or a purge.
    Fail(bool),
    /// A merge of the picked entries in reverse: unsorted whenever two are.
    MergeReversed(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => any::<u16>().prop_map(Op::Merge),
        3 => any::<u16>().prop_map(Op::Unref),
        1 => Just(Op::Purge),
        1 => any::<bool>().prop_map(Op::Fail),
        1 => any::<u16>().prop_map(Op::MergeReversed),
    ]
}

/// The words a walker on another CPU reads match the array's counts.
fn words_match(m: &Machine, invs: &Invs) -> Result<(), TestCaseError> {
    m.mem.smp_mb(CpuId(0));
    let v = View { mem: &m.mem, cpu: CpuId(1) };
    prop_assert_eq!(invs.words().num_invs(v), invs.num_invs());
    prop_assert_eq!(invs.words().has_ats(v), invs.has_ats());
    for (k, i) in invs.entries().iter().enumerate() {
        prop_assert_eq!(invs.words().users(v, k), i.users(), "entry {}", k);
    }
    Ok(())
}

fn pick(u: &[InvDesc], mask: u16) -> Vec<InvDesc> {
    u.iter().enumerate().filter(|(k, _)| mask & (1 << k) != 0).map(|(_, d)| *d).collect()
}

/// The bytes an array's entries occupy (empty for an empty array, whose
/// dangling pointer every empty array shares).
fn storage(invs: &Invs) -> std::ops::Range<usize> {
    let e = invs.entries();
    let start = e.as_ptr() as usize;
    start..start + std::mem::size_of_val(e)
}

fn disjoint(a: &Invs, b: &Invs) -> bool {
    let (a, b) = (storage(a), storage(b));
    a.is_empty() || b.is_empty() || a.end <= b.start || b.end <= a.start
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn matches_multiset_model(ops in proptest::collection::vec(op(), 1..40)) {
        let u = universe();
        let env = Env::new();
        let machine = Machine::new(2);
        let view = Some(View { mem: &machine.mem, cpu: CpuId(0) });
        let mut invs = Invs::new();
        let mut model: BTreeMap<_, (InvDesc, u32)> = BTreeMap::new();
        let mut warnings = 0;
        let mut unsorted = 0;

        for op in ops {
            match op {
                Op::Merge(mask) => {
                    let input = pick(&u, mask);
                    let mut new = invs.merge(&input, &env).unwrap();
                    new.place(&machine, CpuId(0));
                    prop_assert!(disjoint(&invs, &new), "merge shares storage with its input");
                    prop_assert_eq!(new.check(true), Ok(()));
                    prop_assert_eq!(new.has_ats(), new.iter().any(|i| i.ty.is_ats()));
                    for d in input {
                        model.entry(d.key()).or_insert((d, 0)).1 += 1;
                    }
                    invs = new;
                }
                Op::Unref(mask) => {
                    let input = pick(&u, mask);
                    let mut expect_flushed = Vec::new();
                    for d in &input {
                        match model.get_mut(&d.key()) {
                            Some((_, users)) => {
                                *users -= 1;
                                if *users == 0 {
                                    expect_flushed.push(*d);
                                    model.remove(&d.key());
                                }
                            }
                            None => warnings += 1,
                        }
                    }
                    let mut flushed = Vec::new();
                    let trashes = invs.unref(&input, &env, view, |i| flushed.push(i.desc));
                    prop_assert_eq!(flushed, expect_flushed);
                    prop_assert_eq!(trashes, invs.num_trashes());
                    if let Some(last) = invs.entries().last() {
                        prop_assert!(last.users() > 0, "trailing trash not trimmed: {:?}", invs);
                    }
                }
                Op::Purge => {
                    let had_trash = invs.num_trashes() > 0;
                    match invs.purge(&env).unwrap() {
                        Some(mut new) => {
                            new.place(&machine, CpuId(0));
                            prop_assert!(had_trash);
                            prop_assert!(disjoint(&invs, &new), "purge shares storage with its input");
                            prop_assert_eq!(new.check(true), Ok(()));
                            prop_assert_eq!(new.has_ats(), new.iter().any(|i| i.ty.is_ats()));
                            invs = new;
                        }
                        None => prop_assert!(!had_trash, "purge returned nothing with trash present"),
                    }
                }
                Op::Fail(merge) => {
                    // Everything fallible fails before anything changes.
                    env.set_fail_nth(1);
                    // (A purge with no trash allocates nothing.)
                    let (r, allocates) = if merge {
                        (invs.merge(&pick(&u, 0x3fff), &env).map(|_| ()), true)
                    } else {
                        (invs.purge(&env).map(|_| ()), invs.num_trashes() > 0)
                    };
                    env.set_fail_nth(0);
                    prop_assert_eq!(r, if allocates { Err(Errno::ENOMEM) } else { Ok(()) });
                }
                Op::MergeReversed(mask) => {
                    let mut input = pick(&u, mask);
                    input.reverse();
                    // Unsorted input is the caller's bug: WARNed (once per
                    // entry out of order, at least once), and the result
                    // not published.
                    let _ = invs.merge(&input, &env).unwrap();
                    unsorted += usize::from(input.len() > 1);
                }
            }
            words_match(&machine, &invs)?;
            prop_assert_eq!(invs.check(false), Ok(()));
            let live: Vec<_> = invs.iter().map(|i| (i.desc, i.users())).collect();
            let want: Vec<_> = model.values().copied().collect();
            prop_assert_eq!(live, want);
            // The walker skips the ATS fence when has_ats is false.
            if model.values().any(|(d, _)| d.ty.is_ats()) {
                prop_assert!(invs.has_ats());
            }
        }
        let taken = env.take_warnings();
        let absent = taken.iter().filter(|w| matches!(w, Warning::UnrefAbsent(_))).count();
        let out_of_order = taken.iter().filter(|w| matches!(w, Warning::MergeUnsorted { .. })).count();
        prop_assert_eq!(absent, warnings);
        prop_assert!(out_of_order >= unsorted, "{} unsorted merges, {} warned", unsorted, out_of_order);
        prop_assert_eq!(out_of_order == 0, unsorted == 0, "a sorted merge warned");
        prop_assert_eq!(taken.len(), absent + out_of_order, "no other warnings");
    }
}

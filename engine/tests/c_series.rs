//! The series' own C, compiled from the patch in `SMMU_SERIES`: its KUnit
//! test, and the same operations differentially against the v9 Rust
//! translation. Without `SMMU_SERIES` these tests say so and pass; CI sets
//! it to seed 001.

mod common;

use engine::c::Series;
use std::sync::Arc;

/// The series, or `None` when `SMMU_SERIES` is unset; a set path that does
/// not load fails the test with the loader's one line.
fn series() -> Option<Arc<Series>> {
    let Some(paths) = engine::c::series_from_env() else {
        eprintln!("skipped: SMMU_SERIES is not set (CI sets it to ../shared/seeds/001_160d3a3c42ecf529.txt)");
        return None;
    };
    match Series::load(&paths) {
        Ok(s) => Some(s),
        Err(e) => panic!("SMMU_SERIES does not load: {e}"),
    }
}

#[test]
fn kunit_arm_smmu_v3_invs_test() {
    let Some(s) = series() else { return };
    let (held, failed, line) = s.kunit().expect("the series has its KUnit test");
    println!("arm_smmu_v3_invs_test: {held} expectations held, {failed} failed");
    assert_eq!((held, failed), (59, 0), "first failure at line {line} of the generated C");
}

mod differential {
    use super::common::universe;
    use super::series;
    use engine::c::{CInvs, Series, Standalone};
    use engine::{Env, InvDesc, InvType, Warning};
    use proptest::prelude::*;
    use std::sync::{Arc, OnceLock};

    fn loaded() -> Option<&'static Arc<Series>> {
        static SERIES: OnceLock<Option<Arc<Series>>> = OnceLock::new();
        SERIES.get_or_init(series).as_ref()
    }

    #[derive(Clone, Debug)]
    enum Op {
        /// Merge the entries picked by the mask, the `dup`th of them twice;
        /// the allocation fails when `fail` is set.
        Merge {
            mask: u16,
            dup: Option<u8>,
            fail: bool,
        },
        Unref {
            mask: u16,
            dup: Option<u8>,
        },
        Purge {
            fail: bool,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (any::<u16>(), proptest::option::of(any::<u8>()), proptest::bool::weighted(0.1))
                .prop_map(|(mask, dup, fail)| Op::Merge { mask, dup, fail }),
            3 => (any::<u16>(), proptest::option::weighted(0.2, any::<u8>())).prop_map(|(mask, dup)| Op::Unref { mask, dup }),
            2 => proptest::bool::weighted(0.2).prop_map(|fail| Op::Purge { fail }),
        ]
    }

    fn pick(u: &[InvDesc], mask: u16, dup: Option<u8>) -> Vec<InvDesc> {
        let mut v: Vec<InvDesc> = u.iter().enumerate().filter(|(k, _)| mask & (1 << k) != 0).map(|(_, d)| *d).collect();
        if let (Some(d), false) = (dup, v.is_empty()) {
            let k = usize::from(d) % v.len();
            v.insert(k, v[k]);
        }
        v
    }

    /// What both sides must agree on: each entry up to `num_invs` (smmu,
    /// type, id, ssid, users), `num_invs`, `num_trashes`, `has_ats`.
    type Shape = (Vec<(u32, InvType, u32, u32, u32)>, usize, bool);

    fn rust_shape(invs: &engine::v9::Invs) -> Shape {
        let e = invs.entries().iter().map(|i| (i.smmu.0, i.ty, i.id, i.ssid, i.users())).collect();
        (e, invs.num_trashes(), invs.has_ats())
    }

    fn c_shape(s: &Standalone, invs: CInvs) -> Shape {
        let e = s.entries(invs).iter().map(|e| (e.desc.smmu.0, e.desc.ty, e.desc.id, e.desc.ssid, e.users)).collect();
        let (_, _, num_trashes, has_ats) = s.counts(invs);
        (e, num_trashes, has_ats)
    }

    /// The function each WARN came from, in order.
    fn rust_warned(env: &Env) -> Vec<&'static str> {
        env.take_warnings()
            .into_iter()
            .map(|w| match w {
                Warning::MergeUnsorted { .. } => "arm_smmu_invs_merge",
                Warning::UnrefAbsent(_) => "arm_smmu_invs_unref",
                Warning::PurgeCounters { .. } => "arm_smmu_invs_purge",
                w => panic!("a WARN the array functions do not have: {w:?}"),
            })
            .collect()
    }

    fn c_warned(s: &Standalone) -> Vec<String> {
        s.take_warnings()
            .into_iter()
            .map(|w| match w {
                Warning::Kernel { function, .. } => function,
                w => format!("{w:?}"),
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

        /// The same merge/unref/purge sequence on v9's Rust `Invs` and on
        /// the series' C: the same arrays, errors and WARNs after each step.
        #[test]
        fn c_matches_v9_translation(ops in proptest::collection::vec(op(), 1..24)) {
            let Some(series) = loaded() else { return Ok(()) };
            let u = universe();
            let env = Env::new();
            let s = series.standalone(2);
            let mut rust = engine::v9::Invs::default();
            let mut c = s.build(&[]);
            for (step, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Merge { mask, dup, fail } => {
                        let input = pick(&u, mask, dup);
                        let to_merge = s.build(&input);
                        if fail {
                            env.set_fail_nth(1);
                            s.fail_next_alloc(true);
                        }
                        let (r, cr) = (rust.merge(&input, &env), s.merge(c, to_merge));
                        env.set_fail_nth(0);
                        s.fail_next_alloc(false);
                        s.free(to_merge);
                        match (r, cr) {
                            (Ok(r), Ok(cr)) => {
                                s.free(c);
                                (rust, c) = (r, cr);
                            }
                            (Err(e), Err(ce)) => prop_assert_eq!(e, ce, "step {}: merge errors", step),
                            (r, cr) => prop_assert!(false, "step {}: merge: v9 {:?}, C {:?}", step, r.map(|_| ()), cr),
                        }
                    }
                    Op::Unref { mask, dup } => {
                        let input = pick(&u, mask, dup);
                        let to_unref = s.build(&input);
                        rust.unref(&input, &env, None, |_| {});
                        s.unref(c, to_unref);
                        s.free(to_unref);
                    }
                    Op::Purge { fail } => {
                        if fail {
                            env.set_fail_nth(1);
                            s.fail_next_alloc(true);
                        }
                        let (r, cr) = (rust.purge(&env), s.purge(c));
                        env.set_fail_nth(0);
                        s.fail_next_alloc(false);
                        match (r, cr) {
                            (Ok(Some(r)), Ok(Some(cr))) => {
                                s.free(c);
                                (rust, c) = (r, cr);
                            }
                            (Ok(None), Ok(None)) => {}
                            (Err(e), Err(ce)) => prop_assert_eq!(e, ce, "step {}: purge errors", step),
                            (r, cr) => prop_assert!(false, "step {}: purge: v9 {:?}, C {:?}", step, r.map(|o| o.is_some()), cr),
                        }
                    }
                }
                prop_assert_eq!(rust_shape(&rust), c_shape(&s, c), "step {}", step);
                prop_assert_eq!(rust_warned(&env), c_warned(&s), "step {}: WARNs", step);
            }
        }
    }
}

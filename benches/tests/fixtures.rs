//! The benchmarks compare like with like: every design issues the same,
//! non-zero commands for the same invalidation.

use benches::{fixture, Design};

#[test]
fn every_design_issues_the_same_commands() {
    for live in [1, 8, 64] {
        let f = fixture(live, false, false);
        let want = f.commands_per_call(Design::Bare, &f.epoch.cpu(1));
        // One TLBI + sync, then one ATC_INV per ATS entry + sync.
        assert_eq!(want, if live == 1 { 2 } else { live as u64 + 2 }, "live {live}");
        for design in Design::ALL {
            let cpu = f.driver(design).cpu(1);
            assert_eq!(f.commands_per_call(design, &cpu), want, "{} at {live}", design.name());
        }
        let t = fixture(live, true, false);
        assert_eq!(t.commands_per_call(Design::Epoch, &t.epoch.cpu(1)), want, "trash must be skipped");
    }
}

/// The benches time the design, not the model: under the native backend
/// no design's invalidation goes through the simulation, also when a
/// writer has just replaced the array (a walker then meets trash and ATS
/// changes). Fails if the walker's array words, its pointer load, its
/// trace event, a watchdog tick or a model lock come back on the fast path
/// (each was there before the native backend).
#[test]
fn the_native_fast_path_makes_no_simulated_access() {
    let _native = smmu_sync::enter(smmu_sync::Backend::Native);
    for live in [1, 8] {
        let f = fixture(live, true, false);
        let writer = f.epoch.cpu(2);
        for design in Design::ALL {
            let cpu = f.driver(design).cpu(1);
            for step in 0..4 {
                let before = smmu_sync::simulated_accesses();
                f.invalidate(design, &cpu);
                assert_eq!(smmu_sync::simulated_accesses(), before, "{} at {live}, step {step}", design.name());
                let to = if step % 2 == 0 { engine::Target::Domain(f.dom.clone()) } else { engine::Target::Blocked };
                f.epoch.attach(&writer, &f.epoch_mover, 0, to, true).expect("attach");
            }
        }
    }
}

/// The contention model charges what the issue of scale is: a line every
/// CPU writes (a reader count) costs more the more CPUs share it; a line
/// only its CPU writes (an epoch participant) and lines nobody writes cost
/// the same at 2 and 64 CPUs.
#[test]
fn the_contention_model_charges_shared_writes_by_the_sharers() {
    use benches::contention::time_per_invalidation;
    use smmu_sync::cost::Access;
    let shared = [Access { write: false, line: 1, private: false }, Access { write: true, line: 1, private: false }];
    let private = [Access { write: true, line: 1, private: true }, Access { write: false, line: 2, private: false }];
    let t = |seq: &[Access], cpus| time_per_invalidation(seq, 8, cpus, 20);
    assert!(t(&shared, 64) > 10.0 * t(&shared, 2), "{} vs {}", t(&shared, 64), t(&shared, 2));
    // A line every CPU only writes: each write invalidates the last
    // writer's copy, one transfer at a time.
    let written = [Access { write: true, line: 1, private: false }];
    assert!(t(&written, 64) > 10.0 * t(&written, 2), "{} vs {}", t(&written, 64), t(&written, 2));
    assert_eq!(t(&private, 64), t(&private, 2));
    // And recording sees a walker's shared words: the epoch array's
    // pointer and counts, and its ATS read lock.
    let f = benches::fixture_on(hwmodel::Machine::counting, 8, false, false);
    let cpu = f.epoch.cpu(1);
    let (_, seq) = smmu_sync::cost::recording(|| f.invalidate(Design::Epoch, &cpu));
    assert!(seq.iter().filter(|a| a.write && !a.private).count() >= 2, "{seq:?}");
}

//! The invalidation read side under each design, natively (plain atomics,
//! no simulation, a command queue that only counts): 1, 8 and 64 live
//! entries, and the epoch array with as many trash entries interleaved.
//! Prints the simulated accesses the timed parts made: 0, or the numbers
//! time the model instead of the design.

use benches::{fixture, Design};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use smmu_sync::{enter, simulated_accesses, Backend};

fn read_side(c: &mut Criterion) {
    let _native = enter(Backend::Native);
    let mut g = c.benchmark_group("read_side");
    let mut simulated = 0;
    for live in [1, 8, 64] {
        let f = fixture(live, false, false);
        let want = f.commands_per_call(Design::Bare, &f.epoch.cpu(1));
        assert!(want > 0, "the floor must issue commands");
        for design in Design::ALL {
            let cpu = f.driver(design).cpu(1);
            assert_eq!(f.commands_per_call(design, &cpu), want, "{} issues different commands", design.name());
            let before = simulated_accesses();
            g.bench_with_input(BenchmarkId::new(design.name(), live), &live, |b, _| {
                b.iter(|| f.invalidate(design, &cpu))
            });
            simulated += simulated_accesses() - before;
        }
        let t = fixture(live, true, false);
        let cpu = t.epoch.cpu(1);
        let before = simulated_accesses();
        g.bench_with_input(BenchmarkId::new("epoch+trash", live), &live, |b, _| {
            b.iter(|| t.invalidate(Design::Epoch, &cpu))
        });
        simulated += simulated_accesses() - before;
    }
    g.finish();
    println!("simulated accesses: {simulated}");
}

criterion_group!(benches, read_side);
criterion_main!(benches);

//! The invalidation read side under each design, over a command queue that
//! only counts: 1, 8, 64 and 512 live entries, and the epoch array with as
//! many trash entries interleaved.

use benches::{fixture, Design};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

fn read_side(c: &mut Criterion) {
    let mut g = c.benchmark_group("read_side");
    for live in [1, 8, 64, 512] {
        let f = fixture(live, false, false);
        let want = f.commands_per_call(Design::Bare, &f.epoch.cpu(1));
        assert!(want > 0, "the floor must issue commands");
        for design in Design::ALL {
            let cpu = f.driver(design).cpu(1);
            assert_eq!(f.commands_per_call(design, &cpu), want, "{} issues different commands", design.name());
            g.bench_with_input(BenchmarkId::new(design.name(), live), &live, |b, _| {
                b.iter(|| f.invalidate(design, &cpu))
            });
        }
        let t = fixture(live, true, false);
        let cpu = t.epoch.cpu(1);
        g.bench_with_input(BenchmarkId::new("epoch+trash", live), &live, |b, _| {
            b.iter(|| t.invalidate(Design::Epoch, &cpu))
        });
    }
    g.finish();
}

criterion_group!(benches, read_side);
criterion_main!(benches);

//! merge, unref and purge against array size (each should grow linearly),
//! and a full unmap + invalidate through the model.

use benches::IOVA;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use engine::fenced::Invs;
use engine::{DomainKind, Driver, Engine, Env, InvDesc, InvType, Target};
use hwmodel::{Features, Machine, SmmuId, PAGE};

fn descs(n: usize, offset: u32) -> Vec<InvDesc> {
    (0..n as u32).map(|k| InvDesc::new(SmmuId(0), false, InvType::Ats, 2 * k + offset, 0, 0)).collect()
}

fn array_ops(c: &mut Criterion) {
    let env = Env::new();
    let mut g = c.benchmark_group("array_ops");
    for n in [8, 64, 512, 4096] {
        g.throughput(Throughput::Elements(n as u64));
        let base = Invs::new().merge(&descs(n, 0), &env).unwrap();
        // Merge a same-sized interleaved set: the output has 2n entries.
        let other = descs(n, 1);
        g.bench_with_input(BenchmarkId::new("merge", n), &n, |b, _| b.iter(|| base.merge(&other, &env).unwrap()));
        // Unref every other entry in place (trash in the middle), then purge.
        let half: Vec<InvDesc> = descs(n, 0).into_iter().step_by(2).collect();
        g.bench_with_input(BenchmarkId::new("unref", n), &n, |b, _| {
            b.iter_batched(
                || base.merge(&[], &env).unwrap(),
                |a| a.unref(&half, &env, None, |_| {}),
                BatchSize::SmallInput,
            )
        });
        let trashy = base.merge(&[], &env).unwrap();
        trashy.unref(&half, &env, None, |_| {});
        g.bench_with_input(BenchmarkId::new("purge", n), &n, |b, _| b.iter(|| trashy.purge(&env).unwrap()));
    }
    g.finish();
}

/// map + unmap of one page on a domain with one ATS master: the page-table
/// writes, the walk of the array, and the commands' effects in the model.
fn unmap(c: &mut Criterion) {
    let mut m = Machine::new(2);
    let smmu = m.add_smmu(Features { ats: true, ..Features::default() });
    let ep = m.add_endpoint(smmu, &[1, 0], true);
    let drv = Driver::new(m, Env::new(), Engine::Fenced);
    let cpu = drv.cpu(0);
    let master = drv.probe(ep);
    let dom = drv.alloc_domain(DomainKind::S1).unwrap();
    drv.attach(&cpu, &master, 0, Target::Domain(dom.clone()), true).unwrap();
    c.bench_function("unmap_invalidate/model", |b| {
        b.iter(|| {
            drv.map(&cpu, &dom, IOVA, PAGE).unwrap();
            drv.unmap(&cpu, &dom, IOVA, PAGE).unwrap()
        })
    });
}

criterion_group!(benches, array_ops, unmap);
criterion_main!(benches);

//! Model steps per second against shuttle's bare cost per step.
//!
//! A step is one shuttle scheduling decision. "bare" runs tasks that do
//! nothing but reach scheduling points; "model" runs two CPUs that map,
//! unmap and invalidate their own pages on one SMMU while a device keeps
//! issuing DMA to them, all judged by the oracle; "driver" runs the same
//! through the default engine (arrays, the ATS lock, the pointers and
//! counters other CPUs read through the store buffers) while a third CPU
//! attaches and detaches a second ATS master. All run the same number of
//! seeded random schedules.

use engine::{DomainKind, Driver, Engine, Env, Target};
use hwmodel::*;
use shuttle::scheduler::RandomScheduler;
use shuttle::{Config, Runner};
use smmu_sync::{enter, schedule_point, spawn, Backend};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

const SCHEDULES: usize = 2000;
const ASID: u16 = 5;

/// Runs `body` for `SCHEDULES` schedules; returns (steps, seconds).
fn measure(body: fn()) -> (u64, f64) {
    let steps = Arc::new(AtomicU64::new(0));
    let s = steps.clone();
    let t = Instant::now();
    Runner::new(RandomScheduler::new_from_seed(1, SCHEDULES), Config::new()).run(move || {
        let _b = enter(Backend::Shuttle);
        body();
        s.fetch_add(smmu_sync::steps(), Relaxed);
    });
    (steps.load(Relaxed), t.elapsed().as_secs_f64())
}

fn bare() {
    let t: Vec<_> = (0..3)
        .map(|_| {
            spawn(|| {
                for _ in 0..100 {
                    schedule_point();
                }
            })
        })
        .collect();
    t.into_iter().for_each(|t| t.join().unwrap());
}

fn model() {
    let mut m = Machine::new(2);
    let smmu = m.add_smmu(Features::default());
    let ep = m.add_endpoint(smmu, &[1], false);
    let pt = Arc::new(PageTable::new(&m, DomainId(1)));
    let cd_table = m.alloc_frame();
    m.write_cd(CpuId(0), cd_table, 0, Some(Cd { asid: ASID, root: pt.root }));
    m.write_ste(CpuId(0), smmu, 1, Ste::S1 { cd_table, eats: false });
    m.mem.smp_mb(CpuId(0));
    let m = Arc::new(m);
    let cpus: Vec<_> = (0..2u64)
        .map(|c| {
            let (m, pt) = (m.clone(), pt.clone());
            spawn(move || {
                let cpu = CpuId(c as usize);
                for round in 0..4u64 {
                    let iova = (c * 16 + round) * PAGE;
                    pt.map(&m, cpu, iova, m.alloc_frame(), PAGE).unwrap();
                    let pa = pt.unmap(&m, cpu, iova, PAGE).unwrap();
                    let tlbi = Cmd { asid: ASID, addr: iova, leaf: true, ..Cmd::new(Opcode::TlbiNhVa) };
                    m.submit(cpu, smmu, &[tlbi, Cmd::sync()]);
                    m.oracle.unmap_returned(DomainId(1), iova, pa, PAGE);
                }
            })
        })
        .collect();
    let dev = {
        let m = m.clone();
        spawn(move || {
            for k in 0..16u64 {
                m.dma(ep, 1, 0, (k % 2 * 16 + k / 4) * PAGE);
            }
        })
    };
    cpus.into_iter().for_each(|t| t.join().unwrap());
    dev.join().unwrap();
    assert!(m.oracle.violations().is_empty(), "{:?}", m.oracle.violations());
}

fn driver() {
    let mut m = Machine::new(4);
    let smmu = m.add_smmu(Features { ats: true, ..Features::default() });
    let (ep, mover) = (m.add_endpoint(smmu, &[1, 2], true), m.add_endpoint(smmu, &[3], true));
    let drv = Arc::new(Driver::new(m, Env::new(), Engine::Fenced));
    let (master, mover) = (drv.probe(ep), Arc::new(drv.probe(mover)));
    let setup = drv.cpu(0);
    let dom = drv.alloc_domain(DomainKind::S1).unwrap();
    drv.attach(&setup, &master, 0, Target::Domain(dom.clone()), true).unwrap();
    let mut t: Vec<_> = (1..3u64)
        .map(|c| {
            let (drv, dom) = (drv.clone(), dom.clone());
            spawn(move || {
                let cpu = drv.cpu(c as usize);
                for round in 0..3u64 {
                    let iova = (c * 16 + round) * PAGE;
                    drv.map(&cpu, &dom, iova, PAGE).unwrap();
                    drv.unmap(&cpu, &dom, iova, PAGE).unwrap();
                }
            })
        })
        .collect();
    t.push({
        let (drv, dom) = (drv.clone(), dom.clone());
        spawn(move || {
            let cpu = drv.cpu(3);
            for to in [Target::Domain(dom), Target::Blocked] {
                drv.attach(&cpu, &mover, 0, to, true).unwrap();
            }
        })
    });
    t.push({
        let drv = drv.clone();
        spawn(move || {
            for k in 0..12u64 {
                drv.machine.dma(ep, 1, 0, (k % 2 * 16 + 16 + k / 4) * PAGE);
            }
        })
    });
    t.into_iter().for_each(|t| t.join().unwrap());
    assert!(drv.machine.oracle.violations().is_empty(), "{:?}", drv.machine.oracle.violations());
}

fn main() {
    let (bs, bt) = measure(bare);
    let (ms, mt) = measure(model);
    let (ds, dt) = measure(driver);
    let (bare_ns, model_ns, driver_ns) = (bt * 1e9 / bs as f64, mt * 1e9 / ms as f64, dt * 1e9 / ds as f64);
    println!("model_steps/bare    {bs:>9} steps  {:>12.0} steps/s  {bare_ns:>7.1} ns/step", bs as f64 / bt);
    println!("model_steps/model   {ms:>9} steps  {:>12.0} steps/s  {model_ns:>7.1} ns/step", ms as f64 / mt);
    println!("model_steps/driver  {ds:>9} steps  {:>12.0} steps/s  {driver_ns:>7.1} ns/step", ds as f64 / dt);
    println!("model_steps/ratio   {:.2}x shuttle's bare cost per step", model_ns / bare_ns);
}

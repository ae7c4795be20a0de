//! Building a world and running threads in it.

use crate::{Outcome, Params};
use engine::{Cpu, Domain, DomainKind, Driver, Env, Master, Target};
use hwmodel::{Features, Machine, Odds, PAGE};
use smmu_sync::{plain, spawn, JoinHandle};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;

/// The livelock bound of a world: a base plus this much per CPU, SMMU and
/// endpoint, far above what any correct schedule takes.
const STEP_BOUND_BASE: u64 = 50_000;
const STEP_BOUND_PER_THING: u64 = 10_000;

/// A device endpoint to create: which SMMU, its stream IDs (as firmware
/// lists them, not necessarily sorted), and whether it can do ATS.
pub struct Ep<'a> {
    pub smmu: usize,
    pub sids: &'a [u32],
    pub ats: bool,
}

/// When a CPU takes the interrupt of a completed buffer: at one in `odds`
/// of its enabled scheduling points after handing the buffer over.
#[derive(Clone, Copy, Debug)]
pub struct Irq {
    pub odds: u64,
}

/// Buffers a CPU's driver handed to its device, unmapped by the CPU's
/// interrupt handler when the device completes them (a page each).
#[derive(Default)]
pub struct Completions(RefCell<VecDeque<(Arc<Domain>, u64)>>);

impl Completions {
    /// Hand the page at `iova` of `d` to the device: its completion
    /// interrupt will come.
    pub fn post(&self, d: &Arc<Domain>, iova: u64) {
        self.0.borrow_mut().push_back((d.clone(), iova));
        smmu_sync::raise_irq();
    }

    fn complete(&self) -> Option<(Arc<Domain>, u64)> {
        self.0.borrow_mut().pop_front()
    }
}

pub struct Rig {
    pub drv: Arc<Driver>,
    pub masters: Vec<Arc<Master>>,
    /// The setup CPU; also used for the final checks.
    pub cpu: Cpu,
    /// CPU ids handed out so far.
    next_cpu: usize,
    /// Injected-fault rate, armed when the first thread starts so that
    /// setup never fails.
    fault_ppm: u32,
    /// The run's parameters, for the loops' size cap (`Params::upto`).
    pub p: Params,
    /// CPU threads spawned that have not yet returned.
    working: Arc<plain::AtomicUsize>,
}

/// Counts a CPU thread out of `Rig::working` when it ends, panic or not.
struct Working(Arc<plain::AtomicUsize>);

impl Drop for Working {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Rig {
    /// A machine with one SMMU per entry of `smmus`, `eps` endpoints probed
    /// as masters, and room for `p.cpus` workers plus `extra` more CPUs.
    /// Until the first thread is spawned, setup takes no scheduling steps.
    pub fn new(p: &Params, smmus: &[Features], eps: &[Ep], extra: usize) -> Self {
        smmu_sync::set_quiet(true);
        smmu_sync::name_task("main");
        let mut m = Machine::new(p.cpus + extra + 1);
        m.set_atc_inv_disabled(p.atc_inv_disabled);
        let ids: Vec<_> = smmus.iter().map(|f| m.add_smmu(*f)).collect();
        let eps: Vec<_> = eps.iter().map(|e| m.add_endpoint(ids[e.smmu], e.sids, e.ats)).collect();
        if p.full_trace {
            m.oracle.keep_full_trace();
        }
        if p.stop_at_violation {
            m.oracle.stop_at_violation();
        }
        let env = Env::with_mutant(p.mutant).with_rwlock(p.rwlock.unwrap_or_default());
        let drv = Arc::new(Driver::new(m, env, p.engine));
        // A correct schedule of these worlds takes a few thousand steps.
        let size = (p.cpus + extra + smmus.len() + eps.len()) as u64;
        smmu_sync::default_step_bound(STEP_BOUND_BASE + STEP_BOUND_PER_THING * size);
        let masters = eps.into_iter().map(|ep| Arc::new(drv.probe(ep))).collect();
        let cpu = drv.cpu(0);
        let fault_ppm = p.fault_ppm.unwrap_or(0);
        drv.machine.oracle.set_odds(Odds { fault_ppm, ..drv.machine.odds() });
        Self { drv, masters, cpu, next_cpu: 1, fault_ppm, p: *p, working: Arc::default() }
    }

    /// A domain for setup, where no fault is injected yet.
    pub fn domain(&self, kind: DomainKind) -> Arc<Domain> {
        self.drv.alloc_domain(kind).expect("setup runs without injected faults")
    }

    /// Attach during setup, before any thread runs.
    pub fn attach(&self, m: usize, ssid: u32, t: Target, ats: bool) {
        // A setup attach can only fail under an injected bug; the oracle
        // has recorded whatever made it fail.
        let _ = self.drv.attach(&self.cpu, &self.masters[m], ssid, t, ats);
    }

    /// Spawn a simulated CPU running `f` with its own CPU context.
    pub fn cpu<T: Send + 'static>(&mut self, f: impl FnOnce(&Driver, &Cpu) -> T + Send + 'static) -> JoinHandle<T> {
        self.cpu_irq(None, move |drv, cpu, _| f(drv, cpu))
    }

    /// As `cpu`, taking `irq` interrupts if given. The handler does what a
    /// device driver's completion interrupt does: unmap the oldest buffer
    /// `f` queued in the completions, with its invalidation.
    pub fn cpu_irq<T: Send + 'static>(
        &mut self,
        irq: Option<Irq>,
        f: impl FnOnce(&Driver, &Cpu, &Completions) -> T + Send + 'static,
    ) -> JoinHandle<T> {
        self.drv.env.set_fault_ppm(self.fault_ppm);
        if let Some(irq) = irq {
            self.record_odds(|o| o.irq = irq.odds);
        }
        let (drv, id) = (self.drv.clone(), self.next_cpu);
        self.next_cpu += 1;
        self.working.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let working = Working(self.working.clone());
        spawn(move || {
            let _working = working;
            smmu_sync::name_task(format!("cpu {id}"));
            smmu_sync::set_task_cpu(id);
            let cpu = Rc::new(drv.cpu(id));
            let done = Rc::new(Completions::default());
            if let Some(irq) = irq {
                let (drv, cpu, done) = (drv.clone(), cpu.clone(), done.clone());
                smmu_sync::set_irq_handler(irq.odds, move || {
                    if let Some((d, iova)) = done.complete() {
                        let _ = drv.unmap(&cpu, &d, iova, PAGE);
                    }
                });
            }
            let r = f(&drv, &cpu, &done);
            smmu_sync::clear_irq_handler();
            r
        })
    }

    /// Arm injected faults at `ppm` for the threads spawned from now on.
    pub fn with_fault_ppm(mut self, ppm: u32) -> Self {
        self.fault_ppm = ppm;
        self.record_odds(|o| o.fault_ppm = ppm);
        self
    }

    /// Write down an odd this world set or drew (`Oracle::set_odds`).
    fn record_odds(&self, set: impl FnOnce(&mut Odds)) {
        let o = &self.drv.machine.oracle;
        let mut odds = o.odds();
        set(&mut odds);
        o.set_odds(odds);
    }

    /// Spawn a device thread issuing, from master `m`'s endpoint, one DMA
    /// per (stream ID, substream ID, IOVA) of `buffers`, `rounds` times
    /// over, and then round after round while any CPU still works, up to
    /// `most` rounds: a device keeps using its buffers while its driver
    /// maps, unmaps and moves it. Each further round first yields, as a
    /// device between bursts lets the CPUs run.
    pub fn dma_while_busy(
        &self,
        m: usize,
        buffers: Vec<(u32, u32, u64)>,
        rounds: usize,
        most: usize,
    ) -> JoinHandle<()> {
        let (rounds, most) = (self.p.upto(rounds), self.p.upto(most));
        self.drv.env.set_fault_ppm(self.fault_ppm);
        let (drv, ep, working) = (self.drv.clone(), self.masters[m].ep, self.working.clone());
        spawn(move || {
            smmu_sync::name_task(format!("endpoint {}", ep.0));
            for round in 0..most {
                if round >= rounds {
                    if working.load(std::sync::atomic::Ordering::Relaxed) == 0 {
                        break;
                    }
                    smmu_sync::yield_now();
                }
                for &(sid, ssid, iova) in &buffers {
                    drv.machine.dma(ep, sid, ssid, iova);
                }
            }
        })
    }

    /// Spawn a device thread issuing DMA from master `m` at `ssid` to each
    /// IOVA of `iovas`, `rounds` times over.
    pub fn dma(&self, m: usize, ssid: u32, iovas: Vec<u64>, rounds: usize) -> JoinHandle<()> {
        let sid = self.masters[m].streams[0];
        self.dma_while_busy(m, iovas.into_iter().map(|iova| (sid, ssid, iova)).collect(), rounds, rounds)
    }

    /// Join every thread, run the quiescent checks over `domains`, and report.
    pub fn finish(self, threads: Vec<JoinHandle<()>>, domains: &[&Arc<Domain>]) -> Outcome {
        let domains: Vec<Arc<Domain>> = domains.iter().map(|d| Arc::clone(d)).collect();
        self.finish_with(threads, |_| domains)
    }

    /// As `finish`, with the live domains known only once threads are done.
    pub fn finish_with(
        self,
        threads: Vec<JoinHandle<()>>,
        domains: impl FnOnce(&Driver) -> Vec<Arc<Domain>>,
    ) -> Outcome {
        for t in threads {
            if let Err(panic) = t.join() {
                std::panic::resume_unwind(panic);
            }
        }
        smmu_sync::set_quiet(true);
        let domains = domains(&self.drv);
        let ds: Vec<&Domain> = domains.iter().map(|d| d.as_ref()).collect();
        self.drv.check_tags(&self.cpu, &ds);
        let o = &self.drv.machine.oracle;
        Outcome {
            violations: o.violations(),
            trace_hash: o.trace_hash(),
            events: o.trace_len(),
            stale_ages: o.stale_ages(),
            coverage: self.drv.coverage(),
        }
    }
}

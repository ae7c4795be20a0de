//! Building a world and running threads in it.

use crate::{Outcome, Params};
use engine::{Cpu, Domain, Driver, Env, Master, Target};
use hwmodel::{Features, Machine};
use smmu_sync::{spawn, JoinHandle};
use std::sync::Arc;

/// A device endpoint to create: which SMMU, its stream IDs (as firmware
/// lists them, not necessarily sorted), and whether it can do ATS.
pub struct Ep {
    pub smmu: usize,
    pub sids: &'static [u32],
    pub ats: bool,
}

pub struct Rig {
    pub drv: Arc<Driver>,
    pub masters: Vec<Arc<Master>>,
    /// The setup CPU; also used for the final checks.
    pub cpu: Cpu,
    /// CPU ids handed out so far.
    next_cpu: usize,
}

impl Rig {
    /// A machine with one SMMU per entry of `smmus`, `eps` endpoints probed
    /// as masters, and room for `p.cpus` workers plus `extra` more CPUs.
    pub fn new(p: &Params, smmus: &[Features], eps: &[Ep], extra: usize) -> Self {
        let mut m = Machine::new(p.cpus + extra + 1);
        let ids: Vec<_> = smmus.iter().map(|f| m.add_smmu(*f)).collect();
        let eps: Vec<_> = eps.iter().map(|e| m.add_endpoint(ids[e.smmu], e.sids, e.ats)).collect();
        let drv = Arc::new(Driver::new(m, Env::with_mutant(p.mutant), p.engine));
        let masters = eps.into_iter().map(|ep| Arc::new(drv.probe(ep))).collect();
        let cpu = drv.cpu(0);
        Self { drv, masters, cpu, next_cpu: 1 }
    }

    /// Attach during setup, before any thread runs.
    pub fn attach(&self, m: usize, ssid: u32, t: Target, ats: bool) {
        // A setup attach can only fail under an injected bug; the oracle
        // has recorded whatever made it fail.
        let _ = self.drv.attach(&self.cpu, &self.masters[m], ssid, t, ats);
    }

    /// Spawn a simulated CPU running `f` with its own CPU context.
    pub fn cpu<T: Send + 'static>(&mut self, f: impl FnOnce(&Driver, &Cpu) -> T + Send + 'static) -> JoinHandle<T> {
        let (drv, id) = (self.drv.clone(), self.next_cpu);
        self.next_cpu += 1;
        spawn(move || {
            let cpu = drv.cpu(id);
            f(&drv, &cpu)
        })
    }

    /// Spawn a device thread issuing DMA from master `m` at `ssid` to each
    /// IOVA of `iovas`, `rounds` times over.
    pub fn dma(&self, m: usize, ssid: u32, iovas: Vec<u64>, rounds: usize) -> JoinHandle<()> {
        let (drv, master) = (self.drv.clone(), self.masters[m].clone());
        spawn(move || {
            for _ in 0..rounds {
                for &iova in &iovas {
                    drv.machine.dma(master.ep, master.streams[0], ssid, iova);
                }
            }
        })
    }

    /// Join every thread, run the quiescent checks, and report.
    pub fn finish(self, threads: Vec<JoinHandle<()>>, domains: &[&Arc<Domain>]) -> Outcome {
        for t in threads {
            if let Err(panic) = t.join() {
                std::panic::resume_unwind(panic);
            }
        }
        let ds: Vec<&Domain> = domains.iter().map(|d| d.as_ref()).collect();
        self.drv.check_tags(&self.cpu, &ds);
        let o = &self.drv.machine.oracle;
        Outcome {
            violations: o.violations(),
            trace_hash: o.trace_hash(),
            events: o.trace_len(),
            stale_ages: o.stale_ages(),
        }
    }
}

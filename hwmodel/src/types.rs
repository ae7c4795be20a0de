//! The vocabulary every other file of the model speaks: addresses and
//! ids, page sizes, and the events of the trace with who did them. Below
//! every other file of this crate but the command encodings.

use crate::cmd::{Cmd, SmmuId};

/// A physical address of one 64-bit word.
pub type Addr = u64;

/// A simulated CPU, by index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CpuId(pub usize);

/// A domain (one IO page table and its invalidation tags), by number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainId(pub u32);

/// An endpoint in the machine, by index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointId(pub usize);

pub const PAGE: u64 = 1 << 12;
pub const BLOCK: u64 = 1 << 21;
/// IOVA space covered by one table.
pub const IOVA_SPACE: u64 = 1 << 30;

/// Which level a translation came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Level {
    Page,
    Block,
}

impl Level {
    pub fn size(self) -> u64 {
        match self {
            Level::Page => PAGE,
            Level::Block => BLOCK,
        }
    }
}

/// What a master may translate through once an attach has returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Allowed {
    Domain(DomainId),
    /// Identity: DMA bypasses translation.
    Identity,
    /// Blocked: every DMA must fault.
    Blocked,
}

/// Where a DMA's translation came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    Atc,
    Iotlb,
    Walk,
    Bypass,
}

/// The outcome of one DMA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Translation {
    /// No translation. `walked`: the domain whose page table had no entry,
    /// when the fault came from a walk.
    Fault { walked: Option<DomainId> },
    /// `domain` and `gen`: whose page table, at which generation, produced
    /// the translation (none for bypass).
    Ok { pa: u64, domain: Option<DomainId>, gen: u64, source: Source },
}

/// Who did an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Actor {
    /// The world's builder, before any thread runs.
    Setup,
    Cpu(usize),
    /// CPU n's interrupt handler.
    Irq(usize),
    /// CPU n's store buffer reaching memory.
    Drain(usize),
    /// SMMU n's command consumer.
    Queue(SmmuId),
    /// SMMU n's table walker.
    Walker(SmmuId),
    Endpoint(EndpointId),
}

impl Actor {
    /// The simulated CPU running now: its interrupt handler if in one.
    pub fn current() -> Actor {
        match smmu_sync::task_cpu() {
            None => Actor::Setup,
            Some(n) => Self::on(CpuId(n)),
        }
    }

    /// `cpu`, or its interrupt handler if the current thread is in one;
    /// the world's builder while no simulated CPU runs.
    pub fn on(cpu: CpuId) -> Actor {
        if smmu_sync::task_cpu().is_none() {
            Actor::Setup
        } else if smmu_sync::in_interrupt() {
            Actor::Irq(cpu.0)
        } else {
            Actor::Cpu(cpu.0)
        }
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Setup => write!(f, "setup"),
            Actor::Cpu(n) => write!(f, "cpu {n}"),
            Actor::Irq(n) => write!(f, "cpu {n} irq"),
            Actor::Drain(n) => write!(f, "cpu {n} drain"),
            Actor::Queue(s) => write!(f, "smmu {} queue", s.0),
            Actor::Walker(s) => write!(f, "smmu {} walker", s.0),
            Actor::Endpoint(e) => write!(f, "endpoint {}", e.0),
        }
    }
}

/// A word whose stores the trace follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Word {
    Pte,
    Ste,
    Cd,
    /// A domain's array pointer.
    ArrayPtr,
}

/// Where the SMMU or an endpoint cached a translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cache {
    Iotlb,
    Atc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    Submit {
        smmu: SmmuId,
        cmd: Cmd,
    },
    Effect {
        smmu: SmmuId,
        cmd: Cmd,
    },
    SyncDone {
        smmu: SmmuId,
        ticket: u64,
    },
    Dma {
        ep: EndpointId,
        sid: u32,
        ssid: u32,
        iova: u64,
        result: Translation,
    },
    Ats {
        ep: EndpointId,
        enabled: bool,
    },
    SmmuRemoved {
        smmu: SmmuId,
    },
    MapReturned {
        domain: DomainId,
        iova: u64,
        pa: u64,
    },
    UnmapBegin {
        domain: DomainId,
        iova: u64,
    },
    UnmapReturned {
        domain: DomainId,
        iova: u64,
        pa: u64,
    },
    AttachBegin {
        ep: EndpointId,
        ssid: u32,
        to: Allowed,
    },
    AttachReturned {
        ep: EndpointId,
        ssid: u32,
        allowed: Allowed,
    },
    /// A CPU stored a word the story needs; `Visible` says when it drained.
    Store {
        what: Word,
        addr: Addr,
        val: u64,
    },
    Visible {
        what: Word,
        addr: Addr,
        val: u64,
    },
    /// A CPU published a new array for a domain (`rcu_assign_pointer`).
    Publish {
        domain: DomainId,
        version: u64,
    },
    /// A CPU loaded a domain's array pointer (`rcu_dereference`).
    ArrayLoad {
        domain: DomainId,
        version: u64,
    },
    /// A translation was cached.
    Cached {
        sid: u32,
        ssid: u32,
        iova: u64,
        pa: u64,
        into: Cache,
    },
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Event::Submit { smmu, cmd } => write!(f, "submit {cmd} to smmu {}", smmu.0),
            Event::Effect { cmd, .. } => write!(f, "done {cmd}"),
            Event::SyncDone { ticket, .. } => write!(f, "CMD_SYNC {ticket} complete"),
            Event::Dma { sid, ssid, iova, result, .. } => {
                let got = match result {
                    Translation::Fault { walked: Some(d) } => format!("fault (walked domain {})", d.0),
                    Translation::Fault { walked: None } => "fault".to_string(),
                    Translation::Ok { pa, source, .. } => format!("pa {pa:#x} via {source:?}"),
                };
                write!(f, "DMA sid {sid} ssid {ssid} iova {iova:#x} -> {got}")
            }
            Event::Ats { enabled, .. } => write!(f, "ATS {}", if enabled { "enabled" } else { "disabled" }),
            Event::SmmuRemoved { smmu } => write!(f, "smmu {} removed", smmu.0),
            Event::MapReturned { domain, iova, pa } => {
                write!(f, "map domain {} {iova:#x} -> {pa:#x} returned", domain.0)
            }
            Event::UnmapBegin { domain, iova } => write!(f, "unmap domain {} {iova:#x} begins", domain.0),
            Event::UnmapReturned { domain, iova, pa } => {
                write!(f, "unmap domain {} {iova:#x} (was {pa:#x}) returned", domain.0)
            }
            Event::AttachBegin { ep, ssid, to } => write!(f, "attach endpoint {} ssid {ssid} to {to:?} begins", ep.0),
            Event::AttachReturned { ep, ssid, allowed } => {
                write!(f, "attach endpoint {} ssid {ssid} returned: {allowed:?}", ep.0)
            }
            Event::Store { what, addr, val } => write!(f, "store {what:?} {addr:#x} = {val:#x} (buffered)"),
            Event::Visible { what, addr, val } => write!(f, "{what:?} {addr:#x} = {val:#x} now visible"),
            Event::Publish { domain, version } => write!(f, "publish domain {} array v{version}", domain.0),
            Event::ArrayLoad { domain, version } => write!(f, "load domain {} array: v{version}", domain.0),
            Event::Cached { sid, ssid, iova, pa, into } => {
                write!(f, "cache {into:?} sid {sid} ssid {ssid} {iova:#x} -> {pa:#x}")
            }
        }
    }
}

/// One event of the trace: its number, who did it, what it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Step {
    pub seq: u64,
    pub actor: Actor,
    pub event: Event,
    /// The kernel function a CPU made it in (`smmu_sync::kernel_fn`); ""
    /// for hardware. Not part of the trace hash: where code is named is
    /// not what it does.
    pub func: &'static str,
}

//! The simulated machine the driver runs on, and the oracle that judges it.
//!
//! Everything the driver changes goes through a CPU (`mem::CpuId`) whose
//! stores are buffered; everything the hardware does (walks, cache fills,
//! command effects) is a step the scheduler can interleave with the rest.

pub mod cmd;
pub mod coverage;
pub mod machine;
pub mod mem;
pub mod oracle;
pub mod pgtable;
pub mod smmu;

pub use cmd::{Cmd, Opcode, Range, SmmuId};
pub use coverage::{Coverage, Goal};
pub use machine::{AtcInvDisabled, Endpoint, Machine};
pub use mem::{Addr, CpuId, Memory};
pub use oracle::{Actor, Allowed, Cache, Event, Oracle, Source, Step, Translation, Violation, ViolationKind, Word};
pub use pgtable::{Level, PageTable, PtError, Walked, BLOCK, IOVA_SPACE, PAGE};
pub use smmu::{Cd, Features, Smmu, Ste, TlbKind, TlbTag, WalkEntry};

/// A domain (one IO page table and its invalidation tags), by number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainId(pub u32);

/// An endpoint in the machine, by index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointId(pub usize);

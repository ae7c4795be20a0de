//! The simulated machine the driver runs on, and the oracle that judges it.
//!
//! Everything the driver changes goes through a CPU (`mem::CpuId`) whose
//! stores are buffered; everything the hardware does (walks, cache fills,
//! command effects) is a step the scheduler can interleave with the rest.

pub mod cmd;
pub mod coverage;
pub mod iopgtable;
pub mod machine;
pub mod mem;
mod native;
pub mod odds;
pub mod oracle;
mod orders;
pub mod pgtable;
pub mod signature;
pub mod smmu;
pub mod types;

pub use cmd::{Cmd, Opcode, Range, SmmuId};
pub use coverage::{Coverage, Goal};
pub use iopgtable::{PageTable, PtError};
pub use machine::{AtcInvDisabled, Endpoint, Machine};
pub use mem::Memory;
pub use odds::Odds;
pub use oracle::{Oracle, Violation, ViolationKind};
pub use pgtable::Walked;
pub use smmu::{Cd, Features, Smmu, Ste, TlbKind, TlbTag, WalkEntry};
pub use types::{
    Actor, Addr, Allowed, Cache, CpuId, DomainId, EndpointId, Event, Level, Source, Step, Translation, Word, BLOCK,
    IOVA_SPACE, PAGE,
};

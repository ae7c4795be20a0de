//! The driver logic under test, re-implemented from the SMMUv3
//! "RCU-protected invalidation array" series: one folder per design
//! (`fenced/` the proposal, `v9/` seed 001 as written, `legacy/` the kernel
//! before it) behind one trait of kernel-named steps (`Design`), over what
//! they share (command building, STE/CD writes, memory words, the kernel
//! environment and its fault sites, the catalogued bugs' switches).
//!
//! Files, ground floor first: `types`, `errno`, `mutant`, `words` (the
//! vocabulary), `env`, `kernel`, `cmdq`, `domain`, `master`, `attach`
//! (shared steps), `design` (the trait), the design folders, `dispatch`
//! (the one place a design is picked), `driver` (the entry points),
//! `iommufd`.

mod attach;
pub mod c;
mod cmdq;
mod design;
mod dispatch;
mod domain;
mod driver;
mod env;
mod errno;
pub mod fenced;
pub mod iommufd;
mod kernel;
pub mod legacy;
mod master;
mod mutant;
mod types;
pub mod v9;
mod words;

pub use attach::AttachState;
pub use cmdq::{atc_inv_cmd, inv_entries, size_too_big, Walk};
pub use design::Design;
pub use dispatch::Engine;
pub use domain::{Domain, GuestS1, Stage, Target};
pub use driver::{DomainKind, Driver};
pub use env::{Env, FaultSite, Warning, PPM};
pub use errno::Errno;
pub use kernel::{Cpu, Kernel};
pub use master::{Master, MasterState};
pub use mutant::Mutant;
pub use types::{Inv, InvDesc, InvType, InvsError};
pub use words::View;

//! The driver logic under test, re-implemented from the SMMUv3
//! "RCU-protected invalidation array" series: the array, attach/detach, the
//! invalidation fast path, and the catalogued bugs that can be switched in.

mod attach;
mod domain;
mod driver;
mod env;
mod errno;
mod inv;
pub mod invs;
pub mod iommufd;
mod master;
mod mutant;
mod shared;
pub mod v9;

pub use domain::{Domain, GuestS1, Stage, Target};
pub use driver::{Cpu, DomainKind, Driver, Engine};
pub use env::{Env, FaultSite, Warning, PPM};
pub use errno::Errno;
pub use inv::{atc_inv_cmd, size_too_big, Walk};
pub use invs::{Inv, InvDesc, InvType, Invs, InvsError};
pub use master::{Master, MasterState};
pub use mutant::Mutant;
pub use shared::View;

//! The driver logic under test, re-implemented from the SMMUv3
//! "RCU-protected invalidation array" series.

mod env;
mod errno;
pub mod invs;

pub use env::{Env, FaultSite, Warning};
pub use errno::Errno;
pub use invs::{Inv, InvDesc, InvType, Invs, InvsError};

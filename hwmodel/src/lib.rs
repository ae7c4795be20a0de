//! The simulated machine the driver runs on, and the oracle that judges it.

pub mod cmd;
pub mod mem;

pub use cmd::{Opcode, SmmuId};

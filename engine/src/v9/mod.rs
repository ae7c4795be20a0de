//! Seed 001 (PATCH v9 1-7/7) as written: the invalidation array, the attach
//! sequence and the invalidation walker translated statement by statement,
//! each function named after the seed's. Where the seed is wrong this code
//! is wrong the same way, so `stress --engine v9` can find it; the fixes
//! live in the default engine (`Engine::Fenced`), each with its reason.

mod attach;
mod inv;
mod invs;

pub use invs::Invs;

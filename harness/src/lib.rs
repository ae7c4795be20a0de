//! The `stress` harness: command line, schedulers, replay, shrinking,
//! reports and the mutation score.

pub mod app;
pub mod cli;
pub mod config;
pub mod failure;
pub mod guide;
pub mod known;
pub mod lore;
pub mod picture;
pub mod regression;
pub mod report;
pub mod run;
pub mod schedule;
pub mod shrink;
pub mod trace;

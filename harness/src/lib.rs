//! The `stress` harness: command line, schedulers, replay, reports.

pub mod cli;

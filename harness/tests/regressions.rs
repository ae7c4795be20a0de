//! One test per failure file README reports: each replays the recorded
//! schedule and asserts the same violation with the same trace hash.
//! Made by `stress --emit-test FILE`; findings/regenerate.sh rewrites them.

mod regressions {
    automod::dir!("tests/regressions");
}

//! The benchmarks compare like with like: every design issues the same,
//! non-zero commands for the same invalidation.

use benches::{fixture, Design};

#[test]
fn every_design_issues_the_same_commands() {
    for live in [1, 8, 64] {
        let f = fixture(live, false, false);
        let want = f.commands_per_call(Design::Bare, &f.epoch.cpu(1));
        // One TLBI + sync, then one ATC_INV per ATS entry + sync.
        assert_eq!(want, if live == 1 { 2 } else { live as u64 + 2 }, "live {live}");
        for design in Design::ALL {
            let cpu = f.driver(design).cpu(1);
            assert_eq!(f.commands_per_call(design, &cpu), want, "{} at {live}", design.name());
        }
        let t = fixture(live, true, false);
        assert_eq!(t.commands_per_call(Design::Epoch, &t.epoch.cpu(1)), want, "trash must be skipped");
    }
}

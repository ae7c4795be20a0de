//! The one place that picks a design: a run names its engine, and this
//! turns the name into the design's ops. A new design is a folder and one
//! variant here.

use crate::design::Design;
use crate::{c, fenced, legacy, v9};

/// Which invalidation design drives the hardware.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// The project's proposal: the series with the fixes its later versions
    /// made, and ATS turned off only once no ATC invalidation built from
    /// the master's old entries can be in flight (`fenced/`).
    #[default]
    Fenced,
    /// Patches 1-7 of seed 001 as written, bugs included (`v9/`).
    V9,
    /// The kernel before the series: one SMMU per domain, a device list
    /// under a spinlock, ATS turned off in attach_prepare (`legacy/`).
    Legacy,
    /// The series' own C, compiled from the user's input (`c/`), in v9's
    /// order; `c::install` names the series first.
    C,
}

impl Engine {
    pub const ALL: [Engine; 4] = [Engine::Fenced, Engine::V9, Engine::Legacy, Engine::C];

    /// The design's ops.
    pub fn design(self) -> Box<dyn Design> {
        match self {
            Engine::Fenced => Box::new(fenced::Fenced::default()),
            Engine::V9 => Box::new(v9::V9),
            Engine::Legacy => Box::new(legacy::Legacy::default()),
            Engine::C => Box::new(c::C::new(c::installed().expect("--engine c runs the series c::install named"))),
        }
    }

    /// Whether the line mutant `m` breaks is code this design runs.
    pub fn honours(self, m: crate::Mutant) -> bool {
        self.design().honours(m)
    }

    /// Whether one domain may span several SMMUs (and so outlive one).
    pub fn spans_smmus(self) -> bool {
        self.design().spans_smmus()
    }

    /// Whether the design can reach coverage goal `g` at all.
    pub fn can_reach(self, g: hwmodel::Goal) -> bool {
        self.design().can_reach(g)
    }

    /// The engine whose known-findings file this one's runs accept: the C
    /// is the series v9 translates, so its findings are v9's.
    pub fn known_as(self) -> Engine {
        match self {
            Engine::C => Engine::V9,
            e => e,
        }
    }

    /// The name `stress --engine` takes.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Fenced => "fenced",
            Engine::V9 => "v9",
            Engine::Legacy => "legacy",
            Engine::C => "c",
        }
    }

    pub fn from_name(name: &str) -> Option<Engine> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }
}

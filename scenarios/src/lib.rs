//! Named workloads: which world to build, which CPU and device threads to
//! spawn, and what each one does.

/// A catalogue entry, as `stress --list` shows it.
pub struct ScenarioInfo {
    pub name: &'static str,
    pub about: &'static str,
}

/// Every scenario `stress` can run. Empty until the engine drives the model.
pub fn catalogue() -> &'static [ScenarioInfo] {
    &[]
}

pub fn find(name: &str) -> Option<&'static ScenarioInfo> {
    catalogue().iter().find(|s| s.name == name)
}

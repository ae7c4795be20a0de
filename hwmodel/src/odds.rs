//! The chances the model takes at its nondeterministic points, in one
//! place. Each is "one in N" of the points where the event may happen, and
//! each happening is a data choice of the schedule, so a replay repeats
//! it. The world records the odds it ran with (`Oracle::set_odds`), and a
//! violation carries them.

/// One world's odds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Odds {
    /// A memory access drains one buffered store of some CPU (`Memory`).
    /// Rare enough that a store can stay buffered across another CPU's
    /// whole operation, as a real one can stay unobserved.
    pub drain: u64,
    /// After an invalidation removes a translation, the hardware fetches
    /// it again at once: the endpoint whose DMA stream still uses the
    /// buffer sends a translation request, or the SMMU walks through
    /// configuration it has cached. Both are allowed at any time; right
    /// after the invalidation is where ordering bugs show.
    pub refetch: u64,
    /// A translation starts with its stream's cached STE and CDs evicted.
    pub cfg_evict: u64,
    /// A raised completion interrupt is taken at an enabled scheduling
    /// point of its CPU (0: the world takes no interrupts).
    pub irq: u64,
    /// Each fallible driver call fails, in parts per million.
    pub fault_ppm: u32,
}

impl Odds {
    /// The model's odds before a scenario draws or sets its own.
    pub const DEFAULT: Odds = Odds { drain: 4, refetch: 2, cfg_evict: 8, irq: 0, fault_ppm: 0 };

    /// Whether the one-in-`n` event happens at this point: a data choice,
    /// whose 0 (what a shrinker zeroes a choice to) is "no".
    pub fn one_in(n: u64) -> bool {
        n > 0 && smmu_sync::random_below(n) == n - 1
    }
}

impl Default for Odds {
    fn default() -> Self {
        Self::DEFAULT
    }
}

//! Interleaving goals: for each ordering the series' correctness argument
//! turns on, both orders counted as "sometimes" goals. They are read off
//! the oracle's event stream as it is recorded, so every design and the
//! series' own C are judged the same way.

use crate::cmd::Opcode;
use crate::coverage::{Coverage, Goal};
use crate::types::{Actor, DomainId, Event, Word};
use std::collections::HashMap;

/// An unmap in progress, from its begin to its return.
struct Unmap {
    domain: DomainId,
    /// ATS disables counted when its walker loaded the array.
    loaded_at: Option<u64>,
    /// A publish (an attach's, a detach's purge) came before the load.
    published: bool,
    purged: bool,
}

#[derive(Default)]
pub(crate) struct Orders {
    unmaps: HashMap<Actor, Unmap>,
    ats_offs: u64,
    /// ATC_INVs submitted and not yet done.
    atc_in_flight: u64,
    /// Followed PTE and STE stores still in a store buffer: what, where,
    /// when issued.
    buffered: Vec<(Word, u64, u64)>,
    pub(crate) reached: Coverage,
}

impl Orders {
    /// Event `seq`, by `actor`, made in kernel function `func`.
    pub(crate) fn see(&mut self, seq: u64, actor: Actor, e: &Event, func: &str) {
        match *e {
            Event::UnmapBegin { domain, .. } => {
                self.unmaps.insert(actor, Unmap { domain, loaded_at: None, published: false, purged: false });
            }
            Event::UnmapReturned { .. } => {
                self.unmaps.remove(&actor);
            }
            Event::ArrayLoad { domain, .. } => {
                if let Some(u) = self.unmaps.get_mut(&actor).filter(|u| u.domain == domain && u.loaded_at.is_none()) {
                    u.loaded_at = Some(self.ats_offs);
                    let (p, q) = (u.published, u.purged);
                    self.hit_if(p, Goal::PublishBeforeLoad);
                    self.hit_if(q, Goal::PurgeBeforeLoad);
                }
            }
            Event::Publish { domain, .. } => {
                // The detach side publishes from install_old_domain_invs.
                let purge = func.contains("old_domain");
                let mut held = false;
                for u in self.unmaps.values_mut().filter(|u| u.domain == domain) {
                    held |= u.loaded_at.is_some();
                    if u.loaded_at.is_none() {
                        u.published |= !purge;
                        u.purged |= purge;
                    }
                }
                self.hit_if(held, if purge { Goal::LoadBeforePurge } else { Goal::LoadBeforePublish });
            }
            Event::Ats { enabled: false, .. } => {
                self.ats_offs += 1;
                self.hit_if(self.atc_in_flight > 0, Goal::AtcInvInFlightAtAtsOff);
            }
            Event::Submit { cmd, .. } if cmd.op == Opcode::AtcInv => {
                self.atc_in_flight += 1;
                let late = self.unmaps.get(&actor).and_then(|u| u.loaded_at).is_some_and(|at| at < self.ats_offs);
                self.hit_if(late, Goal::AtsOffBeforeAtcInv);
            }
            Event::Effect { cmd, .. } if cmd.op == Opcode::AtcInv => {
                self.atc_in_flight = self.atc_in_flight.saturating_sub(1);
            }
            Event::Store { what: what @ (Word::Pte | Word::Ste), addr, val } if what == Word::Ste || val != 0 => {
                self.buffered.push((what, addr, seq));
            }
            Event::Visible { what: what @ (Word::Pte | Word::Ste), addr, .. } => {
                let Some(k) = self.buffered.iter().position(|b| b.0 == what && b.1 == addr) else { return };
                let (_, _, issued) = self.buffered.remove(k);
                let other = if what == Word::Pte { Word::Ste } else { Word::Pte };
                // A PTE drained before an STE issued after it, or an STE
                // before a PTE issued before it: the two orders of a
                // mapping and the STE that makes it reachable.
                let overtaken = self.buffered.iter().any(|b| b.0 == other && (b.2 > issued) == (what == Word::Pte));
                self.hit_if(
                    overtaken,
                    if what == Word::Pte { Goal::PteDrainedBeforeSte } else { Goal::SteDrainedBeforePte },
                );
            }
            _ => {}
        }
    }

    fn hit_if(&mut self, reached: bool, g: Goal) {
        if reached {
            self.reached.hit(g);
        }
    }
}

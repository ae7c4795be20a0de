//! Domains (`struct arm_smmu_domain`) and what a master can be attached to.

use crate::invs::Invs;
use hwmodel::{Allowed, DomainId, PageTable};
use smmu_sync::Rcu;

/// What kind of translation a domain provides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Stage-1 paging, tagged by ASID.
    S1 { asid: u16 },
    /// Stage-2 paging, tagged by VMID. A nesting parent also needs every
    /// nested stage-1 entry cleared and the whole ATC flushed on change.
    S2 { vmid: u16, nest_parent: bool },
    /// Shared virtual addressing: a process address space on a PASID.
    Sva { asid: u16 },
}

/// A paging or SVA domain: its page table and its invalidation array.
pub struct Domain {
    pub id: DomainId,
    pub stage: Stage,
    pub pt: PageTable,
    /// Everything an invalidation of this domain must reach.
    pub invs: Rcu<Invs>,
}

impl Domain {
    pub fn nest_parent(&self) -> bool {
        matches!(self.stage, Stage::S2 { nest_parent: true, .. })
    }
}

/// What an attach points a master (or one of its PASIDs) at.
#[derive(Clone)]
pub enum Target {
    Domain(std::sync::Arc<Domain>),
    /// A guest stage 1 (with the guest's ASID) over a nesting-parent stage 2.
    Nested { parent: std::sync::Arc<Domain>, guest_asid: u16 },
    Blocked,
    Identity,
}

impl Target {
    /// The domain whose array must invalidate for the master.
    pub fn domain(&self) -> Option<&std::sync::Arc<Domain>> {
        match self {
            Target::Domain(d) | Target::Nested { parent: d, .. } => Some(d),
            Target::Blocked | Target::Identity => None,
        }
    }

    /// What the oracle lets the master translate through.
    pub fn allowed(&self) -> Allowed {
        match self {
            Target::Blocked => Allowed::Blocked,
            Target::Identity => Allowed::Identity,
            t => Allowed::Domain(t.domain().map(|d| d.id).expect("paging target")),
        }
    }

    pub fn same(&self, other: &Target) -> bool {
        match (self.domain(), other.domain()) {
            (Some(a), Some(b)) => std::sync::Arc::ptr_eq(a, b),
            _ => self.allowed() == other.allowed(),
        }
    }
}

//! Domains (`struct arm_smmu_domain`) and what a master can be attached to.

use crate::types::{InvDesc, InvType};
use hwmodel::{Addr, Allowed, DomainId, Features, PageTable, SmmuId};
use std::any::Any;

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

/// A paging or SVA domain: its page table, its words in simulated memory,
/// and what its design keeps to invalidate it.
pub struct Domain {
    pub id: DomainId,
    pub stage: Stage,
    pub pt: PageTable,
    /// The domain's frame in simulated memory: the pointer words other
    /// CPUs load, each design at its own offset.
    pub words: Addr,
    /// The design's per-domain state: an invalidation array, or the
    /// pre-series device list (`Design::domain_alloc`).
    pub(crate) invs: Box<dyn Any + Send + Sync>,
}

impl Domain {
    /// The design's state for this domain. Only the design that allocated
    /// the domain asks, so the type always matches.
    pub(crate) fn state<T: 'static>(&self) -> &T {
        self.invs.downcast_ref().expect("a domain is only handed to the design that allocated it")
    }

    pub fn nest_parent(&self) -> bool {
        matches!(self.stage, Stage::S2 { nest_parent: true, .. })
    }

    /// The ASID (stage 1, SVA) or VMID (stage 2) that tags this domain's
    /// IOTLB entries.
    pub fn tag(&self) -> u16 {
        match self.stage {
            Stage::S1 { asid } | Stage::Sva { asid } => asid,
            Stage::S2 { vmid, .. } => vmid,
        }
    }

    /// The entry for this domain's ASID or VMID on `smmu`.
    pub(crate) fn tag_inv(&self, smmu: SmmuId, f: Features) -> InvDesc {
        // RANGE_INV needs the leaf page size; the model's tables use 4 KiB.
        let pgsize = if f.range_inv { 12 } else { 0 };
        let ty = if matches!(self.stage, Stage::S2 { .. }) { InvType::S2Vmid } else { InvType::S1Asid };
        InvDesc::new(smmu, f.e2h, ty, self.tag().into(), 0, pgsize)
    }
}

/// What a nested domain's vSTE says of the guest's stage 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestS1 {
    /// The guest's CD table at this IPA (the vSTE's S1ContextPtr): the
    /// guest writes its own CDs and page tables, and invalidates them
    /// through its vSMMU.
    CdTable(u64),
    /// A guest with no driver of its own, whose stage 1 is identity under
    /// this ASID: the host writes the one CD.
    Identity { asid: u16 },
}

/// What an attach points a master (or one of its PASIDs) at.
#[derive(Clone)]
pub enum Target {
    Domain(std::sync::Arc<Domain>),
    /// A guest stage 1 over a nesting-parent stage 2.
    Nested {
        parent: std::sync::Arc<Domain>,
        s1: GuestS1,
    },
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

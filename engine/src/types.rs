//! The vocabulary every design speaks, as the kernel keeps it in
//! `arm-smmu-v3.h`: invalidation entry types, an entry's description and
//! its user count, and the array invariants the oracle checks. Below every
//! other file of this crate.

use hwmodel::{Opcode, SmmuId};
use smmu_sync::{AtomicU32, Ordering::Relaxed};
use std::cmp::Ordering;

/// Entry types, in the order their commands must be issued: TLBIs before
/// the nested-S1 clear, and every TLBI before any ATC invalidation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InvType {
    S1Asid,
    S2Vmid,
    S2VmidS1Clear,
    Ats,
    AtsFull,
}

impl InvType {
    pub fn is_ats(self) -> bool {
        matches!(self, InvType::Ats | InvType::AtsFull)
    }
}

/// What one entry invalidates: everything but the user count. This is also
/// the element of a master's `build_invs` scratch array.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InvDesc {
    pub smmu: SmmuId,
    pub ty: InvType,
    /// Opcode for a ranged invalidation.
    pub size_opcode: Opcode,
    /// Opcode that invalidates the whole ASID/VMID/ATC.
    pub nsize_opcode: Opcode,
    /// ASID, VMID or stream ID, by type.
    pub id: u32,
    /// Substream ID; meaningful for ATS types only.
    pub ssid: u32,
    /// log2 of the leaf page size when the SMMU has RANGE_INV, else 0.
    pub pgsize: u8,
}

impl InvDesc {
    /// An entry with the opcodes its type needs; `e2h` selects the EL2
    /// stage-1 TLBIs used when the SMMU shares the host's EL2 regime.
    pub fn new(smmu: SmmuId, e2h: bool, ty: InvType, id: u32, ssid: u32, pgsize: u8) -> Self {
        let (size_opcode, nsize_opcode) = match ty {
            InvType::S1Asid if e2h => (Opcode::TlbiEl2Va, Opcode::TlbiEl2Asid),
            InvType::S1Asid => (Opcode::TlbiNhVa, Opcode::TlbiNhAsid),
            InvType::S2Vmid => (Opcode::TlbiS2Ipa, Opcode::TlbiS12Vmall),
            InvType::S2VmidS1Clear => (Opcode::TlbiNhAll, Opcode::TlbiNhAll),
            InvType::Ats | InvType::AtsFull => (Opcode::AtcInv, Opcode::AtcInv),
        };
        let ssid = if ty.is_ats() { ssid } else { 0 };
        Self { smmu, ty, size_opcode, nsize_opcode, id, ssid, pgsize }
    }

    /// The sort and match order: (smmu, type, id, ssid for ATS types).
    pub fn key(&self) -> (SmmuId, InvType, u32, u32) {
        (self.smmu, self.ty, self.id, if self.ty.is_ats() { self.ssid } else { 0 })
    }

    pub fn cmp_key(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// One array entry. `users == 0` marks trash awaiting a purge.
pub struct Inv {
    pub desc: InvDesc,
    /// A plain counter with single-copy atomicity (READ_ONCE/WRITE_ONCE),
    /// not a refcount: writers are serialized by the ASID lock, and a reader
    /// that sees a stale non-zero value only invalidates more than needed.
    users: AtomicU32,
}

impl Inv {
    pub(crate) fn new(desc: InvDesc, users: u32) -> Self {
        Self { desc, users: AtomicU32::new(users) }
    }

    pub fn users(&self) -> u32 {
        self.users.load(Relaxed)
    }

    /// WRITE_ONCE of the user count; writers hold the ASID lock.
    pub(crate) fn set_users(&self, users: u32) {
        self.users.store(users, Relaxed);
    }
}

impl std::ops::Deref for Inv {
    type Target = InvDesc;
    fn deref(&self) -> &InvDesc {
        &self.desc
    }
}

impl std::fmt::Debug for Inv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}/{:?} id={} ssid={} users={}", self.smmu, self.ty, self.id, self.ssid, self.users())
    }
}

/// A broken array invariant (facts 1-2), as the oracle reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InvsError {
    Counters { num_trashes: usize, num_invs: usize, max_invs: usize },
    TrashCount { counted: usize, recorded: usize },
    Unsorted { index: usize },
    TrashInFreshArray { num_trashes: usize },
    HasAtsStale,
}

impl std::fmt::Display for InvsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Counters { num_trashes, num_invs, max_invs } => write!(
                f,
                "counters out of order: num_trashes {num_trashes} <= num_invs {num_invs} <= max_invs {max_invs} fails"
            ),
            Self::TrashCount { counted, recorded } => {
                write!(f, "{counted} entries have users == 0 but num_trashes says {recorded}")
            }
            Self::Unsorted { index } => write!(f, "entry {index} does not sort strictly after entry {}", index - 1),
            Self::TrashInFreshArray { num_trashes } => {
                write!(f, "a freshly built array holds {num_trashes} trash entries")
            }
            Self::HasAtsStale => write!(f, "array holds ATS entries but has_ats is false"),
        }
    }
}

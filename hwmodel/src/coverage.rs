//! Coverage goals ("sometimes" assertions): states a run should reach, not
//! properties it must keep. A goal a default-length run never reaches is a
//! hole in the generator, not a pass.

macro_rules! goals {
    ($($variant:ident => $name:literal: $what:literal,)*) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Goal {
            $($variant,)*
        }

        impl Goal {
            pub const ALL: &'static [Goal] = &[$(Goal::$variant,)*];

            /// The key in the `coverage` JSON object.
            pub fn name(self) -> &'static str {
                match self {
                    $(Goal::$variant => $name,)*
                }
            }

            pub fn what(self) -> &'static str {
                match self {
                    $(Goal::$variant => $what,)*
                }
            }
        }
    };
}

goals! {
    TrashWalked => "trash-walked": "a walker met trash (users 0) inside num_invs",
    WalkerOnOldArray => "walker-on-old-array": "a walker finished on an array its domain had already replaced",
    TwoPasidsOneSid => "two-pasids-one-sid": "one array held ATS entries for two PASIDs of one stream ID",
    ArraySpansSmmus => "array-spans-smmus": "one array held entries for two SMMUs",
    BatchEndSmmu => "batch-end-smmu": "a walker ended a batch because the next entry is on another SMMU",
    BatchEndS1Clear => "batch-end-s1-clear": "a walker ended a batch before the first S2_VMID_S1_CLEAR entry",
    BatchEndAts => "batch-end-ats": "a walker ended a batch before the first ATS entry",
    RangeScale => "range-scale": "a range TLBI with SCALE > 0 was issued",
    RangeTtl => "range-ttl": "a range TLBI with TTL set was issued",
    NsizeNestParent => "nsize-nest-parent": "a nesting parent was invalidated with the no-size command",
    FaultInvsMerge => "fault-invs-merge": "an injected allocation failure in merge",
    FaultInvsPurge => "fault-invs-purge": "an injected allocation failure in purge",
    FaultMasterDomain => "fault-master-domain": "an injected allocation failure of the attach bookkeeping",
    FaultDomainAlloc => "fault-domain-alloc": "an injected allocation failure of a new domain",
    FaultVmaster => "fault-vmaster": "an injected allocation failure of a nested attach's vmaster",
    FaultIommufdObject => "fault-iommufd-object": "an injected allocation failure of an iommufd object",
    FaultHwQueueAccess => "fault-hw-queue-access": "an injected allocation failure of a HW queue's access and page array",
    AtsOffOlderArray => "ats-off-older-array": "ATS was disabled while an older copy of an array still held the master",
    TagReused => "tag-reused": "a new domain reused a freed ASID/VMID",
    SmmuRemovedAttached => "smmu-removed-attached": "an SMMU was removed with masters still attached",
    WalkCacheHit => "walk-cache-hit": "an SMMU walk went through a cached table pointer",
    BlockTranslated => "block-translated": "a DMA translated through a 2 MiB block",
    PasidAtcHit => "pasid-atc-hit": "a DMA on a PASID hit the ATC",
    Refetch => "refetch": "the hardware fetched a translation again right after an invalidation removed it",
    StalePointerLoaded => "stale-pointer-loaded":
        "a CPU loaded an array pointer its domain had already replaced: the new one was still in a store buffer",
    IrqInvalidation => "irq-invalidation": "an invalidation ran in an interrupt handler",
    AtsJoinedMidWalk => "ats-joined-mid-walk":
        "a walker finished on an array older than one that added an ATS master it does not invalidate",
    // Interleaving goals (`orders`): both orders of each race the series'
    // argument is about.
    LoadBeforePublish => "load-before-publish": "a walker held its array when an attach published a newer one",
    PublishBeforeLoad => "publish-before-load":
        "an attach published a new array while an unmap ran, before its walker loaded one",
    LoadBeforePurge => "load-before-purge": "a walker held its array when a detach published a purged copy",
    PurgeBeforeLoad => "purge-before-load":
        "a detach published a purged array while an unmap ran, before its walker loaded one",
    AtcInvInFlightAtAtsOff => "atc-inv-in-flight-at-ats-off":
        "ATS was turned off with an ATC_INV submitted and not yet done",
    AtsOffBeforeAtcInv => "ats-off-before-atc-inv":
        "a walker sent an ATC_INV after an ATS disable that came after its array load",
    PteDrainedBeforeSte => "pte-drained-before-ste": "a PTE store drained while an STE store issued after it was buffered",
    SteDrainedBeforePte => "ste-drained-before-pte": "an STE store drained while a PTE store issued before it was buffered",
    IrqReadWriterWaiting => "irq-read-writer-waiting": "an interrupt asked for an rwlock's read side while a writer waited",
    IrqReadNoWriter => "irq-read-no-writer": "an interrupt asked for an rwlock's read side with no writer waiting",
    IrqReadOwnReader => "irq-read-own-reader":
        "an interrupt asked for an rwlock's read side its CPU held, with a writer waiting",
}

impl Goal {
    /// An ordering goal rather than a state one.
    pub fn is_order(self) -> bool {
        self >= Goal::LoadBeforePublish
    }
}

/// Counts per goal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coverage([u64; Goal::ALL.len()]);

impl Default for Coverage {
    fn default() -> Self {
        Coverage([0; Goal::ALL.len()])
    }
}

impl Coverage {
    pub fn hit(&mut self, g: Goal) {
        self.0[g as usize] += 1;
    }

    pub fn add_count(&mut self, g: Goal, n: u64) {
        self.0[g as usize] += n;
    }

    pub fn count(&self, g: Goal) -> u64 {
        self.0[g as usize]
    }

    pub fn add(&mut self, other: &Coverage) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }

    /// Every goal with its count, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = (Goal, u64)> + '_ {
        Goal::ALL.iter().map(|g| (*g, self.count(*g)))
    }

    pub fn reached(&self) -> usize {
        self.0.iter().filter(|n| **n > 0).count()
    }
}

//! Catalogued bugs, each a runtime switch at the one line it breaks, with
//! the violation kind it must be caught as. All are off unless a world is
//! built with one.

macro_rules! mutants {
    ($($variant:ident => $name:literal as $kind:ident: $what:literal,)*) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum Mutant {
            $($variant,)*
        }

        impl Mutant {
            pub const ALL: &'static [Mutant] = &[$(Mutant::$variant,)*];

            /// The name `stress --mutant` takes.
            pub fn name(self) -> &'static str {
                match self {
                    $(Mutant::$variant => $name,)*
                }
            }

            /// The violation it must be caught as: a catch of another
            /// kind is not the bug the switch plants.
            pub fn expected_kind(self) -> hwmodel::ViolationKind {
                match self {
                    $(Mutant::$variant => hwmodel::ViolationKind::$kind,)*
                }
            }

            /// What the switch breaks.
            pub fn what(self) -> &'static str {
                match self {
                    $(Mutant::$variant => $what,)*
                }
            }

            pub fn from_name(name: &str) -> Option<Mutant> {
                Self::ALL.iter().copied().find(|m| m.name() == name)
            }
        }
    };
}

mutants! {
    NewInvsAfterSte => "new-invs-after-ste" as StaleTranslation:
        "attach writes the STE/CD before publishing the new domain's array",
    OldInvsBeforeSte => "old-invs-before-ste" as StaleTranslation:
        "attach drops the master from the old domain's array before the STE/CD moves",
    NoSmpMbInvRange => "no-smp-mb-inv-range" as StaleTranslation:
        "the invalidation fast path loads the array without a full barrier after the PTE write",
    NoDmaWmbBeforeSte => "no-dma-wmb-before-ste" as UnpublishedArray:
        "the STE/CD word is written without a DMA write barrier after what it points to",
    NoFlushOnLastUnref => "no-flush-on-last-unref" as OldDomainTranslation:
        "an ASID/VMID whose last user is dropped is not flushed from the IOTLB",
    UnrefWithoutAtsFence => "unref-without-ats-fence" as AtcInvAtsDisabled:
        "unref trims the array without taking its write lock, so ATS can be disabled under a reader",
    AtsInTlbiBatch => "ats-in-tlbi-batch" as StaleTranslation:
        "the walker issues ATC invalidations in the same sync window as the TLBIs",
    S1ClearAlwaysSkipped => "s1-clear-always-skipped" as StaleTranslation:
        "S2_VMID_S1_CLEAR entries are skipped even when no VMALL was issued",
    FreeReplacedArrayImmediately => "free-replaced-array-immediately" as UseAfterFree:
        "a replaced array is freed without waiting for a grace period",
    RemoveSmmuWithoutGracePeriod => "remove-smmu-without-grace-period" as CmdToRemovedSmmu:
        "an SMMU instance goes away without a grace period after leaving every array",
    UnsortedStreamIds => "unsorted-stream-ids" as ArrayInvariant:
        "a master's stream IDs are not sorted at probe, so its build_invs array is not sorted",
    AtsOffWithoutGracePeriod => "ats-off-without-grace-period" as AtcInvAtsDisabled:
        "ATS is disabled right after the unref although an older copy of the array still holds the master's entries",
    VsmmuReportUnissued => "vsmmu-report-unissued" as UnissuedReported:
        "the vSMMU reports converted-but-unissued commands as handled when a later one is illegal",
    VsmmuZeroLengthEinval => "vsmmu-zero-length-einval" as UapiContract:
        "the vSMMU rejects the zero-length array that only probes the data type",
    VsmmuIllegalFieldAccepted => "vsmmu-illegal-field-accepted" as IllegalCommand:
        "the vSMMU passes a guest command with a legal opcode on whatever its other fields hold",
    VsmmuGuestVmidPassedThrough => "vsmmu-guest-vmid-passed-through" as StaleTranslation:
        "the vSMMU leaves the guest's VMID field in its TLBIs instead of the nesting parent's VMID",
    VsmmuVsidPassedThrough => "vsmmu-vsid-passed-through" as StaleTranslation:
        "the vSMMU leaves the guest's virtual SID in ATC_INV and CFGI_CD instead of the physical one",
    VmmCerrorAtBatchStart => "vmm-cerror-at-batch-start" as CerrorAtLegalCommand:
        "the VMM raises CERROR_ILL where the failing batch starts (CONS + entry_num) without locating the illegal command",
    HwQueueUnpinned => "hw-queue-unpinned" as QueueUnmapped:
        "HW queue allocation skips the access that pins the guest queue memory",
    HwQueueDestroyIgnoresDependency => "hw-queue-destroy-ignores-dependency" as UapiContract:
        "IOMMU_DESTROY of a HW queue succeeds while the queue above it still depends on it",
    VsmmuNsnhAllRefused => "vsmmu-nsnh-all-refused" as StaleTranslation:
        "the vSMMU refuses a guest's TLBI_NSNH_ALL (EIO) instead of converting it to TLBI_NH_ALL with its VMID",
    HwptInvalidateAnyObjectType => "hwpt-invalidate-any-object-type" as UapiContract:
        "IOMMU_HWPT_INVALIDATE hands an object of any type to a vIOMMU's op instead of refusing it with EINVAL",
    PublishWithoutBarrier => "publish-without-barrier" as UnpublishedArray:
        "attach publishes the new array after the barrier before the STE/CD write, so the STE/CD can be seen first",
    PublishPlainStore => "publish-plain-store" as StaleTranslation:
        "the array pointer is published with a plain store, so another CPU can see it before the entries",
    ReadLockInIrqWithoutIrqsave => "read-lock-in-irq-without-irqsave" as Deadlock:
        "the walker takes the ATS read lock with read_lock, so an interrupt can re-enter it behind a waiting writer",
    NoTlbFlushBeforeAts => "no-tlb-flush-before-ats" as StaleTranslation:
        "attach lets a master serve translation requests in a domain without first flushing the domain's tag on its SMMU",
    OldInvsWithNewAts => "old-invs-with-new-ats" as DriverWarn:
        "the entries dropped from the old domain are built with the ATS state the master moves to, not the one it had",
    SizeTooBigIgnored => "size-too-big-ignored" as CommandBound:
        "the walker sends per-granule TLBIs for a range past MAX_TLBI_OPS instead of one whole-ASID/VMID command",
    VmmResumesAfterBatch => "vmm-resumes-after-batch" as GuestCommandLost:
        "after reflecting CERROR_ILL the VMM resumes past the batch it submitted, dropping the commands after the illegal one",
}

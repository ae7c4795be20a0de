//! SMMUv3 command-queue opcodes and instance identity.

/// Identifies one SMMU instance in a world. Invalidation arrays sort by it
/// the way the kernel sorts by `struct arm_smmu_device *`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SmmuId(pub u32);

/// The commands the driver issues. Values are the architected opcodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Opcode {
    CfgiSte = 0x03,
    CfgiCd = 0x05,
    TlbiNhAll = 0x10,
    TlbiNhAsid = 0x11,
    TlbiNhVa = 0x12,
    TlbiEl2Asid = 0x21,
    TlbiEl2Va = 0x22,
    TlbiS12Vmall = 0x28,
    TlbiS2Ipa = 0x2a,
    AtcInv = 0x40,
    CmdSync = 0x46,
}

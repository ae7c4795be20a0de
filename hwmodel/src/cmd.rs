//! SMMUv3 command-queue commands and instance identity.

/// Identifies one SMMU instance in a world. Invalidation arrays sort by it
/// the way the kernel sorts by `struct arm_smmu_device *`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SmmuId(pub u32);

/// The opcodes the driver issues. Values are the architected ones.
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

/// The range fields of a TLBI-by-address (RANGE_INV): the command covers
/// `(num + 1) << scale` pages of granule `tg` from `addr`; `ttl` hints the
/// leaf level (0: none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Range {
    pub num: u8,
    pub scale: u8,
    /// 0: not a range command; 1: 4 KiB; 2: 16 KiB; 3: 64 KiB.
    pub tg: u8,
    pub ttl: u8,
}

/// A command as placed on the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cmd {
    pub op: Opcode,
    pub asid: u16,
    pub vmid: u16,
    /// Stream ID (CFGI_*, ATC_INV).
    pub sid: u32,
    /// Substream ID (CFGI_CD, ATC_INV).
    pub ssid: u32,
    /// Address for TLBI-by-address and ATC_INV.
    pub addr: u64,
    /// TLBI: only leaf entries need invalidating.
    pub leaf: bool,
    pub range: Range,
    /// ATC_INV: log2 of the naturally aligned span invalidated at `addr`.
    pub atc_size: u8,
    /// ATC_INV: every SSID of the stream.
    pub global: bool,
}

impl Cmd {
    pub fn new(op: Opcode) -> Self {
        Self {
            op,
            asid: 0,
            vmid: 0,
            sid: 0,
            ssid: 0,
            addr: 0,
            leaf: false,
            range: Range::default(),
            atc_size: 0,
            global: false,
        }
    }

    pub fn sync() -> Self {
        Self::new(Opcode::CmdSync)
    }

    pub fn is_tlbi_by_addr(&self) -> bool {
        matches!(self.op, Opcode::TlbiNhVa | Opcode::TlbiEl2Va | Opcode::TlbiS2Ipa)
    }

    /// Why the SMMU would raise CERROR_ILL for this command, if it would.
    /// `range_inv` is whether the SMMU implements range invalidation.
    pub fn illegal(&self, range_inv: bool) -> Option<&'static str> {
        let r = self.range;
        if r != Range::default() && !self.is_tlbi_by_addr() {
            return Some("range fields set on a command that takes no address");
        }
        if r.tg != 0 && !range_inv {
            return Some("range invalidation on an SMMU without RANGE_INV");
        }
        if r.tg > 3 || r.num > 31 || r.scale > 63 || r.ttl > 3 {
            return Some("a range field does not fit its encoding");
        }
        if self.is_tlbi_by_addr() && self.addr & 0xfff != 0 {
            return Some("TLBI address not page aligned");
        }
        if self.op == Opcode::AtcInv && !(12..=64).contains(&self.atc_size) {
            return Some("ATC_INV span outside 4 KiB..2^64");
        }
        None
    }

    /// The IOVA span a TLBI-by-address covers, in bytes from `addr`. A
    /// non-range command covers the one translation containing `addr`,
    /// reported as one 4 KiB page.
    pub fn tlbi_span(&self) -> u64 {
        if self.range.tg == 0 {
            return 1 << 12;
        }
        let tg_shift = 12 + 2 * (u64::from(self.range.tg) - 1);
        (u64::from(self.range.num) + 1) << (u64::from(self.range.scale) + tg_shift)
    }
}

//! SMMUv3 command-queue commands and instance identity.

/// Identifies one SMMU instance in a world. Invalidation arrays sort by it
/// the way the kernel sorts by `struct arm_smmu_device *`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SmmuId(pub u32);

/// The opcodes the driver issues, and those a guest's vSMMU converts.
/// Values are the architected ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Opcode {
    CfgiSte = 0x03,
    CfgiCd = 0x05,
    /// Every CD of a stream.
    CfgiCdAll = 0x06,
    TlbiNhAll = 0x10,
    TlbiNhAsid = 0x11,
    TlbiNhVa = 0x12,
    /// By address, every ASID of the VMID.
    TlbiNhVaa = 0x13,
    TlbiEl2Asid = 0x21,
    TlbiEl2Va = 0x22,
    TlbiS12Vmall = 0x28,
    TlbiS2Ipa = 0x2a,
    /// Every non-secure, non-hypervisor entry: all VMIDs.
    TlbiNsnhAll = 0x30,
    AtcInv = 0x40,
    CmdSync = 0x46,
}

impl Opcode {
    pub const ALL: [Opcode; 14] = [
        Opcode::CfgiSte,
        Opcode::CfgiCd,
        Opcode::CfgiCdAll,
        Opcode::TlbiNhAll,
        Opcode::TlbiNhAsid,
        Opcode::TlbiNhVa,
        Opcode::TlbiNhVaa,
        Opcode::TlbiEl2Asid,
        Opcode::TlbiEl2Va,
        Opcode::TlbiS12Vmall,
        Opcode::TlbiS2Ipa,
        Opcode::TlbiNsnhAll,
        Opcode::AtcInv,
        Opcode::CmdSync,
    ];

    /// The opcode with the architected number `n`, if the model has it.
    pub fn from_u8(n: u8) -> Option<Opcode> {
        Self::ALL.into_iter().find(|op| *op as u8 == n)
    }
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
    /// ATC_INV: SSID valid (SSV). Without it the invalidation covers every
    /// substream of the stream, as a PCIe invalidation without a PASID does.
    pub ssv: bool,
}

impl std::fmt::Display for Cmd {
    /// The fields that matter for the opcode, in the kernel's names.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let leaf = if self.leaf { " leaf" } else { "" };
        let range = match self.range {
            r if r.tg == 0 => String::new(),
            r => format!(" num {} scale {} ttl {}", r.num, r.scale, r.ttl),
        };
        // Stage-1 TLBIs name a VMID only for a guest's entries.
        let vmid = if self.vmid != 0 { format!(" vmid {}", self.vmid) } else { String::new() };
        match self.op {
            Opcode::CfgiSte => write!(f, "CFGI_STE sid {}", self.sid),
            Opcode::CfgiCd => write!(f, "CFGI_CD sid {} ssid {}", self.sid, self.ssid),
            Opcode::CfgiCdAll => write!(f, "CFGI_CD_ALL sid {}", self.sid),
            Opcode::TlbiNhAll => write!(f, "TLBI_NH_ALL vmid {}", self.vmid),
            Opcode::TlbiNhAsid => write!(f, "TLBI_NH_ASID{vmid} asid {}", self.asid),
            Opcode::TlbiEl2Asid => write!(f, "TLBI_EL2_ASID asid {}", self.asid),
            Opcode::TlbiNhVa => write!(f, "TLBI_NH_VA{vmid} asid {} {:#x}{leaf}{range}", self.asid, self.addr),
            Opcode::TlbiNhVaa => write!(f, "TLBI_NH_VAA{vmid} {:#x}{leaf}{range}", self.addr),
            Opcode::TlbiEl2Va => write!(f, "TLBI_EL2_VA asid {} {:#x}{leaf}{range}", self.asid, self.addr),
            Opcode::TlbiS12Vmall => write!(f, "TLBI_S12_VMALL vmid {}", self.vmid),
            Opcode::TlbiS2Ipa => write!(f, "TLBI_S2_IPA vmid {} {:#x}{leaf}{range}", self.vmid, self.addr),
            Opcode::TlbiNsnhAll => write!(f, "TLBI_NSNH_ALL"),
            Opcode::AtcInv => {
                let ssid = if self.ssv { format!(" ssid {}", self.ssid) } else { String::new() };
                write!(f, "ATC_INV sid {}{ssid} {:#x} size 2^{}", self.sid, self.addr, self.atc_size)
            }
            Opcode::CmdSync => write!(f, "CMD_SYNC"),
        }
    }
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
            ssv: false,
        }
    }

    pub fn sync() -> Self {
        Self::new(Opcode::CmdSync)
    }

    pub fn is_tlbi_by_addr(&self) -> bool {
        matches!(self.op, Opcode::TlbiNhVa | Opcode::TlbiNhVaa | Opcode::TlbiEl2Va | Opcode::TlbiS2Ipa)
    }

    /// Why the SMMU would raise CERROR_ILL for this command, if it would.
    /// `range_inv` is whether the SMMU implements range invalidation.
    pub fn illegal(&self, range_inv: bool) -> Option<&'static str> {
        let r = self.range;
        if r != Range::default() && !self.is_tlbi_by_addr() {
            return Some("range fields set on a command that takes no address");
        }
        if r.tg == 0 && (r.num != 0 || r.scale != 0) {
            return Some("range NUM or SCALE without a granule (TG 0)");
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

    /// The command with only the fields its opcode takes: encoding it gives
    /// back the queue entry only if nothing else was set.
    pub fn canonical(&self) -> Cmd {
        let mut c = Cmd::new(self.op);
        match self.op {
            Opcode::CfgiSte => (c.sid, c.leaf) = (self.sid, self.leaf),
            Opcode::CfgiCd => (c.sid, c.ssid, c.ssv, c.leaf) = (self.sid, self.ssid, self.ssv, self.leaf),
            Opcode::CfgiCdAll => c.sid = self.sid,
            Opcode::TlbiNhAll | Opcode::TlbiS12Vmall => c.vmid = self.vmid,
            Opcode::TlbiNhVaa => (c.vmid, c.addr, c.leaf, c.range) = (self.vmid, self.addr, self.leaf, self.range),
            Opcode::TlbiNhAsid | Opcode::TlbiEl2Asid => (c.asid, c.vmid) = (self.asid, self.vmid),
            Opcode::TlbiNhVa | Opcode::TlbiEl2Va | Opcode::TlbiS2Ipa => {
                (c.asid, c.vmid, c.addr, c.leaf, c.range) = (self.asid, self.vmid, self.addr, self.leaf, self.range)
            }
            Opcode::AtcInv => {
                (c.sid, c.ssid, c.ssv, c.addr, c.atc_size) = (self.sid, self.ssid, self.ssv, self.addr, self.atc_size)
            }
            Opcode::CmdSync | Opcode::TlbiNsnhAll => {}
        }
        c
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

impl Cmd {
    /// The 16-byte queue entry: opcode in bits 7:0 of word 0; ASID 63:48
    /// and VMID 47:32 (TLBI) or SID 63:32, SSID 31:12, SSV bit 11
    /// (ATC_INV, CFGI_CD) in word 0; address 63:12, leaf bit 0 and ATC span
    /// 11:6 in word 1; range NUM/SCALE/TG/TTL in word 0 bits 31:12 for TLBIs.
    pub fn encode(&self) -> [u64; 2] {
        let op = self.op as u64;
        let w0 = match self.op {
            Opcode::AtcInv | Opcode::CfgiCd | Opcode::CfgiCdAll | Opcode::CfgiSte => {
                op | (u64::from(self.sid) << 32) | (u64::from(self.ssid & 0xf_ffff) << 12) | (u64::from(self.ssv) << 11)
            }
            _ => {
                let r = self.range;
                let range = u64::from(r.num & 31)
                    | (u64::from(r.scale & 63) << 5)
                    | (u64::from(r.tg & 3) << 11)
                    | (u64::from(r.ttl & 3) << 13);
                op | (range << 12) | (u64::from(self.vmid) << 32) | (u64::from(self.asid) << 48)
            }
        };
        let w1 = (self.addr & !0xfff) | u64::from(self.leaf) | (u64::from(self.atc_size & 63) << 6);
        [w0, w1]
    }

    /// Decode a queue entry; `None` for an opcode this model does not know.
    pub fn decode(raw: [u64; 2]) -> Option<Cmd> {
        let op = Opcode::from_u8((raw[0] & 0xff) as u8)?;
        let mut c = Cmd::new(op);
        c.addr = raw[1] & !0xfff;
        c.leaf = raw[1] & 1 != 0;
        c.atc_size = ((raw[1] >> 6) & 63) as u8;
        match op {
            Opcode::AtcInv | Opcode::CfgiCd | Opcode::CfgiCdAll | Opcode::CfgiSte => {
                c.sid = (raw[0] >> 32) as u32;
                c.ssid = ((raw[0] >> 12) & 0xf_ffff) as u32;
                c.ssv = raw[0] & (1 << 11) != 0;
            }
            _ => {
                let range = raw[0] >> 12;
                c.range = Range {
                    num: (range & 31) as u8,
                    scale: ((range >> 5) & 63) as u8,
                    tg: ((range >> 11) & 3) as u8,
                    ttl: ((range >> 13) & 3) as u8,
                };
                c.vmid = (raw[0] >> 32) as u16;
                c.asid = (raw[0] >> 48) as u16;
            }
        }
        Some(c)
    }
}

//! IO page tables as the SMMU walks them: a two-level ARM-style table
//! covering 1 GiB of IOVA, with 4 KiB pages at level 3 and 2 MiB blocks at
//! level 2. The walker reads only what has reached memory; the driver side
//! that writes them is `iopgtable`.

use crate::mem::Memory;
use crate::types::{Addr, Level, BLOCK, IOVA_SPACE, PAGE};

pub(crate) const VALID: u64 = 1 << 0;
/// Level 2: points to a level-3 table. Level 3: a page (must be set).
pub(crate) const TABLE_OR_PAGE: u64 = 1 << 1;
pub(crate) const ADDR_MASK: u64 = 0x0000_ffff_ffff_f000;

/// What a device-side walk found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Walked {
    /// The output page or block and its level, if the walk reached a leaf.
    pub leaf: Option<(u64, Level)>,
    /// The level-3 table the walk went through, which a walk cache may keep.
    pub table: Option<Addr>,
}

/// The device's view of a walk from the root.
pub fn walk(mem: &Memory, root: Addr, iova: u64) -> Walked {
    let none = Walked { leaf: None, table: None };
    if iova >= IOVA_SPACE {
        return none;
    }
    let l2 = mem.load_dev(root + 8 * (iova / BLOCK));
    if l2 & VALID == 0 {
        return none;
    }
    if l2 & TABLE_OR_PAGE == 0 {
        return Walked { leaf: Some((l2 & ADDR_MASK, Level::Block)), table: None };
    }
    let table = l2 & ADDR_MASK;
    Walked { leaf: walk_table(mem, table, iova), table: Some(table) }
}

/// The output address of a stage-2 walk of `ipa`, as the device reads it.
pub fn s2_translate(mem: &Memory, s2_root: Addr, ipa: u64) -> Option<u64> {
    walk(mem, s2_root, ipa).leaf.map(|(pa, level)| pa + ipa % level.size())
}

/// A guest's stage-1 walk of `iova` from its table at IPA `s1_root`: each
/// table word the walk reads and the output are IPAs, translated by the
/// stage 2 at `s2_root`. Returns the PA.
pub fn walk_nested(mem: &Memory, s2_root: Addr, s1_root: u64, iova: u64) -> Option<u64> {
    if iova >= IOVA_SPACE {
        return None;
    }
    let l2 = mem.load_dev(s2_translate(mem, s2_root, s1_root + 8 * (iova / BLOCK))?);
    if l2 & VALID == 0 {
        return None;
    }
    let out = if l2 & TABLE_OR_PAGE == 0 {
        (l2 & ADDR_MASK) + iova % BLOCK
    } else {
        let l3 = mem.load_dev(s2_translate(mem, s2_root, (l2 & ADDR_MASK) + 8 * ((iova % BLOCK) / PAGE))?);
        if l3 & VALID == 0 {
            return None;
        }
        (l3 & ADDR_MASK) + iova % PAGE
    };
    s2_translate(mem, s2_root, out)
}

/// A level-2 word pointing at the level-3 table at `table`.
pub fn table_desc(table: u64) -> u64 {
    (table & ADDR_MASK) | TABLE_OR_PAGE | VALID
}

/// A level-3 word mapping the page at `page`.
pub fn page_desc(page: u64) -> u64 {
    (page & ADDR_MASK) | TABLE_OR_PAGE | VALID
}

/// The leaf for `iova` in a level-3 table, as the device reads it.
pub fn walk_table(mem: &Memory, table: Addr, iova: u64) -> Option<(u64, Level)> {
    let l3 = mem.load_dev(table + 8 * ((iova % BLOCK) / PAGE));
    (l3 & VALID != 0).then_some((l3 & ADDR_MASK, Level::Page))
}

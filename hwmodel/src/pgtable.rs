//! IO page tables: a two-level ARM-style table covering 1 GiB of IOVA, with
//! 4 KiB pages at level 3 and 2 MiB blocks at level 2. The driver side
//! (`map`/`unmap`) writes entries through a CPU's store buffer; the SMMU side
//! (`walk`) reads only what has reached memory.

use crate::machine::Machine;
use crate::mem::{Addr, CpuId, Memory};
use crate::oracle::Word;
use smmu_sync::plain;
use std::sync::atomic::Ordering::Relaxed;

pub const PAGE: u64 = 1 << 12;
pub const BLOCK: u64 = 1 << 21;
/// IOVA space covered by one table.
pub const IOVA_SPACE: u64 = 1 << 30;

const VALID: u64 = 1 << 0;
/// Level 2: points to a level-3 table. Level 3: a page (must be set).
const TABLE_OR_PAGE: u64 = 1 << 1;
const ADDR_MASK: u64 = 0x0000_ffff_ffff_f000;

/// Which level a translation came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Level {
    Page,
    Block,
}

impl Level {
    pub fn size(self) -> u64 {
        match self {
            Level::Page => PAGE,
            Level::Block => BLOCK,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PtError {
    OutOfRange,
    Misaligned,
    /// Something is already mapped there.
    Exists,
    /// Nothing of that size is mapped there.
    NotMapped,
}

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

/// One domain's page table. Like io-pgtable it takes no lock: leaf entries
/// are plain stores (callers own disjoint IOVA ranges) and a new level-3
/// table is installed with `dma_wmb` + `cmpxchg`, so racing installers agree.
pub struct PageTable {
    pub root: Addr,
    /// The domain every frame of this table belongs to.
    owner: crate::DomainId,
    /// Bumped by every map and unmap; each mapping remembers the value it
    /// was made at, and so does every cache entry filled from it.
    gen: plain::AtomicU64,
}

impl PageTable {
    /// An empty table; its root is registered to `owner` so that every
    /// cached translation can name the domain it came from.
    pub fn new(m: &Machine, owner: crate::DomainId) -> Self {
        let root = m.alloc_frame();
        m.set_owner(root, owner);
        Self { root, owner, gen: plain::AtomicU64::new(0) }
    }

    /// Map and unmap operations so far.
    pub fn generation(&self) -> u64 {
        self.gen.load(Relaxed)
    }

    fn bump(&self) -> u64 {
        self.gen.fetch_add(1, Relaxed) + 1
    }

    fn check(iova: u64, size: u64) -> Result<(), PtError> {
        if iova.checked_add(size).is_none_or(|end| end > IOVA_SPACE) {
            return Err(PtError::OutOfRange);
        }
        if !(size == PAGE || size == BLOCK) || !iova.is_multiple_of(size) {
            return Err(PtError::Misaligned);
        }
        Ok(())
    }

    /// Map `size` (a page or a block) at `iova` to `pa`.
    pub fn map(&self, m: &Machine, cpu: CpuId, iova: u64, pa: u64, size: u64) -> Result<(), PtError> {
        Self::check(iova, size)?;
        let mem = &m.mem;
        let l2_addr = self.root + 8 * (iova / BLOCK);
        let l2 = mem.load(cpu, l2_addr);
        if size == BLOCK {
            if l2 & VALID != 0 {
                return Err(PtError::Exists);
            }
            m.note_mapping(pa, self.bump());
            mem.store_as(cpu, l2_addr, (pa & ADDR_MASK) | VALID, Word::Pte);
            return Ok(());
        }
        let l2 = if l2 & VALID == 0 {
            // Frames are fresh and never reused, so losing the race only
            // leaks one frame of the model's memory.
            let frame = m.alloc_frame();
            m.set_owner(frame, self.owner);
            let new = table_desc(frame);
            mem.dma_wmb(cpu);
            match mem.cmpxchg(cpu, l2_addr, l2, new) {
                cur if cur == l2 => new,
                cur => cur,
            }
        } else {
            l2
        };
        if l2 & TABLE_OR_PAGE == 0 {
            return Err(PtError::Exists);
        }
        let table = l2 & ADDR_MASK;
        let l3_addr = table + 8 * ((iova % BLOCK) / PAGE);
        if mem.load(cpu, l3_addr) & VALID != 0 {
            return Err(PtError::Exists);
        }
        m.note_mapping(pa, self.bump());
        mem.store_as(cpu, l3_addr, page_desc(pa), Word::Pte);
        Ok(())
    }

    /// Clear the `size` mapping at `iova`, returning the page it mapped.
    /// The caller must then invalidate before reusing or freeing that page.
    pub fn unmap(&self, m: &Machine, cpu: CpuId, iova: u64, size: u64) -> Result<u64, PtError> {
        Self::check(iova, size)?;
        let mem = &m.mem;
        let l2_addr = self.root + 8 * (iova / BLOCK);
        let l2 = mem.load(cpu, l2_addr);
        if l2 & VALID == 0 {
            return Err(PtError::NotMapped);
        }
        let is_block = l2 & TABLE_OR_PAGE == 0;
        if is_block != (size == BLOCK) {
            return Err(PtError::NotMapped);
        }
        self.bump();
        if is_block {
            mem.store_as(cpu, l2_addr, 0, Word::Pte);
            return Ok(l2 & ADDR_MASK);
        }
        let l3_addr = (l2 & ADDR_MASK) + 8 * ((iova % BLOCK) / PAGE);
        let l3 = mem.load(cpu, l3_addr);
        if l3 & VALID == 0 {
            return Err(PtError::NotMapped);
        }
        mem.store_as(cpu, l3_addr, 0, Word::Pte);
        Ok(l3 & ADDR_MASK)
    }

    /// Unmap a whole level-3 table (io-pgtable freeing a table when an
    /// unmap covers its block): the level-2 entry is cleared and the table
    /// dropped with its entries still in it. Returns each (iova, page) it
    /// mapped. The caller must invalidate with `leaf = false`
    /// (`tlb_inv_walk`) so that no walk cache keeps the old table.
    pub fn unmap_table(&self, m: &Machine, cpu: CpuId, iova: u64) -> Result<Vec<(u64, u64)>, PtError> {
        Self::check(iova, BLOCK)?;
        let mem = &m.mem;
        let l2_addr = self.root + 8 * (iova / BLOCK);
        let l2 = mem.load(cpu, l2_addr);
        if l2 & VALID == 0 || l2 & TABLE_OR_PAGE == 0 {
            return Err(PtError::NotMapped);
        }
        let table = l2 & ADDR_MASK;
        let pages = (mem.peek_words(cpu, table, BLOCK / PAGE).into_iter().enumerate())
            .filter(|(_, l3)| l3 & VALID != 0)
            .map(|(k, l3)| (iova + k as u64 * PAGE, l3 & ADDR_MASK))
            .collect();
        self.bump();
        mem.store_as(cpu, l2_addr, 0, Word::Pte);
        Ok(pages)
    }

    /// The CPU's own view of a translation (its buffered stores included).
    pub fn lookup(&self, m: &Machine, cpu: CpuId, iova: u64) -> Option<u64> {
        let l2 = m.mem.load(cpu, self.root + 8 * (iova / BLOCK));
        match l2 {
            _ if l2 & VALID == 0 => None,
            _ if l2 & TABLE_OR_PAGE == 0 => Some((l2 & ADDR_MASK) + iova % BLOCK),
            _ => {
                let l3 = m.mem.load(cpu, (l2 & ADDR_MASK) + 8 * ((iova % BLOCK) / PAGE));
                (l3 & VALID != 0).then_some((l3 & ADDR_MASK) + iova % PAGE)
            }
        }
    }
}

//! IO page tables as the driver writes them (io-pgtable): `map` and `unmap`
//! store entries through a CPU's store buffer, with the barriers and
//! compare-and-swap io-pgtable uses, and note every mapping for the oracle.

use crate::machine::Machine;
use crate::pgtable::{page_desc, table_desc, ADDR_MASK, TABLE_OR_PAGE, VALID};
use crate::types::{Addr, CpuId, DomainId, Word, BLOCK, IOVA_SPACE, PAGE};
use smmu_sync::plain;
use std::sync::atomic::Ordering::Relaxed;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PtError {
    OutOfRange,
    Misaligned,
    /// Something is already mapped there.
    Exists,
    /// Nothing of that size is mapped there.
    NotMapped,
}

/// One domain's page table. Like io-pgtable it takes no lock: leaf entries
/// are plain stores (callers own disjoint IOVA ranges) and a new level-3
/// table is installed with `dma_wmb` + `cmpxchg`, so racing installers agree.
pub struct PageTable {
    pub root: Addr,
    /// The domain every frame of this table belongs to.
    owner: DomainId,
    /// Bumped by every map and unmap; each mapping remembers the value it
    /// was made at, and so does every cache entry filled from it.
    gen: plain::AtomicU64,
}

impl PageTable {
    /// An empty table; its root is registered to `owner` so that every
    /// cached translation can name the domain it came from.
    pub fn new(m: &Machine, owner: DomainId) -> Self {
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

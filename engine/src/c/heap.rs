//! The C's heap: blocks the model allocates for `kzalloc`, each with a
//! range of model memory of its own, kept mapped until the world ends so
//! that a freed block is poisoned rather than unmapped (a read of it
//! through a shim primitive is a use-after-free, never a crash).
//! The C reaches a block's words through raw pointers; Rust through the
//! cells, so no Rust reference ever claims them.

use hwmodel::Addr;
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};

/// Whether a block was freed, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Freed {
    No,
    /// `kfree_rcu`: poisoned once its grace period has passed.
    AfterGracePeriod,
    Yes,
}

pub(super) struct Block {
    words: Box<[Cell<u64>]>,
    /// Where its first word lives in the model's memory.
    pub model: Addr,
    pub freed: Freed,
}

#[derive(Default)]
pub(super) struct Heap {
    /// By host address of the first word.
    blocks: BTreeMap<usize, Block>,
    /// Host address of the first word, by model address of the first word.
    by_model: BTreeMap<Addr, usize>,
    /// The words `rcu_assign_pointer` wrote, by model address.
    pointers: BTreeSet<Addr>,
}

/// A word of a block: its host address, its model address.
#[derive(Clone, Copy)]
pub(super) struct Word {
    pub host: usize,
    pub model: Addr,
}

impl Heap {
    /// A zeroed block of at least `size` bytes whose model memory starts at
    /// `model`; returns its host address.
    pub fn alloc(&mut self, size: usize, model: Addr) -> usize {
        let words: Box<[Cell<u64>]> = (0..size.div_ceil(8).max(1)).map(|_| Cell::new(0)).collect();
        let host = words.as_ptr() as usize;
        self.blocks.insert(host, Block { words, model, freed: Freed::No });
        self.by_model.insert(model, host);
        host
    }

    /// A pointer as model memory holds it: the model address of what it
    /// points at, the same in every run, where the host address is not.
    /// NULL and ERR_PTRs point at no block and stay as they are.
    fn to_model(&self, p: usize) -> u64 {
        self.find(p).map_or(p as u64, |(off, b)| b.model + off as u64)
    }

    /// Model memory's value for pointer `p` stored in the word at `model`.
    pub fn pointer_at(&mut self, model: Addr, p: usize) -> u64 {
        self.pointers.insert(model);
        self.to_model(p)
    }

    /// Whether the word at `model` holds a pointer as `to_model` wrote it.
    pub fn is_pointer(&self, model: Addr) -> bool {
        self.pointers.contains(&model)
    }

    /// The pointer a model word `to_model` wrote stands for.
    pub fn to_host(&self, v: u64) -> usize {
        let Some((&model, &host)) = self.by_model.range(..=v).next_back() else { return v as usize };
        match self.find(host) {
            Some((_, b)) if v < model + 8 * b.words.len() as u64 => host + (v - model) as usize,
            _ => v as usize,
        }
    }

    /// The block holding `addr`, with `addr`'s offset in it.
    pub fn find(&self, addr: usize) -> Option<(usize, &Block)> {
        let (&base, block) = self.blocks.range(..=addr).next_back()?;
        (addr < base + 8 * block.words.len()).then_some((addr - base, block))
    }

    pub fn find_mut(&mut self, addr: usize) -> Option<&mut Block> {
        let (&base, block) = self.blocks.range_mut(..=addr).next_back()?;
        (addr < base + 8 * block.words.len()).then_some(block)
    }

    /// The word holding `addr`, if a block does, and whether the block
    /// was freed.
    pub fn word(&self, addr: usize) -> Option<(Word, Freed)> {
        let (off, b) = self.find(addr)?;
        Some((Word { host: addr - off % 8, model: b.model + (off & !7) as u64 }, b.freed))
    }

    /// The host value of the word at (aligned) host address `host`.
    pub fn get(&self, host: usize) -> Option<u64> {
        let (off, b) = self.find(host)?;
        Some(b.words[off / 8].get())
    }

    pub fn set(&self, host: usize, val: u64) -> bool {
        let Some((off, b)) = self.find(host) else { return false };
        b.words[off / 8].set(val);
        true
    }

    /// Every word of the block at `base`, as the C left them.
    pub fn contents(&self, base: usize) -> Option<(Addr, Vec<u64>)> {
        let (off, b) = self.find(base)?;
        (off == 0).then(|| (b.model, b.words.iter().map(Cell::get).collect()))
    }
}

/// `size` bytes at byte `shift` of a little-endian word.
pub(super) fn extract(word: u64, shift: usize, size: usize) -> u64 {
    let v = word >> (8 * shift);
    if size >= 8 {
        v
    } else {
        v & ((1u64 << (8 * size)) - 1)
    }
}

/// `word` with `size` bytes at byte `shift` replaced by `val`.
pub(super) fn insert(word: u64, shift: usize, size: usize, val: u64) -> u64 {
    if size >= 8 {
        return val;
    }
    let mask = ((1u64 << (8 * size)) - 1) << (8 * shift);
    (word & !mask) | ((val << (8 * shift)) & mask)
}

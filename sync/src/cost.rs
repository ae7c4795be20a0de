//! What a contention model needs from a run: the shared words one CPU's
//! code touched, in order, by cache line. Off unless a caller records
//! (`recording`); the model's memory, its locks and the epoch pin report
//! their accesses here, so the same driver code that stress runs is what
//! is recorded.

use std::cell::{Cell, RefCell};

/// One access to a cache line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    pub write: bool,
    /// The line: an address divided by 64, or a lock's or epoch's own id.
    pub line: u64,
    /// A line only the accessing CPU writes (its epoch participant): each
    /// CPU has its own copy of it.
    pub private: bool,
}

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static LOG: RefCell<Vec<Access>> = const { RefCell::new(Vec::new()) };
}

/// Run `f`, and return what it touched.
pub fn recording<R>(f: impl FnOnce() -> R) -> (R, Vec<Access>) {
    LOG.with(|l| l.borrow_mut().clear());
    ON.with(|o| o.set(true));
    let r = f();
    ON.with(|o| o.set(false));
    (r, LOG.with(|l| std::mem::take(&mut *l.borrow_mut())))
}

fn note(write: bool, line: u64, private: bool) {
    if ON.with(Cell::get) {
        LOG.with(|l| l.borrow_mut().push(Access { write, line, private }));
    }
}

/// A load of shared line `line`.
pub fn read(line: u64) {
    note(false, line, false);
}

/// A store to shared line `line`.
pub fn write(line: u64) {
    note(true, line, false);
}

/// An atomic read-modify-write of `line` (a lock word).
pub fn rmw(line: u64) {
    read(line);
    write(line);
}

/// A store to this CPU's own line `line`.
pub fn write_private(line: u64) {
    note(true, line, true);
}

/// The line of a Rust object's address.
pub fn line_of<T>(p: *const T) -> u64 {
    p as usize as u64 >> 6
}

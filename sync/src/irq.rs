//! Interrupts on simulated CPUs. A CPU thread may register a handler and
//! raise its interrupt line (a device will complete something); at any
//! later scheduling point where its interrupts are enabled, a data choice of
//! the schedule may deliver it, running the handler right there, on that
//! thread: its store buffer, its epoch participant, and whatever locks its
//! interrupted code holds. So an interrupt is recorded and replayed like any other choice,
//! and a handler that spins on a lock its own CPU holds never returns, as
//! on hardware.
//!
//! Only shuttle executions take interrupts: under std every OS thread is a
//! real CPU whose "interrupts" the model cannot place, and loom models use
//! no handlers.

use crate::watch::task_index;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

#[derive(Default)]
struct Cpu {
    handler: Option<Rc<dyn Fn()>>,
    /// A raised interrupt is taken at one enabled scheduling point in `odds`.
    odds: u64,
    /// Raised and not yet taken.
    pending: u32,
    /// `local_irq_save` depth.
    disabled: u32,
    in_irq: bool,
}

thread_local! {
    /// Per task of the running execution (shuttle runs them all on this
    /// OS thread).
    static CPUS: RefCell<Vec<Cpu>> = const { RefCell::new(Vec::new()) };
    /// Whether any interrupt is raised in this execution: most have none,
    /// and every scheduling point asks.
    static RAISED: Cell<bool> = const { Cell::new(false) };
}

fn with_me<R>(f: impl FnOnce(&mut Cpu) -> R) -> R {
    let k = task_index();
    CPUS.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() <= k {
            c.resize_with(k + 1, Cpu::default);
        }
        f(&mut c[k])
    })
}

/// Forget every handler: a new execution starts.
pub(crate) fn reset() {
    CPUS.with(|c| c.borrow_mut().clear());
    RAISED.with(|r| r.set(false));
}

/// Run `handler` for each interrupt the current thread takes; a raised
/// interrupt is taken at one in `odds` of its enabled scheduling points.
pub fn set_irq_handler(odds: u64, handler: impl Fn() + 'static) {
    let handler: Rc<dyn Fn()> = Rc::new(handler);
    with_me(|me| {
        me.handler = Some(handler);
        me.odds = odds.max(1);
    });
}

/// Raise the current thread's interrupt once: its device will complete
/// something, some time from now.
pub fn raise_irq() {
    with_me(|me| me.pending += 1);
    RAISED.with(|r| r.set(true));
}

/// The current thread takes no more interrupts (its handler's state is
/// about to go away).
pub fn clear_irq_handler() {
    with_me(|me| me.handler = None);
}

/// `in_interrupt()`: whether the current thread is running its handler.
pub fn in_interrupt() -> bool {
    // Natively no simulated interrupt ever runs.
    crate::backend::backend() != crate::backend::Backend::Native && with_me(|me| me.in_irq)
}

/// Whether thread `k` (a task index) is running its handler.
pub(crate) fn task_in_irq(k: usize) -> bool {
    CPUS.with(|c| c.borrow().get(k).is_some_and(|cpu| cpu.in_irq))
}

/// `local_irq_save`: interrupts stay off on this CPU until the guard drops
/// (`local_irq_restore`). Nests.
#[must_use = "interrupts are restored when the guard drops"]
pub struct IrqSave {
    /// Natively there are no simulated interrupts to hold off.
    counted: bool,
}

pub fn local_irq_save() -> IrqSave {
    let counted = crate::backend::backend() != crate::backend::Backend::Native;
    if counted {
        with_me(|me| me.disabled += 1);
    }
    IrqSave { counted }
}

impl Drop for IrqSave {
    fn drop(&mut self) {
        if self.counted {
            with_me(|me| me.disabled -= 1);
        }
    }
}

/// At a scheduling point: maybe take an interrupt. The handler runs with
/// interrupts off, as a hard interrupt does.
pub(crate) fn poll() {
    if !RAISED.with(Cell::get) {
        return;
    }
    let handler = with_me(|me| {
        let h = me.handler.as_ref()?;
        if me.in_irq || me.disabled > 0 || me.pending == 0 {
            return None;
        }
        // A draw of 0 takes no interrupt, so a shrinker removes them.
        if crate::choice::random_below(me.odds) != me.odds - 1 {
            return None;
        }
        me.pending -= 1;
        me.in_irq = true;
        Some(h.clone())
    });
    let Some(handler) = handler else { return };
    let place = crate::watch::enter_irq();
    handler();
    crate::watch::leave_irq(place);
    with_me(|me| me.in_irq = false);
}

//! The `c` design's one module with `unsafe`: loading the compiled series,
//! calling its glue, and the callbacks the C calls for every shim
//! primitive. C frames may be on the stack when the model ends an
//! execution, so every entry point and callback is `extern "C-unwind"` and
//! the C is built with unwind tables. The callbacks find their world in
//! `CURRENT`, which every call into the C sets first.

use super::world::World;
use crate::kernel::Kernel;
use hwmodel::{Cmd, Opcode, Range};
use libloading::Library;
use std::cell::Cell;
use std::ffi::{c_char, c_int, c_uint, c_ulong, c_void, CStr};
use std::path::Path;

type P = *mut c_void;

/// The shim's `struct shim_ops`, field for field.
#[repr(C)]
pub(super) struct ShimOps {
    read: extern "C-unwind" fn(*const c_void, c_uint) -> u64,
    write: extern "C-unwind" fn(P, c_uint, u64),
    add: extern "C-unwind" fn(P, c_uint, i64, c_int) -> u64,
    deref: extern "C-unwind" fn(*const P) -> P,
    assign: extern "C-unwind" fn(*mut P, P),
    fence: extern "C-unwind" fn(c_int),
    zalloc: extern "C-unwind" fn(usize) -> P,
    free: extern "C-unwind" fn(*const c_void, c_int),
    rwlock_new: extern "C-unwind" fn() -> u64,
    lock: extern "C-unwind" fn(*mut u64, c_int, c_int),
    unlock: extern "C-unwind" fn(*mut u64, c_int),
    warn: extern "C-unwind" fn(*const c_char, c_int, *const c_char),
    issue: extern "C-unwind" fn(*const Smmu, *const Ent, c_int),
    add_range: extern "C-unwind" fn(*mut Smmu, P, *mut Ent, c_ulong, usize, usize, usize),
    atc_inv_to_cmd: extern "C-unwind" fn(c_int, c_ulong, usize, *mut Ent),
    tick: extern "C-unwind" fn(c_uint),
    oops: extern "C-unwind" fn(usize, *const c_char),
}

static OPS: ShimOps = ShimOps {
    read: cb_read,
    write: cb_write,
    add: cb_add,
    deref: cb_deref,
    assign: cb_assign,
    fence: cb_barrier,
    zalloc: cb_zalloc,
    free: cb_free,
    rwlock_new: cb_rwlock_new,
    lock: cb_lock,
    unlock: cb_unlock,
    warn: cb_warn,
    issue: cb_issue,
    add_range: cb_add_range,
    atc_inv_to_cmd: cb_atc_inv_to_cmd,
    tick: cb_tick,
    oops: cb_oops,
};

/// The shim's `struct arm_smmu_device`.
#[repr(C)]
pub(super) struct Smmu {
    features: u32,
    id: u32,
}

pub(super) const FEAT_RANGE_INV: u32 = 1 << 0;
pub(super) const FEAT_E2H: u32 = 1 << 1;
pub(super) const FEAT_ATS: u32 = 1 << 2;

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Tlbi {
    num: u8,
    scale: u8,
    asid: u16,
    vmid: u16,
    leaf: bool,
    ttl: u8,
    tg: u8,
    addr: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Atc {
    sid: u32,
    ssid: u32,
    addr: u64,
    size: u8,
    global: bool,
}

#[repr(C)]
#[derive(Clone, Copy)]
union EntBody {
    tlbi: Tlbi,
    atc: Atc,
}

/// The shim's `struct arm_smmu_cmdq_ent`.
#[repr(C)]
#[derive(Clone, Copy)]
struct Ent {
    pub opcode: u8,
    substream_valid: bool,
    body: EntBody,
}

/// The series' command, as the model's.
fn to_cmd(e: &Ent) -> Option<Cmd> {
    let op = Opcode::from_u8(e.opcode)?;
    let cmd = Cmd::new(op);
    Some(match op {
        Opcode::AtcInv => {
            // SAFETY: an ATC_INV's fields are the `atc` member.
            let a = unsafe { e.body.atc };
            Cmd { sid: a.sid, ssid: a.ssid, ssv: e.substream_valid, addr: a.addr, atc_size: a.size, ..cmd }
        }
        Opcode::CfgiSte | Opcode::CfgiCd | Opcode::CmdSync => cmd,
        _ => {
            // SAFETY: every other opcode the driver issues is a TLBI.
            let t = unsafe { e.body.tlbi };
            let range = Range { num: t.num, scale: t.scale, tg: t.tg, ttl: t.ttl };
            Cmd { asid: t.asid, vmid: t.vmid, leaf: t.leaf, addr: t.addr, range, ..cmd }
        }
    })
}

/// The model's TLBI, into the series' command `e` (a range command's
/// fields and address).
fn set_tlbi(e: &mut Ent, c: &Cmd) {
    e.body.tlbi = Tlbi {
        num: c.range.num,
        scale: c.range.scale,
        asid: c.asid,
        vmid: c.vmid,
        leaf: c.leaf,
        ttl: c.range.ttl,
        tg: c.range.tg,
        addr: c.addr,
    };
}

/// The world the callbacks act on: set by every call into the C. Shuttle
/// runs a world's threads as coroutines of one OS thread, so every call
/// in flight on this thread is the same world's.
#[derive(Clone, Copy)]
struct Ctx {
    world: *const World,
    kernel: *const Kernel,
}

thread_local! {
    static CURRENT: Cell<Option<Ctx>> = const { Cell::new(None) };
}

/// Run `f` with the world and kernel of the call into the C in progress.
fn with<R>(f: impl FnOnce(&World, Option<&Kernel>) -> R) -> Option<R> {
    let ctx = CURRENT.with(Cell::get)?;
    // SAFETY: `Lib::enter` sets `CURRENT` from references its caller holds
    // for the whole call into the C, and a callback runs only inside such a
    // call; a world's calls on this OS thread all share one world and
    // kernel, so whichever call set it last set the same ones.
    let (world, kernel) = unsafe { (&*ctx.world, ctx.kernel.as_ref()) };
    Some(f(world, kernel))
}

/// Read `size` bytes of C memory outside the heap (a static, a stack).
fn raw_read(addr: *const c_void, size: usize) -> u64 {
    // SAFETY: the C passed this address to READ_ONCE or the like: it points
    // at `size` readable bytes of a C object.
    unsafe {
        match size {
            1 => u64::from(*(addr as *const u8)),
            2 => u64::from((addr as *const u16).read_unaligned()),
            4 => u64::from((addr as *const u32).read_unaligned()),
            _ => (addr as *const u64).read_unaligned(),
        }
    }
}

fn raw_write(addr: P, size: usize, val: u64) {
    // SAFETY: as `raw_read`, writable since the C writes it.
    unsafe {
        match size {
            1 => *(addr as *mut u8) = val as u8,
            2 => (addr as *mut u16).write_unaligned(val as u16),
            4 => (addr as *mut u32).write_unaligned(val as u32),
            _ => (addr as *mut u64).write_unaligned(val),
        }
    }
}

extern "C-unwind" fn cb_read(addr: *const c_void, size: c_uint) -> u64 {
    with(|w, k| w.read(k, addr as usize, size as usize)).flatten().unwrap_or_else(|| raw_read(addr, size as usize))
}

extern "C-unwind" fn cb_write(addr: P, size: c_uint, val: u64) {
    if !with(|w, k| w.write(k, addr as usize, size as usize, val)).unwrap_or(false) {
        raw_write(addr, size as usize, val);
    }
}

extern "C-unwind" fn cb_add(addr: P, size: c_uint, delta: i64, ordered: c_int) -> u64 {
    let size = size as usize;
    with(|w, k| w.add(k, addr as usize, size, delta, ordered != 0)).flatten().unwrap_or_else(|| {
        let old = raw_read(addr, size);
        raw_write(addr, size, old.wrapping_add_signed(delta));
        old
    })
}

extern "C-unwind" fn cb_deref(p: *const P) -> P {
    with(|w, k| w.deref(k, p as usize)).flatten().map_or_else(|| raw_read(p.cast(), 8) as P, |v| v as P)
}

extern "C-unwind" fn cb_assign(p: *mut P, v: P) {
    if !with(|w, k| w.assign(k, p as usize, v as usize)).unwrap_or(false) {
        raw_write(p.cast(), 8, v as u64);
    }
}

extern "C-unwind" fn cb_barrier(kind: c_int) {
    with(|w, k| w.barrier(k, kind));
}

extern "C-unwind" fn cb_zalloc(size: usize) -> P {
    with(|w, k| w.zalloc(k, size)).unwrap_or(0) as P
}

extern "C-unwind" fn cb_free(p: *const c_void, rcu: c_int) {
    with(|w, k| w.free(k, p as usize, rcu != 0));
}

extern "C-unwind" fn cb_rwlock_new() -> u64 {
    with(|w, k| w.rwlock_new(k)).unwrap_or(0)
}

extern "C-unwind" fn cb_lock(l: *mut u64, write: c_int, irqsave: c_int) {
    let id = raw_read(l.cast(), 8);
    with(|w, k| w.lock(k, id, write != 0, irqsave != 0));
}

extern "C-unwind" fn cb_unlock(l: *mut u64, write: c_int) {
    let id = raw_read(l.cast(), 8);
    with(|w, k| w.unlock(k, id, write != 0));
}

extern "C-unwind" fn cb_warn(func: *const c_char, line: c_int, cond: *const c_char) {
    // SAFETY: the shim's WARN_ON passes `__func__` and a string literal.
    let (func, cond) = unsafe { (CStr::from_ptr(func), CStr::from_ptr(cond)) };
    let (func, cond) = (func.to_string_lossy().into_owned(), cond.to_string_lossy().into_owned());
    with(|w, k| w.warn(k, func, line as u32, cond));
}

/// The glue caught a fault in the series' C and jumped back to its entry
/// point: the oops ends the execution as a verdict.
extern "C-unwind" fn cb_oops(addr: usize, func: *const c_char) {
    // SAFETY: the glue passes the name of a series function from its
    // table of string literals.
    let func = unsafe { CStr::from_ptr(func) }.to_string_lossy();
    let what = if addr < 4096 { "NULL pointer dereference" } else { "paging request" };
    smmu_sync::die(format!(
        "{}: oops: unable to handle kernel {what} at virtual address {addr:#x}, in {func} (the series' C)",
        hwmodel::ViolationKind::Panic.name()
    ));
}

extern "C-unwind" fn cb_issue(smmu: *const Smmu, ents: *const Ent, n: c_int) {
    // SAFETY: the shim issues `n` commands of a batch it owns, on an SMMU
    // of the world's array.
    let (id, ents) = unsafe { ((*smmu).id, std::slice::from_raw_parts(ents, n.max(0) as usize)) };
    let cmds = ents.iter().map(|e| to_cmd(e).ok_or(e.opcode)).collect();
    with(|w, k| w.issue(k, id, cmds));
}

/// `arm_smmu_cmdq_batch_add_range` in the model's Rust: each command goes
/// back into the C's batch through `glue_batch_add`.
extern "C-unwind" fn cb_add_range(
    smmu: *mut Smmu,
    cmds: P,
    cmd: *mut Ent,
    iova: c_ulong,
    size: usize,
    granule: usize,
    pgsize: usize,
) {
    // SAFETY: the C passes its SMMU and the command it is building.
    let (features, template) = unsafe { ((*smmu).features, *cmd) };
    let Some(base) = to_cmd(&template) else { return };
    let f = hwmodel::Features {
        range_inv: features & FEAT_RANGE_INV != 0,
        e2h: features & FEAT_E2H != 0,
        ats: features & FEAT_ATS != 0,
    };
    with(|w, _| {
        let add = w.series.lib.fns.batch_add;
        for c in crate::cmdq::RangeCmds::new(f, pgsize as u32, base, iova, size as u64, granule as u64) {
            let mut e = template;
            set_tlbi(&mut e, &c);
            // SAFETY: the glue's own entry point, with the C's SMMU and batch.
            unsafe { add(smmu.cast(), cmds, &mut e) };
        }
    });
}

extern "C-unwind" fn cb_atc_inv_to_cmd(ssid: c_int, iova: c_ulong, size: usize, cmd: *mut Ent) {
    let c = crate::cmdq::atc_inv_cmd(0, ssid as u32, iova, size as u64);
    let atc = Atc { sid: 0, ssid: c.ssid, addr: c.addr, size: c.atc_size, global: false };
    // SAFETY: the C passes the command it is building.
    unsafe { *cmd = Ent { opcode: Opcode::AtcInv as u8, substream_valid: c.ssv, body: EntBody { atc } } };
}

/// Outside a schedule the watchdog has no bound and the ticks only count.
extern "C-unwind" fn cb_tick(n: c_uint) {
    smmu_sync::tick_by(u64::from(n));
}

/// The glue's entry points (`shim/glue.c`), with their C signatures.
pub(super) struct Fns {
    sizeof: unsafe extern "C-unwind" fn(c_int) -> usize,
    smmu_init: unsafe extern "C-unwind" fn(P, u32, u32),
    master_init: unsafe extern "C-unwind" fn(P, P, P, *const u32, c_uint, bool) -> c_int,
    master_set_ats: unsafe extern "C-unwind" fn(P, bool),
    domain_init: unsafe extern "C-unwind" fn(P, c_int, u16, bool, c_ulong) -> c_int,
    state_init: unsafe extern "C-unwind" fn(P, P, P, u32, bool),
    attach_prepare_invs: unsafe extern "C-unwind" fn(P, P) -> c_int,
    unprepare_invs: unsafe extern "C-unwind" fn(P),
    install_new: unsafe extern "C-unwind" fn(P),
    install_old: unsafe extern "C-unwind" fn(P),
    domain_inv_range: unsafe extern "C-unwind" fn(P, c_ulong, usize, c_uint, bool),
    domain_invs: unsafe extern "C-unwind" fn(P) -> P,
    invs_counts: unsafe extern "C-unwind" fn(P, *mut usize, *mut usize, *mut usize, *mut bool),
    invs_entry:
        unsafe extern "C-unwind" fn(P, usize, *mut u32, *mut c_int, *mut u32, *mut u32, *mut c_int, *mut u8, *mut u8),
    invs_build: unsafe extern "C-unwind" fn(usize, *const P, *const c_int, *const u32, *const u32) -> P,
    invs_merge: unsafe extern "C-unwind" fn(P, P) -> P,
    invs_unref: unsafe extern "C-unwind" fn(P, P),
    invs_purge: unsafe extern "C-unwind" fn(P) -> P,
    kfree: unsafe extern "C-unwind" fn(P),
    reset_ticks: unsafe extern "C-unwind" fn(),
    batch_add: unsafe extern "C-unwind" fn(P, P, *mut Ent),
    kunit: Option<unsafe extern "C-unwind" fn(*mut Kunit)>,
}

/// The shim's `struct kunit`.
#[repr(C)]
#[derive(Default)]
pub(super) struct Kunit {
    pub passed: c_int,
    pub failed: c_int,
    pub first_failed_line: c_int,
}

/// What `glue_sizeof` measures.
#[derive(Clone, Copy)]
pub(super) enum Size {
    Smmu = 0,
    Master = 1,
    Stream = 2,
    Domain = 3,
    State = 4,
}

/// The compiled series, loaded.
pub(super) struct Lib {
    pub fns: Fns,
    _lib: Library,
}

impl Lib {
    pub fn open(path: &Path) -> Result<Lib, String> {
        let bad = |e: libloading::Error| format!("cannot load the compiled series {}: {e}", path.display());
        // SAFETY: the library is what this process compiled from the series
        // and the shim; its initialisers are the C runtime's.
        let lib = unsafe { Library::new(path) }.map_err(bad)?;
        macro_rules! sym {
            ($name:literal) => {
                // SAFETY: the glue defines this symbol with the signature
                // `Fns` gives it.
                *unsafe { lib.get(concat!($name, "\0").as_bytes()) }.map_err(bad)?
            };
        }
        let fns = Fns {
            sizeof: sym!("glue_sizeof"),
            smmu_init: sym!("glue_smmu_init"),
            master_init: sym!("glue_master_init"),
            master_set_ats: sym!("glue_master_set_ats"),
            domain_init: sym!("glue_domain_init"),
            state_init: sym!("glue_state_init"),
            attach_prepare_invs: sym!("glue_attach_prepare_invs"),
            unprepare_invs: sym!("glue_unprepare_invs"),
            install_new: sym!("glue_install_new_domain_invs"),
            install_old: sym!("glue_install_old_domain_invs"),
            domain_inv_range: sym!("glue_domain_inv_range"),
            domain_invs: sym!("glue_domain_invs"),
            invs_counts: sym!("glue_invs_counts"),
            invs_entry: sym!("glue_invs_entry"),
            invs_build: sym!("glue_invs_build"),
            invs_merge: sym!("glue_invs_merge"),
            invs_unref: sym!("glue_invs_unref"),
            invs_purge: sym!("glue_invs_purge"),
            kfree: sym!("glue_kfree"),
            reset_ticks: sym!("glue_reset_ticks"),
            batch_add: sym!("glue_batch_add"),
            // SAFETY: as above; absent when the input has no test.
            kunit: unsafe { lib.get(b"glue_kunit_invs_test\0") }.ok().map(|s| *s),
        };
        // SAFETY: the glue's initialiser, handed the callbacks' table, which
        // lives as long as the process.
        let init: unsafe extern "C-unwind" fn(*const ShimOps) = sym!("glue_init");
        unsafe { init(&OPS) };
        Ok(Lib { fns, _lib: lib })
    }
}

/// One call into the C: `CURRENT` names its world and kernel first.
pub(super) struct Call<'a> {
    lib: &'a Lib,
}

impl<'a> Call<'a> {
    pub fn new(lib: &'a Lib, world: &World, kernel: Option<&Kernel>) -> Self {
        let kernel = kernel.map_or(std::ptr::null(), |k| k as *const Kernel);
        CURRENT.with(|c| c.set(Some(Ctx { world, kernel })));
        Self { lib }
    }

    /// For the glue's plain accessors, which call no primitive back: from
    /// inside a callback too.
    pub fn plain(lib: &'a Lib) -> Self {
        Self { lib }
    }

    pub fn size(&self, what: Size) -> usize {
        // SAFETY: a pure function of the glue.
        unsafe { (self.lib.fns.sizeof)(what as c_int) }
    }

    pub fn smmu_init(&self, smmu: usize, id: u32, features: u32) {
        // SAFETY: `smmu` is a heap block of `Size::Smmu` bytes.
        unsafe { (self.lib.fns.smmu_init)(smmu as P, id, features) }
    }

    /// 0, or `-ENOMEM` if the scratch array could not be allocated.
    pub fn master_init(&self, master: usize, smmu: usize, streams: usize, sids: &[u32], ats: bool) -> i32 {
        // SAFETY: heap blocks of the glue's sizes, `sids` as long as said.
        unsafe {
            (self.lib.fns.master_init)(master as P, smmu as P, streams as P, sids.as_ptr(), sids.len() as c_uint, ats)
        }
    }

    pub fn master_set_ats(&self, master: usize, on: bool) {
        // SAFETY: a master the glue initialised.
        unsafe { (self.lib.fns.master_set_ats)(master as P, on) }
    }

    pub fn domain_init(&self, d: usize, stage: i32, tag: u16, nest_parent: bool, pgsize_bitmap: u64) -> i32 {
        // SAFETY: a heap block of `Size::Domain` bytes.
        unsafe { (self.lib.fns.domain_init)(d as P, stage, tag, nest_parent, pgsize_bitmap as c_ulong) }
    }

    pub fn state_init(&self, state: usize, master: usize, old: usize, ssid: u32, ats: bool) {
        // SAFETY: a heap block of `Size::State` bytes, a master, a domain
        // or 0.
        unsafe { (self.lib.fns.state_init)(state as P, master as P, old as P, ssid, ats) }
    }

    /// `arm_smmu_attach_prepare_invs`: 0 or `-errno`.
    pub fn attach_prepare_invs(&self, state: usize, new: usize) -> i32 {
        // SAFETY: an initialised state, a domain or 0.
        unsafe { (self.lib.fns.attach_prepare_invs)(state as P, new as P) }
    }

    pub fn unprepare_invs(&self, state: usize) {
        // SAFETY: a state `attach_prepare_invs` prepared.
        unsafe { (self.lib.fns.unprepare_invs)(state as P) }
    }

    pub fn install_new_domain_invs(&self, state: usize) {
        let _f = smmu_sync::kernel_fn("arm_smmu_install_new_domain_invs");
        // SAFETY: a prepared state.
        unsafe { (self.lib.fns.install_new)(state as P) }
    }

    pub fn install_old_domain_invs(&self, state: usize) {
        let _f = smmu_sync::kernel_fn("arm_smmu_install_old_domain_invs");
        // SAFETY: a prepared state.
        unsafe { (self.lib.fns.install_old)(state as P) }
    }

    pub fn domain_inv_range(&self, d: usize, iova: u64, size: u64, granule: u64, leaf: bool) {
        // SAFETY: a domain the glue initialised.
        unsafe { (self.lib.fns.domain_inv_range)(d as P, iova as c_ulong, size as usize, granule as c_uint, leaf) }
    }

    /// The domain's array pointer, as a plain load.
    pub fn domain_invs(&self, d: usize) -> usize {
        // SAFETY: a domain the glue initialised.
        unsafe { (self.lib.fns.domain_invs)(d as P) as usize }
    }

    /// (max_invs, num_invs, num_trashes, has_ats), as plain loads.
    pub fn counts(&self, invs: usize) -> (usize, usize, usize, bool) {
        let (mut m, mut n, mut t, mut a) = (0, 0, 0, false);
        // SAFETY: an array the C allocated (freed ones stay mapped).
        unsafe { (self.lib.fns.invs_counts)(invs as P, &mut m, &mut n, &mut t, &mut a) };
        (m, n, t, a)
    }

    /// Entry `i`: (smmu id, type, id, ssid, users, size and no-size opcodes).
    pub fn entry(&self, invs: usize, i: usize) -> (u32, i32, u32, u32, i32, u8, u8) {
        let (mut smmu, mut ty, mut id, mut ssid, mut users, mut so, mut no) = (0, 0, 0, 0, 0, 0, 0);
        // SAFETY: an array the C allocated, `i` below its max_invs.
        unsafe {
            (self.lib.fns.invs_entry)(
                invs as P, i, &mut smmu, &mut ty, &mut id, &mut ssid, &mut users, &mut so, &mut no,
            )
        };
        (smmu, ty, id, ssid, users, so, no)
    }

    /// A to_merge / to_unref array of these entries (SMMU host addresses).
    pub fn invs_build(&self, smmus: &[usize], types: &[i32], ids: &[u32], ssids: &[u32]) -> usize {
        let smmus: Vec<P> = smmus.iter().map(|&s| s as P).collect();
        // SAFETY: four arrays of the same length.
        unsafe {
            (self.lib.fns.invs_build)(smmus.len(), smmus.as_ptr(), types.as_ptr(), ids.as_ptr(), ssids.as_ptr())
                as usize
        }
    }

    pub fn invs_merge(&self, invs: usize, to_merge: usize) -> usize {
        // SAFETY: two arrays the C allocated.
        unsafe { (self.lib.fns.invs_merge)(invs as P, to_merge as P) as usize }
    }

    pub fn invs_unref(&self, invs: usize, to_unref: usize) {
        // SAFETY: two arrays the C allocated.
        unsafe { (self.lib.fns.invs_unref)(invs as P, to_unref as P) }
    }

    pub fn invs_purge(&self, invs: usize) -> usize {
        // SAFETY: an array the C allocated.
        unsafe { (self.lib.fns.invs_purge)(invs as P) as usize }
    }

    /// A new execution: the C's batch of unreported ticks starts empty.
    pub fn reset_ticks(&self) {
        // SAFETY: touches only the glue's thread-local count.
        unsafe { (self.lib.fns.reset_ticks)() }
    }

    pub fn kfree(&self, p: usize) {
        // SAFETY: a block the C allocated.
        unsafe { (self.lib.fns.kfree)(p as P) }
    }

    /// The series' own test, if the input has it: (held, failed, line of
    /// the first failure).
    pub fn kunit(&self) -> Option<(i32, i32, i32)> {
        let f = self.lib.fns.kunit?;
        let mut k = Kunit::default();
        // SAFETY: the glue's wrapper of the series' test, with its struct.
        unsafe { f(&mut k) };
        Some((k.passed, k.failed, k.first_failed_line))
    }
}

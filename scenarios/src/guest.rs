//! A guest behind a vSMMU, and the VMM that serves it.
//!
//! The guest has its own stage 1: a CD table and IO page tables in guest
//! RAM, which the SMMU walks through the nesting parent's stage 2. It
//! drives a command queue (PROD/CONS) and handles CERROR_ILL as Linux's
//! `arm_smmu_cmdq_skip_err` does, turning the command at CONS into a
//! CMD_SYNC. The VMM knows only what the uAPI gives it: the guest's queue
//! in guest memory, and the errno and `entry_num` of each
//! `IOMMU_HWPT_INVALIDATE`. Only the oracle knows which guest commands were
//! illegal and what reached the host queue.

use crate::rig::Rig;
use engine::iommufd::{HwptInvalidate, Ictx, UserMem, Vsmmu, DATA_ARM_SMMUV3, ENTRY_SIZE, USER_BASE};
use engine::{Cpu, Domain, Driver, Errno, GuestS1, Master, Mutant, Target};
use hwmodel::pgtable::{page_desc, table_desc};
use hwmodel::{Cd, Cmd, Opcode, Range, ViolationKind, Word, BLOCK, PAGE};
use smmu_sync::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

pub const GUEST_ASID: u16 = 7;
/// The guest's virtual stream ID for its one device.
const VSID: u32 = 1;
/// SSIDSIZE of the vSMMU.
const SSID_BITS: u32 = 4;
/// Guest RAM at this IPA: the CD table, the stage-1 level-2 and level-3
/// tables, then pages the guest maps for DMA, each used once.
const RAM: u64 = 0x3000_0000;
const CD_TABLE: u64 = RAM;
const S1_ROOT: u64 = RAM + PAGE;
const S1_TABLE: u64 = RAM + 2 * PAGE;
const DATA_PAGES: usize = 8;
const RAM_PAGES: usize = 3 + DATA_PAGES;
/// Entries in the guest's command queue.
const QUEUE: u64 = 256;

/// The guest IOVA of data page `k`; all guest IOVAs lie in the first
/// 2 MiB, under the one level-3 table.
fn data_iova(k: usize) -> u64 {
    (k as u64 + 1) * PAGE
}

/// A batch of `n` guest commands, with an illegal one at `bad`; `n == 0`
/// sends only the round's own unmap invalidation. With `probe`, the VMM
/// first tries each malformed or misaimed `IOMMU_HWPT_INVALIDATE` a VMM
/// could make with the queue's pending entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Array {
    pub n: usize,
    pub bad: Option<usize>,
    pub probe: bool,
}

impl Array {
    pub fn draw(n: usize, bad: Option<usize>, probe: bool) -> Self {
        Self { n, bad: bad.filter(|b| *b < n), probe }
    }
}

fn words(c: Cmd) -> [u64; 2] {
    c.encode()
}

/// Guest command number `seq`, legal: invalidations by VA (unique
/// addresses), now and then by VA of every ASID, by ASID, of the CD or of
/// every CD of its device.
fn legal(seq: u64) -> [u64; 2] {
    let addr = (256 + seq % 256) * PAGE;
    match seq % 16 {
        3 => words(Cmd { sid: VSID, ..Cmd::new(Opcode::CfgiCdAll) }),
        5 => words(Cmd { addr, leaf: true, ..Cmd::new(Opcode::TlbiNhVaa) }),
        7 => words(Cmd { sid: VSID, leaf: true, ..Cmd::new(Opcode::CfgiCd) }),
        11 => words(Cmd { asid: GUEST_ASID, ..Cmd::new(Opcode::TlbiNhAsid) }),
        _ => words(Cmd { asid: GUEST_ASID, addr, leaf: true, ..Cmd::new(Opcode::TlbiNhVa) }),
    }
}

/// How the guest invalidates data page `k` after unmapping it: by VA, by
/// VA of every ASID, or everything of its VM (TLBI_NSNH_ALL, which the
/// vSMMU must turn into TLBI_NH_ALL of the VM's VMID).
fn unmap_inv(k: usize, iova: u64) -> [u64; 2] {
    match k % 3 {
        0 => words(Cmd { asid: GUEST_ASID, addr: iova, leaf: true, ..Cmd::new(Opcode::TlbiNhVa) }),
        1 => words(Cmd { addr: iova, leaf: true, ..Cmd::new(Opcode::TlbiNhVaa) }),
        _ => words(Cmd::new(Opcode::TlbiNsnhAll)),
    }
}

/// Guest command number `seq`, illegal, and why: a host-only opcode, or a
/// legal opcode with an illegal field.
fn illegal(seq: u64) -> ([u64; 2], &'static str) {
    let va = Cmd { asid: GUEST_ASID, addr: 0x20_0000, leaf: true, ..Cmd::new(Opcode::TlbiNhVa) };
    match seq % 4 {
        0 => (words(Cmd::new(Opcode::TlbiS12Vmall)), "a host-only opcode"),
        1 => {
            let [w0, w1] = words(va);
            ([w0 | 1 << 8, w1], "a reserved bit set")
        }
        2 => (words(Cmd { sid: VSID, ssid: 1 << SSID_BITS, ..Cmd::new(Opcode::CfgiCd) }), "an SSID out of range"),
        _ => (words(Cmd { range: Range { num: 1, ..Range::default() }, ..va }), "a range NUM without a granule"),
    }
}

fn is_sync(e: [u64; 2]) -> bool {
    e[0] & 0xff == Opcode::CmdSync as u64
}

/// The guest's queue, and what the oracle knows of it.
struct Queue {
    ring: Vec<[u64; 2]>,
    /// Free-running indices; an entry lives at `index % QUEUE`.
    prod: u64,
    cons: u64,
    /// For the oracle: each queued command as the guest wrote it, and why
    /// it is illegal if it is, by index.
    truth: Vec<([u64; 2], Option<&'static str>)>,
    /// For the oracle: indices the VMM raised CERROR_ILL at.
    cerror: Vec<u64>,
    /// The oracle has checked every entry before this index, and this many
    /// of the vSMMU's issued commands.
    checked: (u64, usize),
    next_data: usize,
}

impl Queue {
    fn push(&mut self, e: [u64; 2], why: Option<&'static str>) {
        let slot = (self.prod % QUEUE) as usize;
        self.ring[slot] = e;
        self.truth.push((e, why));
        self.prod += 1;
    }

    fn at(&self, i: u64) -> [u64; 2] {
        self.ring[(i % QUEUE) as usize]
    }
}

/// The VMM's iommufd objects for the guest.
struct Objects {
    ioas: u32,
    parent: u32,
    viommu: u32,
    vdevice: u32,
    nested: u32,
}

pub struct Guest {
    pub master: Arc<Master>,
    pub parent: Arc<Domain>,
    ictx: Ictx,
    objs: Objects,
    /// The vIOMMU's driver state: for the oracle only.
    vsmmu: Arc<Vsmmu>,
    /// Whether the guest's device does ATS: its unmaps then also send
    /// ATC_INV for its vSID, which the vSMMU must aim at the physical SID.
    ats: bool,
    /// The host page behind each guest RAM page (the guest CPU's stores
    /// go there through its own stage 2).
    ram: Vec<u64>,
    queue: Mutex<Queue>,
}

fn report(drv: &Driver, kind: ViolationKind, detail: String) {
    drv.machine.oracle.report(kind, detail);
}

impl Guest {
    /// The VMM maps guest RAM into `parent`; the guest builds its stage 1,
    /// mapping each IPA of `shared` below 2 MiB at the same guest IOVA (so
    /// the host's unmaps of them matter to it); the VMM makes its iommufd
    /// objects (an IOAS, the nesting parent's HWPT, a vIOMMU, the device's
    /// vDEVICE and a nested HWPT), attaches master `m` of the rig nested
    /// over `parent` and probes the invalidation uAPI with a zero-length
    /// array.
    pub fn attach(r: &Rig, m: usize, parent: Arc<Domain>, shared: &[u64]) -> Self {
        let (drv, cpu) = (&r.drv, &r.cpu);
        let ram: Vec<u64> = (0..RAM_PAGES)
            .map(|k| drv.map(cpu, &parent, RAM + k as u64 * PAGE, PAGE).expect("setup maps fresh guest RAM"))
            .collect();
        let master = r.masters[m].clone();
        let ictx = Ictx::new();
        let objs = (|| {
            let ioas = ictx.ioas_alloc(drv)?;
            let hwpt = ictx.hwpt_alloc(drv, ioas, true, parent.tag())?;
            let viommu = ictx.viommu_alloc(drv, hwpt, master.smmu, SSID_BITS)?;
            let vdevice = ictx.vdevice_alloc(drv, viommu, VSID, master.streams[0])?;
            let nested = ictx.hwpt_nested_alloc(drv, viommu)?;
            Ok::<_, Errno>(Objects { ioas, parent: hwpt, viommu, vdevice, nested })
        })()
        .expect("setup runs without injected faults");
        let vsmmu = ictx.vsmmu(objs.viommu).expect("the vIOMMU just made");
        let queue = Queue {
            ring: vec![[0; 2]; QUEUE as usize],
            prod: 0,
            cons: 0,
            truth: Vec::new(),
            cerror: Vec::new(),
            checked: (0, 0),
            next_data: 0,
        };
        let ats = drv.machine.endpoint(master.ep).ats_capable;
        let g = Self { master, parent, ictx, objs, vsmmu, ats, ram, queue: Mutex::new(queue) };
        let mem = &drv.machine.mem;
        mem.store_as(cpu.id, g.pa(S1_ROOT), table_desc(S1_TABLE), Word::Pte);
        for &ipa in shared.iter().filter(|&&ipa| ipa < BLOCK) {
            g.store_pte(drv, cpu, ipa, page_desc(ipa));
        }
        drv.machine.write_cd(cpu.id, g.pa(CD_TABLE), 0, Some(Cd { asid: GUEST_ASID, root: S1_ROOT }));
        mem.smp_mb(cpu.id);
        r.attach(m, 0, g.target(), ats);
        // A zero-length array may have no buffer at all.
        let mut probe = g.ioctl(g.objs.viommu, 0, 0);
        if let Err(e) = g.ictx.hwpt_invalidate(drv, cpu, &mut probe, UserMem::new(&[])) {
            report(drv, ViolationKind::UapiContract, format!("the zero-length probe returned {e:?}"));
        }
        g
    }

    /// `IOMMU_HWPT_INVALIDATE` of `n` entries at `uptr`, aimed at `id`.
    fn ioctl(&self, id: u32, uptr: u64, n: u32) -> HwptInvalidate {
        HwptInvalidate {
            hwpt_id: id,
            data_uptr: uptr,
            data_type: DATA_ARM_SMMUV3,
            entry_len: ENTRY_SIZE as u32,
            entry_num: n,
            reserved: 0,
        }
    }

    /// What a VMM may get wrong in an `IOMMU_HWPT_INVALIDATE`, each with
    /// the errno the uAPI documents: a reserved field set (EOPNOTSUPP);
    /// entries with a NULL pointer or no entry length (EINVAL); an id that
    /// names no object (ENOENT); an object that is not a vIOMMU or nested
    /// HWPT (EINVAL); a nested HWPT, whose arm-smmu-v3 domain has no
    /// invalidation op (EOPNOTSUPP). Each must handle nothing and report
    /// `entry_num` 0; the VMM checks that much, the oracle that nothing
    /// reached the host queue.
    fn probe(&self, drv: &Driver, cpu: &Cpu, q: &Queue) {
        let n = (q.cons..q.prod).take_while(|&i| !is_sync(q.at(i))).count().max(1) as u32;
        let mem: Vec<u8> =
            (0..u64::from(n)).flat_map(|i| q.at(q.cons + i).into_iter().flat_map(u64::to_le_bytes)).collect();
        let o = &self.objs;
        let aimed = |id| self.ioctl(id, USER_BASE, n);
        for (what, mut cmd, errno) in [
            ("a reserved field set", HwptInvalidate { reserved: 1, ..aimed(o.viommu) }, Errno::EOPNOTSUPP),
            ("a NULL array", self.ioctl(o.viommu, 0, n), Errno::EINVAL),
            ("entry_len 0", HwptInvalidate { entry_len: 0, ..aimed(o.viommu) }, Errno::EINVAL),
            ("an id no object has", aimed(u32::MAX), Errno::ENOENT),
            ("the IOAS", aimed(o.ioas), Errno::EINVAL),
            ("the nesting parent's paging HWPT", aimed(o.parent), Errno::EINVAL),
            ("the vDEVICE", aimed(o.vdevice), Errno::EINVAL),
            ("the nested HWPT", aimed(o.nested), Errno::EOPNOTSUPP),
        ] {
            let r = self.ictx.hwpt_invalidate(drv, cpu, &mut cmd, UserMem::new(&mem));
            if r != Err(errno) || cmd.entry_num != 0 {
                let detail = format!(
                    "IOMMU_HWPT_INVALIDATE with {what} returned {r:?} and entry_num {}, not {errno:?} and 0",
                    cmd.entry_num
                );
                report(drv, ViolationKind::UapiContract, detail);
            }
        }
    }

    fn target(&self) -> Target {
        Target::Nested { parent: self.parent.clone(), s1: GuestS1::CdTable(CD_TABLE) }
    }

    /// The host address of a guest RAM IPA.
    fn pa(&self, ipa: u64) -> u64 {
        self.ram[((ipa - RAM) / PAGE) as usize] + ipa % PAGE
    }

    fn store_pte(&self, drv: &Driver, cpu: &Cpu, iova: u64, desc: u64) {
        drv.machine.mem.store_as(cpu.id, self.pa(S1_TABLE) + 8 * (iova / PAGE), desc, Word::Pte);
    }

    /// Guest IOVAs the device may DMA to: the data pages and `shared`.
    pub fn iovas(shared: &[u64]) -> Vec<u64> {
        (0..DATA_PAGES).map(data_iova).chain(shared.iter().copied().filter(|&ipa| ipa < BLOCK)).collect()
    }

    /// The VMM re-installs the guest's STE: a nested re-attach.
    pub fn reattach(&self, drv: &Driver, cpu: &Cpu) {
        let _ = drv.attach(cpu, &self.master, 0, self.target(), self.ats);
    }

    /// One round of the guest driver: map a fresh page and let the device
    /// use it; queue `a`; unmap the page and invalidate it (TLBI_NH_VA and
    /// CMD_SYNC, then ATC_INV and CMD_SYNC if the device does ATS); ring
    /// the doorbell. Once its CMD_SYNC has completed the
    /// page is gone for good, and the device tries it once more.
    pub fn round(&self, drv: &Driver, cpu: &Cpu, a: Array) {
        let mut q = self.queue.lock();
        let page = (q.next_data < DATA_PAGES).then(|| {
            q.next_data += 1;
            let k = q.next_data - 1;
            (data_iova(k), RAM + (3 + k) as u64 * PAGE)
        });
        let (ep, sid) = (self.master.ep, self.master.streams[0]);
        if let Some((iova, ipa)) = page {
            self.store_pte(drv, cpu, iova, page_desc(ipa));
            drv.machine.mem.smp_mb(cpu.id);
            drv.machine.dma(ep, sid, 0, iova);
        }
        for k in 0..a.n {
            let seq = q.prod;
            match a.bad == Some(k) {
                true => {
                    let (e, why) = illegal(seq);
                    q.push(e, Some(why));
                }
                false => q.push(legal(seq), None),
            }
        }
        if let Some((iova, _)) = page {
            self.store_pte(drv, cpu, iova, 0);
            let inv = unmap_inv(q.next_data - 1, iova);
            q.push(inv, None);
            if self.ats {
                // As Linux does: the TLBI completes before the ATC_INV, or
                // the device could refill its ATC from the IOTLB between.
                q.push(words(Cmd::sync()), None);
                q.push(words(Cmd { sid: VSID, addr: iova, atc_size: 12, ..Cmd::new(Opcode::AtcInv) }), None);
            }
        }
        q.push(words(Cmd::sync()), None);
        if a.probe {
            self.probe(drv, cpu, &q);
        }
        self.doorbell(drv, cpu, &mut q);
        self.check(drv, &mut q);
        if let Some((iova, ipa)) = page.filter(|_| q.cons == q.prod) {
            drv.machine.oracle.unmap_returned(self.parent.id, iova, self.pa(ipa), PAGE);
            drv.machine.dma(ep, sid, 0, iova);
        }
    }

    /// The VMM's trap on PROD: hand the invalidations between CONS and the
    /// next CMD_SYNC (or the ring's end) to `IOMMU_HWPT_INVALIDATE`, move
    /// CONS by `entry_num`, and complete CMD_SYNCs itself, its ioctls
    /// being synchronous. On EIO it locates the illegal command with the
    /// uAPI alone and raises CERROR_ILL there.
    fn doorbell(&self, drv: &Driver, cpu: &Cpu, q: &mut Queue) {
        while q.cons < q.prod {
            if is_sync(q.at(q.cons)) {
                q.cons += 1;
                continue;
            }
            let wrap = q.cons - q.cons % QUEUE + QUEUE;
            let end = (q.cons..q.prod.min(wrap)).find(|&i| is_sync(q.at(i))).unwrap_or(q.prod.min(wrap));
            let (r, n) = self.invalidate(drv, cpu, q, q.cons, end);
            q.cons += n;
            match r {
                Ok(()) => {}
                Err(Errno::EIO) => {
                    let at = if drv.env.mutant(Mutant::VmmCerrorAtBatchStart) {
                        q.cons
                    } else {
                        self.locate(drv, cpu, q, end)
                    };
                    self.cerror_ill(drv, q, at);
                    if drv.env.mutant(Mutant::VmmResumesAfterBatch) {
                        q.cons = q.cons.max(end);
                    }
                }
                Err(e) => {
                    let detail = format!("IOMMU_HWPT_INVALIDATE of {} entries returned {e:?}", end - q.cons);
                    report(drv, ViolationKind::UapiContract, detail);
                    return;
                }
            }
        }
    }

    /// The illegal command is in `q.cons..end`: bisect, re-submitting the
    /// first half each time. What succeeds was handled (and CONS moves
    /// past it); what fails holds an illegal command.
    fn locate(&self, drv: &Driver, cpu: &Cpu, q: &mut Queue, mut end: u64) -> u64 {
        while end - q.cons > 1 {
            let mid = q.cons + (end - q.cons) / 2;
            let (r, n) = self.invalidate(drv, cpu, q, q.cons, mid);
            q.cons += n;
            if r.is_err() {
                end = mid;
            }
        }
        q.cons
    }

    /// `IOMMU_HWPT_INVALIDATE` with the queue entries `from..to`: the
    /// result and `entry_num`.
    fn invalidate(&self, drv: &Driver, cpu: &Cpu, q: &Queue, from: u64, to: u64) -> (Result<(), Errno>, u64) {
        let mem: Vec<u8> = (from..to).flat_map(|i| q.at(i).into_iter().flat_map(u64::to_le_bytes)).collect();
        let mut cmd = self.ioctl(self.objs.viommu, USER_BASE, (to - from) as u32);
        let r = self.ictx.hwpt_invalidate(drv, cpu, &mut cmd, UserMem::new(&mem));
        (r, u64::from(cmd.entry_num))
    }

    /// The VMM raises CERROR_ILL with CONS at `at`; the guest's handler
    /// (`arm_smmu_cmdq_skip_err`) turns that command into a CMD_SYNC so
    /// the queue moves on. Blamed on the VMM only when the kernel would
    /// have taken the command: a legal command the kernel refuses is lost
    /// to the guest too, but what shows is the translation it left stale.
    fn cerror_ill(&self, drv: &Driver, q: &mut Queue, at: u64) {
        q.cons = at;
        q.cerror.push(at);
        if q.truth[at as usize].1.is_none() && self.vsmmu.accepts(drv, q.truth[at as usize].0) {
            let detail = format!("CERROR_ILL raised at guest command {at}, which is legal: the guest skips it");
            report(drv, ViolationKind::CerrorAtLegalCommand, detail);
        }
        let slot = (at % QUEUE) as usize;
        q.ring[slot] = words(Cmd::sync());
    }

    /// The oracle, over the commands consumed since the last check: each
    /// legal one reached the host queue exactly once, and no illegal one
    /// did (it was reflected instead).
    fn check(&self, drv: &Driver, q: &mut Queue) {
        let issued = self.vsmmu.issued.lock();
        let mut counts: HashMap<[u64; 2], i64> = HashMap::new();
        for e in &issued[q.checked.1..] {
            *counts.entry(*e).or_default() += 1;
        }
        let mut lost = Vec::new();
        for i in q.checked.0..q.cons {
            match q.truth[i as usize] {
                (e, None) if !is_sync(e) && !q.cerror.contains(&i) => {
                    let c = counts.entry(e).or_default();
                    *c -= 1;
                    if *c < 0 {
                        lost.push(i);
                    }
                }
                (_, Some(why)) if !q.cerror.contains(&i) => {
                    let detail = format!("guest command {i} ({why}) reached the host queue instead of CERROR_ILL");
                    report(drv, ViolationKind::IllegalCommand, detail);
                }
                _ => {}
            }
        }
        if let Some(i) = lost.first() {
            let detail = format!("guest commands {lost:?} never reached the host queue (first: {i})");
            report(drv, ViolationKind::GuestCommandLost, detail);
        }
        if let Some((e, c)) = counts.iter().find(|(_, c)| **c > 0) {
            let detail =
                format!("guest command {:?} reached the host queue {c} more times than queued", Cmd::decode(*e));
            report(drv, ViolationKind::GuestCommandLost, detail);
        }
        q.checked = (q.cons, issued.len());
    }
}

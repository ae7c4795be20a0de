//! The iommufd paths: every bad-input rule with its errno and the
//! resulting entry_num, the object layer's lookups and dependencies, the
//! guest opcodes the vSMMU converts, and what a good array or queue does.

use engine::iommufd::*;
use engine::{Driver, Engine, Env, Errno, Mutant};
use hwmodel::{Cmd, Event, Features, Machine, Opcode, Range, SmmuId, ViolationKind, PAGE};
use std::sync::Arc;

/// A driver, and a VMM's objects: an IOAS with four contiguous guest
/// pages at 0x10000, the nesting parent's HWPT (VMID 9), a vIOMMU on
/// SMMU 0, the vDEVICE that is physical SID 5 behind vSID 1, and a nested
/// HWPT.
struct World {
    drv: Driver,
    ictx: Ictx,
    ioas: u32,
    parent: u32,
    viommu: u32,
    vdevice: u32,
    nested: u32,
}

fn driver(mutant: Option<Mutant>) -> Driver {
    let mut m = Machine::new(2);
    m.add_smmu(Features::default());
    Driver::new(m, Env::with_mutant(mutant), Engine::Fenced)
}

fn world(mutant: Option<Mutant>) -> World {
    let (drv, ictx) = (driver(mutant), Ictx::new());
    let ioas = ictx.ioas_alloc(&drv).unwrap();
    ictx.ioas_map(ioas, 0x10000, 0x8000_0000, 4 * PAGE).unwrap();
    let parent = ictx.hwpt_alloc(&drv, ioas, true, 9).unwrap();
    let viommu = ictx.viommu_alloc(&drv, parent, SmmuId(0), 4).unwrap();
    let vdevice = ictx.vdevice_alloc(&drv, viommu, 1, 5).unwrap();
    let nested = ictx.hwpt_nested_alloc(&drv, viommu).unwrap();
    World { drv, ictx, ioas, parent, viommu, vdevice, nested }
}

impl World {
    fn vsmmu(&self) -> Arc<Vsmmu> {
        self.ictx.vsmmu(self.viommu).unwrap()
    }

    fn issued(&self) -> usize {
        self.vsmmu().issued.lock().len()
    }

    /// `IOMMU_HWPT_INVALIDATE` at `id` of `n` entries of `len` bytes in
    /// `mem`: the result and `entry_num`.
    fn invalidate_at(&self, id: u32, mem: &[u8], len: u32, n: u32) -> (Result<(), Errno>, u32) {
        let mut cmd = HwptInvalidate {
            hwpt_id: id,
            data_uptr: USER_BASE,
            data_type: DATA_ARM_SMMUV3,
            entry_len: len,
            entry_num: n,
            reserved: 0,
        };
        self.ioctl(&mut cmd, mem)
    }

    fn ioctl(&self, cmd: &mut HwptInvalidate, mem: &[u8]) -> (Result<(), Errno>, u32) {
        let r = self.ictx.hwpt_invalidate(&self.drv, &self.drv.cpu(0), cmd, UserMem::new(mem));
        (r, cmd.entry_num)
    }

    fn invalidate(&self, mem: &[u8], len: u32, n: u32) -> (Result<(), Errno>, u32) {
        self.invalidate_at(self.viommu, mem, len, n)
    }

    fn kinds(&self) -> Vec<ViolationKind> {
        self.drv.machine.oracle.violations().iter().map(|v| v.kind).collect()
    }
}

/// `n` guest TLBI_NH_VA commands (VMID left 0 for the host to fill), with an
/// illegal CMD_SYNC at `bad` if given; entries of `len` bytes.
fn user_mem(n: usize, bad: Option<usize>, len: usize) -> Vec<u8> {
    let mut mem = Vec::new();
    for k in 0..n {
        let op = if Some(k) == bad { Opcode::CmdSync } else { Opcode::TlbiNhVa };
        let words = Cmd { asid: 3, addr: k as u64 * PAGE, ..Cmd::new(op) }.encode();
        let mut e = [words[0].to_le_bytes(), words[1].to_le_bytes()].concat();
        e.resize(len, 0);
        mem.extend_from_slice(&e);
    }
    mem
}

/// Guest commands as a user array's bytes.
fn bytes(cmds: &[Cmd]) -> Vec<u8> {
    cmds.iter().flat_map(|c| c.encode()).flat_map(u64::to_le_bytes).collect()
}

#[test]
fn a_long_valid_array_is_handled_in_batches() {
    let w = world(None);
    w.drv.machine.oracle.keep_full_trace();
    let mem = user_mem(150, None, 16);
    assert_eq!(w.invalidate(&mem, 16, 150), (Ok(()), 150));
    assert_eq!(w.issued(), 150);
    assert!(w.kinds().is_empty());
    // What reached the host queue: batches of at most CMDQ_BATCH_ENTRIES - 1
    // commands, each closed by its CMD_SYNC.
    let ops: Vec<Opcode> = (w.drv.machine.oracle.trace_tail().into_iter())
        .filter_map(|s| match s.event {
            Event::Submit { cmd, .. } => Some(cmd.op),
            _ => None,
        })
        .collect();
    let batches: Vec<usize> = ops.split(|op| *op == Opcode::CmdSync).map(<[Opcode]>::len).collect();
    assert_eq!(batches, [63, 63, 24, 0], "{ops:?}");
}

#[test]
fn wrong_type_is_einval_with_nothing_handled() {
    let w = world(None);
    let mem = user_mem(3, None, 16);
    let mut cmd = HwptInvalidate {
        hwpt_id: w.viommu,
        data_uptr: USER_BASE,
        data_type: 7,
        entry_len: 16,
        entry_num: 3,
        reserved: 0,
    };
    assert_eq!(w.ioctl(&mut cmd, &mem), (Err(Errno::EINVAL), 0));
}

#[test]
fn zero_length_array_probes_and_succeeds_even_without_a_buffer() {
    let w = world(None);
    let mut probe = HwptInvalidate {
        hwpt_id: w.viommu,
        data_uptr: 0,
        data_type: DATA_ARM_SMMUV3,
        entry_len: 16,
        entry_num: 0,
        reserved: 0,
    };
    assert_eq!(w.ioctl(&mut probe, &[]), (Ok(()), 0));
    let w = world(Some(Mutant::VsmmuZeroLengthEinval));
    assert_eq!(w.invalidate(&[], 16, 0), (Err(Errno::EINVAL), 0), "the mutant restores the old bug");
}

#[test]
fn shorter_user_entries_are_zero_filled() {
    let mem = user_mem(1, None, 16);
    let mut dst = [0xffu8; ENTRY_SIZE];
    let a =
        UserArray { ty: DATA_ARM_SMMUV3, mem: UserMem::new(&mem[..12]), uptr: USER_BASE, entry_len: 12, entry_num: 1 };
    copy_entry(&mut dst, &a, DATA_ARM_SMMUV3, 0).unwrap();
    assert_eq!(&dst[..12], &mem[..12]);
    assert_eq!(&dst[12..], &[0; 4]);
}

#[test]
fn nonzero_padding_is_e2big_and_fails_the_batch() {
    let w = world(None);
    let mut mem = user_mem(4, None, 24);
    mem[2 * 24 + 20] = 1;
    assert_eq!(w.invalidate(&mem, 24, 4), (Err(Errno::E2BIG), 0));
    assert_eq!(w.issued(), 0);
}

#[test]
fn a_short_user_buffer_is_efault() {
    let w = world(None);
    let mem = user_mem(2, None, 16);
    assert_eq!(w.invalidate(&mem, 16, 3), (Err(Errno::EFAULT), 0));
}

#[test]
fn an_illegal_command_fails_its_whole_batch_and_entry_num_names_the_batch_start() {
    let w = world(None);
    let mem = user_mem(100, Some(70), 16);
    assert_eq!(w.invalidate(&mem, 16, 100), (Err(Errno::EIO), 63), "the first batch was issued, not the second");
    assert_eq!(w.issued(), 63);
    assert!(w.kinds().is_empty());
}

fn nh_va() -> Cmd {
    Cmd { asid: 3, addr: 0x5000, leaf: true, ..Cmd::new(Opcode::TlbiNhVa) }
}

/// Legal opcodes with illegal fields, each as the guest might send it.
fn illegal_fields() -> Vec<(&'static str, [u64; 2])> {
    let [w0, w1] = nh_va().encode();
    vec![
        ("reserved bit in word 0", [w0 | 1 << 9, w1]),
        ("ATC span bits on a TLBI", [w0, w1 | 12 << 6]),
        ("address on TLBI_NH_ASID", Cmd { asid: 3, addr: 0x5000, ..Cmd::new(Opcode::TlbiNhAsid) }.encode()),
        ("SSID beyond SSIDSIZE", Cmd { sid: 1, ssid: 16, ..Cmd::new(Opcode::CfgiCd) }.encode()),
        (
            "ATC_INV SSID beyond SSIDSIZE",
            Cmd { sid: 1, ssid: 16, ssv: true, atc_size: 12, ..Cmd::new(Opcode::AtcInv) }.encode(),
        ),
        ("range NUM without TG", Cmd { range: Range { num: 3, ..Range::default() }, ..nh_va() }.encode()),
        ("range on an SMMU without RANGE_INV", Cmd { range: Range { tg: 1, ..Range::default() }, ..nh_va() }.encode()),
        ("ATC_INV span below 4 KiB", Cmd { sid: 1, atc_size: 3, ..Cmd::new(Opcode::AtcInv) }.encode()),
        ("an ASID on TLBI_NH_VAA", Cmd { asid: 3, addr: 0x5000, ..Cmd::new(Opcode::TlbiNhVaa) }.encode()),
        ("fields on TLBI_NSNH_ALL", Cmd { vmid: 3, ..Cmd::new(Opcode::TlbiNsnhAll) }.encode()),
        ("an SSID on CFGI_CD_ALL", Cmd { sid: 1, ssid: 2, ..Cmd::new(Opcode::CfgiCdAll) }.encode()),
    ]
}

#[test]
fn legal_opcodes_with_illegal_fields_fail_like_illegal_opcodes() {
    for (what, raw) in illegal_fields() {
        let w = world(None);
        let mem: Vec<u8> = raw.into_iter().flat_map(u64::to_le_bytes).collect();
        assert_eq!(w.invalidate(&mem, 16, 1), (Err(Errno::EIO), 0), "{what}");
        assert_eq!(w.issued(), 0, "{what}");
        let w = world(Some(Mutant::VsmmuIllegalFieldAccepted));
        assert_eq!(w.invalidate(&mem, 16, 1).0, Ok(()), "{what}: the mutant lets it through");
    }
    let w = world(None);
    let ssid_in_range = bytes(&[Cmd { sid: 1, ssid: 15, ..Cmd::new(Opcode::CfgiCd) }]);
    assert_eq!(w.invalidate(&ssid_in_range, 16, 1), (Ok(()), 1));
}

/// The commands that reached SMMU 0's queue, in order.
fn submitted(drv: &Driver) -> Vec<Cmd> {
    let steps = drv.machine.oracle.trace_tail();
    steps.iter().filter_map(|s| if let Event::Submit { cmd, .. } = s.event { Some(cmd) } else { None }).collect()
}

#[test]
fn the_host_substitutes_its_vmid_and_the_physical_sid() {
    let w = world(None);
    let mem = bytes(&[Cmd { vmid: 77, ..nh_va() }, Cmd { sid: 1, ssid: 2, ..Cmd::new(Opcode::CfgiCd) }]);
    assert_eq!(w.invalidate(&mem, 16, 2), (Ok(()), 2));
    let host = submitted(&w.drv);
    assert_eq!(host[0], Cmd { vmid: 9, ..nh_va() }, "the nesting parent's VMID, not the guest's 77");
    assert_eq!(host[1].sid, 5, "vSID 1 is physical SID 5");
    assert_eq!(host[2].op, Opcode::CmdSync);
    let w = world(Some(Mutant::VsmmuGuestVmidPassedThrough));
    assert_eq!(w.invalidate(&mem, 16, 2).0, Ok(()));
    assert_eq!(submitted(&w.drv)[0].vmid, 77, "the mutant passes the guest's VMID on");
}

#[test]
fn guest_tlbi_nsnh_all_becomes_nh_all_with_the_vmid() {
    let w = world(None);
    assert_eq!(w.invalidate(&bytes(&[Cmd::new(Opcode::TlbiNsnhAll)]), 16, 1), (Ok(()), 1));
    assert_eq!(submitted(&w.drv)[0], Cmd { vmid: 9, ..Cmd::new(Opcode::TlbiNhAll) }, "only this VM's entries");
    let w = world(Some(Mutant::VsmmuNsnhAllRefused));
    assert_eq!(w.invalidate(&bytes(&[Cmd::new(Opcode::TlbiNsnhAll)]), 16, 1), (Err(Errno::EIO), 0));
}

#[test]
fn guest_tlbi_nh_vaa_and_cfgi_cd_all_are_converted() {
    let w = world(None);
    let vaa = Cmd { addr: 0x7000, leaf: true, ..Cmd::new(Opcode::TlbiNhVaa) };
    let cd_all = Cmd { sid: 1, ..Cmd::new(Opcode::CfgiCdAll) };
    assert_eq!(w.invalidate(&bytes(&[vaa, cd_all]), 16, 2), (Ok(()), 2));
    let host = submitted(&w.drv);
    assert_eq!(host[0], Cmd { vmid: 9, ..vaa });
    assert_eq!(host[1], Cmd { sid: 5, ..cd_all });
    let unknown = bytes(&[Cmd { sid: 2, ..cd_all }]);
    assert_eq!(w.invalidate(&unknown, 16, 1), (Err(Errno::EIO), 0), "vSID 2 has no vDEVICE");
}

#[test]
fn reporting_unissued_commands_is_a_violation() {
    let w = world(Some(Mutant::VsmmuReportUnissued));
    let mem = user_mem(100, Some(70), 16);
    assert_eq!(w.invalidate(&mem, 16, 100), (Err(Errno::EIO), 70));
    assert_eq!(w.kinds(), [ViolationKind::UnissuedReported]);
}

#[test]
fn unknown_vsid_and_host_only_opcodes_are_illegal() {
    let w = world(None);
    for cmd in
        [Cmd { sid: 2, atc_size: 12, ..Cmd::new(Opcode::AtcInv) }, Cmd { vmid: 1, ..Cmd::new(Opcode::TlbiS12Vmall) }]
    {
        assert_eq!(w.invalidate(&bytes(&[cmd]), 16, 1), (Err(Errno::EIO), 0), "{cmd:?}");
    }
}

#[test]
fn hwpt_invalidate_checks_run_in_the_cores_order_and_report_nothing_handled() {
    let w = world(None);
    let mem = user_mem(2, None, 16);
    let base = HwptInvalidate {
        hwpt_id: w.viommu,
        data_uptr: USER_BASE,
        data_type: DATA_ARM_SMMUV3,
        entry_len: 16,
        entry_num: 2,
        reserved: 0,
    };
    for (what, mut cmd, errno) in [
        ("reserved", HwptInvalidate { reserved: 1, hwpt_id: 999, data_uptr: 0, ..base }, Errno::EOPNOTSUPP),
        ("NULL data_uptr", HwptInvalidate { data_uptr: 0, hwpt_id: 999, ..base }, Errno::EINVAL),
        ("entry_len 0", HwptInvalidate { entry_len: 0, hwpt_id: 999, ..base }, Errno::EINVAL),
        ("unknown id", HwptInvalidate { hwpt_id: 999, ..base }, Errno::ENOENT),
        ("the IOAS", HwptInvalidate { hwpt_id: w.ioas, ..base }, Errno::EINVAL),
        ("a paging HWPT", HwptInvalidate { hwpt_id: w.parent, ..base }, Errno::EINVAL),
        ("a vDEVICE", HwptInvalidate { hwpt_id: w.vdevice, ..base }, Errno::EINVAL),
        ("a nested HWPT without the op", HwptInvalidate { hwpt_id: w.nested, ..base }, Errno::EOPNOTSUPP),
    ] {
        assert_eq!(w.ioctl(&mut cmd, &mem), (Err(errno), 0), "{what}");
    }
    assert_eq!(w.issued(), 0);
    let w = world(Some(Mutant::HwptInvalidateAnyObjectType));
    assert_eq!(w.invalidate_at(w.parent, &mem, 16, 2), (Ok(()), 2), "the mutant hands a paging HWPT to the op");
}

#[test]
fn destroy_is_enoent_for_no_object_and_ebusy_while_another_depends_on_it() {
    let w = world(None);
    assert_eq!(w.ictx.destroy(&w.drv, 999), Err(Errno::ENOENT));
    for id in [w.ioas, w.parent, w.viommu] {
        assert_eq!(w.ictx.destroy(&w.drv, id), Err(Errno::EBUSY), "object {id} has dependents");
    }
    assert_eq!(w.ictx.destroy(&w.drv, w.vdevice), Ok(()));
    let atc_inv = bytes(&[Cmd { sid: 1, atc_size: 12, ..Cmd::new(Opcode::AtcInv) }]);
    assert_eq!(w.invalidate(&atc_inv, 16, 1), (Err(Errno::EIO), 0), "vSID 1 went with its vDEVICE");
    assert_eq!(w.ictx.destroy(&w.drv, w.viommu), Err(Errno::EBUSY), "the nested HWPT still depends on it");
    for id in [w.nested, w.viommu, w.parent, w.ioas] {
        assert_eq!(w.ictx.destroy(&w.drv, id), Ok(()), "object {id}");
    }
    assert!(w.ictx.objects().is_empty());
}

#[test]
fn a_vdevice_id_is_one_devices_and_a_viommu_needs_a_nesting_parent() {
    let w = world(None);
    assert_eq!(w.ictx.vdevice_alloc(&w.drv, w.viommu, 1, 6), Err(Errno::EEXIST));
    assert_eq!(w.ictx.vdevice_alloc(&w.drv, w.parent, 2, 6), Err(Errno::ENOENT), "not a vIOMMU");
    let plain = w.ictx.hwpt_alloc(&w.drv, w.ioas, false, 3).unwrap();
    assert_eq!(w.ictx.viommu_alloc(&w.drv, plain, SmmuId(0), 4), Err(Errno::EINVAL));
    assert_eq!(w.ictx.hwpt_alloc(&w.drv, w.viommu, true, 3), Err(Errno::ENOENT), "an HWPT needs an IOAS");
}

fn queue(w: &World, ty: u32, index: u32, iova: u64, length: u64) -> HwQueueAlloc {
    HwQueueAlloc { flags: 0, viommu_id: w.viommu, ty, index, nesting_parent_iova: iova, length }
}

const T: u32 = HW_QUEUE_TYPE_TEGRA241_CMDQV;

/// `cmd` fails with `errno`, leaves no object and pins nothing: the memory
/// unmaps after.
fn refused(cmd: impl Fn(&World) -> HwQueueAlloc, errno: Errno) {
    let w = world(None);
    let before = w.ictx.objects();
    assert_eq!(w.ictx.hw_queue_alloc(&w.drv, cmd(&w)), Err(errno), "{:?}", cmd(&w));
    assert_eq!(w.ictx.objects(), before, "a failed allocation leaves no object: {:?}", cmd(&w));
    assert_eq!(w.ictx.ioas_unmap(&w.drv, w.ioas, 0x10000, 4 * PAGE), Ok(()), "it pins nothing: {:?}", cmd(&w));
}

#[test]
fn hw_queue_rule_1_nonzero_flags_or_default_type_is_eopnotsupp() {
    refused(|w| HwQueueAlloc { flags: 1, ..queue(w, T, 0, 0x10000, PAGE) }, Errno::EOPNOTSUPP);
    refused(|w| queue(w, HW_QUEUE_TYPE_DEFAULT, 0, 0x10000, PAGE), Errno::EOPNOTSUPP);
}

#[test]
fn hw_queue_rule_2_zero_length_is_einval() {
    refused(|w| queue(w, T, 0, 0x10000, 0), Errno::EINVAL);
}

#[test]
fn hw_queue_rule_3_iova_plus_length_overflowing_is_eoverflow() {
    refused(|w| queue(w, T, 0, u64::MAX - PAGE + 1, 2 * PAGE), Errno::EOVERFLOW);
}

#[test]
fn hw_queue_rule_4_unknown_viommu_or_another_objects_id_is_enoent() {
    refused(|w| HwQueueAlloc { viommu_id: 999, ..queue(w, T, 0, 0x10000, PAGE) }, Errno::ENOENT);
    refused(|w| HwQueueAlloc { viommu_id: w.parent, ..queue(w, T, 0, 0x10000, PAGE) }, Errno::ENOENT);
}

#[test]
fn hw_queue_rule_5_a_type_the_viommu_has_no_queue_size_for_is_eopnotsupp() {
    refused(|w| queue(w, 7, 0, 0x10000, PAGE), Errno::EOPNOTSUPP);
}

#[test]
fn hw_queue_rule_6_an_unaligned_iova_is_erange_as_seed_004_computes_the_offset() {
    // PAGE_ALIGN rounds up: iova - PAGE_ALIGN(iova) wraps for any unaligned
    // IOVA, and the overflow checks that follow return ERANGE.
    refused(|w| queue(w, T, 0, 0x10800, PAGE), Errno::ERANGE);
    refused(|w| queue(w, T, 0, 0x10ff8, 8), Errno::ERANGE);
}

#[test]
fn hw_queue_rule_7_unmapped_memory_is_enoent() {
    refused(|w| queue(w, T, 0, 0x12000, 4 * PAGE), Errno::ENOENT);
}

#[test]
fn hw_queue_rule_8_non_contiguous_backing_is_efault() {
    let w = world(None);
    w.ictx.ioas_map(w.ioas, 0x20000, 0x9000_0000, PAGE).unwrap();
    w.ictx.ioas_map(w.ioas, 0x21000, 0xa000_0000, PAGE).unwrap();
    assert_eq!(w.ictx.hw_queue_alloc(&w.drv, queue(&w, T, 0, 0x20000, 2 * PAGE)), Err(Errno::EFAULT));
    assert_eq!(w.ictx.ioas_unmap(&w.drv, w.ioas, 0x20000, 2 * PAGE), Ok(()), "unpinned on the way out");
}

#[test]
fn hw_queue_rule_9_the_drivers_index_rules_come_after_pinning() {
    refused(|w| queue(w, T, MAX_QUEUES, 0x10000, PAGE), Errno::EINVAL);
    refused(|w| queue(w, T, 1, 0x10000, PAGE), Errno::EIO);
    let w = world(None);
    let q = w.ictx.hw_queue_alloc(&w.drv, queue(&w, T, 0, 0x10000, 2 * PAGE)).unwrap();
    assert_eq!(q.base_pa, 0x8000_0000);
    assert_eq!(w.ictx.hw_queue_alloc(&w.drv, queue(&w, T, 0, 0x12000, PAGE)), Err(Errno::EEXIST), "index taken");
    assert_eq!(w.ictx.ioas_unmap(&w.drv, w.ioas, 0x12000, 2 * PAGE), Ok(()), "the refused queue pinned nothing");
    assert_eq!(w.ictx.ioas_unmap(&w.drv, w.ioas, 0x10000, PAGE), Err(Errno::EBUSY), "the live queue's stay pinned");
}

#[test]
fn hw_queue_checks_run_in_seed_004s_order() {
    // Each command breaks two rules; the earlier one answers.
    refused(|w| HwQueueAlloc { flags: 1, ..queue(w, T, 0, 0x10000, 0) }, Errno::EOPNOTSUPP);
    refused(|w| HwQueueAlloc { viommu_id: 999, ..queue(w, T, 0, u64::MAX, 2) }, Errno::EOVERFLOW);
    refused(|w| HwQueueAlloc { viommu_id: 999, ..queue(w, 7, 0, 0x10000, PAGE) }, Errno::ENOENT);
    refused(|w| queue(w, 7, 0, 0x10800, PAGE), Errno::EOPNOTSUPP);
    refused(|w| queue(w, T, 5, 0x10800, PAGE), Errno::ERANGE);
    refused(|w| queue(w, T, 5, 0x40000, PAGE), Errno::ENOENT);
}

#[test]
fn hw_queue_destroy_while_depended_is_ebusy() {
    let w = world(None);
    let q0 = w.ictx.hw_queue_alloc(&w.drv, queue(&w, T, 0, 0x10000, 2 * PAGE)).unwrap();
    let q1 = w.ictx.hw_queue_alloc(&w.drv, queue(&w, T, 1, 0x12000, PAGE)).unwrap();
    assert_eq!(w.ictx.destroy(&w.drv, q0.id), Err(Errno::EBUSY), "queue 1 depends on queue 0");
    assert_eq!(w.ictx.destroy(&w.drv, w.viommu), Err(Errno::EBUSY), "the queues depend on the vIOMMU");
    assert_eq!(w.ictx.destroy(&w.drv, q1.id), Ok(()));
    assert_eq!(w.ictx.destroy(&w.drv, q0.id), Ok(()));
    assert_eq!(w.ictx.ioas_unmap(&w.drv, w.ioas, 0x10000, 4 * PAGE), Ok(()), "both unpinned");
    let w = world(Some(Mutant::HwQueueDestroyIgnoresDependency));
    let q0 = w.ictx.hw_queue_alloc(&w.drv, queue(&w, T, 0, 0x10000, 2 * PAGE)).unwrap();
    w.ictx.hw_queue_alloc(&w.drv, queue(&w, T, 1, 0x12000, PAGE)).unwrap();
    assert_eq!(w.ictx.destroy(&w.drv, q0.id), Ok(()), "the mutant destroys it anyway");
}

#[test]
fn hw_queue_index_rule_looks_at_the_slot_below_and_destroyed_slots_come_back() {
    let w = world(None);
    let q0 = w.ictx.hw_queue_alloc(&w.drv, queue(&w, T, 0, 0x10000, PAGE)).unwrap();
    let q1 = w.ictx.hw_queue_alloc(&w.drv, queue(&w, T, 1, 0x11000, PAGE)).unwrap();
    w.ictx.destroy(&w.drv, q1.id).unwrap();
    w.ictx.destroy(&w.drv, q0.id).unwrap();
    let q0 = w.ictx.hw_queue_alloc(&w.drv, queue(&w, T, 0, 0x10000, PAGE)).expect("index 0 is free again");
    let q1 = w.ictx.hw_queue_alloc(&w.drv, queue(&w, T, 1, 0x11000, PAGE)).expect("index 1 sits on index 0");
    w.ictx.destroy(&w.drv, q1.id).unwrap();
    assert_eq!(w.ictx.destroy(&w.drv, q0.id), Ok(()));
    assert_eq!(w.ictx.hw_queue_alloc(&w.drv, queue(&w, T, 1, 0x11000, PAGE)), Err(Errno::EIO), "nothing below");
}

#[test]
fn pinned_queue_memory_cannot_be_unmapped_until_destroy() {
    let w = world(None);
    let q = w.ictx.hw_queue_alloc(&w.drv, queue(&w, T, 0, 0x11000, PAGE)).unwrap();
    assert_eq!(q.base_pa, 0x8000_1000);
    assert_eq!(w.ictx.ioas_unmap(&w.drv, w.ioas, 0x11000, PAGE), Err(Errno::EBUSY));
    w.ictx.hw_read(&w.drv, &q);
    w.ictx.destroy(&w.drv, q.id).unwrap();
    assert_eq!(w.ictx.ioas_unmap(&w.drv, w.ioas, 0x10000, 4 * PAGE), Ok(()));
    assert!(w.kinds().is_empty());
    let w = world(Some(Mutant::HwQueueUnpinned));
    let q = w.ictx.hw_queue_alloc(&w.drv, queue(&w, T, 0, 0x10000, PAGE)).unwrap();
    assert_eq!(w.ictx.ioas_unmap(&w.drv, w.ioas, 0x10000, PAGE), Ok(()), "nothing pinned it");
    w.ictx.hw_read(&w.drv, &q);
    assert_eq!(w.kinds(), [ViolationKind::QueueUnmapped, ViolationKind::QueueUnmapped]);
}

/// Every allocation of the object layer and of HW queue allocation fails
/// in turn (fail_nth): the failing call returns ENOMEM and leaves every
/// object, pin and dependency as it was; the calls before it stand.
#[test]
fn fail_nth_over_objects_and_hw_queue_alloc() {
    let mut injected = Vec::new();
    for n in 1.. {
        let (drv, ictx) = (driver(None), Ictx::new());
        drv.env.set_fail_nth(n);
        let queue_at = |viommu, index, iova| HwQueueAlloc {
            flags: 0,
            viommu_id: viommu,
            ty: T,
            index,
            nesting_parent_iova: iova,
            length: PAGE,
        };
        // Each step, given the ids so far; the queues' pages are 0x10000
        // and 0x11000.
        type Step<'a> = Box<dyn Fn(&[u32]) -> Result<u32, Errno> + 'a>;
        let steps: Vec<Step> = vec![
            Box::new(|_| {
                let ioas = ictx.ioas_alloc(&drv)?;
                ictx.ioas_map(ioas, 0x10000, 0x8000_0000, 4 * PAGE)?;
                Ok(ioas)
            }),
            Box::new(|ids| ictx.hwpt_alloc(&drv, ids[0], true, 9)),
            Box::new(|ids| ictx.viommu_alloc(&drv, ids[1], SmmuId(0), 4)),
            Box::new(|ids| ictx.vdevice_alloc(&drv, ids[2], 1, 5)),
            Box::new(|ids| ictx.hwpt_nested_alloc(&drv, ids[2])),
            Box::new(|ids| ictx.hw_queue_alloc(&drv, queue_at(ids[2], 0, 0x10000)).map(|q| q.id)),
            Box::new(|ids| ictx.hw_queue_alloc(&drv, queue_at(ids[2], 1, 0x11000)).map(|q| q.id)),
        ];
        let mut ids = Vec::new();
        let mut failed = None;
        for (k, step) in steps.iter().enumerate() {
            let before = ictx.objects();
            match step(&ids) {
                Ok(id) => ids.push(id),
                Err(e) => {
                    assert_eq!(e, Errno::ENOMEM, "allocation {n}, step {k}");
                    assert_eq!(ictx.objects(), before, "allocation {n} failed step {k} and left an object behind");
                    failed = Some(k);
                    break;
                }
            }
        }
        let Some(k) = failed else { break };
        injected.push(drv.env.injected().expect("the failure landed somewhere"));
        if k >= 5 {
            let page = 0x10000 + (k as u64 - 5) * PAGE;
            assert_eq!(ictx.ioas_unmap(&drv, ids[0], page, PAGE), Ok(()), "allocation {n}: the failed queue's page");
        }
    }
    for site in [engine::FaultSite::IommufdObject, engine::FaultSite::HwQueueAccess] {
        assert!(injected.contains(&site), "{site:?} was swept: {injected:?}");
    }
    assert_eq!(injected.len(), 9, "seven objects and two accesses: {injected:?}");
}

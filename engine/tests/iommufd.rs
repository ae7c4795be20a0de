//! The iommufd vSMMU paths: every bad-input rule with its errno and the
//! resulting entry_num, and what a good array or queue does.

use engine::iommufd::*;
use engine::{Driver, Engine, Env, Errno, Mutant};
use hwmodel::{Cmd, Event, Features, Machine, Opcode, Range, ViolationKind, PAGE};
use std::collections::BTreeMap;

fn driver(mutant: Option<Mutant>) -> Driver {
    let mut m = Machine::new(2);
    m.add_smmu(Features::default());
    Driver::new(m, Env::with_mutant(mutant), Engine::Fenced)
}

fn vsmmu() -> Vsmmu {
    Vsmmu::new(hwmodel::SmmuId(0), 9, BTreeMap::from([(1, 5)]), 4)
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

fn array(mem: &[u8], len: u32, n: u32) -> UserArray<'_> {
    UserArray { ty: DATA_ARM_SMMUV3, mem, uptr: 0, entry_len: len, entry_num: n }
}

fn run(drv: &Driver, v: &Vsmmu, a: &mut UserArray) -> Result<(), Errno> {
    let cpu = drv.cpu(0);
    cache_invalidate_user(a, |rest| drv.vsmmu_cache_invalidate(&cpu, v, rest))
}

fn kinds(drv: &Driver) -> Vec<ViolationKind> {
    drv.machine.oracle.violations().iter().map(|v| v.kind).collect()
}

#[test]
fn a_long_valid_array_is_handled_in_batches() {
    let (drv, v) = (driver(None), vsmmu());
    let mem = user_mem(150, None, 16);
    let mut a = array(&mem, 16, 150);
    assert_eq!(run(&drv, &v, &mut a), Ok(()));
    assert_eq!(a.entry_num, 150);
    assert_eq!(v.issued.lock().len(), 150);
    assert!(kinds(&drv).is_empty());
}

#[test]
fn wrong_type_is_einval_with_nothing_handled() {
    let (drv, v) = (driver(None), vsmmu());
    let mem = user_mem(3, None, 16);
    let mut a = UserArray { ty: 7, ..array(&mem, 16, 3) };
    assert_eq!(run(&drv, &v, &mut a), Err(Errno::EINVAL));
    assert_eq!(a.entry_num, 0);
}

#[test]
fn zero_entry_len_is_einval() {
    let (drv, v) = (driver(None), vsmmu());
    let mem = user_mem(3, None, 16);
    let mut a = array(&mem, 0, 3);
    assert_eq!(run(&drv, &v, &mut a), Err(Errno::EINVAL));
    assert_eq!(a.entry_num, 0);
}

#[test]
fn zero_length_array_probes_and_succeeds() {
    let (drv, v) = (driver(None), vsmmu());
    let mut a = array(&[], 16, 0);
    assert_eq!(run(&drv, &v, &mut a), Ok(()));
    assert_eq!(a.entry_num, 0);
    let (drv, v) = (driver(Some(Mutant::VsmmuZeroLengthEinval)), vsmmu());
    let mut a = array(&[], 16, 0);
    assert_eq!(run(&drv, &v, &mut a), Err(Errno::EINVAL), "the mutant restores the old bug");
}

#[test]
fn shorter_user_entries_are_zero_filled() {
    let mem = user_mem(1, None, 16);
    let mut dst = [0xffu8; ENTRY_SIZE];
    copy_entry(&mut dst, &array(&mem[..12], 12, 1), DATA_ARM_SMMUV3, 0).unwrap();
    assert_eq!(&dst[..12], &mem[..12]);
    assert_eq!(&dst[12..], &[0; 4]);
}

#[test]
fn nonzero_padding_is_e2big_and_fails_the_batch() {
    let (drv, v) = (driver(None), vsmmu());
    let mut mem = user_mem(4, None, 24);
    mem[2 * 24 + 20] = 1;
    let mut a = array(&mem, 24, 4);
    assert_eq!(run(&drv, &v, &mut a), Err(Errno::E2BIG));
    assert_eq!(a.entry_num, 0);
    assert!(v.issued.lock().is_empty());
}

#[test]
fn a_short_user_buffer_is_efault() {
    let (drv, v) = (driver(None), vsmmu());
    let mem = user_mem(2, None, 16);
    let mut a = array(&mem, 16, 3);
    assert_eq!(run(&drv, &v, &mut a), Err(Errno::EFAULT));
    assert_eq!(a.entry_num, 0);
}

#[test]
fn an_illegal_command_fails_its_whole_batch_and_entry_num_names_the_batch_start() {
    let (drv, v) = (driver(None), vsmmu());
    let mem = user_mem(100, Some(70), 16);
    let mut a = array(&mem, 16, 100);
    assert_eq!(run(&drv, &v, &mut a), Err(Errno::EIO));
    assert_eq!(a.entry_num, 63, "the first batch was issued; the second, with the bad command, was not");
    assert_eq!(v.issued.lock().len(), 63);
    assert!(kinds(&drv).is_empty());
}

/// One guest command as a user array's bytes.
fn one(w: [u64; 2]) -> Vec<u8> {
    [w[0].to_le_bytes(), w[1].to_le_bytes()].concat()
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
    ]
}

#[test]
fn legal_opcodes_with_illegal_fields_fail_like_illegal_opcodes() {
    for (what, w) in illegal_fields() {
        let (drv, v) = (driver(None), vsmmu());
        let mem = one(w);
        let mut a = array(&mem, 16, 1);
        assert_eq!(run(&drv, &v, &mut a), Err(Errno::EIO), "{what}");
        assert_eq!(a.entry_num, 0, "{what}");
        assert!(v.issued.lock().is_empty(), "{what}");
        let (drv, v) = (driver(Some(Mutant::VsmmuIllegalFieldAccepted)), vsmmu());
        let mut a = array(&mem, 16, 1);
        assert_eq!(run(&drv, &v, &mut a), Ok(()), "{what}: the mutant lets it through");
    }
    let (drv, v) = (driver(None), vsmmu());
    let ssid_in_range = one(Cmd { sid: 1, ssid: 15, ..Cmd::new(Opcode::CfgiCd) }.encode());
    assert_eq!(run(&drv, &v, &mut array(&ssid_in_range, 16, 1)), Ok(()));
}

/// The commands that reached SMMU 0's queue, in order.
fn submitted(drv: &Driver) -> Vec<Cmd> {
    let steps = drv.machine.oracle.trace_tail();
    steps.iter().filter_map(|s| if let Event::Submit { cmd, .. } = s.event { Some(cmd) } else { None }).collect()
}

#[test]
fn the_host_substitutes_its_vmid_and_the_physical_sid() {
    let (drv, v) = (driver(None), vsmmu());
    let guest = [Cmd { vmid: 77, ..nh_va() }, Cmd { sid: 1, ssid: 2, ..Cmd::new(Opcode::CfgiCd) }];
    let mem: Vec<u8> = guest.iter().flat_map(|c| one(c.encode())).collect();
    assert_eq!(run(&drv, &v, &mut array(&mem, 16, 2)), Ok(()));
    let host = submitted(&drv);
    assert_eq!(host[0], Cmd { vmid: 9, ..nh_va() }, "the nesting parent's VMID, not the guest's 77");
    assert_eq!(host[1].sid, 5, "vSID 1 is physical SID 5");
    assert_eq!(host[2].op, Opcode::CmdSync);
    let (drv, v) = (driver(Some(Mutant::VsmmuGuestVmidPassedThrough)), vsmmu());
    assert_eq!(run(&drv, &v, &mut array(&mem, 16, 2)), Ok(()));
    assert_eq!(submitted(&drv)[0].vmid, 77, "the mutant passes the guest's VMID on");
}

#[test]
fn reporting_unissued_commands_is_a_violation() {
    let (drv, v) = (driver(Some(Mutant::VsmmuReportUnissued)), vsmmu());
    let mem = user_mem(100, Some(70), 16);
    let mut a = array(&mem, 16, 100);
    assert_eq!(run(&drv, &v, &mut a), Err(Errno::EIO));
    assert_eq!(a.entry_num, 70);
    assert_eq!(kinds(&drv), [ViolationKind::UnissuedReported]);
}

#[test]
fn unknown_vsid_and_host_only_opcodes_are_illegal() {
    let (drv, v) = (driver(None), vsmmu());
    for cmd in [Cmd { sid: 2, ..Cmd::new(Opcode::AtcInv) }, Cmd { vmid: 1, ..Cmd::new(Opcode::TlbiS12Vmall) }] {
        let w = cmd.encode();
        let mem = [w[0].to_le_bytes(), w[1].to_le_bytes()].concat();
        let mut a = array(&mem, 16, 1);
        assert_eq!(run(&drv, &v, &mut a), Err(Errno::EIO), "{cmd:?}");
        assert_eq!(a.entry_num, 0);
    }
}

fn queue(ty: u32, index: u32, iova: u64, length: u64) -> HwQueueAlloc {
    HwQueueAlloc { flags: 0, viommu_id: VIOMMU_ID, ty, index, nesting_parent_iova: iova, length }
}

const T: u32 = HW_QUEUE_TYPE_TEGRA241_CMDQV;

/// An IOAS with four contiguous guest pages at 0x10000.
fn ioas() -> Ioas {
    let ioas = Ioas::new();
    ioas.map(0x10000, 0x8000_0000, 4 * PAGE);
    ioas
}

/// `cmd` fails with `errno` and pins nothing: the memory unmaps after.
fn refused(cmd: HwQueueAlloc, errno: Errno) {
    let (drv, ioas) = (driver(None), ioas());
    assert_eq!(ioas.hw_queue_alloc(&drv, cmd), Err(errno), "{cmd:?}");
    assert_eq!(ioas.unmap(&drv, 0x10000, 4 * PAGE), Ok(()), "a failed allocation pins nothing: {cmd:?}");
}

#[test]
fn hw_queue_rule_1_nonzero_flags_or_default_type_is_eopnotsupp() {
    refused(HwQueueAlloc { flags: 1, ..queue(T, 0, 0x10000, PAGE) }, Errno::EOPNOTSUPP);
    refused(queue(HW_QUEUE_TYPE_DEFAULT, 0, 0x10000, PAGE), Errno::EOPNOTSUPP);
}

#[test]
fn hw_queue_rule_2_zero_length_is_einval() {
    refused(queue(T, 0, 0x10000, 0), Errno::EINVAL);
}

#[test]
fn hw_queue_rule_3_iova_plus_length_overflowing_is_eoverflow() {
    refused(queue(T, 0, u64::MAX - PAGE + 1, 2 * PAGE), Errno::EOVERFLOW);
}

#[test]
fn hw_queue_rule_4_unknown_viommu_is_enoent() {
    refused(HwQueueAlloc { viommu_id: 2, ..queue(T, 0, 0x10000, PAGE) }, Errno::ENOENT);
}

#[test]
fn hw_queue_rule_5_a_type_the_viommu_has_no_queue_size_for_is_eopnotsupp() {
    refused(queue(7, 0, 0x10000, PAGE), Errno::EOPNOTSUPP);
}

#[test]
fn hw_queue_rule_6_an_unaligned_iova_is_erange_as_seed_004_computes_the_offset() {
    // PAGE_ALIGN rounds up: iova - PAGE_ALIGN(iova) wraps for any unaligned
    // IOVA, and the overflow checks that follow return ERANGE.
    refused(queue(T, 0, 0x10800, PAGE), Errno::ERANGE);
    refused(queue(T, 0, 0x10ff8, 8), Errno::ERANGE);
}

#[test]
fn hw_queue_rule_7_unmapped_memory_is_enoent() {
    refused(queue(T, 0, 0x12000, 4 * PAGE), Errno::ENOENT);
}

#[test]
fn hw_queue_rule_8_non_contiguous_backing_is_efault() {
    let (drv, ioas) = (driver(None), Ioas::new());
    ioas.map(0x10000, 0x8000_0000, PAGE);
    ioas.map(0x11000, 0x9000_0000, PAGE);
    assert_eq!(ioas.hw_queue_alloc(&drv, queue(T, 0, 0x10000, 2 * PAGE)), Err(Errno::EFAULT));
    assert_eq!(ioas.unmap(&drv, 0x10000, 2 * PAGE), Ok(()), "unpinned on the way out");
}

#[test]
fn hw_queue_rule_9_the_drivers_index_rules_come_after_pinning() {
    refused(queue(T, MAX_QUEUES, 0x10000, PAGE), Errno::EINVAL);
    refused(queue(T, 1, 0x10000, PAGE), Errno::EIO);
    let (drv, ioas) = (driver(None), ioas());
    let q = ioas.hw_queue_alloc(&drv, queue(T, 0, 0x10000, 2 * PAGE)).unwrap();
    assert_eq!(q.base_pa, 0x8000_0000);
    assert_eq!(ioas.hw_queue_alloc(&drv, queue(T, 0, 0x12000, PAGE)), Err(Errno::EEXIST), "index taken");
    assert_eq!(ioas.unmap(&drv, 0x12000, 2 * PAGE), Ok(()), "the refused queue pinned nothing");
    assert_eq!(ioas.unmap(&drv, 0x10000, PAGE), Err(Errno::EBUSY), "the live queue's pages stay pinned");
}

#[test]
fn hw_queue_checks_run_in_seed_004s_order() {
    // Each command breaks two rules; the earlier one answers.
    refused(HwQueueAlloc { flags: 1, ..queue(T, 0, 0x10000, 0) }, Errno::EOPNOTSUPP);
    refused(HwQueueAlloc { viommu_id: 2, ..queue(T, 0, u64::MAX, 2) }, Errno::EOVERFLOW);
    refused(HwQueueAlloc { viommu_id: 2, ..queue(7, 0, 0x10000, PAGE) }, Errno::ENOENT);
    refused(queue(7, 0, 0x10800, PAGE), Errno::EOPNOTSUPP);
    refused(queue(T, 5, 0x10800, PAGE), Errno::ERANGE);
    refused(queue(T, 5, 0x40000, PAGE), Errno::ENOENT);
}

#[test]
fn pinned_queue_memory_cannot_be_unmapped_until_destroy() {
    let drv = driver(None);
    let ioas = Ioas::new();
    ioas.map(0x10000, 0x8000_0000, 2 * PAGE);
    let q = ioas.hw_queue_alloc(&drv, queue(T, 0, 0x11000, PAGE)).unwrap();
    assert_eq!(q.base_pa, 0x8000_1000);
    assert_eq!(ioas.unmap(&drv, 0x11000, PAGE), Err(Errno::EBUSY));
    ioas.hw_read(&drv, &q);
    ioas.hw_queue_destroy(q.id).unwrap();
    assert_eq!(ioas.unmap(&drv, 0x10000, 2 * PAGE), Ok(()));
    assert!(kinds(&drv).is_empty());
    let drv = driver(Some(Mutant::HwQueueUnpinned));
    let ioas = Ioas::new();
    ioas.map(0x10000, 0x8000_0000, PAGE);
    let q = ioas.hw_queue_alloc(&drv, queue(T, 0, 0x10000, PAGE)).unwrap();
    assert_eq!(ioas.unmap(&drv, 0x10000, PAGE), Ok(()), "nothing pinned it");
    ioas.hw_read(&drv, &q);
    assert_eq!(kinds(&drv), [ViolationKind::QueueUnmapped, ViolationKind::QueueUnmapped]);
}

//! The iommufd vSMMU paths: every bad-input rule with its errno and the
//! resulting entry_num, and what a good array or queue does.

use engine::iommufd::*;
use engine::{Driver, Engine, Env, Errno, Mutant};
use hwmodel::{Cmd, Features, Machine, Opcode, ViolationKind, PAGE};
use std::collections::BTreeMap;

fn driver(mutant: Option<Mutant>) -> Driver {
    let mut m = Machine::new(2);
    m.add_smmu(Features::default());
    Driver::new(m, Env::with_mutant(mutant), Engine::Fenced)
}

fn vsmmu() -> Vsmmu {
    Vsmmu::new(hwmodel::SmmuId(0), 9, BTreeMap::from([(1, 5)]))
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
    let mut first = 0;
    cache_invalidate_user(a, |rest| {
        let r = drv.vsmmu_cache_invalidate(&cpu, v, rest, first);
        first += u64::from(rest.entry_num);
        r
    })
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
    assert_eq!(*v.issued.lock(), 150);
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
    assert_eq!(*v.issued.lock(), 0);
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
fn an_illegal_command_fails_its_batch_and_is_reflected_at_its_index() {
    let (drv, v) = (driver(None), vsmmu());
    let mem = user_mem(100, Some(70), 16);
    let mut a = array(&mem, 16, 100);
    assert_eq!(run(&drv, &v, &mut a), Err(Errno::EIO));
    assert_eq!(a.entry_num, 63, "the first batch was issued; the second, with the bad command, was not");
    assert_eq!(*v.issued.lock(), 63);
    assert_eq!(*v.cerror_ill.lock(), [70]);
    assert!(kinds(&drv).is_empty());
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
    HwQueueAlloc { flags: 0, ty, index, nesting_parent_iova: iova, length }
}

const T: u32 = HW_QUEUE_TYPE_TEGRA241_CMDQV;

#[test]
fn hw_queue_argument_checks_in_the_kernels_order() {
    let drv = driver(None);
    let ioas = Ioas::new();
    ioas.map(0x10000, 0x8000_0000, 4 * PAGE);
    assert_eq!(
        ioas.hw_queue_alloc(&drv, HwQueueAlloc { flags: 1, ..queue(T, 0, 0x10000, PAGE) }),
        Err(Errno::EOPNOTSUPP)
    );
    assert_eq!(ioas.hw_queue_alloc(&drv, queue(HW_QUEUE_TYPE_DEFAULT, 0, 0x10000, PAGE)), Err(Errno::EOPNOTSUPP));
    assert_eq!(ioas.hw_queue_alloc(&drv, queue(T, 0, 0x10000, 0)), Err(Errno::EINVAL));
    assert_eq!(ioas.hw_queue_alloc(&drv, queue(T, 0, u64::MAX - 10, 100)), Err(Errno::EOVERFLOW));
    assert_eq!(ioas.hw_queue_alloc(&drv, queue(T, 1, 0x10000, PAGE)), Err(Errno::EIO), "out-of-order index");
    let q = ioas.hw_queue_alloc(&drv, queue(T, 0, 0x10000, 2 * PAGE)).unwrap();
    assert_eq!(q.base_pa, 0x8000_0000);
    assert_eq!(ioas.hw_queue_alloc(&drv, queue(T, 0, 0x12000, PAGE)), Err(Errno::EEXIST), "duplicate index");
    assert_eq!(ioas.hw_queue_alloc(&drv, queue(T, 1, 0x40000, PAGE)), Err(Errno::ENOENT), "not mapped");
}

#[test]
fn non_contiguous_backing_is_efault() {
    let drv = driver(None);
    let ioas = Ioas::new();
    ioas.map(0x10000, 0x8000_0000, PAGE);
    ioas.map(0x11000, 0x9000_0000, PAGE);
    assert_eq!(ioas.hw_queue_alloc(&drv, queue(T, 0, 0x10000, 2 * PAGE)), Err(Errno::EFAULT));
    assert_eq!(ioas.unmap(&drv, 0x10000, 2 * PAGE), Ok(()), "a failed allocation pins nothing");
}

#[test]
fn pinned_queue_memory_cannot_be_unmapped_until_destroy() {
    let drv = driver(None);
    let ioas = Ioas::new();
    ioas.map(0x10000, 0x8000_0000, 2 * PAGE);
    let q = ioas.hw_queue_alloc(&drv, queue(T, 0, 0x10800, PAGE)).unwrap();
    assert_eq!(q.base_pa, 0x8000_0800);
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

//! `struct iommu_user_data_array` over a VMM's memory, the helper that
//! copies one entry of it, and the core loop that hands a driver op the
//! not-yet-handled rest (seed 000).

use crate::Errno;

/// Size of `struct iommu_viommu_arm_smmuv3_invalidate` (one queue entry).
pub const ENTRY_SIZE: usize = 16;

/// A VMM's memory as the kernel reaches it: `bytes` at user addresses
/// `base..`. Every other address, NULL included, faults.
#[derive(Clone, Copy, Debug)]
pub struct UserMem<'a> {
    pub base: u64,
    pub bytes: &'a [u8],
}

/// Where the model puts a VMM's buffers: never at NULL.
pub const USER_BASE: u64 = 0x7f00_0000_0000;

impl<'a> UserMem<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { base: USER_BASE, bytes }
    }

    /// `len` bytes at user address `at`, or EFAULT.
    fn get(&self, at: u64, len: usize) -> Result<&'a [u8], Errno> {
        let start = at.checked_sub(self.base).and_then(|o| usize::try_from(o).ok()).ok_or(Errno::EFAULT)?;
        start.checked_add(len).and_then(|end| self.bytes.get(start..end)).ok_or(Errno::EFAULT)
    }
}

/// `struct iommu_user_data_array`: `entry_num` entries of `entry_len`
/// bytes at user address `uptr`. On return `entry_num` says how many were
/// handled.
#[derive(Clone, Copy, Debug)]
pub struct UserArray<'a> {
    pub ty: u32,
    pub mem: UserMem<'a>,
    pub uptr: u64,
    pub entry_len: u32,
    pub entry_num: u32,
}

/// `iommu_copy_struct_from_user_array`: entry `index` into `dst`. A shorter
/// user entry is zero-filled; bytes past the kernel's struct must be zero.
pub fn copy_entry(dst: &mut [u8; ENTRY_SIZE], a: &UserArray, ty: u32, index: u32) -> Result<(), Errno> {
    if a.ty != ty || a.entry_len == 0 {
        return Err(Errno::EINVAL);
    }
    let len = a.entry_len as usize;
    let at = u64::from(index).checked_mul(u64::from(a.entry_len)).and_then(|o| o.checked_add(a.uptr));
    let src = a.mem.get(at.ok_or(Errno::EFAULT)?, len)?;
    let n = len.min(ENTRY_SIZE);
    if src[n..].iter().any(|b| *b != 0) {
        return Err(Errno::E2BIG);
    }
    dst.fill(0);
    dst[..n].copy_from_slice(&src[..n]);
    Ok(())
}

/// The iommufd core: hand `op` the not-yet-handled rest of `array` until
/// every entry is handled or it fails. `array.entry_num` ends as the total
/// handled. A zero-length array is passed once, to probe the type.
pub fn cache_invalidate_user(
    array: &mut UserArray,
    mut op: impl FnMut(&mut UserArray) -> Result<(), Errno>,
) -> Result<(), Errno> {
    let total = array.entry_num;
    if total == 0 {
        return op(array);
    }
    let mut done = 0;
    while done < total {
        let mut rest = UserArray {
            uptr: array.uptr + u64::from(done) * u64::from(array.entry_len),
            entry_num: total - done,
            ..*array
        };
        let r = op(&mut rest);
        done += rest.entry_num.min(total - done);
        if r.is_err() || rest.entry_num == 0 {
            array.entry_num = done;
            return r.and(Err(Errno::EINVAL));
        }
    }
    array.entry_num = done;
    Ok(())
}

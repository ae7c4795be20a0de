//! iommufd's objects as the core keeps them (`drivers/iommu/iommufd/`):
//! one table of ids and types, lookup by id (ENOENT for an unknown id or
//! an object of another type), allocation through one fault site
//! (`iommufd_object_alloc`), dependencies that make a destroy EBUSY, and
//! `IOMMU_HWPT_INVALIDATE`, which dispatches on the object's type.

use super::array::{cache_invalidate_user, UserArray, UserMem};
use super::ioas::{HwQueue, IoasState};
use super::vsmmu::Vsmmu;
use crate::driver::Driver;
use crate::env::FaultSite;
use crate::kernel::Cpu;
use crate::{Errno, Mutant};
use hwmodel::SmmuId;
use smmu_sync::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;

/// `enum iommufd_object_type`, the ones this model has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjType {
    Ioas,
    HwptPaging,
    HwptNested,
    Viommu,
    Vdevice,
    HwQueue,
}

/// What an object holds.
pub(super) enum Data {
    Ioas(IoasState),
    /// A paging HWPT over an IOAS; a nesting parent carries the VMID its
    /// vIOMMUs invalidate under.
    HwptPaging {
        nest_parent: bool,
        vmid: u16,
    },
    /// A nested HWPT: arm-smmu-v3's nested domain has no
    /// `cache_invalidate_user`; its invalidations go through the vIOMMU.
    HwptNested,
    Viommu(Arc<Vsmmu>),
    Vdevice {
        viommu: u32,
        virt_id: u32,
    },
    HwQueue(HwQueue),
}

impl Data {
    fn ty(&self) -> ObjType {
        match self {
            Data::Ioas(_) => ObjType::Ioas,
            Data::HwptPaging { .. } => ObjType::HwptPaging,
            Data::HwptNested => ObjType::HwptNested,
            Data::Viommu(_) => ObjType::Viommu,
            Data::Vdevice { .. } => ObjType::Vdevice,
            Data::HwQueue(_) => ObjType::HwQueue,
        }
    }
}

pub(super) struct Obj {
    pub data: Data,
    /// Objects that hold a reference on this one (`obj->users` beyond the
    /// table's own): while any does, destroy is EBUSY.
    pub users: u32,
    /// The objects this one holds a reference on.
    pub deps: Vec<u32>,
}

#[derive(Default)]
pub(super) struct Table {
    pub objs: BTreeMap<u32, Obj>,
    pub next_id: u32,
}

impl Table {
    /// `iommufd_get_object`: an object of type `ty`, else ENOENT.
    pub fn get(&self, id: u32, ty: ObjType) -> Result<&Obj, Errno> {
        self.objs.get(&id).filter(|o| o.data.ty() == ty).ok_or(Errno::ENOENT)
    }

    pub fn get_mut(&mut self, id: u32, ty: ObjType) -> Result<&mut Obj, Errno> {
        self.objs.get_mut(&id).filter(|o| o.data.ty() == ty).ok_or(Errno::ENOENT)
    }

    /// The IOAS `id`'s pages and pins.
    pub fn ioas_mut(&mut self, id: u32) -> Result<&mut IoasState, Errno> {
        match &mut self.get_mut(id, ObjType::Ioas)?.data {
            Data::Ioas(s) => Ok(s),
            _ => unreachable!("typed lookup"),
        }
    }

    /// Make `data` an object that depends on `deps` (each must exist).
    pub fn insert(&mut self, data: Data, deps: Vec<u32>) -> u32 {
        for d in &deps {
            if let Some(o) = self.objs.get_mut(d) {
                o.users += 1;
            }
        }
        self.next_id += 1;
        self.objs.insert(self.next_id, Obj { data, users: 0, deps });
        self.next_id
    }
}

/// `struct iommu_hwpt_invalidate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HwptInvalidate {
    pub hwpt_id: u32,
    /// A user address; 0 is NULL.
    pub data_uptr: u64,
    pub data_type: u32,
    pub entry_len: u32,
    pub entry_num: u32,
    pub reserved: u32,
}

/// One iommufd context (an open `/dev/iommu`).
pub struct Ictx {
    pub(super) table: Mutex<Table>,
}

impl Default for Ictx {
    fn default() -> Self {
        Self::new()
    }
}

impl Ictx {
    pub fn new() -> Self {
        Self { table: Mutex::new(Table::default()) }
    }

    /// `iommufd_object_alloc`: the kzalloc that can fail.
    pub(super) fn object_alloc(drv: &Driver) -> Result<(), Errno> {
        drv.env.alloc(FaultSite::IommufdObject)
    }

    /// `IOMMU_IOAS_ALLOC`.
    pub fn ioas_alloc(&self, drv: &Driver) -> Result<u32, Errno> {
        Self::object_alloc(drv)?;
        Ok(self.table.lock().insert(Data::Ioas(IoasState::default()), Vec::new()))
    }

    /// `IOMMU_HWPT_ALLOC` of a paging HWPT over `ioas` (with
    /// `IOMMU_HWPT_ALLOC_NEST_PARENT`, a parent whose domain's VMID is
    /// `vmid`).
    pub fn hwpt_alloc(&self, drv: &Driver, ioas: u32, nest_parent: bool, vmid: u16) -> Result<u32, Errno> {
        let mut t = self.table.lock();
        t.get(ioas, ObjType::Ioas)?;
        Self::object_alloc(drv)?;
        Ok(t.insert(Data::HwptPaging { nest_parent, vmid }, vec![ioas]))
    }

    /// `IOMMU_VIOMMU_ALLOC` of an arm-smmu-v3 vIOMMU on `smmu` over the
    /// nesting parent `hwpt`.
    pub fn viommu_alloc(&self, drv: &Driver, hwpt: u32, smmu: SmmuId, ssid_bits: u32) -> Result<u32, Errno> {
        let mut t = self.table.lock();
        let vmid = match t.get(hwpt, ObjType::HwptPaging)?.data {
            Data::HwptPaging { nest_parent: true, vmid } => vmid,
            _ => return Err(Errno::EINVAL),
        };
        Self::object_alloc(drv)?;
        Ok(t.insert(Data::Viommu(Arc::new(Vsmmu::new(smmu, vmid, ssid_bits))), vec![hwpt]))
    }

    /// `IOMMU_VDEVICE_ALLOC`: the device behind physical stream `sid` is
    /// `virt_id` to the guest of `viommu`. A virtual ID already in use is
    /// EEXIST.
    pub fn vdevice_alloc(&self, drv: &Driver, viommu: u32, virt_id: u32, sid: u32) -> Result<u32, Errno> {
        let mut t = self.table.lock();
        let Data::Viommu(v) = &t.get(viommu, ObjType::Viommu)?.data else { unreachable!("typed lookup") };
        let v = v.clone();
        if v.has_vsid(virt_id) {
            return Err(Errno::EEXIST);
        }
        Self::object_alloc(drv)?;
        v.set_vsid(virt_id, Some(sid));
        Ok(t.insert(Data::Vdevice { viommu, virt_id }, vec![viommu]))
    }

    /// `IOMMU_HWPT_ALLOC` of a nested HWPT on `viommu`.
    pub fn hwpt_nested_alloc(&self, drv: &Driver, viommu: u32) -> Result<u32, Errno> {
        let mut t = self.table.lock();
        t.get(viommu, ObjType::Viommu)?;
        Self::object_alloc(drv)?;
        Ok(t.insert(Data::HwptNested, vec![viommu]))
    }

    /// The vIOMMU's driver state, for the oracle's checks (no VMM or guest
    /// reads it).
    pub fn vsmmu(&self, viommu: u32) -> Option<Arc<Vsmmu>> {
        match &self.table.lock().get(viommu, ObjType::Viommu).ok()?.data {
            Data::Viommu(v) => Some(v.clone()),
            _ => None,
        }
    }

    /// Every object: (id, type, objects depending on it).
    pub fn objects(&self) -> Vec<(u32, ObjType, u32)> {
        self.table.lock().objs.iter().map(|(id, o)| (*id, o.data.ty(), o.users)).collect()
    }

    /// `IOMMU_DESTROY`: ENOENT for an unknown id, EBUSY while another
    /// object depends on this one; otherwise its references and whatever
    /// it held (a queue's pin, a vDEVICE's virtual ID) are released.
    pub fn destroy(&self, drv: &Driver, id: u32) -> Result<(), Errno> {
        let _f = smmu_sync::kernel_fn("iommufd_destroy");
        let mut t = self.table.lock();
        let o = t.objs.get(&id).ok_or(Errno::ENOENT)?;
        let ignore = matches!(o.data, Data::HwQueue(_)) && drv.env.mutant(Mutant::HwQueueDestroyIgnoresDependency);
        if o.users != 0 && !ignore {
            return Err(Errno::EBUSY);
        }
        let o = t.objs.remove(&id).expect("looked up");
        for d in &o.deps {
            if let Some(dep) = t.objs.get_mut(d) {
                dep.users = dep.users.saturating_sub(1);
            }
        }
        match o.data {
            Data::Vdevice { viommu, virt_id } => {
                if let Ok(Obj { data: Data::Viommu(v), .. }) = t.get(viommu, ObjType::Viommu) {
                    v.set_vsid(virt_id, None);
                }
            }
            // The access unpins what it pinned.
            Data::HwQueue(q) => {
                if let Some(Ok(s)) = q.pinned.map(|id| t.ioas_mut(id)) {
                    s.unpin(q.iova, q.length);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// `iommufd_hwpt_invalidate`, in the core's order: a reserved field
    /// is EOPNOTSUPP; entries without a pointer or an entry length EINVAL;
    /// an unknown id ENOENT; then dispatch by the object's type (a vIOMMU
    /// to its op through the core's array loop, a nested HWPT to its
    /// domain's op, which arm-smmu-v3 lacks: EOPNOTSUPP; any other type
    /// EINVAL). `entry_num` is written back on every path: what the op
    /// handled, 0 for an error before it.
    pub fn hwpt_invalidate(
        &self,
        drv: &Driver,
        cpu: &Cpu,
        cmd: &mut HwptInvalidate,
        mem: UserMem,
    ) -> Result<(), Errno> {
        let _f = smmu_sync::kernel_fn("iommufd_hwpt_invalidate");
        let mut array = UserArray {
            ty: cmd.data_type,
            mem,
            uptr: cmd.data_uptr,
            entry_len: cmd.entry_len,
            entry_num: cmd.entry_num,
        };
        let r = self.dispatch(drv, cpu, cmd, &mut array);
        cmd.entry_num = match r {
            Err(Dispatch::Before(_)) => 0,
            _ => array.entry_num,
        };
        r.map_err(Dispatch::errno)
    }

    fn dispatch(&self, drv: &Driver, cpu: &Cpu, cmd: &HwptInvalidate, array: &mut UserArray) -> Result<(), Dispatch> {
        if cmd.reserved != 0 {
            return Err(Dispatch::Before(Errno::EOPNOTSUPP));
        }
        if cmd.entry_num != 0 && (cmd.data_uptr == 0 || cmd.entry_len == 0) {
            return Err(Dispatch::Before(Errno::EINVAL));
        }
        let target = {
            let t = self.table.lock();
            let o = t.objs.get(&cmd.hwpt_id).ok_or(Dispatch::Before(Errno::ENOENT))?;
            match &o.data {
                Data::Viommu(v) => Some(v.clone()),
                Data::HwptNested => None,
                // The mutant: any object id reaches a vIOMMU's op.
                _ if drv.env.mutant(Mutant::HwptInvalidateAnyObjectType) => {
                    t.objs.values().find_map(|o| if let Data::Viommu(v) = &o.data { Some(v.clone()) } else { None })
                }
                _ => return Err(Dispatch::Before(Errno::EINVAL)),
            }
        };
        // The table's lock is not held across the op: the op issues
        // commands and waits for their sync.
        match target {
            Some(v) => cache_invalidate_user(array, |a| drv.vsmmu_cache_invalidate(cpu, &v, a)).map_err(Dispatch::Op),
            None => Err(Dispatch::Before(Errno::EOPNOTSUPP)),
        }
    }
}

/// Where `hwpt_invalidate` failed: before the op (nothing handled) or in
/// it (the op's `entry_num` stands).
enum Dispatch {
    Before(Errno),
    Op(Errno),
}

impl Dispatch {
    fn errno(self) -> Errno {
        match self {
            Dispatch::Before(e) | Dispatch::Op(e) => e,
        }
    }
}

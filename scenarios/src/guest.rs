//! A guest behind a vSMMU: a nested master over a nesting parent, and the
//! VMM that forwards the guest's command arrays through the iommufd core
//! loop and judges the answers against the uAPI.

use crate::rig::Rig;
use engine::iommufd::{cache_invalidate_user, UserArray, Vsmmu, DATA_ARM_SMMUV3, ENTRY_SIZE};
use engine::{Cpu, Domain, Driver, Errno, Master, Target};
use hwmodel::{Cmd, Opcode, ViolationKind, PAGE};
use std::sync::Arc;

pub const GUEST_ASID: u16 = 7;
/// The guest's virtual stream ID for its one device.
const VSID: u32 = 1;

/// A guest command array: `n` TLBI_NH_VA for the guest's ASID, with an
/// illegal (host-only) command at `bad`; `n == 0` only probes the type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Array {
    pub n: usize,
    pub bad: Option<usize>,
}

impl Array {
    pub fn draw(n: usize, bad: Option<usize>) -> Self {
        Self { n, bad: bad.filter(|b| *b < n) }
    }

    pub fn bytes(&self) -> Vec<u8> {
        (0..self.n)
            .flat_map(|k| {
                let op = if Some(k) == self.bad { Opcode::TlbiS12Vmall } else { Opcode::TlbiNhVa };
                let addr = 0x10_0000 + (k as u64 % 4) * PAGE;
                let w = Cmd { asid: GUEST_ASID, addr, leaf: true, ..Cmd::new(op) }.encode();
                [w[0].to_le_bytes(), w[1].to_le_bytes()].concat()
            })
            .collect()
    }
}

pub struct Guest {
    pub master: Arc<Master>,
    pub parent: Arc<Domain>,
    pub vsmmu: Vsmmu,
}

fn uapi(drv: &Driver, detail: String) {
    drv.machine.oracle.report(ViolationKind::UapiContract, detail);
}

impl Guest {
    /// Attach master `m` of the rig as the guest's device, nested over
    /// `parent`, and create its vSMMU.
    pub fn attach(r: &Rig, m: usize, parent: Arc<Domain>) -> Self {
        r.attach(m, 0, Target::Nested { parent: parent.clone(), guest_asid: GUEST_ASID }, false);
        let master = r.masters[m].clone();
        let vsmmu = Vsmmu::new(master.smmu, parent.tag(), [(VSID, master.streams[0])].into());
        Self { master, parent, vsmmu }
    }

    /// The guest re-installs its STE: a nested re-attach.
    pub fn reattach(&self, drv: &Driver, cpu: &Cpu) {
        let back = Target::Nested { parent: self.parent.clone(), guest_asid: GUEST_ASID };
        let _ = drv.attach(cpu, &self.master, 0, back, false);
    }

    /// Send `a` through `IOMMU_HWPT_INVALIDATE` and judge the answer.
    pub fn invalidate(&self, drv: &Driver, cpu: &Cpu, a: Array) {
        let mem = a.bytes();
        let mut array =
            UserArray { ty: DATA_ARM_SMMUV3, mem: &mem, uptr: 0, entry_len: ENTRY_SIZE as u32, entry_num: a.n as u32 };
        let ill_before = self.vsmmu.cerror_ill.lock().len();
        let mut first = 0;
        let res = cache_invalidate_user(&mut array, |rest| {
            let r = drv.vsmmu_cache_invalidate(cpu, &self.vsmmu, rest, first);
            first += u64::from(rest.entry_num);
            r
        });
        let handled = array.entry_num;
        match a.bad {
            _ if a.n == 0 && res.is_err() => uapi(drv, format!("the zero-length probe returned {res:?}")),
            None if res.is_err() || handled as usize != a.n => {
                uapi(drv, format!("a valid array of {} commands returned {res:?} with entry_num {handled}", a.n))
            }
            Some(bad) => {
                if res != Err(Errno::EIO) {
                    uapi(drv, format!("an illegal command at index {bad} returned {res:?}"));
                }
                let ill: Vec<u64> = self.vsmmu.cerror_ill.lock()[ill_before..].to_vec();
                if ill != [bad as u64] {
                    uapi(
                        drv,
                        format!(
                            "CERROR_ILL reported at {ill:?}, the illegal command is at {bad} (entry_num {handled})"
                        ),
                    );
                }
            }
            None => {}
        }
    }
}

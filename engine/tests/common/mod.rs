//! What the array property tests share.

use engine::{InvDesc, InvType};
use hwmodel::SmmuId;

/// Every entry a random sequence may use, in sorted order: two SMMUs, each
/// kind of entry, and two SSIDs of one ATS stream (which compare equal in
/// v9's `arm_smmu_inv_cmp`).
pub fn universe() -> Vec<InvDesc> {
    let mut u = Vec::new();
    for smmu in 0..2 {
        for (ty, id, ssid) in [
            (InvType::S1Asid, 1, 0),
            (InvType::S1Asid, 2, 0),
            (InvType::S2Vmid, 1, 0),
            (InvType::S2VmidS1Clear, 1, 0),
            (InvType::Ats, 3, 0),
            (InvType::Ats, 3, 1),
            (InvType::AtsFull, 4, 0),
        ] {
            u.push(InvDesc::new(SmmuId(smmu), false, ty, id, ssid, 0));
        }
    }
    u
}

//! Masters (`struct arm_smmu_master`): a device's stream IDs on one SMMU and
//! the scratch array its attaches build invalidation entries in.

use crate::domain::{Domain, Target};
use crate::env::{Env, Warning};
use crate::types::{InvDesc, InvType};
use crate::Mutant;
use hwmodel::{Addr, EndpointId, Features, SmmuId};
use smmu_sync::Mutex;
use std::collections::BTreeMap;

/// State the iommu group mutex protects.
pub struct MasterState {
    /// Preallocated at probe and reused: 2 entries, plus one per stream ID
    /// when the master can do ATS. Never grows, so a blocking attach cannot
    /// fail allocating it.
    build_invs: Vec<InvDesc>,
    pub ats_enabled: bool,
    /// What each SSID (0: the RID) is attached to.
    pub attached: BTreeMap<u32, Target>,
}

pub struct Master {
    pub ep: EndpointId,
    pub smmu: SmmuId,
    pub features: Features,
    /// Stream IDs, sorted at probe so `build_invs` comes out sorted.
    pub streams: Vec<u32>,
    pub ats_supported: bool,
    /// The master's CD table (one CD per SSID).
    pub cd_table: Addr,
    pub state: Mutex<MasterState>,
}

impl Master {
    pub(crate) fn probe(
        env: &Env,
        ep: EndpointId,
        smmu: SmmuId,
        features: Features,
        sids: &[u32],
        ats: bool,
        cd_table: Addr,
    ) -> Self {
        let mut streams = sids.to_vec();
        if !env.mutant(Mutant::UnsortedStreamIds) {
            streams.sort_unstable();
        }
        let cap = if ats { 2 + streams.len() } else { 2 };
        Self {
            ep,
            smmu,
            features,
            streams,
            ats_supported: ats,
            cd_table,
            state: Mutex::new(MasterState {
                build_invs: Vec::with_capacity(cap),
                ats_enabled: false,
                attached: BTreeMap::new(),
            }),
        }
    }
}

impl MasterState {
    /// `arm_smmu_master_build_invs`: the entries `domain` needs for this
    /// master, in the preallocated scratch array (overwritten by the next
    /// call). `None` if the scratch would overflow, which is a driver bug.
    pub fn build_invs(&mut self, m: &Master, env: &Env, ats: bool, ssid: u32, domain: &Domain) -> Option<&[InvDesc]> {
        self.build_invs.clear();
        let tag = domain.tag_inv(m.smmu, m.features);
        let scratch = &mut self.build_invs;
        let mut push = |inv: InvDesc| {
            if scratch.len() == scratch.capacity() {
                env.warn(Warning::BuildInvsOverflow { capacity: scratch.capacity() });
                return None;
            }
            scratch.push(inv);
            Some(())
        };
        push(tag)?;
        if domain.nest_parent() {
            push(InvDesc::new(m.smmu, m.features.e2h, InvType::S2VmidS1Clear, tag.id, 0, 0))?;
        }
        if ats {
            let ats_ty = if domain.nest_parent() { InvType::AtsFull } else { InvType::Ats };
            for &sid in &m.streams {
                push(InvDesc::new(m.smmu, m.features.e2h, ats_ty, sid, ssid, 0))?;
            }
        }
        Some(&self.build_invs)
    }
}

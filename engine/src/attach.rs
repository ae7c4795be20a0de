//! Attach and detach: moving a master (or one of its PASIDs) between
//! domains while invalidations of both keep reaching it (fact 4).
//!
//! 1. the new domain publishes its merged array;
//! 2. from then on it invalidates for the master;
//! 3. the STE/CD is written;
//! 4. the old domain still invalidates for the master;
//! 5. the old domain unrefs the master's entries and, if that left trash,
//!    publishes a purged array.
//!
//! Everything that can fail happens before step 1. `Engine::Legacy` runs
//! the pre-series sequence over a locked device list instead.

use crate::domain::{Domain, GuestS1, MasterDomain, Stage, Target};
use crate::driver::{Cpu, Driver, Engine};
use crate::env::FaultSite;
use crate::inv::{atc_inv_cmd, Batch};
use crate::invs::{Inv, InvDesc, InvType, Invs};
use crate::master::{Master, MasterState};
use crate::shared::{View, INVS_PTR, NR_ATS_MASTERS};
use crate::{Errno, Mutant};
use hwmodel::{Addr, Cd, Cmd, Goal, Opcode, Ste, ViolationKind};
use smmu_sync::{Guard, Rcu, Retire, Retired};
use std::cell::RefCell;

/// One attach in progress: who moves where, with which ATS state.
pub(crate) struct Move<'a> {
    pub(crate) cpu: &'a Cpu,
    pub(crate) m: &'a Master,
    pub(crate) ssid: u32,
    pub(crate) old: &'a Target,
    pub(crate) target: &'a Target,
    pub(crate) ats: bool,
    pub(crate) old_ats: bool,
    pub(crate) guard: &'a Guard,
    /// Arrays this move replaced, to be retired (`kfree_rcu`) once the
    /// pointers that replaced them are visible to every CPU.
    pub(crate) replaced: RefCell<Vec<Box<dyn FnOnce() + 'a>>>,
}

impl Driver {
    /// Attach `target` to `m` at `ssid` (0: the RID). `want_ats` asks for
    /// ATS on a RID attach to a paging domain; PASID attaches keep the
    /// master's ATS state. On error nothing has changed.
    pub fn attach(&self, cpu: &Cpu, m: &Master, ssid: u32, target: Target, want_ats: bool) -> Result<(), Errno> {
        smmu_sync::locate("attach", u64::from(ssid));
        let mut ms = m.state.lock();
        check_attach(&ms, ssid, &target)?;
        let _asid_lock = self.asid_lock.lock();
        let old = ms.attached.get(&ssid).cloned().unwrap_or(Target::Blocked);
        self.machine.oracle.attach_begin(m.ep, ssid, target.allowed());
        let old_ats = ms.ats_enabled;
        // PASIDs keep the master's ATS state, and so does the RID while
        // PASIDs use its CD table (the kernel's cd_needs_ats).
        let ats = if ssid == 0 && !pasids_in_use(&ms) {
            want_ats && m.ats_supported && target.domain().is_some()
        } else {
            old_ats
        };
        let r = {
            let guard = cpu.epoch.pin();
            let replaced = RefCell::default();
            let mv = Move { cpu, m, ssid, old: &old, target: &target, ats, old_ats, guard: &guard, replaced };
            let r = match self.engine {
                Engine::Fenced => self.move_fenced(&mv, &mut ms),
                Engine::V9 => self.move_v9(&mv, &mut ms),
                Engine::Legacy => self.move_legacy(&mv),
            };
            // The ASID lock's and the group mutex's release. Only then are
            // the new pointers visible to every CPU, and only then may what
            // they replaced go: the kernel's grace period implies as much.
            self.machine.mem.release(cpu.id);
            mv.replaced.take().into_iter().for_each(|retire| retire());
            r
        };
        // Unpinned: a grace period waits for every pinned CPU, this one too.
        // (v9 turned ATS off in attach_prepare.)
        let r = r.map(|()| {
            if self.engine != Engine::V9 {
                self.disable_ats(cpu, m, ats, old_ats);
            }
            ats
        });
        self.report_warnings();
        let now = if r.is_ok() { &target } else { &old };
        self.machine.oracle.attach_returned(m.ep, ssid, now.allowed());
        let ats = r?;
        if ssid == 0 {
            ms.ats_enabled = ats;
        }
        ms.attached.insert(ssid, target);
        Ok(())
    }

    /// The series' sequence (steps 1-5 above).
    fn move_fenced<'a>(&'a self, mv: &Move<'a>, ms: &mut MasterState) -> Result<(), Errno> {
        let mut new_invs = match mv.target.domain() {
            Some(d) => {
                let to_merge = ms.build_invs(mv.m, &self.env, mv.ats, mv.ssid, d).ok_or(Errno::EINVAL)?;
                Some(self.current_invs(mv, d).merge(to_merge, &self.env)?)
            }
            None => None,
        };
        // The kernel's vmaster (nested only) and master_domain allocations,
        // for a paging target only; dropping `new_invs` on failure is the
        // whole unwind, nothing has been published.
        if matches!(mv.target, Target::Nested { .. }) {
            self.env.alloc(FaultSite::Vmaster)?;
        }
        if mv.target.domain().is_some() {
            self.env.alloc(FaultSite::MasterDomain)?;
        }

        let publish_new = |new_invs: &mut Option<Invs>| {
            if let (Some(d), Some(new)) = (mv.target.domain(), new_invs.take()) {
                self.install(mv, d, new);
            }
        };
        // The STE/CD write's dma_wmb orders the new pointer before the
        // STE/CD word: pairs with the smp_mb in domain_inv_range.
        let late = self.env.mutant(Mutant::PublishWithoutBarrier);
        if !self.env.mutant(Mutant::NewInvsAfterSte) && !late {
            publish_new(&mut new_invs);
        }
        if self.env.mutant(Mutant::OldInvsBeforeSte) {
            self.install_old(mv, ms);
        }
        self.flush_before_ats(mv);
        self.stop_translation_requests(mv);
        self.write_ste_cd(mv, true, &mut || {
            if late {
                publish_new(&mut new_invs);
            }
        });
        publish_new(&mut new_invs);
        self.commit_ats(mv);
        if !self.env.mutant(Mutant::OldInvsBeforeSte) {
            self.install_old(mv, ms);
        }
        Ok(())
    }

    /// Before the master may answer translation requests in the new domain:
    /// flush the domain's ASID/VMID on the master's SMMU. The IOTLB is
    /// shared by tag, so an unmap that loaded the array before this master
    /// joined (and so sends it no ATC_INV) may still have a stale entry
    /// there for the device's ATC to fill from. The pre-series kernel closed
    /// this by reading `nr_ats_masters` after the TLBI's CMD_SYNC
    /// (`arm_smmu_atc_inv_domain`); v9 reads its array once, before the
    /// TLBIs, and loses that order. Here either the unmap's load saw the new
    /// array (so it invalidates this ATC after its TLBI), or its PTE write
    /// was visible before the publication and so before this flush (the
    /// submit's barrier orders them), and no walk after it can cache the
    /// old PTE.
    fn flush_before_ats(&self, mv: &Move) {
        let Some(d) = mv.target.domain() else { return };
        if mv.ats && !self.env.mutant(Mutant::NoTlbFlushBeforeAts) {
            self.flush_tag(mv.cpu, &d.tag_inv(mv.m.smmu, mv.m.features));
        }
    }

    /// The array `d` publishes now, as this writer sees it
    /// (`rcu_dereference_protected` under the ASID lock).
    fn current_invs<'a>(&self, mv: &Move<'a>, d: &'a Domain) -> &'a Invs {
        self.rcu_dereference(mv.cpu, d.id, &d.invs, d.words + INVS_PTR, mv.guard)
    }

    /// The pre-series sequence: join the new domain's device list, switch
    /// the STE/CD, leave the old domain's list, and only then turn ATS off
    /// (ATC invalidations are issued under the list lock, so leaving the
    /// list fences them).
    fn move_legacy(&self, mv: &Move) -> Result<(), Errno> {
        if let Some(d) = mv.target.domain() {
            let mut smmu = d.legacy.smmu.lock();
            if smmu.is_some_and(|s| s != mv.m.smmu) {
                return Err(Errno::EINVAL);
            }
            self.env.alloc(FaultSite::MasterDomain)?;
            *smmu = Some(mv.m.smmu);
            drop(smmu);
            if mv.ats {
                // atomic_inc(&nr_ats_masters)
                self.machine.mem.fetch_add(mv.cpu.id, d.words + NR_ATS_MASTERS, 1);
            }
            let md = MasterDomain { ep: mv.m.ep, ssid: mv.ssid, sids: mv.m.streams.clone(), ats: mv.ats };
            self.devices_lock(mv.cpu, d).push(md);
        }
        self.stop_translation_requests(mv);
        self.write_ste_cd(mv, true, &mut || {});
        self.commit_ats(mv);
        if let Some(d) = mv.old.domain() {
            let mut devices = self.devices_lock(mv.cpu, d);
            // The oldest entry is the old attachment, even on a re-attach.
            if let Some(k) = devices.iter().position(|md| md.ep == mv.m.ep && md.ssid == mv.ssid) {
                if devices.remove(k).ats {
                    // atomic_dec(&nr_ats_masters)
                    self.machine.mem.fetch_add(mv.cpu.id, d.words + NR_ATS_MASTERS, -1);
                }
            }
        }
        Ok(())
    }

    /// ATS on once the STE allows it; if it stays on, flush the ATC because
    /// the translation under it changed (a move turning it off flushed it
    /// in `stop_translation_requests`).
    fn commit_ats(&self, mv: &Move) {
        if mv.ats && !mv.old_ats {
            self.machine.set_ats(mv.m.ep, true);
        } else if mv.old_ats && mv.ats {
            self.atc_inv_master(mv.cpu, mv.m, mv.ssid);
        }
    }

    /// Turn ATS off once no ATC invalidation built from the master's old
    /// entries can still be in flight. Walkers of the old domain's current
    /// array were fenced by the unref's write lock; walkers of an array
    /// replaced while it held a live ATS entry of the master (a re-attach's
    /// own merge, another master's attach, a PASID's domain) only by a
    /// grace period. Its stream IDs are forgotten before the grace period
    /// starts, so an array replaced meanwhile marks them again.
    fn disable_ats(&self, cpu: &Cpu, m: &Master, ats: bool, old_ats: bool) {
        if ats || !old_ats {
            return;
        }
        let mut older_copies = false;
        {
            let mut marked = self.ats_replaced.lock();
            for sid in &m.streams {
                older_copies |= marked.remove(&(m.smmu, *sid));
            }
        }
        if older_copies {
            self.machine.oracle.cover(Goal::AtsOffOlderArray);
            if !self.env.mutant(Mutant::AtsOffWithoutGracePeriod) {
                self.synchronize_rcu(cpu);
            }
        }
        self.machine.set_ats(m.ep, false);
    }

    /// Publish `new` as `d`'s array; the one it replaces is retired when
    /// the move ends.
    fn install<'a>(&'a self, mv: &Move<'a>, d: &'a Domain, mut new: Invs) {
        if let Err(e) = new.check(true) {
            self.machine.oracle.report(ViolationKind::ArrayInvariant, format!("{:?} publishing: {e}", d.id));
        }
        self.cover_array(new.entries());
        new.place(&self.machine, mv.cpu.id);
        let old = self.rcu_assign_pointer(mv.cpu, d.id, &d.invs, d.words + INVS_PTR, new, mv.guard);
        self.mark_ats_replaced(old.get());
        let guard = mv.guard;
        mv.replaced.borrow_mut().push(Box::new(move || self.retire(&d.invs, old, guard)));
    }

    /// Publish `new` as `d`'s array outside any attach, under the ASID lock
    /// and with its release: for benchmarks and tests that need arrays no
    /// attach sequence builds (trash between live entries).
    pub fn replace_invs(&self, cpu: &Cpu, d: &Domain, mut new: Invs) {
        let _asid_lock = self.asid_lock.lock();
        let guard = cpu.epoch.pin();
        new.place(&self.machine, cpu.id);
        let old = self.rcu_assign_pointer(cpu, d.id, &d.invs, d.words + INVS_PTR, new, &guard);
        self.mark_ats_replaced(old.get());
        self.machine.mem.release(cpu.id);
        self.retire(&d.invs, old, &guard);
    }

    /// Walkers may still hold `replaced`: each live ATS entry's stream
    /// needs a grace period before its master turns ATS off. (Trash was
    /// fenced by the `unref` that made it.)
    fn mark_ats_replaced(&self, replaced: &Invs) {
        let live_ats = replaced.iter().filter(|i| i.desc.ty.is_ats() && i.users() > 0);
        self.ats_replaced.lock().extend(live_ats.map(|i| (i.desc.smmu, i.desc.id)));
    }

    /// `kfree_rcu` of an array `publish` replaced, and this writer's share
    /// of reclamation.
    pub(crate) fn retire<T: Retire>(&self, rcu: &Rcu<T>, old: Retired<'_, T>, guard: &Guard) {
        if self.env.mutant(Mutant::FreeReplacedArrayImmediately) {
            old.free_now();
        } else if self.writer_reclaims {
            old.defer_to_writer();
        } else {
            old.defer_free();
        }
        guard.flush();
        if self.writer_reclaims {
            rcu.reclaim();
        }
    }

    /// The array shapes worth reaching: one spanning SMMUs, one with ATS
    /// entries for two PASIDs of one stream ID.
    pub(crate) fn cover_array(&self, e: &[Inv]) {
        let o = &self.machine.oracle;
        if e.windows(2).any(|w| w[0].smmu != w[1].smmu) {
            o.cover(Goal::ArraySpansSmmus);
        }
        if e.windows(2).any(|w| w[0].ty.is_ats() && w[0].ty == w[1].ty && w[0].id == w[1].id && w[0].smmu == w[1].smmu)
        {
            o.cover(Goal::TwoPasidsOneSid);
        }
    }

    /// Step 5: drop the master's entries (built with its current ATS state)
    /// from the old domain's array, flushing tags that lose their last user,
    /// then publish a purged copy. Cannot fail: if the purge cannot
    /// allocate, the trash stays and walkers skip it.
    fn install_old<'a>(&'a self, mv: &Move<'a>, ms: &mut MasterState) {
        let Some(d) = mv.old.domain() else { return };
        let Some(to_unref) = ms.build_invs(mv.m, &self.env, mv.old_ats, mv.ssid, d) else {
            return;
        };
        // A re-attach finds here the array step 1 just published.
        let invs = self.current_invs(mv, d);
        invs.unref(to_unref, &self.env, Some(View::new(&self.machine, mv.cpu)), |inv| {
            if !self.env.mutant(Mutant::NoFlushOnLastUnref) {
                self.flush_tag(mv.cpu, inv);
            }
        });
        if let Err(e) = invs.check(false) {
            self.machine.oracle.report(ViolationKind::ArrayInvariant, format!("{:?} after unref: {e}", d.id));
        }
        if let Ok(Some(purged)) = invs.purge(&self.env) {
            self.install(mv, d, purged);
        }
    }

    /// Fact 5: an ASID/VMID leaving its last array is flushed with its
    /// no-size command (for a VMID that covers the nested stage-1 entries).
    pub(crate) fn flush_tag(&self, cpu: &Cpu, inv: &InvDesc) {
        if matches!(inv.ty, InvType::S1Asid | InvType::S2Vmid) {
            // Size 0 is "everything": the entry's no-size opcode.
            let mut batch = Batch::new(self, cpu);
            batch.emit(inv, 0, 0, 0, false);
            batch.submit();
        }
    }

    /// `arm_smmu_atc_inv_master`: invalidate the master's ATC for `ssid`;
    /// SSID 0 goes without SSV and so covers every PASID.
    pub(crate) fn atc_inv_master(&self, cpu: &Cpu, m: &Master, ssid: u32) {
        let mut cmds: Vec<Cmd> = m.streams.iter().map(|&sid| atc_inv_cmd(sid, ssid, 0, 0)).collect();
        cmds.push(Cmd::sync());
        self.machine.submit(cpu.id, m.smmu, &cmds);
    }

    /// Step 3: point the master's STEs (or one CD) at `target` and tell the
    /// SMMU. As `arm_smmu_write_entry` does, each entry is synced (CFGI and
    /// CMD_SYNC) before the next is written, so a new STE never meets an
    /// old cached CD. With `barrier`, a `dma_wmb` also orders what an entry
    /// points to before it (`arm_smmu_write_entry` from v10 on; v9 has none).
    /// `after_barrier` runs between that barrier and each word's store.
    pub(crate) fn write_ste_cd(&self, mv: &Move, barrier: bool, after_barrier: &mut dyn FnMut()) {
        let Move { cpu, m, ssid, target, ats, .. } = *mv;
        let cd = cd_for(target);
        if ssid != 0 || cd.is_some() {
            self.write_barrier(cpu, barrier);
            after_barrier();
            self.machine.write_cd(cpu.id, m.cd_table, ssid, cd);
            let mut cmds: Vec<Cmd> =
                m.streams.iter().map(|&sid| Cmd { sid, ssid, ..Cmd::new(Opcode::CfgiCd) }).collect();
            cmds.push(Cmd::sync());
            self.machine.submit(cpu.id, m.smmu, &cmds);
        }
        if ssid == 0 {
            self.write_stes(cpu, m, ste_for(target, m.cd_table, ats), barrier, after_barrier);
        }
    }

    /// `dma_wmb` before an STE/CD word: what it points to is visible first.
    fn write_barrier(&self, cpu: &Cpu, barrier: bool) {
        if barrier && !self.env.mutant(Mutant::NoDmaWmbBeforeSte) {
            self.machine.mem.dma_wmb(cpu.id);
        }
    }

    /// Write `ste` for each of the master's streams, then CFGI_STE each and
    /// wait for the sync.
    fn write_stes(&self, cpu: &Cpu, m: &Master, ste: Ste, barrier: bool, after_barrier: &mut dyn FnMut()) {
        self.write_barrier(cpu, barrier);
        after_barrier();
        for &sid in &m.streams {
            self.machine.write_ste(cpu.id, m.smmu, sid, ste);
        }
        let mut cmds: Vec<Cmd> = m.streams.iter().map(|&sid| Cmd { sid, ..Cmd::new(Opcode::CfgiSte) }).collect();
        cmds.push(Cmd::sync());
        self.machine.submit(cpu.id, m.smmu, &cmds);
    }

    /// Before a move that turns ATS off: keep the old configuration but
    /// stop serving translation requests (EATS = 0), then empty the ATC.
    /// Otherwise the device could cache the new domain's translations while
    /// its STE still allows ATS, and the new domain's array, built without
    /// ATS entries, would never invalidate them. ATS itself stays on at the
    /// endpoint until the old entries are fenced.
    fn stop_translation_requests(&self, mv: &Move) {
        if mv.ats || !mv.old_ats || mv.ssid != 0 {
            return;
        }
        self.write_stes(mv.cpu, mv.m, ste_for(mv.old, mv.m.cd_table, false), true, &mut || {});
        self.atc_inv_master(mv.cpu, mv.m, 0);
    }
}

/// Whether any PASID of the master is attached to a domain.
fn pasids_in_use(ms: &MasterState) -> bool {
    ms.attached.iter().any(|(ssid, t)| *ssid != 0 && t.domain().is_some())
}

/// What the kernel refuses before touching anything: a nested target needs
/// a nesting parent and the RID; a PASID takes only a stage-1 or SVA
/// domain (`arm_smmu_s1_set_dev_pasid`), under a RID whose STE holds the CD
/// table; the RID cannot leave its CD table while PASIDs use it. Upstream
/// also lets PASIDs run under a blocked or identity RID by switching the
/// STE to a CD table with S1DSS; the model refuses that with EINVAL/EBUSY.
fn check_attach(ms: &MasterState, ssid: u32, target: &Target) -> Result<(), Errno> {
    let rid_is_s1 = matches!(ms.attached.get(&0), Some(Target::Domain(d)) if matches!(d.stage, Stage::S1 { .. }));
    match target {
        Target::Nested { parent, .. } if !parent.nest_parent() || ssid != 0 => Err(Errno::EINVAL),
        Target::Domain(d) if ssid == 0 && matches!(d.stage, Stage::Sva { .. }) => Err(Errno::EINVAL),
        Target::Domain(d) if ssid != 0 && (matches!(d.stage, Stage::S2 { .. }) || !rid_is_s1) => Err(Errno::EINVAL),
        Target::Identity if ssid != 0 => Err(Errno::EINVAL),
        Target::Domain(d) if matches!(d.stage, Stage::S1 { .. }) => Ok(()),
        _ if ssid == 0 && pasids_in_use(ms) => Err(Errno::EBUSY),
        _ => Ok(()),
    }
}

/// The CD a target needs at its SSID, if any.
fn cd_for(target: &Target) -> Option<Cd> {
    match target {
        Target::Domain(d) => match d.stage {
            Stage::S1 { asid } | Stage::Sva { asid } => Some(Cd { asid, root: d.pt.root }),
            Stage::S2 { .. } => None,
        },
        Target::Nested { s1: GuestS1::Identity { asid }, .. } => Some(Cd { asid: *asid, root: 0 }),
        // The guest writes its own CDs.
        Target::Nested { s1: GuestS1::CdTable(_), .. } => None,
        Target::Blocked | Target::Identity => None,
    }
}

/// The STE a RID attach of `target` installs.
fn ste_for(target: &Target, cd_table: Addr, eats: bool) -> Ste {
    match target {
        Target::Domain(d) => match d.stage {
            Stage::S2 { vmid, .. } => Ste::S2 { vmid, root: d.pt.root, eats },
            Stage::S1 { .. } | Stage::Sva { .. } => Ste::S1 { cd_table, eats },
        },
        Target::Nested { parent, s1 } => {
            let Stage::S2 { vmid, .. } = parent.stage else { unreachable!("checked in attach") };
            let (cd_table, guest_cd) = match s1 {
                GuestS1::CdTable(ipa) => (*ipa, true),
                GuestS1::Identity { .. } => (cd_table, false),
            };
            Ste::Nested { cd_table, vmid, root: parent.pt.root, eats, guest_cd }
        }
        Target::Blocked => Ste::Abort,
        Target::Identity => Ste::Bypass,
    }
}

//! Each command's effect, cache fills, and every oracle check firing on a
//! hand-built bad sequence and staying quiet on the good one.

use hwmodel::*;

mod common;

use common::{world, ASID, CPU, IOVA, SID};

fn ok(t: Translation) -> (u64, Option<DomainId>, Source) {
    match t {
        Translation::Ok { pa, domain, source, .. } => (pa, domain, source),
        Translation::Fault { .. } => panic!("unexpected fault"),
    }
}

fn tlbi(op: Opcode, asid: u16, addr: u64) -> Cmd {
    Cmd { asid, addr, ..Cmd::new(op) }
}

fn kinds(m: &Machine) -> Vec<ViolationKind> {
    m.oracle.violations().iter().map(|v| v.kind).collect()
}

#[test]
fn walk_fills_the_iotlb_with_domain_and_offset() {
    let (w, pa) = world(Features::default());
    assert_eq!(ok(w.m.dma(w.ep, SID, 0, IOVA + 0x10)), (pa + 0x10, Some(DomainId(1)), Source::Walk));
    assert_eq!(ok(w.m.dma(w.ep, SID, 0, IOVA)), (pa, Some(DomainId(1)), Source::Iotlb));
    assert_eq!(w.m.smmu(w.smmu).iotlb().len(), 1);
    assert!(matches!(w.m.dma(w.ep, SID, 0, IOVA + PAGE), Translation::Fault { .. }), "unmapped page faults");
    assert!(matches!(w.m.dma(w.ep, SID, 1, IOVA), Translation::Fault { .. }), "no CD for ssid 1");
}

#[test]
fn cached_entries_carry_the_page_table_generation() {
    let (w, _) = world(Features::default());
    let gen_of = |t| match t {
        Translation::Ok { gen, .. } => gen,
        Translation::Fault { .. } => panic!("fault"),
    };
    assert_eq!(w.pt.generation(), 1);
    let pa = w.m.alloc_frame();
    w.pt.map(&w.m, CPU, IOVA + PAGE, pa, PAGE).unwrap();
    w.m.mem.smp_mb(CPU);
    assert_eq!(gen_of(w.m.dma(w.ep, SID, 0, IOVA)), 1);
    assert_eq!(gen_of(w.m.dma(w.ep, SID, 0, IOVA)), 1, "IOTLB hit keeps it");
    assert_eq!(gen_of(w.m.dma(w.ep, SID, 0, IOVA + PAGE)), 2);
}

#[test]
fn block_mappings_translate_and_invalidate_by_any_page_inside() {
    let (w, _) = world(Features::default());
    let block = w.m.alloc_frame() & !(BLOCK - 1);
    w.pt.map(&w.m, CPU, 2 * BLOCK, block, BLOCK).unwrap();
    w.m.mem.smp_mb(CPU);
    assert_eq!(ok(w.m.dma(w.ep, SID, 0, 2 * BLOCK + 0x1234)).0, block + 0x1234);
    assert_eq!(ok(w.m.dma(w.ep, SID, 0, 2 * BLOCK + 5 * PAGE)).2, Source::Iotlb);
    w.m.submit(CPU, w.smmu, &[tlbi(Opcode::TlbiNhVa, ASID, 2 * BLOCK + 7 * PAGE), Cmd::sync()]);
    assert_eq!(ok(w.m.dma(w.ep, SID, 0, 2 * BLOCK)).2, Source::Walk);
}

#[test]
fn a_ttl_hint_limits_a_range_tlbi_to_its_level() {
    let (w, _) = world(Features { range_inv: true, ..Features::default() });
    let block = w.m.alloc(BLOCK);
    w.pt.map(&w.m, CPU, 2 * BLOCK, block, BLOCK).unwrap();
    w.m.mem.smp_mb(CPU);
    ok(w.m.dma(w.ep, SID, 0, 2 * BLOCK));
    let whole_block = |ttl| Range { num: 0, scale: 9, tg: 1, ttl };
    let inv = |ttl| Cmd { range: whole_block(ttl), leaf: true, ..tlbi(Opcode::TlbiNhVa, ASID, 2 * BLOCK) };
    w.m.submit(CPU, w.smmu, &[inv(3), Cmd::sync()]);
    assert_eq!(ok(w.m.dma(w.ep, SID, 0, 2 * BLOCK)).2, Source::Iotlb, "TTL 3 names pages: the block survives");
    w.m.submit(CPU, w.smmu, &[inv(2), Cmd::sync()]);
    assert_eq!(ok(w.m.dma(w.ep, SID, 0, 2 * BLOCK)).2, Source::Walk, "TTL 2 names blocks");
}

#[test]
fn a_leaf_only_tlbi_leaves_the_walk_cache_pointing_at_a_freed_table() {
    for leaf in [true, false] {
        let (w, pa) = world(Features::default());
        ok(w.m.dma(w.ep, SID, 0, IOVA));
        assert_eq!(w.m.smmu(w.smmu).iotlb().walks_len(), 1, "the walk cached its table pointer");
        let unmapped = w.pt.unmap_table(&w.m, CPU, IOVA & !(BLOCK - 1)).unwrap();
        assert_eq!(unmapped, [(IOVA, pa)]);
        w.m.mem.smp_mb(CPU);
        w.m.submit(CPU, w.smmu, &[Cmd { leaf, ..tlbi(Opcode::TlbiNhVa, ASID, IOVA) }, Cmd::sync()]);
        let after = w.m.dma(w.ep, SID, 0, IOVA);
        if leaf {
            assert_eq!(ok(after).0, pa, "the cached pointer still reaches the freed table's entry");
        } else {
            assert!(matches!(after, Translation::Fault { .. }), "a non-leaf TLBI dropped the pointer");
        }
    }
}

#[test]
fn hardware_may_refetch_a_live_translation_right_after_its_invalidation_never_a_dead_one() {
    let (mut w, _) = world(Features { ats: true, ..Features::default() });
    w.m.set_refetch(true);
    w.m.set_ats(w.ep, true);
    let tlbi_inv = [tlbi(Opcode::TlbiNhVa, ASID, IOVA), Cmd::sync()];
    let atc_inv = [Cmd { sid: SID, addr: IOVA, atc_size: 12, ..Cmd::new(Opcode::AtcInv) }, Cmd::sync()];
    let (mut iotlb_refills, mut atc_refills) = (0, 0);
    for _ in 0..64 {
        ok(w.m.dma(w.ep, SID, 0, IOVA));
        w.m.submit(CPU, w.smmu, &tlbi_inv);
        iotlb_refills += w.m.smmu(w.smmu).iotlb().len();
        ok(w.m.dma(w.ep, SID, 0, IOVA));
        w.m.submit(CPU, w.smmu, &atc_inv);
        atc_refills += w.m.endpoint(w.ep).atc_len();
    }
    assert!(0 < iotlb_refills && iotlb_refills < 64, "{iotlb_refills} IOTLB refills in 64");
    assert!(0 < atc_refills && atc_refills < 64, "{atc_refills} ATC refills in 64");
    w.pt.unmap(&w.m, CPU, IOVA, PAGE).unwrap();
    w.m.mem.smp_mb(CPU);
    for _ in 0..16 {
        w.m.submit(CPU, w.smmu, &tlbi_inv);
        w.m.submit(CPU, w.smmu, &atc_inv);
        assert!(w.m.smmu(w.smmu).iotlb().is_empty() && w.m.endpoint(w.ep).atc_len() == 0);
    }
}

#[test]
fn tlbi_commands_reach_only_their_regime() {
    let (w, _) = world(Features::default());
    let fill = || assert_eq!(ok(w.m.dma(w.ep, SID, 0, IOVA)).2, Source::Walk);
    let cached = || w.m.smmu(w.smmu).iotlb().len() == 1;
    fill();
    for miss in [
        tlbi(Opcode::TlbiNhVa, ASID + 1, IOVA),
        tlbi(Opcode::TlbiNhVa, ASID, IOVA + PAGE),
        tlbi(Opcode::TlbiEl2Asid, ASID, 0),
        tlbi(Opcode::TlbiEl2Va, ASID, IOVA),
        Cmd { vmid: 0, ..tlbi(Opcode::TlbiS2Ipa, 0, IOVA) },
        Cmd { vmid: 3, ..Cmd::new(Opcode::TlbiS12Vmall) },
    ] {
        w.m.submit(CPU, w.smmu, &[miss, Cmd::sync()]);
        assert!(cached(), "{miss:?} must not touch a stage-1 NH entry");
    }
    for hit in [tlbi(Opcode::TlbiNhVa, ASID, IOVA), tlbi(Opcode::TlbiNhAsid, ASID, 0), Cmd::new(Opcode::TlbiNhAll)] {
        w.m.submit(CPU, w.smmu, &[hit, Cmd::sync()]);
        assert!(!cached(), "{hit:?} must remove it");
        fill();
    }
}

#[test]
fn e2h_entries_need_el2_commands() {
    let (w, _) = world(Features { e2h: true, ..Features::default() });
    ok(w.m.dma(w.ep, SID, 0, IOVA));
    w.m.submit(CPU, w.smmu, &[tlbi(Opcode::TlbiNhAsid, ASID, 0), Cmd::sync()]);
    assert_eq!(w.m.smmu(w.smmu).iotlb().len(), 1, "NH TLBI misses an EL2 entry");
    w.m.submit(CPU, w.smmu, &[tlbi(Opcode::TlbiEl2Va, ASID, IOVA), Cmd::sync()]);
    assert!(w.m.smmu(w.smmu).iotlb().is_empty());
}

#[test]
fn range_tlbi_covers_num_plus_one_shifted_by_scale_pages() {
    let (w, _) = world(Features { range_inv: true, ..Features::default() });
    let pa = w.m.alloc_frame();
    w.pt.map(&w.m, CPU, IOVA + 3 * PAGE, pa, PAGE).unwrap();
    w.m.mem.smp_mb(CPU);
    ok(w.m.dma(w.ep, SID, 0, IOVA));
    ok(w.m.dma(w.ep, SID, 0, IOVA + 3 * PAGE));
    // (num 1 + 1) << scale 1 = 4 pages from IOVA.
    let range = Range { num: 1, scale: 1, tg: 1, ttl: 3 };
    assert_eq!(Cmd { range, ..tlbi(Opcode::TlbiNhVa, ASID, IOVA) }.tlbi_span(), 4 * PAGE);
    w.m.submit(CPU, w.smmu, &[Cmd { range, ..tlbi(Opcode::TlbiNhVa, ASID, IOVA + PAGE) }, Cmd::sync()]);
    assert_eq!(ok(w.m.dma(w.ep, SID, 0, IOVA)).2, Source::Iotlb, "below the range");
    assert_eq!(ok(w.m.dma(w.ep, SID, 0, IOVA + 3 * PAGE)).2, Source::Walk, "inside the range");
}

#[test]
fn nested_entries_survive_s2_ipa_and_die_by_nh_all() {
    let mut m = Machine::new(1);
    // Exact command effects: no speculative refill after an invalidation.
    m.set_refetch(false);
    let smmu = m.add_smmu(Features::default());
    let ep = m.add_endpoint(smmu, &[SID], false);
    let s2 = PageTable::new(&m, DomainId(2));
    let cd_table = m.alloc_frame();
    m.write_cd(CPU, cd_table, 0, Some(Cd { asid: 9, root: 0 }));
    m.write_ste(CPU, smmu, SID, Ste::Nested { cd_table, vmid: 4, root: s2.root, eats: false, guest_cd: false });
    s2.map(&m, CPU, IOVA, m.alloc_frame(), PAGE).unwrap();
    m.mem.smp_mb(CPU);
    ok(m.dma(ep, SID, 0, IOVA));
    m.submit(CPU, smmu, &[Cmd { vmid: 4, ..tlbi(Opcode::TlbiS2Ipa, 0, IOVA) }, Cmd::sync()]);
    assert_eq!(ok(m.dma(ep, SID, 0, IOVA)).2, Source::Iotlb, "S2_IPA leaves combined entries");
    m.submit(CPU, smmu, &[Cmd { vmid: 4, ..Cmd::new(Opcode::TlbiNhAll) }, Cmd::sync()]);
    assert_eq!(ok(m.dma(ep, SID, 0, IOVA)).2, Source::Walk);
    m.submit(CPU, smmu, &[Cmd { vmid: 4, ..Cmd::new(Opcode::TlbiS12Vmall) }, Cmd::sync()]);
    assert_eq!(ok(m.dma(ep, SID, 0, IOVA)).2, Source::Walk);
}

#[test]
fn a_guest_stage_1_is_walked_through_stage_2_and_invalidated_under_the_parents_vmid() {
    use hwmodel::pgtable::{page_desc, table_desc};
    let mut m = Machine::new(1);
    m.set_refetch(false);
    let smmu = m.add_smmu(Features::default());
    let ep = m.add_endpoint(smmu, &[SID], false);
    let s2 = PageTable::new(&m, DomainId(2));
    // Guest RAM: its CD table, its two table levels and a data page, at IPAs.
    let (cd_ipa, root_ipa, table_ipa, data_ipa) = (0x1000, 0x2000, 0x3000, 0x4000);
    let pa: Vec<u64> = [cd_ipa, root_ipa, table_ipa, data_ipa]
        .iter()
        .map(|&ipa| {
            let pa = m.alloc_frame();
            s2.map(&m, CPU, ipa, pa, PAGE).unwrap();
            pa
        })
        .collect();
    m.mem.store(CPU, pa[1] + 8 * (IOVA / BLOCK), table_desc(table_ipa));
    m.mem.store(CPU, pa[2] + 8 * (IOVA % BLOCK / PAGE), page_desc(data_ipa));
    m.write_cd(CPU, pa[0], 0, Some(Cd { asid: 9, root: root_ipa }));
    m.write_ste(CPU, smmu, SID, Ste::Nested { cd_table: cd_ipa, vmid: 4, root: s2.root, eats: false, guest_cd: true });
    m.mem.smp_mb(CPU);
    assert_eq!(ok(m.dma(ep, SID, 0, IOVA + 8)), (pa[3] + 8, Some(DomainId(2)), Source::Walk));
    assert_eq!(ok(m.dma(ep, SID, 0, IOVA)).2, Source::Iotlb);
    assert!(matches!(m.dma(ep, SID, 0, IOVA + PAGE), Translation::Fault { walked: None }), "a guest S1 fault");
    for miss in
        [Cmd { vmid: 0, ..tlbi(Opcode::TlbiNhVa, 9, IOVA) }, Cmd { vmid: 4, ..tlbi(Opcode::TlbiS2Ipa, 0, data_ipa) }]
    {
        m.submit(CPU, smmu, &[miss, Cmd::sync()]);
        assert_eq!(ok(m.dma(ep, SID, 0, IOVA)).2, Source::Iotlb, "{miss} leaves the combined entry");
    }
    m.submit(CPU, smmu, &[Cmd { vmid: 4, ..tlbi(Opcode::TlbiNhVa, 9, IOVA) }, Cmd::sync()]);
    assert_eq!(ok(m.dma(ep, SID, 0, IOVA)).2, Source::Walk, "the guest's ASID under the parent's VMID");
    // The stage 2 decides too: without the data page's IPA the walk faults.
    s2.unmap(&m, CPU, data_ipa, PAGE).unwrap();
    m.submit(CPU, smmu, &[Cmd { vmid: 4, ..Cmd::new(Opcode::TlbiS12Vmall) }, Cmd::sync()]);
    assert!(matches!(m.dma(ep, SID, 0, IOVA), Translation::Fault { walked: None }));
}

#[test]
fn ste_changes_need_cfgi() {
    let (w, _) = world(Features::default());
    ok(w.m.dma(w.ep, SID, 0, IOVA));
    w.m.write_ste(CPU, w.smmu, SID, Ste::Abort);
    w.m.mem.smp_mb(CPU);
    assert_eq!(ok(w.m.dma(w.ep, SID, 0, IOVA)).2, Source::Iotlb, "cached STE still used");
    w.m.submit(CPU, w.smmu, &[Cmd { sid: SID, ..Cmd::new(Opcode::CfgiSte) }, Cmd::sync()]);
    assert!(matches!(w.m.dma(w.ep, SID, 0, IOVA), Translation::Fault { .. }));
    w.m.write_cd(CPU, w.cd_table, 0, None);
    w.m.write_ste(CPU, w.smmu, SID, Ste::S1 { cd_table: w.cd_table, eats: false });
    w.m.submit(CPU, w.smmu, &[Cmd { sid: SID, ..Cmd::new(Opcode::CfgiSte) }, Cmd::sync()]);
    assert!(matches!(w.m.dma(w.ep, SID, 0, IOVA), Translation::Fault { .. }), "CD cleared");
}

#[test]
fn cfgi_cd_all_drops_every_cd_of_its_stream_only() {
    let (w, _) = world(Features::default());
    ok(w.m.dma(w.ep, SID, 0, IOVA));
    w.m.write_cd(CPU, w.cd_table, 0, None);
    w.m.mem.smp_mb(CPU);
    let cd_all = |sid| Cmd { sid, ..Cmd::new(Opcode::CfgiCdAll) };
    w.m.submit(CPU, w.smmu, &[cd_all(SID + 1), tlbi(Opcode::TlbiNhAsid, ASID, 0), Cmd::sync()]);
    assert_eq!(ok(w.m.dma(w.ep, SID, 0, IOVA)).2, Source::Walk, "another stream's CFGI_CD_ALL keeps this CD");
    w.m.submit(CPU, w.smmu, &[cd_all(SID), tlbi(Opcode::TlbiNhAsid, ASID, 0), Cmd::sync()]);
    assert!(matches!(w.m.dma(w.ep, SID, 0, IOVA), Translation::Fault { .. }), "its own drops the cached CD");
    assert_eq!(Cmd::decode(cd_all(SID).encode()), Some(cd_all(SID)));
}

#[test]
fn tlbi_nh_vaa_hits_every_asid_of_its_vmid_at_the_address() {
    let (w, _) = world(Features::default());
    let vaa = |vmid, addr| Cmd { vmid, addr, ..Cmd::new(Opcode::TlbiNhVaa) };
    ok(w.m.dma(w.ep, SID, 0, IOVA));
    for miss in [vaa(0, IOVA + PAGE), vaa(5, IOVA)] {
        w.m.submit(CPU, w.smmu, &[miss, Cmd::sync()]);
        assert_eq!(ok(w.m.dma(w.ep, SID, 0, IOVA)).2, Source::Iotlb, "{miss} misses");
    }
    w.m.submit(CPU, w.smmu, &[vaa(0, IOVA), Cmd::sync()]);
    assert_eq!(ok(w.m.dma(w.ep, SID, 0, IOVA)).2, Source::Walk, "any ASID at the address");
    assert!(vaa(0, IOVA).is_tlbi_by_addr() && vaa(0, IOVA + 8).illegal(false).is_some());
    assert_eq!(Cmd::decode(vaa(3, IOVA).encode()), Some(vaa(3, IOVA)));
}

#[test]
fn tlbi_nsnh_all_empties_every_vmid_but_not_el2() {
    let (w, _) = world(Features::default());
    ok(w.m.dma(w.ep, SID, 0, IOVA));
    w.m.submit(CPU, w.smmu, &[Cmd::new(Opcode::TlbiNsnhAll), Cmd::sync()]);
    assert!(w.m.smmu(w.smmu).iotlb().is_empty());
    let (e, _) = world(Features { e2h: true, ..Features::default() });
    ok(e.m.dma(e.ep, SID, 0, IOVA));
    e.m.submit(CPU, e.smmu, &[Cmd::new(Opcode::TlbiNsnhAll), Cmd::sync()]);
    assert_eq!(e.m.smmu(e.smmu).iotlb().len(), 1, "EL2 entries are the hypervisor's");
}

#[test]
fn atc_fills_when_ats_is_on_and_atc_inv_scopes_by_ssid() {
    let (w, pa) = world(Features { ats: true, ..Features::default() });
    w.m.set_ats(w.ep, true);
    assert_eq!(ok(w.m.dma(w.ep, SID, 0, IOVA)).2, Source::Walk);
    assert_eq!(ok(w.m.dma(w.ep, SID, 0, IOVA)), (pa, Some(DomainId(1)), Source::Atc));
    let atc_inv = |ssid, ssv| Cmd { sid: SID, ssid, ssv, addr: IOVA, atc_size: 12, ..Cmd::new(Opcode::AtcInv) };
    w.m.submit(CPU, w.smmu, &[atc_inv(3, true), Cmd::sync()]);
    assert_eq!(w.m.endpoint(w.ep).atc_len(), 1, "other SSID untouched");
    w.m.submit(CPU, w.smmu, &[atc_inv(0, false), Cmd::sync()]);
    assert_eq!(w.m.endpoint(w.ep).atc_len(), 0, "without SSV it hits every SSID");
    ok(w.m.dma(w.ep, SID, 0, IOVA));
    w.m.set_ats(w.ep, false);
    assert_eq!(w.m.endpoint(w.ep).atc_len(), 0, "disabling ATS drops the ATC");
    assert!(kinds(&w.m).is_empty());
}

// --- every oracle check: bad sequence fires, good sequence does not ---

#[test]
fn stale_translation_fires_without_invalidation_and_reports_its_age() {
    for invalidate in [false, true] {
        let (w, pa) = world(Features::default());
        ok(w.m.dma(w.ep, SID, 0, IOVA));
        assert_eq!(w.pt.unmap(&w.m, CPU, IOVA, PAGE), Ok(pa));
        if invalidate {
            w.m.submit(CPU, w.smmu, &[tlbi(Opcode::TlbiNhVa, ASID, IOVA), Cmd::sync()]);
        }
        w.m.oracle.unmap_returned(DomainId(1), IOVA, pa, PAGE);
        w.m.submit(CPU, w.smmu, &[Cmd::sync()]);
        let r = w.m.dma(w.ep, SID, 0, IOVA);
        if invalidate {
            assert!(matches!(r, Translation::Fault { .. }));
            assert!(kinds(&w.m).is_empty());
        } else {
            assert_eq!(kinds(&w.m), [ViolationKind::StaleTranslation]);
            assert_eq!(w.m.oracle.stale_ages().into_iter().collect::<Vec<_>>(), [(1, 1)], "one sync since unmap");
        }
    }
}

#[test]
fn old_domain_translation_fires_when_a_reused_asid_was_not_flushed() {
    for flush in [false, true] {
        let (w, _) = world(Features::default());
        ok(w.m.dma(w.ep, SID, 0, IOVA));
        // Domain 2 takes over ASID 5 and the CD; the old entries must go.
        let pt2 = PageTable::new(&w.m, DomainId(2));
        pt2.map(&w.m, CPU, IOVA, w.m.alloc_frame(), PAGE).unwrap();
        w.m.mem.dma_wmb(CPU);
        w.m.write_cd(CPU, w.cd_table, 0, Some(Cd { asid: ASID, root: pt2.root }));
        let mut cmds = vec![Cmd { sid: SID, ..Cmd::new(Opcode::CfgiCd) }];
        if flush {
            cmds.push(tlbi(Opcode::TlbiNhAsid, ASID, 0));
        }
        cmds.push(Cmd::sync());
        w.m.submit(CPU, w.smmu, &cmds);
        w.m.oracle.attach_returned(w.ep, 0, Allowed::Domain(DomainId(2)));
        let (_, domain, _) = ok(w.m.dma(w.ep, SID, 0, IOVA));
        assert_eq!(domain, Some(DomainId(if flush { 2 } else { 1 })));
        let want: &[_] = if flush { &[] } else { &[ViolationKind::OldDomainTranslation] };
        assert_eq!(kinds(&w.m), want);
    }
}

#[test]
fn command_to_removed_smmu_fires() {
    let (w, _) = world(Features::default());
    w.m.submit(CPU, w.smmu, &[Cmd::sync()]);
    assert!(kinds(&w.m).is_empty());
    w.m.remove_smmu(w.smmu);
    w.m.submit(CPU, w.smmu, &[tlbi(Opcode::TlbiNhAsid, ASID, 0), Cmd::sync()]);
    assert_eq!(kinds(&w.m), [ViolationKind::CmdToRemovedSmmu; 2]);
}

#[test]
fn atc_inv_in_flight_across_an_ats_disable_fires() {
    let (w, _) = world(Features { ats: true, ..Features::default() });
    let atc_inv = Cmd { sid: SID, atc_size: 64, ..Cmd::new(Opcode::AtcInv) };
    w.m.submit(CPU, w.smmu, &[atc_inv, Cmd::sync()]);
    w.m.set_ats(w.ep, true);
    w.m.submit(CPU, w.smmu, &[atc_inv, Cmd::sync()]);
    w.m.set_ats(w.ep, false);
    w.m.submit(CPU, w.smmu, &[atc_inv, Cmd::sync()]);
    assert!(kinds(&w.m).is_empty(), "before enable, while on, after off: all complete");
    // Queued while on, applied after the disable: the race the series fences.
    w.m.set_ats(w.ep, true);
    w.m.submit(CPU, w.smmu, &[atc_inv]);
    w.m.set_ats(w.ep, false);
    w.m.submit(CPU, w.smmu, &[Cmd::sync()]);
    assert_eq!(kinds(&w.m), [ViolationKind::AtcInvAtsDisabled]);
}

#[test]
fn illegal_commands_raise_cerror_ill() {
    let range = Range { num: 0, scale: 0, tg: 1, ttl: 3 };
    let (w, _) = world(Features { range_inv: true, ..Features::default() });
    w.m.submit(CPU, w.smmu, &[Cmd { range, ..tlbi(Opcode::TlbiNhVa, ASID, IOVA) }, Cmd::sync()]);
    assert!(kinds(&w.m).is_empty(), "legal with RANGE_INV");
    let (w, _) = world(Features::default());
    for bad in [
        Cmd { range, ..tlbi(Opcode::TlbiNhVa, ASID, IOVA) },
        tlbi(Opcode::TlbiNhVa, ASID, IOVA + 1),
        Cmd { range, ..tlbi(Opcode::TlbiNhAsid, ASID, 0) },
        Cmd { atc_size: 3, ..Cmd::new(Opcode::AtcInv) },
    ] {
        w.m.submit(CPU, w.smmu, &[bad, Cmd::sync()]);
    }
    assert_eq!(kinds(&w.m), [ViolationKind::IllegalCommand; 4]);
}

#[test]
fn a_sync_returns_only_after_every_earlier_effect() {
    let (w, _) = world(Features::default());
    ok(w.m.dma(w.ep, SID, 0, IOVA));
    let before = w.m.oracle.syncs();
    w.m.submit(CPU, w.smmu, &[tlbi(Opcode::TlbiNhVa, ASID, IOVA), tlbi(Opcode::TlbiNhAsid, ASID, 0), Cmd::sync()]);
    assert!(w.m.smmu(w.smmu).iotlb().is_empty());
    assert_eq!(w.m.oracle.syncs(), before + 1);
}

#[test]
fn trace_hash_depends_on_the_events() {
    let run = |iova| {
        let (w, _) = world(Features::default());
        w.m.dma(w.ep, SID, 0, iova);
        w.m.oracle.trace_hash()
    };
    assert_eq!(run(IOVA), run(IOVA));
    assert_ne!(run(IOVA), run(IOVA + PAGE));
}

#[test]
fn stale_tag_fires_for_a_cached_asid_no_array_holds() {
    let (w, _) = world(Features::default());
    ok(w.m.dma(w.ep, SID, 0, IOVA));
    w.m.check_tags(|_, t| t.asid == ASID);
    assert!(kinds(&w.m).is_empty());
    w.m.check_tags(|_, _| false);
    assert_eq!(kinds(&w.m), [ViolationKind::StaleTag]);
}

//! Signatures: one per cause, the same for a failure and its shrunk form,
//! and what `--known` matches.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn stress(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stress")).args(args).output().expect("stress runs")
}

fn json(o: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&o.stdout);
    serde_json::from_str(text.trim().lines().last().unwrap_or("null")).expect("one JSON object")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn out_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("stress-signatures-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// (id, signature) of each finding in `findings/ENGINE-known.json`.
fn known(engine: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(root().join(format!("findings/{engine}-known.json"))).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["id"].as_str().unwrap().into(), f["signature"].as_str().unwrap().into()))
        .collect()
}

#[test]
fn each_checked_in_finding_replays_to_its_known_signature() {
    for engine in ["v9", "legacy"] {
        for (id, signature) in known(engine) {
            let file = harness::failure::FailureFile::load(&root().join(format!("findings/{engine}/{id}.json")))
                .expect("a checked-in finding");
            assert_eq!(file.signature, signature, "{engine}/{id}: the file's own signature");
            let r = file.replay(None).expect("replays");
            let found = file.verdict(&r).expect("same violation, same trace hash");
            assert_eq!(found.signature, signature, "{engine}/{id}");
        }
    }
}

/// The mutants whose failures share a kind with a v9 finding, with their
/// failure's signature.
fn mutant_signatures(names: &[&str], out: &Path) -> Vec<(String, String, serde_json::Value)> {
    let o = stress(&[
        "--mutants",
        &names.join(","),
        "--seed",
        "1",
        "--jobs",
        "2",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    json(&o)["mutants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let f = r["failure"].clone();
            (r["name"].as_str().unwrap().into(), f["signature"].as_str().unwrap().into(), f)
        })
        .collect()
}

#[test]
fn mutants_with_a_v9_findings_kind_get_their_own_signature_unless_theirs_is_its_cause() {
    let out = out_dir("mutants");
    let v9 = known("v9");
    let of = |id: &str| v9.iter().find(|(i, _)| i == id).map(|(_, s)| s.clone()).unwrap();
    // These two break a line into what v9 does: the walker's plain
    // read_lock, and a join without the proposal's flush. Their cause is
    // the finding's.
    let same = [
        ("read-lock-in-irq-without-irqsave", "read-lock-in-irq-fair"),
        ("no-tlb-flush-before-ats", "ats-join-stale-iotlb"),
    ];
    let names = [
        "old-invs-before-ste",
        "new-invs-after-ste",
        "no-smp-mb-inv-range",
        "ats-in-tlbi-batch",
        "s1-clear-always-skipped",
        "publish-plain-store",
        "unref-without-ats-fence",
        "ats-off-without-grace-period",
        "unsorted-stream-ids",
        "read-lock-in-irq-without-irqsave",
        "no-tlb-flush-before-ats",
    ];
    for (name, signature, failure) in mutant_signatures(&names, &out) {
        match same.iter().find(|(m, _)| *m == name) {
            Some((_, id)) => assert_eq!(signature, of(id), "{name} is {id}'s cause"),
            None => assert!(
                v9.iter().all(|(_, s)| *s != signature),
                "{name} has a cause of its own but shows as a v9 finding: {signature}"
            ),
        }
        // The run shrinks only while the signature holds.
        let shrunk = failure["shrunk_file"].as_str().expect("shrunk");
        let file = harness::failure::FailureFile::load(Path::new(shrunk)).unwrap();
        assert_eq!(file.signature, signature, "{name}: the shrunk form's signature");
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_run_with_every_finding_known_passes_and_each_one_left_out_is_named_new() {
    let out = out_dir("known");
    let o_ = out.to_str().unwrap();
    let full = root().join("findings/v9-known.json");
    let args =
        ["--engine", "v9", "--scenario", "swarm", "--seed", "3", "--iterations", "20000", "--jobs", "2", "--json"];
    let o = stress(&[&args[..], &["--known", full.to_str().unwrap(), "--out", o_]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("distinct signatures"), "{}", stderr(&o));
    let table = json(&o)["runs"][0]["signatures"].as_array().cloned().unwrap();
    assert!(table.len() >= 2, "{table:?}");

    // Two findings left out: the run goes on past both, names each as new
    // with a replay of its first, and fails.
    let text = std::fs::read_to_string(&full).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let gone = ["ssid-less-cmp", "purge-err-ptr"];
    let removed: Vec<serde_json::Value> = gone
        .iter()
        .map(|id| {
            let all = v["findings"].as_array_mut().unwrap();
            all.remove(all.iter().position(|f| f["id"] == *id).unwrap())
        })
        .collect();
    std::fs::create_dir_all(&out).unwrap();
    let partial = out.join("known.json");
    std::fs::write(&partial, v.to_string()).unwrap();
    let o = stress(&[&args[..], &["--known", partial.to_str().unwrap(), "--out", o_]].concat());
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let r = &json(&o)["runs"][0];
    assert_eq!(r["schedules"], 20000, "the run explores past new signatures: {r}");
    let new: Vec<_> = r["signatures"].as_array().unwrap().iter().filter(|s| s["id"].is_null()).cloned().collect();
    let mut want: Vec<_> = removed.iter().map(|f| f["signature"].clone()).collect();
    let mut got: Vec<_> = new.iter().map(|s| s["signature"].clone()).collect();
    want.sort_by_key(|s| s.to_string());
    got.sort_by_key(|s| s.to_string());
    assert_eq!(got, want, "{r}");
    assert_eq!(r["violations"], 2, "{r}");
    assert!(want.contains(&r["failure"]["signature"]), "{r}");
    // Each new signature's replay reproduces it.
    for s in &new {
        let file = s["replay"].as_str().unwrap();
        let o = stress(&["--replay", file, "--json"]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert_eq!(json(&o)["runs"][0]["failure"]["signature"], s["signature"], "{file}");
    }
    // Told to, the run ends at the first new one instead.
    let o = stress(&[&args[..], &["--known", partial.to_str().unwrap(), "--stop-at-new", "--out", o_]].concat());
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let r = &json(&o)["runs"][0];
    assert!(r["schedules"].as_u64().unwrap() < 20000, "{r}");
    assert!(want.contains(&r["failure"]["signature"]), "{r}");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn report_is_paste_ready_text_or_a_one_line_error() {
    let f = root().join("findings/v9/ats-join-stale-iotlb.json");
    let o = stress(&["--report", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    // The cause, a column per CPU with the functions heading their events,
    // the assumptions and the replay line.
    assert!(text.starts_with("stale-translation in v9 (replace scenario"), "{text}");
    assert!(text.contains("publishes a newer array than the unmap walks"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("cpu ") && l.contains("endpoint 0")), "{text}");
    assert!(text.contains("arm_smmu_install_new_domain_invs():"), "{text}");
    assert!(text.contains("--atc-inv-disabled"), "{text}");
    assert!(text.contains(&format!("Reproduce: stress --replay {}", f.display())), "{text}");
    // A failure that ended its threads has no trace but still a report.
    let f = root().join("findings/v9/s1-clear-continue-spins.json");
    let o = stress(&["--report", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("No event trace"));
    for bad in ["/nonexistent.json", concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")] {
        let o = stress(&["--report", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert_eq!(stderr(&o).trim().lines().count(), 1, "{}", stderr(&o));
    }
}

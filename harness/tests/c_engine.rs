//! `stress --engine c`: the series' own C under the harness. The tests
//! that need the seed read it from `SMMU_SERIES` (CI sets it) and say they
//! were skipped otherwise; a set path that does not exist fails them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn stress(args: &[&str]) -> Output {
    stress_with(args, &[])
}

fn stress_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_stress"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run stress")
}

fn out_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("stress-c-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The seed series, or `None` (and a note) when `SMMU_SERIES` is unset.
fn seed() -> Option<String> {
    let Some(paths) = engine::c::series_from_env() else {
        eprintln!("skipped: SMMU_SERIES is not set (CI sets it to ../shared/seeds/001_160d3a3c42ecf529.txt)");
        return None;
    };
    let p = paths.into_iter().next().expect("a path");
    assert!(p.exists(), "SMMU_SERIES names {}, which does not exist", p.display());
    Some(p.display().to_string())
}

/// The last `return` of `arm_smmu_inv_cmp` as the series adds it.
fn cmp_return(lines: &[&str]) -> usize {
    let def = lines.iter().position(|l| l.starts_with('+') && l.contains("int arm_smmu_inv_cmp(")).expect("the cmp");
    let end = (def..lines.len()).find(|&k| lines[k] == "+}").expect("its end");
    (def..end).rev().find(|&k| lines[k].trim_start_matches('+').trim_start().starts_with("return ")).expect("a return")
}

/// The `continue` of the S2_VMID_S1_CLEAR case of the walker.
fn s1_clear_continue(lines: &[&str]) -> usize {
    let def = lines
        .iter()
        .position(|l| l.starts_with('+') && l.contains(" __arm_smmu_domain_inv_range("))
        .expect("the walker");
    let case = (def..lines.len()).find(|&k| lines[k].contains("case INV_TYPE_S2_VMID_S1_CLEAR")).expect("the case");
    (case..lines.len()).find(|&k| lines[k].trim_start_matches('+').trim() == "continue;").expect("its continue")
}

/// A copy of `series` with the line `at` finds changed by `edit`: a
/// reviewer's one-line change. The series' text stays the user's input:
/// the test finds its lines by structure.
fn patched(series: &str, at: fn(&[&str]) -> usize, edit: impl Fn(&str) -> String, dir: &Path) -> String {
    let text = std::fs::read_to_string(series).expect("read the series");
    let mut lines: Vec<&str> = text.split('\n').collect();
    let k = at(&lines);
    let changed = edit(lines[k]);
    assert_ne!(changed, lines[k], "the edit changes the line");
    lines[k] = &changed;
    std::fs::create_dir_all(dir).expect("mkdir");
    let path = dir.join(format!("series-{k}-{:x}.patch", changed.len()));
    std::fs::write(&path, lines.join("\n")).expect("write the patched series");
    path.display().to_string()
}

/// One line on stderr, exit 2, nothing run and nothing written.
#[track_caller]
fn refused(o: &Output, says: &str, out: &Path) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let last = err.trim_end().lines().last().unwrap_or_default();
    assert!(last.starts_with("stress: error: ") && last.contains(says), "wanted {says:?}: {err}");
    assert!(!err.contains("violation"), "a schedule ran: {err}");
    assert!(o.stdout.is_empty(), "a report was printed: {}", String::from_utf8_lossy(&o.stdout));
    let files = std::fs::read_dir(out).map(|d| d.count()).unwrap_or(0);
    assert_eq!(files, 0, "a file was written in {}", out.display());
}

#[test]
fn a_series_that_cannot_run_is_one_line_and_exit_2_before_any_schedule() {
    let out = out_dir("bad");
    let o_ = out.display().to_string();
    let dir = std::env::temp_dir().join(format!("stress-c-inputs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let junk = dir.join("junk.txt");
    std::fs::write(&junk, "not a patch\n").expect("write");
    let empty = dir.join("empty.patch");
    std::fs::write(&empty, "").expect("write");
    let run = |series: &str| stress(&["--engine", "c", "--series", series, "--iterations", "1", "--out", &o_]);
    refused(&run(&junk.display().to_string()), "neither a patch series nor", &out);
    refused(&run(&empty.display().to_string()), "is empty", &out);
    refused(&run("/nonexistent/series.patch"), "cannot read the series", &out);
    refused(&stress(&["--engine", "c", "--iterations", "1", "--out", &o_]), "--series", &out);

    let Some(series) = seed() else { return };
    let text = std::fs::read_to_string(&series).expect("read the series");
    // Cut inside the hunk that adds arm_smmu_invs_merge.
    let at = text.find("arm_smmu_invs_merge(").expect("the merge hunk");
    let truncated = dir.join("truncated.patch");
    std::fs::write(&truncated, &text[..at]).expect("write");
    refused(&run(&truncated.display().to_string()), "truncated", &out);
    let broken = patched(&series, cmp_return, |l| l.trim_end().trim_end_matches(';').to_string(), &dir);
    refused(&run(&broken), "does not compile, in arm_smmu_inv_cmp", &out);
    let o = stress_with(
        &["--engine", "c", "--series", &series, "--iterations", "1", "--out", &o_],
        &[("CC", "/nonexistent/cc")],
    );
    // A cached build of the same series and shim by another compiler is
    // not this compiler's.
    refused(&o, "cannot run the C compiler `/nonexistent/cc`", &out);
    let o = stress(&["--engine", "c", "--series", &series, "--mutant", "no-smp-mb-inv-range", "--out", &o_]);
    refused(&o, "does not run", &out);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_series_c_finds_replays_and_replays_only_against_its_own_text() {
    let Some(series) = seed() else { return };
    let out = out_dir("find");
    let o_ = out.display().to_string();
    let args =
        ["--engine", "c", "--series", &series, "--scenario", "unmap-vs-detach", "--seed", "3", "--iterations", "20000"];
    let o = stress(&[&args[..], &["--out", &o_, "--json"]].concat());
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("from the project's glue (1): arm_smmu_cmdq_batch_add_range"), "{err}");
    assert!(err.contains("arm_smmu_invs_merge") && err.contains("__arm_smmu_domain_inv_range"), "{err}");
    let r = &json(&o)["runs"][0];
    assert_eq!(r["failure"]["kind"], "atc-inv-ats-disabled", "{r}");
    let file = r["failure"]["shrunk_file"].as_str().expect("a shrunk replay").to_string();
    let f: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("json");
    assert_eq!(f["config"]["engine"], "c");
    assert_eq!(f["config"]["series"]["paths"][0], series.as_str());
    assert_eq!(f["config"]["series"]["from_glue"][0], "arm_smmu_cmdq_batch_add_range");

    let o = stress(&["--replay", &file]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("reproduced: same violation, same trace hash"), "{}", stderr(&o));
    let other = patched(&series, cmp_return, |l| format!("{l} /* a reviewer's comment */"), &out);
    let o = stress(&["--replay", &file, "--series", &other]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("replay file was recorded against series"), "{}", stderr(&o));

    // The findings are the series', so v9's known-findings file is the C's.
    let known = concat!(env!("CARGO_MANIFEST_DIR"), "/../findings/v9-known.json");
    let o = stress(&[&args[..], &["--known", known, "--out", &o_, "--json"]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = &json(&o)["runs"][0];
    assert_eq!(r["schedules"], 20000);
    assert!(r["known"]["ats-off-before-unref"].as_u64().is_some_and(|n| n > 0), "{r}");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_fault_in_the_series_c_is_an_oops_written_and_replayed() {
    let Some(series) = seed() else { return };
    let out = out_dir("oops");
    let o_ = out.display().to_string();
    let null = patched(&series, cmp_return, |l| l.replace("inv_r->", "((const struct arm_smmu_inv *)0)->"), &out);
    let o = stress(&["--engine", "c", "--series", &null, "--scenario", "unmap-vs-attach", "--seed", "1", "--out", &o_]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("unable to handle kernel NULL pointer dereference"), "{err}");
    assert!(err.contains("in arm_smmu_inv_cmp"), "{err}");
    assert!(err.contains("replayed: same violation, same trace hash"), "{err}");
    let _ = std::fs::remove_dir_all(&out);
}

/// The `known` counts of a swarm run over `series`.
fn swarm_known(series: &str, out: &str) -> serde_json::Map<String, serde_json::Value> {
    let known = concat!(env!("CARGO_MANIFEST_DIR"), "/../findings/v9-known.json");
    let o = stress(&[
        "--engine",
        "c",
        "--series",
        series,
        "--scenario",
        "swarm",
        "--seed",
        "2026",
        "--iterations",
        "3000",
        "--known",
        known,
        "--out",
        out,
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "a finding v9's file does not know: {}", stderr(&o));
    json(&o)["runs"][0]["known"].as_object().cloned().unwrap_or_default()
}

#[test]
fn a_reviewers_one_line_fix_removes_its_finding_and_no_other() {
    let Some(series) = seed() else { return };
    let out = out_dir("review");
    let o_ = out.display().to_string();
    let has =
        |k: &serde_json::Map<String, serde_json::Value>, id: &str| k.get(id).and_then(|n| n.as_u64()).unwrap_or(0) > 0;
    let as_posted = swarm_known(&series, &o_);
    for id in ["s1-clear-continue-spins", "ssid-less-cmp", "purge-loses-has-ats"] {
        assert!(has(&as_posted, id), "{id} not found in the series as posted: {as_posted:?}");
    }
    // `continue` -> `break` where __arm_smmu_domain_inv_range skips an
    // S2_VMID_S1_CLEAR entry.
    let s1 = patched(&series, s1_clear_continue, |l| l.replace("continue;", "break;"), &out);
    let k = swarm_known(&s1, &o_);
    assert!(!has(&k, "s1-clear-continue-spins"), "{k:?}");
    for id in ["ssid-less-cmp", "purge-loses-has-ats"] {
        assert!(has(&k, id), "{id} went with the S1-clear fix: {k:?}");
    }
    // The SSID in arm_smmu_inv_cmp.
    let ssid = patched(
        &series,
        cmp_return,
        |l| format!("{} ?: cmp_int(inv_l->ssid, inv_r->ssid);", l.trim_end().trim_end_matches(';')),
        &out,
    );
    let k = swarm_known(&ssid, &o_);
    assert!(!has(&k, "ssid-less-cmp"), "{k:?}");
    for id in ["s1-clear-continue-spins", "purge-loses-has-ats"] {
        assert!(has(&k, id), "{id} went with the SSID fix: {k:?}");
    }
    let _ = std::fs::remove_dir_all(&out);
}

/// Three failures the series' own C showed in a whole-catalogue run, each
/// once, that a signature first took for new causes: a joining master that
/// already had ATS on, a bystander's attach publishing while ssid-less-cmp
/// struck, and ssid-less-cmp on a device whose stream ID and page another
/// device on another SMMU shares. Each is a known finding.
#[test]
fn signatures_name_the_cause_not_its_bystanders() {
    let Some(series) = seed() else { return };
    let known: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../findings/v9-known.json")).unwrap(),
    )
    .unwrap();
    let signature_of =
        |id: &str| known["findings"].as_array().unwrap().iter().find(|f| f["id"] == id).unwrap()["signature"].clone();
    for (file, id) in [
        ("c-join-with-ats-on.json", "ats-join-stale-iotlb"),
        ("c-ssid-with-bystander-publish.json", "ssid-less-cmp"),
        ("c-ssid-stream-on-two-smmus.json", "ssid-less-cmp"),
    ] {
        let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
        let o = stress(&["--replay", &path, "--series", &series, "--json"]);
        assert_eq!(o.status.code(), Some(1), "{file}: {}", stderr(&o));
        assert_eq!(json(&o)["runs"][0]["failure"]["signature"], signature_of(id), "{file}");
    }
}

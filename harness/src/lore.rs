//! `stress --report FILE`: a failure as plain text a maintainer can paste
//! into a reply on the list: what happened in the series' terms, the
//! interleaving as CPU columns, what the model assumed, and the command
//! that reproduces it.

use crate::failure::FailureFile;
use std::path::Path;

/// The report of the failure file at `path`; the error is one line.
pub fn report(path: &Path) -> Result<String, String> {
    let f = FailureFile::load(path)?;
    let w = &f.config.world;
    let mut funcs: Vec<&str> = Vec::new();
    for l in &f.trace {
        if !l.func.is_empty() && !funcs.contains(&l.func.as_str()) {
            funcs.push(&l.func);
        }
    }
    let cause = f.signature.split_once(": ").map_or(f.signature.as_str(), |(_, c)| c);
    let mut out = format!(
        "{} in {} ({} scenario, seed {}): {}.\n\n{}\n\nFunctions of the driver on this path: {}.\n\n",
        f.kind,
        w.engine.name(),
        f.config.scenario,
        w.seed,
        cause.replace("; ", ", "),
        f.detail,
        if funcs.is_empty() { "those the cause above names".into() } else { funcs.join(", ") }
    );
    match f.trace.last() {
        Some(v) => out += &crate::picture::columns(&f.trace, &f.detail, v.seq),
        None => {
            out += "No event trace: the failure ended its threads where they stood (a livelock, a deadlock or \
                        an oops), and the detail above says where each one was.\n"
        }
    }
    let rwlock = w.rwlock.map_or("as the scenario chose", |k| k.name());
    let faults = f.odds.map_or_else(|| "none recorded".into(), |o| format!("{} ppm of fallible calls", o.fault_ppm));
    out += &format!(
        "\nModel assumptions: an ATC_INV to a device whose ATS is off is {} (--atc-inv-disabled); the rwlock is \
         {rwlock} (--rwlock); injected allocation failures: {faults}.\n",
        w.atc_inv_disabled.name()
    );
    out += &match f.schedule {
        Some(_) => format!("\nReproduce: stress --replay {}\n", path.display()),
        None => format!("\nFound on real threads, which no file replays: stress --mode threads --seed {}\n", w.seed),
    };
    Ok(out)
}

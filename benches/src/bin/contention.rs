//! The contention curve the machine's two cores cannot show: each design's
//! invalidation recorded as the cache lines it touches (its own code, on a
//! machine whose queue only counts), then run on 2 to 64 modelled CPUs by
//! `benches::contention`. Prints modelled time per invalidation and writes
//! invalidations per unit of modelled time against CPUs to
//! `docs/contention.svg` (or `$CONTENTION_OUT`).

use benches::contention::{time_per_invalidation, TRANSFER};
use benches::{fixture_on, Design};
use hwmodel::Machine;
use smmu_sync::cost::{line_of, recording, Access};
use smmu_sync::{RwLock, RwLockKind};
use std::fmt::Write as _;

const CPUS: [usize; 6] = [2, 4, 8, 16, 32, 64];
const ROUNDS: usize = 40;

/// One invalidation of a page under `design` with `live` entries, as the
/// lines it touched (after one call to warm the arrays up).
fn record(design: Design, live: usize) -> Vec<Access> {
    let f = fixture_on(Machine::counting, live, false, false);
    let cpu = f.driver(design).cpu(1);
    f.invalidate(design, &cpu);
    if design != Design::RwLock {
        return recording(|| f.invalidate(design, &cpu)).1;
    }
    // The bench's std RwLock<Vec> is not the facade's: record the facade's
    // rwlock, with the vector's header on the lock word's line as std lays
    // them out, around the same walk.
    let lock = RwLock::new(RwLockKind::Queued);
    recording(|| {
        let _r = lock.read_lock();
        smmu_sync::cost::read(line_of(&lock));
        f.invalidate(Design::Bare, &cpu);
    })
    .1
}

fn svg(curves: &[(&str, Vec<f64>)]) -> String {
    let (w, h, left, bottom) = (720.0, 420.0, 80.0, 50.0);
    let ys: Vec<f64> = curves.iter().flat_map(|(_, t)| CPUS.iter().zip(t).map(|(c, t)| *c as f64 / t)).collect();
    let (lo, hi) = (
        ys.iter().cloned().fold(f64::MAX, f64::min).log10().floor(),
        ys.iter().cloned().fold(0.0, f64::max).log10().ceil(),
    );
    let px = |cpus: usize| left + (cpus as f64).log2() / 6.0 * (w - left - 20.0);
    let py = |y: f64| h - bottom - (y.log10() - lo) / (hi - lo).max(1.0) * (h - bottom - 20.0);
    let colors = ["#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#7f7f7f"];
    let mut s = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    for c in CPUS {
        let _ = writeln!(s, "<line x1=\"{0}\" y1=\"20\" x2=\"{0}\" y2=\"{1}\" stroke=\"#ddd\"/><text x=\"{0}\" y=\"{2}\" text-anchor=\"middle\">{c}</text>", px(c), h - bottom, h - bottom + 18.0);
    }
    for e in lo as i32..=hi as i32 {
        let y = 10f64.powi(e);
        let _ = writeln!(s, "<line x1=\"{left}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#ddd\"/><text x=\"{2}\" y=\"{0}\" text-anchor=\"end\">{y}</text>", py(y), w - 20.0, left - 6.0);
    }
    for (i, (name, t)) in curves.iter().enumerate() {
        let pts: Vec<String> =
            CPUS.iter().zip(t).map(|(c, t)| format!("{:.1},{:.1}", px(*c), py(*c as f64 / t))).collect();
        let c = colors[i % colors.len()];
        let _ = writeln!(s, "<polyline fill=\"none\" stroke=\"{c}\" stroke-width=\"2\" points=\"{}\"/>", pts.join(" "));
        let _ = writeln!(s, "<text x=\"{}\" y=\"{}\" fill=\"{c}\">{name}</text>", left + 10.0, 36.0 + 16.0 * i as f64);
    }
    let _ = writeln!(s, "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">invalidations per 1000 units of modelled time (a line transfer = {TRANSFER}) against modelled CPUs</text>", w / 2.0, h - 8.0);
    s.push_str("</svg>\n");
    s
}

fn main() {
    let out = std::path::PathBuf::from(
        std::env::var("CONTENTION_OUT")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/contention.svg").into()),
    );
    let runs = [
        ("epoch, S1 entry only", Design::Epoch, 1),
        ("epoch, 8 live with ATS", Design::Epoch, 8),
        ("rwlock, 8 live", Design::RwLock, 8),
        ("legacy, 8 live", Design::Legacy, 8),
        ("bare, 8 live", Design::Bare, 8),
    ];
    print!("{:<24} {:>8} {:>7}", "design", "accesses", "writes");
    for c in CPUS {
        print!(" {:>8}", format!("{c} CPUs"));
    }
    println!(" {:>8}", "64/2");
    let mut curves = Vec::new();
    for (name, design, live) in runs {
        let seq = record(design, live);
        // One local access per entry walked: what every design shares.
        let times: Vec<f64> = CPUS.iter().map(|c| time_per_invalidation(&seq, live as u64, *c, ROUNDS)).collect();
        print!("{name:<24} {:>8} {:>7}", seq.len(), seq.iter().filter(|a| a.write && !a.private).count());
        for t in &times {
            print!(" {t:>8.0}");
        }
        println!(" {:>8.2}", times[times.len() - 1] / times[0]);
        curves.push((name, times.iter().map(|t| t / 1000.0).collect()));
    }
    std::fs::write(&out, svg(&curves)).expect("write the plot");
    println!(
        "modelled time per invalidation (a local access = 1, a line transfer = {TRANSFER}); wrote {}",
        out.display()
    );
}

//! Read-side latency on real threads while a writer attaches and detaches a
//! second master (every 20 µs, or `$LATENCY_WRITER_US`): one reader invalidating a domain
//! with 8 live entries in a loop, each call timed into an hdrhistogram.
//! Prints p50/p99/p99.9/max per design, writes `.hgrm` percentile files and
//! an SVG plot to `docs/latency/` (or `$LATENCY_OUT`).
//!
//! `epoch` frees replaced arrays wherever crossbeam collects garbage, which
//! on a reader is every 128th pin; `epoch-writer-reclaims` hands them back
//! to the writer, so readers never run destructors.

use benches::{fixture, Design, Fixture};
use engine::Target;
use hdrhistogram::Histogram;
use smmu_sync::AtomicBool;
use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

const LIVE: usize = 8;
/// Pause between writer steps: `$LATENCY_WRITER_US` microseconds, default
/// 20; 0 runs the writer back to back.
fn writer_period() -> Duration {
    Duration::from_micros(std::env::var("LATENCY_WRITER_US").ok().and_then(|s| s.parse().ok()).unwrap_or(20))
}
const QUANTILES: [f64; 6] = [0.5, 0.9, 0.99, 0.999, 0.9999, 1.0];

struct Run {
    name: &'static str,
    design: Design,
    writer_reclaims: bool,
}

const RUNS: [Run; 4] = [
    Run { name: "epoch", design: Design::Epoch, writer_reclaims: false },
    Run { name: "epoch-writer-reclaims", design: Design::Epoch, writer_reclaims: true },
    Run { name: "rwlock", design: Design::RwLock, writer_reclaims: false },
    Run { name: "legacy", design: Design::Legacy, writer_reclaims: false },
];

/// One writer step: the second master joins (odd steps leave) the domain.
fn write(f: &Fixture, design: Design, cpu: &engine::Cpu, step: u64) {
    let join = step.is_multiple_of(2);
    match design {
        Design::Epoch | Design::Legacy => {
            let (drv, m, dom) = match design {
                Design::Epoch => (&f.epoch, &f.epoch_mover, &f.dom),
                _ => (&f.legacy, &f.legacy_mover, &f.legacy_dom),
            };
            let to = if join { Target::Domain(dom.clone()) } else { Target::Blocked };
            drv.attach(cpu, m, 0, to, join).expect("attach");
        }
        Design::RwLock => {
            // Without RCU the new list is built under the write lock.
            let mut v = f.rw.write();
            let mut next = v.clone();
            if join {
                let last = *next.last().expect("entries");
                next.push(engine::InvDesc { id: last.id + 1, ..last });
            } else {
                next.pop();
            }
            *v = next;
        }
        Design::Bare => {}
    }
}

/// The reader's latencies, and how many replaced arrays it freed itself.
fn measure(run: &Run, secs: f64) -> (Histogram<u64>, u64) {
    let f = Arc::new(fixture(LIVE, false, run.writer_reclaims));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (f, stop, design) = (f.clone(), stop.clone(), run.design);
        std::thread::spawn(move || {
            let cpu = f.driver(design).cpu(1);
            let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("bounds");
            while !stop.load(Relaxed) {
                let t = Instant::now();
                f.invalidate(design, &cpu);
                h.saturating_record(t.elapsed().as_nanos() as u64);
            }
            (h, smmu_sync::frees_on_this_thread())
        })
    };
    let cpu = f.driver(run.design).cpu(2);
    let period = writer_period();
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut step = 0;
    while Instant::now() < end {
        write(&f, run.design, &cpu, step);
        step += 1;
        if !period.is_zero() {
            std::thread::sleep(period);
        }
    }
    stop.store(true, Relaxed);
    reader.join().expect("reader")
}

/// The histogram in HdrHistogram's `.hgrm` percentile text format.
fn hgrm(h: &Histogram<u64>) -> String {
    let mut out = format!("{:>12} {:>14} {:>10} {:>14}\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)");
    for v in h.iter_quantiles(5) {
        let q = v.quantile_iterated_to();
        let inv = if q < 1.0 { format!("{:>14.2}", 1.0 / (1.0 - q)) } else { format!("{:>14}", "") };
        let _ = writeln!(
            out,
            "{:>12.3} {:>14.12} {:>10} {inv}",
            v.value_iterated_to() as f64 / 1000.0,
            q,
            v.count_since_last_iteration()
        );
    }
    let _ = writeln!(out, "#[Mean = {:.3}, StdDeviation = {:.3}]", h.mean() / 1000.0, h.stdev() / 1000.0);
    let _ = writeln!(out, "#[Max = {:.3}, Total count = {}]", h.max() as f64 / 1000.0, h.len());
    out
}

/// Latency (log scale) against percentile (as 1/(1-p), log scale).
fn svg(results: &[(&str, Histogram<u64>)]) -> String {
    let (w, h, left, bottom) = (720.0, 420.0, 70.0, 50.0);
    let xs: Vec<f64> = QUANTILES.iter().map(|q| if *q < 1.0 { (1.0 / (1.0 - q)).log10() } else { 5.0 }).collect();
    let all: Vec<f64> = results
        .iter()
        .flat_map(|(_, hist)| QUANTILES.iter().map(|q| hist.value_at_quantile(*q).max(1) as f64))
        .collect();
    let (lo, hi) = (
        all.iter().cloned().fold(f64::MAX, f64::min).log10().floor(),
        all.iter().cloned().fold(0.0, f64::max).log10().ceil(),
    );
    let px = |x: f64| left + x / 5.0 * (w - left - 20.0);
    let py = |ns: f64| h - bottom - (ns.log10() - lo) / (hi - lo).max(1.0) * (h - bottom - 20.0);
    let colors = ["#1f77b4", "#2ca02c", "#d62728", "#9467bd"];
    let mut s = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    for (x, q) in xs.iter().zip(QUANTILES) {
        let label = if q < 1.0 { format!("p{}", q * 100.0) } else { "max".into() };
        let _ = writeln!(s, "<line x1=\"{0}\" y1=\"20\" x2=\"{0}\" y2=\"{1}\" stroke=\"#ddd\"/><text x=\"{0}\" y=\"{2}\" text-anchor=\"middle\">{label}</text>", px(*x), h - bottom, h - bottom + 18.0);
    }
    for e in lo as i32..=hi as i32 {
        let ns = 10f64.powi(e);
        let label = if ns >= 1000.0 { format!("{} µs", ns / 1000.0) } else { format!("{ns} ns") };
        let _ = writeln!(s, "<line x1=\"{left}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#ddd\"/><text x=\"{2}\" y=\"{0}\" text-anchor=\"end\">{label}</text>", py(ns), w - 20.0, left - 6.0);
    }
    for (i, (name, hist)) in results.iter().enumerate() {
        let pts: Vec<String> = xs
            .iter()
            .zip(QUANTILES)
            .map(|(x, q)| format!("{:.1},{:.1}", px(*x), py(hist.value_at_quantile(q).max(1) as f64)))
            .collect();
        let c = colors[i % colors.len()];
        let _ = writeln!(s, "<polyline fill=\"none\" stroke=\"{c}\" stroke-width=\"2\" points=\"{}\"/>", pts.join(" "));
        let _ = writeln!(s, "<text x=\"{}\" y=\"{}\" fill=\"{c}\">{name}</text>", left + 10.0, 36.0 + 16.0 * i as f64);
    }
    let _ = writeln!(s, "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">read-side latency per invalidation, {LIVE} live entries, writer attach/detach every {} µs</text>", w / 2.0, h - 8.0, writer_period().as_micros());
    s.push_str("</svg>\n");
    s
}

fn main() {
    let secs = std::env::var("LATENCY_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let out = std::path::PathBuf::from(
        std::env::var("LATENCY_OUT").unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/latency").into()),
    );
    std::fs::create_dir_all(&out).expect("output directory");
    println!(
        "{:<24} {:>10} {:>10} {:>10} {:>10} {:>10} {:>12}",
        "design", "p50 ns", "p99 ns", "p99.9 ns", "p99.99 ns", "max ns", "calls"
    );
    let mut results = Vec::new();
    for run in &RUNS {
        let (h, reader_frees) = measure(run, secs);
        println!(
            "{:<24} {:>10} {:>10} {:>10} {:>10} {:>10} {:>12} {:>14}",
            run.name,
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.value_at_quantile(0.9999),
            h.max(),
            h.len(),
            reader_frees
        );
        std::fs::write(out.join(format!("{}.hgrm", run.name)), hgrm(&h)).expect("write .hgrm");
        results.push((run.name, h));
    }
    std::fs::write(out.join("latency.svg"), svg(&results)).expect("write svg");
    println!("wrote {}/{{*.hgrm,latency.svg}} ({secs} s per design)", out.display());
}

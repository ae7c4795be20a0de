//! Read-side latency on real threads while a writer attaches and detaches a
//! second master (every 20 µs, or `$LATENCY_WRITER_US`): one reader
//! invalidating a domain with 8 live entries (or `$LATENCY_LIVE`) in a loop,
//! each call timed into an hdrhistogram. Prints p50/p99/p99.9/max per design
//! and the writer's step time, writes `.hgrm` percentile files and an SVG
//! plot to `docs/latency/` (or `$LATENCY_OUT`).
//!
//! `epoch` frees replaced arrays wherever crossbeam collects garbage, which
//! on a reader is every 128th pin; `epoch-writer-reclaims` hands them back
//! to the writer, so readers never run destructors. `bare` walks a fixed
//! array with no barrier, pin or lock while the writer only sleeps: the
//! machine's own tail for a call of that length, which no design can beat.
//! Reader and writer are pinned to different cores when there are two.
//! Both run natively (`Backend::Native`, a native machine): the reader's
//! simulated accesses are counted and printed, and must be 0.

use benches::{fixture, Design, Fixture};
use engine::Target;
use hdrhistogram::Histogram;
use smmu_sync::{enter, simulated_accesses, AtomicBool, Backend};
use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// Live entries in the domain's array: `$LATENCY_LIVE`, default 8.
fn live() -> usize {
    env_or("LATENCY_LIVE", 8usize).max(1)
}

/// Pause between writer steps: `$LATENCY_WRITER_US` microseconds, default
/// 20; 0 runs the writer back to back.
fn writer_period() -> Duration {
    Duration::from_micros(env_or("LATENCY_WRITER_US", 20))
}
const QUANTILES: [f64; 6] = [0.5, 0.9, 0.99, 0.999, 0.9999, 1.0];

struct Run {
    name: &'static str,
    design: Design,
    writer_reclaims: bool,
}

const RUNS: [Run; 5] = [
    Run { name: "epoch", design: Design::Epoch, writer_reclaims: false },
    Run { name: "epoch-writer-reclaims", design: Design::Epoch, writer_reclaims: true },
    Run { name: "rwlock", design: Design::RwLock, writer_reclaims: false },
    Run { name: "legacy", design: Design::Legacy, writer_reclaims: false },
    Run { name: "bare", design: Design::Bare, writer_reclaims: false },
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
            // Without RCU the new list is built under the write lock: the
            // whole step is the time readers can be held up.
            let mut v = f.rw.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut next = v.clone();
            if join {
                let last = *next.last().expect("entries");
                next.push(engine::InvDesc { id: last.id + 1, ..last });
            } else {
                next.pop();
            }
            *v = next;
        }
        // The floor: nothing to change, so nothing to wait for.
        Design::Bare => {}
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("bounds")
}

/// Reader and writer on cores of their own, so neither preempts the other.
/// The cores are read once, before any thread is pinned: a pinned thread's
/// children inherit its one-core mask.
fn pin(core: usize) {
    static CORES: std::sync::OnceLock<Vec<core_affinity::CoreId>> = std::sync::OnceLock::new();
    let cores = CORES.get_or_init(|| core_affinity::get_core_ids().unwrap_or_default());
    if cores.len() >= 2 {
        core_affinity::set_for_current(cores[core]);
    }
}

struct Measured {
    reader: Histogram<u64>,
    /// Replaced arrays the reader thread freed itself.
    reader_frees: u64,
    /// What the reader's calls did through the simulation.
    simulated: u64,
    writer: Histogram<u64>,
}

fn measure(run: &Run, secs: f64) -> Measured {
    pin(0);
    let _native = enter(Backend::Native);
    let f = Arc::new(fixture(live(), false, run.writer_reclaims));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (f, stop, design) = (f.clone(), stop.clone(), run.design);
        std::thread::spawn(move || {
            pin(1);
            let _native = enter(Backend::Native);
            let cpu = f.driver(design).cpu(1);
            let mut h = histogram();
            let before = simulated_accesses();
            while !stop.load(Relaxed) {
                let t = Instant::now();
                f.invalidate(design, &cpu);
                h.saturating_record(t.elapsed().as_nanos() as u64);
            }
            (h, smmu_sync::frees_on_this_thread(), simulated_accesses() - before)
        })
    };
    let cpu = f.driver(run.design).cpu(2);
    let period = writer_period();
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut writer = histogram();
    let mut step = 0;
    while Instant::now() < end {
        let t = Instant::now();
        write(&f, run.design, &cpu, step);
        writer.saturating_record(t.elapsed().as_nanos() as u64);
        step += 1;
        if !period.is_zero() {
            std::thread::sleep(period);
        }
    }
    stop.store(true, Relaxed);
    let (reader, reader_frees, simulated) = reader.join().expect("reader");
    Measured { reader, reader_frees, simulated, writer }
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
    let colors = ["#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#7f7f7f"];
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
    let _ = writeln!(s, "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">read-side latency per invalidation, {} live entries, writer attach/detach every {} µs</text>", w / 2.0, h - 8.0, live(), writer_period().as_micros());
    s.push_str("</svg>\n");
    s
}

fn main() {
    let secs = env_or("LATENCY_SECS", 3.0);
    let out = std::path::PathBuf::from(
        std::env::var("LATENCY_OUT").unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/latency").into()),
    );
    std::fs::create_dir_all(&out).expect("output directory");
    println!("{} live entries, writer pause {} µs, {secs} s per design", live(), writer_period().as_micros());
    println!(
        "{:<22} {:>8} {:>8} {:>9} {:>9} {:>9} {:>10} {:>12} {:>11} {:>12}",
        "design",
        "p50 ns",
        "p99 ns",
        "p99.9 ns",
        "p99.99 ns",
        "max ns",
        "calls",
        "reader frees",
        "writer p50",
        "writer steps"
    );
    let mut results = Vec::new();
    let mut simulated = 0;
    for run in &RUNS {
        let m = measure(run, secs);
        simulated += m.simulated;
        let h = &m.reader;
        println!(
            "{:<22} {:>8} {:>8} {:>9} {:>9} {:>9} {:>10} {:>12} {:>11} {:>12}",
            run.name,
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.value_at_quantile(0.9999),
            h.max(),
            h.len(),
            m.reader_frees,
            m.writer.value_at_quantile(0.5),
            m.writer.len()
        );
        std::fs::write(out.join(format!("{}.hgrm", run.name)), hgrm(h)).expect("write .hgrm");
        results.push((run.name, m.reader));
    }
    println!("simulated accesses: {simulated}");
    std::fs::write(out.join("latency.svg"), svg(&results)).expect("write svg");
    println!("wrote {}/{{*.hgrm,latency.svg}}", out.display());
}

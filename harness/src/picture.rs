//! A failing interleaving as a picture: one lane per actor, time flowing
//! down, the events that tell the story marked. An SVG beside the failure
//! file, and the same as a text timeline with one column per actor.

use crate::trace::Line;

/// Why an event is marked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mark {
    /// The event that exposed the violation.
    Verdict,
    /// Names an address, page or domain the verdict names, or is one of
    /// the kinds of step the barrier protocols are about.
    Story,
    Plain,
}

/// Hex numbers and `domain N`/`sid N` the verdict mentions: what makes an
/// event part of the story.
fn clues(detail: &str) -> Vec<String> {
    let mut c: Vec<String> = detail
        .split(|ch: char| !ch.is_ascii_alphanumeric())
        .filter(|w| w.starts_with("0x") && w.len() > 3)
        .map(str::to_string)
        .collect();
    for key in ["DomainId(", "EndpointId("] {
        for (i, _) in detail.match_indices(key) {
            let n: String = detail[i + key.len()..].chars().take_while(char::is_ascii_digit).collect();
            let word = if key.starts_with('D') { "domain" } else { "endpoint" };
            c.push(format!("{word} {n}"));
        }
    }
    c.sort();
    c.dedup();
    c
}

/// Whether `e` names `clue` as a whole word.
fn mentions(e: &str, clue: &str) -> bool {
    e.match_indices(clue).any(|(i, _)| !e[i + clue.len()..].starts_with(|ch: char| ch.is_ascii_alphanumeric()))
}

fn mark(line: &Line, clues: &[String], verdict_seq: u64) -> Mark {
    if line.seq == verdict_seq {
        return Mark::Verdict;
    }
    let e = &line.event;
    // The steps the barrier and ordering protocols are about.
    let protocol = ["publish ", "load domain", "store ", " now visible", "cache ", "ATS ", "attach "]
        .iter()
        .any(|k| e.contains(k));
    if protocol || clues.iter().any(|c| mentions(e, c)) {
        Mark::Story
    } else {
        Mark::Plain
    }
}

/// Lanes in a reading order: CPUs with their interrupts and drains, then
/// the SMMUs, then the endpoints.
fn lanes(lines: &[Line]) -> Vec<String> {
    let mut l: Vec<String> = lines.iter().map(|x| x.actor.clone()).collect();
    l.sort_by_key(|a| {
        let class = if a.starts_with("setup") {
            0
        } else if a.starts_with("cpu") {
            1
        } else if a.starts_with("smmu") {
            2
        } else {
            3
        };
        let n: u64 = a.split(' ').nth(1).and_then(|n| n.parse().ok()).unwrap_or(0);
        (class, n, a.clone())
    });
    l.dedup();
    l
}

/// The events to draw: all of a short trace; of a long one, the marked
/// events and the last `TAIL`.
const TAIL: usize = 80;
const ALL_UP_TO: usize = 300;

fn shown(lines: &[Line], marks: &[Mark]) -> Vec<usize> {
    if lines.len() <= ALL_UP_TO {
        return (0..lines.len()).collect();
    }
    let from = lines.len() - TAIL;
    (0..lines.len()).filter(|&k| k >= from || marks[k] != Mark::Plain).collect()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The picture as a self-contained SVG.
pub fn svg(lines: &[Line], kind: &str, detail: &str, verdict_seq: u64) -> String {
    let clues = clues(detail);
    let marks: Vec<Mark> = lines.iter().map(|l| mark(l, &clues, verdict_seq)).collect();
    let lanes = lanes(lines);
    let rows = shown(lines, &marks);
    let (lane_w, row_h, top, left) = (230.0, 16.0, 70.0, 60.0);
    let width = left + lane_w * lanes.len() as f64 + 20.0;
    let height = top + row_h * (rows.len() as f64 + 1.0) + 20.0;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         font-family=\"monospace\" font-size=\"10\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"18\" font-size=\"13\" font-weight=\"bold\">{}</text>\n\
         <text x=\"10\" y=\"34\" font-size=\"10\">{}</text>\n",
        esc(kind),
        esc(&detail.chars().take(220).collect::<String>())
    );
    for (k, lane) in lanes.iter().enumerate() {
        let x = left + lane_w * k as f64;
        out += &format!(
            "<text x=\"{}\" y=\"{}\" font-weight=\"bold\">{}</text>\n<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" \
             y2=\"{height}\" stroke=\"#ccc\"/>\n",
            x + 4.0,
            top - 8.0,
            esc(lane),
            top - 4.0
        );
    }
    let mut last = None;
    for (r, &k) in rows.iter().enumerate() {
        let l = &lines[k];
        let y = top + row_h * (r as f64 + 1.0);
        if last.is_some_and(|p: usize| k > p + 1) {
            out += &format!(
                "<text x=\"4\" y=\"{}\" fill=\"#999\">... {} events</text>\n",
                y - row_h / 2.0 + 3.0,
                k - last.unwrap_or(0) - 1
            );
        }
        last = Some(k);
        let lane = lanes.iter().position(|a| *a == l.actor).unwrap_or(0);
        let x = left + lane_w * lane as f64;
        let (color, weight) = match marks[k] {
            Mark::Verdict => ("#d00", "bold"),
            Mark::Story => ("#c60", "bold"),
            Mark::Plain => ("#333", "normal"),
        };
        out += &format!(
            "<text x=\"4\" y=\"{y}\" fill=\"#999\">{}</text><circle cx=\"{x}\" cy=\"{}\" r=\"3\" fill=\"{color}\"/>\
             <text x=\"{}\" y=\"{y}\" fill=\"{color}\" font-weight=\"{weight}\">{}</text>\n",
            l.seq,
            y - 3.0,
            x + 6.0,
            esc(&l.event.chars().take(38).collect::<String>())
        );
    }
    out += "</svg>\n";
    out
}

/// The same as text: one column per actor, the marked events flagged.
pub fn text(lines: &[Line], detail: &str, verdict_seq: u64) -> String {
    const COL: usize = 16;
    let clues = clues(detail);
    let marks: Vec<Mark> = lines.iter().map(|l| mark(l, &clues, verdict_seq)).collect();
    // The story's events, and the last few, on a terminal's width.
    let rows: Vec<usize> = if lines.len() <= 40 {
        (0..lines.len()).collect()
    } else {
        let from = lines.len() - 12;
        (0..lines.len()).filter(|&k| k >= from || marks[k] != Mark::Plain).collect()
    };
    let rows = &rows[rows.len().saturating_sub(60)..];
    let shown: Vec<Line> = rows.iter().map(|&k| lines[k].clone()).collect();
    let lanes = lanes(&shown);
    let mut out = format!("{:>6} ", "event");
    for lane in &lanes {
        out += &format!("{:<COL$}", lane.chars().take(COL - 1).collect::<String>());
    }
    out.push('\n');
    let mut last = None;
    for &k in rows {
        if last.is_some_and(|p: usize| k > p + 1) {
            out += &format!("{:>6}\n", "...");
        }
        last = Some(k);
        let l = &lines[k];
        let lane = lanes.iter().position(|a| *a == l.actor).unwrap_or(0);
        let flag = match marks[k] {
            Mark::Verdict => "!! ",
            Mark::Story => "* ",
            Mark::Plain => "",
        };
        let cell: String = format!("{flag}{}", l.event).chars().take(70).collect();
        out += &format!("{:>6} {}{cell}\n", l.seq, " ".repeat(COL * lane));
    }
    out
}

/// The story alone as CPU columns, the way kernel commit messages draw a
/// race: one column per CPU, SMMU and device, each event with the kernel
/// function it was made in.
pub fn columns(lines: &[Line], detail: &str, verdict_seq: u64) -> String {
    const COL: usize = 44;
    let clues = clues(detail);
    // The world's building and the store buffers' drains are not the race.
    let story: Vec<&Line> = lines
        .iter()
        .filter(|l| !l.actor.starts_with("setup") && !l.actor.ends_with("drain"))
        .filter(|l| mark(l, &clues, verdict_seq) != Mark::Plain)
        .collect();
    let story = &story[story.len().saturating_sub(30)..];
    let shown: Vec<Line> = story.iter().map(|l| (*l).clone()).collect();
    let lanes = lanes(&shown);
    let cell = |s: String| -> String { s.chars().take(COL - 2).collect() };
    let mut out: String = lanes.iter().map(|l| format!("{:<COL$}", cell(l.clone()))).collect::<String>();
    out = out.trim_end().to_string() + "\n";
    // A lane names its kernel function when it enters it, as a heading
    // over the events made there.
    let mut current: Vec<&str> = vec![""; lanes.len()];
    for l in story {
        let lane = lanes.iter().position(|a| *a == l.actor).unwrap_or(0);
        let pad = " ".repeat(COL * lane);
        if !l.func.is_empty() && current[lane] != l.func {
            current[lane] = &l.func;
            out += &format!("{pad}{}\n", cell(format!("{}():", l.func)));
        }
        let indent = if l.func.is_empty() { "" } else { "  " };
        out += &format!("{pad}{}\n", cell(format!("{indent}{}", l.event)));
    }
    out
}

//! A finding's signature: what caused it, in kernel terms, and nothing a
//! seed, a scenario or a world's size changes. The violation kind, then the
//! steps on the story's critical path, each named by the kernel function
//! (or the hardware) that made it, sorted and without addresses, ids or
//! counts. Two findings with one signature are one cause found twice.

use crate::{Actor, Cache, Cmd, Event, Opcode, Source, Step, Translation, ViolationKind, Word, PAGE};

/// The signature of a violation the oracle judged. `site` is the reporting
/// thread's kernel functions (`smmu_sync::task_stack`); `trace` ends with
/// the verdict's event when the oracle judged one.
pub fn of_violation(kind: ViolationKind, site: &str, trace: &[Step]) -> String {
    let tokens = match trace.last().map(|s| s.event) {
        Some(Event::Dma { sid, ssid, result: Translation::Ok { pa, source, .. }, .. })
            if matches!(kind, ViolationKind::StaleTranslation | ViolationKind::OldDomainTranslation) =>
        {
            dma_story(trace, sid, ssid, pa, source)
        }
        _ if matches!(kind, ViolationKind::AtcInvAtsDisabled | ViolationKind::CmdSyncTimeout) => atc_story(trace),
        Some(e) if site.is_empty() => vec![format!("seen at {}", what(&e))],
        _ => vec![format!("in {}", innermost(site))],
    };
    compose(kind, tokens)
}

/// A thread's kernel functions reduced to the one it was in, and the one
/// its interrupt handler was in if it took one: which caller led there
/// depends on the world, not on the cause.
fn innermost(stack: &str) -> String {
    let ctx: Vec<&str> = stack.split(" > irq > ").map(|c| c.rsplit(" > ").next().unwrap_or(c)).collect();
    ctx.join(" interrupted by ")
}

/// The signature of a failure that ended its execution without a verdict
/// event (a livelock, a deadlock, an oops): the kernel functions each
/// involved thread was in.
pub fn of_site(kind: ViolationKind, site: &[String]) -> String {
    // The model publishes an ERR_PTR array from one place only (an
    // unchecked `arm_smmu_invs_purge` result); where a walker or the next
    // attach first trips over it is luck.
    if kind == ViolationKind::ErrPtrDeref {
        return compose(kind, vec!["an ERR_PTR published as the array".into()]);
    }
    let tokens = site.iter().map(|s| match s {
        s if s.is_empty() => "outside the kernel".into(),
        s if s.starts_with("on ") => s.clone(),
        s => format!("in {}", innermost(s)),
    });
    compose(kind, tokens.collect())
}

fn compose(kind: ViolationKind, mut tokens: Vec<String>) -> String {
    tokens.sort();
    tokens.dedup();
    format!("{}: {}", kind.name(), tokens.join("; "))
}

/// Who made a step: its kernel function, or the hardware that did.
fn by(s: &Step) -> String {
    match s.actor {
        Actor::Cpu(_) | Actor::Irq(_) if !s.func.is_empty() => s.func.to_string(),
        Actor::Cpu(_) | Actor::Irq(_) | Actor::Setup => "the caller".into(),
        Actor::Drain(_) => "the store buffer".into(),
        Actor::Queue(_) => "the command queue".into(),
        Actor::Walker(_) => "the table walker".into(),
        Actor::Endpoint(_) => "the device".into(),
    }
}

/// An event without its numbers.
fn what(e: &Event) -> String {
    match e {
        Event::Submit { cmd, .. } => format!("submit {}", op_name(cmd)),
        Event::Effect { cmd, .. } => format!("{} done", op_name(cmd)),
        Event::SyncDone { .. } => "CMD_SYNC done".into(),
        Event::Dma { result: Translation::Ok { source, .. }, .. } => format!("DMA via {source:?}"),
        Event::Dma { .. } => "DMA fault".into(),
        Event::Ats { enabled, .. } => format!("ATS {}", if *enabled { "on" } else { "off" }),
        Event::SmmuRemoved { .. } => "SMMU removed".into(),
        Event::MapReturned { .. } => "map returned".into(),
        Event::UnmapBegin { .. } => "unmap begins".into(),
        Event::UnmapReturned { .. } => "unmap returned".into(),
        Event::AttachBegin { .. } => "attach begins".into(),
        Event::AttachReturned { .. } => "attach returned".into(),
        Event::Store { what, .. } => format!("store {what:?}"),
        Event::Visible { what, .. } => format!("{what:?} visible"),
        Event::Publish { .. } => "publish array".into(),
        Event::ArrayLoad { .. } => "load array".into(),
        Event::Cached { into, .. } => format!("fill {into:?}"),
    }
}

/// The command's name as the kernel spells it.
fn op_name(c: &Cmd) -> String {
    c.to_string().split(' ').next().unwrap_or_default().to_string()
}

fn page(a: u64) -> u64 {
    a & !(PAGE - 1)
}

/// Whether invalidation `c` reaches a `source` entry of `sid`/`ssid` for the
/// page at `iova`; TLBIs are judged by address alone (the trace's DMA does
/// not name its tag).
fn reaches(c: &Cmd, source: Source, sid: u32, ssid: u32, iova: u64) -> bool {
    match source {
        Source::Atc => {
            let span = 1u64 << c.atc_size.max(12);
            c.op == Opcode::AtcInv && c.sid == sid && (!c.ssv || c.ssid == ssid) && page(iova) & !(span - 1) == c.addr
        }
        _ => match c.op {
            Opcode::TlbiNhVa | Opcode::TlbiNhVaa | Opcode::TlbiS2Ipa => {
                let n = u64::from(c.range.num) + 1;
                let span = if c.range.tg == 0 { PAGE } else { n << (12 + u32::from(c.range.scale)) };
                (c.addr..c.addr.saturating_add(span)).contains(&iova)
            }
            _ => op_name(c).starts_with("TLBI"),
        },
    }
}

/// A stale or old-domain DMA: which cache served it and who filled it; the
/// unmap that should have emptied it, the array it walked and the
/// invalidation it sent or failed to send; and what other CPUs did to the
/// domain or the device between that walk and the DMA.
fn dma_story(trace: &[Step], sid: u32, ssid: u32, pa: u64, source: Source) -> Vec<String> {
    let mut t = vec![format!("via {source:?}")];
    let (verdict, before) = trace.split_last().expect("a verdict");
    let ep = match verdict.event {
        Event::Dma { ep, .. } => Some(ep),
        _ => None,
    };
    let cache = match source {
        Source::Atc => Some(Cache::Atc),
        Source::Iotlb => Some(Cache::Iotlb),
        _ => None,
    };
    let fill = before.iter().rposition(|s| {
        matches!(s.event, Event::Cached { sid: fs, ssid: fss, pa: fpa, into, .. }
            if fs == sid && fss == ssid && page(fpa) == page(pa) && Some(into) == cache)
    });
    // The unmap of this page, else of the block holding it.
    let unmapped =
        |want: u64| before.iter().rposition(|s| matches!(s.event, Event::UnmapReturned { pa: upa, .. } if upa == want));
    let Some(u) = unmapped(page(pa)).or_else(|| unmapped(pa & !(crate::BLOCK - 1))) else {
        t.push("no unmap in the trace".into());
        return t;
    };
    let Event::UnmapReturned { domain, iova, .. } = before[u].event else { unreachable!() };
    let unmapper = before[u].actor;
    // Where the unmap began, or else (a guest's, which the oracle only
    // hears return) its last PTE clear.
    let began = |s: &Step| matches!(s.event, Event::UnmapBegin { domain: d, .. } if d == domain);
    let cleared = |s: &Step| matches!(s.event, Event::Store { what: Word::Pte, val: 0, .. });
    let mine = |k: &usize| before[*k].actor == unmapper;
    let begin = (0..u)
        .rev()
        .filter(mine)
        .find(|&k| began(&before[k]))
        .or_else(|| (0..u).rev().filter(mine).find(|&k| cleared(&before[k])))
        .unwrap_or(u);
    let load = (begin..u).rev().find(|&k| {
        before[k].actor == unmapper && matches!(before[k].event, Event::ArrayLoad { domain: d, .. } if d == domain)
    });
    if let Some(l) = load {
        t.push(format!("the unmap walks the array loaded by {}", by(&before[l])));
    }
    let name = if source == Source::Atc { "ATC_INV" } else { "TLBI" };
    // The device's SMMU, as its walks show: stream IDs are per SMMU, so
    // the walk that translated this page, else any walk of the stream.
    let walked_by = |same_page: bool| {
        before.iter().rev().find_map(|s| match (s.actor, s.event) {
            (Actor::Walker(w), Event::Cached { sid: cs, ssid: css, pa: cpa, .. })
                if cs == sid && css == ssid && (!same_page || page(cpa) == page(pa)) =>
            {
                Some(w)
            }
            _ => None,
        })
    };
    let smmu = walked_by(true).or_else(|| walked_by(false));
    // What the unmap sent to the device's SMMU, where it was sent.
    let sent_to_device: Vec<(usize, Cmd)> = (begin..u)
        .filter_map(|k| match before[k].event {
            Event::Submit { cmd, smmu: to } if before[k].actor == unmapper && smmu.is_none_or(|s| s == to) => {
                Some((k, cmd))
            }
            _ => None,
        })
        .collect();
    let sent = sent_to_device.iter().find(|(_, c)| reaches(c, source, sid, ssid, iova)).map(|(k, _)| *k);
    // An ATC_INV to the device's stream that misses its substream is a
    // different mistake from none at all.
    let to_stream = source == Source::Atc && sent_to_device.iter().any(|(_, c)| c.op == Opcode::AtcInv && c.sid == sid);
    t.push(match (sent, fill) {
        (None, _) if to_stream => "the unmap's ATC_INVs reach the stream but not its substream".into(),
        (None, _) => format!("the unmap sends no {name} that reaches it"),
        (Some(k), Some(f)) if k < f => format!("the unmap's {name} precedes the fill"),
        (Some(_), _) => format!("the unmap's {name} follows the fill"),
    });
    // Others' steps between the unmap's walk and the fill that change
    // who the array or the device's ATS includes.
    let from = load.unwrap_or(begin);
    let to = fill.unwrap_or(from).max(from);
    // The device's last ATS change before the fill, if it raced the
    // unmap: made after the unmap's walk, or by an attach of the device
    // still in flight at the walk.
    let attach_since = before[..from].iter().rposition(|s| match s.event {
        Event::AttachBegin { ep: e, .. } | Event::AttachReturned { ep: e, .. } => Some(e) == ep,
        _ => false,
    });
    let in_flight = attach_since.filter(|&a| matches!(before[a].event, Event::AttachBegin { .. }));
    let since = in_flight.unwrap_or(from);
    let mut toggled = before[since..to.max(since)]
        .iter()
        .rev()
        .find(|s| matches!(s.event, Event::Ats { ep: e, .. } if Some(e) == ep));
    // An array newer than the one the unmap walked, published before the
    // fill: published after the walk, or before it but not yet visible to
    // the walking CPU.
    let walked = load.and_then(|l| match before[l].event {
        Event::ArrayLoad { version, .. } => Some(version),
        _ => None,
    });
    if let (Some(v), Some(f)) = (walked, fill) {
        // Only an attach of this very device and substream brings it into
        // the array: anyone else's publish is a bystander.
        let joins = |k: usize| {
            before[..k].iter().rev().filter(|b| b.actor == before[k].actor).find_map(|b| match b.event {
                Event::AttachBegin { ep: e, ssid: es, .. } => Some(Some(e) == ep && es == ssid),
                _ => None,
            }) == Some(true)
        };
        let newer = (0..f).map(|k| &before[k]).enumerate().find(|(k, s)| {
            s.actor != unmapper
                && matches!(s.event, Event::Publish { domain: d, version } if d == domain && version > v)
                && joins(*k)
        });
        let newer = newer.map(|(_, s)| s);
        if let Some(s) = newer {
            t.push(format!("{} publishes a newer array than the unmap walks", by(s)));
        }
        // The device joined the array after the walk: whether it turned
        // ATS on then or had it on already is how, not why.
        if newer.is_some() {
            toggled = toggled.filter(|s| matches!(s.event, Event::Ats { enabled: false, .. }));
        }
    }
    if let Some(s @ Step { event: Event::Ats { enabled, .. }, .. }) = toggled {
        t.push(format!("{} turns ATS {} while the unmap runs", by(s), if *enabled { "on" } else { "off" }));
    }
    t
}

/// An ATC_INV that met a disabled ATS (at once, or as a timed-out
/// CMD_SYNC): who sent it and who turned ATS off.
fn atc_story(trace: &[Step]) -> Vec<String> {
    let mut t = Vec::new();
    let inv = trace.iter().rposition(|s| matches!(s.event, Event::Effect { cmd, .. } if cmd.op == Opcode::AtcInv));
    let Some(i) = inv else { return vec!["no ATC_INV in the trace".into()] };
    let Event::Effect { cmd, smmu } = trace[i].event else { unreachable!() };
    if let Some(s) = trace[..i].iter().rev().find(|s| s.event == Event::Submit { smmu, cmd }) {
        t.push(format!("ATC_INV sent by {}", by(s)));
    }
    if let Some(s) = trace[..i].iter().rev().find(|s| matches!(s.event, Event::Ats { enabled: false, .. })) {
        t.push(format!("ATS turned off by {}", by(s)));
    }
    t
}

//! From the user's input to the C the `c` design compiles: a patch series
//! (an mbox as `b4 am` or `git format-patch` writes it, or a plain diff,
//! whose `+` lines may have lost their indentation) or kernel source files.
//! The added lines of the named files are rebuilt into a sparse copy of
//! each file; the functions, macros and types the design runs are taken out
//! of it by name and brace matching; the members the series adds to the
//! pre-series structures are spliced into the shim's; what the input lacks
//! whole comes from the glue, and the result says which came from where.

use std::collections::BTreeMap;

/// One input file: its path (for messages) and text.
pub struct Input {
    pub path: String,
    pub text: String,
}

/// What to take, from which file of the kernel.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Function,
    Macro,
    Struct,
    Enum,
    Static,
}

/// The files the series touches, by the base name the kernel gives them.
const HEADER: &str = "arm-smmu-v3.h";
const SOURCE: &str = "arm-smmu-v3.c";
const TEST: &str = "arm-smmu-v3-test.c";

/// The series' types and functions the design runs, in the order the C
/// needs them within each file.
const WANTED: &[(&str, Kind, &str)] = &[
    (HEADER, Kind::Enum, "arm_smmu_inv_type"),
    (HEADER, Kind::Struct, "arm_smmu_inv"),
    (HEADER, Kind::Function, "arm_smmu_inv_is_ats"),
    (HEADER, Kind::Struct, "arm_smmu_invs"),
    (HEADER, Kind::Function, "arm_smmu_invs_alloc"),
    (HEADER, Kind::Struct, "arm_smmu_inv_state"),
    (SOURCE, Kind::Function, "arm_smmu_invs_iter_next"),
    (SOURCE, Kind::Macro, "arm_smmu_invs_for_each_entry"),
    (SOURCE, Kind::Function, "arm_smmu_inv_cmp"),
    (SOURCE, Kind::Function, "arm_smmu_invs_iter_next_cmp"),
    (SOURCE, Kind::Macro, "arm_smmu_invs_for_each_cmp"),
    (SOURCE, Kind::Function, "arm_smmu_invs_merge"),
    (SOURCE, Kind::Function, "arm_smmu_invs_unref"),
    (SOURCE, Kind::Function, "arm_smmu_invs_purge"),
    (SOURCE, Kind::Function, "arm_smmu_cmdq_batch_add_range"),
    (SOURCE, Kind::Function, "arm_smmu_inv_size_too_big"),
    (SOURCE, Kind::Function, "arm_smmu_inv_to_cmdq_batch"),
    (SOURCE, Kind::Function, "arm_smmu_invs_end_batch"),
    (SOURCE, Kind::Function, "__arm_smmu_domain_inv_range"),
    (SOURCE, Kind::Function, "arm_smmu_domain_inv_range"),
    (SOURCE, Kind::Function, "arm_smmu_master_build_inv"),
    (SOURCE, Kind::Function, "arm_smmu_master_build_invs"),
    (SOURCE, Kind::Function, "arm_smmu_attach_prepare_invs"),
    (SOURCE, Kind::Function, "arm_smmu_install_new_domain_invs"),
    (SOURCE, Kind::Function, "arm_smmu_inv_flush_iotlb_tag"),
    (SOURCE, Kind::Function, "arm_smmu_install_old_domain_invs"),
];

/// What the glue provides when the input does not hold the whole body:
/// the series changes it only in hunks around lines it does not show.
const GLUE: &[&str] = &["arm_smmu_cmdq_batch_add_range"];

/// The series' own test of the array, run by `cargo test`.
const KUNIT: &str = "arm_smmu_v3_invs_test";

/// The pre-series structures the shim defines, with the members it
/// already has: the series' additions are spliced after them.
const SPLICED: &[(&str, &[&str])] = &[
    ("arm_smmu_domain_stage", &["ARM_SMMU_DOMAIN_S1", "ARM_SMMU_DOMAIN_S2"]),
    ("arm_smmu_domain", &["smmu", "stage", "cd", "s2_cfg", "domain", "nest_parent"]),
    ("arm_smmu_master", &["smmu", "dev", "streams", "num_streams", "ats_enabled"]),
    (
        "arm_smmu_attach_state",
        &["old_domain", "master", "cd_needs_ats", "disable_ats", "ssid", "vmaster", "ats_enabled"],
    ),
];

/// The series' own types, which a spliced member of a full source file
/// must name to count as the series' (a patch says so with its `+`).
const SERIES_TYPES: &[&str] = &["struct arm_smmu_invs", "struct arm_smmu_inv_state", "struct arm_smmu_inv "];

/// One rebuilt line: its text, and whether the input added it.
#[derive(Clone)]
struct Line {
    text: String,
    added: bool,
    /// For an added line of a patch: the structure or enum it sits in.
    container: Option<String>,
}

/// A file as far as the input shows it: runs of consecutive known lines,
/// in about the file's order.
#[derive(Default)]
struct Sparse {
    frags: Vec<Frag>,
    /// Rebuilt from hunks (a patch), rather than read whole.
    patched: bool,
}

/// A run of consecutive known lines, and about where it starts.
struct Frag {
    at: i64,
    lines: Vec<Line>,
}

impl Sparse {
    fn lines(&self) -> impl Iterator<Item = &Line> {
        self.frags.iter().flat_map(|f| f.lines.iter())
    }
}

/// One definition found.
struct Def {
    text: String,
    /// Its first line in the rebuilt file.
    line: i64,
}

/// The C the design compiles, and where each part came from.
pub struct Extracted {
    /// The series' types, before the shim's structures.
    pub types: String,
    /// `#define SERIES_MEMBERS_<name> ...` for each spliced structure.
    pub members: String,
    /// Prototypes and the series' functions and macros.
    pub functions: String,
    /// The series' test, if the input has it.
    pub kunit: Option<String>,
    pub from_input: Vec<String>,
    pub from_glue: Vec<String>,
}

/// Extract what the design needs from `inputs`; the error is one line.
pub fn extract(inputs: &[Input]) -> Result<Extracted, String> {
    let mut files: BTreeMap<&str, Sparse> = BTreeMap::new();
    for input in inputs {
        if input.text.trim().is_empty() {
            return Err(format!("{} is empty", input.path));
        }
        if is_patch(&input.text) {
            apply_patches(&input.text, &input.path, &mut files)?;
        } else {
            let name = [HEADER, SOURCE, TEST]
                .into_iter()
                .find(|n| input.path.ends_with(n))
                .ok_or_else(|| format!("{} is neither a patch series nor {HEADER}, {SOURCE} or {TEST}", input.path))?;
            let lines = input.text.lines().map(|t| Line { text: t.into(), added: false, container: None }).collect();
            files.entry(name).or_default().frags.push(Frag { at: 1, lines });
        }
    }
    if files.is_empty() {
        let paths: Vec<&str> = inputs.iter().map(|i| i.path.as_str()).collect();
        return Err(format!("{} holds no diff of {HEADER} or {SOURCE}", paths.join(" and ")));
    }
    let mut out = Extracted {
        types: String::new(),
        members: String::new(),
        functions: String::new(),
        kunit: None,
        from_input: Vec::new(),
        from_glue: Vec::new(),
    };
    let mut prototypes = String::new();
    let mut bodies = String::new();
    // The series' functions by address, so that a fault in one is told by
    // its name.
    let mut symbols = String::new();
    for &(file, kind, name) in WANTED {
        let def = files.get(file).and_then(|f| find(f, kind, name));
        match def {
            Some(def) => {
                let piece = format!("/* series: {name} ({file}, line {}) */\n{}\n\n", def.line, def.text);
                if kind == Kind::Function {
                    symbols.push_str(&format!(" GLUE_SYM({name})"));
                }
                if file == HEADER {
                    out.types.push_str(&piece);
                } else {
                    if kind == Kind::Function {
                        prototypes.push_str(&prototype(&def.text));
                    }
                    bodies.push_str(&piece);
                }
                out.from_input.push(name.into());
            }
            None if GLUE.contains(&name) => {
                out.from_glue.push(name.into());
                out.members.push_str(&format!("#define GLUE_{name} 1\n"));
            }
            None => {
                let partial = files.get(file).is_some_and(|f| mentions_definition(f, name));
                let why = if partial { "only in part" } else { "nowhere" };
                return Err(format!("the input defines {name} ({file}) {why}: it cannot be compiled"));
            }
        }
    }
    if out.from_glue.iter().any(|g| g == "arm_smmu_cmdq_batch_add_range") {
        prototypes.insert_str(
            0,
            "static void arm_smmu_cmdq_batch_add_range(struct arm_smmu_device *smmu, \
             struct arm_smmu_cmdq_batch *cmds, struct arm_smmu_cmdq_ent *cmd, unsigned long iova, \
             size_t size, size_t granule, size_t pgsize);\n",
        );
    }
    for &(name, known) in SPLICED {
        let added = files.get(HEADER).map(|h| spliced_members(h, name, known)).unwrap_or_default();
        out.members.push_str(&format!("#define SERIES_MEMBERS_{name} {}\n", added.join(" ")));
    }
    out.functions = format!("{prototypes}\n{bodies}\n#define SERIES_SYMBOLS{symbols}\n");
    if let Some(test) = files.get(TEST).and_then(kunit) {
        out.kunit = Some(test);
        out.from_input.push(KUNIT.into());
    }
    Ok(out)
}

/// Whether `text` is a diff (or an mbox of them) rather than a source file.
fn is_patch(text: &str) -> bool {
    text.lines().any(|l| l.starts_with("diff --git ") || l.starts_with("+++ "))
}

/// The base name of a diffed path, if it is one of the kernel's files the
/// design reads.
fn wanted_file(path: &str) -> Option<&'static str> {
    [TEST, HEADER, SOURCE].into_iter().find(|n| path.rsplit('/').next() == Some(n))
}

/// Apply every hunk of every file diff in `text`, in order, to the sparse
/// copies in `files`. Quoted review text never starts a diff, so only the
/// patches themselves are read. A hunk ends at the next hunk, file diff or
/// signature line, or once its line counts are met: mail archives drop
/// blank context lines, so the counts alone cannot say.
fn apply_patches(text: &str, origin: &str, files: &mut BTreeMap<&str, Sparse>) -> Result<(), String> {
    let lines: Vec<&str> = text.lines().collect();
    let ends_hunk = |l: &str| l.starts_with("@@ -") || l.starts_with("diff --git ") || l == "--" || l == "-- ";
    let mut k = 0;
    let mut file: Option<&'static str> = None;
    while k < lines.len() {
        let l = lines[k];
        if let Some(rest) = l.strip_prefix("+++ ") {
            file = wanted_file(rest.trim());
            k += 1;
            continue;
        }
        if l.starts_with("diff --git ") {
            file = None;
            k += 1;
            continue;
        }
        let Some(hunk) = l.strip_prefix("@@ -") else {
            k += 1;
            continue;
        };
        let Some((old, new, ctx)) = parse_hunk_header(hunk) else {
            k += 1;
            continue;
        };
        let body_start = k + 1;
        let (mut old_left, mut new_left) = (old.1, new.1);
        let mut body: Vec<(char, &str)> = Vec::new();
        k = body_start;
        while (old_left > 0 || new_left > 0) && k < lines.len() && !ends_hunk(lines[k]) {
            let line = lines[k];
            k += 1;
            if line.starts_with('\\') {
                continue;
            }
            let (tag, rest) = match line.chars().next() {
                Some('+') if new_left > 0 => ('+', &line[1..]),
                Some('-') if old_left > 0 => ('-', &line[1..]),
                Some(' ') => (' ', &line[1..]),
                // A context line that lost its leading space.
                _ => (' ', line),
            };
            match tag {
                '+' => new_left -= 1,
                '-' => old_left -= 1,
                _ => {
                    old_left = old_left.saturating_sub(1);
                    new_left = new_left.saturating_sub(1);
                }
            }
            body.push((tag, rest));
        }
        if k >= lines.len() && (old_left > 0 || new_left > 0) {
            return Err(format!("{origin} ends inside a hunk (line {body_start}): the series is truncated"));
        }
        if let Some(name) = file {
            let sparse = files.entry(name).or_default();
            sparse.patched = true;
            apply_hunk(sparse, new.0, &body, ctx);
        }
        // A file's diff ends where its hunks do: a hunk quoted unindented
        // in a later review belongs to no file.
        if !lines.get(k).is_some_and(|l| l.starts_with("@@ -")) {
            file = None;
        }
    }
    Ok(())
}

/// A hunk's line range: (start, count).
type Range = (i64, i64);

/// `-a,b +c,d @@ ctx` into ((a, b), (c, d), ctx).
fn parse_hunk_header(h: &str) -> Option<(Range, Range, &str)> {
    let (ranges, ctx) = h.split_once(" @@")?;
    let (old, new) = ranges.split_once(" +")?;
    let range = |r: &str| -> Option<Range> {
        match r.split_once(',') {
            Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
            None => Some((r.parse().ok()?, 1)),
        }
    };
    Some((range(old)?, range(new)?, ctx.trim()))
}

/// A line as compared between hunks: without its whitespace.
fn norm(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Apply one hunk to `f` by its context (a later patch's line numbers count
/// lines the input does not show): where a run of known lines reads as its
/// old lines (blank lines aside), or overlaps them at a run's start or
/// end, the hunk's new lines replace them (a context line keeps what the
/// run knew of it: added by an earlier patch, and where); elsewhere they
/// start a run of their own, at about line `start`.
fn apply_hunk(f: &mut Sparse, start: i64, body: &[(char, &str)], ctx: &str) {
    let old: Vec<(char, String)> =
        body.iter().filter(|(t, l)| *t != '+' && !l.trim().is_empty()).map(|(t, l)| (*t, norm(l))).collect();
    let old_text: Vec<&String> = old.iter().map(|(_, l)| l).collect();
    let kept: Vec<(char, &str)> = body.iter().copied().filter(|(t, _)| *t != '-').collect();
    // The hunk's new lines, given what the run knew of each old one.
    let lines_for = |known: &[Line]| -> Vec<Line> {
        let mut inherited = old.iter().zip(known).filter(|((t, _), _)| *t == ' ').map(|(_, l)| l.clone());
        let mut out = Vec::new();
        for (i, (tag, text)) in kept.iter().enumerate() {
            let prior = (*tag == ' ' && !text.trim().is_empty()).then(|| inherited.next()).flatten();
            out.push(match prior {
                Some(p) => Line { text: (*text).into(), ..p },
                None => Line {
                    text: (*text).into(),
                    added: *tag == '+',
                    container: (*tag == '+').then(|| container_of(&kept[..i], ctx)).flatten(),
                },
            });
        }
        out
    };
    let m = old.len();
    for frag in &mut f.frags {
        // The run's non-blank lines, by index into it.
        let idx: Vec<usize> = (0..frag.lines.len()).filter(|&i| !frag.lines[i].text.trim().is_empty()).collect();
        let seen: Vec<String> = idx.iter().map(|&i| norm(&frag.lines[i].text)).collect();
        let n = seen.len();
        if m == 0 || n == 0 {
            continue;
        }
        let known =
            |from: usize, to: usize| -> Vec<Line> { idx[from..to].iter().map(|&i| frag.lines[i].clone()).collect() };
        // Whole: the old lines inside the run.
        if let Some(k) =
            (0..n.saturating_sub(m) + 1).find(|&k| k + m <= n && seen[k..k + m].iter().eq(old_text.iter().copied()))
        {
            let new = lines_for(&known(k, k + m));
            frag.lines.splice(idx[k]..=idx[k + m - 1], new);
            return;
        }
        // The hunk begins before the run, or runs on past its end.
        let least = 2.min(m);
        if let Some(s) = (least..=m.min(n)).rev().find(|&s| seen[..s].iter().eq(old_text[m - s..].iter().copied())) {
            let mut prior: Vec<Line> = vec![Line { text: String::new(), added: false, container: None }; m - s];
            prior.extend(known(0, s));
            let new = lines_for(&prior);
            frag.lines.splice(..=idx[s - 1], new);
            frag.at = frag.at.min(start);
            return;
        }
        if let Some(s) = (least..=m.min(n)).rev().find(|&s| seen[n - s..].iter().eq(old_text[..s].iter().copied())) {
            let new = lines_for(&known(n - s, n));
            frag.lines.splice(idx[n - s].., new);
            return;
        }
    }
    let at = f.frags.iter().position(|fr| fr.at > start).unwrap_or(f.frags.len());
    f.frags.insert(at, Frag { at: start, lines: lines_for(&[]) });
}

/// The structure or enum a hunk line sits in: the nearest unclosed
/// `struct X {` / `enum X {` above it in the hunk, or the hunk header's
/// context when the hunk starts inside one.
fn container_of(before: &[(char, &str)], ctx: &str) -> Option<String> {
    let mut depth = 0i64;
    for (_, text) in before.iter().rev() {
        let code = strip_comments(text);
        depth += code.matches('}').count() as i64 - code.matches('{').count() as i64;
        if depth < 0 {
            return opener_name(&code);
        }
    }
    (depth == 0).then(|| opener_name(ctx)).flatten()
}

/// `X` of a line opening `struct X {` or `enum X {`.
fn opener_name(line: &str) -> Option<String> {
    let t = line.trim();
    let rest = t.strip_prefix("struct ").or_else(|| t.strip_prefix("enum "))?;
    let name = rest.split(|c: char| !(c.is_alphanumeric() || c == '_')).next()?;
    (t.contains('{') && !name.is_empty()).then(|| name.to_string())
}

/// The whole definition of `name`, if some fragment holds all of it.
fn find(f: &Sparse, kind: Kind, name: &str) -> Option<Def> {
    for frag in &f.frags {
        let first = frag.at;
        let texts: Vec<&str> = frag.lines.iter().map(|l| l.text.as_str()).collect();
        let found = match kind {
            Kind::Macro => find_macro(&texts, name),
            Kind::Struct | Kind::Enum | Kind::Static => find_braced(&texts, kind, name),
            Kind::Function => find_function(&texts, name),
        };
        if let Some((start, text)) = found {
            return Some(Def { text, line: first + start as i64 });
        }
    }
    None
}

/// Whether the input shows `name`'s definition starting but not whole.
fn mentions_definition(f: &Sparse, name: &str) -> bool {
    f.lines().any(|l| {
        let code = strip_comments(&l.text);
        code.contains(&format!("{name}(")) && !code.trim_end().ends_with(';') || code.contains(&format!("{name} {{"))
    })
}

fn find_macro(lines: &[&str], name: &str) -> Option<(usize, String)> {
    let start = lines.iter().position(|l| {
        let t = l.trim_start();
        t.strip_prefix("#define ").is_some_and(|r| {
            r.trim_start().starts_with(name)
                && r.trim_start()[name.len()..].starts_with(|c: char| c == '(' || c.is_whitespace())
        })
    })?;
    let mut end = start;
    while lines[end].trim_end().ends_with('\\') {
        end += 1;
        if end == lines.len() {
            return None;
        }
    }
    Some((start, lines[start..=end].join("\n")))
}

/// `struct NAME {`, `enum NAME {` or `static ... NAME = {`, to its `};`.
fn find_braced(lines: &[&str], kind: Kind, name: &str) -> Option<(usize, String)> {
    let start = lines.iter().position(|l| {
        let code = strip_comments(l);
        let words: Vec<&str> =
            code.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|w| !w.is_empty()).collect();
        match kind {
            Kind::Struct => {
                code.trim_start().starts_with("struct ") && words.get(1) == Some(&name) && code.contains('{')
            }
            Kind::Enum => code.trim_start().starts_with("enum ") && words.get(1) == Some(&name) && code.contains('{'),
            _ => code.trim_start().starts_with("static ") && words.contains(&name) && code.contains('='),
        }
    })?;
    let text = lines[start..].join("\n");
    let open = text.find('{')?;
    let close = matching_brace(&text, open)?;
    let end = text[close..].find(';')? + close;
    Some((start, text[..=end].to_string()))
}

/// A function definition: its declaration lines (return type, qualifiers,
/// a `VISIBLE_IF_KUNIT` line) and its braced body.
fn find_function(lines: &[&str], name: &str) -> Option<(usize, String)> {
    if KEYWORDS.contains(&name) {
        return None;
    }
    for (k, l) in lines.iter().enumerate() {
        let code = strip_comments(l);
        let Some(at) = find_word(&code, name) else { continue };
        let before = &code[..at];
        let after = code[at + name.len()..].trim_start();
        if !after.starts_with('(') || !is_type_prefix(before) {
            continue;
        }
        // The declaration may begin on earlier lines: the return type.
        let mut start = k;
        if before.trim().is_empty() || before.trim() == "*" || !before.contains(' ') {
            while start > 0 {
                let prev = strip_comments(lines[start - 1]);
                let p = prev.trim();
                if p.is_empty() || p.ends_with(';') || p.ends_with('}') || p.ends_with('{') || p.starts_with('#') {
                    break;
                }
                if !is_type_prefix(p) {
                    break;
                }
                start -= 1;
            }
        }
        let text = lines[start..].join("\n");
        let offset: usize = lines[start..k].iter().map(|l| l.len() + 1).sum::<usize>() + at;
        let paren = offset + text[offset..].find('(')?;
        let close = matching(&text, paren, '(', ')')?;
        let rest = &text[close + 1..];
        let brace_at = rest.find(|c: char| !c.is_whitespace())?;
        if !rest[brace_at..].starts_with('{') {
            continue;
        }
        let open = close + 1 + brace_at;
        let end = matching_brace(&text, open)?;
        return Some((start, text[..=end].to_string()));
    }
    None
}

/// C keywords, which look like functions to a search for `name(`.
const KEYWORDS: &[&str] = &["if", "for", "while", "switch", "return", "sizeof", "do", "else", "case"];

/// Whether `s` is what may stand before a function's name in its
/// definition: type words, qualifiers, stars.
fn is_type_prefix(s: &str) -> bool {
    s.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '*' || c.is_whitespace())
        && !s.split_whitespace().any(|w| matches!(w, "return" | "else" | "case" | "goto"))
}

/// The byte offset of `word` in `s` as a whole identifier.
fn find_word(s: &str, word: &str) -> Option<usize> {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut from = 0;
    while let Some(i) = s[from..].find(word) {
        let at = from + i;
        let before_ok = s[..at].chars().next_back().is_none_or(|c| !ident(c));
        let after_ok = s[at + word.len()..].chars().next().is_none_or(|c| !ident(c));
        if before_ok && after_ok {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

fn matching_brace(text: &str, open: usize) -> Option<usize> {
    matching(text, open, '{', '}')
}

/// The offset of the bracket closing the one at `open`, skipping comments,
/// strings and character literals.
fn matching(text: &str, open: usize, o: char, c: char) -> Option<usize> {
    let b = text.as_bytes();
    let (o, c) = (o as u8, c as u8);
    let mut depth = 0i64;
    let mut i = open;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = text[i + 2..].find("*/").map(|e| i + 2 + e + 1)?;
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                i = text[i..].find('\n').map_or(b.len(), |e| i + e);
            }
            q @ (b'"' | b'\'') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            x if x == o => depth += 1,
            x if x == c => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// A line without its `/* */` and `//` comments (a comment that runs on
/// past the line is cut at its start).
fn strip_comments(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    loop {
        let block = rest.find("/*");
        let slash = rest.find("//");
        match (block, slash) {
            (Some(b), s) if s.is_none_or(|s| b < s) => {
                out.push_str(&rest[..b]);
                match rest[b + 2..].find("*/") {
                    Some(e) => rest = &rest[b + 2 + e + 2..],
                    None => return out,
                }
            }
            (_, Some(s)) => {
                out.push_str(&rest[..s]);
                return out;
            }
            _ => {
                out.push_str(rest);
                return out;
            }
        }
    }
}

/// `name(args) { ... }` → `name(args);`
fn prototype(def: &str) -> String {
    let open = def.find('{').unwrap_or(def.len());
    let head: String = def[..open]
        .lines()
        .filter(|l| !l.trim_start().starts_with("/*") && !l.trim_start().starts_with('*'))
        .collect::<Vec<_>>()
        .join(" ");
    format!("{};\n", head.trim())
}

/// The members the series adds to the shim's structure `name`: a patch's
/// added lines inside it, or, from a full header, the members the shim
/// lacks that name one of the series' types (enum values the shim lacks).
fn spliced_members(h: &Sparse, name: &str, known: &[&str]) -> Vec<String> {
    let code = if h.patched {
        let added: Vec<&str> =
            h.lines().filter(|l| l.added && l.container.as_deref() == Some(name)).map(|l| l.text.as_str()).collect();
        strip_block_comments(&added.join("\n"))
    } else {
        let kind = if name.ends_with("_stage") { Kind::Enum } else { Kind::Struct };
        let Some(def) = find(h, kind, name) else { return Vec::new() };
        let inner = def.text.split_once('{').map_or("", |(_, r)| r.rsplit_once('}').map_or(r, |(l, _)| l));
        strip_block_comments(inner)
    };
    let enumerators = name.ends_with("_stage");
    let sep = if enumerators { ',' } else { ';' };
    code.split(sep)
        .map(|m| m.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|m| !m.is_empty())
        .filter(|m| {
            let ident = member_name(m, enumerators);
            !known.contains(&ident.as_str())
                && (h.patched || enumerators || SERIES_TYPES.iter().any(|t| format!("{m} ").contains(t)))
        })
        .map(|m| format!("{m}{sep}"))
        .collect()
}

/// The declared name of a member (`struct x __rcu *invs` → `invs`) or an
/// enumerator (`A = 0` → `A`).
fn member_name(m: &str, enumerator: bool) -> String {
    let decl = if enumerator { m.split('=').next().unwrap_or(m) } else { m.split('[').next().unwrap_or(m) };
    decl.rsplit(|c: char| !(c.is_alphanumeric() || c == '_')).find(|w| !w.is_empty()).unwrap_or("").to_string()
}

fn strip_block_comments(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(b) = rest.find("/*") {
        out.push_str(&rest[..b]);
        match rest[b + 2..].find("*/") {
            Some(e) => rest = &rest[b + 2 + e + 2..],
            None => return out,
        }
    }
    out.push_str(rest);
    out.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// The series' test function and what it uses from the test file, in the
/// file's order.
fn kunit(t: &Sparse) -> Option<String> {
    let test = find(t, Kind::Function, KUNIT)?;
    let mut parts: Vec<Def> = vec![test];
    let mut k = 0;
    while k < parts.len() {
        let body = parts[k].text.clone();
        for word in identifiers(&body) {
            let def = find(t, Kind::Function, &word).or_else(|| find(t, Kind::Static, &word));
            if let Some(def) = def {
                if !parts.iter().any(|p| p.line == def.line) {
                    parts.push(def);
                }
            }
        }
        k += 1;
    }
    parts.sort_by_key(|p| p.line);
    Some(parts.iter().map(|p| format!("{}\n\n", p.text)).collect())
}

/// The identifiers a piece of C uses that the test file might define.
fn identifiers(code: &str) -> Vec<String> {
    let mut out: Vec<String> = code
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with(|c: char| c.is_alphabetic() || c == '_') && w.len() > 2)
        .map(str::to_string)
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(text: &str) -> Vec<Input> {
        vec![Input { path: "x.patch".into(), text: text.into() }]
    }

    #[test]
    fn a_later_hunk_applies_by_its_context_and_members_know_their_structure() {
        let patch = "diff --git a/d/arm-smmu-v3.h b/d/arm-smmu-v3.h\n--- a/d/arm-smmu-v3.h\n+++ b/d/arm-smmu-v3.h\n\
                     @@ -10,3 +10,4 @@ struct arm_smmu_domain {\nstruct iommu_domain domain;\n+ struct arm_smmu_invs __rcu *invs;\n\
                     spinlock_t lock;\n};\n\
                     diff --git a/d/arm-smmu-v3.h b/d/arm-smmu-v3.h\n--- a/d/arm-smmu-v3.h\n+++ b/d/arm-smmu-v3.h\n\
                     @@ -99,2 +99,3 @@ struct arm_smmu_domain {\n struct arm_smmu_invs __rcu *invs;\n+ int added;\n spinlock_t lock;\n";
        let mut files = BTreeMap::new();
        apply_patches(patch, "x", &mut files).unwrap();
        let h = &files[HEADER];
        assert_eq!(h.frags.len(), 1, "the second hunk lands inside the first's lines");
        let texts: Vec<String> = h.lines().map(|l| norm(&l.text)).collect();
        assert_eq!(
            texts,
            [
                "struct iommu_domain domain;",
                "struct arm_smmu_invs __rcu *invs;",
                "int added;",
                "spinlock_t lock;",
                "};"
            ]
        );
        assert_eq!(spliced_members(h, "arm_smmu_domain", &[]), ["struct arm_smmu_invs __rcu *invs;", "int added;"]);
    }

    #[test]
    fn a_truncated_series_and_a_missing_function_are_one_line_errors() {
        let cut = "diff --git a/arm-smmu-v3.c b/arm-smmu-v3.c\n+++ b/arm-smmu-v3.c\n@@ -1,0 +1,3 @@\n+int a;\n";
        let e = extract(&input(cut)).err().unwrap();
        assert!(e.contains("truncated"), "{e}");
        let empty = "diff --git a/arm-smmu-v3.c b/arm-smmu-v3.c\n+++ b/arm-smmu-v3.c\n@@ -1,0 +1,1 @@\n+int a;\n";
        let e = extract(&input(empty)).err().unwrap();
        assert!(e.contains("arm_smmu_inv_type") && !e.contains('\n'), "{e}");
    }

    #[test]
    fn functions_are_found_whole_by_brace_matching() {
        let lines = [
            "/* a comment { */",
            "static inline struct arm_smmu_inv *",
            "arm_smmu_invs_iter_next(struct arm_smmu_invs *invs, size_t next)",
            "{",
            "if (x) { y(\"}\"); }",
            "return NULL;",
            "}",
            "int other;",
        ];
        let (start, text) = find_function(&lines, "arm_smmu_invs_iter_next").unwrap();
        assert_eq!(start, 1);
        assert!(text.ends_with("return NULL;\n}"), "{text}");
        assert_eq!(
            prototype(&text),
            "static inline struct arm_smmu_inv * arm_smmu_invs_iter_next(struct arm_smmu_invs *invs, size_t next);\n"
        );
        // A call is not a definition.
        assert!(find_function(&["arm_smmu_invs_iter_next(a, b);"], "arm_smmu_invs_iter_next").is_none());
    }
}

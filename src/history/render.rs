//! A history as text for a terminal or a job log, and as Markdown for a job summary. Pure:
//! a [`History`] in, a string out.

use std::fmt::Write;

use super::{Change, History, SeriesMetric};

/// A level in words: CPU nanoseconds per second as cores, bytes in KiB/MiB/GiB.
pub fn value(v: f64, unit: &str) -> String {
    match unit {
        "nanoseconds/s" => format!("{:.3} cores", v / 1e9),
        "bytes" | "bytes/s" => {
            let suffix = if unit == "bytes/s" { "/s" } else { "" };
            let (scaled, name) = if v >= 1024.0 * 1024.0 * 1024.0 {
                (v / (1024.0 * 1024.0 * 1024.0), "GiB")
            } else if v >= 1024.0 * 1024.0 {
                (v / (1024.0 * 1024.0), "MiB")
            } else if v >= 1024.0 {
                (v / 1024.0, "KiB")
            } else {
                (v, "B")
            };
            format!("{scaled:.1} {name}{suffix}")
        }
        "count" => format!("{v:.1}"),
        "count/s" => format!("{v:.1}/s"),
        other => format!("{v:.4} {other}"),
    }
}

/// `2.02x [1.86, 2.19]`.
fn ratio(c: &Change) -> String {
    format!("{:.2}x [{:.2}, {:.2}]", c.ratio, c.lower, c.upper)
}

fn shares(c: &Change) -> String {
    match (c.share_before, c.share_after) {
        (Some(b), Some(a)) => format!(
            "{:.1}% -> {:.1}% of {}",
            b * 100.0,
            a * 100.0,
            c.sample_type
        ),
        _ => format!(
            "{} -> {}",
            value(c.before, &c.unit),
            value(c.after, &c.unit)
        ),
    }
}

/// `cpu`, or `heap alloc_space` when the sample type is not the profile's main one.
pub fn profile_label(profile: crate::profile::ProfileKind, sample_type: &str) -> String {
    if profile.main_sample_type() == sample_type {
        profile.name().to_owned()
    } else {
        format!("{} {sample_type}", profile.name())
    }
}

/// `main.computeChecksum cpu cum`, `cpu total`.
pub fn series_label(
    function: &str,
    profile: crate::profile::ProfileKind,
    sample_type: &str,
    metric: SeriesMetric,
) -> String {
    let label = profile_label(profile, sample_type);
    match metric {
        SeriesMetric::Total => format!("{label} total"),
        m => format!("{function} {label} {}", m.name()),
    }
}

fn what(c: &Change) -> String {
    let mut s = series_label(&c.function, c.profile, &c.sample_type, c.metric);
    if let Some(n) = c.named_at.as_deref().filter(|n| *n != c.function) {
        let _ = write!(s, " (in {n})");
    }
    s
}

fn run_line(h: &History, run_index: usize) -> String {
    let r = &h.runs[run_index];
    let mut s = format!("run {} ({} of {}", r.run_id, run_index + 1, h.runs.len());
    let _ = write!(s, ", {}", r.started);
    if let Some(c) = &r.commit {
        let _ = write!(s, ", commit {}", short(c));
    }
    s.push(')');
    s
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// Groups changes by run.
fn by_run(h: &History) -> Vec<(usize, Vec<&Change>)> {
    let mut out: Vec<(usize, Vec<&Change>)> = Vec::new();
    for c in &h.changes {
        match out.last_mut() {
            Some((run, list)) if *run == c.run_index => list.push(c),
            _ => out.push((c.run_index, vec![c])),
        }
    }
    out
}

/// One total's row, the same in both renderings: its label, its first and last runs' values
/// and whether it changed between them.
struct TotalRow {
    label: String,
    first: String,
    last: String,
    changed: bool,
}

fn total_rows(h: &History) -> Vec<TotalRow> {
    h.series
        .iter()
        .filter(|s| s.metric == SeriesMetric::Total)
        .filter_map(|s| {
            let mut known = s.points.iter().flatten().map(|p| p.value);
            let first = known.next()?;
            let last = known.next_back().unwrap_or(first);
            Some(TotalRow {
                label: profile_label(s.profile, &s.sample_type),
                first: value(first, &s.unit),
                last: value(last, &s.unit),
                changed: s.segments.len() > 1,
            })
        })
        .collect()
}

fn headline(h: &History, title: &str) -> String {
    let span = match (h.runs.first(), h.runs.last()) {
        (Some(a), Some(b)) => format!(", {} to {}", a.started, b.started),
        _ => String::new(),
    };
    format!(
        "{title}: {} run{}{span}; {} series tested, {} change{}",
        h.runs.len(),
        if h.runs.len() == 1 { "" } else { "s" },
        h.tested,
        h.changes.len(),
        if h.changes.len() == 1 { "" } else { "s" }
    )
}

/// Plain text.
pub fn text(h: &History, title: &str) -> String {
    let mut out = headline(h, title);
    out.push('\n');
    if h.changes.is_empty() {
        out.push_str("No change: every tested series stayed within its threshold.\n");
    }
    for (run, list) in by_run(h) {
        let _ = writeln!(out, "\nFrom {}:", run_line(h, run));
        for c in list {
            let _ = writeln!(
                out,
                "  {}  {}  {}{}",
                what(c),
                ratio(c),
                shares(c),
                if c.new { "  (new)" } else { "" }
            );
        }
    }
    let totals = total_rows(h);
    if !totals.is_empty() {
        out.push_str("\nTotals, first run -> last run:\n");
        for t in totals {
            let changed = if t.changed { "  (changed)" } else { "" };
            let _ = writeln!(out, "  {}: {} -> {}{changed}", t.label, t.first, t.last);
        }
    }
    for n in &h.notes {
        let _ = writeln!(out, "note: {n}");
    }
    out
}

fn cell(text: &str) -> String {
    crate::report::escape_markdown(text)
}

/// A name as a Markdown code span: nothing inside one is markup, so only a backtick (which
/// would end it) and a table's pipe are replaced.
fn code(text: &str) -> String {
    format!("`{}`", text.replace('`', "'").replace('|', "\\|"))
}

/// Markdown, for a job summary or a comment.
pub fn markdown(h: &History, title: &str) -> String {
    let mut out = format!("### {}\n\n", cell(&headline(h, title)));
    if h.changes.is_empty() {
        out.push_str("No change: every tested series stayed within its threshold.\n");
    } else {
        out.push_str("| From run | Function | Profile | Metric | Change | Share |\n|---|---|---|---|---|---|\n");
        for c in &h.changes {
            let run = &h.runs[c.run_index];
            let _ = writeln!(
                out,
                "| {} {}{} | {}{} | {} | {} | {} | {}{} |",
                code(&run.run_id),
                run.started,
                run.commit
                    .as_deref()
                    .map(|c| format!(" {}", code(short(c))))
                    .unwrap_or_default(),
                code(&c.function),
                c.named_at
                    .as_deref()
                    .filter(|n| *n != c.function)
                    .map(|n| format!(" in {}", code(n)))
                    .unwrap_or_default(),
                profile_label(c.profile, &c.sample_type),
                c.metric.name(),
                ratio(c),
                shares(c).replace("->", "to"),
                if c.new { " (new)" } else { "" }
            );
        }
    }
    let totals = total_rows(h);
    if !totals.is_empty() {
        out.push_str("\n| Total | First run | Last run | Changed |\n|---|---|---|---|\n");
        for t in totals {
            let changed = if t.changed { "yes" } else { "no" };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {changed} |",
                t.label, t.first, t.last
            );
        }
    }
    for n in &h.notes {
        let _ = writeln!(out, "\n_note: {}_", cell(n));
    }
    out
}

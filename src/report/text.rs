//! The terminal report: verdict, rules, then per-profile tables like `pprof -top -diff_base`.

use std::fmt::Write;

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, ContentArrangement, Table};

use super::{
    format_signed, format_total, format_value, kind_heading, label_mix_lines, relative,
    shown_sample_types, top_changes, RenderOptions, Report,
};
use crate::policy::{finding_words, RuleStatus};

/// Renders the report for a terminal (no colour; the caller may add it).
pub fn render_text(report: &Report, options: &RenderOptions) -> String {
    let mut out = String::new();
    let v = &report.verdict;
    let _ = writeln!(out, "Profile Gate: {}", v.outcome.name().to_uppercase());
    let _ = writeln!(out, "{}", v.summary);
    let _ = writeln!(out, "baseline:  {}", report.baseline);
    let _ = writeln!(out, "candidate: {}", report.candidate);
    if let Some(labels) = &report.labels {
        let _ = writeln!(out, "samples:   {}", sanitize(labels));
    }
    let _ = writeln!(out);
    if !v.rules.is_empty() {
        let _ = writeln!(out, "Rules:");
        for r in &v.rules {
            let mark = match r.status {
                RuleStatus::Broken => "BROKEN",
                RuleStatus::Held => "held",
                RuleStatus::Inconclusive => "inconclusive",
                RuleStatus::Skipped => "skipped",
            };
            let _ = writeln!(
                out,
                "  [{mark}] {} ({}): {}",
                r.rule, r.severity, r.explanation
            );
            if r.status == RuleStatus::Broken {
                for f in r
                    .findings
                    .iter()
                    .filter(|f| f.answer.status == crate::compare::margin::Status::Regressed)
                    .take(options.top)
                {
                    let _ = writeln!(out, "      {}", finding_words(f));
                }
            }
        }
        let _ = writeln!(out);
    }
    for c in &report.comparisons {
        for s in shown_sample_types(c, options) {
            let unit = &s.sample_type.unit;
            let _ = writeln!(
                out,
                "{} {} ({} vs {} pods): total per pod {} -> {} ({}); functions per pod over the capture:",
                sanitize(&kind_heading(c)),
                s.sample_type,
                c.baseline.pods.len(),
                c.candidate.pods.len(),
                format_total(c.kind, s.total.baseline_per_pod, unit),
                format_total(c.kind, s.total.candidate_per_pod, unit),
                relative(&s.total),
            );
            if let Some(w) = &s.noise.stationarity_warning {
                let _ = writeln!(out, "  warning: {w}");
            }
            let rows = top_changes(s, options.top);
            if rows.is_empty() {
                let _ = writeln!(out, "  no function changed\n");
                continue;
            }
            let mut t = Table::new();
            t.load_preset(UTF8_FULL_CONDENSED)
                .set_content_arrangement(ContentArrangement::Disabled)
                .set_header(vec![
                    "flat base",
                    "flat cand",
                    "flat Δ",
                    "flat Δ%",
                    "cum base",
                    "cum cand",
                    "cum Δ",
                    "cum Δ%",
                    "function",
                ]);
            for f in rows {
                let num = |s: String| Cell::new(s).set_alignment(CellAlignment::Right);
                t.add_row(vec![
                    num(format_value(f.flat.baseline_per_pod, unit)),
                    num(format_value(f.flat.candidate_per_pod, unit)),
                    num(format_signed(f.flat.change_per_pod(), unit)),
                    num(relative(&f.flat)),
                    num(format_value(f.cum.baseline_per_pod, unit)),
                    num(format_value(f.cum.candidate_per_pod, unit)),
                    num(format_signed(f.cum.change_per_pod(), unit)),
                    num(relative(&f.cum)),
                    Cell::new(sanitize(&f.name)),
                ]);
            }
            let _ = writeln!(out, "{t}\n");
        }
    }
    let mix = label_mix_lines(report);
    if !mix.is_empty() {
        let _ = writeln!(out, "Label mix:");
        for line in mix {
            let _ = writeln!(out, "  {}", sanitize(&line));
        }
    }
    if let Some(facts) = &report.capture_facts {
        let _ = writeln!(out, "Capture: {}", sanitize(facts));
    }
    for w in &report.warnings {
        let _ = writeln!(out, "warning: {}", sanitize(w));
    }
    if !report.unmatched.is_empty() {
        let _ = writeln!(
            out,
            "Not compared (on one side only): {}",
            report.unmatched.join(", ")
        );
    }
    out
}

/// Keeps control characters in hostile function names from driving the terminal.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

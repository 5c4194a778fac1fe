//! The Markdown report, for a pull-request comment.

use std::fmt::Write;

use super::{
    format_signed, format_total, format_value, relative, shown_sample_types, top_changes,
    RenderOptions, Report,
};
use crate::compare::margin::Status;
use crate::compare::Presence;
use crate::policy::{Finding, Metric, Outcome, RuleOutcome, RuleStatus};

/// Renders the report as GitHub-flavoured Markdown; function names are escaped.
pub fn render_markdown(report: &Report, options: &RenderOptions) -> String {
    let mut out = String::new();
    let v = &report.verdict;
    let icon = match v.outcome {
        Outcome::Pass => "✅",
        Outcome::Warn => "⚠️",
        Outcome::Inconclusive => "❔",
        Outcome::Fail => "❌",
    };
    let _ = writeln!(out, "## {icon} Profile Gate: {}\n", v.outcome.name());
    let _ = writeln!(out, "{}\n", escape(&v.summary));
    let _ = writeln!(
        out,
        "Baseline `{}` → candidate `{}`\n",
        code(&report.baseline),
        code(&report.candidate)
    );
    if !v.rules.is_empty() {
        let _ = writeln!(
            out,
            "| rule | severity | result | detail |\n|---|---|---|---|"
        );
        for r in &v.rules {
            let status = match r.status {
                RuleStatus::Broken => "**broken**",
                RuleStatus::Held => "held",
                RuleStatus::Inconclusive => "inconclusive",
                RuleStatus::Skipped => "skipped",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {status} | {} |",
                escape(&r.rule),
                r.severity,
                escape(&r.explanation)
            );
        }
        let _ = writeln!(out);
    }
    if !report.warnings.is_empty() {
        let _ = writeln!(out, "### Warnings\n");
        for w in &report.warnings {
            let _ = writeln!(out, "- ⚠️ {}", escape(w));
        }
        let _ = writeln!(out);
    }
    let with_status = |status: Status| -> Vec<(&RuleOutcome, &Finding)> {
        v.rules
            .iter()
            .flat_map(|r| r.findings.iter().map(move |f| (r, f)))
            .filter(|(_, f)| f.answer.status == status)
            .collect()
    };
    findings_table(
        &mut out,
        "Regressions",
        &with_status(Status::Regressed),
        options.top,
        false,
    );
    findings_table(
        &mut out,
        "Improvements",
        &with_status(Status::Improved),
        options.top,
        false,
    );
    new_and_vanished(&mut out, report, options);
    findings_table(
        &mut out,
        "Inconclusive",
        &inconclusive(v),
        options.top,
        true,
    );
    run_facts(&mut out, report, options);
    for c in &report.comparisons {
        for s in shown_sample_types(c, options) {
            let unit = &s.sample_type.unit;
            let _ = writeln!(
                out,
                "<details><summary>{} {}: total per pod {} → {} ({})</summary>\n",
                c.kind,
                escape(&s.sample_type.to_string()),
                format_total(c.kind, s.total.baseline_per_pod, unit),
                format_total(c.kind, s.total.candidate_per_pod, unit),
                relative(&s.total)
            );
            let _ = writeln!(
                out,
                "| function | flat Δ | flat Δ% | cum Δ | cum Δ% |\n|---|---:|---:|---:|---:|"
            );
            for f in top_changes(s, options.top) {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} |",
                    escape(&f.name),
                    format_signed(f.flat.change_per_pod(), unit),
                    relative(&f.flat),
                    format_signed(f.cum.change_per_pod(), unit),
                    relative(&f.cum)
                );
            }
            let _ = writeln!(
                out,
                "\nPods: {} baseline, {} candidate. Noise measured: {}.{}\n\n</details>\n",
                c.baseline.pods.len(),
                c.candidate.pods.len(),
                escape(&s.noise.measured.join("; ")),
                if s.noise.not_measured.is_empty() {
                    String::new()
                } else {
                    format!(
                        " Not measured: {}.",
                        escape(&s.noise.not_measured.join("; "))
                    )
                }
            );
        }
    }
    if !report.unmatched.is_empty() {
        let _ = writeln!(
            out,
            "Not compared (on one side only): {}\n",
            escape(&report.unmatched.join(", "))
        );
    }
    out
}

/// A table of findings (regressions, improvements or inconclusive ones), `top` rows at most.
/// Inconclusive rows say what change the data could have detected.
fn findings_table(
    out: &mut String,
    title: &str,
    rows: &[(&RuleOutcome, &Finding)],
    top: usize,
    detectable: bool,
) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(out, "### {title}\n");
    let _ = write!(
        out,
        "| function | profile | rule | metric | baseline → candidate (per pod) | change | interval |"
    );
    if detectable {
        let _ = write!(out, " detectable from |");
    }
    let _ = writeln!(
        out,
        "\n|---|---|---|---|---|---:|---|{}",
        if detectable { "---:|" } else { "" }
    );
    for (rule, f) in rows.iter().take(top) {
        let value = |x: f64| {
            if f.metric == Metric::Total {
                format_total(rule.profile, x, &f.unit)
            } else {
                format_value(x, &f.unit)
            }
        };
        let _ = write!(
            out,
            "| {} | {} | {} | {} | {} → {} | {} | {} |",
            escape(f.function.as_deref().unwrap_or("total")),
            rule.profile,
            escape(&rule.rule),
            f.metric,
            value(f.delta.baseline_per_pod),
            value(f.delta.candidate_per_pod),
            ratio_words(f.ratio()),
            interval(f),
        );
        if detectable {
            let _ = write!(out, " {} |", ratio_words(f.answer.minimum_detectable_ratio));
        }
        let _ = writeln!(out);
    }
    if rows.len() > top {
        let _ = writeln!(
            out,
            "\n_{} more not shown; see report.json._",
            rows.len() - top
        );
    }
    if detectable {
        let _ = writeln!(
            out,
            "\n_These moved but the data cannot tell whether past the threshold; \"detectable from\" is the smallest change this run would catch four times out of five. More pods or longer windows narrow it._"
        );
    }
    let _ = writeln!(out);
}

/// Findings the data could not settle that lean towards breaking their rule: those of
/// inconclusive rules first, then the rest by how strongly they moved (smallest p first).
fn inconclusive(v: &crate::policy::Verdict) -> Vec<(&RuleOutcome, &Finding)> {
    let mut rows: Vec<(&RuleOutcome, &Finding)> = v
        .rules
        .iter()
        .flat_map(|r| r.findings.iter().map(move |f| (r, f)))
        .filter(|(_, f)| f.answer.status == Status::Inconclusive)
        .filter(|(_, f)| match (f.metric, f.ratio()) {
            (Metric::New, _) | (_, None) => true,
            // A rule on increases is unsettled by a function that grew, and vice versa.
            (_, Some(r)) => (r >= 1.0) == (f.threshold >= 1.0),
        })
        .collect();
    rows.sort_by(|a, b| {
        let first = |r: &RuleOutcome| u8::from(r.status != RuleStatus::Inconclusive);
        first(a.0).cmp(&first(b.0)).then_with(|| {
            let p = |f: &Finding| f.answer.p_value.unwrap_or(1.0);
            p(a.1).total_cmp(&p(b.1))
        })
    });
    rows
}

/// A profile and sample type in a few words: `cpu`, `heap inuse_space`.
fn profile_label(kind: crate::profile::ProfileKind, sample: &str) -> String {
    if sample == kind.name() {
        kind.to_string()
    } else {
        format!("{kind} {}", escape(sample))
    }
}

/// Tested functions present on one side only, by their cumulative share.
fn new_and_vanished(out: &mut String, report: &Report, options: &RenderOptions) {
    let mut rows: Vec<(f64, String)> = Vec::new();
    for c in &report.comparisons {
        for s in shown_sample_types(c, options) {
            for f in s.functions.iter().filter(|f| f.cum.tested || f.flat.tested) {
                let (word, share) = match f.cum.presence {
                    Presence::New => ("new", f.cum.candidate_share),
                    Presence::Vanished => ("vanished", f.cum.baseline_share),
                    Presence::Both | Presence::Neither => continue,
                };
                rows.push((
                    share,
                    format!(
                        "| {} | {} | {word} | {:.2}% |",
                        escape(&f.name),
                        profile_label(c.kind, &s.sample_type.name),
                        share * 100.0
                    ),
                ));
            }
        }
    }
    if rows.is_empty() {
        return;
    }
    rows.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let _ = writeln!(out, "### New and vanished functions\n");
    let _ = writeln!(
        out,
        "| function | profile | | share (cum) |\n|---|---|---|---:|"
    );
    for (_, row) in rows.iter().take(options.top) {
        let _ = writeln!(out, "{row}");
    }
    if rows.len() > options.top {
        let _ = writeln!(
            out,
            "\n_{} more not shown; see report.json._",
            rows.len() - options.top
        );
    }
    let _ = writeln!(out);
}

/// Pods, windows, samples and noise per profile, and how the capture went.
fn run_facts(out: &mut String, report: &Report, options: &RenderOptions) {
    if report.comparisons.is_empty() && report.capture_facts.is_none() {
        return;
    }
    let _ = writeln!(out, "### Run facts\n");
    if !report.comparisons.is_empty() {
        let _ = writeln!(
            out,
            "| profile | pods | windows | samples | profiled | dispersion | window spread |\n|---|---:|---:|---:|---:|---:|---:|"
        );
    }
    for c in &report.comparisons {
        let side = |s: &crate::compare::SideFacts| {
            (
                s.pods.len(),
                s.pods.iter().map(|p| p.windows).sum::<usize>(),
                s.pods.iter().map(|p| p.samples).sum::<usize>(),
                s.pods.iter().map(|p| p.duration_seconds).sum::<f64>(),
            )
        };
        let (bp, bw, bs, bd) = side(&c.baseline);
        let (cp, cw, cs, cd) = side(&c.candidate);
        for s in shown_sample_types(c, options) {
            let noise = &s.noise;
            let _ = writeln!(
                out,
                "| {} | {bp} / {cp} | {bw} / {cw} | {bs} / {cs} | {} | {} | {} |",
                profile_label(c.kind, &s.sample_type.name),
                if c.kind.is_snapshot() {
                    "snapshot".to_owned()
                } else {
                    format!("{bd:.0}s / {cd:.0}s")
                },
                noise
                    .dispersion
                    .map(|d| format!("φ {d:.3}"))
                    .unwrap_or_else(|| "–".to_owned()),
                noise
                    .window_dispersion
                    .map(|d| format!("{d:.2}×"))
                    .unwrap_or_else(|| "–".to_owned()),
            );
        }
    }
    if !report.comparisons.is_empty() {
        let _ = writeln!(out, "\n_baseline / candidate; dispersion φ is the pod-to-pod spread beyond sampling noise (variance μ + φμ²)._\n");
    }
    if let Some(facts) = &report.capture_facts {
        let _ = writeln!(out, "Capture: {}\n", escape(facts));
    }
}

fn ratio_words(r: Option<f64>) -> String {
    r.map(|r| format!("{:+.1}%", (r - 1.0) * 100.0))
        .unwrap_or_else(|| "–".to_owned())
}

fn interval(f: &Finding) -> String {
    match (f.answer.lower, f.answer.upper) {
        (Some(lo), Some(hi)) if f.metric == Metric::New => {
            format!("share {:.1}%–{:.1}%", lo * 100.0, hi * 100.0)
        }
        (Some(lo), Some(hi)) => format!(
            "[{}, {}] at {:.1}%",
            ratio_words(Some(lo)),
            ratio_words(Some(hi)),
            f.answer.level * 100.0
        ),
        _ => "–".to_owned(),
    }
}

/// Escapes text for a Markdown table cell: no HTML, no emphasis, no broken pipes or lines.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '|' => out.push_str("&#124;"),
            // Without `[` and `]` no link or image can form, so parentheses may stay.
            '\\' | '`' | '*' | '_' | '[' | ']' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Text for inside a code span: backticks cannot be escaped there, so they are replaced.
fn code(s: &str) -> String {
    s.replace('`', "'").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn hostile_names_cannot_break_a_table_or_inject_html() {
        let e = escape("main.(*T).f|<script>alert(1)</script>`x`\nnext");
        assert!(!e.contains('<') && !e.contains('>'));
        assert!(!e.contains('\n'));
        assert!(!e.contains("|"), "{e}");
        assert!(e.contains("\\*"));
    }
}

//! The Markdown report, for a pull-request comment.

use std::fmt::Write;

use super::{
    format_signed, format_total, format_value, kind_heading, label_mix_lines, relative,
    shown_sample_types, top_changes, RenderOptions, Report,
};
use crate::compare::margin::Status;
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
    if let Some(labels) = &report.labels {
        let _ = writeln!(out, "Samples compared: `{}`\n", code(labels));
    }
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
    let regressions: Vec<(&RuleOutcome, &Finding)> = v
        .rules
        .iter()
        .flat_map(|r| r.findings.iter().map(move |f| (r, f)))
        .filter(|(_, f)| f.answer.status == Status::Regressed)
        .collect();
    if !regressions.is_empty() {
        let _ = writeln!(out, "### Regressions\n");
        let _ = writeln!(out, "| function | profile | rule | metric | baseline → candidate (per pod) | change | interval |\n|---|---|---|---|---|---|---|");
        for (rule, f) in regressions.iter().take(options.top) {
            let value = |x: f64| {
                if f.metric == Metric::Total {
                    format_total(rule.profile, x, &f.unit)
                } else {
                    format_value(x, &f.unit)
                }
            };
            let _ = writeln!(
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
        }
        if regressions.len() > options.top {
            let _ = writeln!(
                out,
                "\n_{} more not shown; see report.json._",
                regressions.len() - options.top
            );
        }
        let _ = writeln!(out);
    }
    let mix = label_mix_lines(report);
    if !mix.is_empty() {
        let _ = writeln!(out, "### Label mix\n");
        for line in mix {
            let _ = writeln!(out, "- {}", escape(&line));
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
    for c in &report.comparisons {
        for s in shown_sample_types(c, options) {
            let unit = &s.sample_type.unit;
            let _ = writeln!(
                out,
                "<details><summary>{} {}: total per pod {} → {} ({})</summary>\n",
                escape(&kind_heading(c)),
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
    if let Some(facts) = &report.capture_facts {
        let _ = writeln!(out, "Capture: {}\n", escape(facts));
    }
    out
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

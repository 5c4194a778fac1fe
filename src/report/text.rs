//! The terminal report: verdict, rules, then per-profile tables like `pprof -top -diff_base`.

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, ContentArrangement, Table};

use super::template::{self, TemplateError};
use super::{
    footprint_line, format_signed, format_total_of, format_value, kind_heading, label_mix_lines,
    relative, shown_sample_types, top_changes, RenderOptions, Report,
};
use crate::policy::{finding_words, RuleStatus};
use crate::profile::display_name;
use serde::Serialize;

/// The text template shipped in the binary.
pub const TEXT_TEMPLATE: &str = include_str!("templates/report.txt.j2");

/// Renders the report for a terminal with the shipped template (no colour; the caller may add
/// it).
pub fn render_text(report: &Report, options: &RenderOptions) -> String {
    render_text_with(report, options, TEXT_TEMPLATE).unwrap_or_else(|e| {
        // The shipped template is tested; this is a safety net, never expected.
        format!(
            "Profile Gate: {}\n(the report template failed: {e})\n",
            report.verdict.outcome.name().to_uppercase()
        )
    })
}

/// Renders the report as text with a template of the caller's (`--text-template FILE`).
///
/// The template sees `view` (the shipped template's input: tables already drawn, control
/// characters in names replaced) and `report` (the raw report, as in report.json).
pub fn render_text_with(
    report: &Report,
    options: &RenderOptions,
    source: &str,
) -> Result<String, TemplateError> {
    template::render(source, "report.txt", &text_view(report, options), report)
}

/// Everything the text template lays out.
#[derive(Debug, Serialize)]
pub struct TextView {
    /// `PASS`, `WARN`, `INCONCLUSIVE` or `FAIL`.
    pub outcome: String,
    /// The verdict in one line.
    pub summary: String,
    /// The baseline as given.
    pub baseline: String,
    /// The candidate as given.
    pub candidate: String,
    /// Which samples were compared when not all were (`by route`).
    pub samples: Option<String>,
    /// With a split by label: each value's part of each side's samples, one line each.
    pub label_mix: Vec<String>,
    /// Every rule's outcome.
    pub rules: Vec<TextRule>,
    /// One table per profile and sample type shown.
    pub sections: Vec<TextSection>,
    /// How the capture went, when captured live.
    pub capture: Option<String>,
    /// What was removed as the gate's own footprint, if anything.
    pub footprint: Option<String>,
    /// Warnings people should read.
    pub warnings: Vec<String>,
    /// Kinds on one side only, comma-separated.
    pub unmatched: Option<String>,
}

/// One rule in the text report.
#[derive(Debug, Serialize)]
pub struct TextRule {
    /// `BROKEN`, `held`, `inconclusive` or `skipped`.
    pub mark: &'static str,
    /// The rule's name.
    pub name: String,
    /// `fail` or `warn`.
    pub severity: String,
    /// One line for people.
    pub explanation: String,
    /// For a broken rule, its regressions in words.
    pub findings: Vec<String>,
}

/// One profile and sample type in the text report.
#[derive(Debug, Serialize)]
pub struct TextSection {
    /// The heading line: profile, sample type, pods, totals.
    pub heading: String,
    /// A warning on how steady the load was, if any.
    pub warning: Option<String>,
    /// The table of top changes, drawn; `None` when no function changed.
    pub table: Option<String>,
}

/// The view the shipped text template renders.
pub fn text_view(report: &Report, options: &RenderOptions) -> TextView {
    let v = &report.verdict;
    let rules = v
        .rules
        .iter()
        .map(|r| TextRule {
            mark: match r.status {
                RuleStatus::Broken => "BROKEN",
                RuleStatus::Held => "held",
                RuleStatus::Inconclusive => "inconclusive",
                RuleStatus::Skipped => "skipped",
            },
            name: sanitize(&r.rule),
            severity: r.severity.to_string(),
            explanation: sanitize(&r.explanation),
            findings: if r.status == RuleStatus::Broken {
                r.findings
                    .iter()
                    .filter(|f| f.answer.status == crate::compare::margin::Status::Regressed)
                    .take(options.top)
                    .map(|f| sanitize(&finding_words(f)))
                    .collect()
            } else {
                Vec::new()
            },
        })
        .collect();
    let mut sections = Vec::new();
    for c in &report.comparisons {
        for s in shown_sample_types(c, options) {
            let unit = &s.sample_type.unit;
            let heading = format!(
                "{} {} ({} vs {} pods): total per pod {} -> {} ({}); functions per pod over the capture:",
                sanitize(&kind_heading(c)),
                s.sample_type,
                c.baseline.pods.len(),
                c.candidate.pods.len(),
                format_total_of(c, s.total.baseline_per_pod, unit),
                format_total_of(c, s.total.candidate_per_pod, unit),
                relative(&s.total),
            );
            let rows = top_changes(s, options.top);
            let table = (!rows.is_empty()).then(|| {
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
                        Cell::new(sanitize(&display_name(&f.name))),
                    ]);
                }
                t.to_string()
            });
            sections.push(TextSection {
                heading,
                warning: s.noise.stationarity_warning.clone(),
                table,
            });
        }
    }
    TextView {
        outcome: v.outcome.name().to_uppercase(),
        summary: sanitize(&v.summary),
        baseline: sanitize(&report.baseline),
        candidate: sanitize(&report.candidate),
        samples: report.labels.as_deref().map(sanitize),
        label_mix: label_mix_lines(report)
            .iter()
            .map(|l| sanitize(l))
            .collect(),
        rules,
        sections,
        capture: report.capture_facts.as_deref().map(sanitize),
        footprint: footprint_line(report),
        warnings: report.warnings.iter().map(|w| sanitize(w)).collect(),
        unmatched: (!report.unmatched.is_empty()).then(|| report.unmatched.join(", ")),
    }
}

/// Adds ANSI colour to a text report for a terminal: the verdict line (green pass, yellow
/// warn or inconclusive, red fail), broken and inconclusive rule marks, and warnings. The
/// caller decides whether the terminal wants colour (a TTY, no `NO_COLOR`).
pub fn colour_text(text: &str) -> String {
    const RED: &str = "\x1b[1;31m";
    const GREEN: &str = "\x1b[1;32m";
    const YELLOW: &str = "\x1b[1;33m";
    const RESET: &str = "\x1b[0m";
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        let (body, newline) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let colour = if let Some(word) = body.strip_prefix("Profile Gate: ") {
            match word {
                "PASS" => Some(GREEN),
                "FAIL" => Some(RED),
                "WARN" | "INCONCLUSIVE" => Some(YELLOW),
                _ => None,
            }
        } else if body.starts_with("  [BROKEN]") {
            Some(RED)
        } else if body.starts_with("  [inconclusive]")
            || body.starts_with("warning:")
            || body.starts_with("  warning:")
        {
            Some(YELLOW)
        } else {
            None
        };
        match colour {
            Some(c) => {
                out.push_str(c);
                out.push_str(body);
                out.push_str(RESET);
            }
            None => out.push_str(body),
        }
        out.push_str(newline);
    }
    out
}

/// Keeps control characters in hostile function names from driving the terminal.
fn sanitize(name: &str) -> String {
    terminal_safe(name, false).into_owned()
}

/// Text as it can be printed on a terminal: control characters from hostile input (escape
/// sequences, a carriage return that overwrites the line) become U+FFFD; line breaks and tabs
/// survive when `lines` is set, for messages that span lines.
pub fn terminal_safe(text: &str, lines: bool) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && !(lines && matches!(c, '\n' | '\t'));
    if !text.chars().any(unsafe_char) {
        return text.into();
    }
    text.chars()
        .map(|c| if unsafe_char(c) { '\u{fffd}' } else { c })
        .collect::<String>()
        .into()
}

#[cfg(test)]
mod tests {
    use super::{colour_text, terminal_safe};

    #[test]
    fn terminal_safe_text_drives_nothing() {
        // ESC (a CSI that clears the screen), BEL, CR (overwrites the line), C1 CSI.
        let hostile = "pod-\u{1b}[2J\u{7}\rfake ok\u{9b}31m\nnext\tcolumn";
        assert_eq!(
            terminal_safe(hostile, true),
            "pod-\u{fffd}[2J\u{fffd}\u{fffd}fake ok\u{fffd}31m\nnext\tcolumn"
        );
        assert_eq!(
            terminal_safe(hostile, false),
            "pod-\u{fffd}[2J\u{fffd}\u{fffd}fake ok\u{fffd}31m\u{fffd}next\u{fffd}column"
        );
        assert!(matches!(
            terminal_safe("plain: ünïcode", false),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn colour_marks_the_verdict_and_broken_rules_only() {
        let text = "Profile Gate: FAIL\nsummary\n  [BROKEN] r (fail): x\n  [held] s (fail): y\n";
        let c = colour_text(text);
        assert!(c.starts_with("\x1b[1;31mProfile Gate: FAIL\x1b[0m\n"));
        assert!(c.contains("\x1b[1;31m  [BROKEN] r (fail): x\x1b[0m\n"));
        assert!(c.contains("\n  [held] s (fail): y\n"));
        let plain: String = c.replace("\x1b[1;31m", "").replace("\x1b[0m", "");
        assert_eq!(plain, text);
    }
}

//! The Markdown report, for a pull-request comment: a view of the report with every cell
//! already escaped, laid out by a minijinja template (the shipped one, or `--template FILE`).

use serde::Serialize;

use super::template::{self, escape, TemplateError};
use super::{
    footprint_line, format_signed, format_total, format_total_of, format_value, kind_heading,
    label_mix_lines, relative, shown_sample_types, top_changes, RenderOptions, Report,
};
use crate::compare::margin::Status;
use crate::compare::Presence;
use crate::policy::{Finding, Metric, Outcome, RuleOutcome, RuleStatus, Severity};
use crate::profile::display_name;

/// The Markdown template shipped in the binary.
pub const MARKDOWN_TEMPLATE: &str = include_str!("templates/report.md.j2");

/// Renders the report as GitHub-flavoured Markdown with the shipped template; function names
/// are escaped.
pub fn render_markdown(report: &Report, options: &RenderOptions) -> String {
    render_markdown_with(report, options, MARKDOWN_TEMPLATE).unwrap_or_else(|e| {
        // The shipped template is tested; this is a safety net, never expected.
        format!(
            "Profile Gate: {}\n\n(the report template failed: {e})\n",
            report.verdict.outcome.name()
        )
    })
}

/// Renders the report as Markdown with a template of the caller's (`--template FILE`).
///
/// The template sees `view` (the shipped template's input: every cell escaped for Markdown)
/// and `report` (the raw report, as in report.json: escape what you print from it with the
/// `md_escape` filter).
pub fn render_markdown_with(
    report: &Report,
    options: &RenderOptions,
    source: &str,
) -> Result<String, TemplateError> {
    template::render(source, "report.md", &markdown_view(report, options), report)
}

/// Everything the Markdown template lays out, escaped.
#[derive(Debug, Serialize)]
pub struct MarkdownView {
    /// `pass`, `warn`, `inconclusive` or `fail`.
    pub outcome: &'static str,
    /// An emoji for the outcome.
    pub icon: &'static str,
    /// The verdict in one line.
    pub summary: String,
    /// The baseline, for inside a code span.
    pub baseline: String,
    /// The candidate, for inside a code span.
    pub candidate: String,
    /// Which samples were compared when not all were (`by route`), for inside a code span.
    pub samples: Option<String>,
    /// With a split by label: each value's part of each side's samples, one line each.
    pub label_mix: Vec<String>,
    /// One row per rule: name, severity, result, detail.
    pub rules: Vec<Vec<String>>,
    /// Warnings people should read.
    pub warnings: Vec<String>,
    /// Confident regressions: function, profile, rule, metric, baseline → candidate, change,
    /// interval.
    pub regressions: Rows,
    /// Confident improvements.
    pub improvements: Rows,
    /// Tested functions on one side only: function, profile, new|vanished, share.
    pub new_and_vanished: Rows,
    /// Unsettled findings, as regressions plus the smallest change the run could detect.
    pub inconclusive: Rows,
    /// Per profile: pods, windows, samples, time, dispersion, window spread.
    pub run_facts: Vec<Vec<String>>,
    /// How the capture went, when captured live.
    pub capture: Option<String>,
    /// What was removed as the gate's own footprint, if anything.
    pub footprint: Option<String>,
    /// Per profile and sample type, the biggest changes.
    pub details: Vec<Details>,
    /// Kinds on one side only, comma-separated.
    pub unmatched: Option<String>,
}

/// Rows of a table, the first `top` of them, and how many were left out.
#[derive(Debug, Default, Serialize)]
pub struct Rows {
    /// The cells of each row shown.
    pub rows: Vec<Vec<String>>,
    /// Rows not shown.
    pub more: usize,
}

/// The collapsed table of one profile and sample type.
#[derive(Debug, Serialize)]
pub struct Details {
    /// The summary line: profile, sample type, totals.
    pub summary: String,
    /// Function, flat change, flat %, cum change, cum %.
    pub rows: Vec<Vec<String>>,
    /// Baseline pods.
    pub baseline_pods: usize,
    /// Candidate pods.
    pub candidate_pods: usize,
    /// Sources of noise measured.
    pub measured: String,
    /// Sources of noise not measured (empty when all were).
    pub not_measured: String,
}

/// The view the shipped Markdown template renders.
pub fn markdown_view(report: &Report, options: &RenderOptions) -> MarkdownView {
    let v = &report.verdict;
    let icon = match v.outcome {
        Outcome::Pass => "✅",
        Outcome::Warn => "⚠️",
        Outcome::Inconclusive => "❔",
        Outcome::Fail => "❌",
    };
    // The rules that decided the verdict first (broken, then inconclusive), the rest after,
    // each group in policy order.
    let mut ordered: Vec<&RuleOutcome> = v.rules.iter().collect();
    ordered.sort_by_key(|r| match (r.status, r.severity) {
        (RuleStatus::Broken, Severity::Fail) => 0,
        (RuleStatus::Broken, Severity::Warn) => 1,
        (RuleStatus::Inconclusive, _) => 2,
        (RuleStatus::Held, _) => 3,
        (RuleStatus::Skipped, _) => 4,
    });
    let rules = ordered
        .into_iter()
        .map(|r| {
            let status = match r.status {
                RuleStatus::Broken => "**broken**",
                RuleStatus::Held => "held",
                RuleStatus::Inconclusive => "inconclusive",
                RuleStatus::Skipped => "skipped",
            };
            vec![
                escape(&r.rule),
                r.severity.to_string(),
                status.to_owned(),
                escape(&r.explanation),
            ]
        })
        .collect();
    let with_status = |status: Status| -> Vec<(&RuleOutcome, &Finding)> {
        v.rules
            .iter()
            .flat_map(|r| r.findings.iter().map(move |f| (r, f)))
            .filter(|(_, f)| f.answer.status == status)
            .collect()
    };
    MarkdownView {
        outcome: v.outcome.name(),
        icon,
        summary: escape(&v.summary),
        baseline: code(&report.baseline),
        candidate: code(&report.candidate),
        samples: report.labels.as_deref().map(code),
        label_mix: label_mix_lines(report).iter().map(|l| escape(l)).collect(),
        rules,
        warnings: report.warnings.iter().map(|w| escape(w)).collect(),
        regressions: findings_table(&with_status(Status::Regressed), options.top, None),
        improvements: findings_table(&with_status(Status::Improved), options.top, None),
        new_and_vanished: new_and_vanished(report, options),
        inconclusive: findings_table(&inconclusive(v), options.top, Some(report)),
        run_facts: run_facts(report, options),
        capture: report.capture_facts.as_deref().map(escape),
        footprint: footprint_line(report).as_deref().map(escape),
        details: details(report, options),
        unmatched: (!report.unmatched.is_empty()).then(|| escape(&report.unmatched.join(", "))),
    }
}

/// Findings as table rows, `top` at most. Inconclusive rows (given their `report`, for its pod
/// counts) add the detectable change and the pods that would settle them.
fn findings_table(
    rows: &[(&RuleOutcome, &Finding)],
    top: usize,
    undecided: Option<&Report>,
) -> Rows {
    let shown = rows
        .iter()
        .take(top)
        .map(|(rule, f)| {
            let value = |x: f64| {
                if f.metric == Metric::Total {
                    format_total(rule.profile, x, &f.unit)
                } else {
                    format_value(x, &f.unit)
                }
            };
            let function = display_name(f.function.as_deref().unwrap_or("total"));
            let mut cells = vec![
                escape(&match &f.label {
                    Some(label) => format!("{function} [{label}]"),
                    None => function.into_owned(),
                }),
                rule.profile.to_string(),
                escape(&rule.rule),
                f.metric.to_string(),
                format!(
                    "{} → {}",
                    value(f.delta.baseline_per_pod),
                    value(f.delta.candidate_per_pod)
                ),
                ratio_words(f.ratio()),
                interval(f),
            ];
            if let Some(report) = undecided {
                cells.push(ratio_words(f.answer.minimum_detectable_ratio));
                let pods = report
                    .comparisons
                    .iter()
                    .find(|c| c.kind == rule.profile)
                    .map(|c| (c.baseline.pods.len(), c.candidate.pods.len()));
                cells.push(pods_words(f.answer.pods_factor_to_decide, pods));
            }
            cells
        })
        .collect();
    Rows {
        rows: shown,
        more: rows.len().saturating_sub(top),
    }
}

fn details(report: &Report, options: &RenderOptions) -> Vec<Details> {
    let mut out = Vec::new();
    for c in &report.comparisons {
        for s in shown_sample_types(c, options) {
            let unit = &s.sample_type.unit;
            out.push(Details {
                summary: format!(
                    "{} {}: total per pod {} → {} ({})",
                    escape(&kind_heading(c)),
                    escape(&s.sample_type.to_string()),
                    format_total_of(c, s.total.baseline_per_pod, unit),
                    format_total_of(c, s.total.candidate_per_pod, unit),
                    relative(&s.total)
                ),
                rows: top_changes(s, options.top)
                    .into_iter()
                    .map(|f| {
                        vec![
                            escape(&display_name(&f.name)),
                            format_signed(f.flat.change_per_pod(), unit),
                            relative(&f.flat),
                            format_signed(f.cum.change_per_pod(), unit),
                            relative(&f.cum),
                        ]
                    })
                    .collect(),
                baseline_pods: c.baseline.pods.len(),
                candidate_pods: c.candidate.pods.len(),
                measured: escape(&s.noise.measured.join("; ")),
                not_measured: escape(&s.noise.not_measured.join("; ")),
            });
        }
    }
    out
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
/// Fewest sampling events on its one side for a new or vanished function to be listed: with
/// ten, seeing none on the other side by chance is about one in a thousand.
const MIN_ONE_SIDED_EVENTS: f64 = 10.0;

fn new_and_vanished(report: &Report, options: &RenderOptions) -> Rows {
    let mut rows: Vec<(f64, Vec<String>)> = Vec::new();
    for c in &report.comparisons {
        for s in shown_sample_types(c, options) {
            for f in s.functions.iter().filter(|f| f.cum.tested || f.flat.tested) {
                let (word, share, events) = match f.cum.presence {
                    Presence::New => ("new", f.cum.candidate_share, f.cum.candidate_events),
                    Presence::Vanished => ("vanished", f.cum.baseline_share, f.cum.baseline_events),
                    Presence::Both | Presence::Neither => continue,
                };
                // A function seen a few times on one side is missing from the other by chance
                // (half the time for one event): an A/A run listed dozens of them. Only those
                // whose absence would be unlikely by chance are news (report.json keeps all).
                if events < MIN_ONE_SIDED_EVENTS {
                    continue;
                }
                // The amount per pod says what a share hides: a "new" goroutine stack at
                // 2.5% can be one goroutine seen in one snapshot of one pod.
                let unit = &s.sample_type.unit;
                rows.push((
                    share,
                    vec![
                        escape(&display_name(&f.name)),
                        profile_label(c.kind, &s.sample_type.name),
                        word.to_owned(),
                        format!(
                            "{} → {}",
                            format_value(f.cum.baseline_per_pod, unit),
                            format_value(f.cum.candidate_per_pod, unit)
                        ),
                        format!("{:.2}%", share * 100.0),
                    ],
                ));
            }
        }
    }
    rows.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let more = rows.len().saturating_sub(options.top);
    Rows {
        rows: rows.into_iter().take(options.top).map(|(_, r)| r).collect(),
        more,
    }
}

/// Pods, windows, samples and noise per profile and sample type shown.
fn run_facts(report: &Report, options: &RenderOptions) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
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
            rows.push(vec![
                profile_label(c.kind, &s.sample_type.name),
                format!("{bp} / {cp}"),
                format!("{bw} / {cw}"),
                format!("{bs} / {cs}"),
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
            ]);
        }
    }
    rows
}

/// What would settle an inconclusive finding, in pods: "~40 pods a side", "~12 + 4 pods"
/// (baseline + candidate when the sides differ).
fn pods_words(factor: Option<f64>, pods: Option<(usize, usize)>) -> String {
    const MOST: f64 = 100.0;
    match (factor, pods) {
        (Some(k), _) if k > MOST => format!("over {MOST:.0}× the pods"),
        (Some(k), Some((b, c))) if b + c > 0 => {
            let more = |n: usize| ((n as f64 * k).ceil() as usize).max(n + 1);
            if b == c {
                format!("~{} pods a side", more(b))
            } else {
                format!("~{} + {} pods", more(b), more(c))
            }
        }
        (Some(k), _) => format!("~{:.0}× the pods", k.ceil()),
        (None, _) => "–".to_owned(),
    }
}

fn ratio_words(r: Option<f64>) -> String {
    r.map(|r| format!("{:+.1}%", (r - 1.0) * 100.0))
        .unwrap_or_else(|| "–".to_owned())
}

/// A confidence level with the digits it needs never to read as 100%: `99.6%`, `99.97%`.
fn level_words(level: f64) -> String {
    let mut digits = 1;
    while digits < 6 && format!("{:.*}", digits, level * 100.0).starts_with("100") {
        digits += 1;
    }
    format!("{:.*}%", digits, level * 100.0)
}

fn interval(f: &Finding) -> String {
    match (f.answer.lower, f.answer.upper) {
        (Some(lo), Some(hi)) if f.metric == Metric::New => {
            format!("share {:.1}%–{:.1}%", lo * 100.0, hi * 100.0)
        }
        (Some(lo), Some(hi)) => format!(
            "[{}, {}] at {}",
            ratio_words(Some(lo)),
            ratio_words(Some(hi)),
            level_words(f.answer.level)
        ),
        _ => "–".to_owned(),
    }
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
        let m = escape("main.(*T).ping@octocat @org/team");
        assert!(!m.contains("@o"), "a mention formed: {m}");
        assert_eq!(
            m.replace('\u{200d}', ""),
            "main.(\\*T).ping@octocat @org/team"
        );
        let l = escape("pkg.Fetch https://evil.example/x www.evil.example WwW.x");
        assert!(
            !l.contains("://") && !l.to_ascii_lowercase().contains("www."),
            "a link could form: {l}"
        );
        assert_eq!(
            l.replace('\u{200d}', ""),
            "pkg.Fetch https://evil.example/x www.evil.example WwW.x"
        );
    }
}

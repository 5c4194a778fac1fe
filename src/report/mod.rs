//! Rendering of comparisons and verdicts: pure functions from a [`Report`] to bytes.
//!
//! One place (the CLI) writes files; here every format is a function returning a `String`.

pub mod flame;
mod markdown;
pub mod template;
mod text;

pub use crate::profile::units::{format_growth, format_value, kind_and_sample};
use serde::{Deserialize, Serialize};

pub use template::{escape as escape_markdown, TemplateError};

use crate::compare::trend::Growth;
use crate::compare::{Delta, FunctionDelta, KindComparison, SampleTypeComparison};
use crate::policy::Verdict;
use crate::profile::ProfileKind;

pub use markdown::{
    markdown_view, render_markdown, render_markdown_with, MarkdownView, MARKDOWN_TEMPLATE,
};
pub use text::{
    colour_text, render_text, render_text_with, terminal_safe, text_view, TextView, TEXT_TEMPLATE,
};

/// Version of the `report.json` schema; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything a report shows: the comparisons, the verdict, and facts about the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// The `report.json` schema version.
    pub schema_version: u32,
    /// The tool version that wrote the report.
    pub tool_version: String,
    /// What was compared: the baseline as given by the user.
    pub baseline: String,
    /// The candidate as given by the user.
    pub candidate: String,
    /// The verdict of the policy over the comparisons.
    pub verdict: Verdict,
    /// One comparison per profile kind present on both sides.
    pub comparisons: Vec<KindComparison>,
    /// Kinds present on one side only (not compared).
    pub unmatched: Vec<String>,
    /// Growth across windows (goroutines, live heap), per side: the leak signal.
    pub growth: Vec<SideGrowth>,
    /// How the profiles were captured, when they were captured live: facts in one line.
    pub capture_facts: Option<String>,
    /// The capture's record for machines (skew, missing windows), when captured live.
    pub capture: Option<serde_json::Value>,
    /// Warnings people should read: missing windows, lost pods, leak signals.
    pub warnings: Vec<String>,
    /// The samples compared when not all were (`route=/checkout`, `by route`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<String>,
    /// With a split by label: each value's part of each side's samples.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub label_mix: Vec<LabelShare>,
    /// Why the report covers only part of the planned capture (the run was stopped), when it
    /// does; the verdict's summary says so too, and the run exits 3 whatever the verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<String>,
}

/// One label value's part of one profile kind's samples on each side.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabelShare {
    /// The profile kind.
    pub kind: ProfileKind,
    /// The label value, as `key=value`.
    pub label: String,
    /// Its part of the baseline's samples (main sample type), 0-1.
    pub baseline_share: f64,
    /// Its part of the candidate's samples.
    pub candidate_share: f64,
}

/// Why a saved `report.json` cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Not JSON, or not a report of this schema.
    #[error("not a Profile Gate report.json: {0}")]
    Invalid(String),
    /// Written by a newer Profile Gate, with a schema this one does not know.
    #[error("report schema_version {found} is newer than this gate understands ({supported}); re-render it with the gate version that wrote it (tool_version {tool_version})")]
    NewerSchema {
        /// The version in the file.
        found: u64,
        /// The newest version this build reads.
        supported: u32,
        /// The tool version that wrote it, as recorded.
        tool_version: String,
    },
}

impl crate::errors::Classified for ReportError {
    fn class(&self) -> crate::errors::FailureClass {
        // A saved report.json the user gave is not one this gate reads.
        crate::errors::FailureClass::BadInput
    }
}

impl Report {
    /// Reads a report back from `report.json` text, refusing a newer schema version.
    pub fn from_json(text: &str) -> Result<Report, ReportError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ReportError::Invalid(e.to_string()))?;
        let found = value
            .get("schema_version")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| ReportError::Invalid("no schema_version field".to_owned()))?;
        if found > u64::from(SCHEMA_VERSION) {
            return Err(ReportError::NewerSchema {
                found,
                supported: SCHEMA_VERSION,
                tool_version: value
                    .get("tool_version")
                    .and_then(|v| v.as_str())
                    .unwrap_or("unknown")
                    .to_owned(),
            });
        }
        serde_json::from_value(value).map_err(|e| ReportError::Invalid(e.to_string()))
    }
}

/// The growth of a snapshot profile's total on one side.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SideGrowth {
    /// "baseline" or "candidate".
    pub side: String,
    /// The fitted growth.
    #[serde(flatten)]
    pub growth: Growth,
    /// Whether it is clear and material enough to call a leak signal.
    pub leak_signal: bool,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Format {
    /// Tables for a terminal.
    Text,
    /// GitHub-flavoured Markdown, for a pull-request comment.
    Markdown,
    /// Every number, for machines.
    Json,
}

/// How much of a report to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderOptions {
    /// Rows per table.
    pub top: usize,
    /// Show every sample type, not only each profile's main one.
    pub all_sample_types: bool,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            top: 15,
            all_sample_types: false,
        }
    }
}

/// Renders a report in the given format.
pub fn render(report: &Report, format: Format, options: &RenderOptions) -> String {
    match format {
        Format::Text => render_text(report, options),
        Format::Markdown => render_markdown(report, options),
        Format::Json => render_json(report),
    }
}

/// A comparison's name in headings: the kind, and the label value when split by one.
pub(crate) fn kind_heading(c: &KindComparison) -> String {
    let mut heading = c.kind.to_string();
    if let Some(filter) = &c.filter {
        heading.push_str(&format!(" {{{filter}}}"));
    }
    if let Some(label) = &c.label {
        heading.push_str(&format!(" [{label}]"));
    }
    heading
}

/// The comparison of a kind's main sample type, or of what stands in for it in another
/// runtime's profiles (Node.js's `wall` for `cpu`).
pub(crate) fn main_sample_type(c: &KindComparison) -> Option<&SampleTypeComparison> {
    c.kind
        .find_sample_type(
            c.kind.main_sample_type(),
            c.sample_types.iter().map(|s| s.sample_type.name.as_str()),
        )
        .map(|(i, _)| &c.sample_types[i])
}

/// What was removed as the gate's own footprint, in one line (`None` when nothing was): per
/// kind, the part of each side's main sample type that the profiling machinery accounted for.
pub(crate) fn footprint_line(report: &Report) -> Option<String> {
    let parts: Vec<String> = report
        .comparisons
        .iter()
        .filter(|c| c.label.is_none() && c.filter.is_none())
        .filter_map(|c| {
            let s = main_sample_type(c).or_else(|| c.sample_types.first())?;
            s.footprint.any().then(|| {
                format!(
                    "{} {:.1}% / {:.1}%",
                    kind_and_sample(c.kind, &s.sample_type.name),
                    s.footprint.baseline_share * 100.0,
                    s.footprint.candidate_share * 100.0
                )
            })
        })
        .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "the gate's own footprint (stacks through net/http/pprof and runtime/pprof) was removed before comparing, baseline / candidate: {}; the archived profiles keep it (policy defaults.footprint: keep compares it too)",
            parts.join(", ")
        )
    })
}

/// One line per label value and kind: its part of each side's samples, a traffic-mix change
/// called out where it moved by more than a fifth (and 2 points).
pub(crate) fn label_mix_lines(report: &Report) -> Vec<String> {
    report
        .label_mix
        .iter()
        .map(|m| {
            let moved = (m.candidate_share - m.baseline_share).abs() > 0.02
                && (m.candidate_share / m.baseline_share.max(1e-12) - 1.0).abs() > 0.2;
            format!(
                "{} {}: {:.1}% of baseline samples, {:.1}% of candidate samples{}",
                m.kind,
                m.label,
                m.baseline_share * 100.0,
                m.candidate_share * 100.0,
                if moved { " (traffic mix changed)" } else { "" }
            )
        })
        .collect()
}

/// The Markdown report in at most `limit` characters (GitHub's comment limit is 65,536).
///
/// When the full report is too long, tables are cut to fewer rows (halving until it fits) and
/// a note says so; if even one row per table is too long (e.g. absurd function names), the
/// text is cut at a line boundary with a note. Never fails.
pub fn render_markdown_within(report: &Report, options: &RenderOptions, limit: usize) -> String {
    fit_within(options, limit, |o| Ok(render_markdown(report, o)))
        .unwrap_or_else(|e| cut_to_limit(&e.to_string(), limit))
}

/// [`render_markdown_within`] with a template of the caller's.
pub fn render_markdown_within_with(
    report: &Report,
    options: &RenderOptions,
    limit: usize,
    source: &str,
) -> Result<String, TemplateError> {
    fit_within(options, limit, |o| render_markdown_with(report, o, source))
}

fn fit_within(
    options: &RenderOptions,
    limit: usize,
    render: impl Fn(&RenderOptions) -> Result<String, TemplateError>,
) -> Result<String, TemplateError> {
    let full = render(options)?;
    if full.chars().count() <= limit {
        return Ok(full);
    }
    let mut top = options.top;
    while top > 1 {
        top /= 2;
        let mut text = render(&RenderOptions { top, ..*options })?;
        let _ = std::fmt::Write::write_fmt(
            &mut text,
            format_args!(
                "_Tables cut to {top} rows to keep this under {limit} characters; every row is in report.json._\n"
            ),
        );
        if text.chars().count() <= limit {
            return Ok(text);
        }
    }
    let text = render(&RenderOptions { top: 1, ..*options })?;
    Ok(cut_to_limit(&text, limit))
}

/// A report rendered with the shipped templates, or with the caller's where given.
pub fn render_templated(
    report: &Report,
    format: Format,
    options: &RenderOptions,
    markdown_template: Option<&str>,
    text_template: Option<&str>,
) -> Result<String, TemplateError> {
    match (format, markdown_template, text_template) {
        (Format::Markdown, Some(source), _) => render_markdown_with(report, options, source),
        (Format::Text, _, Some(source)) => render_text_with(report, options, source),
        _ => Ok(render(report, format, options)),
    }
}

/// Cuts `text` to at most `limit` characters at a line boundary and adds a note that it was
/// cut. A text within the limit is returned as it is.
pub fn cut_to_limit(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    const NOTE: &str =
        "\n\n_Report cut here to fit the size limit; the whole report is in report.json._\n";
    const CLOSE: &str = "\n</details>\n";
    let budget = limit.saturating_sub(NOTE.chars().count() + CLOSE.len());
    let mut end = 0;
    for (i, c) in text.char_indices().take(budget) {
        if c == '\n' {
            end = i + 1;
        }
    }
    if end == 0 {
        // One enormous line: cut inside it, on a character boundary.
        end = text
            .char_indices()
            .nth(budget)
            .map(|(i, _)| i)
            .unwrap_or(text.len());
    }
    let mut out = text[..end].to_owned();
    if out.matches("<details>").count() > out.matches("</details>").count() {
        out.push_str(CLOSE);
    }
    if out.chars().count() + NOTE.chars().count() <= limit {
        out.push_str(NOTE);
    }
    out
}

/// The report as pretty JSON, every statistic included.
///
/// Per sample type, `functions` lists the functions that were tested (above the minimum
/// share on either side, new and vanished ones included): every number a verdict can rest
/// on. The long tail below the minimum share is left out; a large profile has tens of
/// thousands of functions, and the JSON would be mostly noise.
pub fn render_json(report: &Report) -> String {
    let mut s = serde_json::to_string_pretty(&slim(report))
        .unwrap_or_else(|e| format!("{{\"error\": \"report could not be serialised: {e}\"}}"));
    s.push('\n');
    s
}

/// The report as report.json holds it: only tested functions in each comparison.
pub(crate) fn slim(report: &Report) -> Report {
    Report {
        schema_version: report.schema_version,
        tool_version: report.tool_version.clone(),
        baseline: report.baseline.clone(),
        candidate: report.candidate.clone(),
        verdict: report.verdict.clone(),
        comparisons: report.comparisons.iter().map(tested_only).collect(),
        unmatched: report.unmatched.clone(),
        growth: report.growth.clone(),
        capture_facts: report.capture_facts.clone(),
        capture: report.capture.clone(),
        warnings: report.warnings.clone(),
        labels: report.labels.clone(),
        label_mix: report.label_mix.clone(),
        partial: report.partial.clone(),
    }
}

/// A comparison with only its tested functions.
fn tested_only(c: &KindComparison) -> KindComparison {
    KindComparison {
        kind: c.kind,
        label: c.label.clone(),
        filter: c.filter.clone(),
        baseline: c.baseline.clone(),
        candidate: c.candidate.clone(),
        sample_types: c
            .sample_types
            .iter()
            .map(|s| SampleTypeComparison {
                sample_type: s.sample_type.clone(),
                normalization: s.normalization.clone(),
                noise: s.noise.clone(),
                total: s.total.clone(),
                functions: s
                    .functions
                    .iter()
                    .filter(|f| f.flat.tested || f.cum.tested)
                    .cloned()
                    .collect(),
                footprint: s.footprint,
                growth: s.growth.clone(),
            })
            .collect(),
    }
}

/// The sample types a report shows for one comparison.
fn shown_sample_types<'a>(
    c: &'a KindComparison,
    options: &RenderOptions,
) -> Vec<&'a SampleTypeComparison> {
    if options.all_sample_types {
        return c.sample_types.iter().collect();
    }
    let found: Vec<_> = main_sample_type(c).into_iter().collect();
    if found.is_empty() {
        c.sample_types.last().into_iter().collect()
    } else {
        found
    }
}

/// Functions ordered by the size of their change per pod (flat or cum, whichever is larger),
/// the way `go tool pprof -top -diff_base` ranks them.
fn top_changes(s: &SampleTypeComparison, n: usize) -> Vec<&FunctionDelta> {
    let mut v: Vec<&FunctionDelta> = s
        .functions
        .iter()
        .filter(|f| f.flat.change_per_pod() != 0.0 || f.cum.change_per_pod() != 0.0)
        .collect();
    let key = |f: &FunctionDelta| {
        f.flat
            .change_per_pod()
            .abs()
            .max(f.cum.change_per_pod().abs())
    };
    let order = |a: &&FunctionDelta, b: &&FunctionDelta| {
        key(b).total_cmp(&key(a)).then_with(|| a.name.cmp(&b.name))
    };
    // Profiles hold tens of thousands of functions; only the top n need sorting.
    if n > 0 && v.len() > n {
        v.select_nth_unstable_by(n - 1, order);
        v.truncate(n);
    }
    v.sort_by(order);
    v.truncate(n);
    v
}

/// Relative change of a delta, as a percentage string (`+12.5%`, `new`, `gone`).
fn relative(d: &Delta) -> String {
    if d.baseline_per_pod == 0.0 && d.candidate_per_pod == 0.0 {
        "0%".to_owned()
    } else if d.baseline_per_pod == 0.0 {
        "new".to_owned()
    } else if d.candidate_per_pod == 0.0 {
        "gone".to_owned()
    } else {
        format!(
            "{:+.1}%",
            (d.candidate_per_pod / d.baseline_per_pod - 1.0) * 100.0
        )
    }
}

/// A profile total as reports show it: per pod, and per second for profiles over time (CPU
/// time per second reads as cores).
fn format_total(kind: crate::profile::ProfileKind, v: f64, unit: &str) -> String {
    format_level(kind, v, unit, true)
}

/// [`format_total`] for a comparison: totals since process start carry no `/s`.
fn format_total_of(c: &KindComparison, v: f64, unit: &str) -> String {
    format_level(c.kind, v, unit, !c.since_start())
}

fn format_level(kind: crate::profile::ProfileKind, v: f64, unit: &str, timed: bool) -> String {
    if kind.is_snapshot() || !timed {
        format_value(v, unit)
    } else if unit == "nanoseconds" && kind == crate::profile::ProfileKind::Cpu {
        format!("{:.2} cores", v / 1e9)
    } else {
        format!("{}/s", format_value(v, unit))
    }
}

/// A signed value in human units.
fn format_signed(v: f64, unit: &str) -> String {
    if v > 0.0 {
        format!("+{}", format_value(v, unit))
    } else {
        format_value(v, unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_shown_in_human_units() {
        assert_eq!(format_value(1.5e9, "nanoseconds"), "1.50s");
        assert_eq!(format_value(20e6, "nanoseconds"), "20.0ms");
        assert_eq!(format_value(3.0 * 1024.0 * 1024.0, "bytes"), "3.0MiB");
        assert_eq!(format_value(-512.0, "bytes"), "-512B");
        assert_eq!(format_value(42.0, "count"), "42");
        assert_eq!(format_signed(10e6, "nanoseconds"), "+10.0ms");
        use crate::profile::ProfileKind;
        assert_eq!(
            format_total(ProfileKind::Cpu, 0.5e9, "nanoseconds"),
            "0.50 cores"
        );
        assert_eq!(
            format_total(ProfileKind::Allocs, 2048.0, "bytes"),
            "2.0KiB/s"
        );
        assert_eq!(format_total(ProfileKind::Goroutine, 14.0, "count"), "14");
    }
}

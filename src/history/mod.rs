//! History: what changed across archived runs. Per function (flat and cumulative) and per
//! total, a series over the runs, each point a per-pod normalised level with its interval;
//! change points where a level shifts beyond the policy's threshold, with false alarms
//! controlled over every function and every run; each change named at the service's own
//! function. Pure: run summaries in, a [`History`] out.
//!
//! The method, per series (one profile, sample type, metric and function):
//! - **A point per run.** Each pod's value per second of profile (snapshots as they are),
//!   averaged over the run's pods; functions are then divided by the run's median-ratio size
//!   factor over well-sampled functions (as `gate run` normalises by default), so a busier
//!   night does not make every function look slower; totals stay per second, as the policy's
//!   total rules read them. The log level's variance is the larger of the sampling noise
//!   (overdispersed counts: one over the events behind it) and the spread between the run's
//!   pods.
//! - **Noise between runs.** Runs differ by more than their own noise (load, placement, the
//!   day). That extra variance is measured per series from successive differences
//!   (von Neumann's estimate, made robust with the median so that a level shift does not
//!   inflate it) and never taken below the median over the series of the same profile and
//!   metric.
//! - **Change points.** Binary segmentation on the log levels, each point weighted by its own
//!   variance plus the runs' extra: the split with the strongest evidence that the level after
//!   it differs from the level before by more than the threshold (a one-sided margin test, as
//!   the policy's), its p-value multiplied by the number of splits tried (Bonferroni), then
//!   Benjamini-Hochberg across every tested series of the policy's false-discovery family; a
//!   segment found changed is searched again on both sides. A level needs [`MIN_SEGMENT`]
//!   runs: one odd night is not a change.
//!
//! Layout: [`series`] makes the points, [`changes`] finds the change points, [`chart`] draws
//! one series as SVG, [`render`] writes text and Markdown.

pub mod changes;
pub mod chart;
pub mod render;
pub mod series;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::compare::summary::{summarise_pod, PodSummary};
use crate::policy::{Globs, Policy};
use crate::profile::ProfileKind;
use crate::side::SideProfiles;

/// Runs a level needs on each side of a change.
pub const MIN_SEGMENT: usize = 2;

/// One archived run of one side, summarised: what history reads.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// The run's folder in the archive.
    pub run_id: String,
    /// When it started, RFC 3339 UTC.
    pub started: String,
    /// The commit the run was taken at, when it was recorded.
    pub commit: Option<String>,
    /// Per profile kind, each pod's summary.
    pub kinds: BTreeMap<ProfileKind, Vec<PodSummary>>,
}

/// What to analyse, and against which thresholds.
#[derive(Debug, Clone)]
pub struct HistoryOptions {
    /// The policy whose flat, cum and total rules give each series its threshold and false
    /// discovery rate (functions no rule selects are not tested).
    pub policy: Policy,
    /// Profile kinds to analyse (empty: every kind in the runs).
    pub profiles: Vec<ProfileKind>,
    /// Only these functions (`--functions`); `None`: every function.
    pub functions: Option<Globs>,
    /// Threshold for series no rule covers (`--threshold`); `None`: such series are shown,
    /// not tested.
    pub threshold: Option<f64>,
    /// Include every function's series in the output, not only the changed ones and totals.
    pub all_series: bool,
}

impl HistoryOptions {
    /// Whether history reads this kind's sample type: the kind is asked for, and the sample
    /// type is its main one or one a rule reads. Summaries are read for these only.
    pub fn reads(&self, kind: ProfileKind, sample_type: &str) -> bool {
        (self.profiles.is_empty() || self.profiles.contains(&kind))
            && series::wanted_sample_types(kind, &self.policy.rules)
                .any(|w| kind.find_sample_type(w, [sample_type]).is_some())
    }
}

/// The analysis of a service's history.
#[derive(Debug, Clone, Serialize)]
pub struct History {
    /// The runs, oldest first: the x axis of every series.
    pub runs: Vec<RunFacts>,
    /// Change points, in run order.
    pub changes: Vec<Change>,
    /// Series shown: every total, every changed series, and with `all_series` every one.
    pub series: Vec<Series>,
    /// How many series were tested, and how many runs each could split.
    pub tested: usize,
    /// Things a reader should know (kinds missing from runs, series no rule covers).
    pub notes: Vec<String>,
}

/// One run on the axis.
#[derive(Debug, Clone, Serialize)]
pub struct RunFacts {
    /// The run's folder in the archive.
    pub run_id: String,
    /// When it started, RFC 3339 UTC.
    pub started: String,
    /// The commit, when recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Pods summarised (the most over its kinds).
    pub pods: usize,
    /// Profile kinds it holds.
    pub profiles: Vec<String>,
}

/// What a series measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SeriesMetric {
    /// A function's own value.
    Flat,
    /// A function's value with its callees.
    Cum,
    /// The profile's total.
    Total,
}

impl SeriesMetric {
    /// The spelling in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            SeriesMetric::Flat => "flat",
            SeriesMetric::Cum => "cum",
            SeriesMetric::Total => "total",
        }
    }
}

/// One quantity over the runs.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    /// The profile.
    pub profile: ProfileKind,
    /// The sample type, e.g. `cpu`, `inuse_space`.
    pub sample_type: String,
    /// Its unit per point: `nanoseconds/s`, `bytes`...
    pub unit: String,
    /// Flat, cum or total.
    pub metric: SeriesMetric,
    /// The function (`total` for totals).
    pub function: String,
    /// Whether the function is the service's own code.
    pub own_code: bool,
    /// Whether the series was tested for change points, and by which rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The threshold (0.2 = a 20% shift either way), when tested.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// The noise between runs beyond each point's own, as a standard deviation of the log.
    pub run_noise: f64,
    /// Mean distance from the leaf over the runs.
    #[serde(skip)]
    pub depth: f64,
    /// One point per run (`null` where the run has no such profile).
    pub points: Vec<Option<Point>>,
    /// The levels between change points.
    pub segments: Vec<Segment>,
}

/// One run's level of a series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    /// The level (per pod, normalised).
    pub value: f64,
    /// Lower end of its interval (its own noise and the runs').
    pub lower: f64,
    /// Upper end.
    pub upper: f64,
    /// Share of the profile's total, for functions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share: Option<f64>,
    /// Sampled events behind it, over the run's pods.
    pub events: f64,
}

/// A stretch of runs at one level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Segment {
    /// First run (index into `runs`).
    pub first: usize,
    /// Last run, inclusive.
    pub last: usize,
    /// The level (weighted geometric mean of the points).
    pub level: f64,
}

/// A run where a series' level shifted beyond its threshold.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// The function (`total` for a total).
    pub function: String,
    /// The service's function it is named at: itself when it is the service's own code, else
    /// the deepest of the service's functions whose cumulative value changed at the same run
    /// the same way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub named_at: Option<String>,
    /// The profile.
    pub profile: ProfileKind,
    /// The sample type.
    pub sample_type: String,
    /// Flat, cum or total.
    pub metric: SeriesMetric,
    /// The first run at the new level.
    pub run_id: String,
    /// Its index in `runs`.
    pub run_index: usize,
    /// When it started.
    pub started: String,
    /// Its commit, when recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// New level over old.
    pub ratio: f64,
    /// Lower end of the ratio's interval.
    pub lower: f64,
    /// Upper end.
    pub upper: f64,
    /// The confidence of the interval (1 - the false discovery rate).
    pub confidence: f64,
    /// The test's p-value, Bonferroni-adjusted for the splits tried.
    pub p_value: f64,
    /// The level before.
    pub before: f64,
    /// The level after.
    pub after: f64,
    /// The unit of `before` and `after`.
    pub unit: String,
    /// Share of the profile before and after (functions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share_before: Option<f64>,
    /// Share after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share_after: Option<f64>,
    /// The threshold it went beyond.
    pub threshold: f64,
    /// The function had no sampled events before.
    pub new: bool,
    /// Mean distance from the leaf (0 for a leaf): of two own functions changed at one run, the
    /// nearer the leaf is the cause the other's cumulative change carries.
    #[serde(skip)]
    pub depth: f64,
}

/// Reduces a side's profiles to what history reads (and the archive keeps as its summary).
pub fn summarise(side: &SideProfiles) -> BTreeMap<ProfileKind, Vec<PodSummary>> {
    side.kinds
        .iter()
        .map(|(&kind, pods)| {
            let pods = pods.iter().filter_map(|p| summarise_pod(kind, p)).collect();
            (kind, pods)
        })
        .collect()
}

/// Analyses runs given oldest first.
pub fn analyse(runs: &[RunSummary], options: &HistoryOptions) -> History {
    let kinds: Vec<ProfileKind> = if options.profiles.is_empty() {
        let mut all: Vec<ProfileKind> = runs.iter().flat_map(|r| r.kinds.keys().copied()).collect();
        all.sort();
        all.dedup();
        all
    } else {
        options.profiles.clone()
    };
    let mut notes = Vec::new();
    let mut built = Vec::new();
    for &kind in &kinds {
        let present = runs.iter().filter(|r| r.kinds.contains_key(&kind)).count();
        if present == 0 {
            notes.push(format!("no run holds {} profiles", kind.name()));
            continue;
        }
        if present < runs.len() {
            notes.push(format!(
                "{} of {} runs hold {} profiles; the others are gaps in its series",
                present,
                runs.len(),
                kind.name()
            ));
        }
        built.extend(series::build(runs, kind, options, &mut notes));
    }
    let found = changes::find(&mut built, runs);
    let tested = built.iter().filter(|s| s.series.rule.is_some()).count();
    let changed: std::collections::HashSet<usize> = found.iter().map(|c| c.series).collect();
    let mut changes: Vec<Change> = found.into_iter().map(|c| c.change).collect();
    changes::name_at_own_code(&mut changes, &built);
    // Per run: slower first, then the service's own functions, deepest first (a caller's
    // cumulative change carries its callee's), then the larger changes.
    changes.sort_by(|a, b| {
        let own = |c: &Change| c.named_at.as_deref() == Some(c.function.as_str());
        a.run_index
            .cmp(&b.run_index)
            .then_with(|| (b.ratio > 1.0).cmp(&(a.ratio > 1.0)))
            .then_with(|| own(b).cmp(&own(a)))
            .then_with(|| {
                if own(a) && own(b) {
                    a.depth.total_cmp(&b.depth)
                } else {
                    std::cmp::Ordering::Equal
                }
            })
            .then_with(|| b.named_at.is_some().cmp(&a.named_at.is_some()))
            .then_with(|| {
                let weight = |c: &Change| c.ratio.ln().abs() * c.share_after.unwrap_or(1.0);
                weight(b).total_cmp(&weight(a))
            })
    });
    let series = built
        .into_iter()
        .enumerate()
        .filter(|(i, s)| {
            options.all_series || s.series.metric == SeriesMetric::Total || changed.contains(i)
        })
        .map(|(_, s)| s.series)
        .collect();
    History {
        runs: runs
            .iter()
            .map(|r| RunFacts {
                run_id: r.run_id.clone(),
                started: r.started.clone(),
                commit: r.commit.clone(),
                pods: r.kinds.values().map(Vec::len).max().unwrap_or(0),
                profiles: r.kinds.keys().map(|k| k.name().to_owned()).collect(),
            })
            .collect(),
        changes,
        series,
        tested,
        notes,
    }
}

#[cfg(test)]
mod tests;

//! A policy back to text: canonical YAML, and one plain-words line per rule.

use std::collections::BTreeMap;

use serde::Serialize;

use super::model::{Defaults, Direction, LabelMatch, Metric, Policy, Rule};
use super::percent::format_percent;
use crate::profile::ProfileKind;

#[derive(Serialize)]
struct OutPolicy<'a> {
    version: u32,
    defaults: OutSettings,
    rules: Vec<OutRule<'a>>,
}

#[derive(Serialize, Default)]
struct OutSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    fdr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_share: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_abs_change: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    normalize: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inconclusive: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    footprint: Option<&'static str>,
}

impl OutSettings {
    /// Every setting, written out.
    fn all(d: &Defaults) -> OutSettings {
        OutSettings {
            fdr: Some(format_percent(d.fdr)),
            min_share: Some(format_percent(d.min_share)),
            min_abs_change: Some(format_percent(d.min_abs_change)),
            normalize: Some(d.normalize.name()),
            inconclusive: Some(d.inconclusive.name()),
            footprint: None,
        }
    }

    /// Only the settings of `rule` that differ from `base`.
    fn diff(rule: &Defaults, base: &Defaults) -> OutSettings {
        let all = OutSettings::all(rule);
        OutSettings {
            fdr: all.fdr.filter(|_| rule.fdr != base.fdr),
            min_share: all.min_share.filter(|_| rule.min_share != base.min_share),
            min_abs_change: all
                .min_abs_change
                .filter(|_| rule.min_abs_change != base.min_abs_change),
            normalize: all.normalize.filter(|_| rule.normalize != base.normalize),
            inconclusive: all
                .inconclusive
                .filter(|_| rule.inconclusive != base.inconclusive),
            footprint: None,
        }
    }
}

#[derive(Serialize)]
struct OutRule<'a> {
    name: &'a str,
    profile: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sample: Option<&'a str>,
    metric: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    functions: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ignore: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_increase: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_new_share: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    direction: Option<&'static str>,
    severity: &'static str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<&'a str, &'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    ignore_labels: BTreeMap<&'a str, &'a str>,
    #[serde(flatten)]
    settings: OutSettings,
}

/// Canonical YAML: every default written out, rules with only the keys that differ from what the
/// parser would assume, percentages as `20%`.
pub(crate) fn to_yaml(policy: &Policy) -> String {
    let out = OutPolicy {
        version: policy.version,
        defaults: OutSettings {
            footprint: Some(policy.footprint.name()),
            ..OutSettings::all(&policy.defaults)
        },
        rules: policy
            .rules
            .iter()
            .map(|rule| {
                let per_function = rule.metric != Metric::Total;
                OutRule {
                    name: &rule.name,
                    profile: rule.profile.name(),
                    sample: rule.sample.as_deref(),
                    metric: rule.metric.name(),
                    functions: per_function.then(|| rule.functions.patterns()),
                    ignore: (per_function && !rule.ignore.patterns().is_empty())
                        .then(|| rule.ignore.patterns()),
                    max_increase: rule.max_increase.map(format_percent),
                    max_new_share: rule.max_new_share.map(format_percent),
                    direction: (rule.direction != Direction::Increase)
                        .then(|| rule.direction.name()),
                    severity: rule.severity.name(),
                    labels: label_map(&rule.labels),
                    ignore_labels: label_map(&rule.ignore_labels),
                    settings: OutSettings::diff(&rule.settings, &policy.defaults),
                }
            })
            .collect(),
    };
    match serde_saphyr::to_string(&out) {
        Ok(text) => text,
        Err(e) => format!("# the policy could not be written as YAML: {e}\n"),
    }
}

fn label_map(labels: &[LabelMatch]) -> BTreeMap<&str, &str> {
    labels
        .iter()
        .map(|l| (l.key.as_str(), l.pattern.as_str()))
        .collect()
}

/// One line per rule, in plain words.
pub(crate) fn describe(policy: &Policy) -> String {
    let mut out = String::new();
    for rule in &policy.rules {
        out.push_str(&describe_rule(rule));
        out.push('\n');
    }
    out
}

fn describe_rule(rule: &Rule) -> String {
    let text = describe_rule_samples(rule);
    match rule.label_filter() {
        Some(filter) => format!("{text} (samples with {filter} only)"),
        None => text,
    }
}

fn describe_rule_samples(rule: &Rule) -> String {
    let quantity = quantity(rule.profile, rule.sample_type());
    let selection = selection(rule);
    let s = &rule.settings;
    let body = match rule.metric {
        Metric::Flat | Metric::Cum => {
            let kind = if rule.metric == Metric::Flat {
                "flat"
            } else {
                "cumulative"
            };
            format!(
                "{} {kind} {} of {selection} {} (functions above {} share; FDR {})",
                rule.profile,
                quantity,
                limit(rule),
                format_percent(s.min_share),
                format_percent(s.fdr)
            )
        }
        Metric::Total => format!(
            "total {} {} {} (FDR {})",
            rule.profile,
            quantity,
            limit(rule),
            format_percent(s.fdr)
        ),
        Metric::Growth => format!(
            "the candidate's {} {} may climb at most {} over the capture across windows (a leak; judged at p < {})",
            rule.profile,
            quantity,
            rule.max_increase.map_or_else(|| "?".into(), format_percent),
            format_percent(super::LEAK_ALPHA)
        ),
        Metric::New => format!(
            "{selection} that is new in the candidate may take at most {} of {} {}",
            rule.max_new_share
                .map_or_else(|| "?".into(), format_percent),
            rule.profile,
            quantity
        ),
    };
    let mut extras = Vec::new();
    if s.inconclusive != Defaults::default().inconclusive {
        extras.push(format!("inconclusive counts as {}", s.inconclusive));
    }
    if s.normalize != Defaults::default().normalize {
        extras.push(format!("normalized by {}", s.normalize));
    }
    let extras = if extras.is_empty() {
        String::new()
    } else {
        format!("; {}", extras.join(", "))
    };
    format!("{} ({}): {body}{extras}", rule.name, rule.severity)
}

/// "any function matching * except runtime.*".
fn selection(rule: &Rule) -> String {
    let mut text = format!(
        "any function matching {}",
        rule.functions.patterns().join(" or ")
    );
    if !rule.ignore.patterns().is_empty() {
        text.push_str(" except ");
        text.push_str(&rule.ignore.patterns().join(" or "));
    }
    text
}

/// "may grow at most 20%", and the decrease wording.
fn limit(rule: &Rule) -> String {
    let Some(x) = rule.max_increase else {
        return "has no limit".into();
    };
    let floor = format_percent_rounded(1.0 / (1.0 + x));
    match rule.direction {
        Direction::Increase => format!("may grow at most {}", format_percent(x)),
        Direction::Decrease => format!(
            "may not fall below {floor} of the baseline (1/(1+{}))",
            format_percent(x)
        ),
        Direction::Either => format!(
            "may grow at most {} and may not fall below {floor} of the baseline",
            format_percent(x)
        ),
    }
}

fn format_percent_rounded(v: f64) -> String {
    let text = format!("{:.1}", v * 100.0);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

/// What a sample type measures, in words: "time", "in-use bytes", ...
fn quantity(profile: ProfileKind, sample: &str) -> &'static str {
    match (profile, sample) {
        (ProfileKind::Cpu, _) => "time",
        (_, "inuse_space") => "in-use bytes",
        (_, "inuse_objects") => "in-use objects",
        (_, "alloc_space") => "allocated bytes",
        (_, "alloc_objects") => "allocated objects",
        (_, "goroutine") => "count",
        (_, "contentions") => "contentions",
        (_, "delay") => "delay",
        _ => "value",
    }
}

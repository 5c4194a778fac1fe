//! The judge step: both sides' profiles in, one report with its verdict out.
//!
//! Pure: the sides are read by the caller (files, a live capture, the archive), and so are the
//! label views of rules narrowed by label ([`rule_views`]). Here each profile kind both sides
//! have is compared under every normalisation the policy asks for, the policy is applied to
//! the comparisons, and the report is assembled with the leak signals and the traffic mix.

use std::collections::{BTreeMap, BTreeSet};

use crate::compare::{self, CompareError, KindComparison};
use crate::policy::{self, Policy};
use crate::profile::{LabelView, ProfileKind};
use crate::report::{self, Report};
use crate::side::SideProfiles;

/// Why two sides could not be judged; every case is bad input (exit 2 at the command line).
#[derive(Debug, thiserror::Error)]
pub enum JudgeError {
    /// The sides share no profile kind.
    #[error("the two sides have no profile kind in common: baseline has [{baseline}], candidate has [{candidate}]; compare profiles of the same kind (e.g. cpu with cpu)")]
    NoCommonKind {
        /// The baseline's kinds.
        baseline: String,
        /// The candidate's kinds.
        candidate: String,
    },
    /// The label filters left no sample on one side.
    #[error("no samples are left on both sides after the label filters ({filters}); check --tag and --tag-ignore (Go records labels in CPU and goroutine profiles only)")]
    NoSamplesLeft {
        /// The filters, described.
        filters: String,
    },
    /// The split label has no value on both sides.
    #[error("no value of the label {key:?} occurs on both sides (baseline: [{baseline}], candidate: [{candidate}]); check --by-label and --tag, and that the profiles carry pprof labels (Go records them in CPU and goroutine profiles)")]
    NoCommonLabelValue {
        /// The label key.
        key: String,
        /// The values the baseline has.
        baseline: String,
        /// The values the candidate has.
        candidate: String,
    },
    /// The profiles of a kind could not be compared.
    #[error(transparent)]
    Compare(#[from] CompareError),
}

impl crate::errors::Classified for JudgeError {
    fn class(&self) -> crate::errors::FailureClass {
        // Nothing to judge in what was given: kinds, label values, filters.
        crate::errors::FailureClass::BadInput
    }
}

/// One comparison group: a label value (`None`: every kept sample) and both sides' profiles.
pub struct LabelGroup {
    /// `key=value`, or `None` for every kept sample.
    pub label: Option<String>,
    /// The baseline's profiles in this group.
    pub baseline: SideProfiles,
    /// The candidate's profiles in this group.
    pub candidate: SideProfiles,
}

impl LabelGroup {
    /// Both sides with every sample kept: the one group of a comparison without labels.
    pub fn whole(baseline: SideProfiles, candidate: SideProfiles) -> LabelGroup {
        LabelGroup {
            label: None,
            baseline,
            candidate,
        }
    }
}

/// Pairs the two sides' label values; a value on one side only is reported, not compared.
pub fn label_groups(
    view: &LabelView,
    mut baseline: BTreeMap<Option<String>, SideProfiles>,
    mut candidate: BTreeMap<Option<String>, SideProfiles>,
) -> Result<Vec<LabelGroup>, JudgeError> {
    let key = view.by.as_deref().unwrap_or("");
    let values: Vec<Option<String>> = baseline
        .keys()
        .filter(|v| candidate.contains_key(*v))
        .cloned()
        .collect();
    if values.is_empty() && view.by.is_none() {
        return Err(JudgeError::NoSamplesLeft {
            filters: view.describe().unwrap_or_default(),
        });
    }
    if values.is_empty() {
        let seen = |m: &BTreeMap<Option<String>, SideProfiles>| {
            m.keys().flatten().cloned().collect::<Vec<_>>().join(", ")
        };
        return Err(JudgeError::NoCommonLabelValue {
            key: key.to_owned(),
            baseline: seen(&baseline),
            candidate: seen(&candidate),
        });
    }
    Ok(values
        .into_iter()
        .map(|value| LabelGroup {
            label: value.as_ref().map(|v| format!("{key}={v}")),
            baseline: baseline.remove(&value).unwrap_or_default(),
            candidate: candidate.remove(&value).unwrap_or_default(),
        })
        .collect())
}

/// Each label value's part of each side's samples, per profile kind (the main sample type):
/// a difference here is a traffic-mix change, worth a line of its own.
pub(crate) fn label_mix(groups: &[LabelGroup]) -> Vec<report::LabelShare> {
    let main_total = |side: &SideProfiles, kind: &ProfileKind| -> f64 {
        side.kinds.get(kind).map_or(0.0, |pods| {
            pods.iter()
                .flat_map(|p| &p.windows)
                .map(|w| w.totals[w.default_sample_index()] as f64)
                .sum()
        })
    };
    let kinds: std::collections::BTreeSet<ProfileKind> = groups
        .iter()
        .flat_map(|g| g.baseline.kinds.keys().chain(g.candidate.kinds.keys()))
        .copied()
        .collect();
    let mut out = Vec::new();
    for kind in kinds {
        let b: Vec<f64> = groups
            .iter()
            .map(|g| main_total(&g.baseline, &kind))
            .collect();
        let c: Vec<f64> = groups
            .iter()
            .map(|g| main_total(&g.candidate, &kind))
            .collect();
        let (tb, tc): (f64, f64) = (b.iter().sum(), c.iter().sum());
        for (i, g) in groups.iter().enumerate() {
            let share = |x: f64, t: f64| if t > 0.0 { x / t } else { 0.0 };
            out.push(report::LabelShare {
                kind,
                label: g.label.clone().unwrap_or_default(),
                baseline_share: share(b[i], tb),
                candidate_share: share(c[i], tc),
            });
        }
    }
    out
}

/// The label views that rules narrowed by label (`labels:`, `ignore_labels:`) read, one per
/// distinct filter, each on top of the run's own view: the caller reads both sides through
/// each and hands them to [`judge_groups`].
pub fn rule_views(policy: &Policy, view: &LabelView) -> Vec<(String, LabelView)> {
    let mut out: Vec<(String, LabelView)> = Vec::new();
    for rule in &policy.rules {
        let Some(filter) = rule.label_filter() else {
            continue;
        };
        if out.iter().any(|(f, _)| *f == filter) {
            continue;
        }
        let narrowed = LabelView {
            focus: view
                .focus
                .iter()
                .cloned()
                .chain(rule.labels.iter().map(|l| l.filter()))
                .collect(),
            ignore: view
                .ignore
                .iter()
                .cloned()
                .chain(rule.ignore_labels.iter().map(|l| l.filter()))
                .collect(),
            by: None,
        };
        out.push((filter, narrowed));
    }
    out
}

/// Compares the two sides of one group (every sample, [`LabelGroup::whole`]) under a policy
/// and builds the report. The sides are borrowed, so a large profile is never held twice, and
/// the caller decides when they go.
pub fn judge(
    policy: &Policy,
    group: &LabelGroup,
    baseline_name: String,
    candidate_name: String,
) -> Result<Report, JudgeError> {
    judge_groups(
        policy,
        &LabelView::default(),
        std::slice::from_ref(group),
        &[],
        baseline_name,
        candidate_name,
    )
}

/// Compares each label group under a policy (one verdict, one multiple-testing family over
/// every group) and builds the report.
///
/// `filtered` holds, for rules that narrow the samples by label (`labels:` in the policy),
/// both sides read through each of [`rule_views`]; a view that matched no sample is left out,
/// and its rules say so when judged.
pub fn judge_groups(
    policy: &Policy,
    view: &LabelView,
    groups: &[LabelGroup],
    filtered: &[(String, Vec<LabelGroup>)],
    baseline_name: String,
    candidate_name: String,
) -> Result<Report, JudgeError> {
    let split = view.by.is_some();
    // Kinds either side has in any group; compared where both sides have them.
    let kinds = |side: fn(&LabelGroup) -> &SideProfiles| -> BTreeSet<ProfileKind> {
        groups
            .iter()
            .flat_map(|g| side(g).kinds.keys().copied())
            .collect()
    };
    let (in_baseline, in_candidate) = (kinds(|g| &g.baseline), kinds(|g| &g.candidate));
    let common: Vec<ProfileKind> = in_baseline.intersection(&in_candidate).copied().collect();
    let names =
        |set: &BTreeSet<ProfileKind>| set.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ");
    if common.is_empty() {
        return Err(JudgeError::NoCommonKind {
            baseline: names(&in_baseline),
            candidate: names(&in_candidate),
        });
    }
    let unmatched: Vec<String> = in_baseline
        .symmetric_difference(&in_candidate)
        .map(|k| k.name().to_owned())
        .collect();

    let default_options = policy.compare_options();
    let normalizations = policy.normalizations();
    let mut sets: Vec<(compare::Normalize, Vec<KindComparison>)> = Vec::new();
    for (normalize, only) in normalizations {
        let options = compare::CompareOptions {
            normalize,
            ..default_options
        };
        let mut comparisons = Vec::new();
        let all = groups.iter().map(|g| (None, g)).chain(
            filtered
                .iter()
                .flat_map(|(f, gs)| gs.iter().map(move |g| (Some(f), g))),
        );
        for (filter, g) in all {
            for k in common
                .iter()
                .filter(|k| only.as_ref().is_none_or(|o| o.contains(k)))
            {
                let (Some(b), Some(c)) = (g.baseline.kinds.get(k), g.candidate.kinds.get(k)) else {
                    continue;
                };
                let mut comparison = match compare::compare_kind(*k, b, c, &options) {
                    Ok(c) => c,
                    // A label value with no samples on a side in this kind: nothing to test.
                    Err(compare::CompareError::MissingSide { .. }) if split || filter.is_some() => {
                        continue
                    }
                    Err(e) => return Err(e.into()),
                };
                comparison.label = g.label.clone();
                comparison.filter = filter.cloned();
                comparisons.push(comparison);
            }
        }
        sets.push((normalize, comparisons));
    }
    let verdict = policy::evaluate(policy, &sets);
    let comparisons = sets
        .into_iter()
        .find(|(n, _)| *n == default_options.normalize)
        .map(|(_, c)| c)
        .unwrap_or_default();
    let growth = leak_signals(&comparisons);
    // A climb that no growth rule judged is still said.
    let judged: Vec<(ProfileKind, &str)> = policy
        .rules
        .iter()
        .filter(|r| r.metric == policy::Metric::Growth)
        .map(|r| (r.profile, r.sample_type()))
        .collect();
    let mut warnings = stand_in_notes(&comparisons);
    warnings.extend(growth
        .iter()
        .filter(|g| g.leak_signal && g.side == "candidate")
        .filter(|g| !judged.contains(&(g.growth.kind, g.growth.sample_type.as_str())))
        .map(|g| {
            format!(
                "{} grows in the candidate: {} per minute ({:+.0}% over the capture, p = {:.1e}); a leak?",
                report::kind_and_sample(g.growth.kind, &g.growth.sample_type),
                report::format_growth(g.growth.per_minute, &g.growth.sample_type),
                g.growth.relative * 100.0,
                g.growth.p_value
            )
        }));
    Ok(Report {
        schema_version: report::SCHEMA_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        baseline: baseline_name,
        candidate: candidate_name,
        verdict,
        comparisons,
        unmatched,
        growth,
        capture_facts: None,
        capture: None,
        warnings,
        labels: view.describe(),
        label_mix: if split {
            label_mix(&groups[1..])
        } else {
            Vec::new()
        },
        partial: None,
    })
}

/// What was read in place of a kind's main sample type, said once per kind: the profiles of
/// another runtime (Node.js writes `wall` where Go writes `cpu`), judged by the same rules.
fn stand_in_notes(comparisons: &[compare::KindComparison]) -> Vec<String> {
    comparisons
        .iter()
        .filter(|c| c.label.is_none() && c.filter.is_none())
        .filter_map(|c| {
            let main = c.kind.main_sample_type();
            let names = c.sample_types.iter().map(|s| s.sample_type.name.as_str());
            let (i, found) = c.kind.find_sample_type(main, names)?;
            (found != main).then(|| {
                format!(
                    "{kind} profiles have no {main:?} sample type: {found:?} ({unit}) is judged in its place by the {kind} rules{why}",
                    kind = c.kind,
                    unit = c.sample_types[i].sample_type.unit,
                    why = if found == "wall" {
                        " (wall-clock time of the profiled thread, as Node.js profilers record it: busy time, idle left out)"
                    } else {
                        ""
                    }
                )
            })
        })
        .collect()
}

/// Growth across windows of goroutines and of the live heap, on both sides, as the comparisons
/// measured it: a leak shows as a climb within the candidate that the baseline does not share.
pub(crate) fn leak_signals(comparisons: &[compare::KindComparison]) -> Vec<report::SideGrowth> {
    let mut out = Vec::new();
    for c in comparisons
        .iter()
        .filter(|c| c.label.is_none() && c.filter.is_none())
    {
        let main = c.kind.main_sample_type();
        let Some(g) = c
            .sample_types
            .iter()
            .find(|s| s.sample_type.name == main)
            .and_then(|s| s.growth.as_ref())
        else {
            continue;
        };
        // The candidate's climb is a signal only where it is also clearly faster than the
        // baseline's, as the leak rules judge it.
        let faster = g
            .beyond_baseline
            .as_ref()
            .is_none_or(|x| x.p_value < policy::LEAK_ALPHA);
        for (side, growth, beyond) in [
            ("baseline", &g.baseline, true),
            ("candidate", &g.candidate, faster),
        ] {
            if let Some(growth) = growth {
                out.push(report::SideGrowth {
                    side: side.to_owned(),
                    leak_signal: beyond
                        && growth.is_leak_signal(policy::LEAK_ALPHA, policy::LEAK_MIN_RELATIVE),
                    growth: growth.clone(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two pods of one kind, each with these per-function sample counts.
    fn side(kind: ProfileKind, counts: &[i64]) -> SideProfiles {
        let names: Vec<String> = (0..counts.len()).map(|i| format!("main.f{i}")).collect();
        let pods = crate::compare::simulation::two_identical_pods(kind, &names, counts);
        SideProfiles {
            kinds: BTreeMap::from([(kind, pods)]),
            files: 2,
        }
    }

    #[test]
    fn the_same_profiles_pass_and_a_tripled_function_fails_named() {
        let policy = Policy::builtin_default();
        let base = side(ProfileKind::Cpu, &[400, 300, 200, 100]);
        let both = LabelGroup::whole(base.clone(), base.clone());
        let same = judge(&policy, &both, "b".into(), "c".into()).unwrap();
        assert_eq!(
            same.verdict.outcome,
            policy::Outcome::Pass,
            "{}",
            same.verdict.summary
        );
        assert_eq!(same.comparisons.len(), 1);
        let slower = side(ProfileKind::Cpu, &[400, 300, 200, 300]);
        let report = judge(
            &policy,
            &LabelGroup::whole(base, slower),
            "b".into(),
            "c".into(),
        )
        .unwrap();
        assert_eq!(
            report.verdict.outcome,
            policy::Outcome::Fail,
            "{}",
            report.verdict.summary
        );
        assert!(
            report.verdict.summary.contains("main.f3"),
            "{}",
            report.verdict.summary
        );
    }

    #[test]
    fn sides_without_a_kind_in_common_are_bad_input_naming_both() {
        let cpu = side(ProfileKind::Cpu, &[100]);
        let heap = side(ProfileKind::Goroutine, &[100]);
        let both = LabelGroup::whole(cpu, heap);
        let err = judge(&Policy::builtin_default(), &both, "b".into(), "c".into()).unwrap_err();
        assert!(matches!(err, JudgeError::NoCommonKind { .. }));
        let text = err.to_string();
        assert!(
            text.contains("[cpu]") && text.contains("[goroutine]"),
            "{text}"
        );
    }
}

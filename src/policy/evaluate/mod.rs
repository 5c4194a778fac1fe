//! The verdict: each rule of a policy applied to the comparisons.
//!
//! Every per-function and total test of every rule sharing an FDR forms one Benjamini-Hochberg
//! family (flat and cum together), so adding rules does not multiply false failures unnoticed.
//! Within it a question asked twice (a leaf's cum beside its flat, callers with the same cum)
//! counts once, and questions weigh by share (see [`margin::judge`]).
//!
//! Here: [`evaluate`], each rule finished into its outcome, and the verdict. Beside it: `collect`
//! (each rule's questions), `answers` (those decided without a margin question), `growth` (leak
//! rules), `attribution` (naming the service's function), `words` (the explanations), and
//! `outcome` (the types returned).

mod answers;
mod attribution;
mod collect;
mod growth;
mod outcome;
mod words;

#[cfg(test)]
mod tests;

use answers::*;
pub use attribution::is_own_code;
use attribution::*;
use collect::*;
use growth::*;
pub use growth::{LEAK_ALPHA, LEAK_MIN_RELATIVE};
pub use outcome::*;
pub use words::finding_words;
use words::*;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::model::{Direction, InconclusiveAction, Metric, Normalize, Policy, Rule, Severity};
use crate::compare::margin::{self, MarginAnswer, MarginQuestion, Status};
use crate::compare::{self, stats, Delta, KindComparison, Presence, SampleTypeComparison};
use crate::profile::{display_name, ProfileKind};

impl Policy {
    /// The normalisations comparisons must be computed under, the defaults' first, each with
    /// the profile kinds that need it. Only per-function ratios depend on the normalisation
    /// (totals are per-pod rates, new functions are shares, growth is per pod), so the first
    /// set serves every kind and the others only the kinds of flat or cum rules that ask for
    /// them: one rule normalised by rate must not double the cost of every comparison. A total
    /// rule still reads its own normalisation's set when that holds its kind, for the
    /// function changes its total is attributed to.
    pub fn normalizations(&self) -> Vec<(compare::Normalize, Option<Vec<ProfileKind>>)> {
        let default: compare::Normalize = self.defaults.normalize.into();
        let mut v: Vec<(compare::Normalize, Option<Vec<ProfileKind>>)> = vec![(default, None)];
        for r in self
            .rules
            .iter()
            .filter(|r| matches!(r.metric, Metric::Flat | Metric::Cum))
        {
            let n: compare::Normalize = r.settings.normalize.into();
            if n == default {
                continue;
            }
            match v.iter_mut().find(|(m, _)| *m == n) {
                Some((_, Some(kinds))) => {
                    if !kinds.contains(&r.profile) {
                        kinds.push(r.profile);
                    }
                }
                _ => v.push((n, Some(vec![r.profile]))),
            }
        }
        v
    }

    /// The comparison options of the policy's defaults; functions are tested down to the
    /// smallest minimum share any rule asks for.
    pub fn compare_options(&self) -> compare::CompareOptions {
        let min_share = self
            .rules
            .iter()
            .map(|r| r.settings.min_share)
            .fold(self.defaults.min_share, f64::min);
        compare::CompareOptions {
            normalize: self.defaults.normalize.into(),
            min_share,
        }
    }
}

impl From<Normalize> for compare::Normalize {
    fn from(n: Normalize) -> Self {
        match n {
            Normalize::MedianRatio => compare::Normalize::MedianRatio,
            Normalize::Total => compare::Normalize::Total,
            Normalize::Rate => compare::Normalize::Rate,
        }
    }
}

/// A profile kind that was asked for but of which a side has no usable profile (every one
/// refused, failed or missing): its rules cannot be judged, and say so as inconclusive rather
/// than being skipped into a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    /// The kind.
    pub kind: ProfileKind,
    /// The side without it.
    pub side: String,
    /// Why, in the words of the capture (e.g. the first refusal).
    pub reason: String,
}

/// A verdict of [`evaluate`] with the rules of unavailable kinds, which it skipped, made
/// inconclusive (the policy's `inconclusive` action then decides what that costs).
pub fn mark_unavailable(
    policy: &Policy,
    mut verdict: Verdict,
    unavailable: &[Unavailable],
) -> Verdict {
    let mut changed = false;
    for r in &mut verdict.rules {
        if r.status != RuleStatus::Skipped {
            continue;
        }
        let missing: Vec<String> = unavailable
            .iter()
            .filter(|u| u.kind == r.profile)
            .map(|u| {
                format!(
                    "no usable {} profile from the {}: {}",
                    u.kind, u.side, u.reason
                )
            })
            .collect();
        if !missing.is_empty() {
            r.status = RuleStatus::Inconclusive;
            r.explanation = format!("cannot judge: {}", missing.join("; "));
            changed = true;
        }
    }
    if changed {
        verdict = self::verdict(policy, verdict.rules);
    }
    verdict
}

/// Applies a policy to comparisons, one set per normalisation (see [`Policy::normalizations`]).
/// The first set is the defaults' and holds every kind; the others serve flat and cum rules.
pub fn evaluate(
    policy: &Policy,
    comparisons: &[(compare::Normalize, Vec<KindComparison>)],
) -> Verdict {
    // Pass 1: collect each rule's questions; pass 2: judge them family by family.
    let mut order = ShareOrder::default();
    let mut pending: Vec<PendingRule> = policy
        .rules
        .iter()
        .map(|rule| collect(rule, comparisons, &mut order))
        .collect();

    let mut fdrs: Vec<f64> = pending.iter().map(|p| p.fdr).collect();
    fdrs.sort_by(f64::total_cmp);
    fdrs.dedup();
    for fdr in fdrs {
        let mut questions = Vec::new();
        let mut owners = Vec::new();
        for (ri, p) in pending.iter().enumerate() {
            if p.fdr != fdr {
                continue;
            }
            for (qi, item) in p.items.iter().enumerate() {
                if let Item::Margin(q) = &item.question {
                    questions.push(*q);
                    owners.push((ri, qi));
                }
            }
        }
        for (answer, (ri, qi)) in margin::judge(&questions, fdr).into_iter().zip(owners) {
            pending[ri].items[qi].answer = Some(answer);
        }
    }

    let rules: Vec<RuleOutcome> = pending
        .into_iter()
        .zip(&policy.rules)
        .map(|(p, rule)| finish(rule, p))
        .collect();
    verdict(policy, rules)
}

struct PendingRule<'a> {
    fdr: f64,
    skipped: Option<String>,
    /// A growth rule's outcome, decided when collected (it asks no margin question).
    growth: Option<GrowthOutcome>,
    unit: String,
    items: Vec<PendingItem<'a>>,
}

struct PendingItem<'a> {
    /// The comparison the item came from, to explain it by the service's code if it regressed.
    source: &'a SampleTypeComparison,
    function: Option<String>,
    metric: Metric,
    delta: Delta,
    question: Item,
    answer: Option<MarginAnswer>,
    p_new: Option<f64>,
    label: Option<String>,
    leaf_distance: Option<f64>,
}

enum Item {
    /// A margin question, answered with the rest of its false-discovery family.
    Margin(MarginQuestion),
    /// An answer decided on its own (a new function's share, a total from nothing).
    Decided {
        threshold: f64,
        answer: MarginAnswer,
    },
}

fn finish(rule: &Rule, p: PendingRule<'_>) -> RuleOutcome {
    if let Some(g) = p.growth {
        let tested = usize::from(g.status != RuleStatus::Skipped);
        return RuleOutcome {
            rule: rule.name.clone(),
            profile: rule.profile,
            sample_type: rule.sample_type().to_owned(),
            metric: rule.metric,
            severity: rule.severity,
            status: g.status,
            explanation: g.explanation,
            tested,
            decided: tested,
            undecided: 0,
            findings: Vec::new(),
            culprit: g.culprit,
        };
    }
    let mut findings = findings_of(rule, p.items, &p.unit);
    confirm_new(rule, &mut findings);
    order(&mut findings);
    drop_repeated_attributions(&mut findings);
    let (status, explanation, undecided) = rule_status(rule, &findings, p.skipped);
    let tested = findings.len();
    RuleOutcome {
        rule: rule.name.clone(),
        profile: rule.profile,
        sample_type: rule.sample_type().to_owned(),
        metric: rule.metric,
        severity: rule.severity,
        status,
        explanation,
        tested,
        decided: tested - undecided,
        undecided,
        culprit: culprit(status, &findings),
        findings,
    }
}

/// A rule's findings: each answered question with its threshold, and for a confident
/// regression of a total or a library function, the own function that explains it.
fn findings_of(rule: &Rule, items: Vec<PendingItem<'_>>, unit: &str) -> Vec<Finding> {
    let theta0 = 1.0 + rule.max_increase.unwrap_or(0.0);
    items
        .into_iter()
        .filter_map(|item| {
            let (threshold, answer) = match item.question {
                Item::Margin(_) => (theta0, item.answer?),
                Item::Decided { threshold, answer } => (threshold, answer),
            };
            // Explained only where confident: elsewhere it would put a name on noise, and
            // each explanation is a walk over every function.
            let explained_by = match (&item.function, answer.status) {
                (_, status) if status != Status::Regressed => None,
                (None, _) => attribute(item.source, total_change(item.source)),
                (Some(name), _) if !is_own_code(name) => {
                    attribute(item.source, item.delta.change_per_pod())
                }
                (Some(_), _) => None,
            };
            Some(Finding {
                function: item.function,
                metric: item.metric,
                unit: unit.to_owned(),
                delta: item.delta,
                threshold,
                answer,
                p_new: item.p_new,
                label: item.label,
                explained_by,
                leaf_distance: item.leaf_distance,
            })
        })
        .collect()
}

/// Keeps a new function's regression only where it is confidently new as well.
fn confirm_new(rule: &Rule, findings: &mut [Finding]) {
    // A new function breaks the rule only when it is confidently new (Benjamini-Hochberg
    // across the rule's candidates) as well as confidently above the share: with a few hundred
    // samples a side, a function at 2% is missing from one side's samples now and then, and
    // its few candidate events alone once put a warning on one A/A run in twenty-five.
    let absent = stats::benjamini_hochberg(
        &findings
            .iter()
            .map(|f| f.p_new.unwrap_or(0.0))
            .collect::<Vec<_>>(),
    );
    for (f, p) in findings.iter_mut().zip(absent) {
        if f.metric == Metric::New && f.answer.status == Status::Regressed && p > rule.settings.fdr
        {
            f.answer.status = Status::Inconclusive;
        }
    }
}

/// Orders findings for reading: by status, the service's own functions first, the most
/// certain first, the deepest of a chain first.
fn order(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        rank(a.answer.status)
            .cmp(&rank(b.answer.status))
            // Among regressions, the service's own functions first: the user wants to read
            // `main.hashRecord`, not the `crypto/sha256.block` its time lands in.
            .then_with(|| match a.answer.status {
                Status::Regressed | Status::Inconclusive => nameable(b).cmp(&nameable(a)),
                _ => std::cmp::Ordering::Equal,
            })
            .then_with(|| {
                a.answer
                    .p_value
                    .unwrap_or(1.0)
                    .total_cmp(&b.answer.p_value.unwrap_or(1.0))
            })
            // A chain of callers with one callee's numbers: the deepest first.
            .then_with(|| {
                let depth = |f: &Finding| f.leaf_distance.unwrap_or(f64::INFINITY);
                depth(a).total_cmp(&depth(b))
            })
            .then_with(|| a.function.cmp(&b.function))
    });
}

/// Drops an attribution to a function the rule already names as regressed.
fn drop_repeated_attributions(findings: &mut [Finding]) {
    let named: Vec<String> = findings
        .iter()
        .filter(|f| f.answer.status == Status::Regressed)
        .filter_map(|f| f.function.clone())
        .collect();
    for f in findings.iter_mut() {
        if f.explained_by
            .as_ref()
            .is_some_and(|a| named.contains(&a.function))
        {
            f.explained_by = None;
        }
    }
}

/// The rule's status and the sentence that explains it, with how many findings stayed
/// undecided.
fn rule_status(
    rule: &Rule,
    findings: &[Finding],
    skipped: Option<String>,
) -> (RuleStatus, String, usize) {
    let tested = findings.len();
    let broken: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.answer.status == Status::Regressed)
        .collect();
    // A rule is undecided only where a function confidently moved the breaking way (tested
    // against no change, Benjamini-Hochberg across the rule) but not confidently past the
    // threshold. Wide intervals around no change are reported per function, but do not make
    // the rule undecided: with ~100 noisy functions some point estimate always exceeds the
    // threshold by chance, and a point estimate alone made 42% of simulated A/A runs
    // "inconclusive".
    let moved: Vec<f64> = findings.iter().map(|f| moved_p(rule, f)).collect();
    let moved = stats::benjamini_hochberg(&moved);
    let doubtful: Vec<&Finding> = findings
        .iter()
        .zip(&moved)
        .filter(|(f, &p)| {
            f.answer.status == Status::Inconclusive
                && points_to_breach(rule, f)
                && p <= rule.settings.fdr
        })
        .map(|(f, _)| f)
        .collect();
    let undecided: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.answer.status == Status::Inconclusive)
        .collect();
    let what = describe_target(rule);
    let n_undecided = undecided.len();
    let (status, explanation) = if let Some(why) = skipped {
        (RuleStatus::Skipped, format!("skipped: {why}"))
    } else if !broken.is_empty() {
        let names: Vec<String> = broken.iter().take(3).map(|f| finding_words(f)).collect();
        let more = broken.len().saturating_sub(3);
        let tail = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        (
            RuleStatus::Broken,
            format!("{what}: {}{tail}", names.join("; ")),
        )
    } else if !doubtful.is_empty() {
        (RuleStatus::Inconclusive, doubtful_words(&what, &doubtful))
    } else if tested == 0 {
        (
            RuleStatus::Held,
            format!("{what}: nothing above the minimum share to test"),
        )
    } else if undecided.is_empty() {
        (
            RuleStatus::Held,
            format!("{what}: {tested} tested, all within the threshold"),
        )
    } else {
        (
            RuleStatus::Held,
            held_words(rule, &what, tested, &undecided),
        )
    };
    (status, explanation, n_undecided)
}

/// Why a rule is inconclusive: the first function (or the total) that confidently moved the
/// breaking way but not confidently past the threshold, and how many pods would settle it.
fn doubtful_words(what: &str, doubtful: &[&Finding]) -> String {
    let f = doubtful[0];
    let settle = match f.answer.pods_factor_to_decide {
        Some(k) if k.is_finite() && k > 1.0 => {
            format!("; about {k:.1}x the pods would likely settle it")
        }
        _ => String::new(),
    };
    let which = match (f.function.is_some(), doubtful.len()) {
        (false, _) => format!(
            "cannot tell whether the total is past the threshold: {}",
            finding_words(f)
        ),
        (true, 1) => format!("cannot tell for 1 function: {}", finding_words(f)),
        (true, n) => format!("cannot tell for {n} functions, e.g. {}", finding_words(f)),
    };
    format!("{what}: {which}{settle}")
}

/// Why a rule held with findings undecided: nothing confidently moved the breaking way, but
/// what could not be seen is said, with the likeliest of it, so that it never reads as
/// verified.
///
/// Of the functions past the threshold by their estimate, the one named is the one that most
/// likely moved the breaking way, not the one with the largest estimate: the largest is
/// usually a function of a few samples whose interval spans everything (a real Rust run with
/// `compute_checksum` made 2x slower named a formatting function at +653% [-89%, 497x] beside
/// the planted function's +50% [-1%, +128%]).
fn held_words(rule: &Rule, what: &str, tested: usize, undecided: &[&Finding]) -> String {
    let past: Vec<&&Finding> = undecided
        .iter()
        .filter(|f| points_to_breach(rule, f))
        .collect();
    // A new function's p says whether it is absent from the baseline, not whether it is past
    // the share: new functions are named by their share, as before.
    let by_evidence = rule.metric != Metric::New;
    let named = past
        .iter()
        .copied()
        .min_by(|a, b| {
            let by_size = breach_size(rule, b).total_cmp(&breach_size(rule, a));
            if by_evidence {
                moved_p(rule, a).total_cmp(&moved_p(rule, b)).then(by_size)
            } else {
                by_size
            }
        })
        .or_else(|| {
            undecided
                .iter()
                .max_by(|a, b| breach_size(rule, a).total_cmp(&breach_size(rule, b)))
        })
        .map(|f| finding_words(f))
        .unwrap_or_default();
    let n = undecided.len();
    let which = match (n, past.len()) {
        (1, 0) => format!("1 undecided: {named}"),
        (1, _) => format!("1 undecided, past the threshold by its estimate alone: {named}"),
        (_, 0) => format!("{n} undecided, the largest {named}"),
        (_, k) if by_evidence => format!(
            "{n} undecided, {k} of them past the threshold by the estimate alone, the likeliest to have moved {named}"
        ),
        (_, k) => format!(
            "{n} undecided, {k} of them past the threshold by the estimate alone, the largest {named}"
        ),
    };
    format!(
        "{what}: {tested} tested, {} decided within the threshold, {which}",
        tested - n
    )
}

/// The function a broken rule is blamed on: the first regressed own function, else the
/// first attribution.
fn culprit(status: RuleStatus, findings: &[Finding]) -> Option<String> {
    (status == RuleStatus::Broken)
        .then(|| {
            let regressed = || {
                findings
                    .iter()
                    .filter(|f| f.answer.status == Status::Regressed)
            };
            regressed()
                .find(|f| f.function.is_some() && nameable(f))
                .and_then(|f| f.function.clone())
                .or_else(|| {
                    regressed().find_map(|f| Some(f.explained_by.as_ref()?.function.clone()))
                })
        })
        .flatten()
}

/// How far a finding's estimate lies the breaking way (log ratio; the share for `new`).
fn breach_size(rule: &Rule, f: &Finding) -> f64 {
    match (rule.metric, f.ratio()) {
        (Metric::New, _) => f.delta.candidate_share,
        (_, Some(r)) if r > 0.0 => match rule.direction {
            Direction::Increase => r.ln(),
            Direction::Decrease => -r.ln(),
            Direction::Either => r.ln().abs(),
        },
        _ => f64::NEG_INFINITY,
    }
}

/// One-sided p-value that the finding moved at all in the direction that breaks the rule.
fn moved_p(rule: &Rule, f: &Finding) -> f64 {
    if let Some(p) = f.p_new {
        return p;
    }
    let Some(e) = f.delta.estimate.as_deref().copied() else {
        return 1.0;
    };
    match rule.direction {
        Direction::Increase => e.p_above(1.0),
        Direction::Decrease => e.p_below(1.0),
        Direction::Either => (2.0 * e.p_above(1.0).min(e.p_below(1.0))).min(1.0),
    }
}

fn points_to_breach(rule: &Rule, f: &Finding) -> bool {
    match (rule.metric, f.ratio()) {
        (Metric::New, _) => f.delta.candidate_share > rule.max_new_share.unwrap_or(0.0),
        (Metric::Total, None) => f.delta.presence == Presence::New,
        (_, Some(r)) => {
            rule.upper_threshold().is_some_and(|t| r > t)
                || rule.lower_threshold().is_some_and(|t| r < t)
        }
        (_, None) => false,
    }
}

fn rank(s: Status) -> u8 {
    match s {
        Status::Regressed => 0,
        Status::Inconclusive => 1,
        Status::Improved => 2,
        Status::Within => 3,
    }
}

fn verdict(policy: &Policy, rules: Vec<RuleOutcome>) -> Verdict {
    let action = |r: &RuleOutcome| {
        policy
            .rules
            .iter()
            .find(|p| p.name == r.rule)
            .map(|p| p.settings.inconclusive)
            .unwrap_or(InconclusiveAction::Warn)
    };
    let failing: Vec<&RuleOutcome> = rules
        .iter()
        .filter(|r| {
            r.severity == Severity::Fail
                && (r.status == RuleStatus::Broken
                    || (r.status == RuleStatus::Inconclusive
                        && action(r) == InconclusiveAction::Fail))
        })
        .collect();
    let inconclusive: Vec<&RuleOutcome> = rules
        .iter()
        .filter(|r| r.status == RuleStatus::Inconclusive && action(r) == InconclusiveAction::Warn)
        .collect();
    let warned: Vec<&RuleOutcome> = rules
        .iter()
        .filter(|r| r.status == RuleStatus::Broken && r.severity == Severity::Warn)
        .collect();
    let names = |v: &[&RuleOutcome]| {
        v.iter()
            .map(|r| r.rule.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    // What warned is said beside a failure or an undecided rule too: a new function in the
    // user's code is news either way.
    let also = if warned.is_empty() {
        String::new()
    } else {
        format!(
            "; also warned: {}: {}",
            names(&warned),
            headline(&warned).explanation
        )
    };
    let (outcome, summary) = if !failing.is_empty() {
        (
            Outcome::Fail,
            format!(
                "failed: {} broken; {}{also}",
                names(&failing),
                headline(&failing).explanation
            ),
        )
    } else if !inconclusive.is_empty() {
        (
            Outcome::Inconclusive,
            format!(
                "inconclusive: {} could not decide; {}{also}",
                names(&inconclusive),
                inconclusive[0].explanation
            ),
        )
    } else if !warned.is_empty() {
        (
            Outcome::Warn,
            format!(
                "passed with warnings: {}; {}",
                names(&warned),
                headline(&warned).explanation
            ),
        )
    } else if rules.iter().all(|r| r.status == RuleStatus::Skipped) {
        // Nothing was judged: a pass here would be a gate that silently checks nothing (a
        // policy for profiles that were not captured, a sample type the profiles lack).
        let why = rules
            .first()
            .map(|r| format!(" ({}: {})", r.rule, r.explanation))
            .unwrap_or_default();
        (
            Outcome::Inconclusive,
            format!("inconclusive: no rule could be applied to these profiles{why}"),
        )
    } else {
        let held = rules
            .iter()
            .filter(|r| r.status == RuleStatus::Held)
            .count();
        // A rule that held without deciding anything checked nothing: with one pod a side a
        // real 1.5x change can sit inside every interval. The pass stands (nothing moved
        // confidently), but the summary says what it could not verify.
        let blind: Vec<&RuleOutcome> = rules
            .iter()
            .filter(|r| r.status == RuleStatus::Held && r.tested > 0 && r.decided == 0)
            .collect();
        let unverified = match blind.as_slice() {
            [] => String::new(),
            [r] => format!(
                "; {} verified nothing: none of the {} it tested could be told within the threshold with these pods",
                r.rule, r.tested
            ),
            _ => format!(
                "; {} verified nothing: none of what they tested could be told within the threshold with these pods",
                names(&blind)
            ),
        };
        (
            Outcome::Pass,
            format!("passed: {held} rule(s) held{unverified}"),
        )
    };
    Verdict {
        outcome,
        summary,
        rules,
    }
}

//! The verdict: each rule of a policy applied to the comparisons.
//!
//! Every per-function and total test of every rule sharing an FDR forms one Benjamini-Hochberg
//! family (flat and cum together), so adding rules does not multiply false failures unnoticed.
//! Within it a question asked twice (a leaf's cum beside its flat, callers with the same cum)
//! counts once, and questions weigh by share (see [`margin::judge`]).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::model::{Direction, InconclusiveAction, Metric, Normalize, Policy, Rule, Severity};
use crate::compare::margin::{self, MarginAnswer, MarginQuestion, Status};
use crate::compare::{self, stats, Delta, KindComparison, Presence, SampleTypeComparison};
use crate::profile::{display_name, ProfileKind};

/// The overall outcome of a gate run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Every rule held.
    Pass,
    /// Only `severity: warn` rules broke.
    Warn,
    /// Some rule could not decide and the policy says to warn about it.
    Inconclusive,
    /// A `severity: fail` rule broke (or an inconclusive one the policy treats as failing).
    Fail,
}

impl Outcome {
    /// The word shown in reports and action outputs.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Warn => "warn",
            Outcome::Inconclusive => "inconclusive",
            Outcome::Fail => "fail",
        }
    }
}

/// A policy's judgement of a comparison.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verdict {
    /// The overall outcome.
    pub outcome: Outcome,
    /// One line for people: what decided the outcome.
    pub summary: String,
    /// Every rule's outcome, in policy order.
    pub rules: Vec<RuleOutcome>,
}

/// What one rule found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleStatus {
    /// Something went beyond the rule's threshold, with confidence.
    Broken,
    /// Nothing did.
    Held,
    /// Something may have; the data cannot tell.
    Inconclusive,
    /// The profile or sample type was not captured on both sides.
    Skipped,
}

/// The outcome of one rule, with the findings that decided it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuleOutcome {
    /// The rule's name.
    pub rule: String,
    /// The profile it reads.
    pub profile: ProfileKind,
    /// The sample type it reads.
    pub sample_type: String,
    /// Its metric.
    pub metric: Metric,
    /// Its severity.
    pub severity: Severity,
    /// What it found.
    pub status: RuleStatus,
    /// One line for people.
    pub explanation: String,
    /// How many functions (or totals) were tested.
    pub tested: usize,
    /// How many of them were decided: regressed, improved, or confidently within the threshold.
    #[serde(default)]
    pub decided: usize,
    /// How many the data could not decide either way: "verified within" and "could not see"
    /// are different answers, and the count keeps them apart.
    #[serde(default)]
    pub undecided: usize,
    /// The tested items, most damning first.
    pub findings: Vec<Finding>,
    /// The service's own function the rule names as the cause of a break, when it names one:
    /// the first regression in the service's code with enough samples to judge, or the
    /// deepest function of the service's code that a leak climbs through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub culprit: Option<String>,
}

/// One tested function (or total) under a rule.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finding {
    /// The function; `None` for the profile's total.
    pub function: Option<String>,
    /// Flat, cum, total or new.
    pub metric: Metric,
    /// Unit of the values.
    pub unit: String,
    /// The numbers compared.
    pub delta: Delta,
    /// The threshold ratio applied (for `new`: the allowed share).
    pub threshold: f64,
    /// The test's answer.
    pub answer: MarginAnswer,
    /// For `new`: one-sided p-value that the function is really absent from the baseline, not
    /// merely unsampled there (the candidate's events against the baseline's zero, given
    /// each side's total events). Other metrics test movement with their estimate.
    pub p_new: Option<f64>,
    /// The label value of the comparison this came from (`route=/checkout`), when split.
    pub label: Option<String>,
    /// For a total or a library function: the service's own function whose cumulative change
    /// accounts for most of it, where the user can act.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explained_by: Option<Attribution>,
    /// How many frames above the leaf the function sits, on average: of a chain of callers
    /// with the same numbers, the deepest is listed (and named) first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_distance: Option<f64>,
}

/// The service's own function that explains a change: the deepest frame of its code whose
/// cumulative change carries at least half of the change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attribution {
    /// The function.
    pub function: String,
    /// Its cumulative values.
    pub cum: Delta,
}

impl Finding {
    /// The point estimate of the ratio, if any.
    pub fn ratio(&self) -> Option<f64> {
        self.delta.estimate.map(|e| e.ratio)
    }
}

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

/// The comparisons a rule judges: its profile's chosen sample type, once per label value when
/// the comparison is split by a label (one family spans them all).
fn find<'a>(
    rule: &Rule,
    comparisons: &'a [(compare::Normalize, Vec<KindComparison>)],
) -> Result<Vec<(Option<&'a str>, &'a SampleTypeComparison)>, String> {
    // The rule's own normalisation where it was computed for the rule's kind (the function
    // changes a total is attributed to depend on it), else the first set, the defaults',
    // which holds every kind: totals, shares and growth themselves do not depend on it.
    let wanted: compare::Normalize = rule.settings.normalize.into();
    let set = comparisons
        .iter()
        .find(|(n, set)| *n == wanted && set.iter().any(|c| c.kind == rule.profile))
        .or_else(|| comparisons.first())
        .map(|(_, v)| v.as_slice())
        .unwrap_or(&[]);
    let filter = rule.label_filter();
    let kinds: Vec<&KindComparison> = set
        .iter()
        .filter(|c| c.kind == rule.profile && c.filter == filter)
        .collect();
    // Split by a label, functions are judged within each label value (the traffic mix
    // between values cancels out), totals on the whole: a value's total moves with its
    // traffic as much as with its code.
    let split = kinds.iter().any(|c| c.label.is_some());
    let kinds: Vec<&KindComparison> = match (split, rule.metric) {
        (false, _) => kinds,
        (true, Metric::Total | Metric::Growth) => {
            kinds.into_iter().filter(|c| c.label.is_none()).collect()
        }
        (true, _) => kinds.into_iter().filter(|c| c.label.is_some()).collect(),
    };
    if rule.metric == Metric::Total && kinds.iter().any(|c| c.since_start()) {
        return Err(format!(
            "these {kind} profiles have no duration: they count from each process's start (fetched without ?seconds=), so their totals depend on uptime and cannot be compared; per-function shares still are. Capture with gate run or gate capture, or fetch /debug/pprof/{kind}?seconds=30",
            kind = rule.profile
        ));
    }
    if kinds.is_empty() {
        return Err(match filter {
            Some(filter) => format!(
                "no {} samples with {filter} on both sides (Go records labels in CPU and goroutine profiles only)",
                rule.profile
            ),
            None => format!("no {} profiles on both sides", rule.profile),
        });
    }
    kinds
        .into_iter()
        .map(|kind| {
            kind.sample_types
                .iter()
                .find(|s| s.sample_type.name == rule.sample_type())
                .map(|s| (kind.label.as_deref(), s))
                .ok_or_else(|| {
                    format!(
                        "{} profiles have no sample type {:?} (they have: {})",
                        rule.profile,
                        rule.sample_type(),
                        kind.sample_types
                            .iter()
                            .map(|s| s.sample_type.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
        })
        .collect()
}

/// Each comparison's functions ordered by share, largest first, computed once for all rules:
/// a rule then visits only the functions above its minimum share, so ten thousand rules over a
/// million functions do not cost ten billion steps.
#[derive(Default)]
struct ShareOrder {
    /// Keyed by the comparison's address (they all outlive the evaluation) and flat/cum:
    /// (larger share of the two sides, function index), by descending share.
    orders: HashMap<(usize, bool), Vec<(f64, usize)>>,
}

impl ShareOrder {
    /// Indices of the functions of `s` whose flat (or cum) share reaches `min_share` on
    /// either side, in their order in `s`.
    fn above(
        &mut self,
        s: &SampleTypeComparison,
        cum: bool,
        min_share: f64,
    ) -> impl Iterator<Item = usize> {
        let order = self
            .orders
            .entry((s as *const SampleTypeComparison as usize, cum))
            .or_insert_with(|| {
                let mut v: Vec<(f64, usize)> = s
                    .functions
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        let d = if cum { &f.cum } else { &f.flat };
                        let share = d.baseline_share.max(d.candidate_share);
                        (
                            if share.is_nan() {
                                f64::NEG_INFINITY
                            } else {
                                share
                            },
                            i,
                        )
                    })
                    .collect();
                v.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                v
            });
        let end = order.partition_point(|&(share, _)| share >= min_share);
        let mut picked: Vec<usize> = order[..end].iter().map(|&(_, i)| i).collect();
        picked.sort_unstable();
        picked.into_iter()
    }
}

fn collect<'a>(
    rule: &Rule,
    comparisons: &'a [(compare::Normalize, Vec<KindComparison>)],
    order: &mut ShareOrder,
) -> PendingRule<'a> {
    let fdr = rule.settings.fdr;
    let found = match find(rule, comparisons) {
        Ok(found) => found,
        Err(why) => {
            return PendingRule {
                fdr,
                skipped: Some(why),
                growth: None,
                unit: String::new(),
                items: Vec::new(),
            }
        }
    };
    let direction = match rule.direction {
        Direction::Increase => margin::Direction::Increase,
        Direction::Decrease => margin::Direction::Decrease,
        Direction::Either => margin::Direction::Either,
    };
    let theta0 = 1.0 + rule.max_increase.unwrap_or(0.0);
    let question = |d: &Delta| {
        Item::Margin(MarginQuestion {
            estimate: d.estimate,
            theta0,
            direction,
            share_change: d.share_change(),
            min_abs_change: rule.settings.min_abs_change,
            share: (d.baseline_share + d.candidate_share) / 2.0,
        })
    };
    // A function's waiting is judged on seconds waited per second, not on its share: one
    // function often holds all of a quiet service's contention.
    let function_question = |s: &SampleTypeComparison, d: &Delta| {
        if immaterial_wait(rule, s, d) {
            return Item::Decided {
                threshold: theta0,
                answer: immaterial(fdr),
            };
        }
        match (question(d), waiting_change_per_second(rule, s, d)) {
            (Item::Margin(q), Some(change)) => Item::Margin(MarginQuestion {
                share_change: change,
                ..q
            }),
            (q, _) => q,
        }
    };
    let min_share = rule.settings.min_share;
    let above = |d: &Delta| d.baseline_share.max(d.candidate_share) >= min_share;
    let mut items = Vec::new();
    let mut growth = None;
    for &(label, s) in &found {
        match rule.metric {
            Metric::Growth => growth = Some(judge_growth(rule, s)),
            // Waiting below the floor cannot have grown by the floor: decided, whatever the
            // ratio of two specks of contention says.
            Metric::Total if immaterial_wait(rule, s, &s.total) => items.push(PendingItem {
                source: s,
                function: None,
                metric: Metric::Total,
                delta: s.total.clone(),
                question: Item::Decided {
                    threshold: theta0,
                    answer: immaterial(fdr),
                },
                answer: None,
                p_new: None,
                label: label.map(str::to_owned),
                leaf_distance: None,
            }),
            // A total from nothing (no contention at all in the baseline) has no ratio: it
            // is judged on how unlikely the baseline's silence is at the threshold.
            Metric::Total if s.total.presence == Presence::New => items.push(PendingItem {
                source: s,
                function: None,
                metric: Metric::Total,
                delta: s.total.clone(),
                question: Item::Decided {
                    threshold: theta0,
                    answer: judge_total_from_nothing(s, theta0, fdr),
                },
                answer: None,
                p_new: None,
                label: label.map(str::to_owned),
                leaf_distance: None,
            }),
            Metric::Total => items.push(PendingItem {
                source: s,
                function: None,
                metric: Metric::Total,
                delta: s.total.clone(),
                question: Item::Margin(MarginQuestion {
                    // Totals carry no share. Waiting time (mutex, block) must grow by the floor
                    // in seconds waited per second; other totals by any amount.
                    share_change: waiting_change_per_second(rule, s, &s.total).unwrap_or(1.0),
                    min_abs_change: if waiting_per_second(rule, s, &s.total).is_some() {
                        rule.settings.min_abs_change
                    } else {
                        0.0
                    },
                    ..match question(&s.total) {
                        Item::Margin(q) => q,
                        Item::Decided { .. } => unreachable!("question() builds margins"),
                    }
                }),
                answer: None,
                p_new: None,
                label: label.map(str::to_owned),
                leaf_distance: None,
            }),
            Metric::Flat | Metric::Cum => {
                let cum = rule.metric == Metric::Cum;
                for f in order.above(s, cum, min_share).map(|i| &s.functions[i]) {
                    let d = if rule.metric == Metric::Flat {
                        &f.flat
                    } else {
                        &f.cum
                    };
                    // Shares first: they are cheap, globs are not, and most functions are small.
                    if d.presence == Presence::Both && above(d) && rule.selects(&f.name) {
                        items.push(PendingItem {
                            source: s,
                            function: Some(f.name.clone()),
                            metric: rule.metric,
                            delta: d.clone(),
                            question: function_question(s, d),
                            answer: None,
                            p_new: None,
                            label: label.map(str::to_owned),
                            leaf_distance: Some(f.leaf_distance),
                        });
                    }
                }
            }
            Metric::New => {
                let max_share = rule.max_new_share.unwrap_or(0.0);
                let floor = min_share.min(max_share);
                for f in order.above(s, true, floor).map(|i| &s.functions[i]) {
                    // A function is new by its cum value: flat may be zero for a new caller.
                    let d = &f.cum;
                    // The share floor never hides a new function the rule's own limit would catch.
                    if d.presence == Presence::New
                        && d.candidate_share >= min_share.min(max_share)
                        && rule.selects(&f.name)
                    {
                        items.push(PendingItem {
                            source: s,
                            function: Some(f.name.clone()),
                            metric: Metric::New,
                            delta: d.clone(),
                            question: Item::Decided {
                                threshold: max_share,
                                answer: judge_new_share(d, s, max_share, fdr),
                            },
                            answer: None,
                            p_new: Some(p_absent_from_baseline(d, s)),
                            label: label.map(str::to_owned),
                            leaf_distance: Some(f.leaf_distance),
                        });
                    }
                }
            }
        }
    }
    PendingRule {
        fdr,
        skipped: None,
        growth,
        unit: found[0].1.sample_type.unit.clone(),
        items,
    }
}

/// A climb is a leak signal when it is this unlikely under no growth (one-sided)...
pub const LEAK_ALPHA: f64 = 0.01;
/// ...and, where no rule sets the size, adds at least this part of the starting level over
/// the capture.
pub const LEAK_MIN_RELATIVE: f64 = 0.10;

/// What a growth rule found: decided from the fitted slopes, without a margin question.
struct GrowthOutcome {
    status: RuleStatus,
    explanation: String,
    culprit: Option<String>,
}

/// Judges a leak: the candidate's level climbs across windows, clearly (p below
/// [`LEAK_ALPHA`]) and by more than `max_increase` of its first window over the capture, and
/// the baseline does not climb alike. Named at the deepest function of the service's own code
/// that climbs with it.
fn judge_growth(rule: &Rule, s: &SampleTypeComparison) -> GrowthOutcome {
    let what = crate::profile::units::kind_and_sample(rule.profile, rule.sample_type());
    let limit = rule.max_increase.unwrap_or(LEAK_MIN_RELATIVE);
    let skipped = |why: &str| GrowthOutcome {
        status: RuleStatus::Skipped,
        explanation: format!("skipped: {why}"),
        culprit: None,
    };
    let Some(g) = &s.growth else {
        return skipped(
            "a climb needs three windows from a pod of each side (--windows 3 or more)",
        );
    };
    let Some(c) = &g.candidate else {
        return skipped("a climb needs three windows from a candidate pod (--windows 3 or more)");
    };
    let per_min = |v: f64| {
        format!(
            "{} per minute",
            crate::profile::units::format_growth(v, rule.sample_type())
        )
    };
    let baseline_words = match &g.baseline {
        Some(b) => format!("the baseline {}", per_min(b.per_minute)),
        None => "the baseline not measured".to_owned(),
    };
    let head = format!(
        "{what} in the candidate {} ({:+.0}% over the capture, p = {:.1e}; {baseline_words})",
        per_min(c.per_minute),
        c.relative * 100.0,
        c.p_value
    );
    let climbs = c.is_leak_signal(LEAK_ALPHA, limit);
    // The baseline climbing alike (clearly, and at least half the candidate's slope) is the
    // service warming up or the load, not the release.
    let shared = g
        .baseline
        .as_ref()
        .is_some_and(|b| b.is_leak_signal(LEAK_ALPHA, limit) && b.per_minute >= c.per_minute / 2.0);
    if !climbs {
        return GrowthOutcome {
            status: RuleStatus::Held,
            explanation: format!(
                "{head}: no clear climb past {:.0}% (a climb must be clear at p < {LEAK_ALPHA} and larger than that)",
                limit * 100.0
            ),
            culprit: None,
        };
    }
    if shared {
        return GrowthOutcome {
            status: RuleStatus::Held,
            explanation: format!("{head}: both sides climb alike, so not this release"),
            culprit: None,
        };
    }
    // The functions that carry the climb: at least half of it, clearly, in the service's own
    // code, where the rule looks; named as [`deepest`] picks.
    let carriers: Vec<&compare::trend::FunctionGrowth> = g
        .functions
        .iter()
        .filter(|f| f.per_minute >= c.per_minute / 2.0 && f.p_value < LEAK_ALPHA)
        .filter(|f| is_own_code(&f.name) && rule.selects(&f.name))
        .collect();
    let weighed: Vec<Carrier> = carriers
        .iter()
        .enumerate()
        .map(|(i, f)| Carrier {
            index: i,
            name: &f.name,
            level: f.level,
            own: f.flat_level,
            depth: f.leaf_distance,
        })
        .collect();
    let named_at = deepest(&weighed).map(|i| carriers[i]);
    let named = match (named_at, g.functions.first()) {
        (Some(f), _) => format!(
            "; it climbs in {} {}",
            display_name(&f.name),
            per_min(f.per_minute)
        ),
        (None, Some(f)) => format!(
            "; the steepest function is {} {} (none of the service's own code carries half of the climb)",
            display_name(&f.name),
            per_min(f.per_minute)
        ),
        (None, None) => String::new(),
    };
    let culprit = named_at.map(|f| f.name.clone());
    GrowthOutcome {
        status: RuleStatus::Broken,
        explanation: format!(
            "{what} grows in the candidate: {} ({:+.0}% over the capture, more than {:.0}%; p = {:.1e}; {baseline_words}){named}",
            per_min(c.per_minute),
            c.relative * 100.0,
            limit * 100.0,
            c.p_value
        ),
        culprit,
    }
}

/// A total's change per pod in the units of its functions' values (the sum of their flat
/// changes: flat values add up to the total).
fn total_change(s: &SampleTypeComparison) -> f64 {
    s.functions.iter().map(|f| f.flat.change_per_pod()).sum()
}

/// The service's own function that explains a rise of `change` per pod: of the functions of
/// its code whose cumulative value rose by at least half of it, the one [`deepest`] picks.
fn attribute(s: &SampleTypeComparison, change: f64) -> Option<Attribution> {
    if change <= 0.0 || !change.is_finite() {
        return None;
    }
    let carriers: Vec<Carrier> = s
        .functions
        .iter()
        .enumerate()
        .filter(|(_, f)| f.cum.change_per_pod() >= change / 2.0 && is_own_code(&f.name))
        .map(|(i, f)| Carrier {
            index: i,
            name: &f.name,
            level: f.cum.candidate_per_pod,
            own: f.flat.change_per_pod(),
            depth: f.leaf_distance,
        })
        .collect();
    deepest(&carriers).map(|i| {
        let f = &s.functions[i];
        Attribution {
            function: f.name.clone(),
            cum: f.cum.clone(),
        }
    })
}

/// A function that carries part of a change, as [`deepest`] weighs it.
struct Carrier<'a> {
    index: usize,
    name: &'a str,
    /// Its cumulative level in the candidate.
    level: f64,
    /// The change of its own (flat) value.
    own: f64,
    /// Its mean distance from the leaf.
    depth: f64,
}

/// The carrier that explains a change best: the deepest in the call chain (nearest the leaf
/// on average), then the one holding the least besides, then the frame whose own value changed
/// most. Every carrier holds at least half the change, so the deepest is where it happens: its
/// callers carry it too (and whatever else changed under them), and a callee shared by several
/// callers (a lock's user) sits below each of them.
fn deepest(carriers: &[Carrier]) -> Option<usize> {
    carriers
        .iter()
        .min_by(|a, b| {
            a.depth
                .total_cmp(&b.depth)
                .then_with(|| a.level.total_cmp(&b.level))
                .then_with(|| b.own.total_cmp(&a.own))
                .then_with(|| a.name.cmp(b.name))
        })
        .map(|c| c.index)
}

/// For waiting time (mutex or block delay, compared per second): the candidate's waiting of
/// `d` (the total, or one function) in seconds per second of wall time, the scale on which
/// `min_abs_change` applies to it (0.1%: a millisecond of waiting a second). Contention is
/// heavy-tailed and rare in a quiet service: two pods a few microseconds apart are thousands of
/// times apart, and ratios alone failed A/A runs of the example service.
fn waiting_per_second(rule: &Rule, s: &SampleTypeComparison, d: &Delta) -> Option<f64> {
    let waiting = matches!(rule.profile, ProfileKind::Mutex | ProfileKind::Block)
        && s.sample_type.unit == "nanoseconds"
        && s.normalization.method == compare::Normalize::Rate;
    waiting.then(|| d.candidate_share * s.total.candidate_per_pod / 1e9)
}

/// The change of `d`'s waiting per second, candidate minus baseline (see
/// [`waiting_per_second`]).
fn waiting_change_per_second(rule: &Rule, s: &SampleTypeComparison, d: &Delta) -> Option<f64> {
    waiting_per_second(rule, s, d).map(|_| {
        (d.candidate_share * s.total.candidate_per_pod
            - d.baseline_share * s.total.baseline_per_pod)
            / 1e9
    })
}

/// Whether `d` is waiting time too small to have grown by the floor.
fn immaterial_wait(rule: &Rule, s: &SampleTypeComparison, d: &Delta) -> bool {
    waiting_per_second(rule, s, d).is_some_and(|w| w < rule.settings.min_abs_change)
}

/// A total decided within its threshold because it is too small to matter.
fn immaterial(fdr: f64) -> MarginAnswer {
    MarginAnswer {
        status: Status::Within,
        p_value: None,
        p_adjusted: None,
        lower: None,
        upper: None,
        level: 1.0 - fdr,
        minimum_detectable_ratio: None,
        pods_factor_to_decide: None,
    }
}

/// Fewest sampled events a total from nothing needs before it can break a rule.
const MIN_EVENTS_FROM_NOTHING: f64 = 20.0;

/// A total that is zero in the baseline and not in the candidate: regressed when the
/// baseline's silence would be unlikely (below `fdr`) were the candidate only `theta0` times
/// the baseline. Given n events in all, the baseline's count is binomial with probability
/// Tb / (Tb + theta0 Tc) at the threshold, so none there has probability
/// (theta0 Tc / (Tb + theta0 Tc))^n; events are counted in units of the window spread.
fn judge_total_from_nothing(s: &SampleTypeComparison, theta0: f64, fdr: f64) -> MarginAnswer {
    let c = s.noise.window_dispersion.unwrap_or(1.0).max(1.0);
    let (tb, tc) = (
        s.normalization.baseline_exposure.max(f64::MIN_POSITIVE),
        s.normalization.candidate_exposure.max(f64::MIN_POSITIVE),
    );
    let n = (s.total.candidate_events / c).floor();
    let p = (theta0 * tc / (tb + theta0 * tc)).powf(n).min(1.0);
    MarginAnswer {
        // Sparse contention comes and goes: a few events on one side and none on the other is
        // what an A/A pair of a quiet service shows, so a handful never decides.
        status: if p <= fdr && n >= MIN_EVENTS_FROM_NOTHING {
            Status::Regressed
        } else {
            Status::Inconclusive
        },
        p_value: Some(p),
        p_adjusted: Some(p),
        lower: None,
        upper: None,
        level: 1.0 - fdr,
        minimum_detectable_ratio: None,
        pods_factor_to_decide: None,
    }
}

/// A new function breaks the rule when the lower bound of its candidate share is above the
/// allowed share; sampled shares are binomial proportions of the candidate's events.
fn judge_new_share(d: &Delta, s: &SampleTypeComparison, max_share: f64, fdr: f64) -> MarginAnswer {
    let c = s.noise.window_dispersion.unwrap_or(1.0).max(1.0);
    let total_events = s.total.candidate_events.max(d.candidate_events);
    let n = (total_events / c).round() as u64;
    let k = ((d.candidate_events / c).round() as u64).min(n);
    let lower = stats::clopper_pearson_lower(k, n, fdr);
    let upper = stats::clopper_pearson_upper(k, n, fdr);
    let p = if max_share > 0.0 && max_share < 1.0 {
        Some(stats::binomial_sf(k, n, max_share))
    } else {
        None
    };
    let status = if lower > max_share {
        Status::Regressed
    } else if upper <= max_share {
        Status::Within
    } else {
        Status::Inconclusive
    };
    MarginAnswer {
        status,
        p_value: p,
        p_adjusted: p,
        lower: Some(lower),
        upper: Some(upper),
        level: 1.0 - fdr,
        minimum_detectable_ratio: None,
        pods_factor_to_decide: None,
    }
}

/// One-sided p-value that a function seen only in the candidate is absent from the baseline
/// rather than unsampled there: were it at the same rate on both sides, each of its events
/// would fall in the candidate with probability `q` (the candidate's part of all events), so
/// `k` events all in the candidate happen with probability `q^k`. Events are scaled by the
/// windows' extra spread, as in the share test.
fn p_absent_from_baseline(d: &Delta, s: &SampleTypeComparison) -> f64 {
    let c = s.noise.window_dispersion.unwrap_or(1.0).max(1.0);
    let (tb, tc) = (s.total.baseline_events, s.total.candidate_events);
    if tb <= 0.0 {
        // No baseline events at all: nothing says the function was there.
        return 0.0;
    }
    let q = tc.max(d.candidate_events) / (tb + tc.max(d.candidate_events));
    let k = (d.candidate_events / c).floor();
    q.powf(k).min(1.0)
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
    let theta0 = 1.0 + rule.max_increase.unwrap_or(0.0);
    let mut findings: Vec<Finding> = p
        .items
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
                unit: p.unit.clone(),
                delta: item.delta,
                threshold,
                answer,
                p_new: item.p_new,
                label: item.label,
                explained_by,
                leaf_distance: item.leaf_distance,
            })
        })
        .collect();
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
    // An attribution to a function this rule already names as regressed says it twice.
    let named: Vec<String> = findings
        .iter()
        .filter(|f| f.answer.status == Status::Regressed)
        .filter_map(|f| f.function.clone())
        .collect();
    for f in &mut findings {
        if f.explained_by
            .as_ref()
            .is_some_and(|a| named.contains(&a.function))
        {
            f.explained_by = None;
        }
    }
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
    let (n_undecided, decided) = (undecided.len(), tested - undecided.len());
    let (status, explanation) = if let Some(why) = p.skipped {
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
        (RuleStatus::Inconclusive, format!("{what}: {which}{settle}"))
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
        // Held, because nothing confidently moved the breaking way; but what could not be
        // seen is said, with the largest of it, so that it never reads as verified.
        let past: Vec<&&Finding> = undecided
            .iter()
            .filter(|f| points_to_breach(rule, f))
            .collect();
        let largest = past
            .iter()
            .copied()
            .max_by(|a, b| breach_size(rule, a).total_cmp(&breach_size(rule, b)))
            .or_else(|| {
                undecided
                    .iter()
                    .max_by(|a, b| breach_size(rule, a).total_cmp(&breach_size(rule, b)))
            })
            .map(|f| finding_words(f))
            .unwrap_or_default();
        let n = undecided.len();
        let which = match (n, past.len()) {
            (1, 0) => format!("1 undecided: {largest}"),
            (1, _) => format!("1 undecided, past the threshold by its estimate alone: {largest}"),
            (_, 0) => format!("{n} undecided, the largest {largest}"),
            (_, k) => format!(
                "{n} undecided, {k} of them past the threshold by the estimate alone, the largest {largest}"
            ),
        };
        (
            RuleStatus::Held,
            format!(
                "{what}: {tested} tested, {} decided within the threshold, {which}",
                tested - n
            ),
        )
    };
    RuleOutcome {
        rule: rule.name.clone(),
        profile: rule.profile,
        sample_type: rule.sample_type().to_owned(),
        metric: rule.metric,
        severity: rule.severity,
        status,
        explanation,
        tested,
        decided,
        undecided: n_undecided,
        culprit: (status == RuleStatus::Broken)
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
            .flatten(),
        findings,
    }
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

/// Whether a function is the service's own code rather than Go's standard library or runtime:
/// `main.*`, or a package path whose first element is a domain (`github.com/...`).
pub fn is_own_code(name: &str) -> bool {
    match name.split_once('/') {
        Some((first, _)) => first.contains('.'),
        None => name.starts_with("main."),
    }
}

/// Fewest sampling events (both sides together) behind a function the verdict names: a
/// function seen three times can show any ratio, and heading a report with it misleads.
const MIN_NAMED_EVENTS: f64 = 20.0;

/// Whether a finding may be named as the cause: a total, or the service's own function with
/// enough samples to judge.
fn nameable(f: &Finding) -> bool {
    match f.function.as_deref() {
        None => true,
        Some(name) => {
            is_own_code(name)
                && f.delta.baseline_events + f.delta.candidate_events >= MIN_NAMED_EVENTS
        }
    }
}

/// The rule whose explanation heads the verdict: the first (in policy order) that names a
/// regressed function of the service's own code, else the first that explains its change by
/// one, else the first.
fn headline<'a>(rules: &[&'a RuleOutcome]) -> &'a RuleOutcome {
    let direct = |r: &&&RuleOutcome| {
        r.culprit.as_ref().is_some_and(|c| {
            r.findings
                .iter()
                .any(|f| f.answer.status == Status::Regressed && f.function.as_ref() == Some(c))
        })
    };
    rules
        .iter()
        .find(direct)
        .or_else(|| rules.iter().find(|r| r.culprit.is_some()))
        .unwrap_or(&rules[0])
}

/// One-sided p-value that the finding moved at all in the direction that breaks the rule.
fn moved_p(rule: &Rule, f: &Finding) -> f64 {
    if let Some(p) = f.p_new {
        return p;
    }
    let Some(e) = f.delta.estimate else {
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

fn describe_target(rule: &Rule) -> String {
    let limit = match rule.metric {
        Metric::New => format!(
            "new functions above {:.1}% share",
            rule.max_new_share.unwrap_or(0.0) * 100.0
        ),
        _ => format!(
            "{} may change at most {:.0}%",
            rule.metric,
            rule.max_increase.unwrap_or(0.0) * 100.0
        ),
    };
    let samples = match rule.label_filter() {
        Some(filter) => format!(" {{{filter}}}"),
        None => String::new(),
    };
    if rule.sample_type() == rule.profile.name() {
        format!("{}{samples} ({limit})", rule.profile)
    } else {
        format!("{} {}{samples} ({limit})", rule.profile, rule.sample_type())
    }
}

/// A finding in a few words: `main.f +52% [+31%, +76%]`.
pub fn finding_words(f: &Finding) -> String {
    let words = change_words(f);
    match &f.explained_by {
        // Named at the service's code where the change is confident; elsewhere the
        // attribution would put a name on noise.
        Some(a) if f.answer.status == Status::Regressed => {
            let cum = match a.cum.estimate {
                Some(e) => ratio_words(e.ratio),
                None if a.cum.baseline_per_pod <= 0.0 => "new".to_owned(),
                None => ratio_words(a.cum.candidate_per_pod / a.cum.baseline_per_pod),
            };
            let name = display_name(&a.function);
            if f.function.is_some() {
                format!("{name} {cum} cum, time in {words}")
            } else {
                format!("{words}, mostly in {name} ({cum} cum)")
            }
        }
        _ => words,
    }
}

/// A ratio as a change people read: `+52%`, `-30%`; from ten times on, `12x`, which reads better
/// than `+1100%`; never `+inf%`.
pub fn ratio_words(r: f64) -> String {
    if !r.is_finite() {
        "new".to_owned()
    } else if r >= 10.0 {
        format!("{r:.0}x")
    } else {
        format!("{:+.0}%", (r - 1.0) * 100.0)
    }
}

/// A finding's own change in words, without its attribution.
fn change_words(f: &Finding) -> String {
    let function = display_name(f.function.as_deref().unwrap_or("total"));
    let name = match &f.label {
        Some(label) => format!("{function} [{label}]"),
        None => function.into_owned(),
    };
    match f.metric {
        Metric::New => format!(
            "{name} new at {:.1}% share (at least {:.1}%)",
            f.delta.candidate_share * 100.0,
            f.answer.lower.unwrap_or(0.0) * 100.0
        ),
        _ => {
            let pct = |r: f64| ratio_words(r);
            match (f.ratio(), f.answer.lower, f.answer.upper) {
                (Some(r), Some(lo), Some(hi)) if hi.is_finite() => {
                    format!("{name} {} [{}, {}]", pct(r), pct(lo), pct(hi))
                }
                (Some(r), Some(lo), Some(_)) => {
                    format!("{name} {} [{}, no upper bound]", pct(r), pct(lo))
                }
                _ => match f.delta.presence {
                    Presence::New => format!(
                        "{name} from none in the baseline to {} per pod",
                        crate::profile::units::format_value(f.delta.candidate_per_pod, &f.unit)
                    ),
                    Presence::Vanished => format!("{name} gone in the candidate"),
                    Presence::Neither => format!("{name} (none on either side)"),
                    Presence::Both => format!("{name} (too few samples for an estimate)"),
                },
            }
        }
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
        (Outcome::Pass, format!("passed: {held} rule(s) held"))
    };
    Verdict {
        outcome,
        summary,
        rules,
    }
}

#[cfg(test)]
mod tests {
    use super::{deepest, is_own_code, ratio_words, Carrier};

    fn carrier(index: usize, name: &str, level: f64, depth: f64) -> Carrier<'_> {
        Carrier {
            index,
            name,
            level,
            own: 0.0,
            depth,
        }
    }

    #[test]
    fn the_deepest_carrier_of_a_chain_is_named_and_a_shared_callee_beats_one_caller() {
        // main.main -> main.handle -> main.hashRecord; the callers carry the rise and more
        // (other work under them moved too).
        let chain = [
            carrier(0, "main.main", 100.0, 5.0),
            carrier(1, "main.handle", 40.0, 3.0),
            carrier(2, "main.hashRecord", 12.0, 1.0),
        ];
        assert_eq!(deepest(&chain), Some(2));
        // A lock's user called from two places carries more than either caller.
        let diamond = [
            carrier(0, "main.counterFlusher", 7.0, 2.0),
            carrier(1, "main.cycle", 3.0, 2.0),
            carrier(2, "main.updateCounters", 10.0, 1.0),
        ];
        assert_eq!(deepest(&diamond), Some(2));
        assert_eq!(deepest(&[]), None);
    }

    #[test]
    fn own_code_and_ratio_words() {
        assert!(is_own_code("main.f"));
        assert!(is_own_code("github.com/acme/shop.(*Cart).Total"));
        assert!(!is_own_code("crypto/sha256.block"));
        assert!(!is_own_code("runtime.mallocgc"));
        assert_eq!(ratio_words(1.52), "+52%");
        assert_eq!(ratio_words(0.7), "-30%");
        assert_eq!(ratio_words(12.4), "12x");
        assert_eq!(ratio_words(f64::INFINITY), "new");
    }
}

//! The questions each rule asks: the comparisons it reads, and one margin question (or a
//! decided answer) per function or total it covers.

use super::*;

/// The comparisons a rule judges: its profile's chosen sample type, once per label value when
/// the comparison is split by a label (one family spans them all).
pub(super) fn find<'a>(
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
            rule.profile
                .find_sample_type(
                    rule.sample_type(),
                    kind.sample_types
                        .iter()
                        .map(|s| s.sample_type.name.as_str()),
                )
                .map(|(i, _)| (kind.label.as_deref(), &kind.sample_types[i]))
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
pub(super) struct ShareOrder {
    /// Keyed by the comparison's address (they all outlive the evaluation) and flat/cum:
    /// (larger share of the two sides, function index), by descending share.
    pub(super) orders: HashMap<(usize, bool), Vec<(f64, usize)>>,
}

impl ShareOrder {
    /// Indices of the functions of `s` whose flat (or cum) share reaches `min_share` on
    /// either side, in their order in `s`.
    pub(super) fn above(
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
                // Ties go by index, so the unstable sort (no scratch buffer) orders as a stable one.
                v.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                v
            });
        let end = order.partition_point(|&(share, _)| share >= min_share);
        let mut picked: Vec<usize> = order[..end].iter().map(|&(_, i)| i).collect();
        picked.sort_unstable();
        picked.into_iter()
    }
}

pub(super) fn collect<'a>(
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
            estimate: d.estimate.as_deref().copied(),
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
                            function: Some(f.name.to_string()),
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
                            function: Some(f.name.to_string()),
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

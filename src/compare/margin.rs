//! The margin test: is a ratio confidently beyond a threshold, confidently within it, or neither?
//!
//! A function fails only when the lower confidence bound of its ratio, adjusted for the number
//! of functions tested (Benjamini-Hochberg), is above the threshold theta0. It passes when the
//! upper bound is below theta0, and is inconclusive otherwise. "Significant and point estimate
//! above the threshold" is deliberately not the rule: it fails about half the time on a true
//! change sitting just under the threshold.

use serde::{Deserialize, Serialize};

use super::{stats, Estimate, Noise};

/// Which way a change must go to break a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Growth beyond theta0 breaks the rule (CPU, memory, goroutines).
    Increase,
    /// Shrinking below 1/theta0 breaks the rule.
    Decrease,
    /// Either.
    Either,
}

/// One ratio to judge against a margin.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MarginQuestion {
    /// The ratio and its noise; `None` when it cannot be estimated (absent on a side).
    pub estimate: Option<Estimate>,
    /// The threshold ratio for increases, e.g. 1.20 for "+20%" (decreases use 1/theta0).
    pub theta0: f64,
    /// Which way breaks the rule.
    pub direction: Direction,
    /// Candidate share minus baseline share: a regression must also move this much.
    pub share_change: f64,
    /// The absolute floor on the share change (e.g. 0.001 for 0.1 percentage points).
    pub min_abs_change: f64,
    /// The mean of the two sides' shares (1 for a total): what the question weighs in its
    /// family, since regressions of big functions are the ones that matter. The mean, like
    /// the events of both sides that the exact conditional test conditions on, says how big a
    /// function is and next to nothing about which way it moved.
    pub share: f64,
}

/// The outcome of a margin test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Confidently beyond the margin in the direction that breaks the rule.
    Regressed,
    /// Confidently beyond the mirrored margin in the other direction.
    Improved,
    /// Confidently inside the margin.
    Within,
    /// The data cannot tell: see the minimum detectable ratio.
    Inconclusive,
}

/// A margin test's answer, with every number behind it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MarginAnswer {
    /// The outcome.
    pub status: Status,
    /// One-sided p-value against the breaking margin.
    pub p_value: Option<f64>,
    /// The same after Benjamini-Hochberg over the family.
    pub p_adjusted: Option<f64>,
    /// Lower bound of theta at the family-adjusted level.
    pub lower: Option<f64>,
    /// Upper bound of theta at the family-adjusted level.
    pub upper: Option<f64>,
    /// Confidence level of the bounds (one-sided), adjusted for the selection (FCR).
    pub level: f64,
    /// The smallest ratio these data would flag four times out of five.
    pub minimum_detectable_ratio: Option<f64>,
    /// For an inconclusive answer: how many times the pods a side it would take to settle
    /// it four times out of five (regressed when the estimate is past the margin, within
    /// when it is inside), were the true ratio the estimate. What "more pods" means in numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods_factor_to_decide: Option<f64>,
}

/// Judges a family of questions together, controlling the false discovery rate at `fdr`.
///
/// Regressions are one family, improvements another: improvements never fail a build, so they
/// do not spend the regressions' error budget.
///
/// The family follows the structure of a profile rather than counting every row:
/// - one question asked twice is one hypothesis: a leaf's cum is its flat, and a chain of
///   callers whose cum is all the same callee's time carries the same numbers at every frame;
///   counted once each, a big function's regression no longer pays for a hundred copies;
/// - the hypotheses are weighted by share (weighted Benjamini-Hochberg, Genovese, Roeder and
///   Wasserman 2006: p / w with weights averaging 1 keeps the false discovery rate): a
///   function holding a quarter of the CPU is asked at a less severe level than one at 0.5%,
///   which is where regressions that matter are, and where the data to see them is. The
///   weights come from shares, not from the changes, so they favour no outcome.
///
/// Intervals are reported at the selection-adjusted level of Benjamini and Yekutieli
/// (1 - fdr R w / m, R rejections among m hypotheses), so a regressed question's lower bound
/// clears its threshold.
pub fn judge(questions: &[MarginQuestion], fdr: f64) -> Vec<MarginAnswer> {
    let family = Family::of(questions);
    let m = family.members.len().max(1) as f64;
    let p_over_weight = |p: fn(&MarginQuestion) -> Option<f64>| -> Vec<f64> {
        family
            .members
            .iter()
            .zip(&family.weights)
            .map(|(&i, w)| p(&questions[i]).unwrap_or(1.0) / w)
            .collect()
    };
    let adj_break = stats::benjamini_hochberg(&p_over_weight(breaking_p));
    let adj_improve = stats::benjamini_hochberg(&p_over_weight(improving_p));
    let rejected = adj_break.iter().filter(|&&p| p <= fdr).count().max(1) as f64;

    questions
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let (Some(e), Some(h)) = (q.estimate, family.hypothesis[i]) else {
                return MarginAnswer {
                    status: Status::Inconclusive,
                    p_value: None,
                    p_adjusted: None,
                    lower: None,
                    upper: None,
                    level: 1.0 - (fdr / m).clamp(1e-12, 0.5),
                    minimum_detectable_ratio: None,
                    pods_factor_to_decide: None,
                };
            };
            let weight = family.weights[h];
            // Benjamini-Yekutieli, weighted: intervals for selected effects at level
            // 1 - q R w / m keep the false coverage rate at q.
            let alpha = (fdr * rejected * weight / m).clamp(1e-12, 0.5);
            let grew = q.share_change > q.min_abs_change;
            let shrank = q.share_change < -q.min_abs_change;
            let moved_breaking = match q.direction {
                Direction::Increase => grew,
                Direction::Decrease => shrank,
                Direction::Either => grew || shrank,
            };
            let moved_improving = match q.direction {
                Direction::Increase => shrank,
                Direction::Decrease => grew,
                Direction::Either => false,
            };
            let status = if adj_break[h] <= fdr && moved_breaking {
                Status::Regressed
            } else if adj_improve[h] <= fdr && moved_improving {
                Status::Improved
            } else if within(q, &e, fdr) {
                Status::Within
            } else {
                Status::Inconclusive
            };
            // The level a lone regression of this weight is held to.
            let strict = (fdr * weight / m).clamp(1e-12, 0.5);
            // How far beyond a threshold the truth must sit to be caught: exp(z * se).
            let reach = e.minimum_detectable_ratio(1.0, strict);
            let mdr = match q.direction {
                Direction::Decrease => 1.0 / q.theta0 / reach,
                _ => q.theta0 * reach,
            };
            MarginAnswer {
                status,
                p_value: breaking_p(q),
                p_adjusted: Some(adj_break[h].min(1.0)),
                lower: Some(e.lower(alpha)),
                upper: Some(e.upper(alpha)),
                level: 1.0 - alpha,
                minimum_detectable_ratio: Some(mdr),
                pods_factor_to_decide: (status == Status::Inconclusive)
                    .then(|| to_decide(q, &e, moved_breaking, fdr, strict))
                    .flatten(),
            }
        })
        .collect()
}

/// The distinct hypotheses of a family and their weights.
struct Family {
    /// For each question, its hypothesis; `None` for a question without an estimate, which
    /// tests nothing and so is not counted.
    hypothesis: Vec<Option<usize>>,
    /// For each hypothesis, the first question asking it.
    members: Vec<usize>,
    /// For each hypothesis, its weight (they average 1).
    weights: Vec<f64>,
}

/// The smallest share a weight is computed from: below the usual minimum share nothing is
/// tested, and a floor keeps a tiny function's weight from vanishing altogether.
const WEIGHT_SHARE_FLOOR: f64 = 0.005;

impl Family {
    fn of(questions: &[MarginQuestion]) -> Family {
        let mut seen: std::collections::HashMap<[u64; 8], usize> = Default::default();
        let mut hypothesis = Vec::with_capacity(questions.len());
        let mut members = Vec::new();
        let mut raw = Vec::new();
        for (i, q) in questions.iter().enumerate() {
            let Some(key) = question_key(q) else {
                hypothesis.push(None);
                continue;
            };
            let h = *seen.entry(key).or_insert_with(|| {
                members.push(i);
                raw.push(0.0_f64);
                members.len() - 1
            });
            // The square root of the share: a function at 25% weighs seven times one at 0.5%,
            // enough to see it sooner, not so much that small functions go untested.
            let share = if q.share.is_finite() { q.share } else { 0.0 };
            raw[h] = f64::max(raw[h], share.clamp(WEIGHT_SHARE_FLOOR, 1.0).sqrt());
            hypothesis.push(Some(h));
        }
        let mean = raw.iter().sum::<f64>() / raw.len().max(1) as f64;
        let weights = raw.iter().map(|w| w / mean).collect();
        Family {
            hypothesis,
            members,
            weights,
        }
    }
}

/// What makes two questions the same: the same estimate judged against the same margin, with
/// the same share movement. `None` without an estimate.
fn question_key(q: &MarginQuestion) -> Option<[u64; 8]> {
    let e = q.estimate?;
    let (tag, a, b, c) = match e.noise {
        Noise::LogT { se, df } => (0, se.to_bits(), df.to_bits(), 0),
        Noise::Binomial {
            k,
            n,
            exposure_ratio,
        } => (1, k, n, exposure_ratio.to_bits()),
    };
    let direction = match q.direction {
        Direction::Increase => 0,
        Direction::Decrease => 1,
        Direction::Either => 2,
    };
    Some([
        e.ratio.to_bits(),
        tag | direction << 2,
        a,
        b,
        c,
        q.theta0.to_bits(),
        q.share_change.to_bits(),
        q.min_abs_change.to_bits(),
    ])
}

/// How many times the data would settle an inconclusive question, if the estimate held: past
/// a margin it must clear that margin at the level a lone regression is held to (`strict`);
/// inside, its bounds must clear the margins at the marginal level `within` uses. `None` past
/// the margin when the share did not move (`moved` false): the share floor holds it back, and
/// more pods would not change that (a root's cum when every function slowed alike).
fn to_decide(q: &MarginQuestion, e: &Estimate, moved: bool, fdr: f64, strict: f64) -> Option<f64> {
    let (up, down) = (q.theta0, 1.0 / q.theta0);
    let past = match q.direction {
        Direction::Increase => (e.ratio > up).then_some((up, strict)),
        Direction::Decrease => (e.ratio < down).then_some((down, strict)),
        Direction::Either if e.ratio > up => Some((up, strict / 2.0)),
        Direction::Either => (e.ratio < down).then_some((down, strict / 2.0)),
    };
    match (past, q.direction) {
        (Some(_), _) if !moved => None,
        (Some((margin, level)), _) => e.data_to_settle(&[margin], level),
        (None, Direction::Increase) => e.data_to_settle(&[up], fdr),
        (None, Direction::Decrease) => e.data_to_settle(&[down], fdr),
        (None, Direction::Either) => e.data_to_settle(&[up, down], fdr),
    }
}

/// Within: the bound on the breaking side is confidently inside the margin (marginal level:
/// a wrong "within" can cost a missed regression, never a false failure).
fn within(q: &MarginQuestion, e: &Estimate, fdr: f64) -> bool {
    let up_ok = e.upper(fdr) < q.theta0;
    let down_ok = e.lower(fdr) > 1.0 / q.theta0;
    match q.direction {
        Direction::Increase => up_ok,
        Direction::Decrease => down_ok,
        Direction::Either => up_ok && down_ok,
    }
}

fn breaking_p(q: &MarginQuestion) -> Option<f64> {
    let e = q.estimate?;
    let up = || e.p_above(q.theta0);
    let down = || e.p_below(1.0 / q.theta0);
    Some(match q.direction {
        Direction::Increase => up(),
        Direction::Decrease => down(),
        Direction::Either => (2.0 * up().min(down())).min(1.0),
    })
}

fn improving_p(q: &MarginQuestion) -> Option<f64> {
    let e = q.estimate?;
    match q.direction {
        Direction::Increase => Some(e.p_below(1.0 / q.theta0)),
        Direction::Decrease => Some(e.p_above(q.theta0)),
        Direction::Either => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(ratio: f64, se: f64, share_change: f64) -> MarginQuestion {
        MarginQuestion {
            estimate: Some(Estimate {
                ratio,
                noise: Noise::LogT {
                    se,
                    df: f64::INFINITY,
                },
            }),
            theta0: 1.2,
            direction: Direction::Increase,
            share_change,
            min_abs_change: 0.001,
            share: 0.01,
        }
    }

    #[test]
    fn clear_regression_within_and_inconclusive_are_told_apart() {
        let answers = judge(
            &[q(2.0, 0.05, 0.05), q(1.0, 0.02, 0.0), q(1.25, 0.2, 0.01)],
            0.05,
        );
        assert_eq!(answers[0].status, Status::Regressed);
        assert!(answers[0].lower.unwrap() > 1.2);
        assert_eq!(answers[1].status, Status::Within);
        assert_eq!(answers[2].status, Status::Inconclusive);
        assert!(answers[2].minimum_detectable_ratio.unwrap() > 1.25);
    }

    #[test]
    fn a_point_estimate_above_the_threshold_is_not_enough() {
        // theta_hat = 1.3 > 1.2 but the lower bound is well below 1.2.
        let answers = judge(&[q(1.3, 0.1, 0.02)], 0.05);
        assert_eq!(answers[0].status, Status::Inconclusive);
    }

    #[test]
    fn share_floor_blocks_tiny_absolute_changes() {
        let answers = judge(&[q(3.0, 0.01, 0.0005)], 0.05);
        assert_ne!(answers[0].status, Status::Regressed);
    }

    #[test]
    fn improvements_are_mirrored() {
        let answers = judge(&[q(0.5, 0.05, -0.05)], 0.05);
        assert_eq!(answers[0].status, Status::Improved);
    }

    #[test]
    fn pods_to_decide_is_the_data_that_would_settle_the_estimate() {
        // theta_hat 1.3, se 0.1, alone: lower bound exp(ln 1.3 - 1.6449 * 0.1) = 1.102 < 1.2.
        // Settling four times out of five at 5% needs se = ln(1.3 / 1.2) / (1.6449 + 0.8416)
        // = 0.03219: (0.1 / 0.03219)^2 = 9.650 times the pods; inside the margin, at 1.1,
        // (0.1 * 2.4865 / ln(1.2 / 1.1))^2 = 8.175.
        for (ratio, settles_as, by_hand) in [
            (1.3, Status::Regressed, 9.650),
            (1.1, Status::Within, 8.175),
        ] {
            let [a] = judge(&[q(ratio, 0.1, 0.02)], 0.05)[..] else {
                panic!("one answer")
            };
            assert_eq!(a.status, Status::Inconclusive);
            let k = a
                .pods_factor_to_decide
                .expect("inconclusive answers say what they need");
            assert!((k - by_hand).abs() < 0.01, "{ratio}: {k}");
            // With k times the pods, the estimate as measured settles, and sits where the
            // test has its 80% power: at the minimum detectable ratio (past the margin).
            let settled = judge(&[q(ratio, 0.1 / k.sqrt(), 0.02)], 0.05)[0];
            assert_eq!(settled.status, settles_as, "{ratio}");
            assert_eq!(settled.pods_factor_to_decide, None);
            if settles_as == Status::Regressed {
                let mdr = settled.minimum_detectable_ratio.unwrap();
                assert!((mdr - ratio).abs() < 1e-3, "{mdr}");
            }
            // With a third of that, the same estimate stays undecided.
            let short = judge(&[q(ratio, 0.1 / (k / 3.0).sqrt(), 0.02)], 0.05)[0];
            assert_eq!(short.status, Status::Inconclusive, "{ratio}");
        }
        // An estimate sitting on the threshold cannot be settled by more of the same data,
        // nor can one held back only by the share floor (the share did not move), whether
        // certain already (d/se = 22) or not yet (d/se = 2.0, between 1.64 and 1.64 + 0.84).
        for (ratio, se, share_change) in [(1.2, 0.1, 0.02), (1.5, 0.01, 0.0), (1.5, 0.1116, 0.0)] {
            let a = judge(&[q(ratio, se, share_change)], 0.05)[0];
            assert_eq!(a.status, Status::Inconclusive, "{ratio}");
            assert_eq!(a.pods_factor_to_decide, None, "{ratio}");
        }
    }

    #[test]
    fn pods_to_decide_counts_both_margins_and_the_degrees_of_freedom_pods_bring() {
        // Either way breaks, estimate 1.0, se 0.12 (upper bound 1.218), margins 1.2 and 1/1.2:
        // both bounds must clear at once, 2 Phi(a sqrt(k) - 1.6449) - 1 = 0.8 with
        // a = ln 1.2 / 0.12 = 1.5193, so sqrt(k) = (1.6449 + 1.2816) / 1.5193 and k = 3.7098
        // (each margin alone would say 2.68).
        let either = MarginQuestion {
            direction: Direction::Either,
            ..q(1.0, 0.12, 0.0)
        };
        let a = judge(&[either], 0.05)[0];
        assert_eq!(a.status, Status::Inconclusive);
        let k = a.pods_factor_to_decide.unwrap();
        assert!((k - 3.7098).abs() < 1e-3, "{k}");

        // Welch's test on 3 + 3 pods (df 4): t quantiles, and df growing with the pods. The
        // answer must settle at k times the pods (df 4k) and not at a third of that.
        let welch = |ratio: f64, se: f64, df: f64| MarginQuestion {
            estimate: Some(Estimate {
                ratio,
                noise: Noise::LogT { se, df },
            }),
            ..q(ratio, se, 0.02)
        };
        let a = judge(&[welch(1.5, 0.14, 4.0)], 0.05)[0];
        assert_eq!(a.status, Status::Inconclusive);
        let k = a.pods_factor_to_decide.unwrap();
        let normal = judge(&[q(1.5, 0.14, 0.02)], 0.05)[0];
        assert!(k > normal.pods_factor_to_decide.unwrap(), "{k}");
        let at = |k: f64| judge(&[welch(1.5, 0.14 / k.sqrt(), 4.0 * k)], 0.05)[0].status;
        assert_eq!(at(k), Status::Regressed, "{k}");
        assert_eq!(at(k / 3.0), Status::Inconclusive, "{k}");
    }

    #[test]
    fn multiplicity_raises_the_bar() {
        // p = P(Z > (ln 1.5 - ln 1.2)/0.1 = 2.23) = 0.0129: alone it is rejected at 5%,
        // among 99 other null functions (p about 0.5) it is not (BH: 0.0129 * 100 > 0.05).
        let alone = judge(&[q(1.5, 0.1, 0.02)], 0.05);
        assert_eq!(alone[0].status, Status::Regressed);
        let crowd = judge(&with_nulls(q(1.5, 0.1, 0.02), 99, 0.01), 0.05);
        assert_ne!(crowd[0].status, Status::Regressed);
        assert!(crowd[0].p_adjusted.unwrap() > 0.05);
    }

    /// `first`, then `n` different null questions (ratios just around 1.2) at `share`.
    fn with_nulls(first: MarginQuestion, n: usize, share: f64) -> Vec<MarginQuestion> {
        let mut v = vec![first];
        v.extend((0..n).map(|i| MarginQuestion {
            share,
            ..q(1.2 + i as f64 * 1e-4, 0.1, 0.0)
        }));
        v
    }

    #[test]
    fn a_question_asked_many_times_is_one_hypothesis() {
        // The same numbers at 99 frames of a call chain (and a leaf's cum beside its flat)
        // count once: the family is that question and one other, so BH multiplies by 2.
        let mut chain = vec![q(1.5, 0.1, 0.02); 99];
        chain.push(q(1.0, 0.1, 0.0));
        let answers = judge(&chain, 0.05);
        // p = 0.0129 (see above); two hypotheses of equal weight: adjusted 0.0258.
        for a in &answers[..99] {
            assert_eq!(a.status, Status::Regressed);
            assert!((a.p_adjusted.unwrap() - 2.0 * 0.012_874).abs() < 1e-4);
        }
        // Questions without an estimate test nothing and are not counted.
        let mut with_unknown = vec![q(1.5, 0.1, 0.02)];
        with_unknown.extend((0..50).map(|_| MarginQuestion {
            estimate: None,
            ..q(1.0, 0.1, 0.0)
        }));
        assert_eq!(judge(&with_unknown, 0.05)[0].status, Status::Regressed);
    }

    #[test]
    fn big_functions_weigh_more_and_the_weights_average_one() {
        // One function at 25% among 99 at 1%: raw weights sqrt(0.25) = 0.5 and 0.1, mean
        // (0.5 + 9.9) / 100 = 0.104, so w = 4.808 for the big one and 0.9615 for the rest.
        // Its p = 0.0129 becomes 0.0129 / 4.808 = 0.002678; at rank one BH multiplies by 100:
        // 0.2678, still above 5%; with p = 1e-4 (z 3.72): 1e-4 / 4.808 * 100 = 0.00208.
        let big = |ratio: f64| MarginQuestion {
            share: 0.25,
            ..q(ratio, 0.1, 0.02)
        };
        let answers = judge(&with_nulls(big(1.5), 99, 0.01), 0.05);
        let adjusted = answers[0].p_adjusted.unwrap();
        assert!(
            (adjusted - 0.012_874 / 4.8077 * 100.0).abs() < 1e-3,
            "{adjusted}"
        );
        // ln(1.2) + 3.719 * 0.1 = 0.5542: ratio 1.7407 has p = 1e-4.
        let answers = judge(&with_nulls(big(1.7407), 99, 0.01), 0.05);
        let adjusted = answers[0].p_adjusted.unwrap();
        assert!(
            (adjusted - 1e-4 / 4.8077 * 100.0).abs() < 2e-5,
            "{adjusted}"
        );
        assert_eq!(answers[0].status, Status::Regressed);
        // The same p at 1% share, among the same crowd: 1e-4 * 100 = 0.01 (weight 1), also
        // rejected, but five times closer to the bar.
        let small = judge(&with_nulls(q(1.7407, 0.1, 0.02), 99, 0.01), 0.05);
        assert!((small[0].p_adjusted.unwrap() - 0.01).abs() < 2e-4);
        // Its interval is at the weighted level: 1 - 0.05 * 1 * 4.808 / 100.
        assert!((answers[0].level - (1.0 - 0.05 * 4.8077 / 100.0)).abs() < 1e-6);
        assert!(answers[0].lower.unwrap() > 1.2);
    }
}

//! Answers decided without a margin question: waiting time too small to matter, a total from
//! nothing, a new function's share.

use super::*;

/// For waiting time (mutex or block delay, compared per second): the candidate's waiting of
/// `d` (the total, or one function) in seconds per second of wall time, the scale on which
/// `min_abs_change` applies to it (0.1%: a millisecond of waiting a second). Contention is
/// heavy-tailed and rare in a quiet service: two pods a few microseconds apart are thousands of
/// times apart, and ratios alone failed A/A runs of the example service.
pub(super) fn waiting_per_second(rule: &Rule, s: &SampleTypeComparison, d: &Delta) -> Option<f64> {
    let waiting = matches!(rule.profile, ProfileKind::Mutex | ProfileKind::Block)
        && s.sample_type.unit == "nanoseconds"
        && s.normalization.method == compare::Normalize::Rate;
    waiting.then(|| d.candidate_share * s.total.candidate_per_pod / 1e9)
}

/// The change of `d`'s waiting per second, candidate minus baseline (see
/// [`waiting_per_second`]).
pub(super) fn waiting_change_per_second(
    rule: &Rule,
    s: &SampleTypeComparison,
    d: &Delta,
) -> Option<f64> {
    waiting_per_second(rule, s, d).map(|_| {
        (d.candidate_share * s.total.candidate_per_pod
            - d.baseline_share * s.total.baseline_per_pod)
            / 1e9
    })
}

/// Whether `d` is waiting time too small to have grown by the floor.
pub(super) fn immaterial_wait(rule: &Rule, s: &SampleTypeComparison, d: &Delta) -> bool {
    waiting_per_second(rule, s, d).is_some_and(|w| w < rule.settings.min_abs_change)
}

/// A total decided within its threshold because it is too small to matter.
pub(super) fn immaterial(fdr: f64) -> MarginAnswer {
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
pub(super) const MIN_EVENTS_FROM_NOTHING: f64 = 20.0;

/// A total that is zero in the baseline and not in the candidate: regressed when the
/// baseline's silence would be unlikely (below `fdr`) were the candidate only `theta0` times
/// the baseline. Given n events in all, the baseline's count is binomial with probability
/// Tb / (Tb + theta0 Tc) at the threshold, so none there has probability
/// (theta0 Tc / (Tb + theta0 Tc))^n; events are counted in units of the window spread.
pub(super) fn judge_total_from_nothing(
    s: &SampleTypeComparison,
    theta0: f64,
    fdr: f64,
) -> MarginAnswer {
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

/// A new function's spread across windows from which it is a burst, judged on its units, and
/// worded uneven: far beyond what windows of a steady service show (the example service's
/// are within 1.5x).
pub(super) const UNEVEN_SPREAD: f64 = 10.0;

/// How many sampled events a new function's one event is worth less than one: the windows'
/// usual spread, or the function's own when it came unevenly (a burst in one window).
fn new_function_spread(d: &Delta, s: &SampleTypeComparison) -> f64 {
    let windows = s.noise.window_dispersion.unwrap_or(1.0);
    windows
        .max(d.candidate_spread.as_deref().map_or(1.0, |u| u.factor))
        .max(1.0)
}

/// A new function breaks the rule when the lower bound of its candidate share is above the
/// allowed share. Sampled shares are binomial proportions of the candidate's events, counted
/// at the windows' spread or the function's own, whichever is larger; a burst (its own spread
/// [`UNEVEN_SPREAD`] or more) is judged on its units, with the few degrees of freedom they
/// give.
pub(super) fn judge_new_share(
    d: &Delta,
    s: &SampleTypeComparison,
    max_share: f64,
    fdr: f64,
) -> MarginAnswer {
    let windows = s.noise.window_dispersion.unwrap_or(1.0);
    let total_events = s.total.candidate_events.max(d.candidate_events);
    let testable = max_share > 0.0 && max_share < 1.0;
    // A burst (spread of UNEVEN_SPREAD or more): quasi-binomial with an estimated dispersion,
    // the share's spread measured on the units, so its interval has their degrees of freedom;
    // a binomial on events shrunk by the spread rounded one burst to "two events" and called
    // it decided. Below that, the events shrunk by the larger spread, as for any function: a
    // steady new function whose pods differ a little (main.auditTrail, spread under 10) was
    // left undecided by the units' few degrees of freedom.
    let burst = d
        .candidate_spread
        .as_deref()
        .filter(|u| u.factor >= UNEVEN_SPREAD.max(windows));
    let c = new_function_spread(d, s);
    let (lower, upper, p) = match burst {
        Some(own) if total_events > 0.0 => {
            let share = d.candidate_events / total_events;
            let se = (own.factor * share * (1.0 - share) / total_events).sqrt();
            let t = stats::t_quantile(1.0 - fdr, own.df);
            let p = testable.then(|| stats::t_sf((share - max_share) / se, own.df));
            ((share - t * se).max(0.0), (share + t * se).min(1.0), p)
        }
        _ => {
            let n = (total_events / c).round() as u64;
            let k = ((d.candidate_events / c).round() as u64).min(n);
            (
                stats::clopper_pearson_lower(k, n, fdr),
                stats::clopper_pearson_upper(k, n, fdr),
                testable.then(|| stats::binomial_sf(k, n, max_share)),
            )
        }
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
/// windows' extra spread or the function's own, as in the share test.
pub(super) fn p_absent_from_baseline(d: &Delta, s: &SampleTypeComparison) -> f64 {
    let c = new_function_spread(d, s);
    let (tb, tc) = (s.total.baseline_events, s.total.candidate_events);
    if tb <= 0.0 {
        // No baseline events at all: nothing says the function was there.
        return 0.0;
    }
    let q = tc.max(d.candidate_events) / (tb + tc.max(d.candidate_events));
    let k = (d.candidate_events / c).floor();
    q.powf(k).min(1.0)
}

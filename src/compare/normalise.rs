//! Size factors that make the pods of both sides comparable: by totals, by profiled time, or
//! by the median of per-function ratios.

use super::pods::PodData;
use super::{stats, Normalization, Normalize};
use crate::profile::ProfileKind;

/// Functions whose every pod has this many events anchor the median-ratio normalisation.
pub(super) const NORMALIZE_MIN_EVENTS: f64 = 5.0;
/// Fewer anchoring functions than this and median-ratio falls back to totals.
pub(super) const NORMALIZE_MIN_FUNCTIONS: usize = 5;
/// Whether a pod's profiles say how long they cover (every window a positive duration).
pub(super) fn timed(p: &PodData) -> bool {
    !p.window_seconds.is_empty() && p.window_seconds.iter().all(|&s| s > 0.0)
}

/// Size factors per pod (baseline pods first) for the asked method.
pub(super) fn normalize(
    method: Normalize,
    kind: ProfileKind,
    pods: &[&PodData],
    n_baseline: usize,
    st: usize,
    flat_events: &[Vec<f64>],
) -> Normalization {
    let totals: Vec<f64> = pods.iter().map(|p| p.totals[st]).collect();
    let by_total = || geometric_normalised(&totals);
    let (used, factors, note) = match method {
        Normalize::Total => (Normalize::Total, by_total(), None),
        Normalize::Rate if kind.is_snapshot() => {
            (Normalize::Rate, vec![1.0; pods.len()], None)
        }
        Normalize::Rate => match pods.iter().find(|p| !timed(p)) {
            // A profile without a duration has no rate; dividing by zero (or by a stand-in
            // of one second) would make up a ratio.
            Some(untimed) => (
                Normalize::Total,
                by_total(),
                Some(format!(
                    "rate needs every profile's duration, but pod {} has none (duration_nanos 0); normalised by totals instead",
                    untimed.name
                )),
            ),
            None => {
                let f: Vec<f64> = pods.iter().map(|p| p.duration_seconds).collect();
                (Normalize::Rate, geometric_normalised(&f), None)
            }
        },
        Normalize::MedianRatio => match median_ratio(pods, st, flat_events) {
            Some(f) => (Normalize::MedianRatio, f, None),
            None => (
                Normalize::Total,
                by_total(),
                Some(format!(
                    "median-ratio needs at least {NORMALIZE_MIN_FUNCTIONS} functions sampled in every pod; normalised by totals instead"
                )),
            ),
        },
    };
    let level_variance = (used == Normalize::MedianRatio && pods.len() == 2)
        .then(|| median_ratio_level_variance(pods, st, flat_events))
        .flatten();
    let size_factors: Vec<(String, f64)> = pods
        .iter()
        .zip(&factors)
        .map(|(p, f)| (p.name.clone(), *f))
        .collect();
    Normalization {
        method: used,
        baseline_exposure: factors[..n_baseline].iter().sum(),
        candidate_exposure: factors[n_baseline..].iter().sum(),
        size_factors,
        note,
        level_variance,
    }
}

/// With two pods (one a side), the variance of the log of their size-factor ratio under
/// median-ratio: that ratio is the median of the anchoring functions' log ratios, whose
/// standard error is about 1.2533 sigma / sqrt(n), sigma taken robustly as 1.4826 MAD.
///
/// A service with a few well-sampled functions gets its level from a handful of noisy ratios:
/// in a real A/A run of the example service (15 anchors, 30 s, one pod a side) the median put
/// the candidate's level 21% below the baseline's where the totals said 1%, and
/// `crypto/sha256.block`, 186 against 246 samples (+32%), came out +67% [+25%, +122%] and failed
/// the build. With thousands of anchors this is negligible.
pub(super) fn median_ratio_level_variance(
    pods: &[&PodData],
    st: usize,
    flat_events: &[Vec<f64>],
) -> Option<f64> {
    let [b, c] = pods else { return None };
    let logs: Vec<f64> = anchors(pods, st, flat_events)?
        .into_iter()
        .map(|f| c.flat[st][f].ln() - b.flat[st][f].ln())
        .collect();
    let median = stats::median(&logs)?;
    let deviations: Vec<f64> = logs.iter().map(|l| (l - median).abs()).collect();
    let sigma = 1.4826 * stats::median(&deviations)?;
    let se = 1.2533 * sigma / (logs.len() as f64).sqrt();
    Some(se * se)
}

/// Scales positive values so that their geometric mean is 1 (zeros become tiny, not zero).
pub(super) fn geometric_normalised(v: &[f64]) -> Vec<f64> {
    let logs: Vec<f64> = v.iter().map(|x| x.max(1e-12).ln()).collect();
    let mean = logs.iter().sum::<f64>() / logs.len().max(1) as f64;
    logs.iter().map(|l| (l - mean).exp()).collect()
}

/// DESeq2's median-of-ratios size factors over functions well sampled in every pod.
pub(super) fn median_ratio(
    pods: &[&PodData],
    st: usize,
    flat_events: &[Vec<f64>],
) -> Option<Vec<f64>> {
    let anchors = anchors(pods, st, flat_events)?;
    let log_geo: Vec<f64> = anchors
        .iter()
        .map(|&f| pods.iter().map(|p| p.flat[st][f].ln()).sum::<f64>() / pods.len() as f64)
        .collect();
    pods.iter()
        .map(|p| {
            let ratios: Vec<f64> = anchors
                .iter()
                .zip(&log_geo)
                .map(|(&f, g)| p.flat[st][f].ln() - g)
                .collect();
            stats::median(&ratios).map(f64::exp)
        })
        .collect()
}

/// The functions that anchor median-ratio: sampled well enough in every pod; `None` when fewer
/// than [`NORMALIZE_MIN_FUNCTIONS`].
fn anchors(pods: &[&PodData], st: usize, flat_events: &[Vec<f64>]) -> Option<Vec<usize>> {
    let n = pods.first()?.flat[st].len();
    let anchors: Vec<usize> = (0..n)
        .filter(|&f| {
            flat_events.iter().all(|e| e[f] >= NORMALIZE_MIN_EVENTS)
                && pods.iter().all(|p| p.flat[st][f] > 0.0)
        })
        .collect();
    (anchors.len() >= NORMALIZE_MIN_FUNCTIONS).then_some(anchors)
}

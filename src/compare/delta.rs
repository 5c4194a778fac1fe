//! Per-function and total deltas: per-pod values in, a [`Delta`] with its estimate and noise
//! out.

use super::dispersion::{WaitSpread, DISPERSION_MIN_EVENTS, DISPERSION_PRIOR_DF};
use super::normalise::timed;
use super::pods::{EventColumn, PodData};
use super::{stats, Delta, Estimate, Noise, NoiseModel, Presence};
use crate::profile::ProfileKind;

/// Buffers reused across functions, so the per-function loop does not allocate.
#[derive(Default)]
pub(super) struct Scratch {
    pub(super) bv: Vec<f64>,
    pub(super) cv: Vec<f64>,
    pub(super) ev: Vec<f64>,
}

/// Per-side constants used to turn per-pod values into a [`Delta`].
pub(super) struct DeltaEstimator<'a> {
    pub(super) model: NoiseModel,
    pub(super) phi: f64,
    /// The dispersion of functions under [`DISPERSION_MIN_EVENTS`] a pod, at least `phi`.
    pub(super) phi_small: f64,
    pub(super) window_factor: f64,
    /// With one pod a side, the variance the normalisation's level adds to every log ratio
    /// ([`super::Normalization::level_variance`]); zero otherwise.
    pub(super) level_variance: f64,
    pub(super) fb: &'a [f64],
    pub(super) fc: &'a [f64],
    pub(super) min_share: f64,
}

impl DeltaEstimator<'_> {
    pub(super) fn delta(
        &self,
        scratch: &mut Scratch,
        b: impl Iterator<Item = f64>,
        c: impl Iterator<Item = f64>,
        events: impl Iterator<Item = f64>,
        (tb, tc): (f64, f64),
        waits: Option<WaitSpread>,
    ) -> Delta {
        let Scratch { bv, cv, ev } = scratch;
        bv.clear();
        bv.extend(b);
        cv.clear();
        cv.extend(c);
        ev.clear();
        ev.extend(events);
        let (bv, cv) = (bv.as_slice(), cv.as_slice());
        let (eb, ec) = ev.split_at(bv.len());
        let (xb, xc) = (bv.iter().sum::<f64>(), cv.iter().sum::<f64>());
        let (nb, nc) = (eb.iter().sum::<f64>(), ec.iter().sum::<f64>());
        let share = |x: f64, t: f64| if t > 0.0 { x / t } else { 0.0 };
        let (sb, sc) = (share(xb, tb), share(xc, tc));
        let presence = match (xb > 0.0, xc > 0.0) {
            (true, true) => Presence::Both,
            (false, true) => Presence::New,
            (true, false) => Presence::Vanished,
            (false, false) => Presence::Neither,
        };
        let tested = sb.max(sc) >= self.min_share && presence != Presence::Neither;
        // Estimates cost a dispersion fit each; only tested functions need one.
        let estimate = if presence == Presence::Both && tested {
            self.estimate(bv, cv, eb, ec, waits)
        } else {
            None
        };
        let per_pod = |x: f64, pods: usize| x / pods.max(1) as f64;
        Delta {
            baseline: xb,
            candidate: xc,
            baseline_per_pod: per_pod(xb, bv.len()),
            candidate_per_pod: per_pod(xc, cv.len()),
            baseline_share: sb,
            candidate_share: sc,
            baseline_events: nb,
            candidate_events: nc,
            presence,
            tested,
            estimate: estimate.map(Box::new),
            candidate_spread: None,
        }
    }

    /// The ratio and its noise. `waits` is set for a sum of waits (mutex and block delay): how
    /// much more its windows vary than its count of waits says
    /// ([`super::dispersion::wait_spread`]), which widens its sampling noise and, where a side's
    /// waiting is one burst, says which estimates stand ([`WaitSpread::allows`]).
    fn estimate(
        &self,
        bv: &[f64],
        cv: &[f64],
        eb: &[f64],
        ec: &[f64],
        waits: Option<WaitSpread>,
    ) -> Option<Estimate> {
        let wait_factor = waits.map_or(1.0, |w| w.factor);
        let window_factor = self.window_factor.max(wait_factor).max(1.0);
        let (eb_sum, ec_sum) = (self.fb.iter().sum::<f64>(), self.fc.iter().sum::<f64>());
        let rate = |x: &[f64], e: f64| x.iter().sum::<f64>() / e;
        let ratio = rate(cv, ec_sum) / rate(bv, eb_sum);
        if !ratio.is_finite() || ratio <= 0.0 || waits.is_some_and(|w| !w.allows(ratio)) {
            return None;
        }
        let noise = match self.model {
            NoiseModel::ExactCounts => exact_counts_noise(bv, cv, self.fb, self.fc)?,
            NoiseModel::SamplingOnly => {
                // Events are shrunk so that the binomial's variance of log theta,
                // about 1/k + 1/(n - k), matches c (1/nb + 1/nc) + 2 phi + the level's
                // variance: window spread, the (blind) pod-to-pod dispersion and the
                // normalisation's own uncertainty, which no count of events averages away.
                let beyond_sampling = 2.0 * self.phi + self.level_variance;
                let nb: f64 = eb.iter().sum();
                let nc: f64 = ec.iter().sum();
                let poisson = 1.0 / nb.max(0.5) + 1.0 / nc.max(0.5);
                if waits.is_some() {
                    // A binomial of the waits' counts would test how often goroutines waited,
                    // not how long: the same variance, on the log of the waiting's ratio.
                    return Some(Estimate {
                        ratio,
                        noise: Noise::LogT {
                            se: (window_factor * poisson + beyond_sampling).sqrt(),
                            df: f64::INFINITY,
                        },
                    });
                }
                let c = window_factor + beyond_sampling / poisson;
                let n = ((nb + nc) / c).round() as u64;
                let k = (nc / c).round().min(n as f64) as u64;
                Noise::Binomial {
                    k,
                    n,
                    exposure_ratio: ec_sum / eb_sum,
                }
            }
            NoiseModel::BetweenPods => {
                let nb: f64 = eb.iter().sum::<f64>().max(0.5);
                let nc: f64 = ec.iter().sum::<f64>().max(0.5);
                let phi = self.function_dispersion(eb, ec);
                let weight = |f: &[f64]| {
                    let s: f64 = f.iter().sum();
                    f.iter().map(|x| x * x).sum::<f64>() / (s * s)
                };
                let var = window_factor * (1.0 / nb + 1.0 / nc)
                    + phi * (weight(self.fb) + weight(self.fc));
                Noise::LogT {
                    se: var.sqrt(),
                    df: f64::INFINITY,
                }
            }
        };
        Some(Estimate { ratio, noise })
    }

    /// The pooled dispersion of functions of this one's size, raised towards its own spread
    /// when that is larger: a function noisier than the rest must not be judged by the
    /// others' calm.
    fn function_dispersion(&self, eb: &[f64], ec: &[f64]) -> f64 {
        let pods = (eb.len() + ec.len()).max(1) as f64;
        let mean = (eb.iter().sum::<f64>() + ec.iter().sum::<f64>()) / pods;
        let pooled = if mean < DISPERSION_MIN_EVENTS {
            self.phi_small
        } else {
            self.phi
        };
        let groups = [
            stats::DispersionGroup {
                counts: eb,
                exposures: self.fb,
            },
            stats::DispersionGroup {
                counts: ec,
                exposures: self.fc,
            },
        ];
        match stats::pooled_dispersion(&groups, 0.0) {
            Some(own) if own.df > 0.0 => {
                let shrunk = (DISPERSION_PRIOR_DF * pooled + own.df * own.phi)
                    / (DISPERSION_PRIOR_DF + own.df);
                shrunk.max(pooled)
            }
            _ => pooled,
        }
    }
}

/// Welch's test on per-pod log values: for exact counts (goroutines) and totals.
pub(super) fn exact_counts_noise(bv: &[f64], cv: &[f64], fb: &[f64], fc: &[f64]) -> Option<Noise> {
    // Half a count keeps log finite for a pod where the function is momentarily absent.
    let logs = |v: &[f64], f: &[f64]| -> Vec<f64> {
        v.iter().zip(f).map(|(x, s)| ((x + 0.5) / s).ln()).collect()
    };
    let (lb, lc) = (logs(bv, fb), logs(cv, fc));
    let poisson = count_floor(bv, cv);
    if lb.len() >= 2 && lc.len() >= 2 {
        return stats::welch(&lb, &lc).map(|w| floored(w, poisson));
    }
    // One pod on a side: no spread can be measured; treat the counts as Poisson.
    Some(Noise::LogT {
        se: poisson,
        df: f64::INFINITY,
    })
}

/// Welch's spread with a known floor added: the floor carries no Welch degrees of freedom, so
/// the sum's follow Satterthwaite (a zero spread between pods leaves the floor alone, with a
/// normal quantile, instead of Welch's df of 1, whose t quantiles would make it enormous).
/// Counting the floor beside a measured spread that already holds it is conservative, and
/// negligible once the counts are large.
pub(super) fn floored(w: stats::Welch, floor: f64) -> Noise {
    let (between, known) = (w.se * w.se, floor * floor);
    let var = between + known;
    let df = if between > 0.0 {
        (var * var / (between * between / w.df.max(1.0))).max(1.0)
    } else {
        f64::INFINITY
    };
    Noise::LogT { se: var.sqrt(), df }
}

/// The smallest standard error of a log ratio of exact counts: that of Poisson counts.
///
/// Pods that agree exactly within each side give Welch a zero spread, and then one goroutine
/// more on the candidate's pods (a connection still closing when the snapshot was taken)
/// became a "certain" 12% rise of a small service's eight goroutines. Counts that move by
/// one or two from snapshot to snapshot are never more certain than Poisson counts; for a
/// service with thousands of goroutines this floor is a fraction of a percent.
pub(super) fn count_floor(bv: &[f64], cv: &[f64]) -> f64 {
    let (nb, nc): (f64, f64) = (bv.iter().sum(), cv.iter().sum());
    (1.0 / nb.max(0.5) + 1.0 / nc.max(0.5)).sqrt()
}

/// The total as a per-pod rate (per second for windows over time, per snapshot for snapshots),
/// tested with Welch between pods, or with sampling noise widened by the windows' load swings
/// (`load_factor`) for one pod a side.
pub(super) fn total_delta(
    kind: ProfileKind,
    st: usize,
    ev: EventColumn,
    b: &[PodData],
    c: &[PodData],
    load_factor: f64,
) -> Delta {
    let snapshot = kind.is_snapshot();
    // Per second only when every pod has a duration: a rate on one side against a plain
    // total on the other would compare numbers of different units.
    let per_second = !snapshot && b.iter().chain(c).all(timed);
    let per_pod_rate = |p: &PodData| {
        if !per_second {
            p.totals[st]
        } else {
            p.totals[st] / p.duration_seconds
        }
    };
    let rb: Vec<f64> = b.iter().map(per_pod_rate).collect();
    let rc: Vec<f64> = c.iter().map(per_pod_rate).collect();
    let events = |p: &PodData| p.totals[ev.index] * ev.scale;
    let (nb, nc): (f64, f64) = (b.iter().map(events).sum(), c.iter().map(events).sum());
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let (mb, mc) = (mean(&rb), mean(&rc));
    let ratio = mc / mb;
    // Totals of delta profiles can be negative (more freed than allocated in the window): a
    // ratio of two negative totals is no growth factor, so none is estimated.
    let estimate = if mb > 0.0 && mc > 0.0 && ratio.is_finite() {
        let noise = if b.len() >= 2 && c.len() >= 2 {
            let log = |v: &[f64]| v.iter().map(|x| x.max(1e-300).ln()).collect::<Vec<_>>();
            let any_empty = rb.iter().chain(&rc).any(|&x| x <= 0.0);
            let floor = if ev.exact {
                count_floor(&rb, &rc)
            } else if any_empty {
                // Pods with no events at all are sparse sampling: its noise is the least
                // such a total carries.
                (1.0 / nb.max(0.5) + 1.0 / nc.max(0.5)).sqrt()
            } else {
                1e-9
            };
            if any_empty {
                // A pod with nothing (no contention in its windows) has no log: compare
                // the log of the means instead, on the same scale as the ratio.
                stats::welch_log_of_means(&rb, &rc)
            } else {
                stats::welch(&log(&rb), &log(&rc))
            }
            .map(|w| floored(w, floor))
        } else if ev.exact {
            exact_counts_noise(&rb, &rc, &vec![1.0; rb.len()], &vec![1.0; rc.len()])
        } else {
            let var = load_factor.max(1.0) * (1.0 / nb.max(0.5) + 1.0 / nc.max(0.5));
            Some(Noise::LogT {
                se: var.sqrt(),
                df: f64::INFINITY,
            })
        };
        noise.map(|noise| Estimate { ratio, noise })
    } else {
        None
    };
    let (xb, xc): (f64, f64) = (
        b.iter().map(|p| p.totals[st]).sum(),
        c.iter().map(|p| p.totals[st]).sum(),
    );
    Delta {
        baseline: xb,
        candidate: xc,
        baseline_per_pod: mb,
        candidate_per_pod: mc,
        baseline_share: 1.0,
        candidate_share: 1.0,
        baseline_events: nb,
        candidate_events: nc,
        presence: match (xb != 0.0, xc != 0.0) {
            (true, true) => Presence::Both,
            (false, true) => Presence::New,
            (true, false) => Presence::Vanished,
            (false, false) => Presence::Neither,
        },
        tested: true,
        estimate: estimate.map(Box::new),
        candidate_spread: None,
    }
}

//! Growth within a side across windows: the leak signal for goroutines and the live heap.
//!
//! A leak shows less as a difference between sides than as a slope within the candidate:
//! goroutines or in-use bytes that keep climbing from one window to the next. Each pod's
//! slope is fitted by least squares over its windows; pods are the replicates of the mean
//! slope, as everywhere else.

use serde::{Deserialize, Serialize};

use super::stats;
use crate::inputs::PodProfiles;
use crate::profile::ProfileKind;

/// The growth of a snapshot profile's total across windows, on one side.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Growth {
    /// The profile kind (goroutine or heap).
    pub kind: ProfileKind,
    /// The sample type whose total is followed.
    pub sample_type: String,
    /// Mean slope over pods, in units per minute.
    pub per_minute: f64,
    /// Standard error of that mean.
    pub se: f64,
    /// One-sided p-value for "not growing".
    pub p_value: f64,
    /// Growth over the capture relative to the first window's level.
    pub relative: f64,
    /// Pods with at least three windows, the ones fitted.
    pub pods: usize,
}

impl Growth {
    /// Whether the growth is both clear (p below `alpha`) and material (more than `min_relative`
    /// of the starting level over the capture).
    pub fn is_leak_signal(&self, alpha: f64, min_relative: f64) -> bool {
        self.p_value < alpha && self.relative > min_relative
    }
}

/// Fits the growth of `sample_type`'s total over each pod's windows, using the profiles'
/// timestamps. Needs three windows in some pod; `None` otherwise.
pub fn growth(kind: ProfileKind, sample_type: &str, pods: &[PodProfiles]) -> Option<Growth> {
    let mut slopes = Vec::new();
    let mut residual_se = Vec::new();
    let mut levels = Vec::new();
    let mut spans = Vec::new();
    for pod in pods.iter().filter(|p| p.windows.len() >= 3) {
        let st = pod.windows[0].sample_type_index(sample_type)?;
        let t0 = pod.windows[0].time_nanos;
        let points: Vec<(f64, f64)> = pod
            .windows
            .iter()
            .enumerate()
            .map(|(i, w)| {
                // Profiles without timestamps are taken as evenly spaced, a minute apart.
                let t = if w.time_nanos > 0 && t0 > 0 {
                    (w.time_nanos - t0) as f64 / 60e9
                } else {
                    i as f64
                };
                (t, w.totals.get(st).copied().unwrap_or(0) as f64)
            })
            .collect();
        let (slope, se) = least_squares(&points)?;
        slopes.push(slope);
        residual_se.push(se);
        levels.push(points[0].1);
        spans.push(points.last()?.0 - points[0].0);
    }
    if slopes.is_empty() {
        return None;
    }
    let n = slopes.len() as f64;
    let mean = slopes.iter().sum::<f64>() / n;
    let (se, df) = if slopes.len() >= 2 {
        let var = slopes.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1.0);
        // The spread between pods, but never less than the fits' own uncertainty.
        let within = residual_se.iter().map(|s| s * s).sum::<f64>() / (n * n);
        ((var / n).max(within).sqrt(), n - 1.0)
    } else {
        (
            residual_se[0],
            (pods[0].windows.len() as f64 - 2.0).max(1.0),
        )
    };
    let p_value = if se > 0.0 {
        stats::t_sf(mean / se, df)
    } else if mean > 0.0 {
        0.0
    } else {
        1.0
    };
    let level = levels.iter().sum::<f64>() / n;
    let span = spans.iter().sum::<f64>() / n;
    Some(Growth {
        kind,
        sample_type: sample_type.to_owned(),
        per_minute: mean,
        se,
        p_value,
        relative: if level > 0.0 {
            mean * span / level
        } else {
            0.0
        },
        pods: slopes.len(),
    })
}

/// Slope of y over x and its standard error; `None` for fewer than three points or no
/// spread in x.
fn least_squares(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    if points.len() < 3 {
        return None;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx <= 0.0 || !sxx.is_finite() {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let slope = sxy / sxx;
    let rss: f64 = points
        .iter()
        .map(|p| (p.1 - my - slope * (p.0 - mx)).powi(2))
        .sum();
    Some((slope, (rss / (n - 2.0) / sxx).sqrt()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{FunctionProfile, SampleType};

    fn pod(counts: &[i64]) -> PodProfiles {
        let windows = counts
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let mut p = FunctionProfile::from_values(
                    ProfileKind::Goroutine,
                    vec![SampleType {
                        name: "goroutine".into(),
                        unit: "count".into(),
                    }],
                    vec!["main.f".into()],
                    vec![vec![c]],
                    vec![vec![c]],
                    1,
                    0,
                )
                .unwrap();
                p.time_nanos = 1_700_000_000_000_000_000 + i as i64 * 10_000_000_000;
                p
            })
            .collect();
        PodProfiles {
            pod: "p".into(),
            windows,
        }
    }

    #[test]
    fn a_steady_count_is_no_leak_and_a_climb_is() {
        let steady = [
            pod(&[14, 15, 14, 14, 15, 14]),
            pod(&[15, 14, 14, 15, 14, 15]),
        ];
        let g = growth(ProfileKind::Goroutine, "goroutine", &steady).unwrap();
        assert!(!g.is_leak_signal(0.01, 0.1), "{g:?}");
        // +10 goroutines per 10-second window: 60 per minute.
        let leaking = [
            pod(&[14, 24, 35, 44, 54, 65]),
            pod(&[15, 25, 34, 45, 55, 64]),
        ];
        let g = growth(ProfileKind::Goroutine, "goroutine", &leaking).unwrap();
        assert!((g.per_minute - 60.0).abs() < 3.0, "{g:?}");
        assert!(g.is_leak_signal(0.01, 0.1), "{g:?}");
    }

    #[test]
    fn too_few_windows_give_no_estimate() {
        assert!(growth(ProfileKind::Goroutine, "goroutine", &[pod(&[1, 2])]).is_none());
        assert!(growth(ProfileKind::Goroutine, "goroutine", &[]).is_none());
    }
}

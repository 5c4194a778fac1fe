//! Growth within a side across windows: the leak signal for goroutines and the live heap.
//!
//! A leak shows less as a difference between sides than as a slope within the candidate:
//! goroutines or in-use bytes that keep climbing from one window to the next. Each pod's
//! slope is fitted by least squares over its windows; pods are the replicates of the mean
//! slope, as everywhere else.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::stats;
use crate::profile::{FunctionProfile, ProfileKind};
use crate::side::PodProfiles;

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
pub fn growth(kind: ProfileKind, sample_type: &str, pods: &[&PodProfiles]) -> Option<Growth> {
    let st = pods
        .iter()
        .find_map(|p| p.windows.first())?
        .sample_type_index(sample_type)?;
    let fit = fit(pods, |w, _| w.totals.get(st).copied().unwrap_or(0) as f64)?;
    Some(Growth {
        kind,
        sample_type: sample_type.to_owned(),
        per_minute: fit.per_minute,
        se: fit.se,
        p_value: fit.p_value,
        relative: fit.relative,
        pods: fit.pods,
    })
}

/// The sample types whose level across windows says something about a leak: live goroutines,
/// live heap bytes and objects (a heap profile's `alloc_*` only ever climb).
pub fn is_level_sample_type(kind: ProfileKind, sample_type: &str) -> bool {
    matches!(
        (kind, sample_type),
        (ProfileKind::Goroutine, "goroutine")
            | (ProfileKind::Heap, "inuse_space" | "inuse_objects")
    )
}

/// The growth of a level (live heap, goroutines) across windows on both sides, and the
/// candidate's functions that climb with it: what a leak rule judges and names.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GrowthComparison {
    /// The baseline's growth, when some pod has three windows.
    pub baseline: Option<Growth>,
    /// The candidate's growth, likewise.
    pub candidate: Option<Growth>,
    /// Functions whose cumulative value climbs in the candidate, steepest first.
    pub functions: Vec<FunctionGrowth>,
}

/// One function's climb in the candidate: the growth of its cumulative value across windows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FunctionGrowth {
    /// The function.
    pub name: String,
    /// Mean slope over pods, in units per minute.
    pub per_minute: f64,
    /// One-sided p-value for "not growing".
    pub p_value: f64,
    /// Its cumulative value in the last window, averaged over pods.
    pub level: f64,
    /// Its own (flat) value in the last window, averaged over pods: the frame that holds the
    /// growth itself, where callers share the same cumulative climb.
    pub flat_level: f64,
    /// How many frames above the leaf it sits, on average (see
    /// [`crate::compare::FunctionDelta::leaf_distance`]).
    #[serde(default)]
    pub leaf_distance: f64,
}

/// Most growing functions kept per comparison.
const MAX_GROWING_FUNCTIONS: usize = 20;

/// Fits the growth of `sample_type` on both sides and of each candidate function that climbs;
/// `None` when the sample type is not a level (see [`is_level_sample_type`]) or neither side
/// has a pod with three windows.
pub fn compare_growth(
    kind: ProfileKind,
    sample_type: &str,
    baseline: &[&PodProfiles],
    candidate: &[&PodProfiles],
) -> Option<GrowthComparison> {
    if !is_level_sample_type(kind, sample_type) {
        return None;
    }
    let b = growth(kind, sample_type, baseline);
    let c = growth(kind, sample_type, candidate);
    if b.is_none() && c.is_none() {
        return None;
    }
    let st = candidate
        .iter()
        .find_map(|p| p.windows.first())
        .and_then(|w| w.sample_type_index(sample_type));
    let functions = match (st, &c) {
        (Some(st), Some(g)) if g.per_minute > 0.0 => growing_functions(candidate, st),
        _ => Vec::new(),
    };
    Some(GrowthComparison {
        baseline: b,
        candidate: c,
        functions,
    })
}

/// The functions whose cumulative value of sample type `st` climbs across the pods' windows,
/// steepest first (at most [`MAX_GROWING_FUNCTIONS`]).
fn growing_functions(pods: &[&PodProfiles], st: usize) -> Vec<FunctionGrowth> {
    // Each window's rows by name, [pod][window], built once for all the fits.
    let rows: Vec<Vec<HashMap<&str, usize>>> = pods
        .iter()
        .map(|p| {
            p.windows
                .iter()
                .map(|w| {
                    w.functions
                        .iter()
                        .enumerate()
                        .map(|(i, n)| (&**n, i))
                        .collect()
                })
                .collect()
        })
        .collect();
    // Only a function higher in some pod's last window than in its first can climb; the rest
    // are not fitted.
    let mut names: Vec<&str> = Vec::new();
    for (pod, pod_rows) in pods.iter().zip(&rows).filter(|(p, _)| p.windows.len() >= 3) {
        let (first, last) = (&pod.windows[0], &pod.windows[pod.windows.len() - 1]);
        let before = |n: &str| pod_rows[0].get(n).map_or(0, |&i| first.cum(i, st));
        names.extend(
            last.functions
                .iter()
                .enumerate()
                .filter(|(i, n)| last.cum(*i, st) > before(n))
                .map(|(_, n)| &**n),
        );
    }
    names.sort_unstable();
    names.dedup();

    let mut functions: Vec<FunctionGrowth> = names
        .into_iter()
        .filter_map(|name| {
            let row = |pod: usize, window: usize| rows[pod][window].get(name).copied();
            let fitted = fit(pods, |w, (pod, window)| {
                row(pod, window).map_or(0.0, |i| w.cum(i, st) as f64)
            })
            .filter(|f| f.per_minute > 0.0)?;
            // Levels in each pod's last window, and the distance from the leaf over all.
            let (mut cum, mut flat, mut distance) = (0.0, 0.0, (0u64, 0u64));
            for (pi, pod) in pods.iter().enumerate() {
                for (wi, w) in pod.windows.iter().enumerate() {
                    let Some(i) = row(pi, wi) else { continue };
                    if wi + 1 == pod.windows.len() {
                        cum += w.cum(i, st) as f64;
                        flat += w.flat(i, st) as f64;
                    }
                    if let Some(&(d, n)) = w.leaf_distance.get(i) {
                        distance = (distance.0 + d, distance.1 + n);
                    }
                }
            }
            let n_pods = pods.len().max(1) as f64;
            Some(FunctionGrowth {
                name: name.to_owned(),
                per_minute: fitted.per_minute,
                p_value: fitted.p_value,
                level: cum / n_pods,
                flat_level: flat / n_pods,
                leaf_distance: if distance.1 > 0 {
                    distance.0 as f64 / distance.1 as f64
                } else {
                    0.0
                },
            })
        })
        .collect();
    functions.sort_by(|a, b| {
        b.per_minute
            .total_cmp(&a.per_minute)
            .then_with(|| a.name.cmp(&b.name))
    });
    functions.truncate(MAX_GROWING_FUNCTIONS);
    functions
}

/// A slope fitted over pods: the mean of each pod's least-squares slope.
struct Fit {
    per_minute: f64,
    se: f64,
    p_value: f64,
    relative: f64,
    pods: usize,
}

/// Fits `value` over each pod's windows (pods with three windows or more) and combines the
/// slopes, pods as replicates. `value` is given each window with its (pod, window) index.
fn fit(
    pods: &[&PodProfiles],
    value: impl Fn(&FunctionProfile, (usize, usize)) -> f64,
) -> Option<Fit> {
    let mut slopes = Vec::new();
    let mut residual_se = Vec::new();
    let mut levels = Vec::new();
    let mut spans = Vec::new();
    let mut pod_df = Vec::new();
    for (pi, pod) in pods
        .iter()
        .enumerate()
        .filter(|(_, p)| p.windows.len() >= 3)
    {
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
                (t, value(w, (pi, i)))
            })
            .collect();
        let (slope, se) = least_squares(&points)?;
        slopes.push(slope);
        residual_se.push(se);
        levels.push(points[0].1);
        spans.push(points.last()?.0 - points[0].0);
        pod_df.push((pod.windows.len() as f64 - 2.0).max(1.0));
    }
    if slopes.is_empty() {
        return None;
    }
    let n = slopes.len() as f64;
    let mean = slopes.iter().sum::<f64>() / n;
    // The mean slope's uncertainty, for people: the spread of the pods' slopes, but never
    // less than the fits' own.
    let within_var = residual_se.iter().map(|s| s * s).sum::<f64>() / (n * n);
    let between_var = if slopes.len() >= 2 {
        slopes.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1.0) / n
    } else {
        0.0
    };
    let se = between_var.max(within_var).sqrt();
    // "Not growing" is tested in each pod against its own fit, and the pods' one-sided
    // p-values are combined by Fisher's method: under no growth every pod's line is flat, and
    // a climb in every pod is clear however much the pods' slopes differ from each other
    // (which the spread above, with one degree of freedom for two pods, would not let be).
    let pod_p: Vec<f64> = slopes
        .iter()
        .zip(&residual_se)
        .zip(&pod_df)
        .map(|((&slope, &se), &df)| {
            if se > 0.0 {
                stats::t_sf(slope / se, df)
            } else if slope > 0.0 {
                0.0
            } else {
                1.0
            }
        })
        .collect();
    let fisher: f64 = pod_p.iter().map(|p| -2.0 * p.max(1e-300).ln()).sum();
    let p_value = stats::chi_squared_sf(fisher, 2.0 * pod_p.len() as f64);
    let level = levels.iter().sum::<f64>() / n;
    let span = spans.iter().sum::<f64>() / n;
    Some(Fit {
        per_minute: mean,
        se,
        p_value,
        // From nothing, a climb is measured against one unit, so that it stays finite.
        relative: mean * span / level.max(1.0),
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
    use crate::profile::SampleType;

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

    fn refs(pods: &[PodProfiles]) -> Vec<&PodProfiles> {
        pods.iter().collect()
    }

    #[test]
    fn a_steady_count_is_no_leak_and_a_climb_is() {
        let steady = [
            pod(&[14, 15, 14, 14, 15, 14]),
            pod(&[15, 14, 14, 15, 14, 15]),
        ];
        let g = growth(ProfileKind::Goroutine, "goroutine", &refs(&steady)).unwrap();
        assert!(!g.is_leak_signal(0.01, 0.1), "{g:?}");
        // +10 goroutines per 10-second window: 60 per minute.
        let leaking = [
            pod(&[14, 24, 35, 44, 54, 65]),
            pod(&[15, 25, 34, 45, 55, 64]),
        ];
        let g = growth(ProfileKind::Goroutine, "goroutine", &refs(&leaking)).unwrap();
        assert!((g.per_minute - 60.0).abs() < 3.0, "{g:?}");
        assert!(g.is_leak_signal(0.01, 0.1), "{g:?}");
    }

    #[test]
    fn too_few_windows_give_no_estimate() {
        assert!(growth(ProfileKind::Goroutine, "goroutine", &[&pod(&[1, 2])]).is_none());
        assert!(growth(ProfileKind::Goroutine, "goroutine", &[]).is_none());
    }
}

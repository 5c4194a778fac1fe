//! Growth within a side across windows: the leak signal for goroutines and the live heap.
//!
//! A leak shows less as a difference between sides than as a slope within the candidate:
//! goroutines or in-use bytes that keep climbing from one window to the next. Each pod's
//! slope is fitted by least squares over its windows; pods are the replicates of the mean
//! slope, as everywhere else. "Not growing" is tested per pod (combined by Fisher's method)
//! against both the scatter about the line and, for sampled levels, the sampling of the climb
//! itself; and the candidate's climb is tested against the baseline's, on both sides' scatter
//! pooled ([`ClimbBeyond`]).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::pods::{event_column, EventColumn};
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
    Some(fit(&total_lines(kind, sample_type, pods)?)?.growth(kind, sample_type))
}

/// Each pod's line through `sample_type`'s total; `None` when the pods have no window, or the
/// first window lacks the sample type.
fn total_lines(
    kind: ProfileKind,
    sample_type: &str,
    pods: &[&PodProfiles],
) -> Option<Vec<PodLine>> {
    let first = pods.iter().find_map(|p| p.windows.first())?;
    let st = first.sample_type_index(sample_type)?;
    let ev = event_column(kind, &first.sample_types, st, first.period);
    Some(lines(pods, |w, _| {
        let total = |i: usize| w.totals.get(i).copied().unwrap_or(0) as f64;
        (total(st), ev.sampled_events(total))
    }))
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
    /// How much faster the candidate climbs than the baseline, when both were fitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beyond_baseline: Option<ClimbBeyond>,
}

/// How much faster the candidate's level climbs than the baseline's, and how clearly.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClimbBeyond {
    /// The candidate's mean slope less the baseline's, in units per minute.
    pub per_minute: f64,
    /// Standard error of that difference.
    pub se: f64,
    /// One-sided p-value for "the candidate climbs no faster than the baseline": each
    /// candidate pod against the baseline's mean slope, combined by Fisher's method.
    pub p_value: f64,
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
    let b = total_lines(kind, sample_type, baseline).unwrap_or_default();
    let c = total_lines(kind, sample_type, candidate).unwrap_or_default();
    let growth = |lines: &[PodLine]| fit(lines).map(|f| f.growth(kind, sample_type));
    let (baseline_growth, candidate_growth) = (growth(&b), growth(&c));
    if baseline_growth.is_none() && candidate_growth.is_none() {
        return None;
    }
    let functions = match (
        candidate.iter().find_map(|p| p.windows.first()),
        &candidate_growth,
    ) {
        (Some(w), Some(g)) if g.per_minute > 0.0 => match w.sample_type_index(sample_type) {
            Some(st) => growing_functions(
                candidate,
                st,
                event_column(kind, &w.sample_types, st, w.period),
            ),
            None => Vec::new(),
        },
        _ => Vec::new(),
    };
    Some(GrowthComparison {
        baseline: baseline_growth,
        candidate: candidate_growth,
        functions,
        beyond_baseline: climb_beyond(&b, &c),
    })
}

/// The functions whose cumulative value of sample type `st` climbs across the pods' windows,
/// steepest first (at most [`MAX_GROWING_FUNCTIONS`]).
fn growing_functions(pods: &[&PodProfiles], st: usize, ev: EventColumn) -> Vec<FunctionGrowth> {
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
            let fitted = fit(&lines(pods, |w, (pod, window)| {
                let cum = |column: usize| row(pod, window).map_or(0.0, |i| w.cum(i, column) as f64);
                (cum(st), ev.sampled_events(cum))
            }))
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

impl Fit {
    /// The fit as the growth of `sample_type`'s total.
    fn growth(self, kind: ProfileKind, sample_type: &str) -> Growth {
        Growth {
            kind,
            sample_type: sample_type.to_owned(),
            per_minute: self.per_minute,
            se: self.se,
            p_value: self.p_value,
            relative: self.relative,
            pods: self.pods,
        }
    }
}

/// One pod's straight line through its windows' values.
struct PodLine {
    /// Least-squares slope, per minute.
    slope: f64,
    /// Residual sum of squares about the line.
    rss: f64,
    /// Residual degrees of freedom (windows - 2).
    df: f64,
    /// Spread of the windows' times, sum of (t - mean t)^2, in minutes squared.
    sxx: f64,
    /// The slope's variance from sampling alone: the climb is made of sampled events, and a
    /// handful of them cannot give a certain slope however straight the line they draw.
    sampling_var: f64,
    /// The first window's value.
    level: f64,
    /// Minutes from the first window to the last.
    span: f64,
}

impl PodLine {
    /// The slope's variance from the scatter of the windows about the line.
    fn scatter_var(&self) -> f64 {
        self.rss / self.df / self.sxx
    }

    /// The slope's variance: the scatter about the line, but never less than sampling allows.
    fn var(&self) -> f64 {
        self.scatter_var().max(self.sampling_var)
    }
}

/// One window's value and, for sampled values, the sampled events behind it (`None` for exact
/// counts such as goroutines).
type Point = (f64, Option<f64>);

/// Fits each pod's line over its windows (pods with three windows or more). `value` is given
/// each window with its (pod, window) index.
fn lines(
    pods: &[&PodProfiles],
    value: impl Fn(&FunctionProfile, (usize, usize)) -> Point,
) -> Vec<PodLine> {
    let mut lines = Vec::new();
    for (pi, pod) in pods
        .iter()
        .enumerate()
        .filter(|(_, p)| p.windows.len() >= 3)
    {
        let t0 = pod.windows[0].time_nanos;
        let mut points: Vec<(f64, Point)> = pod
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
        // Steps run from one window to the next in time, whatever order the windows came in.
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        if let Some(line) = line(&points) {
            lines.push(line);
        }
    }
    lines
}

/// Independent one-sided p-values combined by Fisher's method.
fn fisher(p: &[f64]) -> f64 {
    let statistic: f64 = p.iter().map(|p| -2.0 * p.max(1e-300).ln()).sum();
    stats::chi_squared_sf(statistic, 2.0 * p.len() as f64)
}

/// The pods' mean slope.
fn mean_slope(lines: &[PodLine]) -> f64 {
    lines.iter().map(|l| l.slope).sum::<f64>() / lines.len() as f64
}

/// Combines pods' lines into one slope, pods as replicates, and tests "not growing".
fn fit(lines: &[PodLine]) -> Option<Fit> {
    if lines.is_empty() {
        return None;
    }
    let n = lines.len() as f64;
    let mean = mean_slope(lines);
    let se = side_var(lines).0.sqrt();
    // "Not growing" is tested in each pod against its own fit, and the pods' one-sided
    // p-values are combined by Fisher's method: under no growth every pod's line is flat, and
    // a climb in every pod is clear however much the pods' slopes differ from each other
    // (which the spread above, with one degree of freedom for two pods, would not let be).
    let pod_p: Vec<f64> = lines
        .iter()
        .map(|l| one_sided_p(l.slope, (l.scatter_var(), l.df), l.sampling_var))
        .collect();
    let p_value = fisher(&pod_p);
    let level = lines.iter().map(|l| l.level).sum::<f64>() / n;
    let span = lines.iter().map(|l| l.span).sum::<f64>() / n;
    Some(Fit {
        per_minute: mean,
        se,
        p_value,
        // From nothing, a climb is measured against one unit, so that it stays finite.
        relative: mean * span / level.max(1.0),
        pods: lines.len(),
    })
}

/// The variance of a side's mean slope, and whether it came from the pods' spread: the
/// spread of the pods' slopes, but never less than the fits' own.
fn side_var(lines: &[PodLine]) -> (f64, bool) {
    side_var_with(lines, PodLine::var)
}

/// [`side_var`] with each pod's own slope variance given by `var`.
fn side_var_with(lines: &[PodLine], var: impl Fn(&PodLine) -> f64) -> (f64, bool) {
    let n = lines.len() as f64;
    let mean = mean_slope(lines);
    let within = lines.iter().map(&var).sum::<f64>() / (n * n);
    let between = if lines.len() >= 2 {
        lines.iter().map(|l| (l.slope - mean).powi(2)).sum::<f64>() / (n - 1.0) / n
    } else {
        0.0
    };
    (within.max(between), between > within)
}

/// P(slope this large | no growth), one-sided: the larger of the p-value against the scatter
/// about the line (Student's t on its degrees of freedom) and against sampling alone (a known
/// variance, so normal), so that a climb must be clear against both.
fn one_sided_p(slope: f64, (scatter_var, df): (f64, f64), sampling_var: f64) -> f64 {
    let against = |var: f64, df: f64| {
        if var > 0.0 {
            stats::t_sf(slope / var.sqrt(), df)
        } else if slope > 0.0 {
            0.0
        } else {
            1.0
        }
    };
    against(scatter_var, df).max(against(sampling_var, f64::INFINITY))
}

/// The candidate's climb beyond the baseline's: the difference of their mean slopes, and
/// whether each candidate pod climbs clearly faster than the baseline.
///
/// Each candidate pod's slope is tested against the baseline's mean slope, on the scatter
/// about the lines of both sides' pods pooled: under "this release climbs no faster" both
/// sides run one kind of process whose level moves between windows alike (a collected heap's
/// saw-tooth), and one side's three windows can fall on a line by chance. In a Node.js A/A
/// run with one pod a side the candidate's heap rose in two equal steps of sampled
/// allocations (p = 2.9e-4 on its own line) while the baseline's scattered by as much;
/// pooled, the difference is p = 0.2. The difference must also be clear against the sampling
/// of both climbs, and the baseline's mean is as uncertain as its pods' spread says.
///
/// The pods' p-values are combined by Fisher's method, as for one side's climb: candidate
/// pods that leak at different rates (one got less CPU, so fewer requests) all climb faster
/// than the baseline however much they differ from each other. Taking the candidate pods'
/// spread as the noise of their mean instead held a real leak of 181 MiB a minute with two
/// pods a side (p = 0.014 on two degrees of freedom).
fn climb_beyond(baseline: &[PodLine], candidate: &[PodLine]) -> Option<ClimbBeyond> {
    if baseline.is_empty() || candidate.is_empty() {
        return None;
    }
    let all = || baseline.iter().chain(candidate);
    let df: f64 = all().map(|l| l.df).sum();
    let pooled = all().map(|l| l.rss).sum::<f64>() / df;
    let (scatter_b, spread_b) = side_var_with(baseline, |l| pooled / l.sxx);
    let n_b = baseline.len() as f64;
    let sampling_b = baseline.iter().map(|l| l.sampling_var).sum::<f64>() / (n_b * n_b);
    let mean_b = mean_slope(baseline);
    // Where the baseline pods' spread sets its mean's noise, its pods are the replicates.
    let df = if spread_b { (n_b - 1.0).max(1.0) } else { df };
    let pod_p: Vec<f64> = candidate
        .iter()
        .map(|l| {
            one_sided_p(
                l.slope - mean_b,
                (pooled / l.sxx + scatter_b, df),
                l.sampling_var + sampling_b,
            )
        })
        .collect();
    let n_c = candidate.len() as f64;
    let scatter_c = candidate.iter().map(|l| pooled / l.sxx).sum::<f64>() / (n_c * n_c);
    let sampling_c = candidate.iter().map(|l| l.sampling_var).sum::<f64>() / (n_c * n_c);
    Some(ClimbBeyond {
        per_minute: mean_slope(candidate) - mean_b,
        se: (scatter_b + scatter_c).max(sampling_b + sampling_c).sqrt(),
        p_value: fisher(&pod_p),
    })
}

/// The least-squares line through `points` (time in minutes, window value); `None` for fewer
/// than three points or no spread in time.
fn line(points: &[(f64, Point)]) -> Option<PodLine> {
    let n = points.len() as f64;
    if points.len() < 3 {
        return None;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1 .0).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx <= 0.0 || !sxx.is_finite() {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 .0 - my)).sum();
    let slope = sxy / sxx;
    let rss: f64 = points
        .iter()
        .map(|p| (p.1 .0 - my - slope * (p.0 - mx)).powi(2))
        .sum();
    // The slope is the sum over steps of each step's change times the weight of the windows
    // after it; each step's change is counted in sampled events (at least one), so its
    // variance is its square over its events.
    let mut sampling_var = 0.0;
    let mut after = 0.0;
    for j in (1..points.len()).rev() {
        after += (points[j].0 - mx) / sxx;
        let (v1, e1) = points[j].1;
        let (v0, e0) = points[j - 1].1;
        if let (Some(e1), Some(e0)) = (e1, e0) {
            let events = (e1 - e0).abs().max(1.0);
            sampling_var += (v1 - v0).powi(2) / events * after * after;
        }
    }
    Some(PodLine {
        slope,
        rss,
        df: n - 2.0,
        sxx,
        sampling_var,
        level: points[0].1 .0,
        span: points[points.len() - 1].0 - points[0].0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::SampleType;

    /// One pod of snapshots ten seconds apart, one function holding `rows[w]` in window `w`.
    fn snapshots(kind: ProfileKind, types: Vec<SampleType>, rows: Vec<Vec<i64>>) -> PodProfiles {
        let windows = rows
            .into_iter()
            .enumerate()
            .map(|(i, row)| {
                let mut p = FunctionProfile::from_values(
                    kind,
                    types.clone(),
                    vec!["main.f".into()],
                    vec![row.clone()],
                    vec![row],
                    if kind == ProfileKind::Heap {
                        524_288
                    } else {
                        1
                    },
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

    /// A pod's goroutine counts, window by window.
    fn pod(counts: &[i64]) -> PodProfiles {
        let types = vec![SampleType {
            name: "goroutine".into(),
            unit: "count".into(),
        }];
        snapshots(
            ProfileKind::Goroutine,
            types,
            counts.iter().map(|&c| vec![c]).collect(),
        )
    }

    /// A pod whose live heap holds `units[w]` sampled allocations of 512 KiB in window `w`,
    /// as a sampling heap profiler writes them.
    fn heap_pod(units: &[i64]) -> PodProfiles {
        let rows = units
            .iter()
            .map(|&u| vec![u * 32_768, u * 524_288])
            .collect();
        snapshots(ProfileKind::Heap, SampleType::inuse(), rows)
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

    #[test]
    fn a_straight_climb_of_a_few_sampled_allocations_is_only_as_clear_as_their_count() {
        // As exact counts, three windows on a line are a certain climb...
        let exact = growth(ProfileKind::Goroutine, "goroutine", &[&pod(&[1, 5, 9])]).unwrap();
        assert!(exact.p_value < 1e-100, "{exact:?}");
        // ...but as sampled heap, two steps of four samples could be chance: p near
        // P(z > 4 / sqrt(2)) = 0.0023, not the line's own zero scatter.
        let sampled = growth(ProfileKind::Heap, "inuse_space", &[&heap_pod(&[1, 5, 9])]).unwrap();
        assert!((0.001..0.005).contains(&sampled.p_value), "{sampled:?}");
        assert!(
            (sampled.per_minute - 4.0 * 6.0 * 524_288.0).abs() < 1.0,
            "{sampled:?}"
        );
        // Ten times as many samples on the same line are clear.
        let many = growth(
            ProfileKind::Heap,
            "inuse_space",
            &[&heap_pod(&[10, 50, 90])],
        )
        .unwrap();
        assert!(many.p_value < 1e-9, "{many:?}");
    }

    #[test]
    fn the_candidates_climb_counts_beyond_the_baseline_only_past_how_both_sides_move() {
        let beyond = |baseline: &[i64], candidate: &[i64]| {
            compare_growth(
                ProfileKind::Heap,
                "inuse_space",
                &[&heap_pod(baseline)],
                &[&heap_pod(candidate)],
            )
            .unwrap()
            .beyond_baseline
            .unwrap()
        };
        // The Node.js A/A run that failed: the candidate's windows on a line, the baseline's
        // scattered by as much as the candidate climbed.
        let aa = beyond(&[6, 3, 9], &[1, 5, 9]);
        assert!(aa.p_value > 0.1, "{aa:?}");
        assert!(
            (aa.per_minute - 2.5 * 6.0 * 524_288.0).abs() < 1.0,
            "{aa:?}"
        );
        // A leak ten times the baseline's scatter stands out from it (pooled, two degrees of
        // freedom: t = 10.9).
        let leak = beyond(&[6, 3, 9], &[1, 31, 61]);
        assert!(leak.p_value < 0.01, "{leak:?}");
        // A baseline that falls does not hide a candidate that climbs past it.
        let falling = beyond(&[9, 6, 3], &[1, 31, 61]);
        assert!(falling.p_value < 1e-6, "{falling:?}");
        // Without a baseline fitted there is nothing to be beyond.
        let alone = compare_growth(
            ProfileKind::Heap,
            "inuse_space",
            &[&heap_pod(&[6, 3])],
            &[&heap_pod(&[1, 5, 9])],
        )
        .unwrap();
        assert!(alone.beyond_baseline.is_none() && alone.baseline.is_none());
    }

    #[test]
    fn candidate_pods_leaking_at_different_rates_all_climb_beyond_the_baseline() {
        // Two steady baseline pods; two candidate pods leaking 20 and 60 sampled allocations
        // a window (one got less CPU). The pods' spread says little of their mean, but each
        // climbs far past the baseline.
        let wobble = [0, 2, -1, 1, -2, 0, 1, -1];
        let steady = |base: i64| -> Vec<i64> { wobble.iter().map(|w| base + w).collect() };
        let leaking = |rate: i64| -> Vec<i64> {
            wobble
                .iter()
                .enumerate()
                .map(|(i, w)| 40 + rate * i as i64 + w)
                .collect()
        };
        let baseline = [heap_pod(&steady(40)), heap_pod(&steady(44))];
        let candidate = [heap_pod(&leaking(20)), heap_pod(&leaking(60))];
        let g = compare_growth(
            ProfileKind::Heap,
            "inuse_space",
            &refs(&baseline),
            &refs(&candidate),
        )
        .unwrap();
        let beyond = g.beyond_baseline.unwrap();
        assert!(beyond.p_value < 1e-6, "{beyond:?}");
        assert!(
            (beyond.per_minute - 40.0 * 6.0 * 524_288.0).abs() < 1e6,
            "{beyond:?}"
        );
        // The same pods as the baseline's: nothing beyond it.
        let g = compare_growth(
            ProfileKind::Heap,
            "inuse_space",
            &refs(&candidate),
            &refs(&candidate),
        )
        .unwrap();
        assert!(g.beyond_baseline.unwrap().p_value > 0.1);
    }
}

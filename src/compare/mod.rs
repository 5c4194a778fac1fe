//! Compare baseline and candidate profiles per function, with noise statistics.
//!
//! The pod is the unit of replication: pods are independent, the windows of one pod are not.
//! Per sample type, every function gets a flat and a cumulative [`Delta`]: the values on both
//! sides, their shares, and an [`Estimate`] of the ratio theta = candidate rate / baseline rate
//! with its noise. Whether a ratio breaks a threshold is asked later, by the policy, through
//! [`margin`]. Pure: profiles in, numbers out.
//!
//! The noise model, per sample type:
//! - several pods on a side: counts are overdispersed Poisson (variance mu + phi mu^2) with one
//!   dispersion phi estimated from the spread between pods, shrunk per function towards the
//!   pooled value but never below it;
//! - one pod per side: the exact conditional binomial test on event counts, widened by the
//!   extra spread seen between that pod's windows and by a pod-to-pod dispersion estimated
//!   "blind" (the two pods taken as replicates of each other); the result says which noise was
//!   measured and how;
//! - totals, and goroutine counts (exact, not sampled): Welch's test on per-pod log values.

mod estimate;
pub mod margin;
#[cfg(test)]
mod properties;
#[cfg(test)]
pub(crate) mod simulation;
pub mod stats;
pub mod trend;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

pub use estimate::{Estimate, Noise};

use crate::inputs::PodProfiles;
use crate::profile::{FunctionProfile, ProfileKind, SampleType};

/// How values of the two sides are made comparable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Normalize {
    /// The median of per-function ratios over well-sampled functions (as DESeq2 does): robust
    /// when one big function changes, which would shift every share.
    MedianRatio,
    /// Shares of each side's total.
    Total,
    /// Per second of profiled time (per snapshot for heap and goroutine profiles).
    Rate,
}

/// Settings of a comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompareOptions {
    /// How the sides are normalised for per-function ratios.
    pub normalize: Normalize,
    /// Functions below this share (flat or cum, on both sides) are not tested.
    pub min_share: f64,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            normalize: Normalize::MedianRatio,
            min_share: 0.005,
        }
    }
}

/// Why two sets of profiles cannot be compared.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// One side has no profile of this kind.
    #[error("no {kind} profiles on the {side} side; capture the same profiles on both sides")]
    MissingSide {
        /// The kind.
        kind: ProfileKind,
        /// "baseline" or "candidate".
        side: &'static str,
    },
    /// Profiles of one kind that measure different things.
    #[error("{kind} profiles measure different things: {side} pod {pod} has sample types [{found}] where {first} has [{expected}]; were they taken by different tools or Go versions? Compare profiles taken the same way on both sides")]
    SampleTypes {
        /// The kind.
        kind: ProfileKind,
        /// The side of the pod that differs: "baseline" or "candidate".
        side: &'static str,
        /// The pod that differs.
        pod: String,
        /// Its sample types.
        found: String,
        /// The first profile read, as "baseline pod NAME".
        first: String,
        /// The first profile's sample types.
        expected: String,
    },
}

/// The comparison of one profile kind between baseline and candidate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KindComparison {
    /// The profile kind.
    pub kind: ProfileKind,
    /// The label value whose samples were compared (`route=/checkout`), when the comparison
    /// is split by a label; `None` for all (kept) samples.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The label filter of the policy rules this comparison was made for (`route=/checkout`),
    /// when they narrow the samples; `None` for the comparison every other rule reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// Facts about the baseline pods.
    pub baseline: SideFacts,
    /// Facts about the candidate pods.
    pub candidate: SideFacts,
    /// One comparison per sample type, in the profile's order.
    pub sample_types: Vec<SampleTypeComparison>,
}

impl KindComparison {
    /// Whether these are totals since the process started rather than rates over a window: a
    /// kind that accumulates (CPU, allocs, mutex, block) read from profiles without a duration,
    /// as `/debug/pprof/allocs` serves without `?seconds=`. Such totals depend on each pod's
    /// uptime, so only shares can be compared.
    pub fn since_start(&self) -> bool {
        !self.kind.is_snapshot()
            && self
                .baseline
                .pods
                .iter()
                .chain(&self.candidate.pods)
                .any(|p| p.duration_seconds <= 0.0)
    }
}

/// What one side contributed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SideFacts {
    /// Its pods.
    pub pods: Vec<PodFacts>,
}

/// What one pod contributed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PodFacts {
    /// Pod name.
    pub name: String,
    /// Number of windows (profiles) read.
    pub windows: usize,
    /// Profiled time over all windows, in seconds.
    pub duration_seconds: f64,
    /// Stack records over all windows.
    pub samples: usize,
}

/// The comparison of one sample type (e.g. `cpu/nanoseconds`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SampleTypeComparison {
    /// What is measured.
    pub sample_type: SampleType,
    /// How the sides were made comparable.
    pub normalization: Normalization,
    /// Which noise was measured and how much.
    pub noise: NoiseFacts,
    /// The whole profile's value, per pod rate (per second, or per snapshot).
    pub total: Delta,
    /// Every function seen on either side.
    pub functions: Vec<FunctionDelta>,
    /// What was removed as the gate's own footprint before comparing.
    #[serde(default)]
    pub footprint: RemovedFootprint,
    /// For a level (live heap, goroutines): its growth across windows on each side, and the
    /// candidate's functions that climb.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub growth: Option<trend::GrowthComparison>,
}

/// The share of each side's profile that was the gate's own footprint (the profiling
/// machinery serving the capture), removed before comparing: 0 when nothing was removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RemovedFootprint {
    /// Removed over removed plus kept, summed over the baseline's pods and windows.
    pub baseline_share: f64,
    /// The same for the candidate.
    pub candidate_share: f64,
}

impl RemovedFootprint {
    /// Whether anything was removed on either side.
    pub fn any(&self) -> bool {
        self.baseline_share > 0.0 || self.candidate_share > 0.0
    }
}

/// How the sides were normalised.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Normalization {
    /// The method used (median-ratio falls back to total when too few functions qualify).
    pub method: Normalize,
    /// Sum of the baseline pods' size factors.
    pub baseline_exposure: f64,
    /// Sum of the candidate pods' size factors.
    pub candidate_exposure: f64,
    /// Each pod's size factor, baseline pods first.
    pub size_factors: Vec<(String, f64)>,
    /// Why the method differs from the one asked for, if it does.
    pub note: Option<String>,
}

/// The noise sources a comparison measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NoiseFacts {
    /// How per-function estimates were tested.
    pub model: NoiseModel,
    /// The pooled between-pod dispersion phi (variance mu + phi mu^2), when measured; with one
    /// pod a side, estimated across the two pods as if they were replicates.
    pub dispersion: Option<f64>,
    /// Degrees of freedom behind `dispersion`.
    pub dispersion_df: f64,
    /// Functions that `dispersion` was estimated from.
    pub dispersion_functions: usize,
    /// How far windows of one pod disagree in their mix of work beyond sampling noise (Pearson
    /// chi2/df of each function against its window's total, at least 1).
    pub window_dispersion: Option<f64>,
    /// p-value of the windows' agreement; tiny when the load was not steady.
    pub window_p_value: Option<f64>,
    /// A warning when windows disagree far beyond sampling noise.
    pub stationarity_warning: Option<String>,
    /// Plain words on which sources of noise were measured.
    pub measured: Vec<String>,
    /// Plain words on which were not.
    pub not_measured: Vec<String>,
}

/// How per-function estimates were tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoiseModel {
    /// Overdispersed Poisson with the dispersion measured between pods.
    BetweenPods,
    /// One pod per side: exact binomial on sampling noise, widened by window spread and by a
    /// pod-to-pod dispersion estimated blind (both pods as replicates).
    SamplingOnly,
    /// Exact counts (goroutines): Welch's test between pods, or between windows for one pod.
    ExactCounts,
}

/// One function's flat and cumulative comparison.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FunctionDelta {
    /// Function name.
    pub name: String,
    /// Its own value (innermost frame).
    pub flat: Delta,
    /// Its value with everything it calls.
    pub cum: Delta,
    /// How many frames above the leaf it sits, on average over the samples holding it (both
    /// sides): of two functions on one chain, the deeper has the smaller distance.
    #[serde(default)]
    pub leaf_distance: f64,
}

/// Where a function appears.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// On both sides.
    Both,
    /// Only in the candidate.
    New,
    /// Only in the baseline.
    Vanished,
    /// On neither side (for this metric).
    Neither,
}

/// One value compared between the sides, with every number the verdict may use.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delta {
    /// Baseline value over all pods (windows summed; averaged for snapshots).
    pub baseline: f64,
    /// Candidate value, likewise.
    pub candidate: f64,
    /// Baseline value per pod: what a pod shows, for people to read.
    pub baseline_per_pod: f64,
    /// Candidate value per pod.
    pub candidate_per_pod: f64,
    /// Share of the baseline total.
    pub baseline_share: f64,
    /// Share of the candidate total.
    pub candidate_share: f64,
    /// Sampled events behind the baseline value (CPU samples, heap samples, contentions).
    pub baseline_events: f64,
    /// Sampled events behind the candidate value.
    pub candidate_events: f64,
    /// Where the function appears.
    pub presence: Presence,
    /// Whether the share is above the minimum on either side, so the delta is tested.
    pub tested: bool,
    /// The ratio and its noise, when both sides have it.
    pub estimate: Option<Estimate>,
}

impl Delta {
    /// Candidate minus baseline, per pod.
    pub fn change_per_pod(&self) -> f64 {
        self.candidate_per_pod - self.baseline_per_pod
    }

    /// Candidate share minus baseline share.
    pub fn share_change(&self) -> f64 {
        self.candidate_share - self.baseline_share
    }
}

/// Compares every profile kind present on both sides.
///
/// Kinds present on only one side are reported as errors only when nothing at all is common.
pub fn compare_kind(
    kind: ProfileKind,
    baseline: &[PodProfiles],
    candidate: &[PodProfiles],
    options: &CompareOptions,
) -> Result<KindComparison, CompareError> {
    if baseline.iter().all(|p| p.windows.is_empty()) {
        return Err(CompareError::MissingSide {
            kind,
            side: "baseline",
        });
    }
    if candidate.iter().all(|p| p.windows.is_empty()) {
        return Err(CompareError::MissingSide {
            kind,
            side: "candidate",
        });
    }
    let baseline: Vec<&PodProfiles> = baseline.iter().filter(|p| !p.windows.is_empty()).collect();
    let candidate: Vec<&PodProfiles> = candidate.iter().filter(|p| !p.windows.is_empty()).collect();
    let sample_types = check_sample_types(
        kind,
        baseline
            .iter()
            .map(|p| ("baseline", *p))
            .chain(candidate.iter().map(|p| ("candidate", *p))),
    )?;

    let names = FunctionNames::build(baseline.iter().chain(&candidate).copied());
    let snapshot = kind.is_snapshot();
    let b: Vec<PodData> = baseline
        .iter()
        .map(|p| PodData::build(p, &names, snapshot))
        .collect();
    let c: Vec<PodData> = candidate
        .iter()
        .map(|p| PodData::build(p, &names, snapshot))
        .collect();

    let sample_types = (0..sample_types.len())
        .map(|st| SampleTypeComparison {
            growth: trend::compare_growth(kind, &sample_types[st].name, &baseline, &candidate),
            ..compare_sample_type(kind, &sample_types, st, &names.names, &b, &c, options)
        })
        .collect();

    Ok(KindComparison {
        kind,
        label: None,
        filter: None,
        baseline: side_facts(&b),
        candidate: side_facts(&c),
        sample_types,
    })
}

/// Function `f`'s mean distance from the leaf over every window of these pods.
fn mean_leaf_distance<'a>(pods: impl Iterator<Item = &'a PodData>, f: usize) -> f64 {
    let (d, n) = pods.fold((0u64, 0u64), |(d, n), p| {
        let (pd, pn) = p.leaf_distance[f];
        (d + pd, n + pn)
    });
    if n > 0 {
        d as f64 / n as f64
    } else {
        0.0
    }
}

fn side_facts(pods: &[PodData]) -> SideFacts {
    SideFacts {
        pods: pods
            .iter()
            .map(|p| PodFacts {
                name: p.name.clone(),
                windows: p.windows,
                duration_seconds: p.duration_seconds,
                samples: p.samples,
            })
            .collect(),
    }
}

fn check_sample_types<'a>(
    kind: ProfileKind,
    pods: impl Iterator<Item = (&'static str, &'a PodProfiles)>,
) -> Result<Vec<SampleType>, CompareError> {
    let mut expected: Option<&Vec<SampleType>> = None;
    let mut first = String::new();
    let list = |t: &[SampleType]| {
        t.iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (side, pod) in pods {
        for w in &pod.windows {
            match expected {
                None => {
                    expected = Some(&w.sample_types);
                    first = format!("{side} pod {}", pod.pod);
                }
                Some(e) if *e != w.sample_types => {
                    return Err(CompareError::SampleTypes {
                        kind,
                        side,
                        pod: pod.pod.clone(),
                        found: list(&w.sample_types),
                        first,
                        expected: list(e),
                    })
                }
                Some(_) => {}
            }
        }
    }
    Ok(expected.cloned().unwrap_or_default())
}

/// The union of function names over every profile, with each profile's mapping into it.
struct FunctionNames {
    names: Vec<String>,
    index: FxHashMap<String, usize>,
}

impl FunctionNames {
    fn build<'a>(pods: impl Iterator<Item = &'a PodProfiles>) -> Self {
        let mut names = Vec::new();
        let mut index = FxHashMap::default();
        for pod in pods {
            for w in &pod.windows {
                for name in &w.functions {
                    if !index.contains_key(name) {
                        index.insert(name.clone(), names.len());
                        names.push(name.clone());
                    }
                }
            }
        }
        FunctionNames { names, index }
    }

    fn global_indices(&self, profile: &FunctionProfile) -> Vec<usize> {
        profile.functions.iter().map(|n| self.index[n]).collect()
    }
}

/// One pod's values over the union of functions, windows combined.
struct PodData {
    name: String,
    windows: usize,
    duration_seconds: f64,
    samples: usize,
    /// Heap sampling period or CPU period, from the first window.
    period: i64,
    /// [sample type][function]
    flat: Vec<Vec<f64>>,
    cum: Vec<Vec<f64>>,
    totals: Vec<f64>,
    /// [sample type] values removed as the gate's own footprint, weighted as `totals`.
    footprint: Vec<f64>,
    /// [function] summed distance from the leaf and the samples it was summed over.
    leaf_distance: Vec<(u64, u64)>,
    /// Per window: [window][sample type][function] flat values, for the stationarity check.
    window_flat: Vec<Vec<Vec<f64>>>,
    window_totals: Vec<Vec<f64>>,
    window_seconds: Vec<f64>,
}

impl PodData {
    fn build(pod: &PodProfiles, names: &FunctionNames, snapshot: bool) -> Self {
        let n = names.names.len();
        let n_types = pod.windows[0].sample_types.len();
        let mut flat = vec![vec![0.0; n]; n_types];
        let mut cum = vec![vec![0.0; n]; n_types];
        let mut totals = vec![0.0; n_types];
        let mut footprint = vec![0.0; n_types];
        let mut leaf_distance = vec![(0u64, 0u64); n];
        let mut window_flat = Vec::with_capacity(pod.windows.len());
        let mut window_totals = Vec::with_capacity(pod.windows.len());
        let mut window_seconds = Vec::with_capacity(pod.windows.len());
        // Snapshots are averaged over windows: a pod's heap is not twice as big for being
        // looked at twice.
        let weight = if snapshot {
            1.0 / pod.windows.len() as f64
        } else {
            1.0
        };
        for w in &pod.windows {
            let global = names.global_indices(w);
            let mut wf = vec![vec![0.0; n]; n_types];
            for (local, &g) in global.iter().enumerate() {
                if let Some(&(d, k)) = w.leaf_distance.get(local) {
                    leaf_distance[g] = (leaf_distance[g].0 + d, leaf_distance[g].1 + k);
                }
                for st in 0..n_types {
                    let fv = w.flat(local, st) as f64;
                    flat[st][g] += fv * weight;
                    cum[st][g] += w.cum(local, st) as f64 * weight;
                    wf[st][g] = fv;
                }
            }
            for (st, t) in totals.iter_mut().enumerate() {
                *t += w.totals[st] as f64 * weight;
            }
            for (st, r) in footprint.iter_mut().enumerate() {
                *r += w.footprint.get(st).copied().unwrap_or(0) as f64 * weight;
            }
            window_flat.push(wf);
            window_totals.push(w.totals.iter().map(|&t| t as f64).collect());
            window_seconds.push(w.duration_nanos.max(0) as f64 / 1e9);
        }
        PodData {
            name: pod.pod.clone(),
            windows: pod.windows.len(),
            duration_seconds: window_seconds.iter().sum(),
            samples: pod.windows.iter().map(|w| w.sample_count).sum(),
            period: pod.windows[0].period,
            flat,
            cum,
            totals,
            footprint,
            leaf_distance,
            window_flat,
            window_totals,
            window_seconds,
        }
    }
}

/// Which column counts the sampled events behind a sample type, and at what scale.
///
/// Noise follows the number of sampling events, not the unit: 1 s of CPU is 100 samples at
/// 100 Hz, 1 MiB of heap is about 2 samples at Go's 512 KiB rate.
#[derive(Debug, Clone, Copy)]
struct EventColumn {
    index: usize,
    scale: f64,
    /// The values are exact counts, not samples (goroutines).
    exact: bool,
}

fn event_column(kind: ProfileKind, types: &[SampleType], st: usize, period: i64) -> EventColumn {
    let find = |name: &str| types.iter().position(|t| t.name == name);
    let per_period = if period > 0 { 1.0 / period as f64 } else { 1.0 };
    let t = &types[st];
    let own = EventColumn {
        index: st,
        scale: 1.0,
        exact: false,
    };
    match (kind, t.name.as_str()) {
        (ProfileKind::Goroutine, _) => EventColumn { exact: true, ..own },
        (ProfileKind::Cpu, _) => match find("samples") {
            Some(index) => EventColumn { index, ..own },
            None => EventColumn {
                scale: per_period,
                ..own
            },
        },
        (ProfileKind::Heap | ProfileKind::Allocs, name)
            if t.unit == "bytes" || name.ends_with("_space") =>
        {
            EventColumn {
                scale: heap_period_scale(period),
                ..own
            }
        }
        (ProfileKind::Heap | ProfileKind::Allocs, name) => {
            // Objects come from the same samples as bytes: count the events through bytes.
            let space = name.replace("_objects", "_space");
            match find(&space) {
                Some(index) => EventColumn {
                    index,
                    scale: heap_period_scale(period),
                    exact: false,
                },
                None => own,
            }
        }
        // Go scales a mutex profile's contentions by its sampling fraction but writes a period
        // of 1, so the fraction cannot be divided out here: the events are overcounted by it,
        // which is why waiting totals also need a floor (policy::evaluate).
        (ProfileKind::Mutex | ProfileKind::Block, _) => match find("contentions") {
            Some(index) => EventColumn { index, ..own },
            None => own,
        },
    }
}

/// Go samples the heap once per `MemProfileRate` bytes (512 KiB unless changed).
fn heap_period_scale(period: i64) -> f64 {
    1.0 / if period > 0 { period as f64 } else { 524_288.0 }
}

/// Functions whose events make a between-pod dispersion estimate meaningful.
const DISPERSION_MIN_EVENTS: f64 = 20.0;
/// The same with one pod a side, lower: each function's own estimate is a quantile-unbiased
/// one whatever its size, and a small service has only a handful of functions above 20 events
/// a pod (nine in a minute of the example service at a quarter of a core), of which a
/// regression and the functions it disturbs are too many; above 5 there are two dozen.
const BLIND_DISPERSION_MIN_EVENTS: f64 = 5.0;
/// Functions whose every pod has this many events anchor the median-ratio normalisation.
const NORMALIZE_MIN_EVENTS: f64 = 5.0;
/// Fewer anchoring functions than this and median-ratio falls back to totals.
const NORMALIZE_MIN_FUNCTIONS: usize = 5;
/// The quantile of the functions' own dispersion estimates taken as the pooled one, within
/// sides: the median, so that fewer than half the functions (a few noisy ones) cannot move it
/// however large they are. Each function is still judged by its own spread where that is
/// larger (`DeltaEstimator::function_dispersion`).
const DISPERSION_QUANTILE: f64 = 0.5;
/// The same with one pod a side, where the two pods are taken as replicates: the upper
/// quartile, so that the few functions a regression changes still cannot move it.
const BLIND_DISPERSION_QUANTILE: f64 = 0.75;
/// With one pod a side, the factor on the pooled dispersion that covers functions noisier
/// than the typical one. There a function's own spread cannot be told from a change, and the
/// functions of a real service differ in how much they vary between pods. Measured in
/// `cargo bench --bench statistics`: with functions differing 20-fold (phi 0.005-0.1), A/A
/// runs failed 4.8% of the time with the upper quartile alone and 1.0% with it doubled (the
/// moment estimate of before: 2.9%); at the noise measured between real processes, doubling
/// costs a doubling at 5% of CPU about one detection in ten.
const BLIND_HETEROGENEITY: f64 = 2.0;
/// Prior weight (degrees of freedom) of the pooled dispersion when shrinking per function.
const DISPERSION_PRIOR_DF: f64 = 10.0;

#[allow(clippy::too_many_arguments)]
fn compare_sample_type(
    kind: ProfileKind,
    types: &[SampleType],
    st: usize,
    names: &[String],
    b: &[PodData],
    c: &[PodData],
    options: &CompareOptions,
) -> SampleTypeComparison {
    let period = b[0].period;
    let ev = event_column(kind, types, st, period);
    let all: Vec<&PodData> = b.iter().chain(c).collect();

    // Event counts per pod for the flat values: the basis of normalisation and dispersion.
    let events = |p: &PodData, cum: bool| -> Vec<f64> {
        let col = if cum {
            &p.cum[ev.index]
        } else {
            &p.flat[ev.index]
        };
        col.iter().map(|v| v * ev.scale).collect()
    };
    let flat_events: Vec<Vec<f64>> = all.iter().map(|p| events(p, false)).collect();
    let cum_events: Vec<Vec<f64>> = all.iter().map(|p| events(p, true)).collect();

    let normalization = normalize(options.normalize, kind, &all, b.len(), st, &flat_events);
    let factors: Vec<f64> = normalization.size_factors.iter().map(|(_, f)| *f).collect();
    let (fb, fc) = factors.split_at(b.len());

    let multi_pod = b.len() >= 2 || c.len() >= 2;
    let exact = ev.exact;
    let windows = window_dispersion(&all, ev, kind.is_snapshot());
    let window_factor = windows.as_ref().map(|w| w.factor).unwrap_or(1.0);
    // With one pod a side the pod-to-pod spread cannot be measured within a side, but it is
    // there: each function's share differs between two pods of the same build by more than
    // sampling noise, and windows of one pod cannot see it. Ignoring it made about one A/A
    // run in five fail on a single pod. So the two pods are taken as replicates of each other
    // ("blind", as DESeq does without replicates): with most functions unchanged this measures
    // the spread, and a robust estimate keeps the few that changed from setting it.
    let dispersion = if exact {
        None
    } else {
        estimate_dispersion(&flat_events, fb.len(), &factors, !multi_pod)
    };
    let model = if exact {
        NoiseModel::ExactCounts
    } else if multi_pod {
        NoiseModel::BetweenPods
    } else {
        NoiseModel::SamplingOnly
    };

    let side_total = |pods: &[PodData]| pods.iter().map(|p| p.totals[st]).sum::<f64>();
    let (tb, tc) = (side_total(b), side_total(c));
    let ctx = DeltaEstimator {
        model,
        phi: dispersion.map(|d| d.phi).unwrap_or(0.0),
        window_factor,
        fb,
        fc,
        min_share: options.min_share,
    };

    let mut scratch = Scratch::default();
    let functions = names
        .iter()
        .enumerate()
        .map(|(f, name)| {
            let flat = ctx.delta(
                &mut scratch,
                b.iter().map(|p| p.flat[st][f]),
                c.iter().map(|p| p.flat[st][f]),
                flat_events.iter().map(|e| e[f]),
                (tb, tc),
            );
            let cum = ctx.delta(
                &mut scratch,
                b.iter().map(|p| p.cum[st][f]),
                c.iter().map(|p| p.cum[st][f]),
                cum_events.iter().map(|e| e[f]),
                (tb, tc),
            );
            FunctionDelta {
                name: name.clone(),
                flat,
                cum,
                leaf_distance: mean_leaf_distance(b.iter().chain(c), f),
            }
        })
        .collect();

    let load_factor = window_load_factor(&all, ev, kind.is_snapshot());
    let total = total_delta(kind, st, ev, b, c, load_factor);

    let mut measured = Vec::new();
    let mut not_measured = Vec::new();
    if let Some(untimed) = all.iter().find(|p| !kind.is_snapshot() && !timed(p)) {
        not_measured.push(format!(
            "rates per second: pod {} has no duration (duration_nanos 0), so totals are compared per pod, as if every window were as long",
            untimed.name
        ));
    }
    match model {
        NoiseModel::BetweenPods => {
            measured.push(format!(
                "sampling noise, and pod-to-pod spread (dispersion {:.3} from {} functions)",
                ctx.phi,
                dispersion.map(|d| d.functions).unwrap_or(0)
            ));
        }
        NoiseModel::SamplingOnly => {
            measured.push("sampling noise".to_owned());
            match dispersion {
                Some(d) => measured.push(format!(
                    "pod-to-pod spread, roughly: the two pods taken as replicates (dispersion {:.3}: twice the upper quartile over {} functions, so that the few that changed do not set it and the noisier ones are covered)",
                    d.phi, d.functions
                )),
                None => not_measured.push(
                    "pod-to-pod spread: one pod per side and too few well-sampled functions; run more pods to measure it".to_owned(),
                ),
            }
            not_measured.push(
                "pod-to-pod spread of the total and of single functions: one pod per side; run more pods to measure it".to_owned(),
            );
        }
        NoiseModel::ExactCounts => {
            measured
                .push("spread of exact counts between pods (or windows, for one pod)".to_owned());
        }
    }
    match &windows {
        Some(w) => measured.push(format!(
            "window-to-window spread within pods ({:.2}x sampling noise)",
            w.factor
        )),
        None => not_measured.push("window-to-window spread: one window per pod".to_owned()),
    }

    SampleTypeComparison {
        sample_type: types[st].clone(),
        normalization,
        noise: NoiseFacts {
            model,
            dispersion: dispersion.map(|d| d.phi),
            dispersion_df: dispersion.map(|d| d.df).unwrap_or(0.0),
            dispersion_functions: dispersion.map(|d| d.functions).unwrap_or(0),
            window_dispersion: windows.as_ref().map(|w| w.factor),
            window_p_value: windows.as_ref().map(|w| w.p_value),
            stationarity_warning: windows.and_then(|w| w.warning),
            measured,
            not_measured,
        },
        total,
        functions,
        footprint: RemovedFootprint {
            baseline_share: removed_share(b, st),
            candidate_share: removed_share(c, st),
        },
        growth: None,
    }
}

/// The share of a side's raw values of sample type `st` that was the gate's footprint.
fn removed_share(pods: &[PodData], st: usize) -> f64 {
    let removed: f64 = pods.iter().map(|p| p.footprint[st]).sum();
    let kept: f64 = pods.iter().map(|p| p.totals[st]).sum();
    if removed > 0.0 && removed + kept > 0.0 {
        removed / (removed + kept)
    } else {
        0.0
    }
}

/// Buffers reused across functions, so the per-function loop does not allocate.
#[derive(Default)]
struct Scratch {
    bv: Vec<f64>,
    cv: Vec<f64>,
    ev: Vec<f64>,
}

/// Per-side constants used to turn per-pod values into a [`Delta`].
struct DeltaEstimator<'a> {
    model: NoiseModel,
    phi: f64,
    window_factor: f64,
    fb: &'a [f64],
    fc: &'a [f64],
    min_share: f64,
}

impl DeltaEstimator<'_> {
    fn delta(
        &self,
        scratch: &mut Scratch,
        b: impl Iterator<Item = f64>,
        c: impl Iterator<Item = f64>,
        events: impl Iterator<Item = f64>,
        (tb, tc): (f64, f64),
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
            self.estimate(bv, cv, eb, ec)
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
            estimate,
        }
    }

    fn estimate(&self, bv: &[f64], cv: &[f64], eb: &[f64], ec: &[f64]) -> Option<Estimate> {
        let (eb_sum, ec_sum) = (self.fb.iter().sum::<f64>(), self.fc.iter().sum::<f64>());
        let rate = |x: &[f64], e: f64| x.iter().sum::<f64>() / e;
        let ratio = rate(cv, ec_sum) / rate(bv, eb_sum);
        if !ratio.is_finite() || ratio <= 0.0 {
            return None;
        }
        let noise = match self.model {
            NoiseModel::ExactCounts => exact_counts_noise(bv, cv, self.fb, self.fc)?,
            NoiseModel::SamplingOnly => {
                // Events are shrunk so that the binomial's variance of log theta,
                // about 1/k + 1/(n - k), matches c (1/nb + 1/nc) + 2 phi: window spread and
                // the (blind) pod-to-pod dispersion, which no count of events averages away.
                let nb: f64 = eb.iter().sum();
                let nc: f64 = ec.iter().sum();
                let poisson = 1.0 / nb.max(0.5) + 1.0 / nc.max(0.5);
                let c = self.window_factor.max(1.0) + 2.0 * self.phi / poisson;
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
                let var = self.window_factor.max(1.0) * (1.0 / nb + 1.0 / nc)
                    + phi * (weight(self.fb) + weight(self.fc));
                Noise::LogT {
                    se: var.sqrt(),
                    df: f64::INFINITY,
                }
            }
        };
        Some(Estimate { ratio, noise })
    }

    /// The pooled dispersion, raised towards this function's own spread when that is larger:
    /// a function noisier than the rest must not be judged by the others' calm.
    fn function_dispersion(&self, eb: &[f64], ec: &[f64]) -> f64 {
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
                let shrunk = (DISPERSION_PRIOR_DF * self.phi + own.df * own.phi)
                    / (DISPERSION_PRIOR_DF + own.df);
                shrunk.max(self.phi)
            }
            _ => self.phi,
        }
    }
}

/// Welch's test on per-pod log values: for exact counts (goroutines) and totals.
fn exact_counts_noise(bv: &[f64], cv: &[f64], fb: &[f64], fc: &[f64]) -> Option<Noise> {
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
fn floored(w: stats::Welch, floor: f64) -> Noise {
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
fn count_floor(bv: &[f64], cv: &[f64]) -> f64 {
    let (nb, nc): (f64, f64) = (bv.iter().sum(), cv.iter().sum());
    (1.0 / nb.max(0.5) + 1.0 / nc.max(0.5)).sqrt()
}

/// How much the windows' totals of one pod vary beyond sampling noise, per second of profiled
/// time (Pearson chi2/df pooled over pods, at least 1): the load swings that widen the total's
/// test when there is one pod a side.
fn window_load_factor(pods: &[&PodData], ev: EventColumn, snapshot: bool) -> f64 {
    if ev.exact || snapshot {
        return 1.0;
    }
    let parts: Vec<(f64, f64)> = pods
        .iter()
        .filter(|p| p.windows >= 2)
        .filter_map(|p| {
            let counts: Vec<f64> = p
                .window_totals
                .iter()
                .map(|t| t[ev.index] * ev.scale)
                .collect();
            stats::pearson_dispersion(&counts, &p.window_seconds)
        })
        .collect();
    stats::pooled_pearson(&parts).map_or(1.0, |w| w.factor)
}

/// The total as a per-pod rate (per second for windows over time, per snapshot for snapshots),
/// tested with Welch between pods, or with sampling noise widened by the windows' load swings
/// (`load_factor`) for one pod a side.
fn total_delta(
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
        estimate,
    }
}

/// Whether a pod's profiles say how long they cover (every window a positive duration).
fn timed(p: &PodData) -> bool {
    !p.window_seconds.is_empty() && p.window_seconds.iter().all(|&s| s > 0.0)
}

/// Size factors per pod (baseline pods first) for the asked method.
fn normalize(
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
    }
}

/// Scales positive values so that their geometric mean is 1 (zeros become tiny, not zero).
fn geometric_normalised(v: &[f64]) -> Vec<f64> {
    let logs: Vec<f64> = v.iter().map(|x| x.max(1e-12).ln()).collect();
    let mean = logs.iter().sum::<f64>() / logs.len().max(1) as f64;
    logs.iter().map(|l| (l - mean).exp()).collect()
}

/// DESeq2's median-of-ratios size factors over functions well sampled in every pod.
fn median_ratio(pods: &[&PodData], st: usize, flat_events: &[Vec<f64>]) -> Option<Vec<f64>> {
    let n = pods.first()?.flat[st].len();
    let anchors: Vec<usize> = (0..n)
        .filter(|&f| {
            flat_events.iter().all(|e| e[f] >= NORMALIZE_MIN_EVENTS)
                && pods.iter().all(|p| p.flat[st][f] > 0.0)
        })
        .collect();
    if anchors.len() < NORMALIZE_MIN_FUNCTIONS {
        return None;
    }
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

/// The pooled between-pod dispersion over well-sampled functions: within each side, or with
/// `blind` (one pod a side) across the two pods as if they were replicates.
///
/// The median of the functions' own estimates ([`stats::robust_dispersion`]), not a
/// count-weighted moment: blind, a regressed function is spread between the "replicates", and
/// as a moment it inflated the noise of every function the more, the larger the regression
/// (phi 0.02-0.03 in one-pod 2x runs of a real service against at most 0.009 in A/A runs), so
/// detection fell as the effect grew. Within sides, one big noisy function no longer sets
/// every function's noise; it still gets its own through [`DeltaEstimator::function_dispersion`].
/// With one canary beside several stable pods the spread comes from the stable pods alone.
///
/// Only the Poisson part is taken out, so phi holds every other source of spread between
/// pods' sums, the windows' included; the tests add the window factor on top of the Poisson
/// part as well, which counts window spread twice but only where it is small next to phi.
/// (Taking `c mu` out instead fitted this simulation's per-function window noise, which grows
/// like mu^2, worse: phi came out 20% low for the large functions that matter.)
fn estimate_dispersion(
    flat_events: &[Vec<f64>],
    n_baseline: usize,
    factors: &[f64],
    blind: bool,
) -> Option<stats::DispersionEstimate> {
    let n = flat_events.first()?.len();
    let column = |rows: &[Vec<f64>], f: usize| rows.iter().map(|e| e[f]).collect::<Vec<f64>>();
    let columns: Vec<(Vec<f64>, Vec<f64>)> = if blind {
        (0..n)
            .map(|f| (column(flat_events, f), factors.to_vec()))
            .collect()
    } else {
        let (eb, ec) = flat_events.split_at(n_baseline);
        let (fb, fc) = factors.split_at(n_baseline);
        (0..n)
            .flat_map(|f| [column(eb, f), column(ec, f)])
            .zip([fb, fc].into_iter().cycle())
            .map(|(counts, f)| (counts, f.to_vec()))
            .collect()
    };
    let groups: Vec<stats::DispersionGroup<'_>> = columns
        .iter()
        .map(|(counts, exposures)| stats::DispersionGroup { counts, exposures })
        .collect();
    if blind {
        stats::robust_dispersion(
            &groups,
            BLIND_DISPERSION_MIN_EVENTS,
            BLIND_DISPERSION_QUANTILE,
        )
        .map(|d| stats::DispersionEstimate {
            phi: d.phi * BLIND_HETEROGENEITY,
            ..d
        })
    } else {
        stats::robust_dispersion(&groups, DISPERSION_MIN_EVENTS, DISPERSION_QUANTILE)
    }
}

/// How the windows of one pod agree, pooled over pods and well-sampled functions.
struct WindowAgreement {
    factor: f64,
    p_value: f64,
    warning: Option<String>,
}

fn window_dispersion(
    pods: &[&PodData],
    ev: EventColumn,
    snapshot: bool,
) -> Option<WindowAgreement> {
    if ev.exact || snapshot {
        // Snapshots of one process are not independent samples; their spread is not noise.
        return None;
    }
    let mut chi2 = 0.0;
    let mut df = 0.0;
    for p in pods.iter().filter(|p| p.windows >= 2) {
        // Against each window's total, not its seconds: a pod-wide swing of load between
        // windows moves every function alike and cancels in the normalised per-function
        // ratios this factor widens; counted here it inflated the factor (1.46 instead of
        // about 1.25 with 5% load swings between windows). Load swings matter for the total,
        // which has its own factor (`window_load_factor`).
        let exposures: Vec<f64> = if p.window_totals.iter().all(|t| t[ev.index] > 0.0) {
            p.window_totals.iter().map(|t| t[ev.index]).collect()
        } else {
            p.window_seconds.iter().map(|s| s.max(1e-9)).collect()
        };
        let n = p.window_flat[0][ev.index].len();
        for f in 0..n {
            let counts: Vec<f64> = p
                .window_flat
                .iter()
                .map(|w| w[ev.index][f] * ev.scale)
                .collect();
            let mean = counts.iter().sum::<f64>() / counts.len() as f64;
            if mean < DISPERSION_MIN_EVENTS {
                continue;
            }
            if let Some((c, d)) = stats::pearson_dispersion(&counts, &exposures) {
                chi2 += c;
                df += d;
            }
        }
    }
    if df <= 0.0 {
        return None;
    }
    let ratio = chi2 / df;
    let p_value = stats::chi_squared_sf(chi2, df);
    let warning = (p_value < 1e-3 && ratio > 2.0).then(|| {
        format!(
            "load was not steady: the mix of work in windows of the same pod differs {ratio:.1}x more than sampling noise explains; results are widened accordingly"
        )
    });
    Some(WindowAgreement {
        factor: ratio.max(1.0),
        p_value,
        warning,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One CPU window of 60 s with these per-function sample counts.
    fn window(counts: &[i64]) -> FunctionProfile {
        let types = super::simulation::cpu_sample_types();
        let names = (0..counts.len()).map(|i| format!("pkg.f{i}")).collect();
        let rows: Vec<Vec<i64>> = counts.iter().map(|&c| vec![c, c * 10_000_000]).collect();
        FunctionProfile::from_values(
            ProfileKind::Cpu,
            types,
            names,
            rows.clone(),
            rows,
            10_000_000,
            60_000_000_000,
        )
        .unwrap()
    }

    #[test]
    fn one_pod_a_side_counts_the_spread_between_the_two_pods() {
        // 60 functions of 2,000 samples; the candidate pod differs by +/-15% per function, as
        // two pods of the same build do. Sampling noise alone (se 0.03) would call the +15%
        // ones clearly above 1.0; with the pods' spread measured blind they are not.
        let base: Vec<i64> = vec![2000; 60];
        let cand: Vec<i64> = (0..60)
            .map(|i| if i % 2 == 0 { 2300 } else { 1700 })
            .collect();
        let pod = |name: &str, c: &[i64]| PodProfiles {
            pod: name.into(),
            windows: vec![window(c)],
        };
        let k = compare_kind(
            ProfileKind::Cpu,
            &[pod("stable", &base)],
            &[pod("canary", &cand)],
            &CompareOptions::default(),
        )
        .unwrap();
        let st = &k.sample_types[1];
        assert_eq!(st.noise.model, NoiseModel::SamplingOnly);
        // The median-ratio leaves log ratios of about +/-0.15: phi about 0.01.
        let phi = st.noise.dispersion.expect("blind dispersion");
        assert!((0.005..0.02).contains(&phi), "{phi}");
        let up = st.functions[0].flat.estimate.unwrap();
        assert!(up.ratio > 1.1, "{}", up.ratio);
        assert!(up.p_above(1.0) > 0.01, "{}", up.p_above(1.0));
        assert!(st.noise.measured.iter().any(|m| m.contains("pod-to-pod")));
    }

    #[test]
    fn window_factor_ignores_load_swings_shared_by_every_function() {
        // Two windows of one pod: the second carries 30% more load, the mix is identical.
        let w1: Vec<i64> = vec![500; 40];
        let w2: Vec<i64> = vec![650; 40];
        let pod = |name: &str| PodProfiles {
            pod: name.into(),
            windows: vec![window(&w1), window(&w2)],
        };
        let k = compare_kind(
            ProfileKind::Cpu,
            &[pod("stable")],
            &[pod("canary")],
            &CompareOptions::default(),
        )
        .unwrap();
        let noise = &k.sample_types[1].noise;
        assert_eq!(noise.window_dispersion, Some(1.0));
        assert!(noise.stationarity_warning.is_none());
    }

    /// Goroutine snapshots of two pods a side, three windows each, every pod the same.
    fn goroutine_pods(count: i64) -> Vec<PodProfiles> {
        let types = vec![SampleType {
            name: "goroutine".into(),
            unit: "count".into(),
        }];
        let snapshot = || {
            FunctionProfile::from_values(
                ProfileKind::Goroutine,
                types.clone(),
                vec!["main.main".into(), "main.worker".into()],
                vec![vec![1], vec![count - 1]],
                vec![vec![1], vec![count - 1]],
                0,
                0,
            )
            .unwrap()
        };
        (0..2)
            .map(|p| PodProfiles {
                pod: format!("pod-{p}"),
                windows: vec![snapshot(), snapshot(), snapshot()],
            })
            .collect()
    }

    #[test]
    fn one_more_goroutine_on_every_candidate_pod_is_not_a_certain_rise() {
        // 8 -> 9 goroutines on every pod: Welch sees no spread at all, but one goroutine is
        // what a connection still closing at snapshot time adds.
        let k = compare_kind(
            ProfileKind::Goroutine,
            &goroutine_pods(8),
            &goroutine_pods(9),
            &CompareOptions::default(),
        )
        .unwrap();
        let total = k.sample_types[0].total.estimate.unwrap();
        assert!((total.ratio - 9.0 / 8.0).abs() < 1e-9, "{}", total.ratio);
        assert!(total.p_above(1.10) > 0.3, "{}", total.p_above(1.10));
    }

    #[test]
    fn a_rise_of_hundreds_of_goroutines_on_every_pod_is_certain() {
        let k = compare_kind(
            ProfileKind::Goroutine,
            &goroutine_pods(2000),
            &goroutine_pods(2600),
            &CompareOptions::default(),
        )
        .unwrap();
        let total = k.sample_types[0].total.estimate.unwrap();
        assert!(total.lower(0.001) > 1.2, "{}", total.lower(0.001));
    }

    /// One pod a side, 60 functions of about 2,000 samples whose candidate differs by 2-8%
    /// either way (as two pods of one build do), and function 0 made `factor` times slower.
    fn one_pod_a_side_with(factor: f64) -> SampleTypeComparison {
        let base: Vec<i64> = vec![2000; 60];
        let cand: Vec<i64> = (0..60)
            .map(|i| {
                let d = 0.02 + 0.001 * i as f64;
                let spread = if i % 2 == 0 { 1.0 + d } else { 1.0 - d };
                let planted = if i == 0 { factor } else { 1.0 };
                (2000.0 * spread * planted).round() as i64
            })
            .collect();
        let pod = |name: &str, c: &[i64]| PodProfiles {
            pod: name.into(),
            windows: vec![window(c)],
        };
        let k = compare_kind(
            ProfileKind::Cpu,
            &[pod("stable", &base)],
            &[pod("canary", &cand)],
            &CompareOptions::default(),
        )
        .unwrap();
        k.sample_types[1].clone()
    }

    #[test]
    fn with_one_pod_a_side_a_regression_does_not_raise_its_own_noise() {
        let aa = one_pod_a_side_with(1.0);
        let phi = aa.noise.dispersion.unwrap();
        let mut last_p = 1.0;
        for factor in [1.5, 2.0, 3.0, 5.0, 10.0] {
            let st = one_pod_a_side_with(factor);
            // The planted function is one of 60: the upper quartile of the functions' own
            // estimates moves by a rank at most.
            let with = st.noise.dispersion.unwrap();
            assert!(with <= phi * 1.1, "x{factor}: phi {phi} -> {with}");
            // And the evidence only grows with the effect.
            let e = st.functions[0].flat.estimate.unwrap();
            let p = e.p_above(1.2);
            assert!(p <= last_p, "x{factor}: p {p} after {last_p}");
            last_p = p;
            if factor >= 2.0 {
                assert!(e.lower(0.001) > 1.2, "x{factor}: {}", e.lower(0.001));
            }
        }
    }

    /// Mutex profiles of three pods a side, 10 s each: `delays[p]` nanoseconds of delay from
    /// `contentions[p]` events in pod p, all in one function.
    fn mutex_side(contentions: [i64; 3], delays: [i64; 3]) -> Vec<PodProfiles> {
        let types = vec![
            SampleType {
                name: "contentions".into(),
                unit: "count".into(),
            },
            SampleType {
                name: "delay".into(),
                unit: "nanoseconds".into(),
            },
        ];
        (0..3)
            .map(|p| {
                let rows = vec![vec![contentions[p], delays[p]]];
                PodProfiles {
                    pod: format!("pod-{p}"),
                    windows: vec![FunctionProfile::from_values(
                        ProfileKind::Mutex,
                        types.clone(),
                        vec!["sync.(*Mutex).Unlock".into()],
                        rows.clone(),
                        rows,
                        1,
                        10_000_000_000,
                    )
                    .unwrap()],
                }
            })
            .collect()
    }

    #[test]
    fn a_pod_without_contention_does_not_make_a_total_unbreakable() {
        // One baseline pod saw no contention at all; the candidate's delay is ~550x. The log
        // of that pod's zero once made the interval [0, inf).
        let k = compare_kind(
            ProfileKind::Mutex,
            &mutex_side([0, 5, 4], [0, 50_000, 40_000]),
            &mutex_side([900, 1000, 950], [24_000_000, 25_000_000, 26_000_000]),
            &CompareOptions::default(),
        )
        .unwrap();
        let delay = k.sample_types[1].total.estimate.unwrap();
        assert!(
            (delay.ratio - 25_000_000.0 / 30_000.0).abs() < 1.0,
            "{}",
            delay.ratio
        );
        assert!(delay.lower(0.001) > 5.0, "{}", delay.lower(0.001));
        assert!(delay.upper(0.001).is_finite());
    }
}

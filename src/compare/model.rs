//! The comparison's types: what `compare` returns, one kind, one sample type, one function.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{trend, Estimate};
use crate::profile::{ProfileKind, SampleType};

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

impl crate::errors::Classified for CompareError {
    fn class(&self) -> crate::errors::FailureClass {
        // The sides given cannot be compared as they are.
        crate::errors::FailureClass::BadInput
    }
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
    /// With one pod a side under median-ratio, the variance of the log of the two pods'
    /// size-factor ratio: the median of a few functions' ratios is itself uncertain, and every
    /// function's ratio carries that uncertainty. Added to each function's noise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level_variance: Option<f64>,
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
    /// With several pods on a side, the dispersion of functions under 20 events a pod, when it
    /// is above `dispersion`: their tests use it instead. Small frames can vary between
    /// processes far more than the large ones (inlined leaves of a hot loop, in the example
    /// Rust service), and judged by the large ones' calm they failed A/A runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub small_function_dispersion: Option<f64>,
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
    /// Function name, shared by the comparison's sample types (one allocation per name, not
    /// one per function and sample type: 46,000 on google/pprof's large.cpu).
    pub name: Arc<str>,
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
    /// The ratio and its noise, when both sides have it and the function is tested. Boxed,
    /// like the spread below: most functions have neither, and a large profile's comparison
    /// holds 46,000 deltas whose size is memory the process must fault in.
    pub estimate: Option<Box<Estimate>>,
    /// For a tested function only the candidate has: how unevenly its events fall across the
    /// candidate's pods and windows. Its share is judged at this spread when it is larger
    /// than the windows' usual one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate_spread: Option<Box<UnitSpread>>,
}

/// How much more one function's events vary across pods and windows than sampling explains.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UnitSpread {
    /// Pearson chi2/df against each unit's total events: about 1 for a function as steady as
    /// the rest, about its event count for a burst in one window.
    pub factor: f64,
    /// Its degrees of freedom: the pods' windows less one.
    pub df: f64,
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

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
//!
//! Layout: this file is the face ([`compare_kind`], one sample type at a time); [`model`] holds
//! the types it returns; `pods` lays each pod's values over the union of functions; `normalise`
//! makes the pods comparable; `dispersion` measures how they vary beyond sampling; `delta`
//! turns per-pod values into a [`Delta`]; [`estimate`], [`margin`] and [`stats`] answer the
//! threshold questions; [`trend`] fits growth across windows; [`summary`] reduces one pod to
//! the per-function numbers the archive keeps for history.

mod delta;
mod dispersion;
pub mod estimate;
pub mod margin;
pub mod model;
mod normalise;
mod pods;
#[cfg(test)]
mod properties;
#[cfg(test)]
pub(crate) mod simulation;
pub mod stats;
pub mod summary;
pub mod trend;

pub use estimate::{Estimate, Noise};
pub use model::*;

use std::sync::Arc;

use delta::{total_delta, DeltaEstimator, Scratch};
use dispersion::{
    candidate_spread, estimate_dispersion, small_function_dispersion, sums_waits, wait_spread,
    window_dispersion, window_load_factor, DISPERSION_MIN_EVENTS,
};
use normalise::{normalize, timed};
use pods::{
    check_sample_types, event_column, mean_leaf_distance, side_facts, FunctionNames, PodData,
};

use crate::profile::{ProfileKind, SampleType};
use crate::side::PodProfiles;

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

#[allow(clippy::too_many_arguments)]
fn compare_sample_type(
    kind: ProfileKind,
    types: &[SampleType],
    st: usize,
    names: &[Arc<str>],
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
    // Small frames can vary between processes more than the large ones the dispersion is
    // measured on; with several pods a side theirs is measured too, and used where larger.
    let small = (multi_pod && !exact)
        .then(|| small_function_dispersion(&flat_events, fb.len(), &factors))
        .flatten()
        .filter(|s| s.phi > dispersion.map_or(0.0, |d| d.phi));
    let model = if exact {
        NoiseModel::ExactCounts
    } else if multi_pod {
        NoiseModel::BetweenPods
    } else {
        NoiseModel::SamplingOnly
    };

    // The level's error is in the pods' spread when there are several a side.
    let level_variance = normalization
        .level_variance
        .filter(|_| model == NoiseModel::SamplingOnly);
    let side_total = |pods: &[PodData]| pods.iter().map(|p| p.totals[st]).sum::<f64>();
    let (tb, tc) = (side_total(b), side_total(c));
    let ctx = DeltaEstimator {
        model,
        phi: dispersion.map(|d| d.phi).unwrap_or(0.0),
        phi_small: small.or(dispersion).map(|d| d.phi).unwrap_or(0.0),
        window_factor,
        level_variance: level_variance.unwrap_or(0.0),
        fb,
        fc,
        min_share: options.min_share,
    };

    let waits = sums_waits(kind, ev, st);
    // A sum of waits is widened by how unevenly its windows hold it, in events: see
    // `wait_spread`. Every other sample type's values grow with their events.
    let wait_factor = |f: usize, cum: bool| {
        waits.then(|| {
            wait_spread([b, c], ev, st, |p, t, w| match (w, cum) {
                (Some(w), true) => p.window_cum[w][t][f],
                (Some(w), false) => p.window_flat[w][t][f],
                (None, true) => p.cum[t][f],
                (None, false) => p.flat[t][f],
            })
        })
    };
    let mut scratch = Scratch::default();
    let functions = names
        .iter()
        .enumerate()
        .map(|(f, name)| {
            let mut flat = ctx.delta(
                &mut scratch,
                b.iter().map(|p| p.flat[st][f]),
                c.iter().map(|p| p.flat[st][f]),
                flat_events.iter().map(|e| e[f]),
                (tb, tc),
                wait_factor(f, false),
            );
            let mut cum = ctx.delta(
                &mut scratch,
                b.iter().map(|p| p.cum[st][f]),
                c.iter().map(|p| p.cum[st][f]),
                cum_events.iter().map(|e| e[f]),
                (tb, tc),
                wait_factor(f, true),
            );
            for (d, is_cum) in [(&mut flat, false), (&mut cum, true)] {
                if d.presence == Presence::New && d.tested {
                    d.candidate_spread = candidate_spread(c, ev, f, is_cum).map(Box::new);
                }
            }
            FunctionDelta {
                name: Arc::clone(name),
                flat,
                cum,
                leaf_distance: mean_leaf_distance(b.iter().chain(c), f),
            }
        })
        .collect();

    let mut load_factor = window_load_factor(&all, ev, kind.is_snapshot());
    let total_spread = waits.then(|| {
        wait_spread([b, c], ev, st, |p, t, w| match w {
            Some(w) => p.window_totals[w][t],
            None => p.totals[t],
        })
    });
    if let Some(spread) = total_spread {
        load_factor = load_factor.max(spread.factor);
    }
    let mut total = total_delta(kind, st, ev, b, c, load_factor);
    if let (Some(spread), Some(e)) = (total_spread, total.estimate.as_deref()) {
        if !spread.allows(e.ratio) {
            // A side's waiting is one burst, which fakes the change seen (`WaitSpread::allows`).
            total.estimate = None;
        }
    }

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
            if let Some(s) = small {
                measured.push(format!(
                    "pod-to-pod spread of functions under {DISPERSION_MIN_EVENTS} events a pod, larger (dispersion {:.3} from {} functions), which their tests use",
                    s.phi, s.functions
                ));
            }
        }
        NoiseModel::SamplingOnly => {
            measured.push("sampling noise".to_owned());
            if let Some(v) = level_variance {
                measured.push(format!(
                    "the uncertainty of the level the two pods are normalised to (a median of functions' ratios, standard error {:.1}%), added to every function's",
                    100.0 * v.sqrt()
                ));
            }
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
            small_function_dispersion: small.map(|s| s.phi),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::FunctionProfile;

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
        let up = st.functions[0].flat.estimate.as_deref().unwrap();
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
        let total = k.sample_types[0].total.estimate.as_deref().unwrap();
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
        let total = k.sample_types[0].total.estimate.as_deref().unwrap();
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
            let e = st.functions[0].flat.estimate.as_deref().unwrap();
            let p = e.p_above(1.2);
            assert!(p <= last_p, "x{factor}: p {p} after {last_p}");
            last_p = p;
            if factor >= 2.0 {
                assert!(e.lower(0.001) > 1.2, "x{factor}: {}", e.lower(0.001));
            }
        }
    }

    /// Go's mutex profile's sample types.
    fn mutex_types() -> Vec<SampleType> {
        vec![
            SampleType {
                name: "contentions".into(),
                unit: "count".into(),
            },
            SampleType {
                name: "delay".into(),
                unit: "nanoseconds".into(),
            },
        ]
    }

    /// Mutex profiles of three pods a side, 10 s each: `delays[p]` nanoseconds of delay from
    /// `contentions[p]` events in pod p, all in one function.
    fn mutex_side(contentions: [i64; 3], delays: [i64; 3]) -> Vec<PodProfiles> {
        let types = mutex_types();
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
        let delay = k.sample_types[1].total.estimate.as_deref().unwrap();
        assert!(
            (delay.ratio - 25_000_000.0 / 30_000.0).abs() < 1.0,
            "{}",
            delay.ratio
        );
        assert!(delay.lower(0.001) > 5.0, "{}", delay.lower(0.001));
        assert!(delay.upper(0.001).is_finite());
    }

    /// A mutex pod of six 5 s windows: each window's (contentions, delay) of one function.
    fn waits_pod(pod: &str, windows: [(i64, i64); 6]) -> PodProfiles {
        let types = mutex_types();
        PodProfiles {
            pod: pod.into(),
            windows: windows
                .iter()
                .map(|&(n, d)| {
                    let rows = vec![vec![n, d]];
                    FunctionProfile::from_values(
                        ProfileKind::Mutex,
                        types.clone(),
                        vec!["main.updateCounters".into()],
                        rows.clone(),
                        rows,
                        1,
                        5_000_000_000,
                    )
                    .unwrap()
                })
                .collect(),
        }
    }

    /// The lock user's cumulative delay, per second as the default policy judges it: its
    /// estimate, if it has one.
    fn delay_estimate(baseline: &[PodProfiles], candidate: &[PodProfiles]) -> Option<Estimate> {
        let per_second = CompareOptions {
            normalize: Normalize::Rate,
            ..CompareOptions::default()
        };
        let k = compare_kind(ProfileKind::Mutex, baseline, candidate, &per_second).unwrap();
        let f = &k.sample_types[1].functions[0];
        assert_eq!(&*f.name, "main.updateCounters");
        f.cum.estimate.as_deref().copied()
    }

    #[test]
    fn one_long_wait_is_not_a_certain_rise_of_waiting() {
        // Two real A/A-like captures on a loaded machine (Go counts each sampled wait 5
        // times): four short waits in the baseline against one 126 ms wait in one candidate
        // window (35x [4.3x, 283x] by the count of waits alone, a failed build), and the same
        // wait beside a short one in another window of its pod.
        let z = (0, 0);
        let baseline = [
            waits_pod("stable-1", [z, z, z, z, z, (5, 28_000)]),
            waits_pod("stable-2", [z, (5, 37_000), (5, 3_564_000), z, z, z]),
            waits_pod("stable-3", [z, z, z, z, (5, 4_000), z]),
        ];
        let burst = [
            waits_pod("stable-4", [z; 6]),
            waits_pod("stable-5", [z, z, z, z, z, (5, 126_435_000)]),
            waits_pod("stable-6", [z; 6]),
        ];
        let beside = [
            waits_pod("stable-4", [z; 6]),
            waits_pod("stable-5", [z, z, (5, 40_000), z, z, (5, 126_435_000)]),
            waits_pod("stable-6", [z; 6]),
        ];
        for candidate in [&burst, &beside] {
            // Three pods a side, and one (stable-2 against stable-5).
            assert_eq!(delay_estimate(&baseline, candidate), None);
            assert_eq!(delay_estimate(&baseline[1..2], &candidate[1..2]), None);
            let k = compare_kind(
                ProfileKind::Mutex,
                &baseline[1..2],
                &candidate[1..2],
                &CompareOptions::default(),
            )
            .unwrap();
            assert_eq!(k.sample_types[1].total.estimate, None);
        }
    }

    #[test]
    fn a_baseline_burst_leaves_a_lock_storm_its_estimate_and_fakes_no_fall() {
        // A full CI run under load: the example's lock storm, 1.1 s of waiting in 195 sampled
        // waits (Go counts each 5 times) spread over one canary's windows, against a baseline
        // whose one sampled wait of 26 us fell in one window. A burst in the baseline can fake
        // a fall, not a rise; the storm passed as "verified nothing" before.
        let z = (0, 0);
        let baseline = [waits_pod("stable-1", [z, z, z, (5, 25_537), z, z])];
        let storm = |n: i64, d: i64| (5 * n, d);
        let candidate = [waits_pod(
            "canary-1",
            [
                storm(30, 170_000_000),
                storm(35, 190_000_000),
                storm(33, 180_000_000),
                storm(31, 175_000_000),
                storm(34, 195_000_000),
                storm(32, 186_000_000),
            ],
        )];
        let est = delay_estimate(&baseline, &candidate).expect("an estimate beside the burst");
        assert!(
            est.lower(0.01) > 100.0,
            "{est:?}: lower {}",
            est.lower(0.01)
        );
        let k = compare_kind(
            ProfileKind::Mutex,
            &baseline,
            &candidate,
            &CompareOptions::default(),
        )
        .unwrap();
        let total = k.sample_types[1].total.estimate.as_deref().copied();
        let total = total.expect("a total estimate");
        assert!(total.lower(0.01) > 100.0, "{total:?}");
        // The other way round, the candidate's one wait is still no rise at all.
        assert_eq!(delay_estimate(&candidate, &baseline), None);
        // And a baseline's one long wait beside steady short waits is no fall: the burst
        // makes the baseline look larger, so a rule on falls must not read one from it.
        let long_wait = [waits_pod("stable-1", [z, z, (5, 126_435_000), z, z, z])];
        let steady = [waits_pod("canary-1", [(25, 2_000_000); 6])];
        assert_eq!(delay_estimate(&long_wait, &steady), None);
    }

    #[test]
    fn uneven_waits_in_several_windows_widen_the_interval() {
        // Waiting in every candidate window, but a few times longer in some: counted by its
        // waits the rise would look certain; its windows say how uneven it is.
        let z = (0, 0);
        let baseline = [
            waits_pod("a", [(5, 40_000), z, (5, 30_000), z, (5, 50_000), z]),
            waits_pod("b", [z, (5, 45_000), z, (5, 35_000), z, (5, 40_000)]),
        ];
        let candidate = [
            waits_pod(
                "c",
                [(5, 90_000), (5, 900_000), (5, 60_000), z, (5, 400_000), z],
            ),
            waits_pod(
                "d",
                [z, (5, 700_000), (5, 80_000), (5, 1_000_000), z, (5, 70_000)],
            ),
        ];
        let est = delay_estimate(&baseline, &candidate).unwrap();
        assert!(est.ratio > 8.0, "{}", est.ratio);
        let Noise::LogT { se, .. } = est.noise else {
            panic!("{est:?}")
        };
        // The count of waits alone (6 and 9 waits a side, counted 5 times each) gives a
        // sampling error of 0.24; the windows' unevenness makes it 0.54.
        assert!(se > 0.4, "{est:?}");
    }

    #[test]
    fn steady_waits_three_times_longer_are_a_certain_rise() {
        // Many waits in every window, each about as long: their count measures their sum's
        // noise, and the spread of waits must not hide a real regression.
        let pod = |name: &str, delay: i64| {
            let w = |i: i64| (250 + 10 * (i % 3), delay + (i % 2) * delay / 20);
            waits_pod(name, [w(0), w(1), w(2), w(3), w(4), w(5)])
        };
        let baseline = [pod("a", 2_000_000), pod("b", 2_100_000)];
        let candidate = [pod("c", 6_000_000), pod("d", 6_300_000)];
        let est = delay_estimate(&baseline, &candidate).unwrap();
        assert!((est.ratio - 3.0).abs() < 0.2, "{}", est.ratio);
        assert!(est.lower(0.01) > 2.0, "{est:?}: lower {}", est.lower(0.01));
        let one = delay_estimate(&baseline[..1], &candidate[..1]).unwrap();
        assert!(one.lower(0.01) > 2.0, "{one:?}: lower {}", one.lower(0.01));
    }
}

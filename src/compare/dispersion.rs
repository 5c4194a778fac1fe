//! How much pods and windows vary beyond sampling noise: the between-pod dispersion phi, the
//! windows' agreement within a pod, and the load swings that widen a total's test.

use super::pods::{EventColumn, PodData};
use super::stats;
use super::UnitSpread;
use crate::profile::ProfileKind;

/// Functions whose events make a between-pod dispersion estimate meaningful.
pub(super) const DISPERSION_MIN_EVENTS: f64 = 20.0;
/// The same with one pod a side, lower: each function's own estimate is a quantile-unbiased
/// one whatever its size, and a small service has only a handful of functions above 20 events
/// a pod (nine in a minute of the example service at a quarter of a core), of which a
/// regression and the functions it disturbs are too many; above 5 there are two dozen.
pub(super) const BLIND_DISPERSION_MIN_EVENTS: f64 = 5.0;
/// The quantile of the functions' own dispersion estimates taken as the pooled one, within
/// sides: the median, so that fewer than half the functions (a few noisy ones) cannot move it
/// however large they are. Each function is still judged by its own spread where that is
/// larger (`DeltaEstimator::function_dispersion`).
pub(super) const DISPERSION_QUANTILE: f64 = 0.5;
/// The same with one pod a side, where the two pods are taken as replicates: the upper
/// quartile, so that the few functions a regression changes still cannot move it.
pub(super) const BLIND_DISPERSION_QUANTILE: f64 = 0.75;
/// With one pod a side, the factor on the pooled dispersion that covers functions noisier
/// than the typical one. There a function's own spread cannot be told from a change, and the
/// functions of a real service differ in how much they vary between pods. Measured in
/// `cargo bench --bench statistics`: with functions differing 20-fold (phi 0.005-0.1), A/A
/// runs failed 4.8% of the time with the upper quartile alone and 1.0% with it doubled (the
/// moment estimate of before: 2.9%); at the noise measured between real processes, doubling
/// costs a doubling at 5% of CPU about one detection in ten.
pub(super) const BLIND_HETEROGENEITY: f64 = 2.0;
/// Prior weight (degrees of freedom) of the pooled dispersion when shrinking per function.
pub(super) const DISPERSION_PRIOR_DF: f64 = 10.0;

/// With several pods on a side, the pooled dispersion of the functions too small for
/// [`estimate_dispersion`] (a mean of [`BLIND_DISPERSION_MIN_EVENTS`] to
/// [`DISPERSION_MIN_EVENTS`] events a pod on a side), the same median of their own estimates.
///
/// Measured on the example Rust service, two processes a side of one build: in A/A runs phi
/// was 0.00-0.03 over functions of at least 20 events a pod and 0.14-0.29 over those of 5-20,
/// and an A/A run failed on `core::ptr::read::<u8>` (an inlined leaf inside `compute_checksum`) at +333%
/// [+52%, 12x], judged by the large functions' calm. Which instruction of a hot loop a signal
/// lands on differs from process to process, and a small frame is all one instruction.
pub(super) fn small_function_dispersion(
    flat_events: &[Vec<f64>],
    n_baseline: usize,
    factors: &[f64],
) -> Option<stats::DispersionEstimate> {
    let n = flat_events.first()?.len();
    let (fb, fc) = factors.split_at(n_baseline);
    let mut sides: Vec<(Vec<f64>, &[f64])> = Vec::new();
    for f in 0..n {
        let (b, c): (Vec<f64>, Vec<f64>) = (
            flat_events[..n_baseline].iter().map(|e| e[f]).collect(),
            flat_events[n_baseline..].iter().map(|e| e[f]).collect(),
        );
        for (counts, exposures) in [(b, fb), (c, fc)] {
            let mean = counts.iter().sum::<f64>() / counts.len().max(1) as f64;
            if counts.len() >= 2 && mean < DISPERSION_MIN_EVENTS {
                sides.push((counts, exposures));
            }
        }
    }
    let groups: Vec<stats::DispersionGroup<'_>> = sides
        .iter()
        .map(|(counts, exposures)| stats::DispersionGroup { counts, exposures })
        .collect();
    stats::robust_dispersion(&groups, BLIND_DISPERSION_MIN_EVENTS, DISPERSION_QUANTILE)
}

/// How much the windows' totals of one pod vary beyond sampling noise, per second of profiled
/// time (Pearson chi2/df pooled over pods, at least 1): the load swings that widen the total's
/// test when there is one pod a side.
pub(super) fn window_load_factor(pods: &[&PodData], ev: EventColumn, snapshot: bool) -> f64 {
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
pub(super) fn estimate_dispersion(
    flat_events: &[Vec<f64>],
    n_baseline: usize,
    factors: &[f64],
    blind: bool,
) -> Option<stats::DispersionEstimate> {
    let n = flat_events.first()?.len();
    let pods = flat_events.len();
    // The counts laid out function by function, so each function's pods are one slice: one
    // allocation, not two per function.
    let mut by_function = vec![0.0; n * pods];
    for (p, row) in flat_events.iter().enumerate() {
        for (f, &x) in row.iter().enumerate() {
            by_function[f * pods + p] = x;
        }
    }
    let counts = |f: usize| &by_function[f * pods..(f + 1) * pods];
    let groups: Vec<stats::DispersionGroup<'_>> = if blind {
        (0..n)
            .map(|f| stats::DispersionGroup {
                counts: counts(f),
                exposures: factors,
            })
            .collect()
    } else {
        let (fb, fc) = factors.split_at(n_baseline);
        (0..n)
            .flat_map(|f| {
                let (b, c) = counts(f).split_at(n_baseline);
                [
                    stats::DispersionGroup {
                        counts: b,
                        exposures: fb,
                    },
                    stats::DispersionGroup {
                        counts: c,
                        exposures: fc,
                    },
                ]
            })
            .collect()
    };
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
pub(super) struct WindowAgreement {
    pub(super) factor: f64,
    pub(super) p_value: f64,
    pub(super) warning: Option<String>,
}

pub(super) fn window_dispersion(
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

/// How unevenly one function's events fall across the candidate's pods and windows, beyond
/// sampling noise (Pearson chi2/df against each unit's total events), for a function the
/// baseline does not have. `None` with fewer than two units.
///
/// A new function's share is tested as if its events were spread like everyone else's; a
/// burst in one window is not. A freshly started canary publishes its start-up allocations
/// when the heap profile's garbage collections catch up, which can be inside the first
/// window: in an A/A run of the example service under load, `main.warmCache` (a cache filled
/// once at start) came out "new at 4.1% of allocations, at least 2.7%" from one window. Its
/// events judged at their own spread count as the one burst they are.
pub(super) fn candidate_spread(
    c: &[PodData],
    ev: EventColumn,
    f: usize,
    cum: bool,
) -> Option<UnitSpread> {
    let mut counts = Vec::new();
    let mut exposures = Vec::new();
    for p in c {
        let (pod, windows) = if cum {
            (&p.cum, &p.window_cum)
        } else {
            (&p.flat, &p.window_flat)
        };
        if windows.is_empty() {
            counts.push(pod[ev.index][f] * ev.scale);
            exposures.push(p.totals[ev.index] * ev.scale);
        } else {
            for (w, totals) in windows.iter().zip(&p.window_totals) {
                counts.push(w[ev.index][f] * ev.scale);
                exposures.push(totals[ev.index] * ev.scale);
            }
        }
    }
    let (chi2, df) = stats::pearson_dispersion(&counts, &exposures)?;
    Some(UnitSpread {
        factor: chi2 / df,
        df,
    })
}

/// The fewest pod windows, as (sum v)^2 / sum v^2 counts them, that must carry a side's waiting
/// for it to be more than one burst: below it, one window holds most of it (one long wait, a
/// lock holder descheduled once). Steady waiting in three windows counts about 3; windows of
/// 1, 1 and 3 count 2.3; the candidate's one wait in the A/A run of [`wait_spread`]'s doc
/// counts 1 (its baseline, 3.6, 0.04, 0.03 and 0.004 ms in four windows, 1.04).
pub(super) const BURST_UNITS: f64 = 1.5;

/// Whether a sample type sums waits whose events it counts in another column (mutex and block
/// delay, whose events are contentions): its values then grow by events of any size.
pub(super) fn sums_waits(kind: ProfileKind, ev: EventColumn, st: usize) -> bool {
    matches!(kind, ProfileKind::Mutex | ProfileKind::Block) && ev.index != st
}

/// How unevenly a sum of waits falls across windows ([`wait_spread`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct WaitSpread {
    /// How much more the waiting varies between windows than its count of waits says (at
    /// least 1): the factor on its sampling noise.
    pub(super) factor: f64,
    /// Which side's waiting is one burst, if any (the candidate's when both are).
    pub(super) burst: Option<BurstSide>,
}

/// The side whose waiting is one burst: carried by fewer than [`BURST_UNITS`] of its pod
/// windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BurstSide {
    /// The baseline's: it can fake a fall.
    Baseline,
    /// The candidate's: it can fake a rise.
    Candidate,
}

impl WaitSpread {
    /// Whether an estimate of the candidate's waiting against the baseline's, at `ratio`, can
    /// stand. A burst's size says nothing of the waits' usual length, and it makes its side
    /// look larger: the candidate's burst fakes a rise, so it leaves nothing to estimate; the
    /// baseline's fakes a fall, so with it only a rise stands (understated, if anything; its
    /// windows' unevenness still widens the noise through the pooled chi2, and its few waits
    /// keep its own noise large).
    ///
    /// Dropping every estimate beside a baseline burst cost a real regression its verdict: in a
    /// full CI run under load, the example's lock storm (1.1 s of waiting in 195 sampled waits
    /// over three windows of one canary) against a baseline whose one sampled wait of 26 us
    /// fell in one window passed, "verified nothing", while the same storm against a baseline
    /// without any wait fails as a new total.
    pub(super) fn allows(self, ratio: f64) -> bool {
        match self.burst {
            None => true,
            Some(BurstSide::Candidate) => false,
            Some(BurstSide::Baseline) => ratio > 1.0,
        }
    }
}

/// How much more a waiting time varies from window to window within its pods than the count
/// of its waits says: Pearson chi2/df of each window's value, counted in events (the side's
/// events per unit of value), against the window's length, pooled over pods and sides; at
/// least 1, and 1 where no pod has two windows with waits. With the side whose waiting is one
/// burst: carried by fewer than [`BURST_UNITS`] of its several pod windows, as
/// (sum v)^2 / sum v^2 counts them ([`WaitSpread::allows`] says what that leaves).
///
/// Waits differ in length, and one long wait (a lock holder descheduled on a loaded node)
/// outweighs a hundred short ones, so the count of waits alone makes their sum look far more
/// certain than it is. Real captures on a loaded machine: in an A/A run, one 126 ms wait in
/// one candidate window against four short ones in the baseline's came out 35x [4.3x, 283x]
/// and failed; in another run, one 117 ms wait against one of 0.01 ms, 11,505x [14x, ...].
/// Within pods only, so that pods that differ (the dispersion's business) are not counted
/// twice. `read(pod, sample_type, window)` reads one window's value of a sample type, or with
/// `None` the pod's (for a pod of one window, and for the side's events per unit of value).
pub(super) fn wait_spread(
    sides: [&[PodData]; 2],
    ev: EventColumn,
    st: usize,
    read: impl Fn(&PodData, usize, Option<usize>) -> f64,
) -> WaitSpread {
    let (mut chi2, mut df) = (0.0, 0.0);
    let mut burst = None;
    let (mut counts, mut seconds) = (Vec::new(), Vec::new());
    for (side, pods) in sides.into_iter().enumerate() {
        let value: f64 = pods.iter().map(|p| read(p, st, None)).sum();
        let events: f64 = pods
            .iter()
            .map(|p| read(p, ev.index, None) * ev.scale)
            .sum();
        let events_per_value = if value > 0.0 { events / value } else { 0.0 };
        // The side's pod windows, and the sum of their values and of their squares.
        let (mut units, mut sum, mut squares) = (0usize, 0.0, 0.0);
        let mut unit = |v: f64| {
            units += 1;
            sum += v;
            squares += v * v;
        };
        for p in pods {
            if p.windows < 2 {
                unit(read(p, st, None));
                continue;
            }
            counts.clear();
            seconds.clear();
            for (w, &s) in p.window_seconds.iter().enumerate() {
                let v = read(p, st, Some(w));
                unit(v);
                counts.push(v * events_per_value);
                seconds.push(if s > 0.0 { s } else { 1.0 });
            }
            if let Some((c, d)) = stats::pearson_dispersion(&counts, &seconds) {
                chi2 += c;
                df += d;
            }
        }
        if units >= 2 && squares > 0.0 && sum * sum / squares < BURST_UNITS {
            burst = Some(if side == 0 {
                BurstSide::Baseline
            } else {
                BurstSide::Candidate
            });
        }
    }
    let factor = if df > 0.0 { (chi2 / df).max(1.0) } else { 1.0 };
    WaitSpread { factor, burst }
}

#[cfg(test)]
mod tests {
    use crate::compare::{compare_kind, CompareOptions, SampleTypeComparison};
    use crate::profile::{FunctionProfile, ProfileKind};
    use crate::side::PodProfiles;

    /// One 60 s CPU window a pod, `N / 2` pods a side; `counts[f]` gives function f's samples
    /// in each pod (baseline first). `pkg.hot` is function 0, `pkg.leaf` function 1.
    fn compare_pods<const N: usize>(counts: &[[i64; N]]) -> SampleTypeComparison {
        let pod = |p: usize| {
            let names = (0..counts.len())
                .map(|f| match f {
                    0 => "pkg.hot".to_owned(),
                    1 => "pkg.leaf".to_owned(),
                    _ => format!("pkg.f{f}"),
                })
                .collect();
            let rows: Vec<Vec<i64>> = counts
                .iter()
                .map(|c| vec![c[p], c[p] * 10_000_000])
                .collect();
            let window = FunctionProfile::from_values(
                ProfileKind::Cpu,
                crate::compare::simulation::cpu_sample_types(),
                names,
                rows.clone(),
                rows,
                10_000_000,
                60_000_000_000,
            )
            .unwrap();
            PodProfiles {
                pod: format!("pod-{p}"),
                windows: vec![window],
            }
        };
        let all: Vec<PodProfiles> = (0..N).map(pod).collect();
        let (baseline, candidate) = all.split_at(N / 2);
        let k = compare_kind(
            ProfileKind::Cpu,
            baseline,
            candidate,
            &CompareOptions::default(),
        )
        .unwrap();
        k.sample_types[1].clone()
    }

    /// Five large functions alike in every pod, `pkg.hot` three times slower in the candidate,
    /// `pkg.leaf` (small) at 4 samples a pod in the baseline and 14 in the candidate, and
    /// twenty more small functions whose pods agree or, with `noisy_small`, do not.
    fn pods(noisy_small: bool) -> Vec<[i64; 4]> {
        let mut counts = vec![[100, 100, 300, 300], [4, 4, 14, 14]];
        counts.extend((0..5).map(|_| [100, 103, 98, 101]));
        counts.extend((0..20).map(|f| match (noisy_small, f % 2) {
            (false, _) => [10, 10, 10, 10],
            (true, 0) => [4, 16, 16, 4],
            (true, _) => [16, 4, 4, 16],
        }));
        counts
    }

    fn estimate<'a>(st: &'a SampleTypeComparison, name: &str) -> &'a crate::compare::Estimate {
        let f = st.functions.iter().find(|f| &*f.name == name).unwrap();
        f.flat.estimate.as_deref().unwrap()
    }

    #[test]
    fn small_functions_that_vary_between_pods_are_judged_by_their_own_kind() {
        let st = compare_pods(&pods(true));
        let small = st.noise.small_function_dispersion.expect("measured");
        assert!(small > 0.2, "{small}");
        assert!(st.noise.dispersion.unwrap() < 0.01, "{:?}", st.noise);
        assert!(
            st.noise
                .measured
                .iter()
                .any(|m| m.contains("under 20 events")),
            "{:?}",
            st.noise.measured
        );
        // 4 against 14 samples a pod, where small functions swing 4 to 16: not a certain rise.
        let leaf = estimate(&st, "pkg.leaf");
        assert!(leaf.p_above(1.0) > 0.05, "{}", leaf.p_above(1.0));
        // The large function's tripling is still certain, by the large functions' calm.
        let hot = estimate(&st, "pkg.hot");
        assert!((hot.ratio - 3.0).abs() < 0.3, "{}", hot.ratio);
        assert!(hot.p_above(1.2) < 1e-6, "{}", hot.p_above(1.2));
    }

    #[test]
    fn small_functions_whose_pods_agree_keep_the_pooled_dispersion() {
        let st = compare_pods(&pods(false));
        assert_eq!(st.noise.small_function_dispersion, None, "{:?}", st.noise);
        let leaf = estimate(&st, "pkg.leaf");
        assert!(leaf.p_above(1.0) < 0.01, "{}", leaf.p_above(1.0));
    }

    #[test]
    fn one_pod_a_side_counts_the_uncertainty_of_the_normalisation_level() {
        // The CPU samples of a real A/A run of the example service (one pod a side, 30 s) that
        // failed the build: `crypto/sha256.block` (here `pkg.hot`) 186 against 246 while the
        // totals agreed, the level set by the median of fifteen smaller functions' ratios.
        let counts: Vec<[i64; 2]> = vec![
            [186, 246],
            [49, 57],
            [51, 35],
            [23, 15],
            [17, 16],
            [13, 12],
            [14, 8],
            [12, 7],
            [10, 7],
            [10, 5],
            [8, 7],
            [8, 6],
            [4, 8],
            [5, 7],
            [6, 5],
        ];
        let st = compare_pods(&counts);
        let level = st.normalization.level_variance.expect("one pod a side");
        assert!(level.sqrt() > 0.05, "{level}");
        assert!(
            st.noise
                .measured
                .iter()
                .any(|m| m.contains("normalised to")),
            "{:?}",
            st.noise.measured
        );
        let hot = estimate(&st, "pkg.hot");
        assert!(hot.ratio > 1.5, "{}", hot.ratio);
        // Without the level's uncertainty this was p = 0.00035 for a rise past +20%, a failed
        // build; with it, no certainty.
        assert!(hot.p_above(1.2) > 0.005, "{}", hot.p_above(1.2));
        // With several pods a side the level is not added: its error is in the pods' spread.
        let four = compare_pods(
            &counts
                .iter()
                .map(|c| [c[0], c[0], c[1], c[1]])
                .collect::<Vec<_>>(),
        );
        assert_eq!(four.normalization.level_variance, None);
    }
}

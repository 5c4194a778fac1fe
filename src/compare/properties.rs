//! Properties of the statistics over seeded simulations: A/A p-values are roughly uniform (no
//! excess of small ones, which would be false failures), and a bigger planted effect never
//! gives a larger p-value nor turns a regression back into a pass.
//!
//! Every draw comes from a fixed seed, so these tests give the same numbers on every run; the
//! bounds are loose enough that they test the statistics, not the luck of the seeds.

use proptest::prelude::*;
use proptest::test_runner::RngSeed;

use super::margin::{self, Direction, MarginQuestion, Status};
use super::simulation::{cpu_sample_types, SplitMix};
use super::*;
use crate::profile::FunctionProfile;

const FUNCTIONS: usize = 30;
/// Pod-to-pod dispersion of every function (a 14% coefficient of variation).
const PHI: f64 = 0.02;
const PERIOD: i64 = 10_000_000;

fn names() -> Vec<String> {
    (0..FUNCTIONS).map(|f| format!("pkg.f{f}")).collect()
}

/// Expected samples of function `f` per pod: 400 for the first, falling to about 40.
fn rate(f: usize) -> f64 {
    400.0 * 0.92f64.powi(f as i32)
}

/// One side's pods, each one 10-second window of leaf functions (flat = cum); `counts[p][f]`.
fn side(counts: &[Vec<i64>], prefix: &str) -> Vec<PodProfiles> {
    counts
        .iter()
        .enumerate()
        .map(|(p, row)| {
            let values: Vec<Vec<i64>> = row.iter().map(|&n| vec![n, n * PERIOD]).collect();
            PodProfiles {
                pod: format!("{prefix}-{p}"),
                windows: vec![FunctionProfile::from_values(
                    ProfileKind::Cpu,
                    cpu_sample_types(),
                    names(),
                    values.clone(),
                    values,
                    PERIOD,
                    10_000_000_000,
                )
                .expect("well-shaped")],
            }
        })
        .collect()
}

/// Counts for `pods` pods: per pod a load factor, per function and pod a Gamma dispersion
/// factor, then Poisson sampling; `theta` multiplies function 0's rate.
fn draw(rng: &mut SplitMix, pods: usize, theta: f64) -> Vec<Vec<i64>> {
    (0..pods)
        .map(|_| {
            let load = 0.8 + 0.4 * rng.uniform();
            (0..FUNCTIONS)
                .map(|f| {
                    let spread = rng.gamma(1.0 / PHI) * PHI;
                    let planted = if f == 0 { theta } else { 1.0 };
                    rng.poisson_approx(rate(f) * load * spread * planted)
                })
                .collect()
        })
        .collect()
}

/// The main sample type's comparison (cpu/nanoseconds).
fn cpu(b: &[PodProfiles], c: &[PodProfiles]) -> SampleTypeComparison {
    let k = compare_kind(ProfileKind::Cpu, b, c, &CompareOptions::default()).unwrap();
    k.sample_types.into_iter().nth(1).unwrap()
}

/// One-sided p-values "theta > 1" of every tested function in `seeds` A/A draws.
fn aa_p_values(pods: usize, seeds: std::ops::Range<u64>) -> Vec<f64> {
    let mut ps = Vec::new();
    for seed in seeds {
        let mut rng = SplitMix(seed);
        let b = side(&draw(&mut rng, pods, 1.0), "b");
        let c = side(&draw(&mut rng, pods, 1.0), "c");
        let s = cpu(&b, &c);
        // One function per draw (they share a normalisation, so are not independent).
        let f = &s.functions[(seed as usize) % FUNCTIONS];
        if let Some(e) = f.flat.estimate.as_deref() {
            ps.push(e.p_above(1.0));
        }
    }
    ps
}

/// Kolmogorov-Smirnov distance between the p-values' distribution and the uniform one.
fn ks_uniform(ps: &mut [f64]) -> f64 {
    ps.sort_by(f64::total_cmp);
    let n = ps.len() as f64;
    ps.iter()
        .enumerate()
        .map(|(i, &p)| (p - i as f64 / n).abs().max(((i + 1) as f64 / n - p).abs()))
        .fold(0.0, f64::max)
}

fn share_below(ps: &[f64], alpha: f64) -> f64 {
    ps.iter().filter(|&&p| p <= alpha).count() as f64 / ps.len() as f64
}

/// No excess of small A/A p-values (they would be false failures) and, by the KS distance, a
/// distribution within `max_ks` of uniform; `what` names the case in failures.
fn assert_roughly_uniform(ps: &mut [f64], what: &str, max_ks: f64) {
    assert!(ps.len() >= 390, "{what}: {} estimates", ps.len());
    // The 1% critical value for n = 400 is 0.082; the noise model may be a little
    // conservative (p-values pulled to the middle), never anti-conservative.
    let d = ks_uniform(ps);
    assert!(d < max_ks, "{what}: KS distance {d:.3} from uniform");
    for alpha in [0.01, 0.05, 0.1] {
        let seen = share_below(ps, alpha);
        assert!(
            seen <= 1.6 * alpha + 0.01,
            "{what}: {:.1}% of A/A p-values below {alpha}",
            seen * 100.0
        );
    }
}

#[test]
fn aa_p_values_between_pods_are_roughly_uniform() {
    let mut ps = aa_p_values(4, 0..400);
    assert_roughly_uniform(&mut ps, "4 pods a side", 0.12);
    // ... and not so conservative that nothing is ever small.
    assert!(share_below(&ps, 0.2) > 0.08, "{:.3}", share_below(&ps, 0.2));
}

#[test]
fn aa_p_values_with_one_pod_a_side_are_roughly_uniform_too() {
    // Exact binomial p-values are discrete and a little conservative. With one pod a side the
    // pooled dispersion is also doubled, to cover functions noisier than the typical one
    // (`BLIND_HETEROGENEITY`): here, where every function is equally noisy, that pulls the
    // p-values towards the middle (KS 0.12 at seeds 1000..1400), never towards zero.
    let mut ps = aa_p_values(1, 1000..1400);
    assert_roughly_uniform(&mut ps, "1 pod a side", 0.2);
    assert!(share_below(&ps, 0.2) > 0.05, "{:.3}", share_below(&ps, 0.2));
}

/// Function 0's margin answer against +20% (with the rest of the family, as the policy asks).
fn judged(s: &SampleTypeComparison) -> (f64, Status) {
    let questions: Vec<MarginQuestion> = s
        .functions
        .iter()
        .filter(|f| f.flat.tested)
        .map(|f| MarginQuestion {
            estimate: f.flat.estimate.as_deref().copied(),
            theta0: 1.2,
            direction: Direction::Increase,
            share_change: f.flat.share_change(),
            min_abs_change: 0.001,
            share: (f.flat.baseline_share + f.flat.candidate_share) / 2.0,
        })
        .collect();
    let answers = margin::judge(&questions, 0.05);
    let i = s
        .functions
        .iter()
        .filter(|f| f.flat.tested)
        .position(|f| &*f.name == "pkg.f0")
        .expect("the planted function is tested");
    (answers[i].p_value.unwrap_or(1.0), answers[i].status)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, rng_seed: RngSeed::Fixed(10), ..ProptestConfig::default() })]

    /// Several pods a side. One noise draw, function 0's candidate counts scaled by growing
    /// factors: the p-value against +20% never rises, and once regressed it stays regressed.
    /// (With one pod a side the exact test runs on whole effective event counts, so its
    /// p-value can wobble by one count's worth; its verdict is tested below.)
    #[test]
    fn a_bigger_effect_never_gives_a_larger_p_value(seed in 0u64..1_000_000, pods in 2usize..4) {
        let mut rng = SplitMix(seed);
        let base = draw(&mut rng, pods, 1.0);
        let cand = draw(&mut rng, pods, 1.0);
        let b = side(&base, "b");
        let mut last = (f64::INFINITY, Status::Within);
        for step in 0..=20 {
            let theta = 1.0 + 0.1 * step as f64;
            let scaled: Vec<Vec<i64>> = cand
                .iter()
                .map(|row| {
                    let mut row = row.clone();
                    row[0] = (row[0] as f64 * theta).round() as i64;
                    row
                })
                .collect();
            let (p, status) = judged(&cpu(&b, &side(&scaled, "c")));
            prop_assert!(p <= last.0 * (1.0 + 1e-9) + 1e-12, "theta {}: p {} after {}", theta, p, last.0);
            prop_assert!(
                !(last.1 == Status::Regressed && status != Status::Regressed),
                "theta {}: {:?} after regressed", theta, status
            );
            last = (p, status);
        }
        // Three times the work is always caught.
        prop_assert_eq!(last.1, Status::Regressed);
    }
}

/// Function 0's verdicts as its candidate count grows 1x to 3x, with one pod a side.
fn one_pod_verdicts(seed: u64) -> Vec<Status> {
    let mut rng = SplitMix(seed);
    let base = draw(&mut rng, 1, 1.0);
    let cand = draw(&mut rng, 1, 1.0);
    let b = side(&base, "b");
    (0..=20)
        .map(|step| {
            let theta = 1.0 + 0.1 * step as f64;
            let mut scaled = cand.clone();
            scaled[0][0] = (scaled[0][0] as f64 * theta).round() as i64;
            judged(&cpu(&b, &side(&scaled, "c"))).1
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, rng_seed: RngSeed::Fixed(10), ..ProptestConfig::default() })]

    /// With one pod a side, three times the work is never judged "within" +20%, and a
    /// regression is never called at the unchanged starting point.
    ///
    /// Not asserted: that a regression stays one as the effect grows. The pod-to-pod dispersion
    /// is estimated "blind" from the two pods, the planted change included, and the exact test
    /// runs on whole effective counts; both can turn a regression inconclusive at a slightly
    /// bigger effect (seed 328766: regressed at 2.6x, inconclusive at 2.7x, regressed from
    /// 2.8x). Leaving each function out of its own dispersion fixed that but raised A/A false
    /// failures with one pod from 0.9% to 2.1% (`cargo bench --bench statistics`), so the
    /// conservative blind estimate stays.
    #[test]
    fn with_one_pod_three_times_the_work_is_never_within(seed in 0u64..1_000_000) {
        let verdicts = one_pod_verdicts(seed);
        prop_assert_ne!(verdicts[0], Status::Regressed);
        prop_assert_ne!(verdicts[20], Status::Within);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { rng_seed: RngSeed::Fixed(10), ..ProptestConfig::default() })]

    /// The margin test alone: for any noise, a larger ratio gives a smaller p-value and a
    /// verdict at least as severe.
    #[test]
    fn margin_p_values_are_monotone_in_the_ratio(
        r1 in 0.2f64..5.0,
        grow in 1.0f64..3.0,
        se in 0.001f64..1.0,
        df in prop_oneof![Just(f64::INFINITY), 1.0f64..50.0],
    ) {
        let q = |ratio: f64| MarginQuestion {
            estimate: Some(Estimate { ratio, noise: Noise::LogT { se, df } }),
            theta0: 1.2,
            direction: Direction::Increase,
            share_change: 0.01,
            min_abs_change: 0.001,
            share: 0.01,
        };
        let a = margin::judge(&[q(r1)], 0.05)[0];
        let b = margin::judge(&[q(r1 * grow)], 0.05)[0];
        prop_assert!(b.p_value.unwrap() <= a.p_value.unwrap() + 1e-12);
        let severity = |s: Status| match s {
            Status::Improved => 0,
            Status::Within => 1,
            Status::Inconclusive => 2,
            Status::Regressed => 3,
        };
        prop_assert!(severity(b.status) >= severity(a.status), "{:?} -> {:?}", a.status, b.status);
    }

    /// The exact binomial test too: more candidate events of the same total never raise the
    /// p-value.
    #[test]
    fn binomial_p_values_are_monotone_in_the_candidate_count(n in 1u64..5_000, k in any::<prop::sample::Index>(), exposure in 0.3f64..3.0) {
        let k1 = k.index(n as usize) as u64;
        let p = |k: u64| Estimate {
            ratio: 1.0,
            noise: Noise::Binomial { k, n, exposure_ratio: exposure },
        }
        .p_above(1.2);
        prop_assert!(p(k1 + 1) <= p(k1) + 1e-12, "{} {}", p(k1 + 1), p(k1));
    }
}

//! The statistics against SciPy's values and their own invariants.

use super::*;
use crate::compare::simulation::SplitMix;

/// Asserts a relative error of at most `rel` (absolute when `expected` is 0).
fn close(actual: f64, expected: f64, rel: f64) {
    let err = if expected == 0.0 {
        actual.abs()
    } else {
        ((actual - expected) / expected).abs()
    };
    assert!(
        err <= rel,
        "actual {actual:e}, expected {expected:e}, relative error {err:e} > {rel:e}"
    );
}

#[test]
fn benjamini_hochberg_matches_scipy_with_ties() {
    let p = [0.01, 0.04, 0.04, 0.03, 0.2, 0.5, 0.001, 0.04, 0.9, 0.03];
    // scipy.stats.false_discovery_control(p, method='bh')
    let expected = [
        0.05,
        0.05714285714285715,
        0.05714285714285715,
        0.05714285714285715,
        0.25,
        0.5555555555555556,
        0.01,
        0.05714285714285715,
        0.9,
        0.05714285714285715,
    ];
    let adjusted = benjamini_hochberg(&p);
    assert_eq!(adjusted.len(), p.len());
    for (a, e) in adjusted.iter().zip(expected) {
        close(*a, e, 1e-14);
    }
}

#[test]
fn benjamini_hochberg_edge_cases() {
    assert!(benjamini_hochberg(&[]).is_empty());
    assert_eq!(benjamini_hochberg(&[0.03]), vec![0.03]);
    // NaN counts as 1 but still counts towards m = 3; out-of-range values are clamped.
    let adjusted = benjamini_hochberg(&[f64::NAN, 0.01, -0.5]);
    assert_eq!(adjusted, vec![1.0, 0.015, 0.0]);
    // Capped at 1.
    assert_eq!(benjamini_hochberg(&[0.9, 0.8, 2.0]), vec![1.0, 1.0, 1.0]);
}

#[test]
fn binomial_tails_match_scipy() {
    // scipy.stats.binom.sf(11, 20, 0.3) = P(X >= 12)
    close(binomial_sf(12, 20, 0.3), 0.0051381615351214025, 1e-12);
    // scipy.stats.binom.cdf(3, 20, 0.3)
    close(binomial_cdf(3, 20, 0.3), 0.10708680450373087, 1e-12);
    // Far tail: scipy.stats.binom.sf(35, 100, 0.1)
    close(binomial_sf(36, 100, 0.1), 2.8792474196492085e-12, 1e-11);
    // Far lower tail: scipy.stats.binom.cdf(490000, 1000000, 0.5) (20 standard deviations)
    close(
        binomial_cdf(490_000, 1_000_000, 0.5),
        2.772181643854259e-89,
        1e-9,
    );
    // The centre of a large binomial, where statrs 0.19's beta_reg is off by 1e-2:
    // scipy.stats.binom.sf(499999, 1000000, 0.5) and scipy.stats.binom.cdf(500000, 1000000, 0.5)
    close(
        binomial_sf(500_000, 1_000_000, 0.5),
        0.5003989421806654,
        1e-11,
    );
    close(
        binomial_cdf(500_000, 1_000_000, 0.5),
        0.5003989421806654,
        1e-11,
    );
    // scipy.stats.binomtest(12, 20, 0.3, alternative='greater').pvalue
    close(
        binomial_test_greater(12, 20, 0.3),
        0.0051381615351214025,
        1e-12,
    );
    // scipy.stats.binomtest(2, 20, 0.3, alternative='less').pvalue
    close(binomial_test_less(2, 20, 0.3), 0.03548313229846864, 1e-12);
}

#[test]
fn binomial_edge_cases() {
    assert_eq!(binomial_sf(0, 10, 0.3), 1.0);
    assert_eq!(binomial_sf(0, 0, 0.3), 1.0);
    assert_eq!(binomial_sf(11, 10, 0.3), 0.0);
    assert_eq!(binomial_sf(1, 0, 0.3), 0.0);
    assert_eq!(binomial_cdf(10, 10, 0.3), 1.0);
    assert_eq!(binomial_cdf(0, 0, 0.3), 1.0);
    // k = n: P(X >= n) = p^n and P(X <= 0) = (1 - p)^n.
    close(binomial_sf(10, 10, 0.3), 0.3_f64.powi(10), 1e-13);
    close(binomial_cdf(0, 10, 0.3), 0.7_f64.powi(10), 1e-13);
    // Degenerate and invalid proportions.
    assert_eq!(binomial_sf(3, 10, 0.0), 0.0);
    assert_eq!(binomial_sf(3, 10, 1.0), 1.0);
    assert_eq!(binomial_sf(3, 10, 7.0), 1.0);
    assert_eq!(binomial_cdf(3, 10, -1.0), 1.0);
    assert_eq!(binomial_sf(3, 10, f64::NAN), 1.0);
    assert_eq!(binomial_cdf(3, 10, f64::NAN), 1.0);
}

#[test]
fn clopper_pearson_matches_scipy() {
    // One-sided bounds at level 1 - alpha are the ends of the two-sided interval at 1 - 2 alpha:
    // scipy.stats.binomtest(k, n).proportion_ci(confidence_level=1 - 2 * alpha, method='exact')
    let cases = [
        // (k, n, alpha, low, high)
        (3, 20, 0.025, 0.03207093718554477, 0.37892682654529564),
        (7, 50, 0.05, 0.06759669900316757, 0.24693520173120928),
        (500, 1000, 0.001, 0.450771053984417, 0.5492289460155829),
        (0, 20, 0.025, 0.0, 0.16843347098308548),
        (20, 20, 0.025, 0.8315665290169145, 1.0),
    ];
    for (k, n, alpha, low, high) in cases {
        close(clopper_pearson_lower(k, n, alpha), low, 1e-11);
        close(clopper_pearson_upper(k, n, alpha), high, 1e-11);
    }
    // k = 1 of a million: Beta(1, n) has the closed form 1 - (1 - alpha)^(1/n);
    // -numpy.expm1(numpy.log(0.95) / 1e6). (scipy's beta.ppf is only good to 4e-7 here.)
    close(
        clopper_pearson_lower(1, 1_000_000, 0.05),
        5.1293293072049574e-8,
        1e-12,
    );
}

#[test]
fn clopper_pearson_edge_cases() {
    // k = 0: lower is 0, upper is 1 - alpha^(1/n).
    assert_eq!(clopper_pearson_lower(0, 10, 0.05), 0.0);
    close(
        clopper_pearson_upper(0, 10, 0.05),
        1.0 - 0.05_f64.powf(0.1),
        1e-13,
    );
    // k = n: upper is 1, lower is alpha^(1/n).
    assert_eq!(clopper_pearson_upper(10, 10, 0.05), 1.0);
    close(
        clopper_pearson_lower(10, 10, 0.05),
        0.05_f64.powf(0.1),
        1e-13,
    );
    // n = 0 carries no information; k > n is treated as k = n.
    assert_eq!(clopper_pearson_lower(0, 0, 0.05), 0.0);
    assert_eq!(clopper_pearson_upper(0, 0, 0.05), 1.0);
    assert_eq!(clopper_pearson_upper(12, 10, 0.05), 1.0);
    close(
        clopper_pearson_lower(12, 10, 0.05),
        0.05_f64.powf(0.1),
        1e-13,
    );
    // alpha 0 or NaN: widest bounds; alpha 1: both collapse to the far ends.
    assert_eq!(clopper_pearson_lower(5, 10, 0.0), 0.0);
    assert_eq!(clopper_pearson_upper(5, 10, f64::NAN), 1.0);
    assert_eq!(clopper_pearson_lower(5, 10, 1.0), 1.0);
    assert_eq!(clopper_pearson_upper(5, 10, 1.0), 0.0);
}

#[test]
fn beta_quantile_inverts_the_incomplete_beta() {
    let shapes = [
        (0.5, 0.5),
        (1.0, 1e6),
        (3.0, 18.0),
        (0.5, 5e5),
        (1e5, 3e5),
        (5e5, 5e5),
        (2.5, 0.5),
    ];
    for (a, b) in shapes {
        for q in [1e-12, 0.025, 0.5, 0.975] {
            let (x, y) = beta_inv(a, b, q, Tail::Lower);
            close(ibeta(a, b, x, y).0, q, 1e-9);
            let (x, y) = beta_inv(a, b, q, Tail::Upper);
            close(ibeta(a, b, x, y).1, q, 1e-9);
        }
    }
}

#[test]
fn incomplete_beta_for_huge_shapes() {
    // Uniform asymptotic expansion, beyond the continued fraction's reach:
    // scipy.special.betainc(2e9, 3e9, x) and scipy.special.betaincc(2e9, 3e9, x)
    let (lo, up) = ibeta(2e9, 3e9, 0.39996535898384866, 1.0 - 0.39996535898384866);
    close(lo, 2.86582901067071e-07, 1e-9);
    close(up, 0.9999997134170989, 1e-12);
    let (lo, up) = ibeta(2e9, 3e9, 0.4000069282032303, 1.0 - 0.4000069282032303);
    close(lo, 0.8413447460726785, 1e-9);
    close(up, 0.15865525392907254, 1e-9);
    // The expansion agrees with the continued fraction where both apply:
    // scipy.special.betainc(1e6, 3e6, 0.2501)
    let (lo, up) = ibeta_asymptotic(1e6, 3e6, 0.2501, 0.7499);
    close(lo, 0.6779706661699412, 1e-9);
    close(up, 0.32202933383008553, 1e-9);
    close(ibeta(1e6, 3e6, 0.2501, 0.7499).0, 0.6779706661699412, 1e-11);
    // A binomial with n near u64::MAX stays finite and quick.
    let n = u64::MAX;
    close(binomial_sf(n / 2, n, 0.5), 0.5, 1e-6);
    assert!(clopper_pearson_lower(n / 2, n, 0.05) < 0.5);
}

#[test]
fn welch_matches_scipy() {
    let a = [1.2, 2.3, 1.9, 2.8, 2.2];
    let b = [2.9, 3.4, 2.7, 4.1, 3.3, 3.8, 2.5];
    // r = scipy.stats.ttest_ind(b, a, equal_var=False):
    // r.statistic = 3.386594492947368, r.df = 8.709014067486534, r.pvalue = 0.008433148676867315
    let w = welch(&a, &b).expect("two samples of at least two values");
    close(w.mean_diff, 1.1628571428571433, 1e-13);
    close(w.t(0.0), 3.386594492947368, 1e-13);
    close(w.df, 8.709014067486534, 1e-13);
    close(2.0 * t_sf(w.t(0.0), w.df), 0.008433148676867315, 1e-10);
    // scipy.stats.ttest_ind(b, a, equal_var=False, alternative='greater').pvalue
    close(t_sf(w.t(0.0), w.df), 0.004216574338433658, 1e-10);
}

#[test]
fn welch_edge_cases() {
    assert_eq!(welch(&[], &[1.0, 2.0]), None);
    assert_eq!(welch(&[1.0], &[1.0, 2.0]), None);
    assert_eq!(welch(&[1.0, f64::NAN], &[1.0, 2.0]), None);
    assert_eq!(welch(&[1e308, -1e308], &[1.0, 2.0]), None);
    // Non-finite values are ignored.
    assert_eq!(
        welch(&[1.0, 2.0, f64::INFINITY], &[3.0, 5.0, f64::NAN]),
        welch(&[1.0, 2.0], &[3.0, 5.0])
    );
    // Zero variance on both sides: an exact difference.
    let w = welch(&[2.0, 2.0, 2.0], &[3.0, 3.0]).expect("constant samples");
    assert_eq!((w.mean_diff, w.se, w.df), (1.0, 0.0, 3.0));
    assert_eq!(w.t(0.0), f64::INFINITY);
    assert_eq!(w.t(2.0), f64::NEG_INFINITY);
    assert_eq!(w.t(1.0), 0.0);
    assert_eq!(w.t(f64::NAN), 0.0);
    // Zero variance on one side: df = n_b - 1 of the other.
    let w = welch(&[2.0, 2.0, 2.0], &[1.0, 3.0]).expect("one constant sample");
    close(w.df, 1.0, 1e-15);
    close(w.se, 1.0, 1e-15);
}

#[test]
fn t_distribution_matches_scipy() {
    // scipy.stats.t.sf(t, df)
    close(t_sf(2.0, 3.0), 0.06966298427942152, 1e-13);
    close(t_sf(-1.5, 7.3), 0.912218453598457, 1e-13);
    close(t_sf(8.0, 30.0), 3.1329112378503795e-09, 1e-12);
    close(t_sf(40.0, 2.0), 0.0003122073360923703, 1e-12);
    close(t_sf(3.0, 1e6), 0.0013499312707109, 1e-10);
    // scipy.stats.t.ppf(p, df)
    close(t_quantile(0.975, 1.0), 12.706204736174694, 1e-13);
    close(t_quantile(0.95, 7.3), 1.8829300179564308, 1e-13);
    close(t_quantile(0.999, 2.5), 13.82219311086596, 1e-13);
    close(t_quantile(0.3, 2.0), -0.6172133998483678, 1e-13);
    close(t_quantile(1e-12, 4.0), -1316.0727465592565, 1e-12);
    close(t_quantile(0.5000001, 10.0), 2.569978033880817e-07, 1e-8);
    close(t_quantile(0.975, 1e5), 1.9599877075346095, 1e-11);
    close(t_quantile(0.975, 1e7), 1.959964221767205, 1e-12);
    // Infinite df is the normal: scipy.stats.norm.ppf(0.975)
    close(t_quantile(0.975, f64::INFINITY), 1.959963984540054, 1e-14);
    // Round trip.
    for df in [1.0, 4.5, 60.0] {
        for p in [0.01, 0.3, 0.9] {
            close(1.0 - t_sf(t_quantile(p, df), df), p, 1e-12);
        }
    }
}

#[test]
fn normal_and_chi_squared_match_scipy() {
    // scipy.stats.norm.sf(z); statrs' erfc is good to about 1e-10.
    close(normal_sf(1.5), 0.06680720126885807, 1e-9);
    close(normal_sf(-2.0), 0.9772498680518208, 1e-9);
    close(normal_sf(8.0), 6.22096057427174e-16, 1e-9);
    // scipy.stats.norm.ppf(p)
    close(normal_quantile(0.975), 1.959963984540054, 1e-14);
    close(normal_quantile(1e-10), -6.361340902404056, 1e-14);
    // scipy.stats.chi2.sf(x, df)
    close(chi_squared_sf(150.0, 100.0), 0.0009039320423540184, 1e-10);
    close(chi_squared_sf(12.0, 9.0), 0.21330930508341653, 1e-10);
}

#[test]
fn distribution_edge_cases() {
    assert_eq!(t_sf(f64::NAN, 5.0), 1.0);
    assert_eq!(t_sf(2.0, f64::NAN), 1.0);
    assert_eq!(t_sf(2.0, 0.0), 1.0);
    assert_eq!(t_sf(2.0, -3.0), 1.0);
    assert_eq!(t_sf(f64::INFINITY, 5.0), 0.0);
    assert_eq!(t_sf(f64::NEG_INFINITY, 5.0), 1.0);
    assert_eq!(t_sf(0.0, 5.0), 0.5);
    assert_eq!(t_sf(2.0, f64::INFINITY), normal_sf(2.0));
    assert!(t_quantile(f64::NAN, 5.0).is_nan());
    assert_eq!(t_quantile(0.0, 5.0), f64::NEG_INFINITY);
    assert_eq!(t_quantile(1.0, 5.0), f64::INFINITY);
    assert_eq!(t_quantile(0.5, 5.0), 0.0);
    assert_eq!(t_quantile(0.975, 0.0), f64::INFINITY);
    assert_eq!(t_quantile(0.025, f64::NAN), f64::NEG_INFINITY);
    assert_eq!(normal_sf(f64::NAN), 1.0);
    assert_eq!(normal_sf(f64::INFINITY), 0.0);
    assert!(normal_quantile(f64::NAN).is_nan());
    assert_eq!(normal_quantile(-0.1), f64::NEG_INFINITY);
    assert_eq!(normal_quantile(1.0), f64::INFINITY);
    assert_eq!(chi_squared_sf(f64::NAN, 3.0), 1.0);
    assert_eq!(chi_squared_sf(3.0, 0.0), 1.0);
    assert_eq!(chi_squared_sf(3.0, f64::INFINITY), 1.0);
    assert_eq!(chi_squared_sf(0.0, 3.0), 1.0);
    assert_eq!(chi_squared_sf(f64::INFINITY, 3.0), 0.0);
}

#[test]
fn pooled_dispersion_hand_example() {
    // Group 1, equal exposures: counts 10, 20, 30, mean 20, sum of squares 100 + 0 + 100 = 200.
    // Statistic ((200 - (1 - 1/3) * 60) / 400) = (200 - 40) / 400 = 0.4, coefficient
    // P - 2 + P * sum w^2 = 3 - 2 + 3 * 3/9 = 2 (so alone: phi = 0.2 = (s^2 - mean) / mean^2
    // = (100 - 20) / 400).
    // Group 2, counts 10, 30 with exposures 1, 2: rate 40 / 3, mu = 40/3, 80/3, w = 1/3, 2/3,
    // residuals -10/3, +10/3 (squares 100/9).
    // Terms (100/9 - (2/3) 10) / (1600/9) = (40/9) / (1600/9) = 1/40 and
    // (100/9 - (1/3) 30) / (6400/9) = (10/9) / (6400/9) = 1/640; coefficient
    // 2 - 2 + 2 (1/9 + 4/9) = 10/9.
    // Pooled phi = (0.4 + 1/40 + 1/640) / (2 + 10/9) = 0.4265625 * 9 / 28 = 0.13710937...
    let groups = [
        DispersionGroup {
            counts: &[10.0, 20.0, 30.0],
            exposures: &[1.0, 1.0, 1.0],
        },
        DispersionGroup {
            counts: &[10.0, 30.0],
            exposures: &[1.0, 2.0],
        },
    ];
    let est = pooled_dispersion(&groups, 0.0).expect("two usable groups");
    close(est.phi, 0.4265625 * 9.0 / 28.0, 1e-14);
    assert_eq!((est.df, est.functions), (3.0, 2));
    let alone = pooled_dispersion(&groups[..1], 0.0).expect("one usable group");
    close(alone.phi, 0.2, 1e-14);
    // Both groups have a mean of 20 events per pod: min_mean 21 skips both, 20 keeps both.
    assert_eq!(pooled_dispersion(&groups, 21.0), None);
    assert_eq!(
        pooled_dispersion(&groups, 20.0).map(|e| e.functions),
        Some(2)
    );
}

#[test]
fn pooled_dispersion_edge_cases() {
    assert_eq!(pooled_dispersion(&[], 0.0), None);
    let one_pod = DispersionGroup {
        counts: &[5.0],
        exposures: &[1.0],
    };
    let zeros = DispersionGroup {
        counts: &[0.0, 0.0, 0.0],
        exposures: &[1.0, 1.0, 1.0],
    };
    let bad = DispersionGroup {
        counts: &[f64::NAN, 7.0, -1.0, 9.0],
        exposures: &[1.0, 0.0, 1.0, f64::INFINITY],
    };
    assert_eq!(pooled_dispersion(&[one_pod, zeros, bad], 0.0), None);
    // Under-dispersed data clamps at 0; NaN min_mean is 0; unequal lengths are cut.
    let calm = DispersionGroup {
        counts: &[100.0, 100.0, 100.0, 7.0],
        exposures: &[1.0, 1.0, 1.0],
    };
    let est = pooled_dispersion(&[calm], f64::NAN).expect("usable group");
    assert_eq!((est.phi, est.df, est.functions), (0.0, 2.0, 1));
}

/// Simulated negative-binomial counts: `functions` groups over `pods` pods with varying
/// exposures, variance mu + phi * mu^2 (gamma-Poisson mixture).
fn simulate(phi: f64, functions: usize, pods: usize, seed: u64) -> Vec<(Vec<f64>, Vec<f64>)> {
    let mut rng = SplitMix(seed);
    (0..functions)
        .map(|_| {
            let rate = 20.0 * 25.0_f64.powf(rng.uniform());
            let exposures: Vec<f64> = (0..pods).map(|_| 0.7 + 0.6 * rng.uniform()).collect();
            let counts = exposures
                .iter()
                .map(|e| {
                    let factor = if phi > 0.0 {
                        rng.gamma(1.0 / phi) * phi
                    } else {
                        1.0
                    };
                    rng.poisson(e * rate * factor)
                })
                .collect();
            (counts, exposures)
        })
        .collect()
}

fn estimate(data: &[(Vec<f64>, Vec<f64>)]) -> DispersionEstimate {
    let groups: Vec<DispersionGroup<'_>> = data
        .iter()
        .map(|(counts, exposures)| DispersionGroup { counts, exposures })
        .collect();
    pooled_dispersion(&groups, 10.0).expect("well-sampled groups")
}

#[test]
fn pooled_dispersion_recovers_simulated_phi() {
    for seed in [1, 2, 3] {
        let est = estimate(&simulate(0.05, 300, 10, seed));
        assert_eq!((est.functions, est.df), (300, 2700.0));
        assert!(
            (est.phi - 0.05).abs() <= 0.3 * 0.05,
            "seed {seed}: phi {} vs 0.05",
            est.phi
        );
    }
    // Pure Poisson counts: the bias-corrected estimate stays near 0 (its spread is ~3e-4).
    let est = estimate(&simulate(0.0, 300, 10, 4));
    assert!(est.phi < 0.002, "Poisson data gave phi {}", est.phi);
}

#[test]
fn pearson_dispersion_hand_example() {
    // Counts 10, 20, 30 with equal exposures: mu = 20, chi2 = (100 + 0 + 100) / 20 = 10, df 2.
    assert_eq!(
        pearson_dispersion(&[10.0, 20.0, 30.0], &[1.0, 1.0, 1.0]),
        Some((10.0, 2.0))
    );
    // Counts 12, 30, 18 with exposures 1, 2, 1: rate 60 / 4 = 15, mu = 15, 30, 15,
    // chi2 = 9/15 + 0 + 9/15 = 1.2, df 2.
    let (chi2, df) =
        pearson_dispersion(&[12.0, 30.0, 18.0], &[1.0, 2.0, 1.0]).expect("three windows");
    close(chi2, 1.2, 1e-14);
    assert_eq!(df, 2.0);
    // Pooled: chi2 11.2 on 4 df, factor 2.8; scipy.stats.chi2.sf(11.2, 4)
    let pooled = pooled_pearson(&[(10.0, 2.0), (chi2, df), (f64::NAN, 3.0)]).expect("parts");
    close(pooled.chi2, 11.2, 1e-14);
    assert_eq!(pooled.df, 4.0);
    close(pooled.factor, 2.8, 1e-14);
    close(pooled.p_value, 0.024405900528787352, 1e-10);
    // Calm windows never shrink intervals: the factor is at least 1.
    let calm = pooled_pearson(&[(0.5, 4.0)]).expect("one part");
    assert_eq!(calm.factor, 1.0);
}

#[test]
fn pearson_dispersion_edge_cases() {
    assert_eq!(pearson_dispersion(&[], &[]), None);
    assert_eq!(pearson_dispersion(&[5.0], &[1.0]), None);
    assert_eq!(pearson_dispersion(&[0.0, 0.0], &[1.0, 1.0]), None);
    assert_eq!(pearson_dispersion(&[5.0, f64::NAN], &[1.0, 1.0]), None);
    assert_eq!(pearson_dispersion(&[5.0, 5.0], &[1.0, 0.0]), None);
    assert_eq!(
        pearson_dispersion(&[5.0, 5.0, 9.0], &[1.0, 1.0]),
        Some((0.0, 1.0))
    );
    assert_eq!(pooled_pearson(&[]), None);
    assert_eq!(pooled_pearson(&[(3.0, 0.0), (f64::INFINITY, 2.0)]), None);
}

#[test]
fn median_ignores_nan() {
    assert_eq!(median(&[]), None);
    assert_eq!(median(&[f64::NAN]), None);
    assert_eq!(median(&[3.0, f64::NAN, 1.0, 2.0]), Some(2.0));
    assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    assert_eq!(median(&[f64::MAX, f64::MAX]), Some(f64::MAX));
    assert_eq!(
        median(&[f64::NEG_INFINITY, f64::INFINITY]),
        Some(f64::NEG_INFINITY)
    );
    assert_eq!(
        median(&[f64::INFINITY, 1.0, f64::INFINITY]),
        Some(f64::INFINITY)
    );
}

#[test]
fn no_nan_from_degenerate_input() {
    let odd = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.0,
        -1.0,
        1e-300,
        0.5,
        1.0,
        1e300,
    ];
    for &x in &odd {
        for &y in &odd {
            assert!(!t_sf(x, y).is_nan(), "t_sf({x}, {y})");
            assert!(!chi_squared_sf(x, y).is_nan(), "chi_squared_sf({x}, {y})");
            if !x.is_nan() {
                assert!(!t_quantile(x, y).is_nan(), "t_quantile({x}, {y})");
            }
        }
        assert!(!normal_sf(x).is_nan());
        for (k, n) in [(0, 0), (0, 5), (5, 5), (3, 5), (7, 5), (u64::MAX, u64::MAX)] {
            assert!(!binomial_sf(k, n, x).is_nan(), "binomial_sf({k}, {n}, {x})");
            assert!(
                !binomial_cdf(k, n, x).is_nan(),
                "binomial_cdf({k}, {n}, {x})"
            );
            let (lo, hi) = (
                clopper_pearson_lower(k, n, x),
                clopper_pearson_upper(k, n, x),
            );
            assert!((0.0..=1.0).contains(&lo) && (0.0..=1.0).contains(&hi));
        }
    }
    assert!(benjamini_hochberg(&odd)
        .iter()
        .all(|p| (0.0..=1.0).contains(p)));
    assert_eq!(median(&odd), Some(0.25));
    // Valid windows are those with finite counts >= 0 and finite exposures > 0.
    assert_eq!(pearson_dispersion(&odd, &odd), Some((0.0, 3.0)));
    let group = DispersionGroup {
        counts: &odd,
        exposures: &odd,
    };
    // mu^2 of the pod with exposure 1e-300 underflows: the group's statistic is not
    // finite, so the group is skipped.
    assert_eq!(pooled_dispersion(&[group], 0.0), None);
}

#[test]
fn robust_dispersion_hand_example() {
    // Two pods of equal exposure. (100, 140): mu = 120, X2(phi) = 800 / (120 + 14400 phi),
    // equal to the chi-squared(1) median 0.454936 at phi = (1758.487 - 120) / 14400
    // = 0.113784. (200, 260): mu = 230, X2 = 1800 / (230 + 52900 phi): phi = 0.070446.
    // (100, 100): X2 = 0 already, phi = 0. The median of the three is 0.070446.
    let one = [1.0, 1.0];
    let groups = [
        DispersionGroup {
            counts: &[100.0, 140.0],
            exposures: &one,
        },
        DispersionGroup {
            counts: &[200.0, 260.0],
            exposures: &one,
        },
        DispersionGroup {
            counts: &[100.0, 100.0],
            exposures: &one,
        },
    ];
    let median = robust_dispersion(&groups, 0.0, 0.5).expect("three groups");
    assert!((median.phi - 0.070_446).abs() < 1e-5, "{}", median.phi);
    assert_eq!((median.functions, median.df), (3, 3.0));
    // The upper quartile is the largest of three: (100, 140) against the chi-squared(1)
    // 75th percentile 1.323304: (800 / 1.323304 - 120) / 14400 = 0.033650.
    let top = robust_dispersion(&groups, 0.0, 0.75).expect("three groups");
    assert!((top.phi - 0.033_650).abs() < 1e-5, "{}", top.phi);
    // A group of one pod, or below the minimum mean, is not used; nor is a bad quantile.
    assert_eq!(robust_dispersion(&groups, 115.0, 0.5).unwrap().functions, 2);
    assert_eq!(robust_dispersion(&groups, 0.0, 1.0), None);
    assert_eq!(
        robust_dispersion(
            &[DispersionGroup {
                counts: &[5.0],
                exposures: &[1.0]
            }],
            0.0,
            0.5
        ),
        None
    );
}

#[test]
fn a_few_changed_groups_do_not_move_the_robust_dispersion() {
    // 40 groups with phi about 0.01 (pods 5-9% either side of a common rate), then one
    // huge group 3x apart (a regression spread between two "replicate" pods). The moment
    // estimate doubles with the one big group; the median moves by one rank.
    let one = [1.0, 1.0];
    let counts: Vec<[f64; 2]> = (0..40)
        .map(|i| {
            let mu = 400.0 + 50.0 * i as f64;
            let d = 0.05 + 0.001 * i as f64;
            [mu * (1.0 - d), mu * (1.0 + d)]
        })
        .chain(std::iter::once([10_000.0, 30_000.0]))
        .collect();
    let groups: Vec<DispersionGroup<'_>> = counts
        .iter()
        .map(|c| DispersionGroup {
            counts: c,
            exposures: &one,
        })
        .collect();
    let calm = robust_dispersion(&groups[..40], 0.0, 0.5).unwrap().phi;
    let with = robust_dispersion(&groups, 0.0, 0.5).unwrap().phi;
    let moment = pooled_dispersion(&groups, 0.0).unwrap().phi;
    let moment_calm = pooled_dispersion(&groups[..40], 0.0).unwrap().phi;
    assert!(with < calm * 1.1, "{calm} -> {with}");
    assert!(moment > moment_calm * 2.0, "{moment_calm} -> {moment}");
}

#[test]
fn welch_log_of_means_hand_example() {
    // a = [0, 2, 4]: mean 2, variance 4; b = [100, 120, 140]: mean 120, variance 400.
    // se^2 = 4 / (3 * 4) + 400 / (3 * 14400) = 0.342593, se = 0.585314;
    // ln(120 / 2) = 4.094345; df = 1 / (0.97297^2 / 2 + 0.027027^2 / 2) = 2.111025.
    let w = welch_log_of_means(&[0.0, 2.0, 4.0], &[100.0, 120.0, 140.0]).unwrap();
    assert!((w.mean_diff - 4.094_345).abs() < 1e-6, "{}", w.mean_diff);
    assert!((w.se - 0.585_314).abs() < 1e-6, "{}", w.se);
    assert!((w.df - 2.111_025).abs() < 1e-5, "{}", w.df);
    assert_eq!(welch_log_of_means(&[0.0, 0.0], &[1.0, 2.0]), None);
    assert_eq!(welch_log_of_means(&[1.0], &[1.0, 2.0]), None);
}

#[test]
fn chi_squared_quantiles_match_tables() {
    assert!((chi_squared_quantile(0.5, 1.0) - 0.454_936).abs() < 1e-6);
    assert!((chi_squared_quantile(0.75, 1.0) - 1.323_304).abs() < 1e-6);
    assert!((chi_squared_quantile(0.5, 4.0) - 3.356_694).abs() < 1e-6);
    assert!(chi_squared_quantile(1.0, 4.0).is_nan());
}

//! Statistical building blocks for the comparison: pure functions, values in, values out.
//!
//! Nothing here does I/O and nothing panics. Degenerate input has a documented, defined result:
//! tail probabilities (p-values) never come out as NaN — an input that carries no information
//! (a NaN statistic, a NaN or non-positive `df`, a NaN proportion) gives `1.0`, a p-value that
//! never rejects; estimators that cannot be computed return `None`. The only NaN that can come
//! out is from a quantile function given a NaN probability.
//!
//! Distribution functions are statrs' where statrs is accurate. The regularized incomplete beta
//! function behind the binomial, Beta and Student t tails is our own: statrs 0.19 stops its
//! continued fraction after 140 terms, which is off by about 1e-2 near the centre of a binomial
//! with a million events, and its inverse drifts for large shape parameters.

use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};
use statrs::function::gamma::ln_gamma;

/// Benjamini–Hochberg adjusted p-values (step-up), in the order of the input.
///
/// Monotone in the raw p-values and capped at 1. A NaN p-value counts as 1 (it still counts
/// towards the number of tests); values outside `[0, 1]` are clamped. Empty input gives an
/// empty vector.
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let clean: Vec<f64> = p.iter().map(|&v| clamp_probability(v, 1.0)).collect();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&i, &j| clean[i].total_cmp(&clean[j]));
    let mut adjusted = vec![1.0; m];
    let mut running = 1.0_f64;
    for (rank, &i) in order.iter().enumerate().rev() {
        let scaled = clean[i] * m as f64 / (rank + 1) as f64;
        running = running.min(scaled);
        adjusted[i] = running;
    }
    adjusted
}

/// P(X >= k) for X ~ Binomial(n, p), accurate to a small relative error far into the tail.
///
/// Computed as the regularized incomplete beta I_p(k, n - k + 1). `k = 0` gives 1, `k > n`
/// gives 0; `p` outside `[0, 1]` is clamped and a NaN `p` gives 1 (no evidence).
pub fn binomial_sf(k: u64, n: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    if p.is_nan() {
        return 1.0;
    }
    let p = p.clamp(0.0, 1.0);
    ibeta(k as f64, (n - k) as f64 + 1.0, p, 1.0 - p).0
}

/// P(X <= k) for X ~ Binomial(n, p), accurate to a small relative error far into the tail.
///
/// Computed as I_{1-p}(n - k, k + 1). `k >= n` gives 1; `p` outside `[0, 1]` is clamped and a
/// NaN `p` gives 1 (no evidence).
pub fn binomial_cdf(k: u64, n: u64, p: f64) -> f64 {
    if k >= n || p.is_nan() {
        return 1.0;
    }
    let p = p.clamp(0.0, 1.0);
    ibeta((n - k) as f64, k as f64 + 1.0, 1.0 - p, p).0
}

/// Exact one-sided binomial test: the p-value P(X >= k) under X ~ Binomial(n, p0).
///
/// Small when the observed proportion `k / n` is clearly above `p0`. Same edge cases as
/// [`binomial_sf`].
pub fn binomial_test_greater(k: u64, n: u64, p0: f64) -> f64 {
    binomial_sf(k, n, p0)
}

/// Exact one-sided binomial test: the p-value P(X <= k) under X ~ Binomial(n, p0).
///
/// Small when the observed proportion `k / n` is clearly below `p0`. Same edge cases as
/// [`binomial_cdf`].
pub fn binomial_test_less(k: u64, n: u64, p0: f64) -> f64 {
    binomial_cdf(k, n, p0)
}

/// Exact (Clopper–Pearson) one-sided lower confidence bound, level `1 - alpha`, for a binomial
/// proportion with `k` successes out of `n`.
///
/// The `alpha` quantile of Beta(k, n - k + 1). `k = 0` or `n = 0` gives 0; `k > n` is treated as
/// `k = n`. `alpha` is clamped to `[0, 1]`; a NaN `alpha` is treated as 0 (the widest bound).
/// A two-sided exact interval at level `1 - 2 alpha` has this as its lower end.
pub fn clopper_pearson_lower(k: u64, n: u64, alpha: f64) -> f64 {
    let k = k.min(n);
    if k == 0 {
        return 0.0;
    }
    let alpha = clamp_probability(alpha, 0.0);
    beta_inv(k as f64, (n - k) as f64 + 1.0, alpha, Tail::Lower).0
}

/// Exact (Clopper–Pearson) one-sided upper confidence bound, level `1 - alpha`, for a binomial
/// proportion with `k` successes out of `n`.
///
/// The `1 - alpha` quantile of Beta(k + 1, n - k). `k >= n` (including `n = 0`) gives 1.
/// `alpha` is clamped to `[0, 1]`; a NaN `alpha` is treated as 0 (the widest bound).
pub fn clopper_pearson_upper(k: u64, n: u64, alpha: f64) -> f64 {
    if k >= n {
        return 1.0;
    }
    let alpha = clamp_probability(alpha, 0.0);
    beta_inv(k as f64 + 1.0, (n - k) as f64, alpha, Tail::Upper).0
}

/// Result of Welch's unequal-variance comparison of two samples: `b` minus `a`.
///
/// Used for per-pod values where the pod is the replicate (goroutine counts, totals on a log
/// scale). Test with [`Welch::t`] and [`t_sf`] / [`t_quantile`] at `df`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Welch {
    /// mean(b) - mean(a).
    pub mean_diff: f64,
    /// Standard error of `mean_diff`: sqrt(var_a / n_a + var_b / n_b). Zero when both samples
    /// are constant.
    pub se: f64,
    /// Welch–Satterthwaite degrees of freedom; `n_a + n_b - 2` when both samples are constant.
    pub df: f64,
}

impl Welch {
    /// The t statistic against a null difference: `(mean_diff - null_diff) / se`.
    ///
    /// With `se = 0` (both samples constant) the difference is exact: the result is 0 when it
    /// equals `null_diff` and +/- infinity otherwise, never NaN (a NaN `null_diff` gives 0).
    pub fn t(&self, null_diff: f64) -> f64 {
        let d = self.mean_diff - null_diff;
        if d.is_nan() || d == 0.0 {
            0.0
        } else if self.se > 0.0 {
            d / self.se
        } else {
            d.signum() * f64::INFINITY
        }
    }
}

/// Welch's two-sample comparison of `b` against `a` (difference `b - a`).
///
/// Non-finite values are ignored. `None` when either side has fewer than two finite values or
/// the variance overflows. Both sides constant gives `se = 0` and `df = n_a + n_b - 2`.
pub fn welch(a: &[f64], b: &[f64]) -> Option<Welch> {
    let (na, ma, va) = mean_var(a)?;
    let (nb, mb, vb) = mean_var(b)?;
    welch_of_parts(mb - ma, (va / na, na), (vb / nb, nb))
}

/// Welch's result from a difference and each side's (squared standard error, count).
fn welch_of_parts(mean_diff: f64, (sa, na): (f64, f64), (sb, nb): (f64, f64)) -> Option<Welch> {
    let se2 = sa + sb;
    if !se2.is_finite() || !mean_diff.is_finite() {
        return None;
    }
    if se2 <= 0.0 {
        return Some(Welch {
            mean_diff,
            se: 0.0,
            df: na + nb - 2.0,
        });
    }
    // Welch–Satterthwaite, with both terms scaled by se2 so that nothing under- or overflows.
    let (fa, fb) = (sa / se2, sb / se2);
    let df = 1.0 / (fa * fa / (na - 1.0) + fb * fb / (nb - 1.0));
    Some(Welch {
        mean_diff,
        se: se2.sqrt(),
        df,
    })
}

/// Welch's comparison of the log of two means: `mean_diff` = ln(mean(b) / mean(a)), with the
/// delta method's standard error sqrt(var_a / (n_a mean_a^2) + var_b / (n_b mean_b^2)).
///
/// For per-pod values where some pod has none at all (no contention in the window): the log of
/// a zero is no number, and a stand-in for it (a tiny floor) made the spread of the logs so
/// wide that a 550-fold rise read as undecided. Means are finite whenever the values are.
/// `None` when either side has fewer than two finite values or a non-positive mean.
pub fn welch_log_of_means(a: &[f64], b: &[f64]) -> Option<Welch> {
    let (na, ma, va) = mean_var(a)?;
    let (nb, mb, vb) = mean_var(b)?;
    if ma <= 0.0 || mb <= 0.0 {
        return None;
    }
    welch_of_parts(
        (mb / ma).ln(),
        (va / (na * ma * ma), na),
        (vb / (nb * mb * mb), nb),
    )
}

/// Upper tail P(T > t) of Student's t with `df` degrees of freedom.
///
/// `df = +inf` is the standard normal. Relative error about 1e-14 for small df, growing to
/// 1e-9 towards df = 1e8 (beyond that, a 1/df-corrected normal tail).
/// NaN `t`, NaN or non-positive `df` give 1 (no evidence); `t = +/-inf` gives 0 / 1.
pub fn t_sf(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return 1.0;
    }
    if t.is_infinite() {
        return if t > 0.0 { 0.0 } else { 1.0 };
    }
    if df == f64::INFINITY {
        return normal_sf(t);
    }
    if df > T_EDGEWORTH_DF {
        // First-order Edgeworth (Fisher) correction of the normal tail.
        // Beyond |t| ~ 38 the density underflows and so does the correction.
        let density = (-0.5 * t * t).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let correction = if density > 0.0 {
            density * t * (t * t + 1.0) / (4.0 * df)
        } else {
            0.0
        };
        return (normal_sf(t) + correction).clamp(0.0, 1.0);
    }
    if t == 0.0 {
        return 0.5;
    }
    // P(|T| > |t|) = I_x(df/2, 1/2) with x = df / (df + t^2); both x and 1 - x are formed
    // without cancellation.
    let q = t / df.sqrt();
    let r = q * q;
    let x = 1.0 / (1.0 + r);
    let y = 1.0 / (1.0 + 1.0 / r);
    let (two_sided, central) = ibeta(0.5 * df, 0.5, x, y);
    if t > 0.0 {
        0.5 * two_sided
    } else {
        0.5 + 0.5 * central
    }
}

/// Quantile of Student's t with `df` degrees of freedom: the `t` with P(T <= t) = `p`.
///
/// `df = +inf` (or beyond 1e6, via the Cornish–Fisher expansion) is the standard normal.
/// `p <= 0` gives -inf, `p >= 1` gives +inf, NaN `p` gives NaN. NaN or non-positive `df` is
/// the limit df -> 0: +/- infinity (0 at `p = 0.5`), i.e. an unbounded interval.
pub fn t_quantile(p: f64, df: f64) -> f64 {
    if p.is_nan() {
        return f64::NAN;
    }
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    if p == 0.5 {
        return 0.0;
    }
    if df.is_nan() || df <= 0.0 {
        return if p < 0.5 {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
    }
    if df == f64::INFINITY {
        return normal_quantile(p);
    }
    if df > T_CORNISH_FISHER_DF {
        return t_cornish_fisher(normal_quantile(p), df);
    }
    // With X ~ Beta(df/2, 1/2) and Y = 1 - X: P(|T| > s) = P(X <= x) = 2 * tail where
    // s^2 = df * y / x.
    let (tail, sign) = if p < 0.5 { (p, -1.0) } else { (1.0 - p, 1.0) };
    let (x, y) = if tail > 0.25 {
        // Near the centre use P(|T| <= |t|) = P(Y <= y), formed exactly from p.
        let (y, x) = beta_inv(0.5, 0.5 * df, (2.0 * p - 1.0).abs(), Tail::Lower);
        (x, y)
    } else {
        beta_inv(0.5 * df, 0.5, 2.0 * tail, Tail::Lower)
    };
    if x <= 0.0 {
        return sign * f64::INFINITY;
    }
    sign * (df * y / x).sqrt()
}

/// Upper tail P(Z > z) of the standard normal (statrs; relative error about 1e-10).
///
/// A NaN `z` gives 1 (no evidence).
pub fn normal_sf(z: f64) -> f64 {
    if z.is_nan() {
        return 1.0;
    }
    Normal::standard().sf(z)
}

/// Quantile of the standard normal: the `z` with P(Z <= z) = `p`.
///
/// `p <= 0` gives -inf, `p >= 1` gives +inf, NaN `p` gives NaN.
pub fn normal_quantile(p: f64) -> f64 {
    if p.is_nan() {
        return f64::NAN;
    }
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    Normal::standard().inverse_cdf(p)
}

/// Upper tail P(X > x) of the chi-squared distribution with `df` degrees of freedom.
///
/// Used to test whether windows of a pod agree beyond sampling noise. statrs up to df = 1e6,
/// a saddlepoint approximation beyond. NaN `x`, NaN, non-positive or infinite `df` give 1 (no
/// evidence); `x <= 0` gives 1 and `x = +inf` gives 0.
pub fn chi_squared_sf(x: f64, df: f64) -> f64 {
    if x.is_nan() || x <= 0.0 || !df.is_finite() || df <= 0.0 {
        return 1.0;
    }
    if x == f64::INFINITY {
        return 0.0;
    }
    if df > CHI2_ASYMPTOTIC_DF {
        return gamma_upper_asymptotic(0.5 * df, 0.5 * x);
    }
    match ChiSquared::new(df) {
        Ok(d) => clamp_probability(d.sf(x), 1.0),
        Err(_) => 1.0,
    }
}

/// One function's counts across the pods of one side, with those pods' exposures (size
/// factors). Input to [`pooled_dispersion`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DispersionGroup<'a> {
    /// Event counts of the function, one per pod.
    pub counts: &'a [f64],
    /// Exposure of each pod (same order and length as `counts`).
    pub exposures: &'a [f64],
}

/// A pooled negative-binomial dispersion: counts have variance mu + phi * mu^2.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DispersionEstimate {
    /// The dispersion phi, at least 0. sqrt(phi) is the between-pod coefficient of variation
    /// beyond Poisson noise.
    pub phi: f64,
    /// Degrees of freedom behind the estimate: the sum over used groups of (pods - 1).
    pub df: f64,
    /// How many groups (functions) were used.
    pub functions: usize,
}

/// Method-of-moments dispersion phi of a negative binomial (variance mu + phi * mu^2), pooled
/// over many functions of one sample type.
///
/// Each group is one function on one side: the rate is fitted as sum(counts) / sum(exposures)
/// and mu_p = exposure_p * rate. Its statistic is
/// sum_p ((x_p - mu_p)^2 - (1 - w_p) x_p) / mu_p^2 with w_p = exposure_p / sum(exposures),
/// whose expectation is about phi * (P - 2 + P * sum_p w_p^2) — phi * (P - 1) with equal
/// exposures, where it reduces to the classic (s^2 - mean) / mean^2. The `(1 - w_p)` and the
/// exact coefficient remove the bias of subtracting the full Poisson variance from residuals
/// around a fitted mean. Statistics and coefficients are summed over groups and divided (an
/// unbiased pooling; a median of per-group estimates would be biased low), then clamped at 0.
///
/// Pods with a negative or non-finite count, or a non-positive or non-finite exposure, are
/// dropped (slices of unequal length are cut to the shorter). A group is skipped when fewer
/// than two pods remain, its mean count per pod is below `min_mean` (a NaN `min_mean` is 0),
/// it has no events, or its statistic overflows. `None` when no group is usable.
pub fn pooled_dispersion(
    groups: &[DispersionGroup<'_>],
    min_mean: f64,
) -> Option<DispersionEstimate> {
    let min_mean = if min_mean.is_nan() { 0.0 } else { min_mean };
    let (mut stat, mut coef, mut df, mut functions) = (0.0, 0.0, 0.0, 0_usize);
    for g in groups {
        let Some((pods, rate, exposure)) = usable_group(g, min_mean) else {
            continue;
        };
        let n = pods.len();
        let mut s = 0.0;
        let mut sum_w2 = 0.0;
        for &(x, e) in &pods {
            let w = e / exposure;
            let mu = e * rate;
            s += ((x - mu).powi(2) - (1.0 - w) * x) / (mu * mu);
            sum_w2 += w * w;
        }
        let c = n as f64 - 2.0 + n as f64 * sum_w2;
        if !s.is_finite() || c <= 0.0 {
            continue;
        }
        stat += s;
        coef += c;
        df += (n - 1) as f64;
        functions += 1;
    }
    if functions == 0 {
        return None;
    }
    let phi = (stat / coef).max(0.0);
    Some(DispersionEstimate {
        phi: if phi.is_finite() { phi } else { 0.0 },
        df,
        functions,
    })
}

/// A dispersion phi that a minority of groups cannot move: the `quantile` of the groups' own
/// quantile-unbiased estimates (0.5: the median).
///
/// Each group g (one function on one side, or one function across the two pods of a one-pod
/// comparison) has Pearson's statistic X2_g(phi) = sum_p (x_p - mu_p)^2 / (mu_p + phi mu_p^2)
/// around its fitted rate, about chi-squared with (pods - 1) degrees of freedom when phi is
/// right. Its own estimate phi_g solves X2_g(phi_g) = the chi-squared `quantile` (0 when even
/// phi = 0 leaves X2_g below it), so P(phi_g > phi) = 1 - quantile whatever the group's size.
/// The `quantile` of the phi_g is then consistent for a common phi, and groups with real
/// changes (a regressed function and its callers in a one-pod comparison, where the two pods
/// are taken as replicates) move it only by their rank, not by their size: with the median,
/// fewer than half the groups can never carry it. The moment estimate
/// ([`pooled_dispersion`]) weighs groups by their counts, so one big changed function
/// dominated it.
///
/// Groups are filtered as in [`pooled_dispersion`] (`min_mean`, invalid pods). `df` is the sum
/// of (pods - 1) over used groups. `None` when no group is usable or `quantile` is not in
/// (0, 1).
pub fn robust_dispersion(
    groups: &[DispersionGroup<'_>],
    min_mean: f64,
    quantile: f64,
) -> Option<DispersionEstimate> {
    if !(quantile > 0.0 && quantile < 1.0) {
        return None;
    }
    let min_mean = if min_mean.is_nan() { 0.0 } else { min_mean };
    let mut own: Vec<f64> = Vec::new();
    let mut df = 0.0;
    // Chi-squared quantiles by degrees of freedom: most groups share a handful of pod counts.
    let mut critical: Vec<(usize, f64)> = Vec::new();
    for g in groups {
        let Some((pods, rate, _)) = usable_group(g, min_mean) else {
            continue;
        };
        let n = pods.len();
        let fitted: Vec<(f64, f64)> = pods.iter().map(|&(x, e)| (x, e * rate)).collect();
        let q = match critical.iter().find(|(d, _)| *d == n - 1) {
            Some(&(_, q)) => q,
            None => {
                let q = chi_squared_quantile(quantile, (n - 1) as f64);
                critical.push((n - 1, q));
                q
            }
        };
        if let Some(phi) = group_dispersion(&fitted, q) {
            own.push(phi);
            df += (n - 1) as f64;
        }
    }
    if own.is_empty() {
        return None;
    }
    own.sort_by(f64::total_cmp);
    // The lower of the two order statistics around the quantile: with an even count the
    // median is the lower middle one, which is what "half the groups lie above" needs.
    let index = ((own.len() as f64 * quantile).ceil() as usize).clamp(1, own.len()) - 1;
    Some(DispersionEstimate {
        phi: own[index],
        df,
        functions: own.len(),
    })
}

/// A group usable for a dispersion estimate: its valid pods as (count, exposure), its fitted
/// rate and its total exposure.
type UsableGroup = (Vec<(f64, f64)>, f64, f64);

/// The group as [`UsableGroup`] when it has at least two valid pods, events, finite sums and
/// a mean count per pod of at least `min_mean`.
fn usable_group(g: &DispersionGroup<'_>, min_mean: f64) -> Option<UsableGroup> {
    let pods = valid_pairs(g.counts, g.exposures);
    let n = pods.len();
    if n < 2 {
        return None;
    }
    let total: f64 = pods.iter().map(|&(x, _)| x).sum();
    let exposure: f64 = pods.iter().map(|&(_, e)| e).sum();
    if total <= 0.0 || !total.is_finite() || !exposure.is_finite() || total / (n as f64) < min_mean
    {
        return None;
    }
    Some((pods, total / exposure, exposure))
}

/// The phi at which one group's Pearson statistic around its fitted means equals `target`:
/// 0 when it is already at most `target` with Poisson noise alone. `None` when the statistic
/// is not finite.
fn group_dispersion(fitted: &[(f64, f64)], target: f64) -> Option<f64> {
    let pearson = |phi: f64| -> f64 {
        fitted
            .iter()
            .filter(|&&(_, mu)| mu > 0.0)
            .map(|&(x, mu)| (x - mu).powi(2) / (mu + phi * mu * mu))
            .sum()
    };
    let at_zero = pearson(0.0);
    if !at_zero.is_finite() {
        return None;
    }
    if at_zero <= target {
        return Some(0.0);
    }
    // The statistic falls from above `target` towards 0 as phi grows: bisect on log phi.
    let (mut lo, mut hi) = (1e-12_f64, 1.0_f64);
    while pearson(hi) > target {
        hi *= 16.0;
        if hi > 1e12 {
            return Some(hi);
        }
    }
    for _ in 0..80 {
        let mid = (lo * hi).sqrt();
        if pearson(mid) > target {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi / lo < 1.0 + 1e-9 {
            break;
        }
    }
    Some((lo * hi).sqrt())
}

/// The `p` quantile of the chi-squared distribution with `df` degrees of freedom (NaN for
/// `p` outside (0, 1) or a non-positive `df`).
pub fn chi_squared_quantile(p: f64, df: f64) -> f64 {
    match ChiSquared::new(df) {
        Ok(d) if p > 0.0 && p < 1.0 => d.inverse_cdf(p),
        _ => f64::NAN,
    }
}

/// Pearson's chi-squared statistic of one function's counts across the windows of one pod,
/// against a constant rate: `Some((chi2, df))` with df = windows - 1.
///
/// Under steady load and Poisson sampling chi2 / df is about 1; larger means the windows
/// disagree (quasi-Poisson overdispersion). The rate is sum(counts) / sum(exposures). Windows
/// with a negative or non-finite count or a non-positive or non-finite exposure are dropped.
/// `None` with fewer than two windows or no events at all.
pub fn pearson_dispersion(counts: &[f64], exposures: &[f64]) -> Option<(f64, f64)> {
    let windows = valid_pairs(counts, exposures);
    if windows.len() < 2 {
        return None;
    }
    let total: f64 = windows.iter().map(|&(x, _)| x).sum();
    let exposure: f64 = windows.iter().map(|&(_, e)| e).sum();
    if total <= 0.0 || !total.is_finite() || !exposure.is_finite() {
        return None;
    }
    let rate = total / exposure;
    let chi2: f64 = windows
        .iter()
        .map(|&(x, e)| {
            let mu = e * rate;
            (x - mu).powi(2) / mu
        })
        .sum();
    chi2.is_finite().then(|| (chi2, (windows.len() - 1) as f64))
}

/// Within-pod window agreement pooled over functions (and pods).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowDispersion {
    /// Summed Pearson chi-squared.
    pub chi2: f64,
    /// Summed degrees of freedom.
    pub df: f64,
    /// Quasi-Poisson variance factor max(1, chi2 / df): how much to widen Poisson intervals.
    pub factor: f64,
    /// P(ChiSquared(df) > chi2): small means the load was not steady across windows.
    pub p_value: f64,
}

/// Pools [`pearson_dispersion`] results: sums chi2 and df, gives the widening factor
/// max(1, chi2 / df) and the p-value of chi2 against ChiSquared(df).
///
/// Parts with a non-finite or negative chi2 or a non-positive or non-finite df are ignored;
/// `None` when none remain.
pub fn pooled_pearson(parts: &[(f64, f64)]) -> Option<WindowDispersion> {
    let (chi2, df) = parts
        .iter()
        .filter(|&&(c, d)| c.is_finite() && c >= 0.0 && d.is_finite() && d > 0.0)
        .fold((0.0, 0.0), |(c0, d0), &(c, d)| (c0 + c, d0 + d));
    if df <= 0.0 || !df.is_finite() || !chi2.is_finite() {
        return None;
    }
    Some(WindowDispersion {
        chi2,
        df,
        factor: (chi2 / df).max(1.0),
        p_value: chi_squared_sf(chi2, df),
    })
}

/// Median of the non-NaN values (mean of the middle two for an even count); `None` if there
/// are none.
///
/// Used for median-of-ratios normalisation. Infinite values take part in the ordering; a
/// middle pair of -inf and +inf gives -inf.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        Some(v[mid])
    } else {
        let (lo, hi) = (v[mid - 1], v[mid]);
        // Halved before adding so that nothing overflows; -inf and +inf as the middle pair
        // have no midpoint, and give the lower one.
        let m = lo / 2.0 + hi / 2.0;
        Some(if m.is_nan() { lo } else { m })
    }
}

// ---------------------------------------------------------------------------------------------
// Internals.

/// Beyond this df, Student's t tail is the normal tail with a 1/df correction (relative error
/// below 1e-9 for |t| < 10); up to it, the incomplete beta (relative error below 1e-9).
const T_EDGEWORTH_DF: f64 = 1e8;
/// Beyond this df, t quantiles come from the Cornish–Fisher expansion (error below 1e-13).
const T_CORNISH_FISHER_DF: f64 = 1e6;

/// Beyond this df, chi-squared tails come from a saddlepoint approximation (relative error
/// below 1e-9); statrs' series slows down and loses accuracy there.
const CHI2_ASYMPTOTIC_DF: f64 = 1e6;

/// Upper tail of Gamma(a, 1) at x for large a: the Lugannani–Rice saddlepoint formula
/// Q(w) + phi(w) (1/u - 1/w), relative error of order a^-3/2.
fn gamma_upper_asymptotic(a: f64, x: f64) -> f64 {
    let d = x / a - 1.0;
    let w = d.signum() * (2.0 * a * (d - d.ln_1p())).max(0.0).sqrt();
    let correction = if w.abs() < 1e-3 {
        // The limit of 1/u - 1/w at the mean.
        -1.0 / (3.0 * a.sqrt())
    } else {
        1.0 / (d * a.sqrt()) - 1.0 / w
    };
    let density = (-0.5 * w * w).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let correction = if density > 0.0 {
        density * correction
    } else {
        0.0
    };
    (normal_sf(w) + correction).clamp(0.0, 1.0)
}

/// Clamp a probability into `[0, 1]`, replacing NaN by `nan_as`.
fn clamp_probability(p: f64, nan_as: f64) -> f64 {
    if p.is_nan() {
        nan_as
    } else {
        p.clamp(0.0, 1.0)
    }
}

/// (count, mean, sample variance) of the finite values; `None` with fewer than two.
fn mean_var(v: &[f64]) -> Option<(f64, f64, f64)> {
    let finite: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if finite.len() < 2 {
        return None;
    }
    let n = finite.len() as f64;
    let mean = finite.iter().map(|x| x / n).sum::<f64>();
    let ss: f64 = finite.iter().map(|x| (x - mean).powi(2)).sum();
    Some((n, mean, ss / (n - 1.0)))
}

/// Pairs (count, exposure) with a finite non-negative count and a finite positive exposure.
fn valid_pairs(counts: &[f64], exposures: &[f64]) -> Vec<(f64, f64)> {
    counts
        .iter()
        .zip(exposures)
        .map(|(&x, &e)| (x, e))
        .filter(|&(x, e)| x.is_finite() && x >= 0.0 && e.is_finite() && e > 0.0)
        .collect()
}

/// Cornish–Fisher expansion of the t quantile in powers of 1/df (Abramowitz & Stegun 26.7.5).
fn t_cornish_fisher(z: f64, df: f64) -> f64 {
    let z2 = z * z;
    let g1 = z * (z2 + 1.0) / 4.0;
    let g2 = z * ((5.0 * z2 + 16.0) * z2 + 3.0) / 96.0;
    let g3 = z * (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) / 384.0;
    let g4 = z * ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) / 92160.0;
    z + (g1 + (g2 + (g3 + g4 / df) / df) / df) / df
}

/// Which tail of a distribution a probability refers to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tail {
    Lower,
    Upper,
}

/// Stirling series remainder: ln Gamma(z) - [(z - 1/2) ln z - z + ln(2 pi) / 2], for z >= 10.
fn stirling_delta(z: f64) -> f64 {
    let r = 1.0 / z;
    let r2 = r * r;
    r * (1.0 / 12.0 - r2 * (1.0 / 360.0 - r2 * (1.0 / 1260.0 - r2 * (1.0 / 1680.0 - r2 / 1188.0))))
}

/// ln of x^a y^b / B(a, b) with y = 1 - x, without the cancellation of large log-gamma terms.
fn ln_beta_front(a: f64, b: f64, x: f64, y: f64) -> f64 {
    const STIRLING_MIN: f64 = 10.0;
    const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;
    // ln x and ln y, each from whichever of x, y is the accurately known small one.
    let ln_x = if y < 0.5 { (-y).ln_1p() } else { x.ln() };
    let ln_y = if x < 0.5 { (-x).ln_1p() } else { y.ln() };
    let (small, large) = if a < b { (a, b) } else { (b, a) };
    if small >= STIRLING_MIN {
        // a ln(x / mu) + b ln(y / (1 - mu)) + ln(ab / (a + b)) / 2 - ln(2 pi) / 2 - deltas.
        let s = a + b;
        let (mu, nu) = (a / s, b / s);
        let dx = if x <= 0.5 { x - mu } else { nu - y };
        let body = a * (dx / mu).ln_1p() + b * (-dx / nu).ln_1p();
        body + 0.5 * (a / s * b).ln() - HALF_LN_2PI - stirling_delta(a) - stirling_delta(b)
            + stirling_delta(s)
    } else if large >= STIRLING_MIN {
        // ln B = ln Gamma(small) - (large - 1/2) ln(1 + small/large) - small ln(small + large)
        //        + small + delta(large) - delta(small + large).
        let s = small + large;
        let ln_b = ln_gamma(small) - (large - 0.5) * (small / large).ln_1p() - small * s.ln()
            + small
            + stirling_delta(large)
            - stirling_delta(s);
        a * ln_x + b * ln_y - ln_b
    } else {
        a * ln_x + b * ln_y - (ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b))
    }
}

/// Continued fraction for I_x(a, b) (modified Lentz), converging fast for x < (a+1)/(a+b+2).
/// Needs about sqrt(min(a, b)) terms near that point (4,200 for a = b = 5e8); the cap only
/// guards against runaway input.
fn beta_cf(a: f64, b: f64, x: f64, y: f64) -> f64 {
    const TINY: f64 = 1e-300;
    const MAX_TERMS: u32 = 100_000;
    let fix = |v: f64| if v.abs() < TINY { TINY } else { v };
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    // 1 - (a + b) x / (a + 1), from y when x is near 1 (where the plain form cancels).
    let first = if x > 0.5 {
        (1.0 - b + qab * y) / qap
    } else {
        1.0 - qab * x / qap
    };
    let mut d = 1.0 / fix(first);
    let mut h = d;
    for m in 1..=MAX_TERMS {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 / fix(1.0 + aa * d);
        c = fix(1.0 + aa / c);
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 / fix(1.0 + aa * d);
        c = fix(1.0 + aa / c);
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() <= f64::EPSILON || !h.is_finite() {
            break;
        }
    }
    h
}

/// Regularized incomplete beta: (I_x(a, b), 1 - I_x(a, b)), each with a small relative error
/// even when tiny. `y` must be 1 - x, passed separately so callers keep its precision.
/// Callers guarantee a, b > 0; x <= 0 or y <= 0 give the exact limits.
fn ibeta(a: f64, b: f64, x: f64, y: f64) -> (f64, f64) {
    if x <= 0.0 {
        return (0.0, 1.0);
    }
    if y <= 0.0 {
        return (1.0, 0.0);
    }
    if a.min(b) >= ASYMPTOTIC_MIN_SHAPE {
        return ibeta_asymptotic(a, b, x, y);
    }
    let front = ln_beta_front(a, b, x, y).exp();
    // Evaluate the continued fraction on the side where it converges; the other tail is the
    // complement. (At x within about (b + 1) / a of 1 the fraction keeps only about
    // eps * a / (b + 1) of relative precision: 1e-9 for a Student t with df = 1e8.)
    if x * (a + b + 2.0) < a + 1.0 {
        let w = (front * beta_cf(a, b, x, y) / a).clamp(0.0, 1.0);
        (w, 1.0 - w)
    } else {
        let w = (front * beta_cf(b, a, y, x) / b).clamp(0.0, 1.0);
        (1.0 - w, w)
    }
}

/// From this size of both shapes on, the incomplete beta comes from its uniform asymptotic
/// expansion: the continued fraction would need about sqrt(min(a, b)) terms, while the
/// expansion's error (order min(a, b)^-3/2) is already below statrs' normal tail precision.
const ASYMPTOTIC_MIN_SHAPE: f64 = 1e9;

/// (I_x(a, b), 1 - I_x(a, b)) for large a and b: the leading terms of Temme's uniform
/// expansion, in Lugannani–Rice form Phi(w) + phi(w) (1/w - 1/u), where w is the signed root
/// of the deviance and u the standardized distance from the mean a / (a + b).
fn ibeta_asymptotic(a: f64, b: f64, x: f64, y: f64) -> (f64, f64) {
    let s = a + b;
    let (mu, nu) = (a / s, b / s);
    let sd = (mu * nu).sqrt();
    let d = if x <= 0.5 { x - mu } else { nu - y };
    let half_eta2 = (-(mu * (d / mu).ln_1p() + nu * (-d / nu).ln_1p())).max(0.0);
    let w = d.signum() * (2.0 * half_eta2 * s).sqrt();
    let correction = if w.abs() < 1e-3 {
        // The limit of 1/w - 1/u at the mean.
        (nu - mu) / (3.0 * sd * s.sqrt())
    } else {
        1.0 / w - sd / (s.sqrt() * d)
    };
    let density = (-0.5 * w * w).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let lower = normal_sf(-w) + density * correction;
    let upper = normal_sf(w) - density * correction;
    (lower.clamp(0.0, 1.0), upper.clamp(0.0, 1.0))
}

/// Density of Beta(a, b) at x (y = 1 - x) times x: d I / d ln x.
fn beta_density_times_x(a: f64, b: f64, x: f64, y: f64) -> f64 {
    (ln_beta_front(a, b, x, y) - y.ln()).exp()
}

/// Quantile of Beta(a, b): the (x, 1 - x) at which the given tail has probability `q`.
///
/// Solves on whichever of x and 1 - x is below 1/2, so both come out with a small relative
/// error. Newton steps on ln x, safeguarded by bisection; terminates for any input.
fn beta_inv(a: f64, b: f64, q: f64, tail: Tail) -> (f64, f64) {
    let lower = tail == Tail::Lower;
    if q <= 0.0 {
        return if lower { (0.0, 1.0) } else { (1.0, 0.0) };
    }
    if q >= 1.0 {
        return if lower { (1.0, 0.0) } else { (0.0, 1.0) };
    }
    let (below, above) = ibeta(a, b, 0.5, 0.5);
    let answer_below_half = if lower { q < below } else { q > above };
    if answer_below_half {
        let x = beta_inv_small(a, b, q, tail);
        (x, 1.0 - x)
    } else {
        // 1 - X ~ Beta(b, a) and the tails swap.
        let flipped = if lower { Tail::Upper } else { Tail::Lower };
        let y = beta_inv_small(b, a, q, flipped);
        (1.0 - y, y)
    }
}

/// The x in (0, 1/2] where the `tail` probability of Beta(a, b) is `q`, known to lie there.
fn beta_inv_small(a: f64, b: f64, q: f64, tail: Tail) -> f64 {
    const MAX_STEPS: usize = 400;
    const TOL: f64 = 4.0 * f64::EPSILON;
    // g(u) increases with u = ln x and is zero at the answer; it is formed from the tail the
    // caller named, so a small q keeps its precision.
    let g = |x: f64| {
        let (lo, up) = ibeta(a, b, x, 1.0 - x);
        match tail {
            Tail::Lower => lo - q,
            Tail::Upper => q - up,
        }
    };
    let (mut lo, mut hi) = (f64::MIN_POSITIVE.ln(), 0.5_f64.ln());
    if g(lo.exp()) >= 0.0 {
        return 0.0;
    }
    // Start at the mean when it lies in the bracket, else at 1/4.
    let mean = a / (a + b);
    let mut u = if mean < 0.5 {
        mean.ln().max(lo)
    } else {
        0.25_f64.ln()
    };
    for _ in 0..MAX_STEPS {
        let x = u.exp();
        let gu = g(x);
        if gu == 0.0 {
            return x;
        }
        if gu < 0.0 {
            lo = u;
        } else {
            hi = u;
        }
        let slope = beta_density_times_x(a, b, x, 1.0 - x);
        let newton = u - gu / slope;
        let next = if newton.is_finite() && newton > lo && newton < hi {
            newton
        } else {
            0.5 * (lo + hi)
        };
        let step = (next - u).abs();
        u = next;
        if step <= TOL || hi - lo <= TOL {
            break;
        }
    }
    u.exp()
}

#[cfg(test)]
mod tests {
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
}

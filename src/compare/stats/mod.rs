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

mod beta;
use beta::*;

#[cfg(test)]
mod tests;

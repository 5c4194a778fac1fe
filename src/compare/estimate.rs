//! An estimated ratio with its noise, able to answer margin questions at any threshold.
//!
//! The comparison computes one [`Estimate`] per function and metric without knowing the policy;
//! the policy later asks it "is theta above 1.20?" with its own threshold and error rate.

use serde::{Deserialize, Serialize};

use super::stats;

/// The noise model behind an estimate, with the numbers it needs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Noise {
    /// log(theta) is approximately t-distributed (normal when `df` is infinite) around the
    /// truth with standard error `se`: the overdispersed-Poisson model with pods as replicates,
    /// or Welch's test on per-pod values.
    LogT {
        /// Standard error of log(theta).
        se: f64,
        /// Degrees of freedom; infinite for the normal approximation.
        #[serde(serialize_with = "serialize_df", deserialize_with = "deserialize_df")]
        df: f64,
    },
    /// Exact conditional binomial test: of `n` events on both sides, `k` fell in the candidate.
    /// Used with one pod per side, where pod-to-pod spread cannot be measured within a side.
    /// `k` and `n` are already shrunk so that the test's spread covers the windows' extra
    /// spread and the (blind) pod-to-pod dispersion as well as sampling noise.
    Binomial {
        /// Candidate events (effective).
        k: u64,
        /// Events on both sides (effective).
        n: u64,
        /// Candidate exposure over baseline exposure.
        exposure_ratio: f64,
    },
}

fn serialize_df<S: serde::Serializer>(df: &f64, s: S) -> Result<S::Ok, S::Error> {
    if df.is_finite() {
        s.serialize_f64(*df)
    } else {
        s.serialize_none()
    }
}

/// Infinite degrees of freedom are written as `null` (JSON has no infinity) and read back so.
fn deserialize_df<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::INFINITY))
}

/// The power behind "detectable" and "to settle": four times out of five, as power analyses
/// conventionally ask.
const POWER: f64 = 0.8;

/// An estimated ratio theta (candidate over baseline, after normalisation) and its noise.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The point estimate of theta.
    pub ratio: f64,
    /// How uncertain it is.
    pub noise: Noise,
}

impl Estimate {
    /// One-sided p-value for "theta is at most `theta0`": small when theta is clearly above.
    pub fn p_above(&self, theta0: f64) -> f64 {
        match self.noise {
            Noise::LogT { se, df } => {
                if se <= 0.0 || !se.is_finite() {
                    return if self.ratio > theta0 { 0.0 } else { 1.0 };
                }
                let t = (self.ratio.ln() - theta0.ln()) / se;
                stats::t_sf(t, df)
            }
            Noise::Binomial {
                k,
                n,
                exposure_ratio,
            } => stats::binomial_sf(k, n, null_proportion(theta0, exposure_ratio)),
        }
    }

    /// One-sided p-value for "theta is at least `theta0`": small when theta is clearly below.
    pub fn p_below(&self, theta0: f64) -> f64 {
        match self.noise {
            Noise::LogT { se, df } => {
                if se <= 0.0 || !se.is_finite() {
                    return if self.ratio < theta0 { 0.0 } else { 1.0 };
                }
                let t = (self.ratio.ln() - theta0.ln()) / se;
                stats::t_sf(-t, df)
            }
            Noise::Binomial {
                k,
                n,
                exposure_ratio,
            } => stats::binomial_cdf(k, n, null_proportion(theta0, exposure_ratio)),
        }
    }

    /// Lower confidence bound for theta at one-sided level `1 - alpha`.
    pub fn lower(&self, alpha: f64) -> f64 {
        match self.noise {
            Noise::LogT { se, df } => {
                (self.ratio.ln() - stats::t_quantile(1.0 - alpha, df) * se).exp()
            }
            Noise::Binomial {
                k,
                n,
                exposure_ratio,
            } => ratio_of_proportion(stats::clopper_pearson_lower(k, n, alpha), exposure_ratio),
        }
    }

    /// Upper confidence bound for theta at one-sided level `1 - alpha`.
    pub fn upper(&self, alpha: f64) -> f64 {
        match self.noise {
            Noise::LogT { se, df } => {
                (self.ratio.ln() + stats::t_quantile(1.0 - alpha, df) * se).exp()
            }
            Noise::Binomial {
                k,
                n,
                exposure_ratio,
            } => ratio_of_proportion(stats::clopper_pearson_upper(k, n, alpha), exposure_ratio),
        }
    }

    /// The smallest true ratio that this estimate's noise would let a test at level `alpha`
    /// flag against `theta0` four times out of five: what the data could have detected.
    pub fn minimum_detectable_ratio(&self, theta0: f64, alpha: f64) -> f64 {
        let (se, df) = self.log_se();
        let z = stats::t_quantile(1.0 - alpha, df) + stats::t_quantile(POWER, df);
        theta0 * (z * se).exp()
    }

    /// How many times the data (pods a side, each captured as now) it would take for
    /// one-sided bounds at level `1 - alpha` to clear every threshold in `thresholds` (all at
    /// once) four times out of five, were the true ratio what this estimate says. `None` when
    /// the ratio sits on a threshold (no amount of data would settle it), the estimate is not
    /// finite, or the noise is unknown.
    ///
    /// Both parts of the noise, sampling and pod-to-pod spread, shrink in proportion to the
    /// pods added, and degrees of freedom grow with them; longer windows shrink only the
    /// first part, so pods are the honest unit. For binomial noise the log ratio's normal
    /// approximation stands in for the exact test (slightly optimistic for few events).
    pub fn data_to_settle(&self, thresholds: &[f64], alpha: f64) -> Option<f64> {
        let (se, df) = self.log_se();
        let distances: Vec<f64> = thresholds
            .iter()
            .map(|t| (self.ratio.ln() - t.ln()).abs())
            .collect();
        let usable = |x: f64| x.is_finite() && x > 0.0;
        if !usable(se) || distances.is_empty() || !distances.iter().all(|&d| usable(d)) {
            return None;
        }
        if let ([d], true) = (distances.as_slice(), df == f64::INFINITY) {
            // Normal noise and one margin: k = ((z_alpha + z_power) se / d)^2 outright.
            let z = stats::normal_quantile(1.0 - alpha) + stats::normal_quantile(POWER);
            return Some((z * se / d).powi(2));
        }
        // P(every bound clears | k times the data): one minus the chance that any misses.
        let power = |k: f64| {
            let df = df * k;
            let critical = stats::t_quantile(1.0 - alpha, df);
            1.0 - distances
                .iter()
                .map(|d| 1.0 - stats::t_sf(critical - d * k.sqrt() / se, df))
                .sum::<f64>()
        };
        let (mut lo, mut hi) = (1e-6_f64, 1e9_f64);
        if power(hi) < POWER {
            return None;
        }
        if power(lo) >= POWER {
            return Some(lo);
        }
        // Power grows with k: bisect on log k to a relative precision of about 1e-6.
        for _ in 0..64 {
            let mid = (lo * hi).sqrt();
            if power(mid) >= POWER {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Some(hi)
    }

    /// The standard error of log(theta) and its degrees of freedom.
    fn log_se(&self) -> (f64, f64) {
        match self.noise {
            Noise::LogT { se, df } => (se, df),
            // The binomial's log-ratio standard error: 1/k + 1/(n - k) on the event counts.
            Noise::Binomial { k, n, .. } => {
                let kc = (k as f64).max(0.5);
                let kb = (n.saturating_sub(k) as f64).max(0.5);
                ((1.0 / kc + 1.0 / kb).sqrt(), f64::INFINITY)
            }
        }
    }
}

/// The candidate's expected share of all events when theta equals `theta0`.
fn null_proportion(theta0: f64, exposure_ratio: f64) -> f64 {
    let c = theta0 * exposure_ratio;
    c / (1.0 + c)
}

/// Inverts [`null_proportion`]: the theta for which the candidate's share is `pi`.
fn ratio_of_proportion(pi: f64, exposure_ratio: f64) -> f64 {
    if pi >= 1.0 {
        f64::INFINITY
    } else {
        pi / (1.0 - pi) / exposure_ratio
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_margin_p_value_is_half_at_the_threshold() {
        let e = Estimate {
            ratio: 1.2,
            noise: Noise::LogT {
                se: 0.1,
                df: f64::INFINITY,
            },
        };
        assert!((e.p_above(1.2) - 0.5).abs() < 1e-9);
        // log(1.2/1.0)/0.1 = 1.8232 -> P(Z > 1.8232) = 0.03414 (scipy.stats.norm.sf(1.8232))
        assert!((e.p_above(1.0) - 0.03414).abs() < 1e-4);
        assert!(e.lower(0.05) < 1.2 && e.upper(0.05) > 1.2);
        // exp(log 1.2 - 1.6449 * 0.1) = 1.01799
        assert!((e.lower(0.05) - 1.01799).abs() < 1e-4);
    }

    #[test]
    fn binomial_bounds_bracket_the_estimate_and_invert_the_test() {
        // 150 candidate events of 250 with equal exposure: theta_hat = 150/100 = 1.5.
        let e = Estimate {
            ratio: 1.5,
            noise: Noise::Binomial {
                k: 150,
                n: 250,
                exposure_ratio: 1.0,
            },
        };
        let lo = e.lower(0.05);
        let hi = e.upper(0.05);
        assert!(lo < 1.5 && 1.5 < hi, "{lo} {hi}");
        // The test at theta0 = lower bound sits at the boundary of significance.
        assert!((e.p_above(lo) - 0.05).abs() < 0.02, "{}", e.p_above(lo));
        assert!(e.p_above(1.0) < 0.01);
        // theta = 2.5: pi0 = 5/7, mean 178.6 of 250, sd 7.1: 150 is 4 sd below.
        assert!(e.p_below(2.5) < 0.001);
        assert!(e.p_below(2.0) > 0.005);
    }

    #[test]
    fn data_to_settle_by_search_agrees_with_the_normal_closed_form() {
        // Infinite df takes the closed form ((z_a + z_p) se / d)^2; a huge finite df takes the
        // search, which must land on the same answer.
        let with_df = |df: f64| Estimate {
            ratio: 1.4,
            noise: Noise::LogT { se: 0.15, df },
        };
        for alpha in [0.05, 0.001] {
            let exact = with_df(f64::INFINITY)
                .data_to_settle(&[1.2], alpha)
                .unwrap();
            let searched = with_df(1e12).data_to_settle(&[1.2], alpha).unwrap();
            assert!(
                (searched / exact - 1.0).abs() < 1e-4,
                "{alpha}: {exact} {searched}"
            );
            // Few degrees of freedom (heavier tails) ask for more data.
            let few = with_df(3.0).data_to_settle(&[1.2], alpha).unwrap();
            assert!(few > exact, "{alpha}: {few} {exact}");
        }
        // On the threshold, or with no noise estimate, there is no answer.
        assert_eq!(with_df(f64::INFINITY).data_to_settle(&[1.4], 0.05), None);
        let unknown = Estimate {
            ratio: 1.4,
            noise: Noise::LogT {
                se: f64::NAN,
                df: f64::INFINITY,
            },
        };
        assert_eq!(unknown.data_to_settle(&[1.2], 0.05), None);
    }

    #[test]
    fn detectable_ratio_grows_with_noise() {
        let quiet = Estimate {
            ratio: 1.0,
            noise: Noise::LogT {
                se: 0.05,
                df: f64::INFINITY,
            },
        };
        let noisy = Estimate {
            ratio: 1.0,
            noise: Noise::LogT {
                se: 0.3,
                df: f64::INFINITY,
            },
        };
        assert!(
            quiet.minimum_detectable_ratio(1.2, 0.05) < noisy.minimum_detectable_ratio(1.2, 0.05)
        );
        assert!(quiet.minimum_detectable_ratio(1.2, 0.05) > 1.2);
    }
}

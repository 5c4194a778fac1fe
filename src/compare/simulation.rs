//! Test-only pieces shared by the simulations of this crate's unit tests: a seeded generator
//! and the sample types of a Go CPU profile.

use crate::profile::SampleType;

/// splitmix64 with the samplers the simulations need: small, deterministic, good enough.
/// Recorded seeds in the tests depend on the exact draws, so the samplers must not change.
pub(crate) struct SplitMix(pub(crate) u64);

impl SplitMix {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform on (0, 1).
    pub(crate) fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller, one of the pair).
    pub(crate) fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    /// Gamma(shape, 1) for shape >= 1 (Marsaglia–Tsang).
    pub(crate) fn gamma(&mut self, shape: f64) -> f64 {
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let z = self.normal();
            let v = (1.0 + c * z).powi(3);
            if v > 0.0 && self.uniform().ln() < 0.5 * z * z + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }

    /// Poisson(lambda), exact: Knuth's product method on chunks of at most 30.
    pub(crate) fn poisson(&mut self, lambda: f64) -> f64 {
        let mut total = 0.0;
        let mut left = lambda;
        while left > 0.0 {
            let chunk = left.min(30.0);
            left -= chunk;
            let limit = (-chunk).exp();
            let mut product = self.uniform();
            while product > limit {
                total += 1.0;
                product *= self.uniform();
            }
        }
        total
    }

    /// Poisson(lambda), quick: the normal approximation above 500, Knuth's method below.
    pub(crate) fn poisson_approx(&mut self, lambda: f64) -> i64 {
        if lambda > 500.0 {
            return (lambda + lambda.sqrt() * self.normal()).round().max(0.0) as i64;
        }
        let limit = (-lambda).exp();
        let (mut k, mut product) = (0, self.uniform());
        while product > limit {
            k += 1;
            product *= self.uniform();
        }
        k
    }
}

/// The sample types of a Go CPU profile: `samples/count` and `cpu/nanoseconds`.
pub(crate) fn cpu_sample_types() -> Vec<SampleType> {
    vec![
        SampleType {
            name: "samples".into(),
            unit: "count".into(),
        },
        SampleType {
            name: "cpu".into(),
            unit: "nanoseconds".into(),
        },
    ]
}

/// Two identical pods of one 10 s window each, with `counts[i]` samples of 10 ms of
/// `names[i]`: a side whose pods do not differ, for tests of what follows a comparison.
#[cfg(test)]
pub(crate) fn two_identical_pods(
    kind: crate::profile::ProfileKind,
    names: &[String],
    counts: &[i64],
) -> Vec<crate::side::PodProfiles> {
    let pod = vec![counts.to_vec()];
    pods_of_windows(kind, names, &[pod.clone(), pod])
}

/// Pods of 10 s windows with `counts[pod][window][i]` samples of 10 ms of `names[i]`.
#[cfg(test)]
pub(crate) fn pods_of_windows(
    kind: crate::profile::ProfileKind,
    names: &[String],
    counts: &[Vec<Vec<i64>>],
) -> Vec<crate::side::PodProfiles> {
    counts
        .iter()
        .enumerate()
        .map(|(p, windows)| crate::side::PodProfiles {
            pod: format!("pod-{p}"),
            windows: windows
                .iter()
                .map(|w| {
                    let rows: Vec<Vec<i64>> = w.iter().map(|&c| vec![c, c * 10_000_000]).collect();
                    crate::profile::FunctionProfile::from_values(
                        kind,
                        cpu_sample_types(),
                        names.to_vec(),
                        rows.clone(),
                        rows,
                        10_000_000,
                        10_000_000_000,
                    )
                    .expect("well-formed profile")
                })
                .collect(),
        })
        .collect()
}

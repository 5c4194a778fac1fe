//! One pod's profiles of one kind reduced to per-function numbers: what the archive keeps
//! beside each run so that history over a year of runs reads a small table instead of
//! decoding every profile again.
//!
//! The numbers are the ones a comparison starts from (windows combined as [`super::compare_kind`]
//! combines them: summed for profiles over time, averaged for snapshots), with the sampled
//! events behind each value, so the same noise model can be applied later.

use super::pods::{event_column, FunctionNames, PodData};
use crate::profile::{ProfileKind, SampleType};
use crate::side::PodProfiles;

/// One pod's windows of one profile kind, reduced per function.
#[derive(Debug, Clone, PartialEq)]
pub struct PodSummary {
    /// The pod.
    pub pod: String,
    /// Windows combined.
    pub windows: usize,
    /// Seconds the windows cover (0 for snapshots).
    pub seconds: f64,
    /// Per sample type, in the profile's order.
    pub sample_types: Vec<SampleTypeSummary>,
}

/// One sample type of a [`PodSummary`].
#[derive(Debug, Clone, PartialEq)]
pub struct SampleTypeSummary {
    /// The sample type.
    pub sample_type: SampleType,
    /// Sum of every sample's value.
    pub total: f64,
    /// Sampled events behind the total.
    pub total_events: f64,
    /// True when the values are exact counts (goroutines), not samples.
    pub exact: bool,
    /// Functions with a value, in first-seen order.
    pub functions: Vec<FunctionSummary>,
}

/// One function's numbers in a [`SampleTypeSummary`].
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionSummary {
    /// The function.
    pub name: String,
    /// Value in its own code.
    pub flat: f64,
    /// Value including its callees.
    pub cum: f64,
    /// Sampled events behind `flat`.
    pub flat_events: f64,
    /// Sampled events behind `cum`.
    pub cum_events: f64,
    /// Mean frames between the function and the leaf: which of two changed functions is
    /// the deeper one, when no stacks are kept.
    pub depth: f64,
}

/// Reduces one pod's windows of `kind`; `None` for a pod without windows.
pub fn summarise_pod(kind: ProfileKind, pod: &PodProfiles) -> Option<PodSummary> {
    let first = pod.windows.first()?;
    let names = FunctionNames::build(std::iter::once(pod));
    let data = PodData::build(pod, &names, kind.is_snapshot());
    let types = &first.sample_types;
    let sample_types = (0..types.len())
        .map(|st| {
            let ev = event_column(kind, types, st, data.period);
            let functions = names
                .names
                .iter()
                .enumerate()
                .filter(|&(f, _)| data.flat[st][f] != 0.0 || data.cum[st][f] != 0.0)
                .map(|(f, name)| {
                    let (d, n) = data.leaf_distance[f];
                    FunctionSummary {
                        name: name.to_string(),
                        flat: data.flat[st][f],
                        cum: data.cum[st][f],
                        flat_events: data.flat[ev.index][f] * ev.scale,
                        cum_events: data.cum[ev.index][f] * ev.scale,
                        depth: if n > 0 { d as f64 / n as f64 } else { 0.0 },
                    }
                })
                .collect();
            SampleTypeSummary {
                sample_type: types[st].clone(),
                total: data.totals[st],
                total_events: data.totals[ev.index] * ev.scale,
                exact: ev.exact,
                functions,
            }
        })
        .collect();
    Some(PodSummary {
        pod: pod.pod.clone(),
        windows: data.windows,
        seconds: data.duration_seconds,
        sample_types,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::FunctionProfile;

    fn cpu_window(flat: &[(&str, i64)]) -> FunctionProfile {
        let names: Vec<String> = flat.iter().map(|(n, _)| (*n).to_owned()).collect();
        // [function][sample type]: samples, then nanoseconds at 100 Hz.
        let values: Vec<Vec<i64>> = flat.iter().map(|(_, s)| vec![*s, s * 10_000_000]).collect();
        FunctionProfile::from_values(
            ProfileKind::Cpu,
            vec![
                SampleType {
                    name: "samples".into(),
                    unit: "count".into(),
                },
                SampleType {
                    name: "cpu".into(),
                    unit: "nanoseconds".into(),
                },
            ],
            names,
            values.clone(),
            values,
            10_000_000,
            2_000_000_000,
        )
        .unwrap()
    }

    #[test]
    fn windows_sum_and_events_come_from_the_samples_column() {
        let pod = PodProfiles {
            pod: "p1".into(),
            windows: vec![
                cpu_window(&[("main.a", 30), ("main.b", 10)]),
                cpu_window(&[("main.a", 20)]),
            ],
        };
        let s = summarise_pod(ProfileKind::Cpu, &pod).unwrap();
        assert_eq!((s.windows, s.seconds), (2, 4.0));
        let cpu = &s.sample_types[1];
        assert_eq!(cpu.sample_type.name, "cpu");
        assert_eq!(cpu.total, 600_000_000.0);
        assert_eq!(cpu.total_events, 60.0);
        let a = cpu.functions.iter().find(|f| f.name == "main.a").unwrap();
        assert_eq!((a.flat, a.flat_events), (500_000_000.0, 50.0));
        let b = cpu.functions.iter().find(|f| f.name == "main.b").unwrap();
        assert_eq!(b.cum_events, 10.0);
        assert!(summarise_pod(
            ProfileKind::Cpu,
            &PodProfiles {
                pod: "empty".into(),
                windows: vec![]
            }
        )
        .is_none());
    }
}

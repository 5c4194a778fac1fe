//! Each pod's values over the union of function names, windows combined and per window, and
//! which column of a profile counts its sampled events.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::{CompareError, PodFacts, SideFacts};
use crate::profile::{written_zeros, FunctionProfile, ProfileKind, SampleType};
use crate::side::PodProfiles;

/// Function `f`'s mean distance from the leaf over every window of these pods.
pub(super) fn mean_leaf_distance<'a>(pods: impl Iterator<Item = &'a PodData>, f: usize) -> f64 {
    let (d, n) = pods.fold((0u64, 0u64), |(d, n), p| {
        let (pd, pn) = p.leaf_distance[f];
        (d + pd, n + pn)
    });
    if n > 0 {
        d as f64 / n as f64
    } else {
        0.0
    }
}

pub(super) fn side_facts(pods: &[PodData]) -> SideFacts {
    SideFacts {
        pods: pods
            .iter()
            .map(|p| PodFacts {
                name: p.name.clone(),
                windows: p.windows,
                duration_seconds: p.duration_seconds,
                samples: p.samples,
            })
            .collect(),
    }
}

pub(super) fn check_sample_types<'a>(
    kind: ProfileKind,
    pods: impl Iterator<Item = (&'static str, &'a PodProfiles)>,
) -> Result<Vec<SampleType>, CompareError> {
    let mut expected: Option<&Vec<SampleType>> = None;
    let mut first = String::new();
    let list = |t: &[SampleType]| {
        t.iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (side, pod) in pods {
        for w in &pod.windows {
            match expected {
                None => {
                    expected = Some(&w.sample_types);
                    first = format!("{side} pod {}", pod.pod);
                }
                Some(e) if *e != w.sample_types => {
                    return Err(CompareError::SampleTypes {
                        kind,
                        side,
                        pod: pod.pod.clone(),
                        found: list(&w.sample_types),
                        first,
                        expected: list(e),
                    })
                }
                Some(_) => {}
            }
        }
    }
    Ok(expected.cloned().unwrap_or_default())
}

/// The union of function names over every profile, with each profile's mapping into it.
pub(super) struct FunctionNames<'a> {
    pub(super) names: Vec<Arc<str>>,
    /// Borrowed from the profiles, whose names `names` shares: no name is copied.
    pub(super) index: FxHashMap<&'a str, usize>,
}

impl<'a> FunctionNames<'a> {
    pub(super) fn build(pods: impl Iterator<Item = &'a PodProfiles> + Clone) -> Self {
        // Most names are in every window: the largest window's count is a close guess.
        let most = pods
            .clone()
            .flat_map(|p| &p.windows)
            .map(|w| w.functions.len())
            .max();
        let mut names = Vec::with_capacity(most.unwrap_or(0));
        let mut index = FxHashMap::with_capacity_and_hasher(names.capacity(), Default::default());
        for pod in pods {
            for w in &pod.windows {
                for name in &w.functions {
                    index.entry(&**name).or_insert_with(|| {
                        names.push(Arc::clone(name));
                        names.len() - 1
                    });
                }
            }
        }
        FunctionNames { names, index }
    }

    pub(super) fn global_indices(&self, profile: &FunctionProfile) -> Vec<usize> {
        profile.functions.iter().map(|n| self.index[&**n]).collect()
    }
}

/// One pod's values over the union of functions, windows combined.
pub(super) struct PodData {
    pub(super) name: String,
    pub(super) windows: usize,
    pub(super) duration_seconds: f64,
    pub(super) samples: usize,
    /// Heap sampling period or CPU period, from the first window.
    pub(super) period: i64,
    /// [sample type][function]
    pub(super) flat: Vec<Vec<f64>>,
    pub(super) cum: Vec<Vec<f64>>,
    pub(super) totals: Vec<f64>,
    /// [sample type] values removed as the gate's own footprint, weighted as `totals`.
    pub(super) footprint: Vec<f64>,
    /// [function] summed distance from the leaf and the samples it was summed over.
    pub(super) leaf_distance: Vec<(u64, u64)>,
    /// Per window: [window][sample type][function] flat values, for the stationarity check;
    /// empty for a pod of one window, whose pod values are that window's.
    pub(super) window_flat: Vec<Vec<Vec<f64>>>,
    /// Per window: [window][sample type][function] cumulative values, for how evenly a new
    /// function shows across windows; empty for a pod of one window.
    pub(super) window_cum: Vec<Vec<Vec<f64>>>,
    pub(super) window_totals: Vec<Vec<f64>>,
    pub(super) window_seconds: Vec<f64>,
}

impl PodData {
    pub(super) fn build(pod: &PodProfiles, names: &FunctionNames, snapshot: bool) -> Self {
        let n = names.names.len();
        let n_types = pod.windows[0].sample_types.len();
        let table = || {
            (0..n_types)
                .map(|_| written_zeros(n))
                .collect::<Vec<Vec<f64>>>()
        };
        let (mut flat, mut cum) = (table(), table());
        let mut totals = vec![0.0; n_types];
        let mut footprint = vec![0.0; n_types];
        let mut leaf_distance: Vec<(u64, u64)> = written_zeros(n);
        let per_window = pod.windows.len() >= 2;
        let mut window_flat = Vec::with_capacity(pod.windows.len());
        let mut window_cum = Vec::with_capacity(pod.windows.len());
        let mut window_totals = Vec::with_capacity(pod.windows.len());
        let mut window_seconds = Vec::with_capacity(pod.windows.len());
        // Snapshots are averaged over windows: a pod's heap is not twice as big for being
        // looked at twice.
        let weight = if snapshot {
            1.0 / pod.windows.len() as f64
        } else {
            1.0
        };
        for w in &pod.windows {
            let global = names.global_indices(w);
            let per_window_table = || {
                (0..n_types)
                    .map(|_| written_zeros(if per_window { n } else { 0 }))
                    .collect::<Vec<Vec<f64>>>()
            };
            let (mut wf, mut wc) = (per_window_table(), per_window_table());
            for (local, &g) in global.iter().enumerate() {
                if let Some(&(d, k)) = w.leaf_distance.get(local) {
                    leaf_distance[g] = (leaf_distance[g].0 + d, leaf_distance[g].1 + k);
                }
                for st in 0..n_types {
                    let fv = w.flat(local, st) as f64;
                    let cv = w.cum(local, st) as f64;
                    flat[st][g] += fv * weight;
                    cum[st][g] += cv * weight;
                    if per_window {
                        wf[st][g] = fv;
                        wc[st][g] = cv;
                    }
                }
            }
            for (st, t) in totals.iter_mut().enumerate() {
                *t += w.totals[st] as f64 * weight;
            }
            for (st, r) in footprint.iter_mut().enumerate() {
                *r += w.footprint.get(st).copied().unwrap_or(0) as f64 * weight;
            }
            if per_window {
                window_flat.push(wf);
                window_cum.push(wc);
            }
            window_totals.push(w.totals.iter().map(|&t| t as f64).collect());
            window_seconds.push(w.duration_nanos.max(0) as f64 / 1e9);
        }
        PodData {
            name: pod.pod.clone(),
            windows: pod.windows.len(),
            duration_seconds: window_seconds.iter().sum(),
            samples: pod.windows.iter().map(|w| w.sample_count).sum(),
            period: pod.windows[0].period,
            flat,
            cum,
            totals,
            footprint,
            leaf_distance,
            window_flat,
            window_cum,
            window_totals,
            window_seconds,
        }
    }
}

/// Which column counts the sampled events behind a sample type, and at what scale.
///
/// Noise follows the number of sampling events, not the unit: 1 s of CPU is 100 samples at
/// 100 Hz, 1 MiB of heap is about 2 samples at Go's 512 KiB rate.
#[derive(Debug, Clone, Copy)]
pub(super) struct EventColumn {
    pub(super) index: usize,
    pub(super) scale: f64,
    /// The values are exact counts, not samples (goroutines).
    pub(super) exact: bool,
}

impl EventColumn {
    /// The sampled events behind a value whose columns `read` gives, or `None` for exact
    /// counts, which are not sampled.
    pub(super) fn sampled_events(&self, read: impl Fn(usize) -> f64) -> Option<f64> {
        (!self.exact).then(|| read(self.index) * self.scale)
    }
}

pub(super) fn event_column(
    kind: ProfileKind,
    types: &[SampleType],
    st: usize,
    period: i64,
) -> EventColumn {
    let find = |name: &str| types.iter().position(|t| t.name == name);
    let per_period = if period > 0 { 1.0 / period as f64 } else { 1.0 };
    let t = &types[st];
    let own = EventColumn {
        index: st,
        scale: 1.0,
        exact: false,
    };
    match (kind, t.name.as_str()) {
        (ProfileKind::Goroutine, _) => EventColumn { exact: true, ..own },
        (ProfileKind::Cpu, _) => {
            match kind.find_sample_type("samples", types.iter().map(|t| t.name.as_str())) {
                Some((index, _)) => EventColumn { index, ..own },
                None => EventColumn {
                    scale: per_period,
                    ..own
                },
            }
        }
        (ProfileKind::Heap | ProfileKind::Allocs, name)
            if t.unit == "bytes" || name.ends_with("_space") =>
        {
            EventColumn {
                scale: heap_period_scale(period),
                ..own
            }
        }
        (ProfileKind::Heap | ProfileKind::Allocs, name) => {
            // Objects come from the same samples as bytes: count the events through bytes.
            let space = name.replace("_objects", "_space");
            match find(&space) {
                Some(index) => EventColumn {
                    index,
                    scale: heap_period_scale(period),
                    exact: false,
                },
                None => own,
            }
        }
        // Go scales a mutex profile's contentions by its sampling fraction but writes a period
        // of 1, so the fraction cannot be divided out here: the events are overcounted by it,
        // which is why waiting totals also need a floor (policy::evaluate).
        (ProfileKind::Mutex | ProfileKind::Block, _) => match find("contentions") {
            Some(index) => EventColumn { index, ..own },
            None => own,
        },
    }
}

/// Go samples the heap once per `MemProfileRate` bytes (512 KiB unless changed).
pub(super) fn heap_period_scale(period: i64) -> f64 {
    1.0 / if period > 0 { period as f64 } else { 524_288.0 }
}

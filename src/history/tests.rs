//! History on simulated runs: counts drawn as a real capture's are (Poisson per pod, with a
//! run-to-run wobble of load), so the change search is checked where its answer is known.

use std::collections::BTreeMap;

use super::*;
use crate::compare::simulation::SplitMix;
use crate::compare::summary::{FunctionSummary, PodSummary, SampleTypeSummary};
use crate::profile::SampleType;

/// Functions of the simulated service: name, share of CPU, and whether it is the service's.
const FUNCTIONS: [(&str, f64); 8] = [
    ("main.computeChecksum", 0.20),
    ("main.renderTemplate", 0.15),
    ("main.parseJSON", 0.15),
    ("main.sortInventory", 0.10),
    ("main.buildIndex", 0.10),
    ("crypto/sha256.block", 0.12),
    ("runtime.mallocgc", 0.10),
    ("encoding/json.(*decodeState).object", 0.08),
];

/// One run: `pods` pods of 20 s at 100 Hz, one core busy; `slower` makes one function's own
/// time that many times larger (and its callers' cumulative time with it).
fn run(rng: &mut SplitMix, index: usize, pods: usize, slower: Option<(&str, f64)>) -> RunSummary {
    let load = 1.0 + 0.05 * rng.normal();
    let pods = (0..pods)
        .map(|p| {
            let seconds = 20.0;
            let functions: Vec<FunctionSummary> = FUNCTIONS
                .iter()
                .map(|(name, share)| {
                    let factor = match slower {
                        Some((s, f)) if s == *name => f,
                        _ => 1.0,
                    };
                    let mean = 100.0 * seconds * share * factor * load;
                    let events = rng.poisson(mean);
                    FunctionSummary {
                        name: (*name).to_owned(),
                        flat: events * 1e7,
                        cum: events * 1e7,
                        flat_events: events,
                        cum_events: events,
                        depth: if name.starts_with("main.") { 1.0 } else { 0.0 },
                    }
                })
                .collect();
            let total_events: f64 = functions.iter().map(|f| f.flat_events).sum();
            PodSummary {
                pod: format!("pod-{p}"),
                windows: 2,
                seconds,
                sample_types: vec![SampleTypeSummary {
                    sample_type: SampleType {
                        name: "cpu".into(),
                        unit: "nanoseconds".into(),
                    },
                    total: total_events * 1e7,
                    total_events,
                    exact: false,
                    functions,
                }],
            }
        })
        .collect();
    let mut kinds = BTreeMap::new();
    kinds.insert(ProfileKind::Cpu, pods);
    RunSummary {
        run_id: format!("run-{index:02}"),
        started: format!("2026-11-{:02}T03:17:00Z", index + 1),
        commit: Some(format!("c{index:02}")),
        kinds,
    }
}

fn options() -> HistoryOptions {
    HistoryOptions {
        policy: Policy::builtin_default(),
        profiles: Vec::new(),
        functions: None,
        threshold: None,
        all_series: false,
    }
}

#[test]
fn a_function_twice_as_slow_from_the_fifth_run_is_one_change_at_that_run() {
    for seed in 0..20 {
        let mut rng = SplitMix(seed);
        let runs: Vec<RunSummary> = (0..8)
            .map(|i| {
                let slower = (i >= 4).then_some(("main.buildIndex", 2.0));
                run(&mut rng, i, 1, slower)
            })
            .collect();
        let h = analyse(&runs, &options());
        assert!(!h.changes.is_empty(), "seed {seed}: no change found");
        for c in &h.changes {
            assert_eq!(c.run_id, "run-04", "seed {seed}: {c:?}");
        }
        let first = &h.changes[0];
        assert_eq!(
            first.named_at.as_deref(),
            Some("main.buildIndex"),
            "seed {seed}"
        );
        let named: Vec<&Change> = h
            .changes
            .iter()
            .filter(|c| c.function == "main.buildIndex")
            .collect();
        assert!(!named.is_empty(), "seed {seed}");
        // The ratio is about 2 (median-ratio normalisation over eight functions, one of them
        // doubled, pulls it a little low); its interval excludes the threshold.
        for c in named {
            assert!(c.ratio > 1.6 && c.ratio < 2.4 && c.lower > 1.2, "{c:?}");
            assert_eq!(c.commit.as_deref(), Some("c04"));
        }
        // Every other function's flat series (the ones whose own time did not change) held.
        assert!(h
            .changes
            .iter()
            .all(|c| c.function == "main.buildIndex" || c.metric != SeriesMetric::Flat));
    }
}

#[test]
fn runs_of_one_build_show_no_change() {
    let mut false_alarms = 0;
    for seed in 0..200 {
        let mut rng = SplitMix(1000 + seed);
        let pods = 1 + (seed as usize % 3);
        let runs: Vec<RunSummary> = (0..10).map(|i| run(&mut rng, i, pods, None)).collect();
        let h = analyse(&runs, &options());
        assert!(h.tested > 0);
        false_alarms += usize::from(!h.changes.is_empty());
    }
    assert_eq!(false_alarms, 0);
}

#[test]
fn a_library_leaf_is_named_at_the_service_function_that_changed_with_it() {
    let mut rng = SplitMix(7);
    let runs: Vec<RunSummary> = (0..8)
        .map(|i| {
            let mut r = run(&mut rng, i, 2, None);
            if i >= 4 {
                // sha256 doubles, and it is computeChecksum that calls it.
                for pod in r.kinds.get_mut(&ProfileKind::Cpu).unwrap() {
                    let st = &mut pod.sample_types[0];
                    let extra = st.functions[5].flat_events;
                    st.functions[5].flat_events += extra;
                    st.functions[5].flat += extra * 1e7;
                    st.functions[5].cum_events += extra;
                    st.functions[5].cum += extra * 1e7;
                    st.functions[0].cum_events += 2.0 * extra;
                    st.functions[0].cum += 2.0 * extra * 1e7;
                    st.total += extra * 1e7;
                    st.total_events += extra;
                }
            }
            r
        })
        .collect();
    let h = analyse(&runs, &options());
    let leaf = h
        .changes
        .iter()
        .find(|c| c.function == "crypto/sha256.block" && c.metric == SeriesMetric::Flat)
        .expect("the leaf's change");
    assert_eq!(leaf.named_at.as_deref(), Some("main.computeChecksum"));
    assert_eq!(leaf.run_index, 4);
}

#[test]
fn a_function_new_in_later_runs_is_a_change_marked_new() {
    let mut rng = SplitMix(11);
    let runs: Vec<RunSummary> = (0..8)
        .map(|i| {
            let mut r = run(&mut rng, i, 1, None);
            if i < 4 {
                for pod in r.kinds.get_mut(&ProfileKind::Cpu).unwrap() {
                    pod.sample_types[0]
                        .functions
                        .retain(|f| f.name != "main.buildIndex");
                }
            }
            r
        })
        .collect();
    let h = analyse(&runs, &options());
    let c = h
        .changes
        .iter()
        .find(|c| c.function == "main.buildIndex")
        .expect("the new function");
    assert!(c.new && c.run_index == 4, "{c:?}");
}

#[test]
fn the_outputs_name_the_run_the_function_and_the_change() {
    let mut rng = SplitMix(3);
    let runs: Vec<RunSummary> = (0..8)
        .map(|i| run(&mut rng, i, 2, (i >= 4).then_some(("main.buildIndex", 2.0))))
        .collect();
    let h = analyse(&runs, &options());
    let text = render::text(&h, "History of api");
    assert!(text.contains("From run run-04 (5 of 8"), "{text}");
    assert!(text.contains("main.buildIndex cpu cum"), "{text}");
    let md = render::markdown(&h, "History of api");
    assert!(md.contains("| `run-04`"), "{md}");
    let json = serde_json::to_value(&h).unwrap();
    let change = &json["changes"][0];
    for field in [
        "function", "profile", "metric", "run_id", "ratio", "lower", "upper",
    ] {
        assert!(!change[field].is_null(), "{field}: {change}");
    }
    assert_eq!(json["runs"].as_array().unwrap().len(), 8);
    let changed = h
        .series
        .iter()
        .find(|s| s.function == "main.buildIndex")
        .unwrap();
    let svg = chart::svg(changed, &h.runs);
    assert!(
        svg.starts_with("<svg") && svg.contains("2026-11-05"),
        "{svg}"
    );
    assert_eq!(changed.segments.len(), 2);
}

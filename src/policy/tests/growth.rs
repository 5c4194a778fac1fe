//! The `growth` metric: a leak is the candidate's climb beyond the baseline's, judged on
//! heap pods through the real comparison.

use super::*;
use crate::compare::{self, CompareOptions};
use crate::profile::{FunctionProfile, SampleType};
use crate::side::PodProfiles;

/// One pod of three heap snapshots a minute apart: 20 steady functions of 4 MiB and
/// `main.cache`, which holds `cache_mib[w]` MiB in window `w`.
fn heap_pod(name: &str, cache_mib: [f64; 3]) -> PodProfiles {
    let mib = |x: f64| (x * 1_048_576.0) as i64;
    let types = SampleType::inuse();
    let mut names: Vec<String> = (0..20).map(|i| format!("main.steady{i}")).collect();
    names.push("main.cache".into());
    let windows = cache_mib
        .iter()
        .enumerate()
        .map(|(w, &cache)| {
            // A little wobble, as a live heap has between garbage collections.
            let wobble = [0.0, 0.002, -0.001][w];
            let rows: Vec<Vec<i64>> = (0..20)
                .map(|_| vec![100, mib(4.0 + wobble)])
                .chain([vec![100, mib(cache)]])
                .collect();
            FunctionProfile::from_values(
                ProfileKind::Heap,
                types.clone(),
                names.clone(),
                rows.clone(),
                rows,
                524_288,
                0,
            )
            .expect("well-formed profile")
        })
        .collect();
    PodProfiles {
        pod: name.into(),
        windows,
    }
}

/// The default policy's `heap-growth` rule on one pod a side.
fn heap_growth(baseline_cache: [f64; 3], candidate_cache: [f64; 3]) -> (RuleStatus, String) {
    let policy = Policy::builtin_default();
    let cmp = compare::compare_kind(
        ProfileKind::Heap,
        &[heap_pod("stable", baseline_cache)],
        &[heap_pod("canary", candidate_cache)],
        &CompareOptions {
            normalize: compare::Normalize::MedianRatio,
            ..policy.compare_options()
        },
    )
    .expect("comparable");
    let verdict = evaluate(&policy, &[(compare::Normalize::MedianRatio, vec![cmp])]);
    let rule = verdict
        .rules
        .iter()
        .find(|r| r.rule == "heap-growth")
        .expect("the default policy has heap-growth");
    (rule.status, rule.explanation.clone())
}

#[test]
fn a_canary_warming_up_a_little_faster_than_the_stable_pod_is_no_leak() {
    // 84 MiB of heap. The stable pod climbs 6 MiB (7%, not clear enough on its own to be
    // called a climb before), the canary 10 MiB (12%): the A/A run that failed. What the
    // release adds is 5%, within the rule's 10%.
    let (status, words) = heap_growth([4.0, 7.0, 10.0], [4.0, 9.0, 14.0]);
    assert_eq!(status, RuleStatus::Held, "{words}");
    assert!(words.contains("beyond it (+5%"), "{words}");
}

#[test]
fn a_leak_beyond_the_baseline_is_found_and_named_whatever_the_baseline_does() {
    for baseline in [[4.0, 4.0, 4.0], [4.0, 7.0, 10.0], [10.0, 7.0, 4.0]] {
        let (status, words) = heap_growth(baseline, [4.0, 20.0, 36.0]);
        assert_eq!(status, RuleStatus::Broken, "baseline {baseline:?}: {words}");
        assert!(words.contains("it climbs in main.cache"), "{words}");
    }
    // Climbing alike on both sides is the service, not the release.
    let (status, words) = heap_growth([4.0, 20.0, 36.0], [4.0, 20.0, 37.0]);
    assert_eq!(status, RuleStatus::Held, "{words}");
}

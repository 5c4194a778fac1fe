//! The `new` metric and what goes with judging: functions new in the candidate, judged on
//! simulated pods through the real comparison.

use super::*;
use crate::compare::{self, CompareOptions};
use crate::side::PodProfiles;

const POLICY: &str = "version: 1\nrules:\n  - { name: fresh, profile: cpu, metric: new, max_new_share: 2%, severity: warn }\n";

/// Two CPU pods a side, 10 s each; `extra` samples of `pkg.fresh` in each candidate pod and
/// `base_extra` in each baseline pod, beside 40 functions of `per_function` samples.
fn side(per_function: i64, fresh: i64) -> Vec<PodProfiles> {
    two_pods(&[("pkg.fresh", fresh)], per_function)
}

/// Two CPU pods a side, 10 s each: 40 functions of `per_function` samples and `extra`.
fn two_pods(extra: &[(&str, i64)], per_function: i64) -> Vec<PodProfiles> {
    let mut names: Vec<String> = (0..40).map(|i| format!("pkg.f{i}")).collect();
    let mut counts = vec![per_function; 40];
    for &(name, count) in extra {
        names.push(name.into());
        counts.push(count);
    }
    crate::compare::simulation::two_identical_pods(ProfileKind::Cpu, &names, &counts)
}

fn fresh_status(baseline_fresh: i64, candidate_fresh: i64, per_function: i64) -> RuleStatus {
    let policy = parse(POLICY).expect("policy parses");
    let options = CompareOptions {
        normalize: compare::Normalize::Total,
        ..policy.compare_options()
    };
    let cmp = compare::compare_kind(
        ProfileKind::Cpu,
        &side(per_function, baseline_fresh),
        &side(per_function, candidate_fresh),
        &options,
    )
    .expect("comparable");
    let verdict = evaluate(&policy, &[(compare::Normalize::Total, vec![cmp])]);
    verdict.rules[0].status
}

/// The `fresh` rule's status for two pods a side of three 10 s windows, 40 functions of 50
/// samples a window, and `pkg.fresh` in the candidate with `fresh[pod][window]` samples.
fn fresh_status_by_window(fresh: [[i64; 3]; 2]) -> (RuleStatus, Option<f64>, String) {
    let mut names: Vec<String> = (0..40).map(|i| format!("pkg.f{i}")).collect();
    names.push("pkg.fresh".into());
    let window = |extra: i64| {
        let mut counts = vec![50; 40];
        counts.push(extra);
        counts
    };
    let side = |fresh: [[i64; 3]; 2]| -> Vec<Vec<Vec<i64>>> {
        fresh
            .iter()
            .map(|pod| pod.iter().map(|&x| window(x)).collect())
            .collect()
    };
    let policy = parse(POLICY).expect("policy parses");
    let cmp = compare::compare_kind(
        ProfileKind::Cpu,
        &crate::compare::simulation::pods_of_windows(ProfileKind::Cpu, &names, &side([[0; 3]; 2])),
        &crate::compare::simulation::pods_of_windows(ProfileKind::Cpu, &names, &side(fresh)),
        &policy.compare_options(),
    )
    .expect("comparable");
    let spread = cmp.sample_types[1]
        .functions
        .iter()
        .find(|f| &*f.name == "pkg.fresh")
        .and_then(|f| f.cum.candidate_spread.as_deref().copied())
        .map(|u| u.factor);
    let verdict = evaluate(&policy, &[(compare::Normalize::MedianRatio, vec![cmp])]);
    let rule = &verdict.rules[0];
    (rule.status, spread, rule.explanation.clone())
}

#[test]
fn a_new_function_in_one_window_of_one_pod_is_a_burst_not_a_new_share() {
    // 1,200 samples of pkg.fresh, 9% of the candidate either way. Steady across the six
    // windows it is new code taking 9%; all in the first window of one pod it is what a
    // freshly started canary shows when its start-up work lands in the first window (an A/A
    // run of the example service failed this way on main.warmCache), and one burst proves
    // nothing about the share the function keeps.
    let (steady, steady_spread, words) = fresh_status_by_window([[200; 3]; 2]);
    assert_eq!(steady, RuleStatus::Broken, "{words}");
    assert!(!words.contains("uneven"), "{words}");
    let steady_spread = steady_spread.expect("a tested new function has its spread");
    assert!(steady_spread < 1.5, "{steady_spread}");

    let (burst, burst_spread, words) = fresh_status_by_window([[1200, 0, 0], [0, 0, 0]]);
    assert_ne!(burst, RuleStatus::Broken, "{words}");
    assert!(
        words.contains("uneven across the candidate's windows"),
        "{words}"
    );
    assert!(burst_spread.expect("spread") > 100.0, "{burst_spread:?}");
}

#[test]
fn a_function_missing_by_chance_from_few_baseline_samples_is_not_new() {
    // 2 x 82 samples a side: a 2.4% function (2 samples a pod) is absent from the
    // baseline's samples as often as not; 4 candidate samples prove nothing.
    assert_eq!(fresh_status(0, 2, 2), RuleStatus::Held);
}

#[test]
fn a_second_normalisation_is_computed_only_for_the_kinds_that_ask_and_totals_read_the_first() {
    // The default policy normalises one per-function rule (mutex) by rate: only mutex
    // needs a second comparison, every other kind is compared once.
    assert_eq!(
        Policy::builtin_default().normalizations(),
        vec![
            (compare::Normalize::MedianRatio, None),
            (compare::Normalize::Rate, Some(vec![ProfileKind::Mutex])),
        ]
    );
    // A total rule that says `normalize: rate` reads the first set, which holds its kind,
    // not the rate set, which does not.
    let policy = parse(
        "version: 1\ndefaults: { normalize: median-ratio }\nrules:\n  - { name: cpu-total, profile: cpu, metric: total, max_increase: 10%, normalize: rate }\n  - { name: mutex-cum, profile: mutex, sample: delay, metric: cum, max_increase: 100%, normalize: rate }\n",
    )
    .expect("policy parses");
    let cmp = compare::compare_kind(
        ProfileKind::Cpu,
        &side(100, 100),
        &side(100, 100),
        &CompareOptions::default(),
    )
    .expect("comparable");
    let verdict = evaluate(
        &policy,
        &[
            (compare::Normalize::MedianRatio, vec![cmp]),
            (compare::Normalize::Rate, Vec::new()),
        ],
    );
    assert_eq!(
        verdict.rules[0].status,
        RuleStatus::Held,
        "{}",
        verdict.summary
    );
    assert_eq!(verdict.rules[1].status, RuleStatus::Skipped);
}

#[test]
fn a_policy_that_judges_nothing_is_inconclusive_not_a_pass() {
    let cmp = || {
        compare::compare_kind(
            ProfileKind::Cpu,
            &side(100, 100),
            &side(100, 100),
            &CompareOptions::default(),
        )
        .expect("comparable")
    };
    // Only a heap rule: the CPU comparison gives it nothing to judge.
    let heap_only = parse(
        "version: 1\nrules:\n  - { name: heap, profile: heap, metric: total, max_increase: 10% }\n",
    )
    .expect("policy parses");
    let verdict = evaluate(&heap_only, &[(compare::Normalize::Total, vec![cmp()])]);
    assert_eq!(verdict.rules[0].status, RuleStatus::Skipped);
    assert_eq!(
        verdict.outcome,
        Outcome::Inconclusive,
        "{}",
        verdict.summary
    );
    assert!(
        verdict.summary.contains("no rule could be applied"),
        "{}",
        verdict.summary
    );
    // With one rule that applies, the skipped one does not matter.
    let both = parse(&format!(
        "{POLICY}  - {{ name: heap, profile: heap, metric: total, max_increase: 10% }}\n"
    ))
    .expect("policy parses");
    let verdict = evaluate(&both, &[(compare::Normalize::Total, vec![cmp()])]);
    assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.summary);
}

#[test]
fn a_rule_that_could_not_see_a_change_says_so_and_does_not_read_as_verified() {
    // pkg.fresh: 6 samples a pod in the baseline, 9 in the candidate (+50%, far too few
    // samples to tell): the rule holds, but says what it could not decide.
    let policy = parse("version: 1\nrules:\n  - { name: flat, profile: cpu, metric: flat, max_increase: 20%, min_share: 0.1% }\n")
        .expect("policy parses");
    let cmp = compare::compare_kind(
        ProfileKind::Cpu,
        &side(100, 6),
        &side(100, 9),
        &policy.compare_options(),
    )
    .expect("comparable");
    let verdict = evaluate(&policy, &[(compare::Normalize::MedianRatio, vec![cmp])]);
    let rule = &verdict.rules[0];
    assert_eq!(rule.status, RuleStatus::Held, "{}", rule.explanation);
    assert_eq!(rule.decided + rule.undecided, rule.tested);
    assert!(rule.undecided >= 1, "{}", rule.explanation);
    assert!(
        rule.explanation.contains("undecided")
            && rule
                .explanation
                .contains("past the threshold by its estimate alone")
            && rule.explanation.contains("pkg.fresh +50%"),
        "{}",
        rule.explanation
    );
    // The same profiles on both sides: pkg.fresh is still too small to decide, but nothing
    // points past the threshold.
    let cmp = compare::compare_kind(
        ProfileKind::Cpu,
        &side(100, 6),
        &side(100, 6),
        &policy.compare_options(),
    )
    .expect("comparable");
    let verdict = evaluate(&policy, &[(compare::Normalize::MedianRatio, vec![cmp])]);
    let rule = &verdict.rules[0];
    assert_eq!(rule.undecided, 1, "{}", rule.explanation);
    assert!(
        rule.explanation
            .ends_with("1 undecided: pkg.fresh +0% [-59%, +141%]"),
        "{}",
        rule.explanation
    );
    // With pkg.fresh below the rule's share, everything tested is decided.
    let policy = parse("version: 1\nrules:\n  - { name: flat, profile: cpu, metric: flat, max_increase: 20%, min_share: 2% }\n")
        .expect("policy parses");
    let cmp = compare::compare_kind(
        ProfileKind::Cpu,
        &side(100, 6),
        &side(100, 6),
        &policy.compare_options(),
    )
    .expect("comparable");
    let verdict = evaluate(&policy, &[(compare::Normalize::MedianRatio, vec![cmp])]);
    let rule = &verdict.rules[0];
    assert_eq!(
        (rule.undecided, rule.decided),
        (0, 40),
        "{}",
        rule.explanation
    );
    assert!(
        rule.explanation
            .ends_with("40 tested, all within the threshold"),
        "{}",
        rule.explanation
    );
}

#[test]
fn a_held_rule_names_the_undecided_function_likeliest_to_have_moved_not_the_largest() {
    // pkg.planted +50% on 40 samples a pod; pkg.tiny 1 -> 3 samples a pod: the larger
    // estimate, and the less certain. Neither is decided, and the rule says pkg.planted.
    let policy = parse("version: 1\nrules:\n  - { name: flat, profile: cpu, metric: flat, max_increase: 20%, min_share: 0.01% }\n")
        .expect("policy parses");
    let cmp = compare::compare_kind(
        ProfileKind::Cpu,
        &two_pods(&[("pkg.planted", 40), ("pkg.tiny", 1)], 100),
        &two_pods(&[("pkg.planted", 60), ("pkg.tiny", 3)], 100),
        &policy.compare_options(),
    )
    .expect("comparable");
    let verdict = evaluate(&policy, &[(compare::Normalize::MedianRatio, vec![cmp])]);
    let rule = &verdict.rules[0];
    assert_eq!(rule.status, RuleStatus::Held, "{}", rule.explanation);
    let ratio = |name: &str| {
        rule.findings
            .iter()
            .find(|f| f.function.as_deref() == Some(name))
            .and_then(|f| f.ratio())
            .unwrap_or_else(|| panic!("{name} is a finding: {}", rule.explanation))
    };
    assert!(
        ratio("pkg.tiny") > ratio("pkg.planted"),
        "{}",
        rule.explanation
    );
    assert!(
        rule.explanation
            .contains("2 of them past the threshold by the estimate alone, the likeliest to have moved pkg.planted +50%"),
        "{}",
        rule.explanation
    );
}

#[test]
fn the_service_own_function_heads_the_regressions() {
    // The library leaf regressed more surely (more samples), but the user's function is
    // named first, in the rule and in the verdict.
    let pods = |slow: i64| {
        two_pods(
            &[
                ("crypto/sha256.block", 400 * slow),
                ("main.computeChecksum", 200 * slow),
            ],
            100,
        )
    };
    let policy = parse("version: 1\nrules:\n  - { name: lib, profile: cpu, metric: flat, functions: ['crypto/*'], max_increase: 20% }\n  - { name: flat, profile: cpu, metric: flat, max_increase: 20% }\n")
        .expect("policy parses");
    let cmp = compare::compare_kind(
        ProfileKind::Cpu,
        &pods(1),
        &pods(2),
        &policy.compare_options(),
    )
    .expect("comparable");
    let verdict = evaluate(&policy, &[(compare::Normalize::MedianRatio, vec![cmp])]);
    assert_eq!(verdict.outcome, Outcome::Fail);
    let flat = &verdict.rules[1];
    let names: Vec<&str> = flat.findings[..2]
        .iter()
        .map(|f| f.function.as_deref().unwrap())
        .collect();
    assert_eq!(names, ["main.computeChecksum", "crypto/sha256.block"]);
    assert!(
        flat.explanation.contains(": main.computeChecksum +100%"),
        "{}",
        flat.explanation
    );
    // The verdict's line leads with the rule that names the service's own code, though
    // the library rule comes first in the policy.
    assert!(
        verdict.summary.starts_with(
            "failed: lib, flat broken; cpu (flat may change at most 20%): main.computeChecksum"
        ),
        "{}",
        verdict.summary
    );
}

#[test]
fn a_function_absent_from_many_baseline_samples_and_big_in_the_candidate_is_new() {
    // 2 x 4,000 samples a side, none of them in pkg.fresh; the candidate spends 10% there.
    assert_eq!(fresh_status(0, 450, 100), RuleStatus::Broken);
}

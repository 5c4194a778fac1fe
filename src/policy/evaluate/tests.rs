//! Unit tests of the verdict's helpers.

use super::{deepest, is_own_code, ratio_words, verdict, Carrier};
use crate::policy::{Metric, Outcome, Policy, RuleOutcome, RuleStatus, Severity};
use crate::profile::ProfileKind;

fn carrier(index: usize, name: &str, level: f64, depth: f64) -> Carrier<'_> {
    Carrier {
        index,
        name,
        level,
        own: 0.0,
        depth,
    }
}

#[test]
fn the_deepest_carrier_of_a_chain_is_named_and_a_shared_callee_beats_one_caller() {
    // main.main -> main.handle -> main.hashRecord; the callers carry the rise and more
    // (other work under them moved too).
    let chain = [
        carrier(0, "main.main", 100.0, 5.0),
        carrier(1, "main.handle", 40.0, 3.0),
        carrier(2, "main.hashRecord", 12.0, 1.0),
    ];
    assert_eq!(deepest(&chain), Some(2));
    // A lock's user called from two places carries more than either caller.
    let diamond = [
        carrier(0, "main.counterFlusher", 7.0, 2.0),
        carrier(1, "main.cycle", 3.0, 2.0),
        carrier(2, "main.updateCounters", 10.0, 1.0),
    ];
    assert_eq!(deepest(&diamond), Some(2));
    assert_eq!(deepest(&[]), None);
}

#[test]
fn own_code_and_ratio_words() {
    assert!(is_own_code("main.f"));
    assert!(is_own_code("github.com/acme/shop.(*Cart).Total"));
    assert!(!is_own_code("crypto/sha256.block"));
    assert!(!is_own_code("runtime.mallocgc"));
    // JavaScript names carry no package: a plain identifier is the service's, the runtime's
    // pseudo-frames are not.
    assert!(is_own_code("computeChecksum"));
    assert!(!is_own_code("Garbage Collection"));
    assert!(!is_own_code("(anonymous:L#87:C#15)"));
    assert!(!is_own_code("(garbage collector)"));
    assert!(!is_own_code("_start"));
    // Rust paths: the service's crate, not the standard library's or the profiler's.
    assert!(is_own_code("rust_service::compute_checksum"));
    assert!(is_own_code("rust_service::Workload::handle_request"));
    assert!(!is_own_code(
        "core::slice::sort::stable::quicksort::quicksort"
    ));
    assert!(!is_own_code("std::thread::sleep"));
    assert!(!is_own_code(
        "<alloc::vec::Vec<u8> as core::clone::Clone>::clone"
    ));
    assert!(!is_own_code("pprof::profiler::perf_signal_handler"));
    assert_eq!(ratio_words(1.52), "+52%");
    assert_eq!(ratio_words(0.7), "-30%");
    assert_eq!(ratio_words(12.4), "12x");
    assert_eq!(ratio_words(f64::INFINITY), "new");
}

/// A held rule that tested `tested` items and decided `decided` of them.
fn held(rule: &str, tested: usize, decided: usize) -> RuleOutcome {
    RuleOutcome {
        rule: rule.into(),
        profile: ProfileKind::Cpu,
        sample_type: "cpu".into(),
        metric: Metric::Flat,
        severity: Severity::Fail,
        status: RuleStatus::Held,
        explanation: String::new(),
        tested,
        decided,
        undecided: tested - decided,
        findings: Vec::new(),
        culprit: None,
    }
}

#[test]
fn a_pass_says_which_rules_verified_nothing() {
    let policy = Policy::builtin_default();
    let v = verdict(
        &policy,
        vec![held("cpu-functions", 7, 0), held("alloc-functions", 13, 5)],
    );
    assert_eq!(v.outcome, Outcome::Pass);
    assert_eq!(
        v.summary,
        "passed: 2 rule(s) held; cpu-functions verified nothing: none of the 7 it tested could be told within the threshold with these pods"
    );
    let two = verdict(
        &policy,
        vec![held("cpu-functions", 7, 0), held("cpu-total", 1, 0)],
    );
    assert!(
        two.summary
            .ends_with("; cpu-functions, cpu-total verified nothing: none of what they tested could be told within the threshold with these pods"),
        "{}",
        two.summary
    );
    // Rules that decided something, or had nothing above the minimum share, are plain holds.
    let plain = verdict(
        &policy,
        vec![held("cpu-functions", 7, 1), held("mutex-cumulative", 0, 0)],
    );
    assert_eq!(plain.summary, "passed: 2 rule(s) held");
}

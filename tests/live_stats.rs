//! Live A/A and A/B comparisons of example-service processes through `gate diff`.
//!
//! Profiles are captured here with plain HTTP GETs in matched windows (every process's CPU
//! profile over the same seconds), so these tests exercise the statistics on real noise
//! independently of the capture engine.

use std::path::Path;
use std::time::Duration;

use crate::support::{calibrated_rate, exclusive_cpu, gate, ExampleService};

/// A policy with the per-function CPU rules only, so the verdict is about the statistics.
const CPU_POLICY: &str = "version: 1
rules:
  - { name: cpu-flat, profile: cpu, metric: flat, ignore: ['runtime.*'], max_increase: 20% }
  - { name: cpu-cum, profile: cpu, metric: cum, ignore: ['runtime.*'], max_increase: 20% }
";

/// Captures `windows` matched CPU windows of `seconds` from every process into
/// `dir/<side>/<pod>/cpu-<window>.pb.gz`.
fn capture(sides: &[(&str, &[ExampleService])], dir: &Path, windows: usize, seconds: u64) {
    for w in 1..=windows {
        std::thread::scope(|s| {
            for (side, pods) in sides {
                for (i, pod) in pods.iter().enumerate() {
                    let path = dir.join(side).join(format!("pod-{}", i + 1));
                    s.spawn(move || {
                        let body = pod.get(
                            &format!("/debug/pprof/profile?seconds={seconds}"),
                            Duration::from_secs(seconds + 30),
                        );
                        std::fs::create_dir_all(&path).unwrap();
                        std::fs::write(path.join(format!("cpu-{w}.pb.gz")), body).unwrap();
                    });
                }
            }
        });
    }
}

/// Runs `gate diff --format json` and returns the exit code and the parsed report.
fn diff(dir: &Path, baseline: &str, candidate: &str) -> (i32, serde_json::Value) {
    let policy = dir.join("policy.yaml");
    std::fs::write(&policy, CPU_POLICY).unwrap();
    let out = gate()
        .args(["diff", "--format", "json", "--policy"])
        .arg(&policy)
        .arg(dir.join(baseline))
        .arg(dir.join(candidate))
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "gate diff printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), json)
}

/// Names of the functions any rule marked regressed.
fn regressed(report: &serde_json::Value) -> Vec<String> {
    regressed_where(report, |_| true)
}

/// Names of the functions one rule marked regressed.
fn regressed_in(report: &serde_json::Value, rule: &str) -> Vec<String> {
    regressed_where(report, |r| r["rule"] == rule)
}

fn regressed_where(
    report: &serde_json::Value,
    keep: impl Fn(&serde_json::Value) -> bool,
) -> Vec<String> {
    let mut names: Vec<String> = report["verdict"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| keep(r))
        .flat_map(|r| r["findings"].as_array().unwrap().iter())
        .filter(|f| f["answer"]["status"] == "regressed")
        .map(|f| f["function"].as_str().unwrap_or("total").to_owned())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The first finding about `function`, for failure messages.
fn finding(report: &serde_json::Value, function: &str) -> String {
    report["verdict"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["findings"].as_array().unwrap().iter())
        .find(|f| f["function"] == function)
        .map(|f| f.to_string())
        .unwrap_or_default()
}

fn start(n: usize, rate: &str, extra: &[&str]) -> Vec<ExampleService> {
    (0..n)
        .map(|_| {
            let mut args = vec!["-rate", rate];
            args.extend_from_slice(extra);
            ExampleService::start(&args)
        })
        .collect()
}

#[test]
fn same_flags_compared_several_times_report_no_regression() {
    let _cpu = exclusive_cpu();
    let rate = calibrated_rate("0.3");
    let a = start(2, &rate, &[]);
    let b = start(2, &rate, &[]);
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        capture(&[("a", &a), ("b", &b)], dir.path(), 2, 3);
        let (code, report) = diff(dir.path(), "a", "b");
        assert_eq!(
            regressed(&report),
            Vec::<String>::new(),
            "round {round}: A/A reported regressions"
        );
        assert_eq!(code, 0, "round {round}: {}", report["verdict"]["summary"]);
    }
}

#[test]
fn a_planted_threefold_regression_is_found_and_only_its_stack() {
    let _cpu = exclusive_cpu();
    // Three pods a side and a threefold change. Processes sharing two cores differ far more
    // than Poisson noise (pod dispersion about 0.06: preemption moves samples between a tight
    // loop and runtime.asyncPreempt, GC assists land on whichever function allocates), and a
    // 1.5x change came out anywhere from 1.1x to 2.0x, too often inconclusive to test here.
    let rate = calibrated_rate("0.25");
    let baseline = start(3, &rate, &[]);
    let candidate = start(3, &rate, &["-cpu-regress", "computeChecksum=3"]);
    let dir = tempfile::tempdir().unwrap();
    capture(
        &[("baseline", &baseline), ("candidate", &candidate)],
        dir.path(),
        5,
        6,
    );
    let (code, report) = diff(dir.path(), "baseline", "candidate");
    let found = regressed(&report);
    assert_eq!(
        code,
        1,
        "{}; computeChecksum: {}",
        report["verdict"]["summary"],
        finding(&report, "main.computeChecksum")
    );
    assert!(
        found.iter().any(|f| f == "main.computeChecksum"),
        "computeChecksum not named: {found:?}"
    );
    // Own (flat) time may grow only in the planted function and the library code it calls.
    // Cumulative time may also grow elsewhere for a real reason: computeChecksum allocates a
    // hasher per round, so 3x the rounds means more garbage, and GC assist time is charged
    // to whichever function allocates next (encoding/json does), under its cum, not its flat.
    let flat = regressed_in(&report, "cpu-flat");
    let unrelated: Vec<&String> = flat
        .iter()
        .filter(|f| !(f.starts_with("crypto/") || *f == "main.computeChecksum"))
        .collect();
    assert!(
        unrelated.is_empty(),
        "unrelated own time flagged: {unrelated:?} (flat: {flat:?}; all: {found:?})"
    );
    assert!(
        regressed_in(&report, "cpu-cum").contains(&"main.computeChecksum".to_owned()),
        "{found:?}"
    );
}

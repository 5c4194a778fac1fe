//! Label-aware comparison (`--tag`, `--tag-ignore`, `--by-label`) on profiles of the example
//! service, whose requests carry a `route` pprof label. The profiles under
//! `examples/profiles-routes/` were captured by `examples/profiles/regenerate.sh` with a
//! regression planted in one route (`-route-regress /browse:renderTemplate=3`) and with a
//! traffic-mix change alone (`-route-mix /search=2`).

use std::path::PathBuf;

use serde_json::Value;

use crate::support::{gate, repo};

fn set(name: &str) -> (PathBuf, PathBuf) {
    let dir = repo().join("examples/profiles-routes").join(name);
    (dir.join("stable"), dir.join("canary"))
}

/// `gate diff` with `args`; returns the exit code and the JSON report.
fn diff_json(name: &str, args: &[&str]) -> (i32, Value) {
    let (stable, canary) = set(name);
    let out = gate()
        .arg("diff")
        .arg(&stable)
        .arg(&canary)
        .args(["--format", "json"])
        .args(args)
        .output()
        .expect("running gate");
    let code = out.status.code().unwrap_or(-1);
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
    });
    (code, report)
}

/// Every finding of a broken rule: (rule, label, function).
fn broken_findings(report: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for rule in report["verdict"]["rules"].as_array().unwrap() {
        if rule["status"] != "broken" {
            continue;
        }
        for f in rule["findings"].as_array().unwrap() {
            if f["answer"]["status"] == "regressed" {
                out.push((
                    rule["rule"].as_str().unwrap().to_owned(),
                    f["label"].as_str().unwrap_or("").to_owned(),
                    f["function"].as_str().unwrap_or("total").to_owned(),
                ));
            }
        }
    }
    out
}

/// The cum ratio of `function` in the CPU comparison labelled `label` (`None`: the whole).
fn cum_ratio(report: &Value, label: Option<&str>, function: &str) -> Option<f64> {
    let c = report["comparisons"]
        .as_array()?
        .iter()
        .find(|c| c["kind"] == "cpu" && c["label"].as_str() == label)?;
    let st = c["sample_types"]
        .as_array()?
        .iter()
        .find(|s| s["sample_type"]["name"] == "cpu")?;
    st["functions"]
        .as_array()?
        .iter()
        .find(|f| f["name"] == function)?["cum"]["estimate"]["ratio"]
        .as_f64()
}

#[test]
fn a_regression_in_one_route_is_found_and_attributed_to_that_route() {
    let (code, report) = diff_json("route-regress", &["--by-label", "route"]);
    let findings = broken_findings(&report);
    assert_eq!(code, 1, "{findings:?}");
    assert!(
        findings.iter().any(|(_, label, f)| label == "route=/browse"
            && (f == "main.renderTemplate" || f.starts_with("text/template."))),
        "{findings:?}"
    );
    // CPU function findings belong to the route that changed; renderTemplate also serves
    // /checkout, unchanged there. (Memory profiles carry no labels: they are judged whole.)
    // One exception is in the shipped data itself: in /search, main.sortInventory has 17, 20
    // and 22 samples on the stable pods and 36, 33 and 38 on the canary pods (`go tool pprof
    // -tagfocus=route=/search`): a consistent change on every pod, found once the family
    // counts each question once.
    for (rule, label, function) in &findings {
        if rule.starts_with("cpu-") && !rule.ends_with("-total") {
            assert!(
                label == "route=/browse"
                    || (label == "route=/search" && function == "main.sortInventory"),
                "{rule}: {label} {function}"
            );
        }
    }
    let browse = cum_ratio(&report, Some("route=/browse"), "main.renderTemplate").unwrap();
    let checkout = cum_ratio(&report, Some("route=/checkout"), "main.renderTemplate").unwrap();
    let whole = cum_ratio(&report, None, "main.renderTemplate").unwrap();
    eprintln!("main.renderTemplate cum ratio: /browse {browse:.2}, /checkout {checkout:.2}, all routes {whole:.2}");
    assert!(browse > 1.5, "{browse}");
    assert!((0.75..1.33).contains(&checkout), "{checkout}");
    // Unsplit, the unchanged /checkout half of renderTemplate dilutes the change.
    assert!(whole < browse, "whole {whole} vs /browse {browse}");
    // The report names the split and each route's part of the samples.
    assert_eq!(report["labels"], "by route");
    let mix = report["label_mix"].as_array().unwrap();
    assert!(mix
        .iter()
        .any(|m| m["kind"] == "cpu" && m["label"] == "route=/browse"));
}

/// Function rules only: a traffic-mix change moves totals for real (more requests of a costly
/// route cost more CPU), which is the total rules' business, not the per-route comparison's.
const FUNCTION_RULES: &str = "version: 1
rules:
  - { name: cpu-functions, profile: cpu, metric: flat, functions: ['*'], ignore: ['runtime.*'], max_increase: 20% }
  - { name: cpu-cumulative, profile: cpu, metric: cum, functions: ['*'], ignore: ['runtime.*'], max_increase: 20% }
";

#[test]
fn a_traffic_mix_change_alone_misleads_the_unsplit_comparison_but_not_the_per_route_one() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("functions.yaml");
    std::fs::write(&policy, FUNCTION_RULES).unwrap();
    let policy = policy.to_str().unwrap();

    let (code, report) = diff_json("traffic-mix", &["--policy", policy, "--by-label", "route"]);
    assert_eq!(code, 0, "{:?}", broken_findings(&report));
    assert!(broken_findings(&report).is_empty());
    let search = report["label_mix"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == "cpu" && m["label"] == "route=/search")
        .expect("/search in the label mix")
        .clone();
    let (b, c) = (
        search["baseline_share"].as_f64().unwrap(),
        search["candidate_share"].as_f64().unwrap(),
    );
    assert!(c > b * 1.3, "/search share {b} -> {c}");

    assert_eq!(report["verdict"]["outcome"], "pass");

    // The same profiles unsplit: /search's functions grow against the rest, and the gate
    // cannot tell a mix change from slower code.
    let (_, report) = diff_json("traffic-mix", &["--policy", policy]);
    let search = cum_ratio(&report, None, "main.handleSearch").unwrap();
    assert!(search > 1.2, "main.handleSearch unsplit: {search}");
    assert_ne!(
        report["verdict"]["outcome"], "pass",
        "unsplit, the mix change should look like a change"
    );

    // The text report calls the mix change out.
    let (stable, canary) = set("traffic-mix");
    let out = gate()
        .arg("diff")
        .arg(&stable)
        .arg(&canary)
        .args(["--policy", policy, "--by-label", "route"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("cpu route=/search") && text.contains("(traffic mix changed)"),
        "{text}"
    );
}

#[test]
fn tag_filters_keep_the_routes_asked_for() {
    let stable = repo().join("examples/profiles/stable");
    let canary = repo().join("examples/profiles/canary");
    let out = gate()
        .arg("diff")
        .arg(&stable)
        .arg(&canary)
        .args(["--format", "json", "--tag", "route=^/search$"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["labels"], "route=^/search$");
    // Memory profiles carry no labels: only CPU and goroutines are compared.
    let kinds: Vec<&str> = report["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["cpu", "goroutine"]);
    // The planted regression is in /checkout: filtered to /search, the gate passes.
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        report["verdict"]["summary"]
    );
    assert!(cum_ratio(&report, None, "main.computeChecksum").is_none());
    assert!(cum_ratio(&report, None, "main.parseJSON").is_some());
}

#[test]
fn bad_label_arguments_exit_2_and_say_what_to_fix() {
    let stable = repo().join("examples/profiles/stable");
    let canary = repo().join("examples/profiles/canary");
    for (args, expected) in [
        (vec!["--tag", "route=("], "not a valid regular expression"),
        (vec!["--tag", "route"], "expected KEY=REGEX"),
        (
            vec!["--by-label", "tenant"],
            "no value of the label \"tenant\"",
        ),
        (vec!["--tag", "route=^/nowhere$"], "no samples are left"),
    ] {
        let out = gate()
            .arg("diff")
            .arg(&stable)
            .arg(&canary)
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

/// A rule narrowed to one route (`labels:` in the policy) reads that route's samples only.
const ROUTE_RULES: &str = "version: 1
rules:
  - name: checkout-cpu
    profile: cpu
    metric: cum
    labels: { route: ^/checkout$ }
    normalize: rate
    max_increase: 20%
  - name: search-cpu
    profile: cpu
    metric: cum
    labels: { route: ^/search$ }
    normalize: rate
    max_increase: 20%
  - name: not-checkout-cpu
    profile: cpu
    metric: cum
    ignore_labels: { route: ^/checkout$ }
    normalize: rate
    max_increase: 20%
";

#[test]
fn policy_rules_narrowed_by_label_judge_their_route_only() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("routes.yaml");
    std::fs::write(&policy, ROUTE_RULES).unwrap();
    let out = gate()
        .arg("diff")
        .arg(repo().join("examples/profiles/stable"))
        .arg(repo().join("examples/profiles/canary"))
        .args(["--format", "json", "--policy", policy.to_str().unwrap()])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    // computeChecksum (x2 in the canary) runs in /checkout only.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        report["verdict"]["summary"]
    );
    let status = |name: &str| {
        report["verdict"]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["rule"] == name)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(status("checkout-cpu"), "broken");
    assert_eq!(status("search-cpu"), "held");
    assert_eq!(status("not-checkout-cpu"), "held");
    let findings = broken_findings(&report);
    assert!(findings.iter().all(|(rule, _, _)| rule == "checkout-cpu"));
    assert!(findings.iter().any(|(_, _, f)| f == "main.computeChecksum"));
    // The comparisons made for the narrowed rules say which samples they hold.
    let filters: Vec<&str> = report["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["filter"].as_str())
        .collect();
    assert!(filters.contains(&"route=^/checkout$"), "{filters:?}");
    assert!(filters.contains(&"not route=^/checkout$"), "{filters:?}");
}

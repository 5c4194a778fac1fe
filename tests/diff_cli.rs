//! `gate diff`: the offline comparison, its exit codes, and its errors on bad input.

use std::io::Write;

use predicates::prelude::*;

use crate::support::{fixtures, gate, repo};

fn examples() -> std::path::PathBuf {
    repo().join("examples/profiles")
}

#[test]
fn demo_fails_and_names_the_planted_function_and_rule() {
    let out = gate()
        .args(["diff", "--policy", "policies/default.yaml"])
        .arg(examples().join("stable"))
        .arg(examples().join("canary"))
        .current_dir(repo())
        .assert()
        .code(1);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(stdout.contains("FAIL"), "{stdout}");
    assert!(stdout.contains("main.computeChecksum"), "{stdout}");
    assert!(stdout.contains("[BROKEN] cpu-cumulative"), "{stdout}");
}

#[test]
fn stable_against_itself_passes() {
    gate()
        .arg("diff")
        .arg(examples().join("stable"))
        .arg(examples().join("stable"))
        .assert()
        .code(0)
        .stdout(predicate::str::contains("PASS"));
}

#[test]
fn stable_pods_against_each_other_pass() {
    // Real A/A: different processes with the same flags, one pod against two others.
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    copy_dir(&examples().join("stable/pod-1"), &a.join("pod-1"));
    copy_dir(&examples().join("stable/pod-2"), &b.join("pod-2"));
    copy_dir(&examples().join("stable/pod-3"), &b.join("pod-3"));
    let out = gate().arg("diff").arg(&a).arg(&b).assert();
    let code = out.get_output().status.code();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert_eq!(code, Some(0), "{stdout}");
    assert!(!stdout.contains("BROKEN"), "{stdout}");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn json_and_out_dir_carry_the_same_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let out = gate()
        .args(["diff", "--format", "json", "--out"])
        .arg(dir.path())
        .arg(examples().join("stable"))
        .arg(examples().join("canary"))
        .assert()
        .code(1);
    let json: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(json["verdict"]["outcome"], "fail");
    assert_eq!(json["schema_version"], 1);
    let kinds: Vec<&str> = json["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["cpu", "heap", "allocs", "goroutine", "mutex", "block"]
    );
    for name in ["report.txt", "report.md", "report.json"] {
        let text = std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert!(text.contains("computeChecksum"), "{name}");
    }
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.starts_with("## ❌ Profile Gate: fail"), "{md}");
}

#[test]
fn a_fixture_against_itself_shows_no_change() {
    let f = fixtures().join("large.cpu.pb.gz");
    gate()
        .arg("diff")
        .arg(&f)
        .arg(&f)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("no function changed"));
}

/// `heap-growth` on a real capture in tests/fixtures/heap-growth (see its README): the exit
/// code and the rule's result and words.
fn heap_growth_of(pair: &str) -> (Option<i32>, serde_json::Value) {
    let dir = repo().join("tests/fixtures/heap-growth").join(pair);
    let out = gate()
        .arg("diff")
        .arg(dir.join("baseline"))
        .arg(dir.join("candidate"))
        .args(["--format", "json"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rule = report["verdict"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "heap-growth")
        .cloned()
        .unwrap();
    (out.status.code(), rule)
}

/// A Node.js A/A capture (one pod a side, three windows) whose candidate heap climbed in two
/// equal steps of sampled allocations once failed `heap-growth`; the baseline's heap moved as
/// much between its windows.
#[test]
fn a_node_heap_climbing_in_equal_steps_beside_a_baseline_moving_as_much_is_no_leak() {
    let (code, rule) = heap_growth_of("node-aa");
    assert_eq!(code, Some(0), "{rule}");
    assert_eq!(rule["status"], "held", "{rule}");
    // Held by the test against the baseline, not skipped or held by size.
    let words = rule["explanation"].as_str().unwrap();
    assert!(words.contains("faster than the baseline"), "{words}");
    assert!(words.contains("not clear beside how both sides"), "{words}");
}

/// A Go leak of 512 KB a second, one pod a side over 9 s: the rule breaks and names the
/// leaking function, though its own climb is less clear than the whole's.
#[test]
fn a_one_pod_go_leak_breaks_the_rule_named_at_the_leaking_function() {
    let (code, rule) = heap_growth_of("go-leak");
    assert_eq!(code, Some(1), "{rule}");
    assert_eq!(rule["status"], "broken", "{rule}");
    assert_eq!(rule["culprit"], "main.retainRecord", "{rule}");
    let words = rule["explanation"].as_str().unwrap();
    assert!(words.contains("it climbs in main.retainRecord"), "{words}");
}

/// Each kind of bad file: exit 2, the file named, no panic.
#[test]
fn bad_files_exit_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = fixtures().join("sample.cpu.pb.gz");
    let bytes = std::fs::read(&good).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.pb.gz", vec![], "empty"),
        (
            "truncated.pb.gz",
            bytes[..bytes.len() / 2].to_vec(),
            "corrupt or truncated",
        ),
        (
            "page.pb.gz",
            b"<!DOCTYPE html>\n<html><body>404 page not found</body></html>\n".to_vec(),
            "not a pprof profile",
        ),
        ("garbage.pb.gz", vec![0xff; 300], "not a pprof profile"),
    ];
    for (name, content, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        gate()
            .arg("diff")
            .arg(&path)
            .arg(&good)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(name).and(predicate::str::contains(expected)))
            .stderr(predicate::str::contains("panicked").not());
    }
}

#[test]
fn a_gzip_bomb_is_refused_without_exhausting_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb.pb.gz");
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        e.write_all(&zeros).unwrap();
    }
    std::fs::write(&path, e.finish().unwrap()).unwrap();
    gate()
        .args(["diff", "--max-profile-mib", "8"])
        .arg(&path)
        .arg(fixtures().join("sample.cpu.pb.gz"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bomb.pb.gz").and(predicate::str::contains("limit")));
}

#[test]
fn missing_paths_and_empty_directories_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    gate()
        .arg("diff")
        .arg(dir.path().join("nope"))
        .arg(fixtures().join("sample.cpu.pb.gz"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("nope"));
    gate()
        .arg("diff")
        .arg(dir.path())
        .arg(fixtures().join("sample.cpu.pb.gz"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no profile files found"));
}

#[test]
fn cpu_against_heap_is_refused_with_a_clear_message() {
    gate()
        .arg("diff")
        .arg(fixtures().join("sample.cpu.pb.gz"))
        .arg(fixtures().join("go.nomappings.crash.pb.gz"))
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("no profile kind in common")
                .and(predicate::str::contains("cpu")),
        );
}

//! `gate policy check`: every shipped policy validates; mistakes exit 2 with line and column.

use predicates::prelude::*;

use crate::support::{gate, repo};

#[test]
fn every_shipped_policy_checks_and_reads_in_plain_words() {
    let mut n = 0;
    for entry in std::fs::read_dir(repo().join("policies")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        n += 1;
        gate()
            .args(["policy", "check"])
            .arg(&path)
            .assert()
            .code(0)
            .stdout(predicate::str::contains("%"));
    }
    assert!(n >= 3, "expected default, strict and leak-watch policies");
}

#[test]
fn a_mistake_exits_2_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "version: 1\nrules:\n  - name: cpu\n    profile: cpu\n    metric: flat\n    max_increse: 20%\n",
    )
    .unwrap();
    gate()
        .args(["policy", "check"])
        .arg(&path)
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("bad.yaml:6:5").and(predicate::str::contains("max_increse")),
        );
}

#[test]
fn diff_refuses_a_bad_policy_before_reading_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, "version: 1\nrules: []\n").unwrap();
    gate()
        .args(["diff", "--policy"])
        .arg(&path)
        .args(["/nonexistent/a", "/nonexistent/b"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bad.yaml:2"));
}

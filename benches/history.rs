//! `gate history` over a year of nightly runs: 365 archived runs of 10 pods each (a local
//! store; each pod's cpu, heap, allocs and goroutine profiles, two windows each, real Go
//! profiles from `examples/profiles`). Times, as whole processes:
//!
//! - the first read, when no run has a summary yet: every profile is decoded, summarised, and
//!   the summaries stored beside the runs;
//! - later reads, from the summaries (the target: under 2 s).
//!
//! Run with `cargo bench --bench history`. Prints the figures; asserts nothing about time
//! (figures go to BENCHMARKS.md). `GATE_BENCH_RUNS` changes the number of runs; `GATE_BENCH_DIR`
//! writes the archive there and keeps it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use chrono::{Duration, Utc};
use profile_gate::archive::{
    archive_run, ArchiveObject, IndexSide, Payload, RunArchive, RunKind, Store,
};

const PODS: usize = 10;
const READS: usize = 5;
const KINDS: [&str; 4] = ["cpu", "heap", "allocs", "goroutine"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The example profiles of one stable pod, as `(file name, bytes)`.
fn pod_files(pod: usize) -> Vec<(String, Vec<u8>)> {
    let dir = repo().join(format!("examples/profiles/stable/pod-{}", pod % 3 + 1));
    let mut out = Vec::new();
    for kind in KINDS {
        for window in 1..=2 {
            let name = format!("{kind}-{window}.pb.gz");
            let bytes = std::fs::read(dir.join(&name)).expect("reading the example profiles");
            out.push((name, bytes));
        }
    }
    out
}

fn write_archive(dir: &Path, runs: usize) -> (usize, u64) {
    let store = Store::open(dir.to_str().unwrap()).expect("opening the store");
    let pods: Vec<Vec<(String, Vec<u8>)>> = (0..PODS).map(pod_files).collect();
    let now = Utc::now();
    let (mut files, mut bytes) = (0, 0u64);
    for r in 0..runs {
        let started = now - Duration::days((runs - r) as i64) + Duration::minutes(17);
        let mut objects = Vec::new();
        for (p, list) in pods.iter().enumerate() {
            for (name, data) in list {
                files += 1;
                bytes += data.len() as u64;
                objects.push(ArchiveObject {
                    key: format!("nightly/pod-{p}/{name}"),
                    payload: Payload::Bytes(data.clone()),
                });
            }
        }
        let run = RunArchive {
            service: "api".into(),
            run_id: format!("{}-{r:04}", started.format("%Y%m%dT%H%M%SZ")),
            started_at: started,
            kind: RunKind::Nightly,
            sides: vec![IndexSide {
                side: "nightly".into(),
                source: "live".into(),
                targets: vec!["svc/stable".into()],
                pods: (0..PODS).map(|p| format!("pod-{p}")).collect(),
            }],
            verdict: None,
            policy: None,
            commit: Some(format!("{r:040x}")),
            objects,
            partial: None,
        };
        let outcome = archive_run(&store, &run);
        assert!(outcome.complete(), "{}", outcome.shortfall());
    }
    (files, bytes)
}

fn history(dir: &Path) -> f64 {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_gate"))
        .args(["-q", "history", "--archive", dir.to_str().unwrap()])
        .args(["--service", "api", "--since", "400d", "--format", "json"])
        .output()
        .expect("running gate history");
    let seconds = start.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(json["runs"].as_array().is_some_and(|r| !r.is_empty()));
    seconds
}

fn summaries_size(dir: &Path) -> (usize, u64) {
    fn walk(dir: &Path, acc: &mut (usize, u64)) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, acc);
            } else if p.file_name().is_some_and(|n| n == "summary.parquet") {
                acc.0 += 1;
                acc.1 += e.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    let mut acc = (0, 0);
    walk(dir, &mut acc);
    acc
}

fn main() {
    let runs: usize = std::env::var("GATE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(365);
    let tmp = tempfile::tempdir().expect("a temporary folder");
    // GATE_BENCH_DIR keeps the archive there, for profiling `gate history` on it afterwards.
    let dir = match std::env::var_os("GATE_BENCH_DIR") {
        Some(d) => PathBuf::from(d),
        None => tmp.path().join("archive"),
    };
    let t = Instant::now();
    let (files, bytes) = write_archive(&dir, runs);
    println!(
        "archive: {runs} runs x {PODS} pods, {files} profiles ({:.1} MiB), written in {:.1} s",
        bytes as f64 / (1 << 20) as f64,
        t.elapsed().as_secs_f64()
    );
    let first = history(&dir);
    let (n, size) = summaries_size(&dir);
    println!(
        "first read (no summaries: decode {files} profiles, summarise, store {n} summaries of {:.1} MiB): {first:.2} s",
        size as f64 / (1 << 20) as f64
    );
    let mut reads: Vec<f64> = (0..READS).map(|_| history(&dir)).collect();
    reads.sort_by(f64::total_cmp);
    println!(
        "read from summaries ({READS} runs): min {:.2} s, median {:.2} s, max {:.2} s (target: under 2 s)",
        reads[0],
        reads[READS / 2],
        reads[READS - 1]
    );
}

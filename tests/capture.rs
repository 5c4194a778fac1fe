//! Live capture: gate capture and gate run against example-service processes, and against
//! targets that fail (refused, 404 or HTML pages, killed mid-run, stalled).
//!
//! Runs are short (a few 2-second windows) so the suite stays fast; every process listens on
//! 127.0.0.1 only and is killed when its test ends. Timing bounds are generous: they prove
//! that nothing hangs, not how fast anything is.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::support::{
    exclusive_cpu, go_service_binary, http_ok, refused_addr, repo, run_gate, ExampleService,
    FakeServer, Reply, Run,
};

/// One `-rate` for every process, calibrated once: the same pace on both sides, so a planted
/// regression adds work per cycle instead of changing the pace (and start-up skips
/// calibration).
pub(crate) fn rate() -> &'static str {
    static RATE: OnceLock<String> = OnceLock::new();
    RATE.get_or_init(|| {
        let out = Command::new(go_service_binary())
            .args(["-calibrate", "-load", "0.15"])
            .output()
            .expect("calibrating the example service");
        assert!(out.status.success(), "calibration failed");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    })
}

pub(crate) fn start(n: usize, extra: &[&str]) -> Vec<ExampleService> {
    (0..n)
        .map(|_| {
            let mut args = vec!["-rate", rate()];
            args.extend_from_slice(extra);
            ExampleService::start(&args)
        })
        .collect()
}

/// `--baseline URL --baseline URL2 ...` for a side.
fn side_args(flag: &str, urls: &[String]) -> Vec<String> {
    urls.iter()
        .flat_map(|u| [flag.to_owned(), u.clone()])
        .collect()
}

pub(crate) fn urls(pods: &[ExampleService]) -> Vec<String> {
    pods.iter().map(ExampleService::url).collect()
}

/// `gate run` over live sides with short windows, output into `out`.
pub(crate) fn run_live(
    baseline: &[String],
    candidate: &[String],
    out: &Path,
    extra: &[&str],
) -> Run {
    run_live_for(baseline, candidate, out, ("6s", "3"), extra)
}

/// `gate run` over live sides with `--duration` and `--windows` as given.
pub(crate) fn run_live_for(
    baseline: &[String],
    candidate: &[String],
    out: &Path,
    (duration, windows): (&str, &str),
    extra: &[&str],
) -> Run {
    let mut args: Vec<String> = vec!["run".into()];
    args.extend(side_args("--baseline", baseline));
    args.extend(side_args("--candidate", candidate));
    args.extend(
        ["--duration", duration, "--windows", windows, "--out"]
            .iter()
            .map(|s| s.to_string()),
    );
    args.push(out.display().to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    run_gate(&args)
}

pub(crate) fn manifest(out: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join("manifest.json")).expect("manifest.json written");
    serde_json::from_str(&text).expect("manifest.json is JSON")
}

/// Rules the verdict marks broken.
pub(crate) fn broken_rules(report: &serde_json::Value) -> Vec<String> {
    report["verdict"]["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter(|r| r["status"] == "broken")
        .map(|r| r["rule"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// Prints the measured window start skew of a run (all pods of both sides).
fn print_skew(label: &str, m: &serde_json::Value) {
    let per_window: Vec<String> = m["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            format!(
                "w{}: {:.1} ms (sides {:+.1} ms)",
                w["window"],
                w["skew_ms"].as_f64().unwrap_or(f64::NAN),
                w["side_offset_ms"].as_f64().unwrap_or(f64::NAN)
            )
        })
        .collect();
    eprintln!(
        "{label}: window start skew, max {:.1} ms (target < 50 ms); {}",
        m["max_skew_ms"].as_f64().unwrap_or(f64::NAN),
        per_window.join(", ")
    );
}

#[test]
fn a_a_run_passes_and_writes_reports_profiles_and_manifest() {
    let _cpu = exclusive_cpu();
    let a = start(2, &[]);
    let b = start(2, &[]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gate-out");
    let run = run_live(&urls(&a), &urls(&b), &out, &["--format", "json"]);
    assert_eq!(run.code, 0, "A/A failed: {run}");
    let report = run.json();
    assert!(broken_rules(&report).is_empty(), "{run}");
    assert_eq!(report["capture"]["interrupted"], false);

    for name in ["report.txt", "report.md", "report.json", "manifest.json"] {
        assert!(out.join(name).is_file(), "{name} missing");
    }
    let m = manifest(&out);
    assert_eq!(m["schema_version"], 1);
    assert_eq!(m["plan"]["windows"], 3);
    assert_eq!(m["plan"]["window_seconds"], 2);
    assert_eq!(m["sides"][0]["side"], "baseline");
    assert_eq!(m["sides"][1]["side"], "candidate");
    print_skew("A/A, 2 + 2 pods", &m);
    for (side, pods) in [("baseline", &a), ("candidate", &b)] {
        for pod in pods.iter() {
            let name = pod.addr.replace(':', "-");
            for kind in ["cpu", "heap", "allocs", "goroutine", "mutex", "block"] {
                for w in 1..=3 {
                    let f = out.join(format!("profiles/{side}/{name}/{kind}-{w}.pb.gz"));
                    let missing = m["missing"].as_array().unwrap().iter().any(|x| {
                        x["pod"] == name.as_str() && x["profile"] == kind && x["window"] == w
                    });
                    assert!(f.is_file() || missing, "{} missing", f.display());
                }
            }
        }
    }
    let pod = &m["sides"][0]["pods"][0];
    let request = &pod["windows"][0]["requests"][0];
    assert_eq!(request["profile"], "cpu");
    assert_eq!(request["status"], 200);
    assert!(request["bytes"].as_u64().unwrap() > 0);
    assert!(request["end_ms"].as_f64().unwrap() > request["start_ms"].as_f64().unwrap() + 1900.0);

    // The archive reads back with gate diff, with the kinds the endpoints named.
    let again = run_gate(&[
        "diff".into(),
        "--format".into(),
        "json".into(),
        out.join("profiles/baseline").display().to_string(),
        out.join("profiles/candidate").display().to_string(),
    ]);
    assert_eq!(again.code, 0, "{again}");
    let kinds: Vec<String> = again.json()["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        ["cpu", "heap", "allocs", "goroutine", "mutex", "block"],
        "{again}"
    );
}

#[test]
fn a_planted_cpu_regression_fails_and_names_the_function() {
    let _cpu = exclusive_cpu();
    // Ten times, not five: at this light load six seconds hold about 25 samples of the
    // function per pod, and when other tests load the machine the windows disagree. At 5x it
    // came out inconclusive (+84% [-1%, +240%]) in three full local CI runs over two sessions.
    // This test is about the capture path naming a real regression; the gate's power is
    // measured elsewhere with enough data for it: 3x live in live_stats, 1.5x simulated in
    // the statistics bench.
    let a = start(3, &[]);
    let b = start(3, &["-cpu-regress", "computeChecksum=10"]);
    let dir = tempfile::tempdir().unwrap();
    let run = run_live(
        &urls(&a),
        &urls(&b),
        dir.path(),
        &["--profiles", "cpu,heap"],
    );
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stdout.contains("main.computeChecksum"), "{run}");
    assert!(run.stdout.contains("[BROKEN] cpu-cumulative"), "{run}");
    print_skew("CPU A/B, 3 + 3 pods", &manifest(dir.path()));
}

#[test]
fn a_planted_goroutine_leak_fails_the_goroutine_rule() {
    let _cpu = exclusive_cpu();
    let a = start(2, &[]);
    let b = start(2, &["-goroutine-leak", "20"]);
    let dir = tempfile::tempdir().unwrap();
    let run = run_live(
        &urls(&a),
        &urls(&b),
        dir.path(),
        &["--profiles", "goroutine", "--format", "json"],
    );
    assert_eq!(run.code, 1, "{run}");
    let broken = broken_rules(&run.json());
    assert!(
        broken.iter().any(|r| r == "goroutines-total"),
        "{broken:?}: {run}"
    );
    // The climb within the candidate is reported as a leak signal; the baseline is steady.
    let json = run.json();
    let growth = json["growth"].as_array().unwrap();
    let leak = |side: &str| {
        growth
            .iter()
            .any(|g| g["side"] == side && g["kind"] == "goroutine" && g["leak_signal"] == true)
    };
    assert!(leak("candidate"), "{json}");
    assert!(!leak("baseline"), "{json}");
    // The default policy judges the climb (goroutine-growth), so it is a rule, not a warning,
    // and names the function the leaked goroutines wait in.
    assert!(
        broken.iter().any(|r| r == "goroutine-growth"),
        "{broken:?}: {run}"
    );
    assert!(json["verdict"]["rules"]
        .to_string()
        .contains("goroutine grows in the candidate"));
    assert!(
        crate::attribution::summary(&run).contains("main.leakyWatcher"),
        "{run}"
    );
}

#[test]
fn a_planted_allocation_regression_fails_on_allocs() {
    let _cpu = exclusive_cpu();
    let a = start(3, &[]);
    let b = start(3, &["-alloc-regress", "20"]);
    let dir = tempfile::tempdir().unwrap();
    let run = run_live(
        &urls(&a),
        &urls(&b),
        dir.path(),
        &["--profiles", "allocs", "--format", "json"],
    );
    assert_eq!(run.code, 1, "{run}");
    let broken = broken_rules(&run.json());
    assert!(
        broken.iter().any(|r| r.starts_with("alloc-")),
        "{broken:?}: {run}"
    );
    assert!(run.stdout.contains("main.buildIndex"), "{run}");
}

#[test]
fn capture_saves_one_side_that_run_then_compares_with_a_live_candidate() {
    let _cpu = exclusive_cpu();
    let a = start(1, &[]);
    let b = start(1, &[]);
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("saved");
    let capture = run_gate(&[
        "capture".into(),
        format!("web-1={}", a[0].url()),
        "--out".into(),
        saved.display().to_string(),
        "--duration".into(),
        "2s".into(),
        "--windows".into(),
        "1".into(),
        "--profiles".into(),
        "cpu,goroutine".into(),
    ]);
    assert_eq!(capture.code, 0, "{capture}");
    assert!(saved.join("profiles/baseline/web-1/cpu-1.pb.gz").is_file());
    assert!(saved
        .join("profiles/baseline/web-1/goroutine-1.pb.gz")
        .is_file());
    assert_eq!(manifest(&saved)["sides"][0]["pods"][0]["name"], "web-1");

    let out = dir.path().join("out");
    let run = run_gate(&[
        "run".into(),
        "--baseline".into(),
        saved.join("profiles/baseline").display().to_string(),
        "--candidate".into(),
        b[0].url(),
        "--duration".into(),
        "2s".into(),
        "--windows".into(),
        "1".into(),
        "--profiles".into(),
        "cpu,goroutine".into(),
        "--out".into(),
        out.display().to_string(),
    ]);
    assert!(run.code == 0 || run.code == 1, "{run}");
    assert!(
        run.stdout.contains("cpu cpu/nanoseconds (1 vs 1 pods)"),
        "{run}"
    );
    let m = manifest(&out);
    assert_eq!(m["sides"][0]["source"], "local");
    assert_eq!(m["sides"][1]["source"], "live");
    assert!(out.join("profiles/candidate").is_dir());
    assert!(!out.join("profiles/baseline").exists());
}

#[test]
fn a_refused_target_exits_3_and_names_the_pod() {
    let _cpu = exclusive_cpu();
    let b = start(1, &[]);
    let dead = refused_addr();
    let dir = tempfile::tempdir().unwrap();
    let run = run_live(&[format!("http://{dead}")], &urls(&b), dir.path(), &[]);
    assert_eq!(run.code, 3, "{run}");
    let pod = dead.replace(':', "-");
    assert!(
        run.stderr
            .contains("nothing usable was captured for baseline"),
        "{run}"
    );
    assert!(run.stderr.contains(&pod), "{run}");
    assert!(run.stderr.contains("cannot connect"), "{run}");
    assert!(run.stderr.contains("after 4 attempts"), "{run}");
    let m = manifest(dir.path());
    assert!(m["sides"][0]["pods"][0]["error"]
        .as_str()
        .unwrap()
        .contains("cannot connect"));
}

/// A whole HTTP response with the right length.
fn response(status: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// A fake server answering every request with `response`.
fn serve(response: Vec<u8>) -> FakeServer {
    FakeServer::start(move |_, _| Reply::Bytes(response.clone()))
}

#[test]
fn pages_that_are_not_profiles_are_named_clearly_and_exit_3() {
    let not_found = serve(response(
        "404 Not Found",
        "text/html",
        b"<html><body><h1>404 page not found</h1></body></html>\n",
    ));
    let html = serve(response(
        "200 OK",
        "text/html",
        b"<!DOCTYPE html><html>Welcome</html>\n",
    ));
    let other = serve(response("200 OK", "application/octet-stream", b""));
    let locked = serve(response(
        "401 Unauthorized",
        "text/plain",
        b"Unauthorized\n",
    ));
    let dir = tempfile::tempdir().unwrap();
    let run = run_live(
        &[not_found.url(), html.url(), locked.url()],
        &[other.url()],
        dir.path(),
        &[],
    );
    assert_eq!(run.code, 3, "{run}");
    let err = &run.stderr;
    assert!(err.contains(&not_found.addr.replace(':', "-")), "{run}");
    assert!(
        err.contains("HTTP 404 Not Found: 404 page not found"),
        "{run}"
    );
    assert!(err.contains("is this a Go pprof endpoint"), "{run}");
    assert!(err.contains(&html.addr.replace(':', "-")), "{run}");
    assert!(err.contains("not a pprof profile"), "{run}");
    assert!(err.contains("<!DOCTYPE html>"), "{run}");
    // An endpoint behind authentication: what to do, not only the status.
    assert!(err.contains("HTTP 401 Unauthorized"), "{run}");
    assert!(err.contains("the gate sends none"), "{run}");
    assert!(!err.contains("panicked"), "{run}");
}

#[test]
fn a_stalled_target_times_out_and_exits_3() {
    let stalled = FakeServer::stalled();
    let other = FakeServer::stalled();
    let dir = tempfile::tempdir().unwrap();
    let run = run_live(
        &[stalled.url()],
        &[other.url()],
        dir.path(),
        &["--timeout-margin", "1s"],
    );
    assert_eq!(run.code, 3, "{run}");
    assert!(
        run.stderr.contains("no complete response within 1s"),
        "{run}"
    );
    assert!(run.elapsed < Duration::from_secs(30), "{run}");
}

#[test]
fn a_target_that_stalls_after_the_check_ends_within_its_timeouts() {
    let _cpu = exclusive_cpu();
    let b = start(1, &[]);
    // Answers the reachability check with a real goroutine profile, then stalls.
    let goroutine = std::fs::read(repo().join("examples/profiles/stable/pod-1/goroutine-1.pb.gz"))
        .expect("a shipped goroutine profile");
    let stalls = FakeServer::start(move |n, _| {
        if n == 0 {
            Reply::Bytes(http_ok(&goroutine))
        } else {
            Reply::Stall
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let run = run_live(
        &[stalls.url()],
        &urls(&b),
        dir.path(),
        &["--timeout-margin", "1s", "--profiles", "cpu,goroutine"],
    );
    assert_eq!(run.code, 3, "{run}");
    assert!(run.stderr.contains("no complete response within"), "{run}");
    assert!(run.elapsed < Duration::from_secs(60), "{run}");
    let m = manifest(dir.path());
    assert_eq!(m["missing"].as_array().unwrap().len(), 6, "{m}");
}

#[test]
fn a_pod_killed_mid_run_leaves_a_partial_result_with_warnings() {
    let _cpu = exclusive_cpu();
    let mut a = start(2, &[]);
    let b = start(2, &[]);
    let dying = a.pop().unwrap();
    let dying_name = dying.addr.replace(':', "-");
    let mut baseline = urls(&a);
    baseline.push(dying.url());
    let dir = tempfile::tempdir().unwrap();
    // Killed during window 2 (windows start at about 0 s, 2.25 s and 4.5 s after the check).
    let killer = std::thread::spawn(move || {
        let mut dying = dying;
        std::thread::sleep(Duration::from_millis(3500));
        dying.kill();
    });
    let run = run_live(
        &baseline,
        &urls(&b),
        dir.path(),
        &["--profiles", "cpu,heap"],
    );
    killer.join().unwrap();
    assert!(run.code == 0 || run.code == 1, "{run}");
    let m = manifest(dir.path());
    let missing: Vec<&serde_json::Value> = m["missing"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["pod"] == dying_name.as_str())
        .collect();
    assert!(
        missing.iter().any(|x| x["window"] == 3),
        "window 3 of the killed pod should be missing: {m}"
    );
    assert!(
        dir.path()
            .join(format!("profiles/baseline/{dying_name}/cpu-1.pb.gz"))
            .is_file(),
        "what was captured before the pod died is kept"
    );
    let report = std::fs::read_to_string(dir.path().join("report.txt")).unwrap();
    assert!(
        report.contains(&format!("warning: baseline pod {dying_name}: window")),
        "{report}"
    );
    assert!(run.stderr.contains(&dying_name), "{run}");
}

#[test]
fn bad_arguments_exit_2_with_the_reason() {
    let cases: [(&[&str], &str); 9] = [
        (&["--windows", "0"], "--windows must be at least 1"),
        (&["--duration", "2s", "--windows", "3"], "at least 1s"),
        (&["--duration", "7s", "--windows", "2"], "whole seconds"),
        (&["--duration", "10"], "a unit is missing"),
        (&["--profiles", "cpu,threads"], "unknown profile"),
        (
            &["--baseline", "ftp://127.0.0.1:1"],
            "use http:// or https://",
        ),
        (&["--baseline", "svc/API"], "names are lowercase"),
        (&["--baseline", "/no/such/dir"], "no such file or directory"),
        (
            &["--candidate", "http://127.0.0.1:1"],
            "both a baseline pod",
        ),
    ];
    for (extra, expected) in cases {
        let mut args: Vec<String> = vec!["run".into()];
        let mut rest: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        if !extra.contains(&"--baseline") {
            args.extend(["--baseline".into(), "http://127.0.0.1:1".into()]);
        }
        if !extra.contains(&"--candidate") {
            rest.extend(["--candidate".into(), "http://127.0.0.1:2".into()]);
        }
        args.append(&mut rest);
        let run = run_gate(&args);
        assert_eq!(run.code, 2, "{args:?}: {run}");
        assert!(run.stderr.contains(expected), "{args:?}: {run}");
        assert!(run.elapsed < Duration::from_secs(10), "{args:?}: {run}");
    }
    let capture = run_gate(&[
        "capture".into(),
        "http://127.0.0.1:1".into(),
        "--out".into(),
        "x".into(),
        "--side".into(),
        "../up".into(),
    ]);
    assert_eq!(capture.code, 2, "{capture}");
    assert!(capture.stderr.contains("--side"), "{capture}");
}

#[test]
fn transient_failures_are_retried_and_recorded() {
    let read = |name: &str| {
        std::fs::read(repo().join("examples/profiles/stable/pod-1").join(name))
            .expect("a shipped profile")
    };
    let (cpu, goroutine) = (read("cpu-1.pb.gz"), read("goroutine-1.pb.gz"));
    let busy = std::sync::atomic::AtomicBool::new(true);
    // Restarting at first (503), then busy with another CPU profile once (Go's 500), then fine.
    let server = FakeServer::start(move |n, path| {
        Reply::Bytes(if n == 0 {
            response("503 Service Unavailable", "text/plain", b"restarting")
        } else if path.contains("/profile") {
            if busy.swap(false, std::sync::atomic::Ordering::Relaxed) {
                response(
                    "500 Internal Server Error",
                    "text/plain",
                    b"Could not enable CPU profiling: cpu profiling already in use\n",
                )
            } else {
                http_ok(&cpu)
            }
        } else {
            http_ok(&goroutine)
        })
    });
    let dir = tempfile::tempdir().unwrap();
    let run = run_gate(&[
        "capture".into(),
        server.url(),
        "--out".into(),
        dir.path().display().to_string(),
        "--duration".into(),
        "2s".into(),
        "--windows".into(),
        "2".into(),
        "--profiles".into(),
        "cpu,goroutine".into(),
    ]);
    assert_eq!(run.code, 0, "{run}");
    let m = manifest(dir.path());
    let pod = &m["sides"][0]["pods"][0];
    assert_eq!(pod["preflight"]["attempts"], 2, "{m}");
    let cpu_1 = &pod["windows"][0]["requests"][0];
    assert_eq!(cpu_1["profile"], "cpu");
    assert_eq!(cpu_1["attempts"], 2, "{m}");
    assert!(
        cpu_1["retried"][0]
            .as_str()
            .unwrap()
            .contains("cpu profiling already in use"),
        "{m}"
    );
    assert!(m["missing"].as_array().unwrap().is_empty(), "{m}");
    let pod_dir = dir
        .path()
        .join("profiles/baseline")
        .join(server.addr.replace(':', "-"));
    for f in ["cpu-1", "cpu-2", "goroutine-1", "goroutine-2"] {
        assert!(pod_dir.join(format!("{f}.pb.gz")).is_file(), "{f} missing");
    }
}

#[test]
fn oversized_bodies_are_refused() {
    let big = serve(http_ok(&vec![0u8; 3 << 20]));
    let dir = tempfile::tempdir().unwrap();
    let run = run_gate(&[
        "capture".into(),
        big.url(),
        "--out".into(),
        dir.path().display().to_string(),
        "--max-body-mib".into(),
        "1".into(),
    ]);
    assert_eq!(run.code, 3, "{run}");
    assert!(run.stderr.contains("larger than 1 MiB"), "{run}");
}

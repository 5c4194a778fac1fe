//! Never losing a run: stop signals keep what was captured and report it, `--out` is owned by
//! one run from a clean start and checked before the capture, a run's memory is bounded
//! whatever the pods send, and every failure leaves something in `--out` to explain it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::capture::{start, urls};
use crate::support::{exclusive_cpu, http_ok, repo, run_gate, FakeServer, Reply, Run, HANG};

/// The gate binary's path, for runs the test signals or measures itself.
fn gate_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gate"))
}

/// A `gate run` started in the background, its output collected by threads.
struct Background {
    child: Child,
    started: Instant,
    stdout: std::thread::JoinHandle<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl Background {
    fn start(args: &[String]) -> Background {
        Background::spawn(Command::new(gate_bin()).args(args))
    }

    fn spawn(command: &mut Command) -> Background {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting gate");
        let drain = |mut r: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = r.read_to_string(&mut s);
                s
            })
        };
        let stdout = drain(Box::new(child.stdout.take().unwrap()));
        let stderr = drain(Box::new(child.stderr.take().unwrap()));
        Background {
            child,
            started: Instant::now(),
            stdout,
            stderr,
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the end (bounded by [`HANG`]); the peak resident memory of the gate, in KiB.
    ///
    /// Read from `/proc/PID/status` (`VmHWM`, the high-water mark of the gate's own address
    /// space) while it runs, not from `wait4`'s `ru_maxrss`: that one also counts the memory
    /// of the process it was spawned from (this test binary, hundreds of MiB in a full run),
    /// which the kernel carries across `exec`.
    fn finish(mut self) -> (Run, u64) {
        let pid = self.child.id() as libc::pid_t;
        let deadline = self.started + HANG;
        let mut status = 0;
        let mut peak_kib = 0u64;
        loop {
            if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                let hwm = text
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
                peak_kib = peak_kib.max(hwm.unwrap_or(0));
            }
            // SAFETY: waits for our own child, with a pointer to a local.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid {
                break;
            }
            assert!(r == 0, "waitpid failed");
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("gate hung");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let code = if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -1
        };
        let run = Run {
            code,
            stdout: self.stdout.join().unwrap(),
            stderr: self.stderr.join().unwrap(),
            elapsed: self.started.elapsed(),
        };
        (run, peak_kib)
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Waits until `path` exists, at most `limit`.
fn wait_for(path: &Path, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn sigterm_mid_capture_keeps_the_profiles_and_reports_what_was_captured_as_partial() {
    let _cpu = exclusive_cpu();
    let a = start(1, &[]);
    let b = start(1, &[]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut args = strings(&[
        "run",
        "--baseline",
        &urls(&a)[0],
        "--candidate",
        &urls(&b)[0],
    ]);
    args.extend(strings(&[
        "--duration",
        "30s",
        "--windows",
        "5",
        "--profiles",
        "cpu,goroutine",
        "--format",
        "json",
        "--archive",
        &dir.path().join("archive").display().to_string(),
        "--service",
        "svc",
        "--run-id",
        "r1",
        "--out",
    ]));
    args.push(out.display().to_string());
    let run = Background::start(&args);
    // Window 1's profiles are on disk as they arrive, before the run ends.
    let window_1_on_disk = |side: &str| {
        std::fs::read_dir(out.join("profiles").join(side))
            .into_iter()
            .flatten()
            .flatten()
            .any(|pod| pod.path().join("goroutine-1.pb.gz").is_file())
    };
    let until = Instant::now() + Duration::from_secs(90);
    while !(window_1_on_disk("baseline") && window_1_on_disk("candidate")) {
        assert!(
            Instant::now() < until,
            "window 1 was not written as it arrived"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    run.signal("TERM");
    let (run, _) = run.finish();
    assert_eq!(run.code, 3, "{run}");
    assert!(run.stderr.contains("stopped by SIGTERM"), "{run}");
    assert!(run.stderr.contains("marked partial"), "{run}");
    let report = run.json();
    assert!(
        report["partial"]
            .as_str()
            .is_some_and(|p| p.contains("SIGTERM") && p.contains("of 5 windows")),
        "{run}"
    );
    assert!(
        report["verdict"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("partial"),
        "{run}"
    );
    // The rules judged what was captured: nothing skipped for want of profiles.
    assert!(report["verdict"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["profile"] == "cpu" && r["metric"] != "new")
        .all(|r| r["status"] != "skipped"));
    for file in ["report.json", "report.md", "report.txt", "manifest.json"] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["interrupted"], true);
    // Archived, but never to be read as a baseline: the index stays incomplete, saying why.
    let index = walk(&dir.path().join("archive"))
        .into_iter()
        .find(|p| p.ends_with("r1/archive.json"))
        .expect("the run's archive.json");
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(index).unwrap()).unwrap();
    assert_eq!(index["status"], "incomplete", "{index}");
    assert!(
        index["note"]
            .as_str()
            .is_some_and(|n| n.starts_with("partial: stopped by SIGTERM")),
        "{index}"
    );
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_file_as_out_is_bad_input_before_any_capture() {
    // The target never answers: had --out been checked after the capture, this would take
    // the capture's timeouts.
    let (stalled, other) = (FakeServer::stalled(), FakeServer::stalled());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gate-out");
    std::fs::write(&file, "not a folder").unwrap();
    let run = run_gate(&strings(&[
        "run",
        "--baseline",
        &stalled.url(),
        "--candidate",
        &other.url(),
        "--out",
        &file.display().to_string(),
    ]));
    assert_eq!(run.code, 2, "{run}");
    assert!(run.elapsed < Duration::from_secs(5), "{run}");
    assert!(run.stderr.contains("is a file"), "{run}");
    assert!(run.stderr.contains(&file.display().to_string()), "{run}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a folder");
}

#[test]
fn a_reused_out_holds_only_this_runs_files_and_the_users_own() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // An earlier run's leftovers, and a file of the user's.
    for stale in [
        "flame-mutex.svg",
        "report.md",
        "error.txt",
        "profiles/baseline/old-pod/cpu-1.pb.gz",
        "profiles/candidate/old-pod/heap-2.pb.gz",
    ] {
        let p = out.join(stale);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "stale").unwrap();
    }
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let profiles = repo().join("examples/profiles");
    let run = run_gate(&strings(&[
        "run",
        "--baseline",
        &profiles.join("stable").display().to_string(),
        "--candidate",
        &profiles.join("canary").display().to_string(),
        "--out",
        &out.display().to_string(),
    ]));
    assert!(run.code == 0 || run.code == 1, "{run}");
    assert!(
        !out.join("flame-mutex.svg").exists() || {
            std::fs::read_to_string(out.join("flame-mutex.svg")).unwrap() != "stale"
        }
    );
    assert!(!out.join("error.txt").exists());
    assert!(
        !out.join("profiles").exists(),
        "an earlier run's profiles are kept"
    );
    assert_ne!(
        std::fs::read_to_string(out.join("report.md")).unwrap(),
        "stale"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "mine"
    );
}

#[test]
fn a_second_gate_into_the_same_out_is_refused_while_the_first_runs() {
    let (stalled, other) = (FakeServer::stalled(), FakeServer::stalled());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out").display().to_string();
    let args = || {
        strings(&[
            "run",
            "--baseline",
            &stalled.url(),
            "--candidate",
            &other.url(),
            "--duration",
            "2s",
            "--windows",
            "1",
            "--out",
            &out,
        ])
    };
    let first = Background::start(&args());
    assert!(wait_for(
        &Path::new(&out).join(".gate.lock"),
        Duration::from_secs(20)
    ));
    let second = run_gate(&args());
    assert_eq!(second.code, 2, "{second}");
    assert!(
        second.stderr.contains("another gate run") && second.stderr.contains(&out),
        "{second}"
    );
    first.signal("TERM");
    let (first, _) = first.finish();
    assert_eq!(first.code, 3, "{first}");
    assert!(
        first
            .stderr
            .contains("stopped by SIGTERM before a window was captured on both sides"),
        "{first}"
    );
    // Once the first has ended, the folder is free again (the kernel drops the lock).
    let third = run_gate(&strings(&[
        "diff",
        &repo()
            .join("examples/profiles/stable")
            .display()
            .to_string(),
        &repo()
            .join("examples/profiles/canary")
            .display()
            .to_string(),
        "--out",
        &out,
    ]));
    assert!(third.code == 0 || third.code == 1, "{third}");
}

/// `head -c SIZE /dev/zero | gzip -1`: a few hundred kilobytes that inflate to SIZE.
fn gzip_bomb(mib: u64) -> Vec<u8> {
    let out = Command::new("sh")
        .args(["-c", &format!("head -c {}M /dev/zero | gzip -1", mib)])
        .output()
        .expect("gzip");
    assert!(out.status.success());
    out.stdout
}

#[test]
fn bombs_from_three_pods_stay_under_the_run_budget_and_make_their_rules_inconclusive() {
    let _cpu = exclusive_cpu();
    let goroutine =
        std::fs::read(repo().join("examples/profiles/canary/pod-1/goroutine-1.pb.gz")).unwrap();
    let bomb = gzip_bomb(256);
    let pods: Vec<FakeServer> = (0..3)
        .map(|_| {
            let (goroutine, bomb) = (goroutine.clone(), bomb.clone());
            FakeServer::start(move |_, path| {
                Reply::Bytes(http_ok(if path.contains("/heap") {
                    &bomb
                } else {
                    &goroutine
                }))
            })
        })
        .collect();
    let baseline = start(1, &[]);
    let dir = tempfile::tempdir().unwrap();
    let mut args = strings(&["run", "--baseline", &urls(&baseline)[0]]);
    for p in &pods {
        args.extend(strings(&["--candidate", &p.url()]));
    }
    args.extend(strings(&[
        "--profiles",
        "heap,goroutine",
        "--duration",
        "2s",
        "--windows",
        "1",
        "--max-profile-mib",
        "64",
        "--format",
        "json",
        "--out",
    ]));
    args.push(dir.path().join("out").display().to_string());
    let (run, peak_kib) = Background::start(&args).finish();
    // Each bomb could take 64 MiB (twice that while its buffer doubled) at the same time as
    // the others: 3 x 128 MiB. The budget holds the run to two profiles' limits at once.
    println!(
        "three bomb pods, --max-profile-mib 64 (budget 128 MiB): peak RSS {:.1} MiB",
        peak_kib as f64 / 1024.0
    );
    assert!(peak_kib < 300 * 1024, "peak {peak_kib} KiB\n{run}");
    let report = run.json();
    let heap_rules: Vec<&serde_json::Value> = report["verdict"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["profile"] == "heap")
        .collect();
    assert!(!heap_rules.is_empty());
    for r in heap_rules {
        assert_eq!(r["status"], "inconclusive", "{run}");
        assert!(
            r["explanation"].as_str().unwrap().contains("limit"),
            "{run}"
        );
    }
    assert_ne!(report["verdict"]["outcome"], "pass", "{run}");
}

#[test]
fn a_failure_before_any_window_leaves_its_reason_in_out() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (refused, other) = (
        crate::support::refused_addr(),
        crate::support::refused_addr(),
    );
    let run = run_gate(&strings(&[
        "run",
        "--baseline",
        &format!("http://{refused}"),
        "--candidate",
        &format!("http://{other}"),
        "--duration",
        "2s",
        "--windows",
        "1",
        "--out",
        &out.display().to_string(),
    ]));
    assert_eq!(run.code, 3, "{run}");
    let error = std::fs::read_to_string(out.join("error.txt")).expect("error.txt written");
    assert!(error.starts_with("error: "), "{error}");
    assert!(error.contains(&refused), "{error}");
}

#[test]
fn only_the_unreachable_side_is_named() {
    let _cpu = exclusive_cpu();
    let baseline = start(1, &[]);
    let refused = crate::support::refused_addr();
    let dir = tempfile::tempdir().unwrap();
    let run = run_gate(&strings(&[
        "run",
        "--baseline",
        &urls(&baseline)[0],
        "--candidate",
        &format!("http://{refused}"),
        "--duration",
        "2s",
        "--windows",
        "1",
        "--out",
        &dir.path().join("out").display().to_string(),
    ]));
    assert_eq!(run.code, 3, "{run}");
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(last.contains("for candidate"), "{run}");
    assert!(!last.contains("for baseline"), "{run}");
}

#[test]
fn a_hang_up_ignored_by_whoever_started_the_gate_stays_ignored() {
    let _cpu = exclusive_cpu();
    let a = start(1, &[]);
    let b = start(1, &[]);
    let dir = tempfile::tempdir().unwrap();
    // As `nohup gate run ...` starts it: SIGHUP ignored before the gate runs.
    let script = format!(
        "trap '' HUP; exec '{}' run --baseline {} --candidate {} --duration 6s --windows 2 --profiles goroutine --format json --out '{}'",
        gate_bin().display(),
        urls(&a)[0],
        urls(&b)[0],
        dir.path().join("out").display()
    );
    let run = Background::spawn(Command::new("sh").args(["-c", &script]));
    std::thread::sleep(Duration::from_secs(2));
    run.signal("HUP");
    let (run, _) = run.finish();
    assert_eq!(run.code, 0, "{run}");
    assert!(run.json()["partial"].is_null(), "{run}");
}

#[test]
fn gate_capture_stopped_before_any_window_says_it_was_stopped() {
    let stalled = FakeServer::stalled();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = Background::start(&strings(&[
        "capture",
        &stalled.url(),
        "--duration",
        "2s",
        "--windows",
        "1",
        "--out",
        &out.display().to_string(),
    ]));
    assert!(wait_for(&out.join(".gate.lock"), Duration::from_secs(20)));
    // The signal watch starts right after the lock: a second leaves room on a loaded machine.
    std::thread::sleep(Duration::from_secs(1));
    run.signal("TERM");
    let (run, _) = run.finish();
    assert_eq!(run.code, 3, "{run}");
    assert!(
        run.stderr
            .contains("stopped by SIGTERM; the 0 profiles captured so far"),
        "{run}"
    );
    assert!(out.join("manifest.json").is_file(), "{run}");
}

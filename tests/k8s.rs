//! Kubernetes targets through a fake apiserver that speaks the real protocol (see
//! `support::fake_apiserver`), with real example-service processes behind its port-forwards:
//! `gate run --baseline svc/stable --candidate svc/canary`, A/A and a planted regression, and
//! every fault the issue names (forbidden port-forward, an upgrade that never completes, a
//! connection dropped after N bytes, a pod not Ready, a pod restarted mid-run, the apiserver
//! going away or stalling mid-run), each with a clear message, the right exit code and a
//! bounded time.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::support::fake_apiserver::{FakeApiServer, FakePod, Fault, Outage, FAKE_TOKEN};
use crate::support::{
    self, exclusive_cpu, gate, go_service_binary, refused_addr, ExampleService, Run, HANG,
};

/// A policy with the per-function CPU rules only (as tests/live_stats.rs uses).
const CPU_POLICY: &str = "version: 1
rules:
  - { name: cpu-flat, profile: cpu, metric: flat, ignore: ['runtime.*'], max_increase: 20% }
  - { name: cpu-cum, profile: cpu, metric: cum, ignore: ['runtime.*'], max_increase: 20% }
";

/// The `-rate` that makes one process use about `load` cores (calibrated once per load).
fn rate(load: &'static str) -> String {
    static RATES: OnceLock<std::sync::Mutex<Vec<(&'static str, String)>>> = OnceLock::new();
    let rates = RATES.get_or_init(Default::default);
    let mut rates = rates.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, r)) = rates.iter().find(|(l, _)| *l == load) {
        return r.clone();
    }
    let out = Command::new(go_service_binary())
        .args(["-calibrate", "-load", load])
        .output()
        .expect("calibrating the example service");
    assert!(out.status.success(), "calibration failed");
    let r = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    rates.push((load, r.clone()));
    r
}

/// A fake cluster: the apiserver, a kubeconfig for it, and the processes behind its pods.
struct Cluster {
    fake: FakeApiServer,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    processes: Vec<ExampleService>,
}

impl Cluster {
    /// A cluster with Services `stable` and `canary` (selecting `track=stable|canary`) and
    /// a Deployment of each name, and no pods yet.
    fn new() -> Cluster {
        let fake = FakeApiServer::start();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        fake.write_kubeconfig(&kubeconfig);
        for track in ["stable", "canary"] {
            fake.add_service(track, &[("app", "web"), ("track", track)]);
            fake.add_deployment(track, &[("app", "web"), ("track", track)]);
            fake.add_statefulset(track, &[("app", "web"), ("track", track)]);
        }
        Cluster {
            fake,
            dir,
            kubeconfig,
            processes: Vec::new(),
        }
    }

    /// Starts `n` example-service processes for `track` (pods `TRACK-1`..`TRACK-n`).
    fn pods(&mut self, track: &str, n: usize, load: &'static str, extra: &[&str]) {
        let rate = rate(load);
        for i in 1..=n {
            let mut args = vec!["-rate", rate.as_str()];
            args.extend_from_slice(extra);
            let service = ExampleService::start(&args);
            self.fake
                .add_pod(FakePod::new(&format!("{track}-{i}"), track, &service.addr));
            self.processes.push(service);
        }
    }

    /// A cluster with one example-service pod a side at a light load (`stable-1`, `canary-1`).
    fn one_pod_a_side() -> Cluster {
        let mut c = Cluster::new();
        c.pods("stable", 1, "0.1", &[]);
        c.pods("canary", 1, "0.1", &[]);
        c
    }

    /// Pods whose backends refuse connections (for tests that never reach a pod).
    fn dead_pods(&self, track: &str, n: usize) {
        for i in 1..=n {
            self.fake.add_pod(FakePod::new(
                &format!("{track}-{i}"),
                track,
                &refused_addr(),
            ));
        }
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("gate-out")
    }

    /// Runs `gate` with `--kubeconfig` added.
    fn gate(&self, args: &[&str]) -> Run {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.push("--kubeconfig".into());
        all.push(self.kubeconfig.display().to_string());
        run_gate(&all)
    }

    /// `gate run` of two sides with short windows into `out()`, plus `extra`.
    fn run(&self, baseline: &str, candidate: &str, extra: &[&str]) -> Run {
        let out = self.out().display().to_string();
        let mut args = vec![
            "run",
            "--baseline",
            baseline,
            "--candidate",
            candidate,
            "--out",
            &out,
        ];
        args.extend_from_slice(extra);
        self.gate(&args)
    }

    /// `gate run svc/stable svc/canary` with one 2 s window and a 2 s timeout margin, so that
    /// a pod that stalls is given up on quickly, plus `extra`.
    fn run_one_short_window(&self, extra: &[&str]) -> Run {
        let mut args = vec![
            "--duration",
            "2s",
            "--windows",
            "1",
            "--timeout-margin",
            "2s",
        ];
        args.extend_from_slice(extra);
        self.run("svc/stable", "svc/canary", &args)
    }

    fn manifest(&self) -> serde_json::Value {
        manifest(&self.out())
    }
}

/// [`support::run_gate`], checking that the kubeconfig's token is never printed.
fn run_gate(args: &[String]) -> Run {
    let run = support::run_gate(args);
    // The message a person sees, for `--nocapture` runs.
    eprintln!(
        "gate {}: exit {} after {:.1}s\n{}",
        args.first().map(String::as_str).unwrap_or(""),
        run.code,
        run.elapsed.as_secs_f64(),
        run.stderr
            .lines()
            .filter(|l| l.contains("error") || l.contains("WARN"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        !run.stdout.contains(FAKE_TOKEN) && !run.stderr.contains(FAKE_TOKEN),
        "the kubeconfig token was printed: {run}"
    );
    run
}

fn manifest(out: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join("manifest.json")).expect("manifest.json written");
    assert!(!text.contains(FAKE_TOKEN), "the token is in manifest.json");
    serde_json::from_str(&text).expect("manifest.json is JSON")
}

/// The manifest's record of one pod.
fn pod_record<'a>(m: &'a serde_json::Value, side: usize, pod: &str) -> &'a serde_json::Value {
    m["sides"][side]["pods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == pod)
        .unwrap_or_else(|| panic!("pod {pod} not in the manifest: {m}"))
}

/// Names of the functions any rule marked regressed.
fn regressed(report: &serde_json::Value) -> Vec<String> {
    let mut names: Vec<String> = report["verdict"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["findings"].as_array().unwrap().iter())
        .filter(|f| f["answer"]["status"] == "regressed")
        .map(|f| f["function"].as_str().unwrap_or("total").to_owned())
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn a_a_through_port_forwards_passes_and_records_every_pod() {
    let _cpu = exclusive_cpu();
    let mut c = Cluster::new();
    c.pods("stable", 2, "0.15", &[]);
    c.pods("canary", 2, "0.15", &[]);
    let run = c.run(
        "svc/stable",
        "default/deploy/canary",
        &[
            "--duration",
            "4s",
            "--windows",
            "2",
            "--profiles",
            "cpu,heap,goroutine",
            "--format",
            "json",
        ],
    );
    assert_eq!(
        run.code,
        0,
        "A/A through port-forwards failed: {run}\n{}",
        c.fake.log()
    );
    let report = run.json();
    assert_eq!(report["baseline"], "svc/stable");
    let m = c.manifest();
    // Request times through the bridge: the reachability check opens a new port-forward;
    // snapshots reuse a kept-alive connection (and its port-forward).
    let took =
        |r: &serde_json::Value| r["end_ms"].as_f64().unwrap() - r["start_ms"].as_f64().unwrap();
    let mut preflight = Vec::new();
    let mut snapshots = Vec::new();
    for side in m["sides"].as_array().unwrap() {
        for pod in side["pods"].as_array().unwrap() {
            preflight.push(took(&pod["preflight"]));
            for w in pod["windows"].as_array().unwrap() {
                for r in w["requests"].as_array().unwrap() {
                    if r["profile"] == "heap" || r["profile"] == "goroutine" {
                        snapshots.push(took(r));
                    }
                }
            }
        }
    }
    preflight.sort_by(f64::total_cmp);
    snapshots.sort_by(f64::total_cmp);
    eprintln!(
        "A/A through port-forwards, 2 + 2 pods: window start skew at most {:.1} ms; first request (new port-forward) median {:.1} ms; snapshots median {:.1} ms, max {:.1} ms",
        m["max_skew_ms"].as_f64().unwrap_or(f64::NAN),
        preflight[preflight.len() / 2],
        snapshots[snapshots.len() / 2],
        snapshots[snapshots.len() - 1]
    );
    let k = &m["sides"][0]["kubernetes"];
    assert_eq!(k["targets"][0]["selector"], "app=web,track=stable", "{m}");
    assert_eq!(k["targets"][0]["ready"], 2);
    assert_eq!(k["server"], format!("http://{}/", c.fake.addr));
    assert_eq!(
        m["sides"][1]["kubernetes"]["targets"][0]["target"],
        "default/deploy/canary"
    );
    for (side, track) in [(0, "stable"), (1, "canary")] {
        for i in 1..=2 {
            let name = format!("{track}-{i}");
            let pod = pod_record(&m, side, &name);
            let kube = &pod["kubernetes"];
            assert_eq!(kube["namespace"], "default");
            assert!(kube["node"].as_str().unwrap().starts_with("node-"), "{pod}");
            assert_eq!(kube["image"], "example/go-service:test");
            assert_eq!(kube["port"], 6060);
            assert_eq!(kube["restarts_at_start"], 0);
            assert_eq!(kube["restarts_at_end"], 0);
            assert!(kube["dropped"].is_null());
            // Keep-alive: one local connection (one port-forward) may carry every request.
            assert!(
                kube["forwarded_connections"].as_u64().unwrap() >= 1,
                "{pod}"
            );
            assert!(pod["base_url"]
                .as_str()
                .unwrap()
                .starts_with("http://127.0.0.1:"));
            // The probe, then the capture's own.
            assert!(c.fake.forwards(&name) >= 2, "{}", c.fake.log());
            let dir = ["baseline", "candidate"][side];
            for kind in ["cpu", "heap", "goroutine"] {
                for w in 1..=2 {
                    let f = c
                        .out()
                        .join(format!("profiles/{dir}/{name}/{kind}-{w}.pb.gz"));
                    assert!(f.is_file(), "{} missing: {run}", f.display());
                }
            }
        }
    }

    // The saved baseline against the live canary (a nightly archive against a release).
    let saved = c.dir.path().join("saved");
    std::fs::rename(c.out().join("profiles/baseline"), &saved).unwrap();
    let again = c.run(
        saved.to_str().unwrap(),
        "deploy/canary",
        &[
            "--duration",
            "4s",
            "--windows",
            "2",
            "--profiles",
            "cpu,heap,goroutine",
        ],
    );
    assert_eq!(again.code, 0, "{again}");
    let m = c.manifest();
    assert_eq!(m["sides"][0]["source"], "local");
    assert_eq!(
        m["sides"][1]["kubernetes"]["targets"][0]["chosen"][1],
        "canary-2"
    );
}

#[test]
fn a_planted_regression_through_port_forwards_fails_and_names_the_function() {
    let _cpu = exclusive_cpu();
    let mut c = Cluster::new();
    c.pods("stable", 3, "0.25", &[]);
    c.pods("canary", 3, "0.25", &["-cpu-regress", "computeChecksum=3"]);
    let policy = c.dir.path().join("policy.yaml");
    std::fs::write(&policy, CPU_POLICY).unwrap();
    let run = c.run(
        "svc/stable",
        "sts/canary",
        &[
            "--duration",
            "30s",
            "--windows",
            "5",
            "--profiles",
            "cpu",
            "--format",
            "json",
            "--policy",
            policy.to_str().unwrap(),
        ],
    );
    let report = run.json();
    eprintln!(
        "A/B through port-forwards, 3 + 3 pods: window start skew at most {:.1} ms; {}",
        c.manifest()["max_skew_ms"].as_f64().unwrap_or(f64::NAN),
        report["verdict"]["summary"]
    );
    assert_eq!(run.code, 1, "{}: {run}", report["verdict"]["summary"]);
    let found = regressed(&report);
    assert!(
        found.iter().any(|f| f == "main.computeChecksum"),
        "computeChecksum not named: {found:?}"
    );
}

#[test]
fn a_forbidden_port_forward_exits_3_and_names_the_missing_rbac_verb() {
    let c = Cluster::new();
    c.dead_pods("stable", 1);
    c.dead_pods("canary", 1);
    c.fake.forbid("create", "pods/portforward");
    // Verbose: every debug line is printed, and still no credential (checked by run_gate).
    let run = c.run(
        "svc/stable",
        "svc/canary",
        &["--duration", "2s", "--windows", "1", "-v"],
    );
    assert_eq!(run.code, 3, "{run}");
    assert!(
        run.stderr
            .contains("RBAC verb `create` on resource `pods/portforward`"),
        "{run}"
    );
    assert!(
        run.stderr.contains("cannot create resource"),
        "apiserver message kept: {run}"
    );
    assert!(run.elapsed < Duration::from_secs(30), "{run}");
}

#[test]
fn forbidden_reads_name_their_verb_too() {
    let c = Cluster::new();
    c.dead_pods("stable", 1);
    c.dead_pods("canary", 1);
    c.fake.forbid("list", "pods");
    let run = c.run(
        "svc/stable",
        "svc/canary",
        &["--duration", "2s", "--windows", "1"],
    );
    assert_eq!(run.code, 3, "{run}");
    assert!(
        run.stderr.contains("RBAC verb `list` on resource `pods`"),
        "{run}"
    );
}

#[test]
fn an_upgrade_that_never_completes_is_abandoned_in_bounded_time() {
    let c = Cluster::new();
    c.dead_pods("stable", 1);
    c.dead_pods("canary", 2);
    for pod in ["stable-1", "canary-1", "canary-2"] {
        c.fake.set_fault(pod, Fault::StallUpgrade);
    }
    let run = c.run_one_short_window(&[]);
    assert_eq!(run.code, 3, "{run}");
    assert!(run.stderr.contains("did not open within 1s"), "{run}");
    assert!(
        run.stderr.contains("never completed the websocket upgrade"),
        "{run}"
    );
    assert!(run.elapsed < Duration::from_secs(20), "{run}");
}

#[test]
fn a_stalled_pod_is_left_out_and_the_others_still_compare() {
    let _cpu = exclusive_cpu();
    let mut c = Cluster::new();
    c.pods("stable", 2, "0.15", &[]);
    c.pods("canary", 1, "0.15", &[]);
    c.fake.set_fault("stable-2", Fault::StallUpgrade);
    let run = c.run_one_short_window(&["--profiles", "goroutine"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stderr.contains("baseline pod stable-2 left out")
            && run.stderr.contains("did not open within"),
        "{run}"
    );
    let m = c.manifest();
    assert_eq!(m["sides"][0]["pods"].as_array().unwrap().len(), 1, "{m}");
}

#[test]
fn hostile_pod_names_in_warnings_cannot_drive_the_terminal() {
    // The pod left out is named with a screen-clearing escape and a carriage return that
    // would overwrite the warning line; the warning must still name it, harmlessly.
    let _cpu = exclusive_cpu();
    let mut c = Cluster::new();
    c.pods("stable", 1, "0.15", &[]);
    c.pods("canary", 1, "0.15", &[]);
    let hostile = "stable-\u{1b}[2J\rall good";
    let p = ExampleService::start(&["-rate", &rate("0.15")]);
    c.fake.add_pod(FakePod::new(hostile, "stable", &p.addr));
    c.processes.push(p);
    c.fake.set_fault(hostile, Fault::StallUpgrade);
    let run = c.run_one_short_window(&["--profiles", "goroutine"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stderr.contains("[2J\u{fffd}all good left out"), "{run}");
    assert!(
        !run.stderr.contains('\r'),
        "a carriage return reached the terminal: {run}"
    );
    assert!(
        !run.stderr.contains("\u{1b}[2J"),
        "an escape reached the terminal: {run}"
    );
    // report.json keeps the name exactly; the Markdown report escapes it.
    let report = std::fs::read_to_string(c.out().join("report.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert!(
        json["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains(hostile)),
        "{report}"
    );
}

#[test]
fn connections_dropped_mid_response_are_retried_then_reported_missing() {
    let _cpu = exclusive_cpu();
    let mut c = Cluster::new();
    c.pods("stable", 1, "0.15", &[]);
    c.pods("canary", 2, "0.15", &[]);
    // canary-1: its first two connections are cut after 100 bytes (inside the headers);
    // canary-2: every one of them is.
    c.fake.set_fault(
        "canary-1",
        Fault::DropAfter {
            bytes: 100,
            connections: 2,
        },
    );
    c.fake.set_fault(
        "canary-2",
        Fault::DropAfter {
            bytes: 100,
            connections: usize::MAX,
        },
    );
    let run = c.run(
        "svc/stable",
        "svc/canary",
        &[
            "--duration",
            "4s",
            "--windows",
            "2",
            "--profiles",
            "goroutine",
        ],
    );
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(c.fake.cuts("canary-1"), 2, "{}", c.fake.log());
    assert!(c.fake.cuts("canary-2") >= 2);
    let m = c.manifest();
    // canary-1 lost nothing: the cut attempts were retried.
    for w in 1..=2 {
        let f = c
            .out()
            .join(format!("profiles/candidate/canary-1/goroutine-{w}.pb.gz"));
        assert!(f.is_file(), "{} missing: {run}", f.display());
    }
    let retried = pod_record(&m, 1, "canary-1").to_string();
    assert!(
        retried.contains("retried") || retried.contains("\"attempts\":2"),
        "{retried}"
    );
    // canary-2 never answered whole: named, with why, and not compared.
    let warnings = m["warnings"].to_string();
    assert!(warnings.contains("candidate pod canary-2"), "{warnings}");
    assert!(warnings.contains("connection broke"), "{warnings}");
    // A drop of the port-forward is one of the causes said, not only a process exit.
    assert!(warnings.contains("port-forward"), "{warnings}");
    assert!(!c.out().join("profiles/candidate/canary-2").exists());
}

/// A run whose only candidate pod, named `name`, is Running but not Ready (and whose baseline
/// pod refuses connections): it must end with exit 3 before capturing anything.
fn run_with_an_unready_canary(name: &str) -> Run {
    let c = Cluster::new();
    c.dead_pods("stable", 1);
    let mut pod = FakePod::new(name, "canary", &refused_addr());
    pod.ready = false;
    c.fake.add_pod(pod);
    let run = c.run(
        "svc/stable",
        "svc/canary",
        &["--duration", "2s", "--windows", "1"],
    );
    assert_eq!(run.code, 3, "{run}");
    assert!(
        run.stderr
            .contains("svc/canary: no pod is Running and Ready"),
        "{run}"
    );
    run
}

#[test]
fn pods_not_ready_are_not_used_and_none_ready_exits_3() {
    let run = run_with_an_unready_canary("canary-1");
    assert!(run.stderr.contains("canary-1: Running, not Ready"), "{run}");
    assert!(run.elapsed < Duration::from_secs(20), "{run}");
}

#[test]
fn hostile_pod_names_in_errors_cannot_drive_the_terminal() {
    // An apiserver (not a real one: those validate names) names a pod with a screen-clearing
    // escape, a bell and a carriage return that would overwrite the error line.
    let run = run_with_an_unready_canary("canary-\u{1b}[2J\u{7}\rall good");
    assert!(
        run.stderr
            .contains("canary-\u{fffd}[2J\u{fffd}\u{fffd}all good: Running, not Ready"),
        "{run}"
    );
    for c in ['\u{1b}', '\u{7}', '\r'] {
        assert!(!run.stderr.contains(c), "{c:?} reached the terminal: {run}");
    }
}

#[test]
fn a_pod_restarted_mid_run_is_dropped_with_a_warning() {
    let _cpu = exclusive_cpu();
    let mut c = Cluster::new();
    c.pods("stable", 2, "0.15", &[]);
    c.pods("canary", 2, "0.15", &[]);
    let run = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_secs(3));
            c.fake.set_restarts("stable-2", 1);
        });
        c.run(
            "svc/stable",
            "svc/canary",
            &[
                "--duration",
                "6s",
                "--windows",
                "2",
                "--profiles",
                "goroutine",
                "--format",
                "json",
            ],
        )
    });
    assert_eq!(run.code, 0, "{run}");
    let m = c.manifest();
    let kube = &pod_record(&m, 0, "stable-2")["kubernetes"];
    assert_eq!(kube["restarts_at_start"], 0, "{m}");
    assert_eq!(kube["restarts_at_end"], 1, "{m}");
    assert!(
        kube["dropped"].as_str().unwrap().contains("restarted"),
        "{m}"
    );
    assert!(pod_record(&m, 0, "stable-1")["kubernetes"]["dropped"].is_null());
    let warnings = run.json()["warnings"].to_string();
    assert!(
        warnings.contains("baseline pod stable-2 restarted during the run"),
        "{warnings}"
    );
    assert!(!c.out().join("profiles/baseline/stable-2").exists());
    assert!(c
        .out()
        .join("profiles/baseline/stable-1/goroutine-1.pb.gz")
        .is_file());
}

#[test]
fn a_pod_deleted_mid_run_is_dropped_with_a_warning_and_the_others_compared() {
    let _cpu = exclusive_cpu();
    let mut c = Cluster::new();
    c.pods("stable", 2, "0.1", &[]);
    c.pods("canary", 1, "0.1", &[]);
    let run = std::thread::scope(|s| {
        s.spawn(|| {
            // After its probe, its reachability check and window 1's snapshot.
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while c.fake.forwards("stable-2") < 3 && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            c.fake.delete_pod("stable-2");
        });
        two_window_run(&c)
    });
    assert_eq!(run.code, 0, "{run}\n{}", c.fake.log());
    let m = c.manifest();
    let kube = &pod_record(&m, 0, "stable-2")["kubernetes"];
    assert!(
        kube["dropped"]
            .as_str()
            .unwrap()
            .contains("deleted during the run"),
        "{m}"
    );
    let warnings = run.json()["warnings"].to_string();
    assert!(
        warnings.contains("baseline pod stable-2 the pod was deleted during the run"),
        "{warnings}"
    );
    // Its counters cannot be trusted across the deletion: left out; the others compared.
    assert!(
        !c.out().join("profiles/baseline/stable-2").exists(),
        "{run}"
    );
    for f in [
        "profiles/baseline/stable-1/goroutine-2.pb.gz",
        "profiles/candidate/canary-1/goroutine-2.pb.gz",
    ] {
        assert!(c.out().join(f).is_file(), "{f} missing: {run}");
    }
    assert!(run.elapsed < Duration::from_secs(45), "{run}");
}

#[test]
fn unknown_objects_unreachable_apiservers_and_bad_targets_are_clear() {
    let c = Cluster::new();
    c.dead_pods("stable", 1);
    let run = c.run(
        "svc/stable",
        "deploy/nope",
        &["--duration", "2s", "--windows", "1"],
    );
    assert_eq!(run.code, 3, "{run}");
    assert!(
        run.stderr
            .contains("Deployment \"nope\" in namespace \"default\" not found"),
        "{run}"
    );

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let text = std::fs::read_to_string(&c.kubeconfig)
        .unwrap()
        .replace(&c.fake.addr, &refused_addr());
    std::fs::write(&kubeconfig, text).unwrap();
    let run = run_gate(&[
        "run".into(),
        "--baseline".into(),
        "svc/stable".into(),
        "--candidate".into(),
        "svc/canary".into(),
        "--kubeconfig".into(),
        kubeconfig.display().to_string(),
    ]);
    assert_eq!(run.code, 3, "{run}");
    assert!(
        run.stderr.contains("cannot reach the Kubernetes apiserver"),
        "{run}"
    );
    assert!(run.elapsed < Duration::from_secs(30), "{run}");

    let run = c.run("svc/Stable", "svc/canary", &[]);
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("lowercase"), "{run}");
    let run = c.run("deployments/stable", "svc/canary", &[]);
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("write deploy/stable"), "{run}");
    let run = run_gate(&[
        "capture".into(),
        "svc/stable".into(),
        "--out".into(),
        dir.path().join("o").display().to_string(),
        "--kubeconfig".into(),
        dir.path().join("missing").display().to_string(),
    ]);
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("--kubeconfig"), "{run}");
}

#[test]
fn capture_takes_a_reproducible_seeded_choice_of_pods_on_a_named_port() {
    let _cpu = exclusive_cpu();
    let mut c = Cluster::new();
    c.pods("stable", 4, "0.1", &[]);
    let chosen = |out: &Path| -> Vec<String> {
        let run = c.gate(&[
            "capture",
            "svc/stable",
            "--out",
            out.to_str().unwrap(),
            "--max-pods",
            "2",
            "--pod-seed",
            "7",
            "--port",
            "pprof",
            "--duration",
            "1s",
            "--windows",
            "1",
            "--profiles",
            "goroutine",
        ]);
        assert_eq!(run.code, 0, "{run}");
        let m = manifest(out);
        assert_eq!(m["sides"][0]["kubernetes"]["seed"], 7);
        assert_eq!(m["sides"][0]["kubernetes"]["max_pods"], 2);
        assert_eq!(m["sides"][0]["kubernetes"]["targets"][0]["ready"], 4);
        let names: Vec<String> = m["sides"][0]["kubernetes"]["targets"][0]["chosen"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        for n in &names {
            assert!(out
                .join(format!("profiles/baseline/{n}/goroutine-1.pb.gz"))
                .is_file());
        }
        names
    };
    let first = chosen(&c.dir.path().join("a"));
    assert_eq!(first.len(), 2);
    assert_eq!(first, chosen(&c.dir.path().join("b")));
}

#[test]
fn the_nightly_archive_takes_kubernetes_targets() {
    let _cpu = exclusive_cpu();
    let mut c = Cluster::new();
    c.pods("stable", 2, "0.1", &[]);
    let store = c.dir.path().join("store");
    let run = c.gate(&[
        "archive",
        "svc/stable",
        "--to",
        store.to_str().unwrap(),
        "--service",
        "api",
        "--port",
        "pprof",
        "--duration",
        "1s",
        "--windows",
        "1",
        "--profiles",
        "goroutine",
    ]);
    assert_eq!(run.code, 0, "{run}");
    // api/<yyyy>/<mm>/<dd>/<run-id>/nightly/<pod>/goroutine-1.pb.gz, one per pod, and the
    // run marked complete.
    fn files(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                files(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut all = Vec::new();
    files(&store.join("api"), &mut all);
    let profiles: Vec<&PathBuf> = all
        .iter()
        .filter(|p| p.ends_with("goroutine-1.pb.gz"))
        .collect();
    assert_eq!(profiles.len(), 2, "{all:?}");
    assert!(profiles
        .iter()
        .all(|p| p.parent().unwrap().parent().unwrap().ends_with("nightly")));
    let index = all
        .iter()
        .find(|p| p.ends_with("archive.json"))
        .expect("archive.json");
    let index = std::fs::read_to_string(index).unwrap();
    assert!(index.contains("\"complete\""), "{index}");
}

#[test]
fn forward_prints_a_local_url_per_pod_that_serves_pprof() {
    use std::io::BufRead;
    let _cpu = exclusive_cpu();
    let mut c = Cluster::new();
    c.pods("stable", 2, "0.1", &[]);
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("gate"))
        .args(["forward", "svc/stable", "--for", "60s", "--kubeconfig"])
        .arg(&c.kubeconfig)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starting gate forward");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    for _ in 0..2 {
        lines.push(
            rx.recv_timeout(Duration::from_secs(30))
                .expect("gate forward printed a line per pod"),
        );
    }
    for (line, pod) in lines.iter().zip(["stable-1", "stable-2"]) {
        assert!(line.starts_with(&format!("{pod} (node ")), "{line}");
        let url = line.rsplit(' ').next().unwrap();
        let addr = url
            .trim_start_matches("http://")
            .trim_end_matches("/debug/pprof/");
        let body =
            crate::support::http_get(addr, "/debug/pprof/goroutine", Duration::from_secs(10));
        assert!(
            body.starts_with(&[0x1f, 0x8b]),
            "a gzipped profile through {line}"
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(c.fake.forwards("stable-1") >= 2);
}

#[test]
fn no_kubernetes_configuration_exits_2_and_says_what_to_give() {
    let home = tempfile::tempdir().unwrap();
    let out = gate()
        .args([
            "run",
            "--baseline",
            "svc/stable",
            "--candidate",
            "svc/canary",
        ])
        .env("KUBECONFIG", home.path().join("missing"))
        .env("HOME", home.path())
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .timeout(HANG)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no Kubernetes configuration: give --kubeconfig FILE"),
        "{stderr}"
    );
}

#[test]
fn a_pod_whose_port_refuses_is_reported_with_the_kubelet_message() {
    let c = Cluster::new();
    c.dead_pods("stable", 1);
    c.dead_pods("canary", 1);
    let run = c.run(
        "svc/stable",
        "svc/canary",
        &[
            "--duration",
            "2s",
            "--windows",
            "1",
            "--timeout-margin",
            // Long enough that a loaded machine never turns the refusal into an upgrade timeout.
            "10s",
        ],
    );
    assert_eq!(run.code, 3, "{run}");
    assert!(
        run.stderr.contains("502 Bad Gateway")
            && run.stderr.contains(
                "port-forward: nothing listens on port 6060 in the pod (connection refused)"
            )
            && run
                .stderr
                .contains("error forwarding port 6060 to pod stable-1"),
        "{run}"
    );
    assert!(run.elapsed < Duration::from_secs(30), "{run}");
}

/// The YAML documents of an example manifest, as JSON values.
fn yaml_docs(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    text.split("\n---\n")
        .map(|doc| serde_saphyr::from_str::<serde_json::Value>(doc).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

#[test]
fn the_example_manifests_are_valid_and_the_role_grants_exactly_what_the_gate_uses() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Service;
    use k8s_openapi::api::rbac::v1::Role;
    let dir = crate::support::repo().join("examples/k8s");
    let mut kinds = Vec::new();
    for doc in yaml_docs(&dir.join("workloads.yaml")) {
        match doc["kind"].as_str().unwrap() {
            "Deployment" => {
                let d: Deployment = serde_json::from_value(doc).unwrap();
                let spec = d.spec.unwrap();
                let pod = spec.template.spec.unwrap();
                let args = pod.containers[0].args.clone().unwrap().join(" ");
                assert!(
                    args.contains("-pprof-addr 127.0.0.1:6060"),
                    "pprof on localhost: {args}"
                );
                kinds.push(format!("Deployment/{}", d.metadata.name.unwrap()));
            }
            "Service" => {
                let s: Service = serde_json::from_value(doc).unwrap();
                assert!(s.spec.unwrap().selector.is_some());
                kinds.push(format!("Service/{}", s.metadata.name.unwrap()));
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(
        kinds,
        [
            "Deployment/stable",
            "Deployment/canary",
            "Service/stable",
            "Service/canary"
        ]
    );
    let role: Role = yaml_docs(&dir.join("rbac.yaml"))
        .into_iter()
        .find(|d| d["kind"] == "Role")
        .map(|d| serde_json::from_value(d).unwrap())
        .expect("a Role");
    let mut grants: Vec<String> = Vec::new();
    for rule in role.rules.unwrap() {
        for resource in rule.resources.unwrap() {
            for verb in &rule.verbs {
                grants.push(format!("{verb} {resource}"));
            }
        }
    }
    grants.sort();
    assert_eq!(
        grants,
        [
            "create pods/portforward",
            "get deployments",
            "get pods",
            "get services",
            "get statefulsets",
            "list pods"
        ]
    );
}

#[test]
fn context_and_namespace_choose_where_targets_are_looked_up() {
    let c = Cluster::new();
    c.dead_pods("stable", 1);
    // Two contexts: the current one points nowhere, `fake` at the fake apiserver.
    let kubeconfig = c.dir.path().join("two-contexts");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1
kind: Config
clusters:
- {{name: dead, cluster: {{server: 'http://{dead}'}}}}
- {{name: fake, cluster: {{server: 'http://{fake}'}}}}
contexts:
- {{name: dead, context: {{cluster: dead, user: gate}}}}
- {{name: fake, context: {{cluster: fake, user: gate, namespace: default}}}}
current-context: dead
users:
- {{name: gate, user: {{token: {FAKE_TOKEN}}}}}
",
            dead = refused_addr(),
            fake = c.fake.addr
        ),
    )
    .unwrap();
    let run_with = |target: &str, extra: &[&str]| {
        let mut args: Vec<String> = ["capture", target, "--out"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.push(c.dir.path().join("o").display().to_string());
        args.push("--kubeconfig".into());
        args.push(kubeconfig.display().to_string());
        args.extend(extra.iter().map(|s| s.to_string()));
        run_gate(&args)
    };
    let current = run_with("svc/stable", &[]);
    assert_eq!(current.code, 3, "{current}");
    assert!(current.stderr.contains("cannot reach"), "{current}");

    // With --context fake the Service is found; its pod's port refuses (nothing behind it).
    let fake = run_with(
        "svc/stable",
        &["--context", "fake", "--timeout-margin", "1s"],
    );
    assert_eq!(fake.code, 3, "{fake}");
    assert!(
        fake.stderr.contains("nothing listens on port 6060"),
        "{fake}"
    );

    for (target, extra) in [
        (
            "svc/stable",
            &["--context", "fake", "--namespace", "prod"][..],
        ),
        ("prod/svc/stable", &["--context", "fake"][..]),
    ] {
        let run = run_with(target, extra);
        assert_eq!(run.code, 3, "{run}");
        assert!(
            run.stderr
                .contains("Service \"stable\" in namespace \"prod\" not found"),
            "{run}"
        );
    }
    let bad = run_with("svc/stable", &["--context", "nope"]);
    assert_eq!(bad.code, 2, "{bad}");
    assert!(bad.stderr.contains("nope"), "{bad}");
}

/// Forwards a run of one pod a side opens before its last window, with `--windows 2
/// --profiles goroutine`: per pod the probe, the reachability check and window 1's snapshot
/// (the capture keeps no idle connection, so each request is a port-forward of its own).
const FORWARDS_BEFORE_WINDOW_2: usize = 6;

/// `gate run` of one pod a side, two windows of goroutine snapshots.
fn two_window_run(c: &Cluster) -> Run {
    two_window_run_with_margin(c, "2s", "goroutine")
}

/// [`two_window_run`] with another `--timeout-margin` (half of it bounds each upgrade).
fn two_window_run_with_margin(c: &Cluster, margin: &str, profiles: &str) -> Run {
    c.run(
        "svc/stable",
        "svc/canary",
        &[
            "--duration",
            "4s",
            "--windows",
            "2",
            "--profiles",
            profiles,
            "--timeout-margin",
            margin,
            "--format",
            "json",
        ],
    )
}

/// Checks a run that lost its second window to an apiserver outage: window 1 of both pods
/// compared and kept, window 2 named missing per pod, the exit code the verdict's.
fn window_1_kept_window_2_named(c: &Cluster, run: &Run) {
    assert_eq!(run.code, 0, "{run}\n{}", c.fake.log());
    for (dir, pod) in [("baseline", "stable-1"), ("candidate", "canary-1")] {
        let kept = c
            .out()
            .join(format!("profiles/{dir}/{pod}/goroutine-1.pb.gz"));
        assert!(kept.is_file(), "{} lost: {run}", kept.display());
        assert!(
            !c.out()
                .join(format!("profiles/{dir}/{pod}/goroutine-2.pb.gz"))
                .exists(),
            "{run}"
        );
    }
    let m = c.manifest();
    let missing = m["missing"].to_string();
    for pod in ["stable-1", "canary-1"] {
        assert!(missing.contains(pod), "{pod} not in missing: {m}");
    }
    let warnings = run.json()["warnings"].to_string();
    for line in [
        "baseline pod stable-1: window 2 missing",
        "candidate pod canary-1: window 2 missing",
    ] {
        assert!(warnings.contains(line), "{line:?} not in {warnings}");
    }
    assert!(run.stderr.contains("window 2 missing"), "{run}");
}

#[test]
fn the_apiserver_going_down_after_the_first_window_keeps_it_and_names_what_is_missing() {
    let _cpu = exclusive_cpu();
    let c = Cluster::one_pod_a_side();
    // Window 2's first port-forward finds the apiserver gone: refused from then on, and every
    // connection it had open cut.
    c.fake
        .go_away_at_forward(FORWARDS_BEFORE_WINDOW_2 + 1, Outage::Down);
    let run = two_window_run(&c);
    window_1_kept_window_2_named(&c, &run);
    // The restart check after the run could not reach it either: said, not fatal.
    assert!(
        run.json()["warnings"]
            .to_string()
            .contains("could not check for restarts after the run"),
        "{run}"
    );
    assert!(run.elapsed < Duration::from_secs(45), "{run}");
}

#[test]
fn an_apiserver_that_stops_answering_mid_run_ends_in_bounded_time_with_what_was_captured() {
    let _cpu = exclusive_cpu();
    let c = Cluster::one_pod_a_side();
    // A partition: connections accepted, never answered; open port-forwards carry nothing.
    c.fake
        .go_away_at_forward(FORWARDS_BEFORE_WINDOW_2 + 1, Outage::Blackhole);
    let run = two_window_run(&c);
    window_1_kept_window_2_named(&c, &run);
    // Upgrades are abandoned after their deadline, the restart check after the API's (15 s).
    assert!(run.elapsed < Duration::from_secs(60), "{run}");
}

#[test]
fn the_apiserver_going_down_before_any_window_exits_3_naming_each_side() {
    let _cpu = exclusive_cpu();
    let c = Cluster::one_pod_a_side();
    // Probes and reachability checks pass (forwards 1-4); then the apiserver is gone.
    c.fake.go_away_at_forward(5, Outage::Down);
    let run = two_window_run(&c);
    assert_eq!(run.code, 3, "{run}\n{}", c.fake.log());
    assert!(
        run.stderr
            .contains("nothing usable was captured for baseline"),
        "{run}"
    );
    assert!(run.stderr.contains("stable-1"), "{run}");
    // What was written is the manifest saying why; no profile.
    assert!(!c.out().join("profiles/baseline/stable-1").exists());
    assert!(run.elapsed < Duration::from_secs(45), "{run}");
}

/// Every file under `dir`, as paths relative to it.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn hostile_pod_names_stay_inside_the_out_dir_and_never_share_a_folder() {
    let _cpu = exclusive_cpu();
    let mut c = Cluster::new();
    // A hostile apiserver names its pods `..` and `_..`: made safe, both would be `_..`.
    for name in ["..", "_.."] {
        let p = ExampleService::start(&["-rate", &rate("0.1")]);
        c.fake.add_pod(FakePod::new(name, "stable", &p.addr));
        c.processes.push(p);
    }
    c.pods("canary", 1, "0.1", &[]);
    let archive = c.dir.path().join("archive");
    let run = c.run(
        "svc/stable",
        "svc/canary",
        &[
            "--duration",
            "2s",
            "--windows",
            "1",
            "--profiles",
            "goroutine",
            "--archive",
            archive.to_str().unwrap(),
            "--service",
            "web",
        ],
    );
    assert_eq!(run.code, 0, "{run}\n{}", c.fake.log());
    // Nothing outside the out dir, the archive and the kubeconfig.
    let all = tree(c.dir.path());
    let outside: Vec<&String> = all
        .iter()
        .filter(|f| !f.starts_with("gate-out/") && !f.starts_with("archive/") && *f != "kubeconfig")
        .collect();
    assert!(outside.is_empty(), "written outside: {outside:?}");
    // Both pods kept, each in a folder of its own.
    let out = tree(&c.out());
    for want in [
        "profiles/baseline/_../goroutine-1.pb.gz",
        "profiles/baseline/default._../goroutine-1.pb.gz",
    ] {
        assert!(out.iter().any(|f| f == want), "{want} not in {out:?}");
    }
    let stored = tree(&archive);
    for want in [
        "/baseline/_../goroutine-1.pb.gz",
        "/baseline/default._../goroutine-1.pb.gz",
    ] {
        assert!(
            stored.iter().any(|f| f.ends_with(want)),
            "{want} not in {stored:?}"
        );
    }
    let m = c.manifest();
    let kube = &pod_record(&m, 0, "default._..")["kubernetes"];
    assert_eq!(kube["namespace"], "default", "{m}");
    assert!(kube["uid"].as_str().unwrap().ends_with("_.."), "{m}");
}

#[test]
fn hostile_namespaces_are_refused_before_anything_is_asked() {
    let c = Cluster::new();
    c.dead_pods("stable", 1);
    for ns in ["../../etc", "/abs", "a.b", "Prod"] {
        let run = c.run(
            "svc/stable",
            "svc/canary",
            &["--namespace", ns, "--duration", "2s", "--windows", "1"],
        );
        assert_eq!(run.code, 2, "{ns}: {run}");
        assert!(
            run.stderr.contains("is not a namespace name") && run.stderr.contains("--namespace"),
            "{ns}: {run}"
        );
        assert!(!c.out().join("profiles").exists(), "{ns}: {run}");
    }
    // A kubeconfig context's namespace, NUL included, is checked the same way.
    for ns in [r#""..""#, r#""a\u0000b""#, r#""/etc""#] {
        let text = std::fs::read_to_string(&c.kubeconfig)
            .unwrap()
            .replace("namespace: default", &format!("namespace: {ns}"));
        let kubeconfig = c.dir.path().join("hostile-kubeconfig");
        std::fs::write(&kubeconfig, text).unwrap();
        let run = run_gate(&[
            "capture".into(),
            "svc/stable".into(),
            "--out".into(),
            c.dir.path().join("o").display().to_string(),
            "--kubeconfig".into(),
            kubeconfig.display().to_string(),
        ]);
        assert_eq!(run.code, 2, "{ns}: {run}");
        assert!(
            run.stderr.contains("is not a namespace name")
                && run.stderr.contains("kubeconfig context"),
            "{ns}: {run}"
        );
    }
    assert!(
        !c.fake.log().contains("namespaces/.."),
        "asked the apiserver: {}",
        c.fake.log()
    );
}

/// One pod a side, two windows, the canary's port-forward upgrades 1.3 s slow after its first
/// `after` upgrades; the run must have passed.
fn run_with_a_slow_canary(after: usize, profiles: &str) -> (Cluster, Run) {
    let c = Cluster::one_pod_a_side();
    c.fake.set_fault(
        "canary-1",
        Fault::SlowUpgrade {
            millis: 1300,
            after,
        },
    );
    let run = two_window_run_with_margin(&c, "4s", profiles);
    assert_eq!(run.code, 0, "{run}\n{}", c.fake.log());
    (c, run)
}

#[test]
fn slow_port_forward_upgrades_are_opened_ahead_so_the_pods_windows_start_together() {
    let _cpu = exclusive_cpu();
    let (c, run) = run_with_a_slow_canary(0, "cpu,goroutine");
    let m = c.manifest();
    let kube = |side, pod| pod_record(&m, side, pod)["kubernetes"].clone();
    let (slow, fast) = (kube(1, "canary-1"), kube(0, "stable-1"));
    assert!(slow["upgrade_ms_max"].as_u64().unwrap() >= 1300, "{m}");
    // Both windows' CPU profile and goroutine snapshot went over forwards opened ahead, and
    // none waited for its upgrade.
    assert!(slow["opened_ahead"].as_u64().unwrap() >= 4, "{m}");
    assert!(slow["waited_ms_max"].as_u64().unwrap() < 1000, "{m}");
    // Quick upgrades are made as connections come: nothing idles in the target.
    assert_eq!(fast["opened_ahead"], 0, "{m}");
    assert!(fast["upgrade_ms_max"].as_u64().unwrap() < 1000, "{m}");
    for (dir, pod) in [("baseline", "stable-1"), ("candidate", "canary-1")] {
        for file in ["cpu-1", "cpu-2", "goroutine-1", "goroutine-2"] {
            let path = c.out().join(format!("profiles/{dir}/{pod}/{file}.pb.gz"));
            assert!(path.is_file(), "{} missing: {run}", path.display());
        }
    }
    // By the processes' own clocks, the CPU profiles of a window started together (they
    // started 1.3 s apart when each request waited for its own upgrade).
    let pod_skew = m["max_pod_skew_ms"].as_f64().expect("pod skew recorded");
    eprintln!(
        "slow forwards: canary upgrades up to {} ms, {} connections opened ahead, waited at most {} ms; pods' CPU profiles started at most {pod_skew:.1} ms apart",
        slow["upgrade_ms_max"], slow["opened_ahead"], slow["waited_ms_max"]
    );
    assert!(pod_skew < 700.0, "pods started {pod_skew} ms apart: {m}");
    let warnings = run.json()["warnings"].to_string();
    assert!(
        !warnings.contains("waited up to") && !warnings.contains("own clocks"),
        "{warnings}"
    );
}

#[test]
fn a_request_that_waited_for_a_slow_port_forward_is_warned_about() {
    // The apiserver slows down after the checks (the session's probe and the engine's
    // reachability check were quick), so nothing was opened ahead for the first snapshot.
    let _cpu = exclusive_cpu();
    let (c, run) = run_with_a_slow_canary(2, "goroutine");
    let m = c.manifest();
    let slow = &pod_record(&m, 1, "canary-1")["kubernetes"];
    assert!(slow["waited_ms_max"].as_u64().unwrap() >= 1300, "{m}");
    let warnings = run.json()["warnings"].to_string();
    assert!(
        warnings.contains("candidate pod canary-1: requests waited up to 1.")
            && warnings.contains("does not include it"),
        "{warnings}"
    );
    assert!(
        !warnings.contains("stable-1: requests waited"),
        "{warnings}"
    );
}

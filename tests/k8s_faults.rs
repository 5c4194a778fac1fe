//! Kubernetes faults, on the fake cluster of `k8s`: a forbidden port-forward, an upgrade that
//! never completes, a connection dropped after N bytes, a pod not Ready, a pod restarted or
//! deleted mid-run, the apiserver going away or stalling mid-run, hostile pod names and
//! namespaces, slow port-forward upgrades; each with a clear message, the right exit code and
//! a bounded time.

use std::path::Path;
use std::time::Duration;

use crate::k8s::{pod_record, rate, run_gate, Cluster};
use crate::support::fake_apiserver::{FakePod, Fault, Outage};
use crate::support::{exclusive_cpu, refused_addr, ExampleService, Run};

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

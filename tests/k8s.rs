//! Kubernetes targets through a fake apiserver that speaks the real protocol (see
//! `support::fake_apiserver`), with real example-service processes behind its port-forwards:
//! `gate run --baseline svc/stable --candidate svc/canary`, A/A and a planted regression,
//! targets, contexts, namespaces, the example manifests, `gate capture`, `gate forward` and the
//! nightly archive. The faults (forbidden port-forwards, stalls, drops, pods not Ready or
//! restarted, the apiserver going away, hostile names, slow upgrades) are in `k8s_faults`,
//! on the `Cluster` defined here.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::support::fake_apiserver::{FakeApiServer, FakePod, FAKE_TOKEN};
use crate::support::{
    self, exclusive_cpu, gate, go_service_binary, refused_addr, ExampleService, Run, HANG,
};

/// A policy with the per-function CPU rules only (as tests/live_stats.rs uses).
pub(crate) const CPU_POLICY: &str = "version: 1
rules:
  - { name: cpu-flat, profile: cpu, metric: flat, ignore: ['runtime.*'], max_increase: 20% }
  - { name: cpu-cum, profile: cpu, metric: cum, ignore: ['runtime.*'], max_increase: 20% }
";

/// The `-rate` that makes one process use about `load` cores (calibrated once per load).
pub(crate) fn rate(load: &'static str) -> String {
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
pub(crate) struct Cluster {
    pub(crate) fake: FakeApiServer,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) kubeconfig: PathBuf,
    pub(crate) processes: Vec<ExampleService>,
}

impl Cluster {
    /// A cluster with Services `stable` and `canary` (selecting `track=stable|canary`) and
    /// a Deployment of each name, and no pods yet.
    pub(crate) fn new() -> Cluster {
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
    pub(crate) fn pods(&mut self, track: &str, n: usize, load: &'static str, extra: &[&str]) {
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
    pub(crate) fn one_pod_a_side() -> Cluster {
        let mut c = Cluster::new();
        c.pods("stable", 1, "0.1", &[]);
        c.pods("canary", 1, "0.1", &[]);
        c
    }

    /// Pods whose backends refuse connections (for tests that never reach a pod).
    pub(crate) fn dead_pods(&self, track: &str, n: usize) {
        for i in 1..=n {
            self.fake.add_pod(FakePod::new(
                &format!("{track}-{i}"),
                track,
                &refused_addr(),
            ));
        }
    }

    pub(crate) fn out(&self) -> PathBuf {
        self.dir.path().join("gate-out")
    }

    /// Runs `gate` with `--kubeconfig` added.
    pub(crate) fn gate(&self, args: &[&str]) -> Run {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.push("--kubeconfig".into());
        all.push(self.kubeconfig.display().to_string());
        run_gate(&all)
    }

    /// `gate run` of two sides with short windows into `out()`, plus `extra`.
    pub(crate) fn run(&self, baseline: &str, candidate: &str, extra: &[&str]) -> Run {
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
    pub(crate) fn run_one_short_window(&self, extra: &[&str]) -> Run {
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

    pub(crate) fn manifest(&self) -> serde_json::Value {
        manifest(&self.out())
    }
}

/// [`support::run_gate`], checking that the kubeconfig's token is never printed.
pub(crate) fn run_gate(args: &[String]) -> Run {
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

pub(crate) fn manifest(out: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join("manifest.json")).expect("manifest.json written");
    assert!(!text.contains(FAKE_TOKEN), "the token is in manifest.json");
    serde_json::from_str(&text).expect("manifest.json is JSON")
}

/// The manifest's record of one pod.
pub(crate) fn pod_record<'a>(
    m: &'a serde_json::Value,
    side: usize,
    pod: &str,
) -> &'a serde_json::Value {
    m["sides"][side]["pods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == pod)
        .unwrap_or_else(|| panic!("pod {pod} not in the manifest: {m}"))
}

/// Names of the functions any rule marked regressed.
pub(crate) fn regressed(report: &serde_json::Value) -> Vec<String> {
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

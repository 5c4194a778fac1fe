//! The archive: `gate run --archive`, `gate archive` (nightly), `list`, `prune`, history as a
//! baseline; against a local folder and against a real S3-compatible server (moto).

use std::path::{Path, PathBuf};

use chrono::{TimeZone, Utc};
use profile_gate::archive::{self, ArchiveObject, IndexSide, Payload, RunArchive, RunKind, Store};

use crate::support::moto::Moto;
use crate::support::{exclusive_cpu, gate, refused_addr, repo, ExampleService, FakeServer, Reply};

fn examples() -> PathBuf {
    repo().join("examples/profiles")
}

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The folder of run `run_id` of `service` under a local archive.
fn run_dir(archive: &Path, service: &str, run_id: &str) -> PathBuf {
    let hit = files(&archive.join(service))
        .into_iter()
        .find(|f| f.split('/').nth(3) == Some(run_id))
        .unwrap_or_else(|| panic!("no run {run_id} of {service} in {}", archive.display()));
    let parts: Vec<&str> = hit.split('/').take(4).collect();
    archive.join(service).join(parts.join("/"))
}

fn index(run: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(run.join("archive.json")).unwrap()).unwrap()
}

/// `gate diff BASELINE examples/canary --format json` as JSON, without the baseline's name.
fn diff_json(baseline: &str, env: &[(&'static str, String)]) -> serde_json::Value {
    let out = gate()
        .args(["diff", "--format", "json", baseline])
        .arg(examples().join("canary"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .assert()
        .code(1);
    let mut json: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    json.as_object_mut().unwrap().remove("baseline");
    json
}

/// `gate run` on the example profiles (saved sides), archived.
fn run_archived(
    archive: &str,
    out: &Path,
    extra: &[&str],
    env: &[(&'static str, String)],
) -> assert_cmd::assert::Assert {
    let (baseline, candidate) = (examples().join("stable"), examples().join("canary"));
    run_archived_sides(&baseline, &candidate, archive, out, extra, env)
}

/// `gate run` on two saved sides, archived.
fn run_archived_sides(
    baseline: &Path,
    candidate: &Path,
    archive: &str,
    out: &Path,
    extra: &[&str],
    env: &[(&'static str, String)],
) -> assert_cmd::assert::Assert {
    gate()
        .args(["run", "--baseline"])
        .arg(baseline)
        .arg("--candidate")
        .arg(candidate)
        .arg("--out")
        .arg(out)
        .args(["--archive", archive])
        .args(extra)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .assert()
}

fn stderr(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

fn stdout(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stdout).into_owned()
}

#[test]
fn run_archives_every_profile_and_report_and_history_diff_equals_direct_diff() {
    let tmp = tempfile::tempdir().unwrap();
    let arch = tmp.path().join("arch");
    let out = tmp.path().join("out");
    let a = run_archived(
        arch.to_str().unwrap(),
        &out,
        &[
            "--service",
            "demo",
            "--run-id",
            "r1",
            "--policy",
            "policies/default.yaml",
        ],
        &[],
    );
    // The verdict decides the exit code; archiving does not change it.
    a.code(1);
    let run = run_dir(&arch, "demo", "r1");
    let stored = files(&run);
    for side in ["stable", "canary"] {
        let name = if side == "stable" {
            "baseline"
        } else {
            "candidate"
        };
        for f in files(&examples().join(side)) {
            let key = format!("{name}/{f}");
            assert!(stored.contains(&key), "{key} not archived: {stored:?}");
            assert_eq!(
                std::fs::read(run.join(&key)).unwrap(),
                std::fs::read(examples().join(side).join(&f)).unwrap()
            );
        }
    }
    for f in [
        "report.txt",
        "report.md",
        "report.json",
        "policy.yaml",
        "archive.json",
    ] {
        assert!(stored.contains(&f.to_owned()), "{f} missing: {stored:?}");
    }
    let idx = index(&run);
    assert_eq!(idx["status"], "complete");
    assert_eq!(idx["verdict"], "fail");
    assert_eq!(idx["kind"], "run");
    assert_eq!(idx["policy"]["source"], "policies/default.yaml");
    assert_eq!(
        idx["policy"]["sha256"],
        archive::index::sha256_hex(&std::fs::read(repo().join("policies/default.yaml")).unwrap())
    );
    assert_eq!(
        archive::index::sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(idx["objects"].as_array().unwrap().len(), stored.len() - 1);
    assert!(idx["missing"].as_array().unwrap().is_empty());
    // The date folders are the run's start (UTC).
    let date = run
        .parent()
        .unwrap()
        .strip_prefix(arch.join("demo"))
        .unwrap();
    assert_eq!(date.components().count(), 3, "{}", date.display());

    // History as baseline: the same verdict, functions and numbers as the files given directly.
    let direct = diff_json(examples().join("stable").to_str().unwrap(), &[]);
    let today = Utc::now().format("%Y-%m-%d").to_string();
    for reference in [
        format!("archive+{}#demo@latest:baseline", arch.display()),
        format!("archive+file://{}#demo@r1:baseline", arch.display()),
        format!("archive+{}#demo@{today}:baseline", arch.display()),
    ] {
        assert_eq!(diff_json(&reference, &[]), direct, "{reference}");
    }
    // A run with two sides needs the side named.
    let a = gate()
        .args(["diff", &format!("archive+{}#demo", arch.display())])
        .arg(examples().join("canary"))
        .assert()
        .code(2);
    assert!(stderr(&a).contains(":baseline"), "{}", stderr(&a));

    // gate run takes history as a side too.
    let a = gate()
        .args(["run", "--format", "json", "--baseline"])
        .arg(format!("archive+{}#demo@r1:baseline", arch.display()))
        .arg("--candidate")
        .arg(examples().join("canary"))
        .arg("--out")
        .arg(tmp.path().join("out2"))
        .assert()
        .code(1);
    let mut json: serde_json::Value = serde_json::from_slice(&a.get_output().stdout).unwrap();
    assert!(
        json["baseline"].as_str().unwrap().contains("run r1"),
        "{}",
        json["baseline"]
    );
    json.as_object_mut().unwrap().remove("baseline");
    assert_eq!(json["verdict"], direct["verdict"]);
    assert_eq!(json["comparisons"], direct["comparisons"]);
    // The archived side is copied into --out, and the flame graphs are drawn from it.
    assert!(!stderr(&a).contains("flame graphs"), "{}", stderr(&a));
    let out2 = tmp.path().join("out2");
    assert!(out2.join("flame-cpu.svg").is_file());
    for f in files(&examples().join("stable")) {
        assert_eq!(
            std::fs::read(out2.join("profiles/baseline").join(&f)).unwrap(),
            std::fs::read(examples().join("stable").join(&f)).unwrap(),
            "{f}"
        );
    }

    // A saved side where the archived one would be copied is refused, not overwritten.
    let a = gate()
        .args([
            "diff",
            &format!("archive+{}#demo@r1:baseline", arch.display()),
        ])
        .arg(out2.join("profiles/baseline"))
        .arg("--out")
        .arg(&out2)
        .assert()
        .code(2);
    assert!(stderr(&a).contains("is inside"), "{}", stderr(&a));
    assert!(!files(&out2.join("profiles/baseline")).is_empty());

    // A side no run has, and a folder that is not there, are named as what they are.
    let a = gate()
        .args([
            "diff",
            &format!("archive+{}#demo@latest:nope", arch.display()),
        ])
        .arg(examples().join("canary"))
        .assert()
        .code(2);
    let e = stderr(&a);
    assert!(
        e.contains("none has a side nope") && e.contains("baseline, candidate"),
        "{e}"
    );
    let missing = tmp.path().join("no-such-archive");
    let a = gate()
        .args(["diff", &format!("archive+{}#demo", missing.display())])
        .arg(examples().join("canary"))
        .assert()
        .code(2);
    assert!(stderr(&a).contains("does not exist"), "{}", stderr(&a));
    assert!(!missing.exists(), "reading created the folder");
}

/// A nightly run of one pod of the example's stable side: `files` of `stable/pod-1`.
fn nightly_run(
    service: &str,
    run_id: &str,
    at: chrono::DateTime<Utc>,
    files: &[&str],
) -> RunArchive {
    let pod = examples().join("stable/pod-1");
    RunArchive {
        partial: None,
        service: service.into(),
        run_id: run_id.into(),
        started_at: at,
        kind: RunKind::Nightly,
        sides: vec![IndexSide {
            side: "nightly".into(),
            source: "live".into(),
            targets: vec!["http://127.0.0.1:6060".into()],
            pods: vec!["pod-1".into()],
        }],
        verdict: None,
        policy: None,
        commit: None,
        objects: files
            .iter()
            .map(|f| ArchiveObject {
                key: format!("nightly/pod-1/{f}"),
                payload: Payload::File(pod.join(f)),
            })
            .collect(),
    }
}

/// Archives a small old run through the library, as if it had been stored on `day`.
fn plant_run(store: &Store, service: &str, run_id: &str, day: (i32, u32, u32)) {
    let at = Utc.with_ymd_and_hms(day.0, day.1, day.2, 3, 0, 0).unwrap();
    let run = nightly_run(service, run_id, at, &["cpu-1.pb.gz", "heap-1.pb.gz"]);
    let outcome = archive::archive_run(store, &run);
    assert!(outcome.complete(), "{}", outcome.shortfall());
}

/// `gate archive list` rows: (service, run id, status).
fn listed(to: &str, env: &[(&'static str, String)]) -> Vec<(String, String, String)> {
    let a = gate()
        .args(["archive", "list", "--to", to])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .assert()
        .code(0);
    stdout(&a)
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[2].to_owned(), f[3].to_owned(), f[5].to_owned())
        })
        .collect()
}

/// List newest first, prune with a dry run (nothing goes) and for real (only old runs go).
fn list_and_prune(to: &str, store: &Store, env: &[(&'static str, String)]) {
    plant_run(store, "demo", "old-2024", (2024, 3, 1));
    plant_run(store, "demo", "older-2023", (2023, 12, 31));
    plant_run(store, "other", "mid-2025", (2025, 6, 30));
    let runs = listed(to, env);
    let ids: Vec<&str> = runs.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(
        ids,
        ["r1", "mid-2025", "old-2024", "older-2023"],
        "{runs:?}"
    );
    assert!(runs.iter().all(|r| r.2 == "complete"), "{runs:?}");
    let only_demo = gate()
        .args(["archive", "list", "--to", to, "--service", "demo"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .assert()
        .code(0);
    assert!(!stdout(&only_demo).contains("mid-2025"));

    let dry = gate()
        .args([
            "archive",
            "prune",
            "--to",
            to,
            "--older-than",
            "365d",
            "--service",
            "demo",
            "--dry-run",
        ])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .assert()
        .code(0);
    let text = stdout(&dry);
    assert!(
        text.contains("would delete") && text.contains("old-2024") && text.contains("older-2023"),
        "{text}"
    );
    assert!(
        !text.contains("r1 ") && !text.contains("mid-2025"),
        "{text}"
    );
    assert!(text.contains("dry run: 2 runs, 6 objects"), "{text}");
    assert_eq!(listed(to, env).len(), 4, "a dry run deletes nothing");

    let real = gate()
        .args(["archive", "prune", "--to", to, "--older-than", "365d"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .assert()
        .code(0);
    let text = stdout(&real);
    assert!(
        text.contains("deleted") && text.contains("pruned: 3 runs, 9 objects"),
        "{text}"
    );
    let ids: Vec<String> = listed(to, env).into_iter().map(|r| r.1).collect();
    assert_eq!(ids, ["r1"]);
}

#[test]
fn folder_list_newest_first_and_prune_dry_run_then_real() {
    let tmp = tempfile::tempdir().unwrap();
    let arch = tmp.path().join("arch");
    run_archived(
        arch.to_str().unwrap(),
        &tmp.path().join("out"),
        &["--service", "demo", "--run-id", "r1"],
        &[],
    )
    .code(1);
    let store = Store::open(arch.to_str().unwrap()).unwrap();
    list_and_prune(arch.to_str().unwrap(), &store, &[]);
    // Pruned runs leave no empty folders behind.
    assert!(!arch.join("demo/2024").exists() && !arch.join("other").exists());
}

#[test]
fn hostile_service_run_and_pod_names_stay_inside_the_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let arch = tmp.path().join("a/b/arch");
    let side = tmp.path().join("side");
    std::fs::create_dir_all(side.join("..evil pod")).unwrap();
    std::fs::copy(
        examples().join("stable/pod-1/cpu-1.pb.gz"),
        side.join("..evil pod/cpu-1.pb.gz"),
    )
    .unwrap();
    run_archived_sides(
        &side,
        &side,
        arch.to_str().unwrap(),
        &tmp.path().join("out"),
        &["--service", "../../../escape", "--run-id", "/etc/x"],
        &[],
    )
    .code(0);
    // Nothing was written outside the archive folder.
    let outside: Vec<String> = files(tmp.path())
        .into_iter()
        .filter(|f| {
            !f.starts_with("a/b/arch/") && !f.starts_with("out/") && !f.starts_with("side/")
        })
        .collect();
    assert!(outside.is_empty(), "{outside:?}");
    let stored = files(&arch);
    assert!(
        stored.iter().all(|f| f.starts_with("_.._.._.._escape/")),
        "{stored:?}"
    );
    assert!(
        stored
            .iter()
            .any(|f| f.ends_with("/_etc_x/baseline/_..evil_pod/cpu-1.pb.gz")),
        "{stored:?}"
    );
}

#[test]
fn pod_folders_whose_names_meet_once_made_safe_keep_one_object_each() {
    let tmp = tempfile::tempdir().unwrap();
    let arch = tmp.path().join("arch");
    let side = tmp.path().join("side");
    // Three pods whose safe names are all `a_b`: one object each, none overwritten.
    let mut originals = Vec::new();
    for (pod, from) in [("a b", "pod-1"), ("a_b", "pod-2"), ("a\\b", "pod-3")] {
        std::fs::create_dir_all(side.join(pod)).unwrap();
        let src = examples().join("stable").join(from).join("cpu-1.pb.gz");
        std::fs::copy(&src, side.join(pod).join("cpu-1.pb.gz")).unwrap();
        originals.push(std::fs::read(src).unwrap());
    }
    let code = run_archived_sides(
        &side,
        &examples().join("canary"),
        arch.to_str().unwrap(),
        &tmp.path().join("out"),
        &["--service", "svc", "--run-id", "r1"],
        &[],
    )
    .get_output()
    .status
    .code();
    assert!(matches!(code, Some(0 | 1)), "{code:?}");
    let run = run_dir(&arch, "svc", "r1");
    let mut stored: Vec<String> = files(&run.join("baseline"));
    stored.sort();
    assert_eq!(
        stored,
        ["a_b-2/cpu-1.pb.gz", "a_b-3/cpu-1.pb.gz", "a_b/cpu-1.pb.gz"],
        "{stored:?}"
    );
    let mut kept: Vec<Vec<u8>> = stored
        .iter()
        .map(|f| std::fs::read(run.join("baseline").join(f)).unwrap())
        .collect();
    kept.sort();
    originals.sort();
    assert_eq!(
        kept, originals,
        "a pod's profile was overwritten by another's"
    );
    let pods = &index(&run)["sides"][0]["pods"];
    assert_eq!(pods.as_array().map(Vec::len), Some(3), "{pods}");
}

#[test]
fn unwritable_folder_warns_keeps_the_out_dir_and_exits_by_verdict() {
    let tmp = tempfile::tempdir().unwrap();
    let blocker = tmp.path().join("file");
    std::fs::write(&blocker, b"not a folder").unwrap();
    let arch = blocker.join("arch");
    let out = tmp.path().join("out");
    let a = run_archived(arch.to_str().unwrap(), &out, &[], &[]);
    let a = a.code(1);
    assert!(
        stderr(&a).contains("nothing was archived"),
        "{}",
        stderr(&a)
    );
    assert!(
        stderr(&a).contains("keeps every profile and report"),
        "{}",
        stderr(&a)
    );
    for f in ["report.txt", "report.md", "report.json"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let a = run_archived(arch.to_str().unwrap(), &out, &["--archive-required"], &[]).code(3);
    assert!(
        stderr(&a).contains("error: nothing was archived"),
        "{}",
        stderr(&a)
    );
    assert!(
        stdout(&a).contains("FAIL"),
        "the report is printed before the archive fails"
    );
}

#[test]
fn writes_refused_mid_run_mark_the_run_incomplete_and_never_serve_as_history() {
    let tmp = tempfile::tempdir().unwrap();
    let arch = tmp.path().join("arch");
    // A file where the candidate's folder must go: the baseline is stored, the candidate is
    // refused. Planted for today and tomorrow (UTC), should the run cross midnight.
    for day in [Utc::now(), Utc::now() + chrono::Duration::days(1)] {
        let dir = arch
            .join("demo")
            .join(day.format("%Y/%m/%d").to_string())
            .join("r2");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("candidate"), b"in the way").unwrap();
    }
    let out = tmp.path().join("out");
    let a = run_archived(
        arch.to_str().unwrap(),
        &out,
        &["--service", "demo", "--run-id", "r2"],
        &[],
    )
    .code(1);
    for day in [
        Utc::now() - chrono::Duration::days(1),
        Utc::now(),
        Utc::now() + chrono::Duration::days(1),
    ] {
        let dir = arch
            .join("demo")
            .join(day.format("%Y/%m/%d").to_string())
            .join("r2");
        if dir.is_dir() && !dir.join("archive.json").exists() {
            std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
        }
    }
    let err = stderr(&a);
    assert!(
        err.contains("not archived completely") && err.contains("candidate/pod-1/"),
        "{err}"
    );
    assert!(err.contains("marks the run incomplete"), "{err}");
    let run = run_dir(&arch, "demo", "r2");
    let idx = index(&run);
    assert_eq!(idx["status"], "incomplete");
    let missing = idx["missing"].as_array().unwrap();
    assert!(!missing.is_empty());
    // After three refused writes in a row the rest is not attempted (the reports among them).
    assert_eq!(
        missing
            .iter()
            .filter(|m| !m["error"].as_str().unwrap().contains("not attempted"))
            .count(),
        3,
        "{missing:?}"
    );
    assert!(missing.iter().any(|m| m["key"] == "report.json"));
    assert!(missing
        .iter()
        .all(|m| m["key"].as_str().unwrap().starts_with("candidate/")
            || m["error"].as_str().unwrap().contains("not attempted")));
    assert!(run.join("baseline/pod-1/cpu-1.pb.gz").is_file());
    assert!(out.join("report.json").is_file());

    let runs = listed(arch.to_str().unwrap(), &[]);
    assert_eq!(runs, [("demo".into(), "r2".into(), "incomplete".into())]);
    let a = gate()
        .args([
            "diff",
            &format!("archive+{}#demo@r2:baseline", arch.display()),
        ])
        .arg(examples().join("canary"))
        .assert()
        .code(2);
    assert!(stderr(&a).contains("incomplete"), "{}", stderr(&a));
}

#[test]
fn archive_command_line_parses_subcommands_and_targets_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let to = tmp.path().join("empty");
    let a = gate()
        .args(["archive", "list", "--to", to.to_str().unwrap()])
        .assert()
        .code(0);
    assert!(stdout(&a).contains("No archived runs"));
    // Targets without --to, and --to without targets, are usage errors.
    gate()
        .args(["archive", "http://127.0.0.1:1"])
        .assert()
        .code(2);
    gate()
        .args(["archive", "--to", to.to_str().unwrap()])
        .assert()
        .code(2);
    let a = gate()
        .args([
            "archive",
            "prune",
            "--to",
            to.to_str().unwrap(),
            "--older-than",
            "soon",
        ])
        .assert()
        .code(2);
    assert!(stderr(&a).contains("365d"), "{}", stderr(&a));
    let a = gate()
        .args(["archive", "list", "--to", "ftp://host/x"])
        .assert()
        .code(2);
    assert!(stderr(&a).contains("unknown scheme"), "{}", stderr(&a));
    // A malformed store URL stops gate run before anything is captured or judged.
    let a = run_archived("ftp://host/x", &tmp.path().join("out"), &[], &[]).code(2);
    assert!(
        stderr(&a).contains("unknown scheme") && stdout(&a).is_empty(),
        "{}",
        stderr(&a)
    );
    gate()
        .args([
            "run",
            "--baseline",
            "a",
            "--candidate",
            "b",
            "--archive-required",
        ])
        .assert()
        .code(2);
    let a = gate()
        .args(["diff", "archive+/nowhere#../x"])
        .arg(examples().join("canary"))
        .assert()
        .code(2);
    assert!(stderr(&a).contains("archive+URL#SERVICE"), "{}", stderr(&a));
}

#[test]
fn nightly_captures_four_profiles_from_every_pod_into_the_archive() {
    let _cpu = exclusive_cpu();
    let tmp = tempfile::tempdir().unwrap();
    let arch = tmp.path().join("arch");
    let (a, b) = (ExampleService::start(&[]), ExampleService::start(&[]));
    let out = gate()
        .args([
            "archive",
            &format!("pod-a={}", a.url()),
            &format!("pod-b={}", b.url()),
        ])
        .args([
            "--to",
            arch.to_str().unwrap(),
            "--service",
            "api",
            "--run-id",
            "n1",
        ])
        .args(["--duration", "1s", "--windows", "1"])
        .assert()
        .code(0);
    assert!(
        stdout(&out).contains("Archived 8 profiles from 2 pods"),
        "{}",
        stdout(&out)
    );
    let run = run_dir(&arch, "api", "n1");
    let stored = files(&run);
    for pod in ["pod-a", "pod-b"] {
        for kind in ["cpu", "heap", "allocs", "goroutine"] {
            let key = format!("nightly/{pod}/{kind}-1.pb.gz");
            assert!(stored.contains(&key), "{key}: {stored:?}");
        }
    }
    assert!(stored.contains(&"manifest.json".to_owned()));
    let idx = index(&run);
    assert_eq!(
        (idx["status"].as_str(), idx["kind"].as_str()),
        (Some("complete"), Some("nightly"))
    );
    // The nightly run is a baseline without naming its only side.
    gate()
        .args(["diff", &format!("archive+{}#api@latest", arch.display())])
        .arg(run.join("nightly"))
        .assert()
        .code(0);
}

#[test]
fn s3_round_trip_list_history_and_prune() {
    // moto is a Python process: its start-up takes turns with the service processes.
    let _cpu = exclusive_cpu();
    let moto = Moto::start();
    moto.create_bucket("gate");
    let env = moto.env();
    let to = "s3://gate/archive";
    let tmp = tempfile::tempdir().unwrap();
    run_archived(
        to,
        &tmp.path().join("out"),
        &["--service", "demo", "--run-id", "r1"],
        &env,
    )
    .code(1);
    let store = Store::open_with_options(to, &moto.options()).unwrap();
    let keys: Vec<String> = store.list("").unwrap().into_iter().map(|o| o.key).collect();
    assert!(
        keys.iter()
            .any(|k| k.ends_with("/r1/baseline/pod-2/cpu-2.pb.gz")),
        "{keys:?}"
    );
    assert!(
        keys.iter().any(|k| k.ends_with("/r1/report.md")),
        "{keys:?}"
    );
    let idx_key = keys
        .iter()
        .find(|k| k.ends_with("/r1/archive.json"))
        .unwrap();
    let idx: serde_json::Value =
        serde_json::from_slice(&store.get(idx_key).unwrap().unwrap()).unwrap();
    assert_eq!(idx["status"], "complete");
    // Each profile comes back byte for byte.
    let key = keys
        .iter()
        .find(|k| k.ends_with("/r1/candidate/pod-3/heap-1.pb.gz"))
        .unwrap();
    assert_eq!(
        store.get(key).unwrap().unwrap(),
        std::fs::read(examples().join("canary/pod-3/heap-1.pb.gz")).unwrap()
    );

    let direct = diff_json(examples().join("stable").to_str().unwrap(), &[]);
    assert_eq!(
        diff_json(&format!("archive+{to}#demo@latest:baseline"), &env),
        direct
    );

    list_and_prune(to, &store, &env);
}

#[test]
fn s3_refusing_or_unreachable_store_warns_and_exits_3_only_when_required() {
    // moto is a Python process: its start-up takes turns with the service processes.
    let _cpu = exclusive_cpu();
    let moto = Moto::start();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    // moto answers, but the bucket does not exist: every write is refused.
    let refusing = moto.env();
    let mut unreachable = moto.env();
    unreachable[3].1 = format!("http://{}", refused_addr());
    for env in [&refusing, &unreachable] {
        let a = run_archived("s3://missing/x", &out, &["--service", "demo"], env).code(1);
        let err = stderr(&a);
        assert!(
            err.contains("WARN") && err.contains("not archived completely"),
            "{err}"
        );
        assert!(
            err.contains("archive.json not written") && err.contains("keeps every profile"),
            "{err}"
        );
        assert!(out.join("report.json").is_file());
        let a = run_archived("s3://missing/x", &out, &["--archive-required"], env).code(3);
        assert!(
            stderr(&a).contains("error: the run was not archived completely"),
            "{}",
            stderr(&a)
        );
    }
}

/// Store options for an S3 endpoint played by `server`, with a 1 s request timeout (a minute
/// in a real run).
fn fake_s3(server: &FakeServer) -> Vec<(String, String)> {
    [
        ("aws_endpoint", server.url()),
        ("aws_allow_http", "true".into()),
        ("aws_access_key_id", "test".into()),
        ("aws_secret_access_key", "test".into()),
        ("aws_region", "us-east-1".into()),
        ("timeout", "1s".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

#[test]
fn a_store_that_never_answers_costs_one_timeout_not_one_per_object() {
    // Accepts every connection and never answers: each write waits out its timeout (a
    // second here, a minute in a real run), and every object more would wait again.
    let silent = FakeServer::stalled();
    let store = Store::open_with_options("s3://gate/archive", &fake_s3(&silent)).unwrap();
    let files = ["cpu-1.pb.gz", "cpu-2.pb.gz", "heap-1.pb.gz", "heap-2.pb.gz"];
    let run = nightly_run("api", "silent", Utc::now(), &files);
    let outcome = archive::archive_run(&store, &run);
    assert!(!outcome.complete() && outcome.stored.is_empty());
    assert_eq!(
        outcome.missing.len(),
        files.len(),
        "{}",
        outcome.shortfall()
    );
    // The first write (the index marked incomplete) timed out: nothing more was attempted,
    // neither the objects nor the final index.
    for m in &outcome.missing {
        assert!(
            m.error
                .starts_with("not attempted: the store did not answer a write within"),
            "{}: {}",
            m.key,
            m.error
        );
    }
    let index_error = outcome.index_error.as_deref().unwrap_or_default();
    assert!(index_error.starts_with("not attempted"), "{index_error}");
    assert!(!outcome.index_written);
}

#[test]
fn a_store_that_goes_silent_mid_run_keeps_what_it_stored_and_is_given_up_after_two_timeouts() {
    // Answers the first two writes (the index marked incomplete, then cpu-1), then never
    // again. One slow write is not silence; the second in a row is.
    let stalling = FakeServer::start(|n, _| {
        if n < 2 {
            Reply::Bytes(
                b"HTTP/1.1 200 OK\r\nETag: \"1\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            )
        } else {
            Reply::Stall
        }
    });
    let store = Store::open_with_options("s3://gate/archive", &fake_s3(&stalling)).unwrap();
    let files = ["cpu-1.pb.gz", "cpu-2.pb.gz", "heap-1.pb.gz", "heap-2.pb.gz"];
    let run = nightly_run("api", "stalls", Utc::now(), &files);
    let outcome = archive::archive_run(&store, &run);
    let stored: Vec<&str> = outcome.stored.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(
        stored,
        ["nightly/pod-1/cpu-1.pb.gz"],
        "{}",
        outcome.shortfall()
    );
    let missing: Vec<(&str, &str)> = outcome
        .missing
        .iter()
        .map(|m| (m.key.as_str(), m.error.as_str()))
        .collect();
    assert_eq!(missing.len(), 3, "{missing:?}");
    for (key, error) in &missing[..2] {
        assert!(error.contains("no answer within"), "{key}: {error}");
    }
    assert!(
        missing[2]
            .1
            .starts_with("not attempted: the store did not answer"),
        "{missing:?}"
    );
    // The final index was still tried, once: it too went unanswered.
    let index_error = outcome.index_error.as_deref().unwrap_or_default();
    assert!(index_error.contains("no answer within"), "{index_error}");
}

#[test]
fn live_run_with_an_unreachable_store_keeps_every_profile_in_the_out_dir() {
    let _cpu = exclusive_cpu();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let (a, b) = (ExampleService::start(&[]), ExampleService::start(&[]));
    let env = [
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
        ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
        ("AWS_ENDPOINT", format!("http://{}", refused_addr())),
        ("AWS_ALLOW_HTTP", "true".to_owned()),
    ];
    let run = gate()
        .args(["run", "--baseline", &a.url(), "--candidate", &b.url()])
        .args([
            "--duration",
            "1s",
            "--windows",
            "1",
            "--profiles",
            "cpu,heap",
        ])
        .arg("--out")
        .arg(&out)
        .args(["--archive", "s3://bucket/x", "--archive-required"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .assert()
        .code(3);
    assert!(
        stderr(&run).contains("not archived completely"),
        "{}",
        stderr(&run)
    );
    let kept = files(&out);
    for f in [
        "manifest.json",
        "report.json",
        "profiles/baseline/127.0.0.1-",
        "profiles/candidate/127.0.0.1-",
    ] {
        assert!(kept.iter().any(|k| k.starts_with(f)), "{f}: {kept:?}");
    }
}

#[test]
fn the_cronjob_example_runs_the_nightly_archive_with_its_account_and_role() {
    let text = std::fs::read_to_string(repo().join("examples/k8s/archive-cronjob.yaml")).unwrap();
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ServiceAccount", "Role", "RoleBinding", "CronJob"]);
    let pod = &docs[3]["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], docs[0]["metadata"]["name"]);
    assert_eq!(docs[2]["roleRef"]["name"], docs[1]["metadata"]["name"]);
    // The containers' arguments are real command lines: `gate archive` first, then (once it
    // has succeeded) `gate history` of the same store and service.
    let args = |container: &serde_json::Value| -> Vec<String> {
        let args: Vec<String> = container["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect();
        use clap::Parser;
        let argv = std::iter::once("gate".to_owned()).chain(args.iter().cloned());
        if let Err(e) = profile_gate::cli::Cli::try_parse_from(argv) {
            panic!("the CronJob's arguments do not parse: {e}");
        }
        args
    };
    let archive = args(&pod["initContainers"][0]);
    assert_eq!(archive[..2], ["archive", "svc/api"]);
    assert!(archive.contains(&"--to=s3://my-profile-archive/profiles".to_owned()));
    let history = args(&pod["containers"][0]);
    assert_eq!(history[0], "history");
    for arg in [
        "--archive=s3://my-profile-archive/profiles",
        "--service=api",
        "--last=30",
    ] {
        assert!(history.contains(&arg.to_owned()), "{history:?}");
    }
    // It may resolve the Service, list pods and port-forward to them, nothing more.
    let grants: Vec<(String, String)> = docs[1]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            let verbs: Vec<String> = r["verbs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect();
            r["resources"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(move |res| {
                    let res = res.as_str().unwrap().to_owned();
                    verbs.clone().into_iter().map(move |v| (v, res.clone()))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    for (verb, resource) in [
        ("get", "services"),
        ("get", "pods"),
        ("list", "pods"),
        ("create", "pods/portforward"),
    ] {
        assert!(
            grants.contains(&(verb.to_owned(), resource.to_owned())),
            "{verb} {resource}: {grants:?}"
        );
    }
    assert_eq!(grants.len(), 4, "least privilege: {grants:?}");
}

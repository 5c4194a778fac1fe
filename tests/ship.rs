//! Shipping: the GitHub Action, the Docker image, the example workflows and the README.
//!
//! The action's inputs all reach `gate run`: action.yml's docker arguments are rendered with
//! sample inputs, run through the action's real entrypoint, and the command line it execs is
//! parsed by the real CLI parser. The linters the issue asks for pass (hadolint, actionlint,
//! zizmor, and shellcheck for the scripts); a missing linter is a failure, never a skip
//! (`scripts/test.sh` installs them).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::{CommandFactory, Parser};
use profile_gate::cli::Cli;
use serde::Deserialize;

use crate::support::{gate, repo};

/// action.yml, the parts the tests read.
#[derive(Debug, Deserialize)]
struct Action {
    name: String,
    description: String,
    inputs: BTreeMap<String, Input>,
    outputs: BTreeMap<String, Output>,
    runs: Runs,
}

#[derive(Debug, Deserialize)]
struct Input {
    description: String,
    #[serde(default)]
    required: bool,
    default: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Output {
    description: String,
}

#[derive(Debug, Deserialize)]
struct Runs {
    using: String,
    image: String,
    entrypoint: String,
    #[serde(default)]
    env: BTreeMap<String, String>,
    args: Vec<String>,
}

fn action() -> Action {
    let text = std::fs::read_to_string(repo().join("action.yml")).expect("action.yml");
    serde_saphyr::from_str(&text).expect("action.yml parses")
}

/// `${{ inputs.NAME }}` in a string, replaced by `value(NAME)`; any other expression fails.
fn render(template: &str, value: &dyn Fn(&str) -> String) -> String {
    let re = regex::Regex::new(r"\$\{\{\s*([^}]*?)\s*\}\}").unwrap();
    re.replace_all(template, |c: &regex::Captures| {
        let expr = &c[1];
        let name = expr
            .strip_prefix("inputs.")
            .unwrap_or_else(|| panic!("{template}: only inputs.* expressions belong in args"));
        value(name)
    })
    .into_owned()
}

/// The inputs an expression names, in every string of a list.
fn inputs_named<'a>(strings: impl Iterator<Item = &'a String>) -> BTreeSet<String> {
    let re = regex::Regex::new(r"\$\{\{\s*inputs\.([A-Za-z0-9_-]+)\s*\}\}").unwrap();
    strings
        .flat_map(|s| {
            re.captures_iter(s)
                .map(|c| c[1].to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// What the entrypoint ran: the argument list, and the kubeconfig it set up.
struct Exec {
    argv: Vec<String>,
    kubeconfig_path: String,
    kubeconfig: Option<String>,
    kubeconfig_mode: Option<String>,
    env: String,
    /// What is left in the temporary folder once the entrypoint has ended.
    tmp_left: Vec<String>,
}

/// Runs action/entrypoint.sh with these docker arguments and environment, with a recorder in
/// place of `gate`, as the container would.
fn run_entrypoint(args: &[String], env: &[(&str, &str)]) -> Exec {
    let dir = tempfile::tempdir().unwrap();
    let out = entrypoint_output(args, env, dir.path());
    assert!(
        out.status.success(),
        "the entrypoint failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let record = dir.path().join("record");
    let read = |name: &str| std::fs::read_to_string(record.join(name)).ok();
    Exec {
        argv: read("argv")
            .unwrap_or_default()
            .split('\0')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        kubeconfig_path: read("kubeconfig-path").unwrap_or_default(),
        kubeconfig: read("kubeconfig"),
        kubeconfig_mode: read("kubeconfig-mode").map(|m| m.trim().to_owned()),
        env: read("env").unwrap_or_default(),
        tmp_left: std::fs::read_dir(dir.path().join("tmp"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
    }
}

/// Runs the entrypoint in `dir` (which receives `record/`, `workspace/` and `tmp/`).
fn entrypoint_output(args: &[String], env: &[(&str, &str)], dir: &Path) -> std::process::Output {
    let record = dir.join("record");
    let workspace = dir.join("workspace");
    let tmp = dir.join("tmp");
    for d in [&record, &workspace, &tmp] {
        std::fs::create_dir_all(d).unwrap();
    }
    let recorder = dir.join("gate");
    std::fs::write(
        &recorder,
        r#"#!/bin/sh
out=$RECORD_DIR
: >"$out/argv"
for a in "$@"; do printf '%s\0' "$a" >>"$out/argv"; done
printf '%s' "${KUBECONFIG:-}" >"$out/kubeconfig-path"
if [ -n "${KUBECONFIG:-}" ] && [ -f "$KUBECONFIG" ]; then
  cp "$KUBECONFIG" "$out/kubeconfig"
  stat -c %a "$KUBECONFIG" >"$out/kubeconfig-mode"
fi
env >"$out/env"
"#,
    )
    .unwrap();
    let mut cmd = Command::new("sh");
    cmd.arg(repo().join("action/entrypoint.sh"))
        .args(args)
        .env_remove("KUBECONFIG")
        .env_remove("INPUT_KUBECONFIG")
        .env("PROFILE_GATE_BIN", &recorder)
        .env("RECORD_DIR", &record)
        .env("GITHUB_WORKSPACE", &workspace)
        .env("TMPDIR", &tmp)
        .current_dir(&workspace);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&recorder, std::fs::Permissions::from_mode(0o755)).unwrap();
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("running action/entrypoint.sh")
}

/// Parses an argument list as `gate` would, and returns the parse as text.
fn parse(argv: &[String]) -> String {
    let cli = Cli::try_parse_from(std::iter::once("gate".to_owned()).chain(argv.iter().cloned()))
        .unwrap_or_else(|e| panic!("gate does not accept {argv:?}:\n{e}"));
    format!("{cli:?}")
}

#[test]
fn action_yml_is_a_docker_action_built_from_the_dockerfile() {
    let a = action();
    assert!(!a.name.is_empty() && !a.description.is_empty());
    assert_eq!(a.runs.using, "docker");
    assert_eq!(a.runs.image, "Dockerfile");
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains(&format!("COPY action/entrypoint.sh {}", a.runs.entrypoint)),
        "the Dockerfile installs the entrypoint action.yml names ({})",
        a.runs.entrypoint
    );
    for name in [
        "baseline",
        "candidate",
        "namespace",
        "context",
        "kubeconfig",
        "policy",
        "duration",
        "windows",
        "profiles",
        "archive",
        "github-token",
        "fail-on",
        "args",
    ] {
        let input = a
            .inputs
            .get(name)
            .unwrap_or_else(|| panic!("action.yml has no input {name}"));
        assert!(
            !input.description.trim().is_empty(),
            "{name}: no description"
        );
    }
    assert!(a.inputs["baseline"].required && a.inputs["candidate"].required);
    assert_eq!(a.inputs["fail-on"].default.as_deref(), Some("fail"));
    for name in ["verdict", "report-path", "comment-url"] {
        let output = a
            .outputs
            .get(name)
            .unwrap_or_else(|| panic!("action.yml has no output {name}"));
        assert!(!output.description.trim().is_empty());
    }
    assert_eq!(a.runs.args[0], "run");
    // Every input goes somewhere: into the docker arguments, the container's environment, or
    // (the kubeconfig, a secret) through INPUT_KUBECONFIG, which the entrypoint reads.
    let in_args = inputs_named(a.runs.args.iter());
    let in_env = inputs_named(a.runs.env.values());
    for name in a.inputs.keys() {
        assert!(
            in_args.contains(name) || in_env.contains(name) || name == "kubeconfig",
            "input {name} reaches neither the arguments nor the environment"
        );
    }
    assert_eq!(
        a.runs.env.get("GITHUB_TOKEN").map(String::as_str),
        Some("${{ inputs.github-token }}")
    );
    for name in in_args.iter().chain(&in_env) {
        assert!(
            a.inputs.contains_key(name),
            "args name an unknown input {name}"
        );
    }
}

#[test]
fn every_action_input_reaches_gate_run() {
    let a = action();
    let samples: BTreeMap<&str, &str> = [
        ("baseline", "svc/stable\nshop/deploy/api-stable"),
        ("candidate", "svc/canary"),
        ("namespace", "ns-sample"),
        ("context", "ctx-sample"),
        ("policy", "policies/strict.yaml"),
        ("duration", "90s"),
        ("windows", "3"),
        ("profiles", "cpu,heap"),
        ("archive", "s3://bucket-sample/prefix"),
        ("out", "out-sample"),
        ("fail-on", "inconclusive"),
        ("args", "--max-pods 2 --port pprof  --service api-sample"),
    ]
    .into_iter()
    .collect();
    let args: Vec<String> = a
        .runs
        .args
        .iter()
        .map(|arg| {
            render(arg, &|name| {
                samples
                    .get(name)
                    .unwrap_or_else(|| panic!("no sample value for input {name}"))
                    .to_string()
            })
        })
        .collect();
    let kubeconfig = "apiVersion: v1\nkind: Config\n# sample\n";
    let exec = run_entrypoint(&args, &[("INPUT_KUBECONFIG", kubeconfig)]);
    let parsed = parse(&exec.argv);
    for expected in [
        "Run(RunArgs",
        r#"baseline: ["svc/stable", "shop/deploy/api-stable"]"#,
        r#"candidate: ["svc/canary"]"#,
        r#"namespace: Some("ns-sample")"#,
        r#"context: Some("ctx-sample")"#,
        r#"policy: Some("policies/strict.yaml")"#,
        "duration: 90s",
        "windows: 3",
        "profiles: Some(KindList([Cpu, Heap]))",
        r#"archive: Some("s3://bucket-sample/prefix")"#,
        r#"out: "out-sample""#,
        "fail_on: Inconclusive",
        "max_pods: Some(2)",
        r#"port: "pprof""#,
        r#"service: "api-sample""#,
    ] {
        assert!(
            parsed.contains(expected),
            "{expected} is missing from gate's parse of {:?}:\n{parsed}",
            exec.argv
        );
    }
    // The kubeconfig secret: a private file outside the workspace, named by KUBECONFIG, and
    // not left in gate's environment.
    assert_eq!(
        exec.kubeconfig.as_deref().map(str::trim_end),
        Some(kubeconfig.trim_end())
    );
    assert_eq!(exec.kubeconfig_mode.as_deref(), Some("600"));
    assert!(!exec.kubeconfig_path.contains("workspace"));
    // ... and gone once the step is over.
    assert_eq!(exec.tmp_left, Vec::<String>::new(), "left behind");
    assert!(
        !exec.env.contains("# sample"),
        "the secret is in gate's environment"
    );
}

#[test]
fn inputs_left_at_their_defaults_leave_gate_run_at_its_own() {
    let a = action();
    let args: Vec<String> = a
        .runs
        .args
        .iter()
        .map(|arg| {
            render(arg, &|name| match name {
                "baseline" => "http://127.0.0.1:6060".to_owned(),
                "candidate" => "http://127.0.0.1:6061".to_owned(),
                other => a.inputs[other].default.clone().unwrap_or_default(),
            })
        })
        .collect();
    let exec = run_entrypoint(&args, &[]);
    assert!(
        !exec.argv.iter().any(|a| a.ends_with('=')),
        "{:?}",
        exec.argv
    );
    let parsed = parse(&exec.argv);
    for expected in [
        "namespace: None",
        "context: None",
        "policy: None",
        "duration: 60s",
        "windows: 6",
        "profiles: None",
        "archive: None",
        r#"out: "gate-out""#,
        "fail_on: Fail",
    ] {
        assert!(parsed.contains(expected), "{expected} missing:\n{parsed}");
    }
    assert_eq!(exec.kubeconfig_path, "");
}

#[test]
fn a_kubeconfig_from_the_jobs_environment_is_read_relative_to_the_workspace() {
    // The container's working directory is the workspace (run_entrypoint's `workspace/`).
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("workspace/.kube")).unwrap();
    std::fs::write(dir.path().join("workspace/.kube/config"), "kind: Config\n").unwrap();
    let args = ["run".into(), "--baseline=a".into(), "--candidate=b".into()];
    let out = entrypoint_output(&args, &[("KUBECONFIG", ".kube/config")], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recorded = std::fs::read_to_string(dir.path().join("record/kubeconfig-path")).unwrap();
    assert_eq!(recorded, ".kube/config");
    // A file outside the workspace (e.g. under RUNNER_TEMP) is not in the container: say so.
    let dir = tempfile::tempdir().unwrap();
    let out = entrypoint_output(
        &args,
        &[("KUBECONFIG", "/home/runner/work/_temp/kubeconfig")],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/home/runner/work/_temp/kubeconfig")
            && stderr.contains("kubeconfig input"),
        "{stderr}"
    );
}

/// The linters, installed by scripts/test.sh into a virtualenv (PROFILE_GATE_LINT_BIN).
fn lint_bin(name: &str) -> PathBuf {
    let dir = std::env::var_os("PROFILE_GATE_LINT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/profile-gate/lint-venv/bin")
        });
    let bin = dir.join(name);
    assert!(
        bin.is_file(),
        "{} is missing: run the test command from README.md (bash scripts/test.sh), which installs hadolint, actionlint, zizmor and shellcheck",
        bin.display()
    );
    bin
}

/// Runs a linter from the repository root and fails with its output when it complains.
fn lint(name: &str, args: &[&str], cwd: &Path) {
    let bin = lint_bin(name);
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(&bin)
        .args(args)
        .current_dir(cwd)
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()));
    assert!(
        out.status.success(),
        "{name} {args:?} found problems:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn hadolint_passes_the_dockerfile() {
    lint("hadolint", &["Dockerfile"], &repo());
}

#[test]
fn shellcheck_passes_the_entrypoint_and_scripts() {
    lint(
        "shellcheck",
        &[
            "action/entrypoint.sh",
            "action/pin-image.sh",
            "examples/rust-service/build.sh",
            "scripts/test.sh",
            "scripts/fuzz.sh",
            "bench/load.sh",
            "bench/sensitivity.sh",
            "bench/runtimes.sh",
            "bench/leaks.sh",
            "bench/lib.sh",
            ".ci/run",
        ],
        &repo(),
    );
}

#[test]
fn actionlint_passes_the_example_workflows() {
    lint(
        "actionlint",
        &[
            "-pyflakes=",
            "examples/workflows/release-gate.yml",
            "examples/workflows/nightly-archive.yml",
            ".github/workflows/release.yml",
        ],
        &repo(),
    );
}

#[test]
fn actionlint_checks_the_release_gate_example_against_action_yml() {
    // A repository that uses the action locally (`uses: ./`), so actionlint reads action.yml
    // and checks the example's inputs against it (names, required ones).
    let dir = tempfile::tempdir().unwrap();
    for file in ["action.yml", "Dockerfile"] {
        std::fs::copy(repo().join(file), dir.path().join(file)).unwrap();
    }
    let workflows = dir.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    let example =
        std::fs::read_to_string(repo().join("examples/workflows/release-gate.yml")).unwrap();
    assert!(example.contains("uses: your-org/profile-gate@v1"));
    std::fs::write(
        workflows.join("release-gate.yml"),
        example.replace("uses: your-org/profile-gate@v1", "uses: ./"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    lint(
        "actionlint",
        &["-pyflakes=", ".github/workflows/release-gate.yml"],
        dir.path(),
    );
}

#[test]
fn zizmor_passes_the_action_and_the_example_workflows() {
    lint(
        "zizmor",
        &[
            "--offline",
            "--no-progress",
            "--config",
            ".github/zizmor.yml",
            "action.yml",
            "examples/workflows/",
            ".github/workflows/",
        ],
        &repo(),
    );
}

#[test]
fn a_release_pins_action_yml_to_the_published_image_by_digest() {
    // The release workflow pushes the image, then runs action/pin-image.sh on the tag's
    // action.yml: the action then pulls that image by digest instead of building the
    // Dockerfile, and nothing else in it changes.
    let workflow = std::fs::read_to_string(repo().join(".github/workflows/release.yml")).unwrap();
    assert!(workflow.contains("tags: [\"v[0-9]+.[0-9]+.[0-9]+\"]"));
    assert!(workflow.contains("bash action/pin-image.sh \"$REF\""));
    assert!(
        workflow.contains("ubuntu-24.04-arm"),
        "arm64 is built natively"
    );
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("action.yml");
    std::fs::copy(repo().join("action.yml"), &copy).unwrap();
    let pin = |reference: &str| {
        Command::new("bash")
            .arg(repo().join("action/pin-image.sh"))
            .arg(reference)
            .arg(&copy)
            .output()
            .unwrap()
    };
    let digest = "0123456789abcdef".repeat(4);
    for bad in [
        "ghcr.io/acme/profile-gate:1.2.3".to_owned(),
        format!("ghcr.io/acme/profile-gate@sha256:{}", &digest[..63]),
        format!("ghcr.io/Acme/profile-gate@sha256:{digest}"),
        format!("ghcr.io/acme/profile gate@sha256:{digest}"),
    ] {
        let out = pin(&bad);
        assert_eq!(out.status.code(), Some(2), "{bad}: {out:?}");
    }
    let reference = format!("ghcr.io/acme/profile-gate@sha256:{digest}");
    let out = pin(&reference);
    assert!(out.status.success(), "{out:?}");
    let pinned: Action =
        serde_saphyr::from_str(&std::fs::read_to_string(&copy).unwrap()).expect("still parses");
    assert_eq!(pinned.runs.image, format!("docker://{reference}"));
    let original = action();
    assert_eq!(pinned.runs.entrypoint, original.runs.entrypoint);
    assert_eq!(pinned.runs.args, original.runs.args);
    assert_eq!(pinned.runs.env, original.runs.env);
    assert_eq!(
        pinned.inputs.keys().collect::<Vec<_>>(),
        original.inputs.keys().collect::<Vec<_>>()
    );
    // Once pinned, a second run refuses rather than pinning twice.
    assert_eq!(pin(&reference).status.code(), Some(2));
}

#[test]
fn the_dockerfile_builds_as_the_tests_do() {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let rust_version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .map(|v| v.trim_matches('"'))
        .expect("Cargo.toml has a rust-version");
    assert!(
        dockerfile.contains(&format!("FROM rust:{rust_version}-")),
        "the build stage uses the toolchain of Cargo.toml's rust-version ({rust_version})"
    );
    assert!(dockerfile.contains("RUN cargo build --release --locked"));
    let test_sh = std::fs::read_to_string(repo().join("scripts/test.sh")).unwrap();
    assert!(test_sh.contains("cargo test --locked"));
    let user = dockerfile
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the image names its user");
    assert!(
        !matches!(user.split(':').next(), Some("root" | "0")),
        "non-root"
    );
    assert!(dockerfile.contains(r#"ENTRYPOINT ["gate"]"#));
    assert!(dockerfile.contains("ca-certificates"));

    // .dockerignore keeps everything the build reads.
    let ignore = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    let rules: Vec<(bool, globset::GlobMatcher)> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (keep, pattern) = match l.strip_prefix('!') {
                Some(p) => (true, p),
                None => (false, l),
            };
            let glob = globset::GlobBuilder::new(pattern.trim_start_matches('/'))
                .literal_separator(true)
                .build()
                .unwrap()
                .compile_matcher();
            (keep, glob)
        })
        .collect();
    let excluded = |path: &str| {
        let mut out = false;
        let parts: Vec<&str> = path.split('/').collect();
        for i in 1..=parts.len() {
            let prefix = parts[..i].join("/");
            for (keep, glob) in &rules {
                if glob.is_match(&prefix) {
                    out = !keep;
                }
            }
        }
        out
    };
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "src/main.rs",
        "src/report/templates/report.md.j2",
        "policies/default.yaml",
        "benches/decode.rs",
        "tests/tests.rs",
        "action/entrypoint.sh",
        "README.md",
    ] {
        assert!(repo().join(needed).exists(), "{needed}");
        assert!(!excluded(needed), ".dockerignore leaves out {needed}");
    }
    for left_out in [
        ".git",
        "target",
        "examples/profiles/stable/pod-1/cpu-1.pb.gz",
    ] {
        assert!(excluded(left_out), ".dockerignore sends {left_out}");
    }
}

#[test]
fn version_names_the_commit() {
    let out = gate().arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(repo())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let commit = head.unwrap_or_else(|| "unknown".to_owned());
    assert_eq!(
        text.trim(),
        format!("gate {} (commit {commit})", env!("CARGO_PKG_VERSION"))
    );
}

/// Every command and subcommand, with its path (`gate archive prune`).
fn all_commands() -> Vec<(String, clap::Command)> {
    fn walk(prefix: &str, cmd: &clap::Command, out: &mut Vec<(String, clap::Command)>) {
        let name = format!("{prefix}{}", cmd.get_name());
        out.push((name.clone(), cmd.clone()));
        for sub in cmd.get_subcommands() {
            walk(&format!("{name} "), sub, out);
        }
    }
    let mut out = Vec::new();
    walk("", &Cli::command(), &mut out);
    out
}

#[test]
fn every_command_and_flag_is_explained() {
    Cli::command().debug_assert();
    for (name, cmd) in all_commands() {
        assert!(cmd.get_about().is_some(), "{name} has no description");
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version") {
                continue;
            }
            assert!(
                arg.get_help().is_some() || arg.get_long_help().is_some(),
                "{name}: {id} has no help"
            );
        }
        let mut argv: Vec<&str> = name.split(' ').skip(1).collect();
        argv.push("--help");
        let out = gate().args(&argv).output().unwrap();
        assert!(out.status.success(), "{name} --help");
        let help = String::from_utf8(out.stdout).unwrap();
        assert!(help.contains("Usage: "), "{name} --help:\n{help}");
        for line in help.lines() {
            assert!(
                line.chars().count() <= 100,
                "{name} --help has a line over 100 columns: {line}"
            );
        }
    }
}

#[test]
fn fail_on_decides_which_verdicts_exit_1() {
    let run = |fail_on: &str| {
        gate()
            .args(["-q", "diff", "--fail-on", fail_on])
            .arg(repo().join("examples/profiles/stable"))
            .arg(repo().join("examples/profiles/canary"))
            .env_remove("GITHUB_ACTIONS")
            .output()
            .unwrap()
            .status
            .code()
    };
    // The shipped demo fails (a planted CPU regression).
    assert_eq!(run("fail"), Some(1));
    assert_eq!(run("never"), Some(0));
    let bad = gate()
        .args(["diff", "--fail-on", "sometimes", "a", "b"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn the_readme_starts_with_the_two_commands_and_names_only_real_flags() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let first_block: Vec<&str> = readme
        .split("```")
        .nth(1)
        .expect("a code block")
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(first_block.len(), 2, "{first_block:?}");
    assert!(first_block[0]
        .starts_with("cargo run -- diff examples/profiles/stable examples/profiles/canary"));
    assert!(first_block[1].starts_with("bash scripts/test.sh"));

    let mut flags: BTreeSet<String> = ["--help", "--version"].map(String::from).into();
    for (_, cmd) in all_commands() {
        for arg in cmd.get_arguments() {
            if let Some(long) = arg.get_long() {
                flags.insert(format!("--{long}"));
            }
        }
    }
    let flag = regex::Regex::new(r"(?:^|[\s`\[(])(--[a-z][a-z0-9-]*)").unwrap();
    let mut unknown = BTreeSet::new();
    for line in readme.lines() {
        // Lines about gate; other tools' flags (cargo, kubectl, docker) are theirs.
        if !(line.contains("gate ") || line.trim_start().starts_with("--"))
            || ["kubectl", "docker ", "cargo ", "pip ", "git "]
                .iter()
                .any(|t| line.contains(t))
        {
            continue;
        }
        for c in flag.captures_iter(line) {
            if !flags.contains(&c[1]) {
                unknown.insert(c[1].to_owned());
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "README.md names flags gate does not have: {unknown:?}"
    );
}

#[test]
fn the_readme_quotes_what_the_demo_prints() {
    // The pull-request comment the README shows is the demo's (the first command), shortened:
    // a line cut with "..." must begin a line of the output, every other line must be one.
    // A change of words or figures that leaves the README behind fails here.
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let quote: Vec<&str> = readme
        .split("A pull-request comment (from the demo above")
        .nth(1)
        .expect("README shows the demo's pull-request comment")
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('>'))
        .map(|l| l.trim_start_matches('>').trim_start())
        .filter(|l| !l.is_empty())
        .collect();
    assert!(quote.len() >= 8, "{quote:?}");
    let out = gate()
        .current_dir(repo())
        .args([
            "diff",
            "examples/profiles/stable",
            "examples/profiles/canary",
            "--format",
            "markdown",
            "--no-github",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "the demo fails the build");
    let printed = String::from_utf8(out.stdout).unwrap();
    for line in quote {
        let found = match line.split_once("...") {
            Some((head, _)) => printed.lines().any(|l| l.starts_with(head)),
            None => printed.lines().any(|l| l == line),
        };
        assert!(
            found,
            "README.md quotes a line the demo does not print:\n{line}\n--- the demo prints:\n{printed}"
        );
    }
}

#[test]
fn the_layout_tours_match_the_tree() {
    // README's "Development" block and lib.rs's opening tour are how a newcomer finds their
    // way: every module and file under src/ is in them, and nothing they name is gone.
    let src = repo().join("src");
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let tour = readme
        .split("## Development")
        .nth(1)
        .and_then(|rest| rest.split("```").nth(1))
        .expect("README has a layout block under \"Development\"");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let lib_tour: String = lib
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let module = name.trim_end_matches(".rs");
        if name == "lib.rs" || (name.ends_with(".rs") && src.join(module).is_dir()) {
            // lib.rs is the tour itself; `cli.rs` beside `cli/` is named with it.
            if name != "lib.rs" && !tour.contains(&format!("src/{name}")) {
                missing.push(format!("README: src/{name}"));
            }
            continue;
        }
        if !tour.contains(&format!("src/{name}")) {
            missing.push(format!("README: src/{name}"));
        }
        let declared = lib.contains(&format!("pub mod {module};"));
        if declared && !lib_tour.contains(&format!("[`{module}`]")) {
            missing.push(format!("lib.rs tour: {module}"));
        }
    }
    for entry in std::fs::read_dir(src.join("cli")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if !tour.contains(&format!("{name}:")) {
            missing.push(format!("README: src/cli/{name}"));
        }
    }
    let named = regex::Regex::new(r"src/[a-z_]+(?:\.rs)?").unwrap();
    for path in named.find_iter(tour) {
        if !repo().join(path.as_str()).exists() {
            missing.push(format!("README names {}, which is gone", path.as_str()));
        }
    }
    assert!(
        missing.is_empty(),
        "the layout tours lag the tree: {missing:?}"
    );
}

#[test]
fn every_test_the_readme_names_exists() {
    // "Faults and what happens" backs each row with `module::test_name`; a renamed or deleted
    // test must not leave a row claiming what nothing checks.
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let faults = readme
        .split("## Faults and what happens")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README has a section \"Faults and what happens\"");
    let named = regex::Regex::new(r"`([a-z0-9_]+)::([a-z0-9_]+)`").unwrap();
    let mut rows = 0;
    for line in faults
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| fault"))
    {
        rows += 1;
        let tests: Vec<(String, String)> = named
            .captures_iter(line)
            .map(|c| (c[1].to_owned(), c[2].to_owned()))
            .collect();
        assert!(!tests.is_empty(), "a row names no test: {line}");
        for (module, name) in tests {
            let source = std::fs::read_to_string(repo().join(format!("tests/{module}.rs")))
                .unwrap_or_else(|_| panic!("no tests/{module}.rs for {module}::{name}"));
            assert!(
                source.contains(&format!("fn {name}(")),
                "README names {module}::{name}, which tests/{module}.rs does not have"
            );
        }
    }
    assert!(rows >= 15, "the table has {rows} rows");
    // The Security section names its tests the same way.
    let security = readme
        .split("\n## Security")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README has a section \"Security\"");
    let mut cited = 0;
    for c in named.captures_iter(security) {
        cited += 1;
        let (module, name) = (&c[1], &c[2]);
        let source = std::fs::read_to_string(repo().join(format!("tests/{module}.rs"))).unwrap();
        assert!(
            source.contains(&format!("fn {name}(")),
            "README's Security names {module}::{name}, which tests/{module}.rs does not have"
        );
    }
    assert!(cited >= 8, "Security cites {cited} tests");
}

//! Security: hostile function names stay inert in every report format (terminal text,
//! Markdown for the PR comment, the check run and the step summary, JSON, the SVG flame
//! graph), and certificate verification is never skipped unless a kubeconfig asks for it:
//! pprof targets, GitHub, the S3 archive and the apiserver over TLS against a self-signed
//! certificate (`support::tls`). The token tests are in `github` (and `k8s` for the
//! kubeconfig's); hostile pod, namespace and service names in `k8s` and `archive`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use profile_gate::profile::proto;
use prost::Message;
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::tls::TlsServer;
use crate::support::{gate, http_ok, repo, run_gate, HANG};

/// Replaces `main.computeChecksum`, the function the canary's regression is planted in: it
/// regresses cumulatively, so it is named in every table and summary.
const HOSTILE_CUM: &str = "main.(*E).x|y</td><script>alert(1)</script>`code`[click](javascript:alert(1)) @octocat\n# heading\r\n<img src=x onerror=alert(1)>";
/// Replaces `crypto/sha256.block`, where the regression's own time lands (flat).
const HOSTILE_FLAT: &str = "crypto/sha256.block<svg onload=alert(2)>\"' &amp; ![i](https://evil.example/x.png) **b** _i_ @org/team \u{1b}[31mred\u{1b}[0m;frame";

/// Copies the CPU profiles of an example side, each function renamed as `names` says.
fn renamed_side(side: &str, to: &Path, names: &[(&str, &str)]) {
    let from = repo().join("examples/profiles").join(side);
    for pod in std::fs::read_dir(&from).unwrap().flatten() {
        let dir = to.join(pod.file_name());
        std::fs::create_dir_all(&dir).unwrap();
        for f in std::fs::read_dir(pod.path()).unwrap().flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if !name.starts_with("cpu-") {
                continue;
            }
            let mut raw = Vec::new();
            flate2::read::GzDecoder::new(&std::fs::read(f.path()).unwrap()[..])
                .read_to_end(&mut raw)
                .unwrap();
            let mut p = proto::Profile::decode(&raw[..]).unwrap();
            for s in &mut p.string_table {
                if let Some((_, to)) = names.iter().find(|(from, _)| s == from.as_bytes()) {
                    *s = to.as_bytes().to_vec();
                }
            }
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&p.encode_to_vec()).unwrap();
            std::fs::write(dir.join(name), gz.finish().unwrap()).unwrap();
        }
    }
}

/// What one `gate diff --github` left: its output, files and what GitHub was sent.
struct Published {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    out: PathBuf,
    summary: String,
    comment: String,
    check_title: String,
    check_summary: String,
}

fn fixture(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(repo().join("tests/fixtures/github").join(name)).unwrap())
        .unwrap()
}

/// `gate diff BASELINE CANDIDATE --out OUT --github` against a fake GitHub that takes
/// everything.
async fn diff_published(baseline: PathBuf, candidate: PathBuf, out: PathBuf) -> Published {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/octo/widgets/issues/42/comments"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/octo/widgets/issues/42/comments"))
        .respond_with(ResponseTemplate::new(201).set_body_json(fixture("issue_comment.json")))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/octo/widgets/check-runs"))
        .respond_with(ResponseTemplate::new(201).set_body_json(fixture("check_run.json")))
        .mount(&server)
        .await;
    let uri = server.uri();
    let out_dir = out.clone();
    let (code, stdout, stderr, summary) = tokio::task::spawn_blocking(move || {
        let env = tempfile::tempdir().unwrap();
        let event = env.path().join("event.json");
        std::fs::write(&event, fixture("pull_request_event.json").to_string()).unwrap();
        let summary = env.path().join("summary.md");
        let r = gate()
            .arg("diff")
            .arg(&baseline)
            .arg(&candidate)
            .arg("--out")
            .arg(&out)
            .arg("--github")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_TOKEN", "ghs_test")
            .env("GITHUB_REPOSITORY", "octo/widgets")
            .env("GITHUB_API_URL", uri)
            .env("GITHUB_EVENT_PATH", &event)
            .env("GITHUB_STEP_SUMMARY", &summary)
            .timeout(HANG)
            .output()
            .unwrap();
        (
            r.status.code(),
            String::from_utf8_lossy(&r.stdout).into_owned(),
            String::from_utf8_lossy(&r.stderr).into_owned(),
            std::fs::read_to_string(&summary).unwrap_or_default(),
        )
    })
    .await
    .unwrap();
    let mut comment = String::new();
    let mut check: Value = Value::Null;
    for r in server.received_requests().await.unwrap_or_default() {
        if r.method.as_str() != "POST" {
            continue;
        }
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        if r.url.path().ends_with("/comments") {
            comment = body["body"].as_str().unwrap().to_owned();
        } else {
            check = body;
        }
    }
    Published {
        code,
        stdout,
        stderr,
        out: out_dir,
        summary,
        comment,
        check_title: check["output"]["title"].as_str().unwrap_or("").to_owned(),
        check_summary: check["output"]["summary"].as_str().unwrap_or("").to_owned(),
    }
}

/// Markdown that GitHub renders: no element, link, image, emphasis, heading or mention came
/// from a function name, and every table row kept its cells.
fn markdown_is_inert(what: &str, md: &str) {
    assert!(md.len() > 500, "{what} is empty: {md}");
    let lower = md.to_lowercase();
    for tag in ["<script", "<img", "<svg", "</td"] {
        assert!(!lower.contains(tag), "{what}: {tag} got through:\n{md}");
    }
    let unescaped = md.replace("\\](", "");
    for link in ["](javascript", "](https://evil"] {
        assert!(!unescaped.contains(link), "{what}: a link formed:\n{md}");
    }
    // GitHub links a bare URL by itself, brackets or not.
    assert!(
        !md.contains("://evil"),
        "{what}: a bare URL would link:\n{md}"
    );
    for mention in ["@octocat", "@org"] {
        assert!(!md.contains(mention), "{what}: {mention} pings:\n{md}");
    }
    for emphasis in ["**b**", " _i_ "] {
        assert!(!md.contains(emphasis), "{what}: {emphasis} renders:\n{md}");
    }
    assert!(
        !md.lines().any(|l| l.starts_with("# heading")),
        "{what}: a name broke out of its line:\n{md}"
    );
    assert!(
        !md.contains('\u{1b}') && !md.contains('\r'),
        "{what}: control characters:\n{md}"
    );
    for table in md.split("\n\n").filter(|b| b.starts_with('|')) {
        let mut lines = table.lines();
        let cells = |l: &str| l.matches('|').count();
        let header = cells(lines.next().unwrap());
        for l in lines {
            assert_eq!(cells(l), header, "{what}: a row broke its table: {l}");
        }
    }
    // The names are there, escaped, not dropped.
    assert!(md.contains("alert(1)"), "{what}: the name vanished:\n{md}");
}

/// Every string in a JSON value.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// Parses an SVG as inferno writes it (with an SVG 1.1 doctype).
fn parse_svg(svg: &str) -> roxmltree::Document<'_> {
    roxmltree::Document::parse_with_options(
        svg,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .expect("the flame graph is well-formed XML")
}

/// An SVG's shape: every element and attribute name, sorted.
fn svg_shape(svg: &str) -> Vec<String> {
    let doc = parse_svg(svg);
    let mut shape: Vec<String> = Vec::new();
    for n in doc.descendants().filter(|n| n.is_element()) {
        shape.push(n.tag_name().name().to_owned());
        for a in n.attributes() {
            shape.push(format!("{}@{}", n.tag_name().name(), a.name()));
        }
    }
    shape.sort();
    shape
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_function_names_are_inert_in_every_report_format() {
    let tmp = tempfile::tempdir().unwrap();
    let renames = [
        ("main.computeChecksum", HOSTILE_CUM),
        ("crypto/sha256.block", HOSTILE_FLAT),
    ];
    for (side, names) in [
        ("benign/stable", &[][..]),
        ("benign/canary", &[][..]),
        ("hostile/stable", &renames[..]),
        ("hostile/canary", &renames[..]),
    ] {
        let example = side.split('/').nth(1).unwrap();
        renamed_side(example, &tmp.path().join(side), names);
    }
    let run = |kind: &str| {
        diff_published(
            tmp.path().join(kind).join("stable"),
            tmp.path().join(kind).join("canary"),
            tmp.path().join(kind).join("out"),
        )
    };
    let benign = run("benign").await;
    let hostile = run("hostile").await;
    let out = &hostile.out;
    // The same verdict as with plain names: renaming changes nothing but the names.
    assert_eq!(benign.code, Some(1), "{}", benign.stderr);
    assert_eq!(hostile.code, Some(1), "{}", hostile.stderr);

    // Markdown: the file, the PR comment, the check run's summary, the step summary.
    let report_md = std::fs::read_to_string(out.join("report.md")).unwrap();
    for (what, md) in [
        ("report.md", &report_md),
        ("the PR comment", &hostile.comment),
        ("the check run summary", &hostile.check_summary),
        ("the step summary", &hostile.summary),
    ] {
        markdown_is_inert(what, md);
    }
    // The check run's title is plain text on one line.
    assert!(!hostile.check_title.is_empty());
    assert!(
        !hostile.check_title.chars().any(char::is_control),
        "{:?}",
        hostile.check_title
    );

    // Text (the file and standard output): nothing that drives a terminal, no forged lines.
    let report_txt = std::fs::read_to_string(out.join("report.txt")).unwrap();
    for (what, text) in [
        ("report.txt", &report_txt),
        ("standard output", &hostile.stdout),
    ] {
        assert!(text.contains("alert(1)"), "{what}: the name vanished");
        assert!(
            !text.contains('\u{1b}') && !text.contains('\r'),
            "{what}: control characters reach the terminal:\n{text}"
        );
        assert!(
            !text
                .lines()
                .any(|l| l.trim_start().starts_with("# heading")),
            "{what}: a name forged a line:\n{text}"
        );
    }
    assert!(!hostile.stderr.contains('\u{1b}'), "{}", hostile.stderr);

    // JSON: valid, and the names exactly as the profiles have them (machines get the truth).
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap())
            .expect("report.json is valid JSON");
    let mut all = Vec::new();
    strings(&report, &mut all);
    for name in [HOSTILE_CUM, HOSTILE_FLAT] {
        assert!(all.iter().any(|s| s == name), "{name:?} not in report.json");
    }

    // The flame graph: well-formed, and not one element or attribute more than with plain
    // names; the names are text.
    let svg = std::fs::read_to_string(out.join("flame-cpu.svg")).unwrap();
    let plain = std::fs::read_to_string(tmp.path().join("benign/out/flame-cpu.svg")).unwrap();
    assert_eq!(svg_shape(&svg), svg_shape(&plain), "a name added markup");
    let doc = parse_svg(&svg);
    let texts: String = doc
        .descendants()
        .filter_map(|n| n.text())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        texts.contains("<script>alert(1)</script>"),
        "the name is shown as text"
    );
}

#[test]
fn an_https_pprof_target_with_a_self_signed_certificate_is_refused_clearly() {
    let body =
        std::fs::read(repo().join("examples/profiles/stable/pod-1/goroutine-1.pb.gz")).unwrap();
    let tls = TlsServer::start(http_ok(&body));
    // The server works: a client that trusts its certificate gets the profile.
    assert_eq!(tls.get_trusting("/debug/pprof/goroutine"), body);
    let before = tls.handshakes();
    let out = tempfile::tempdir().unwrap();
    let run = run_gate(&[
        "capture".into(),
        tls.url(),
        "--out".into(),
        out.path().display().to_string(),
        "--duration".into(),
        "1s".into(),
        "--windows".into(),
        "1".into(),
        "--profiles".into(),
        "goroutine".into(),
    ]);
    assert_eq!(run.code, 3, "{run}");
    assert!(
        run.stderr.contains("certificate is not trusted")
            && run.stderr.contains("always verifies certificates"),
        "{run}"
    );
    assert!(!run.stderr.contains("is the process running"), "{run}");
    assert!(!run.stderr.contains("attempts"), "not retried: {run}");
    assert_eq!(
        tls.handshakes(),
        before,
        "the gate went past the certificate"
    );
    assert!(run.elapsed < Duration::from_secs(30), "{run}");
}

#[test]
fn a_password_in_a_url_is_never_printed() {
    let out = tempfile::tempdir().unwrap();
    let runs = [
        // A target refused for carrying credentials.
        run_gate(&[
            "run".into(),
            "--baseline".into(),
            "http://admin:s3cret-pw@127.0.0.1:9".into(),
            "--candidate".into(),
            "http://127.0.0.1:9".into(),
            "--out".into(),
            out.path().display().to_string(),
        ]),
        // A URL where `gate diff` wants a path.
        run_gate(&[
            "diff".into(),
            "http://admin:s3cret-pw@127.0.0.1:9/".into(),
            repo()
                .join("examples/profiles/stable")
                .display()
                .to_string(),
        ]),
    ];
    for run in runs {
        assert_eq!(run.code, 2, "{run}");
        assert!(run.stderr.contains("http://***@127.0.0.1:9"), "{run}");
        assert!(
            !run.stderr.contains("s3cret") && !run.stdout.contains("s3cret"),
            "{run}"
        );
    }
}

/// A kubeconfig for `server` with a bearer token; `insecure` adds
/// `insecure-skip-tls-verify: true`.
fn kubeconfig(dir: &Path, server: &str, insecure: bool) -> PathBuf {
    let path = dir.join(if insecure { "insecure" } else { "verified" });
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: {server}
{}contexts:
- {{name: c, context: {{cluster: c, user: u, namespace: default}}}}
current-context: c
users:
- {{name: u, user: {{token: kube-token-never-printed-5e1d}}}}
",
            if insecure {
                "    insecure-skip-tls-verify: true\n"
            } else {
                ""
            }
        ),
    )
    .unwrap();
    path
}

#[test]
fn the_apiserver_certificate_is_verified_unless_the_kubeconfig_says_otherwise_and_then_a_warning_says_so(
) {
    let status = br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"services \"stable\" not found","reason":"NotFound","code":404}"#;
    let mut response = format!(
        "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        status.len()
    )
    .into_bytes();
    response.extend_from_slice(status);
    let tls = TlsServer::start(response);
    let dir = tempfile::tempdir().unwrap();
    let capture = |kubeconfig: PathBuf| {
        run_gate(&[
            "capture".into(),
            "svc/stable".into(),
            "--out".into(),
            dir.path().join("out").display().to_string(),
            "--kubeconfig".into(),
            kubeconfig.display().to_string(),
        ])
    };
    let verified = capture(kubeconfig(dir.path(), &tls.url(), false));
    assert_eq!(verified.code, 3, "{verified}");
    assert!(
        verified.stderr.to_lowercase().contains("certificate"),
        "says why: {verified}"
    );
    assert!(!verified.stderr.contains("TLS verification"), "{verified}");
    assert_eq!(tls.handshakes(), 0, "the gate went past the certificate");

    let insecure = capture(kubeconfig(dir.path(), &tls.url(), true));
    assert!(
        insecure.stderr.contains(&format!(
            "TLS verification of the apiserver {}/ is off, as the kubeconfig asks (insecure-skip-tls-verify: true)",
            tls.url()
        )),
        "{insecure}"
    );
    assert!(tls.handshakes() >= 1, "the kubeconfig asked: {insecure}");
    assert_eq!(insecure.code, 3, "{insecure}");
    assert!(
        insecure.stderr.contains("not found"),
        "it reached the server: {insecure}"
    );
    for run in [&verified, &insecure] {
        assert!(!run.stdout.contains("kube-token") && !run.stderr.contains("kube-token"));
    }
}

#[test]
fn an_archive_over_tls_verifies_the_certificate_whatever_the_environment_says() {
    let tls = TlsServer::start(http_ok(b""));
    let tmp = tempfile::tempdir().unwrap();
    let examples = repo().join("examples/profiles");
    let started = Instant::now();
    let out = gate()
        .args(["run", "--baseline"])
        .arg(examples.join("stable"))
        .arg("--candidate")
        .arg(examples.join("canary"))
        .arg("--out")
        .arg(tmp.path().join("out"))
        .args(["--archive", "s3://bucket/runs", "--service", "api"])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ENDPOINT", tls.url())
        // object_store would honour this: the gate does not.
        .env("AWS_ALLOW_INVALID_CERTIFICATES", "true")
        .timeout(HANG)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the verdict's exit code: {stderr}"
    );
    assert!(stderr.contains("not archived completely"), "{stderr}");
    assert_eq!(tls.handshakes(), 0, "certificate accepted: {stderr}");
    assert!(tmp.path().join("out/report.json").is_file());
    assert!(started.elapsed() < Duration::from_secs(120), "{stderr}");
}

#[test]
fn no_code_path_turns_certificate_verification_off() {
    // The switches of the HTTP and TLS crates the gate uses; none may appear in src/.
    let switches = [
        "danger_accept_invalid_certs",
        "danger_accept_invalid_hostnames",
        "dangerous()",
        "with_allow_invalid_certificates",
        "AllowInvalidCertificates, \"true",
        "accept_invalid_certs = true",
        "NoCertificateVerification",
        "tls_danger",
    ];
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&repo().join("src"), &mut files);
    assert!(files.len() > 20);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for s in switches {
            assert!(!text.contains(s), "{} contains {s}", f.display());
        }
    }
}

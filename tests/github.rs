//! `gate diff --github` against a fake GitHub (wiremock) answering with recorded-shape JSON: the
//! sticky comment is created once and then updated, the check run carries the verdict, and a
//! read-only token, a 5xx or a rate limit leave the local report and the exit code alone, and
//! so does an outage (GitHub unreachable, or answering 5xx to every try). The token never shows
//! in anything a run prints or writes, even when GitHub's errors echo it back.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::support::{gate, repo};

const TOKEN: &str = "ghs_S3cr3tT0kenThatMustNeverPrint";
const HEAD_SHA: &str = "ce587453ced02b1526dfb4cb910479d431683101";
const COMMENTS: &str = "/repos/octo/widgets/issues/42/comments";
const CHECK_RUNS: &str = "/repos/octo/widgets/check-runs";

fn fixture(name: &str) -> Value {
    let p = repo().join("tests/fixtures/github").join(name);
    serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap()
}

fn examples(side: &str) -> PathBuf {
    repo().join("examples/profiles").join(side)
}

/// What one run of the binary left behind.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    /// `--out`; for `gate run`, `archive/` beside it is the `--archive` folder.
    out: tempfile::TempDir,
    summary: String,
    outputs: String,
    elapsed: std::time::Duration,
}

/// Every file under `dir`, its bytes as text (lossy), appended to `all`.
fn read_tree(dir: &std::path::Path, all: &mut String) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            read_tree(&p, all);
        } else {
            all.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap()));
        }
    }
}

impl Run {
    /// Every byte the run printed or wrote (the out dir and the archive, recursively), for
    /// the token check.
    fn everything(&self) -> String {
        let mut all = format!(
            "{}{}{}{}",
            self.stdout, self.stderr, self.summary, self.outputs
        );
        read_tree(self.out.path(), &mut all);
        all
    }
}

/// Runs `gate diff BASELINE CANDIDATE --github` with the Actions environment pointing at
/// `server`, off the async runtime so the server keeps answering.
async fn run_gate(server: &MockServer, baseline: &str, candidate: &str) -> Run {
    run_gate_at(server.uri(), baseline, candidate).await
}

/// [`run_gate`] with GITHUB_API_URL set to `uri`.
async fn run_gate_at(uri: String, baseline: &str, candidate: &str) -> Run {
    let (b, c) = (examples(baseline), examples(candidate));
    run_args(
        uri,
        vec!["diff".into(), b.into_os_string(), c.into_os_string()],
    )
    .await
}

/// Runs `gate ARGS --out OUT --github` with the Actions environment pointing at `uri`;
/// `{archive}` in an argument is replaced by a folder in the out dir.
async fn run_args(uri: String, args: Vec<std::ffi::OsString>) -> Run {
    tokio::task::spawn_blocking(move || {
        let out = tempfile::tempdir().unwrap();
        let archive = out.path().join("archive");
        let args: Vec<std::ffi::OsString> = args
            .into_iter()
            .map(|a| {
                if a == "{archive}" {
                    archive.clone().into_os_string()
                } else {
                    a
                }
            })
            .collect();
        let env_dir = tempfile::tempdir().unwrap();
        let event = env_dir.path().join("event.json");
        std::fs::write(
            &event,
            serde_json::to_vec(&fixture("pull_request_event.json")).unwrap(),
        )
        .unwrap();
        let summary = env_dir.path().join("summary.md");
        let outputs = env_dir.path().join("output.txt");
        let started = std::time::Instant::now();
        let result = gate()
            .args(&args)
            .arg("--out")
            .arg(out.path())
            .arg("--github")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_TOKEN", TOKEN)
            .env("GITHUB_REPOSITORY", "octo/widgets")
            .env("GITHUB_API_URL", &uri)
            .env("GITHUB_EVENT_PATH", &event)
            .env("GITHUB_SHA", "0000000000000000000000000000000000merge1")
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("GITHUB_OUTPUT", &outputs)
            .timeout(crate::support::HANG)
            .output()
            .unwrap();
        Run {
            elapsed: started.elapsed(),
            code: result.status.code(),
            stdout: String::from_utf8_lossy(&result.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&result.stderr).into_owned(),
            out,
            summary: std::fs::read_to_string(&summary).unwrap_or_default(),
            outputs: std::fs::read_to_string(&outputs).unwrap_or_default(),
        }
    })
    .await
    .unwrap()
}

/// A pull request's comments as GitHub keeps them: listed two a page with a `Link` header,
/// created by POST, updated by PATCH.
#[derive(Clone, Default)]
struct FakeComments {
    comments: Arc<Mutex<Vec<Value>>>,
    base: Arc<Mutex<String>>,
}

impl FakeComments {
    fn with_people_comments(n: usize) -> FakeComments {
        let fake = FakeComments::default();
        for i in 0..n {
            let mut c = fixture("issue_comment.json");
            c["id"] = json!(100 + i);
            c["body"] = json!(format!("LGTM {i}"));
            fake.comments.lock().unwrap().push(c);
        }
        fake
    }

    fn ours(&self) -> Vec<Value> {
        self.comments
            .lock()
            .unwrap()
            .iter()
            .filter(|c| {
                c["body"]
                    .as_str()
                    .unwrap_or("")
                    .contains("<!-- profile-gate -->")
            })
            .cloned()
            .collect()
    }
}

impl Respond for FakeComments {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut comments = self.comments.lock().unwrap();
        let base = self.base.lock().unwrap().clone();
        match request.method.as_str() {
            "GET" => {
                let page: usize = request
                    .url
                    .query_pairs()
                    .find(|(k, _)| k == "page")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(1);
                let per = 2;
                let items: Vec<Value> = comments
                    .iter()
                    .skip((page - 1) * per)
                    .take(per)
                    .cloned()
                    .collect();
                let mut r = ResponseTemplate::new(200).set_body_json(items);
                if page * per < comments.len() {
                    r = r.insert_header(
                        "link",
                        format!(
                            "<{base}{COMMENTS}?per_page=100&page={}>; rel=\"next\"",
                            page + 1
                        )
                        .as_str(),
                    );
                }
                r
            }
            "POST" => {
                let body: Value = serde_json::from_slice(&request.body).unwrap();
                let id = 9000 + comments.len() as u64;
                let mut c = fixture("issue_comment.json");
                c["id"] = json!(id);
                c["body"] = body["body"].clone();
                c["html_url"] = json!(format!(
                    "https://github.com/octo/widgets/pull/42#issuecomment-{id}"
                ));
                comments.push(c.clone());
                ResponseTemplate::new(201).set_body_json(c)
            }
            "PATCH" => {
                let body: Value = serde_json::from_slice(&request.body).unwrap();
                let id: u64 = request
                    .url
                    .path()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                match comments.iter_mut().find(|c| c["id"] == json!(id)) {
                    Some(c) => {
                        c["body"] = body["body"].clone();
                        c["updated_at"] = json!("2026-01-01T00:00:00Z");
                        ResponseTemplate::new(200).set_body_json(c.clone())
                    }
                    None => {
                        ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"}))
                    }
                }
            }
            _ => ResponseTemplate::new(405),
        }
    }
}

async fn fake_github() -> (MockServer, FakeComments) {
    let server = MockServer::start().await;
    let fake = FakeComments::with_people_comments(3);
    *fake.base.lock().unwrap() = server.uri();
    Mock::given(path(COMMENTS))
        .respond_with(fake.clone())
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(wiremock::matchers::path_regex(
            r"^/repos/octo/widgets/issues/comments/\d+$",
        ))
        .respond_with(fake.clone())
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(CHECK_RUNS))
        .respond_with(ResponseTemplate::new(201).set_body_json(fixture("check_run.json")))
        .mount(&server)
        .await;
    (server, fake)
}

async fn requests_to(server: &MockServer, verb: &str, route: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.method.as_str() == verb && r.url.path() == route)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_creates_the_comment_and_the_second_updates_it() {
    let (server, fake) = fake_github().await;

    let first = run_gate(&server, "stable", "canary").await;
    assert_eq!(first.code, Some(1), "the verdict decides: {}", first.stderr);
    let ours = fake.ours();
    assert_eq!(ours.len(), 1, "one sticky comment");
    let id = ours[0]["id"].clone();
    let body = ours[0]["body"].as_str().unwrap().to_owned();
    assert!(body.starts_with("<!-- profile-gate -->"), "{body}");
    assert!(body.contains("main.computeChecksum"), "{body}");
    assert!(body.chars().count() <= 65_536);

    let second = run_gate(&server, "stable", "canary").await;
    assert_eq!(second.code, Some(1), "{}", second.stderr);
    let ours = fake.ours();
    assert_eq!(ours.len(), 1, "updated in place, no duplicate");
    assert_eq!(ours[0]["id"], id);
    assert_eq!(ours[0]["updated_at"], "2026-01-01T00:00:00Z");
    assert_eq!(requests_to(&server, "POST", COMMENTS).await.len(), 1);
    // The sticky comment sat on the second page: pagination was followed.
    assert!(server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .any(|r| r.url.path() == COMMENTS && r.url.query().unwrap_or("").contains("page=2")));

    // Outputs and the step summary.
    assert!(
        second.outputs.contains("verdict=fail\n"),
        "{}",
        second.outputs
    );
    assert!(
        second.outputs.contains(&format!(
            "report-path={}",
            second.out.path().join("report.json").display()
        )),
        "{}",
        second.outputs
    );
    assert!(
        second.outputs.contains(&format!(
            "comment-url=https://github.com/octo/widgets/pull/42#issuecomment-{id}"
        )),
        "{}",
        second.outputs
    );
    assert!(
        second.summary.contains("Profile Gate: fail"),
        "{}",
        second.summary
    );

    // The token went only where it belongs: the Authorization header.
    let auth = requests_to(&server, "POST", CHECK_RUNS).await[0]
        .headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(auth.ends_with(TOKEN), "the token is sent as a bearer token");
    for run in [&first, &second] {
        assert!(!run.everything().contains(TOKEN), "the token leaked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_runs_carry_the_verdict_on_the_pull_requests_head() {
    let (server, _fake) = fake_github().await;
    let fail = run_gate(&server, "stable", "canary").await;
    assert_eq!(fail.code, Some(1), "{}", fail.stderr);
    let pass = run_gate(&server, "stable", "stable").await;
    assert_eq!(pass.code, Some(0), "{}", pass.stderr);
    let runs = requests_to(&server, "POST", CHECK_RUNS).await;
    assert_eq!(runs.len(), 2);
    let bodies: Vec<Value> = runs
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(bodies[0]["conclusion"], "failure");
    assert_eq!(bodies[1]["conclusion"], "success");
    for b in &bodies {
        assert_eq!(b["name"], "Profile Gate");
        assert_eq!(b["status"], "completed");
        assert_eq!(b["head_sha"], HEAD_SHA, "the PR head, not GITHUB_SHA");
        assert!(b["output"]["summary"].as_str().unwrap().len() <= 65_535);
    }
    assert!(bodies[0]["output"]["title"]
        .as_str()
        .unwrap()
        .starts_with("fail"));
    assert!(pass.outputs.contains("verdict=pass\n"), "{}", pass.outputs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_token_warns_and_keeps_the_report_and_exit_code() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    for route in [COMMENTS, CHECK_RUNS] {
        Mock::given(method("POST"))
            .and(path(route))
            .respond_with(ResponseTemplate::new(403).set_body_json(fixture("forbidden.json")))
            .expect(1) // a 403 is not retried
            .mount(&server)
            .await;
    }
    let run = run_gate(&server, "stable", "canary").await;
    assert_eq!(run.code, Some(1), "the verdict's exit code: {}", run.stderr);
    assert!(
        run.stderr
            .contains("Resource not accessible by integration"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("read-only token"), "{}", run.stderr);
    assert!(run.out.path().join("report.json").is_file());
    assert!(run.out.path().join("report.md").is_file());
    assert!(run.outputs.contains("verdict=fail\n"), "{}", run.outputs);
    assert!(run.outputs.contains("comment-url=\n"), "{}", run.outputs);
    assert!(run.summary.contains("Profile Gate: fail"));
    assert!(!run.everything().contains(TOKEN), "the token leaked");
    server.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_then_succeed() {
    let (server, fake) = fake_github().await;
    // The first answer of each endpoint is a 5xx; these mocks win until used up.
    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>Bad gateway</html>"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(CHECK_RUNS))
        .respond_with(
            ResponseTemplate::new(503).set_body_json(json!({"message": "Service Unavailable"})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    let run = run_gate(&server, "stable", "canary").await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(
        fake.ours().len(),
        1,
        "created after the retry: {}",
        run.stderr
    );
    assert_eq!(requests_to(&server, "POST", CHECK_RUNS).await.len(), 2);
    assert!(run.stderr.contains("retrying"), "{}", run.stderr);
    assert!(!run.stderr.contains("could not publish"), "{}", run.stderr);
    assert!(!run.everything().contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_is_a_warning_and_not_hammered() {
    let server = MockServer::start().await;
    for (verb, route) in [("GET", COMMENTS), ("POST", CHECK_RUNS)] {
        Mock::given(method(verb))
            .and(path(route))
            .respond_with(
                ResponseTemplate::new(403)
                    .insert_header("x-ratelimit-remaining", "0")
                    .insert_header("x-ratelimit-reset", "1700000000")
                    .set_body_json(fixture("rate_limited.json")),
            )
            .expect(1)
            .mount(&server)
            .await;
    }
    let run = run_gate(&server, "stable", "stable").await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stderr.contains("rate limited"), "{}", run.stderr);
    assert!(run.out.path().join("report.json").is_file());
    server.verify().await;
}

#[test]
fn explicit_github_without_a_token_is_bad_configuration() {
    let out = tempfile::tempdir().unwrap();
    let r = gate()
        .arg("diff")
        .arg(examples("stable"))
        .arg(examples("stable"))
        .arg("--out")
        .arg(out.path())
        .arg("--github")
        .env_remove("GITHUB_TOKEN")
        .env("GITHUB_REPOSITORY", "octo/widgets")
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("GITHUB_TOKEN is not set"));
    // The local report is written before publishing is attempted.
    assert!(out.path().join("report.json").is_file());
}

#[test]
fn in_actions_a_broken_event_file_is_a_warning_not_a_new_exit_code() {
    let out = tempfile::tempdir().unwrap();
    let r = gate()
        .arg("diff")
        .arg(examples("stable"))
        .arg(examples("canary"))
        .arg("--out")
        .arg(out.path())
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_TOKEN", TOKEN)
        .env("GITHUB_REPOSITORY", "octo/widgets")
        .env("GITHUB_API_URL", "http://127.0.0.1:9")
        .env("GITHUB_EVENT_PATH", out.path().join("no-such-event.json"))
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_OUTPUT")
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(1), "the verdict's exit code");
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("not publishing"), "{err}");
    assert!(!err.contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_enterprise_api_urls_keep_their_path() {
    let server = MockServer::start().await;
    let prefix = "/api/v3";
    Mock::given(method("GET"))
        .and(path(format!("{prefix}{COMMENTS}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&server)
        .await;
    let mut created = fixture("issue_comment.json");
    created["html_url"] = json!("https://ghe.example/octo/widgets/pull/42#issuecomment-1");
    Mock::given(method("POST"))
        .and(path(format!("{prefix}{COMMENTS}")))
        .respond_with(ResponseTemplate::new(201).set_body_json(created))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{prefix}{CHECK_RUNS}")))
        .respond_with(ResponseTemplate::new(201).set_body_json(fixture("check_run.json")))
        .expect(1)
        .mount(&server)
        .await;
    let run = run_gate_at(format!("{}{prefix}/", server.uri()), "stable", "canary").await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.outputs
            .contains("comment-url=https://ghe.example/octo/widgets/pull/42#issuecomment-1\n"),
        "{}\n{}",
        run.outputs,
        run.stderr
    );
    server.verify().await;
}

/// Asserts what a GitHub outage must leave alone: the exit code (the verdict's), every local
/// report, the step summary and the outputs; with one warning per thing not published.
fn outage_left_the_run_alone(run: &Run) {
    assert_eq!(run.code, Some(1), "the verdict's exit code: {}", run.stderr);
    for f in ["report.json", "report.md", "report.txt", "flame-cpu.svg"] {
        assert!(run.out.path().join(f).is_file(), "{f} missing");
    }
    assert!(
        run.summary.contains("Profile Gate: fail"),
        "{}",
        run.summary
    );
    assert!(run.outputs.contains("verdict=fail\n"), "{}", run.outputs);
    assert!(run.outputs.contains("comment-url=\n"), "{}", run.outputs);
    for what in ["the comment on pull request #42", "the check run"] {
        assert!(
            run.stderr
                .contains(&format!("GitHub: could not publish {what}")),
            "no warning for {what}: {}",
            run.stderr
        );
    }
    assert!(
        run.stderr
            .contains("the local report and the verdict stand"),
        "{}",
        run.stderr
    );
    // Three tries per call, pauses of 1 s and 2 s: seconds, not minutes.
    assert!(
        run.elapsed < std::time::Duration::from_secs(40),
        "{:?}",
        run.elapsed
    );
    assert!(!run.everything().contains(TOKEN), "the token leaked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_unreachable_is_a_warning_and_leaves_reports_and_exit_code_alone() {
    let dead = format!("http://{}", crate::support::refused_addr());
    let run = run_gate_at(dead.clone(), "stable", "canary").await;
    outage_left_the_run_alone(&run);
    assert!(
        run.stderr.contains(&dead),
        "names the API URL: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("gave up after 3 attempts"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_answering_5xx_to_every_try_gives_up_after_three_with_a_warning() {
    let server = MockServer::start().await;
    // A proxy's error page that echoes what it was sent, token included.
    let echo = format!("upstream timed out; request had Authorization: Bearer {TOKEN}");
    for (verb, route) in [("GET", COMMENTS), ("POST", CHECK_RUNS)] {
        Mock::given(method(verb))
            .and(path(route))
            .respond_with(ResponseTemplate::new(503).set_body_json(json!({ "message": echo })))
            .expect(3)
            .mount(&server)
            .await;
    }
    let run = run_gate(&server, "stable", "canary").await;
    outage_left_the_run_alone(&run);
    assert!(run.stderr.contains("HTTP 503"), "{}", run.stderr);
    assert!(run.stderr.contains("retrying"), "{}", run.stderr);
    server.verify().await;
}

/// Answers every request with `status` and a body that echoes the request: its headers (the
/// Authorization header with the token among them) and its body, as careless servers and
/// proxies do.
struct Echo(u16);

impl Respond for Echo {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let headers: Vec<String> = request
            .headers
            .iter()
            .map(|(k, v)| format!("{k}: {}", String::from_utf8_lossy(v.as_bytes())))
            .collect();
        ResponseTemplate::new(self.0).set_body_json(json!({
            "message": format!("rejected {} {} with {}", request.method, request.url, headers.join(", ")),
            "errors": [{ "resource": "Request", "code": "invalid", "headers": headers }],
            "documentation_url": format!("https://docs.github.com/rest?{}", headers.join("&")),
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_never_appears_in_output_logs_reports_or_the_archive() {
    let server = MockServer::start().await;
    // The comment: 401 and 422 echoing the request; the check run: 500s echoing it (retried,
    // so the retry warnings see it too).
    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .respond_with(Echo(401))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(COMMENTS))
        .respond_with(Echo(422))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(CHECK_RUNS))
        .respond_with(Echo(500))
        .mount(&server)
        .await;
    for (command, expect) in [("diff", 1), ("run", 1)] {
        let mut args: Vec<std::ffi::OsString> = vec![command.into()];
        if command == "run" {
            args.extend([
                "--baseline".into(),
                examples("stable").into_os_string(),
                "--candidate".into(),
                examples("canary").into_os_string(),
                "--archive".into(),
                "{archive}".into(),
                "--service".into(),
                "api".into(),
            ]);
        } else {
            args.extend([
                examples("stable").into_os_string(),
                examples("canary").into_os_string(),
            ]);
        }
        args.push("-v".into());
        let run = run_args(server.uri(), args).await;
        assert_eq!(run.code, Some(expect), "{}", run.stderr);
        assert!(
            run.stderr.contains("GitHub: could not publish"),
            "{}",
            run.stderr
        );
        // Debug logging was on: every request and retry was logged.
        assert!(run.stderr.contains("retrying"), "{}", run.stderr);
        let everything = run.everything();
        assert!(
            everything.len() > 10_000,
            "the scan saw the reports and logs"
        );
        assert!(
            !everything.contains(TOKEN),
            "gate {command}: the token leaked:\n{}",
            everything
                .lines()
                .filter(|l| l.contains(TOKEN))
                .take(5)
                .collect::<Vec<_>>()
                .join("\n")
        );
        if command == "run" {
            assert!(
                run.out.path().join("archive").is_dir(),
                "the archive was written"
            );
        }
    }
    // GitHub did see the token: it was sent, only never shown.
    let seen = server.received_requests().await.unwrap_or_default();
    assert!(seen.iter().any(|r| r
        .headers
        .get("authorization")
        .is_some_and(|v| v.to_str().unwrap_or("").contains(TOKEN))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_github_api_with_an_untrusted_certificate_is_refused_not_trusted() {
    // Started off the test's runtime: the server runs one of its own.
    let tls = tokio::task::spawn_blocking(|| {
        crate::support::tls::TlsServer::start(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n[]"
                .to_vec(),
        )
    })
    .await
    .unwrap();
    let run = run_gate_at(tls.url(), "stable", "canary").await;
    outage_left_the_run_alone(&run);
    assert_eq!(
        tls.handshakes(),
        0,
        "the token went to a server nobody vouched for"
    );
    assert!(
        run.stderr.to_lowercase().contains("certificate"),
        "says why: {}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_github_that_never_answers_costs_one_time_limit_not_minutes() {
    // Accepts every connection, answers none (a stalled API or a proxy holding requests).
    let stalled = crate::support::FakeServer::stalled();
    let run = run_gate_at(stalled.url(), "stable", "canary").await;
    outage_left_the_run_alone(&run);
    assert!(
        run.stderr.contains("GitHub did not answer"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("check run: not attempted"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("retrying"), "{}", run.stderr);
}

//! The GitHub REST calls: the sticky comment, the check run, with bounded retries and time limits.

use std::future::Future;
use std::time::Duration;

use octocrab::Octocrab;
use serde::Deserialize;

use super::{Content, GitHubTarget, Published, RetryPolicy, CHECK_NAME, MARKER};

/// The fields of an issue comment this module reads.
#[derive(Debug, Deserialize)]
struct Comment {
    id: u64,
    html_url: String,
    #[serde(default)]
    body: Option<String>,
}

/// The fields of a check run this module reads.
#[derive(Debug, Deserialize)]
struct CheckRun {
    #[serde(default)]
    html_url: Option<String>,
}

/// Why a request failed, sorted by what to do about it.
#[derive(Debug)]
enum Failure {
    /// A 5xx or a dropped connection: worth another try.
    Transient(String),
    /// No answer within the time limit (or no connection within the connect timeout): GitHub
    /// or the network is stalled. Not retried, and nothing more is tried after it, so a
    /// stalled GitHub costs one time limit, not one per attempt and call.
    Stalled(String),
    /// The rate limit (primary or secondary): not worth hammering.
    RateLimited(String),
    /// 401, 403 or 404: the token may not do this (a pull request from a fork gets a read-only
    /// token; check runs need `checks: write`).
    Forbidden(String),
    /// Anything else.
    Other(String),
}

/// Pages of comments read at most when looking for the sticky one (100 comments a page).
const MAX_COMMENT_PAGES: usize = 50;

/// Publishes the comment (when the event is a pull request) and the check run (when the head
/// commit is known). Never fails: what could not be published is in [`Published::warnings`].
pub async fn publish(target: &GitHubTarget, content: &Content, retry: RetryPolicy) -> Published {
    let mut published = Published::default();
    let crab = match client(target, retry.timeout) {
        Ok(c) => c,
        Err(e) => {
            published.warnings.push(target.token.scrub(&format!(
                "GitHub: cannot set up the API client for {} ({e}); nothing was published",
                target.api_url
            )));
            return published;
        }
    };
    // Set once a call got no answer: the calls after it are not attempted.
    let mut stalled: Option<String> = None;
    match target.pull_request {
        Some(pr) => {
            let result = with_retries(target, retry, || async {
                upsert_comment(&crab, target, pr, &content.comment, retry.timeout).await
            })
            .await;
            match result {
                Ok((url, created)) => {
                    published.comment_url = Some(url);
                    published.comment_created = created;
                }
                Err(f) => {
                    if let Failure::Stalled(why) = &f {
                        stalled = Some(why.clone());
                    }
                    published.warnings.push(words(
                        target,
                        &format!("the comment on pull request #{pr}"),
                        f,
                    ))
                }
            }
        }
        None => tracing::info!("GitHub: the event is not a pull request; no comment posted"),
    }
    match target.head_sha.as_deref() {
        Some(_) if stalled.is_some() => published.warnings.push(target.token.scrub(&format!(
            "GitHub: could not publish the check run: not attempted, as {} did not answer the comment's request ({}); the local report and the verdict stand",
            target.api_url,
            stalled.as_deref().unwrap_or("")
        ))),
        Some(sha) => {
            let result = with_retries(target, retry, || async {
                create_check_run(&crab, target, sha, content, retry.timeout).await
            })
            .await;
            match result {
                Ok(url) => {
                    published.check_run_created = true;
                    published.check_run_url = url;
                }
                Err(f) => published
                    .warnings
                    .push(words(target, "the check run", f)),
            }
        }
        None => published.warnings.push(
            "GitHub: the head commit is unknown (no pull request in GITHUB_EVENT_PATH, no GITHUB_SHA); no check run created"
                .to_owned(),
        ),
    }
    published
}

fn client(target: &GitHubTarget, timeout: Duration) -> octocrab::Result<Octocrab> {
    Octocrab::builder()
        .base_uri(target.api_url.as_str())?
        .personal_token(target.token.expose().to_owned())
        .set_connect_timeout(Some(timeout.min(Duration::from_secs(10))))
        .set_read_timeout(Some(timeout))
        .set_write_timeout(Some(timeout))
        .build()
}

/// Runs `op` until it succeeds, fails for a reason retrying cannot fix, or runs out of
/// attempts; pauses `backoff`, then twice that, and so on, between attempts. The warning
/// before each retry is scrubbed of the token (error bodies may echo the request).
async fn with_retries<T, F, Fut>(
    target: &GitHubTarget,
    retry: RetryPolicy,
    mut op: F,
) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let attempts = retry.attempts.max(1);
    let mut pause = retry.backoff;
    let mut attempt = 1;
    loop {
        match op().await {
            Err(Failure::Transient(why)) if attempt < attempts => {
                tracing::warn!(
                    "GitHub: {}; retrying in {:.1}s (attempt {} of {attempts})",
                    target.token.scrub(&why),
                    pause.as_secs_f64(),
                    attempt + 1
                );
                tokio::time::sleep(pause).await;
                pause = pause.saturating_mul(2);
                attempt += 1;
            }
            Err(Failure::Transient(why)) => {
                return Err(Failure::Transient(format!(
                    "{why} (gave up after {attempts} attempts)"
                )))
            }
            other => return other,
        }
    }
}

/// One request with a time limit, its error sorted.
async fn call<T>(
    timeout: Duration,
    request: impl Future<Output = octocrab::Result<T>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(timeout, request).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(classify(e)),
        Err(_) => Err(Failure::Stalled(format!(
            "no answer within {}s",
            timeout.as_secs_f64()
        ))),
    }
}

fn classify(e: octocrab::Error) -> Failure {
    match e {
        octocrab::Error::GitHub { source, .. } => {
            let status = source.status_code.as_u16();
            let message = source.message.trim().to_owned();
            let exhausted = source
                .headers
                .as_ref()
                .and_then(|h| h.get("x-ratelimit-remaining"))
                .is_some_and(|v| v.as_bytes() == b"0");
            let text = format!("HTTP {status}: {message}");
            if status == 429
                || (status == 403 && (exhausted || message.to_lowercase().contains("rate limit")))
            {
                Failure::RateLimited(text)
            } else if status >= 500 {
                Failure::Transient(text)
            } else if matches!(status, 401 | 403 | 404) {
                Failure::Forbidden(text)
            } else {
                Failure::Other(text)
            }
        }
        e @ (octocrab::Error::Hyper { .. } | octocrab::Error::Service { .. }) => {
            // The causes say what happened ("Connection refused", "invalid peer certificate");
            // the top level only "client error (Connect)".
            let why = crate::errors::chain_message(&e);
            let lower = why.to_ascii_lowercase();
            if ["timed out", "timeout", "deadline has elapsed"]
                .iter()
                .any(|t| lower.contains(t))
            {
                Failure::Stalled(why)
            } else if lower.contains("certificate") {
                Failure::Other(format!(
                    "TLS: the API's certificate is not trusted ({why}); the gate always verifies certificates"
                ))
            } else {
                Failure::Transient(why)
            }
        }
        e => Failure::Other(e.to_string()),
    }
}

/// A warning for people, scrubbed of the token.
fn words(target: &GitHubTarget, what: &str, failure: Failure) -> String {
    let text = match failure {
        Failure::Transient(why) => format!(
            "GitHub: could not publish {what} at {}: {why}",
            target.api_url
        ),
        Failure::Stalled(why) => format!(
            "GitHub: could not publish {what} at {}: {why}; GitHub did not answer, so nothing more was tried",
            target.api_url
        ),
        Failure::RateLimited(why) => format!(
            "GitHub: could not publish {what}: rate limited ({why}); try again after the limit resets"
        ),
        Failure::Forbidden(why) => format!(
            "GitHub: could not publish {what}: the token may not do this ({why}). A pull request from a fork gets a read-only token; comments need `pull-requests: write` and check runs `checks: write`"
        ),
        Failure::Other(why) => format!("GitHub: could not publish {what}: {why}"),
    };
    target
        .token
        .scrub(&format!("{text}; the local report and the verdict stand"))
}

/// Finds the comment carrying the marker and updates it, or creates one. Returns its URL and
/// whether it was created.
async fn upsert_comment(
    crab: &Octocrab,
    target: &GitHubTarget,
    pr: u64,
    body: &str,
    timeout: Duration,
) -> Result<(String, bool), Failure> {
    let (owner, repo) = (&target.owner, &target.repo);
    let route = format!("/repos/{owner}/{repo}/issues/{pr}/comments");
    let mut page: octocrab::Page<Comment> =
        call(timeout, crab.get(&route, Some(&[("per_page", "100")]))).await?;
    let mut found = None;
    for _ in 0..MAX_COMMENT_PAGES {
        if let Some(c) = page.items.iter().find(|c| {
            c.body
                .as_deref()
                .is_some_and(|b| b.trim_start().starts_with(MARKER))
        }) {
            found = Some(c.id);
            break;
        }
        match call(timeout, crab.get_page::<Comment>(&page.next)).await? {
            Some(next) => page = next,
            None => break,
        }
    }
    let payload = serde_json::json!({ "body": body });
    match found {
        Some(id) => {
            let route = format!("/repos/{owner}/{repo}/issues/comments/{id}");
            let c: Comment = call(timeout, crab.patch(&route, Some(&payload))).await?;
            Ok((c.html_url, false))
        }
        None => {
            let c: Comment = call(timeout, crab.post(&route, Some(&payload))).await?;
            Ok((c.html_url, true))
        }
    }
}

/// Creates a completed check run on the head commit with the verdict as its conclusion.
async fn create_check_run(
    crab: &Octocrab,
    target: &GitHubTarget,
    head_sha: &str,
    content: &Content,
    timeout: Duration,
) -> Result<Option<String>, Failure> {
    let route = format!("/repos/{}/{}/check-runs", target.owner, target.repo);
    let payload = serde_json::json!({
        "name": CHECK_NAME,
        "head_sha": head_sha,
        "status": "completed",
        "conclusion": content.conclusion,
        "output": { "title": content.title, "summary": content.summary },
    });
    let run: CheckRun = call(timeout, crab.post(&route, Some(&payload))).await?;
    Ok(run.html_url)
}

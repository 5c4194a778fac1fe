//! Publishing a verdict where people look: on GitHub, one sticky pull-request comment (updated in
//! place on every run), a check run with the verdict as its conclusion, the job's step summary,
//! and the action's outputs.
//!
//! This is an edge: it reads the Actions environment and the event file, and talks to the GitHub
//! REST API (through octocrab). Whatever goes wrong here (a read-only token on a pull request
//! from a fork, a 403, a 5xx that outlasts the retries, a rate limit) becomes a warning: the
//! local report and the verdict's exit code never depend on GitHub. The token is kept in a
//! [`Token`], whose `Debug` and `Display` print `***`, and every message that leaves this module
//! is scrubbed of it.
//!
//! What to write to `$GITHUB_STEP_SUMMARY` and `$GITHUB_OUTPUT` is computed here as text
//! ([`output_lines`], [`comment_body`]); the command line appends it to the files.

mod actions;
mod github;

use std::path::PathBuf;
use std::time::Duration;

pub use actions::{run_step, Mode, StepResult};
pub use github::publish;

use crate::policy::Outcome;

/// The hidden marker that identifies the sticky comment among a pull request's comments.
pub const MARKER: &str = "<!-- profile-gate -->";

/// GitHub's limit on the body of an issue comment and on a check run's summary, in characters.
pub const GITHUB_BODY_LIMIT: usize = 65_536;

/// The name of the check run.
pub const CHECK_NAME: &str = "Profile Gate";

/// A GitHub token. It never prints: `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Token {
        Token(token.into())
    }

    /// The secret itself, for the one place that sends it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// Replaces every occurrence of the token in `text` with `***`.
    pub fn scrub(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_owned()
        } else {
            text.replace(&self.0, "***")
        }
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(***)")
    }
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Why publishing could not even start: the environment lacks something it needs.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// A required environment variable is not set.
    #[error("{0} is not set; GitHub publishing needs it (in GitHub Actions it is set for you; pass the token with `env: GITHUB_TOKEN: ${{{{ secrets.GITHUB_TOKEN }}}}`)")]
    MissingVariable(&'static str),
    /// `GITHUB_REPOSITORY` is not `owner/name`.
    #[error("GITHUB_REPOSITORY is {0:?}; expected owner/name")]
    BadRepository(String),
    /// The event file could not be read or parsed.
    #[error("GITHUB_EVENT_PATH {path}: {reason}")]
    Event {
        /// The event file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

impl crate::errors::Classified for PublishError {
    fn class(&self) -> crate::errors::FailureClass {
        match self {
            // The CI environment, not the gate's input, lacks what publishing needs.
            PublishError::MissingVariable(_)
            | PublishError::BadRepository(_)
            | PublishError::Event { .. } => crate::errors::FailureClass::Infrastructure,
        }
    }
}

/// Where and as whom to publish, read from the GitHub Actions environment.
#[derive(Debug, Clone)]
pub struct GitHubTarget {
    /// The REST API's base URL (`GITHUB_API_URL`; GitHub Enterprise has its own).
    pub api_url: String,
    /// The repository's owner.
    pub owner: String,
    /// The repository's name.
    pub repo: String,
    /// The token (`GITHUB_TOKEN`).
    pub token: Token,
    /// The pull request, when the event is one: the sticky comment goes there.
    pub pull_request: Option<u64>,
    /// The commit the check run is attached to: the pull request's head, not the merge commit
    /// in `GITHUB_SHA`.
    pub head_sha: Option<String>,
}

impl GitHubTarget {
    /// Reads the target from environment variables, through `var` (so tests can pass a map):
    /// `GITHUB_TOKEN`, `GITHUB_REPOSITORY`, `GITHUB_API_URL` (default `https://api.github.com`),
    /// and the pull request's number and head SHA from the event file at `GITHUB_EVENT_PATH`.
    /// Outside a pull request, the head is the pushed commit (`after`), else `GITHUB_SHA`.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<GitHubTarget, PublishError> {
        let get = |name: &'static str| var(name).filter(|v| !v.trim().is_empty());
        let token = get("GITHUB_TOKEN").ok_or(PublishError::MissingVariable("GITHUB_TOKEN"))?;
        let repository =
            get("GITHUB_REPOSITORY").ok_or(PublishError::MissingVariable("GITHUB_REPOSITORY"))?;
        let (owner, repo) = repository
            .split_once('/')
            .filter(|(o, r)| !o.is_empty() && !r.is_empty() && !r.contains('/'))
            .ok_or_else(|| PublishError::BadRepository(repository.clone()))?;
        let api_url = get("GITHUB_API_URL")
            .unwrap_or_else(|| "https://api.github.com".to_owned())
            .trim_end_matches('/')
            .to_owned();
        let mut pull_request = None;
        let mut head_sha = None;
        if let Some(path) = get("GITHUB_EVENT_PATH").map(PathBuf::from) {
            let event = read_event(&path)?;
            let facts = EventFacts::from_event(&event);
            pull_request = facts.pull_request;
            head_sha = facts.head_sha;
        }
        if pull_request.is_none() && head_sha.is_none() {
            head_sha = get("GITHUB_SHA");
        }
        Ok(GitHubTarget {
            api_url,
            owner: owner.to_owned(),
            repo: repo.to_owned(),
            token: Token::new(token),
            pull_request,
            head_sha,
        })
    }
}

fn read_event(path: &std::path::Path) -> Result<serde_json::Value, PublishError> {
    let err = |reason: String| PublishError::Event {
        path: path.to_owned(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| err(format!("cannot read ({e})")))?;
    serde_json::from_slice(&bytes).map_err(|e| err(format!("not JSON ({e})")))
}

/// The pull request and head commit an Actions event names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFacts {
    /// The pull request's number.
    pub pull_request: Option<u64>,
    /// The commit to attach the check run to.
    pub head_sha: Option<String>,
}

impl EventFacts {
    /// Reads `pull_request.number` and `pull_request.head.sha` (pull_request and
    /// pull_request_target events), else `after` (push events).
    pub fn from_event(event: &serde_json::Value) -> EventFacts {
        let pr = event.get("pull_request");
        let pull_request = pr
            .and_then(|p| p.get("number"))
            .and_then(|n| n.as_u64())
            .or_else(|| pr.and(event.get("number")).and_then(|n| n.as_u64()));
        let head_sha = pr
            .and_then(|p| p.pointer("/head/sha"))
            .or_else(|| event.get("after"))
            .and_then(|s| s.as_str())
            .filter(|s| !s.is_empty() && s.bytes().any(|b| b != b'0'))
            .map(str::to_owned);
        EventFacts {
            pull_request,
            head_sha,
        }
    }
}

/// How hard to try: attempts per operation, the pause before the first retry (doubling after),
/// and the time limit of each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per operation, the first included.
    pub attempts: u32,
    /// Pause before the first retry; each later pause doubles.
    pub backoff: Duration,
    /// Time limit of one request, connection included.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            backoff: Duration::from_secs(1),
            timeout: Duration::from_secs(30),
        }
    }
}

/// What to publish: the comment's Markdown, and the check run's title, summary and conclusion.
#[derive(Debug, Clone)]
pub struct Content {
    /// The comment body, marker included (see [`comment_body`]).
    pub comment: String,
    /// The check run's title: the verdict in a line.
    pub title: String,
    /// The check run's summary (Markdown, within the size limit).
    pub summary: String,
    /// The check run's conclusion: `success`, `failure` or `neutral`.
    pub conclusion: &'static str,
}

/// What was published, and what could not be.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    /// The sticky comment's URL, when it was created or updated.
    pub comment_url: Option<String>,
    /// The check run's URL, when it was created.
    pub check_run_url: Option<String>,
    /// Whether the comment was created (`false`: updated, or not published).
    pub comment_created: bool,
    /// Whether the check run was created.
    pub check_run_created: bool,
    /// What went wrong, for people; never contains the token.
    pub warnings: Vec<String>,
}

/// The check run conclusion for a verdict: `success` for a pass, `failure` for a fail,
/// `neutral` for a warning or an inconclusive run (neither blocks a merge by itself).
pub fn conclusion(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Pass => "success",
        Outcome::Fail => "failure",
        Outcome::Warn | Outcome::Inconclusive => "neutral",
    }
}

/// The sticky comment's body: the marker, then the Markdown, cut to GitHub's limit at a line
/// boundary with a note if it is still too long (the Markdown renderer already keeps within it).
pub fn comment_body(markdown: &str) -> String {
    let mut body = format!("{MARKER}\n{markdown}");
    if body.chars().count() > GITHUB_BODY_LIMIT {
        body = crate::report::cut_to_limit(&body, GITHUB_BODY_LIMIT);
    }
    body
}

/// Lines for `$GITHUB_OUTPUT`. Values with a newline use the heredoc form; names and values are
/// otherwise written as they are.
pub fn output_lines(outputs: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (name, value) in outputs {
        if value.contains('\n') || value.contains('\r') {
            let mut delimiter = "PROFILE_GATE_EOF".to_owned();
            while value.contains(&delimiter) {
                delimiter.push('_');
            }
            s.push_str(&format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"));
        } else {
            s.push_str(&format!("{name}={value}\n"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_never_prints() {
        let t = Token::new("ghs_secret");
        assert_eq!(format!("{t} {t:?}"), "*** Token(***)");
        assert_eq!(t.scrub("x ghs_secret y"), "x *** y");
    }

    #[test]
    fn pull_request_events_give_the_head_not_the_merge_commit() {
        let event = serde_json::json!({
            "number": 7,
            "pull_request": { "number": 7, "head": { "sha": "abc123" } },
        });
        let f = EventFacts::from_event(&event);
        assert_eq!(f.pull_request, Some(7));
        assert_eq!(f.head_sha.as_deref(), Some("abc123"));
        let push = serde_json::json!({ "after": "def456" });
        let f = EventFacts::from_event(&push);
        assert_eq!(f.pull_request, None);
        assert_eq!(f.head_sha.as_deref(), Some("def456"));
    }

    #[test]
    fn environment_is_read_and_checked() {
        let env = |k: &str| match k {
            "GITHUB_TOKEN" => Some("t".to_owned()),
            "GITHUB_REPOSITORY" => Some("octo/repo".to_owned()),
            "GITHUB_SHA" => Some("merge".to_owned()),
            _ => None,
        };
        let t = GitHubTarget::from_env(env).unwrap();
        assert_eq!((t.owner.as_str(), t.repo.as_str()), ("octo", "repo"));
        assert_eq!(t.api_url, "https://api.github.com");
        assert_eq!(t.head_sha.as_deref(), Some("merge"));
        let bad = |k: &str| match k {
            "GITHUB_TOKEN" => Some("t".to_owned()),
            "GITHUB_REPOSITORY" => Some("nope".to_owned()),
            _ => None,
        };
        assert!(matches!(
            GitHubTarget::from_env(bad),
            Err(PublishError::BadRepository(_))
        ));
        assert!(matches!(
            GitHubTarget::from_env(|_| None),
            Err(PublishError::MissingVariable("GITHUB_TOKEN"))
        ));
    }

    #[test]
    fn outputs_use_heredocs_for_multiline_values() {
        assert_eq!(
            output_lines(&[("verdict", "fail"), ("x", "a\nb")]),
            "verdict=fail\nx<<PROFILE_GATE_EOF\na\nb\nPROFILE_GATE_EOF\n"
        );
    }

    #[test]
    fn comment_body_starts_with_the_marker_and_fits() {
        let long = "| a |\n".repeat(20_000);
        let body = comment_body(&long);
        assert!(body.starts_with(MARKER));
        assert!(body.chars().count() <= GITHUB_BODY_LIMIT);
    }
}

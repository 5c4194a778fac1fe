//! One request with its retries, a deadline and a body limit; the body checked to be a
//! profile of the kind asked for, decoded off the runtime's workers.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Client, Url};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::profile::{self, DecodeOptions, FunctionProfile, ProfileKind};

use super::fetch::{fetch, FetchError};
use super::plan::format_duration;

/// What one request came to.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    pub(super) planned: Option<Instant>,
    pub(super) attempts: u32,
    pub(super) start: Option<Instant>,
    pub(super) end: Option<Instant>,
    pub(super) status: Option<u16>,
    pub(super) bytes: u64,
    pub(super) error: Option<String>,
    pub(super) retried: Vec<String>,
    pub(super) profile: Option<(Vec<u8>, FunctionProfile)>,
}

impl Outcome {
    pub(super) fn failed(error: impl Into<String>) -> Outcome {
        Outcome {
            error: Some(error.into()),
            ..Outcome::default()
        }
    }
}

/// How often, and until when, a request may be tried again.
#[derive(Debug, Clone, Copy)]
pub(super) struct Retry {
    pub(super) attempts: u32,
    pub(super) backoff: Duration,
    /// The latest instant a new attempt may start (profiles covering a window must start
    /// close to its start).
    pub(super) until: Option<Instant>,
}

/// Everything a request task shares with the others.
#[derive(Clone)]
pub(super) struct Shared {
    pub(super) client: Client,
    pub(super) limits: DecodeOptions,
    pub(super) max_body: u64,
    pub(super) cancel: watch::Receiver<bool>,
    pub(super) spool: Option<Arc<PathBuf>>,
}

/// Resolves when the capture is cancelled; never when no cancellation was set up.
pub(super) async fn cancelled(mut rx: watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Makes one request with retries, then checks the body is a profile of the expected kind.
pub(super) async fn request(
    shared: &Shared,
    url: &Url,
    kind: ProfileKind,
    timeout: Duration,
    retry: Retry,
) -> Outcome {
    let mut out = Outcome::default();
    let mut backoff = retry.backoff;
    // The last answer that said why (an HTTP status and its body): kept over a later bare
    // connection failure, which says nothing a person can act on.
    let mut reason: Option<String> = None;
    loop {
        out.attempts += 1;
        out.start = Some(Instant::now());
        let result = fetch(&shared.client, url, timeout, shared.max_body).await;
        out.end = Some(Instant::now());
        match result {
            Ok(fetched) => {
                out.status = Some(fetched.status);
                out.bytes = fetched.body.len() as u64;
                let limits = shared.limits;
                let body = fetched.body;
                // Decoding is CPU work: off the runtime's workers, so timers stay on time.
                let decoded = tokio::task::spawn_blocking(move || {
                    let r = profile::read_profile(&body, limits);
                    (body, r)
                })
                .await;
                match decoded {
                    Ok((body, Ok(mut p))) => match p.kind {
                        Some(found) if !found.same_family(kind) => {
                            out.error = Some(format!(
                                "the endpoint returned a {found} profile where a {kind} profile was expected"
                            ));
                        }
                        _ => {
                            p.kind = Some(kind);
                            out.profile = Some((body, p));
                        }
                    },
                    Ok((_, Err(e))) => out.error = Some(e.to_string()),
                    Err(e) => out.error = Some(format!("decoding the profile failed: {e}")),
                }
                return out;
            }
            Err(e) => {
                out.status = e.status();
                let next = Instant::now() + backoff;
                let may_retry = e.transient()
                    && out.attempts < retry.attempts
                    && retry.until.is_none_or(|until| next <= until);
                if !may_retry {
                    let mut msg = match (&reason, &e) {
                        (Some(reason), e) if !matches!(e, FetchError::Status { .. }) => {
                            format!("{reason}; the last attempt: {e}")
                        }
                        _ => e.to_string(),
                    };
                    if out.attempts > 1 {
                        msg.push_str(&format!(" (after {} attempts)", out.attempts));
                    } else if e.transient() && matches!(e, FetchError::Status { .. }) {
                        msg.push_str(" (too late in the window to retry)");
                    }
                    out.error = Some(msg);
                    return out;
                }
                tracing::debug!("{url}: {e}; retrying in {}", format_duration(backoff));
                if matches!(e, FetchError::Status { .. }) {
                    reason = Some(e.to_string());
                }
                out.retried.push(e.to_string());
                tokio::time::sleep_until(next).await;
                backoff *= 2;
            }
        }
    }
}

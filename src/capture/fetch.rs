//! One HTTP GET with a deadline and a body limit, its failures sorted into transient (worth a
//! retry) and definitive, each with a message a person can act on.

use std::time::Duration;

use reqwest::{Client, Url};

/// Why one attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// No connection: refused, unreachable, or the name did not resolve.
    Connect(String),
    /// The connection closed or was reset before the whole response arrived.
    Broken(String),
    /// The TLS handshake failed: the server's certificate was not trusted (self-signed, an
    /// unknown authority, expired, or for another name). Verification is never skipped.
    Tls(String),
    /// No complete response within the deadline.
    Timeout(Duration),
    /// An HTTP status other than 200.
    Status {
        /// The status code.
        status: u16,
        /// Its reason phrase and the start of the body, as text.
        message: String,
    },
    /// The body is larger than the limit.
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
}

impl FetchError {
    /// Worth another attempt: connection trouble and 5xx answers (Go answers 500 while another
    /// CPU profile runs; proxies and port-forwards answer 502-504 while a pod restarts).
    pub fn transient(&self) -> bool {
        match self {
            FetchError::Connect(_) | FetchError::Broken(_) => true,
            FetchError::Status { status, .. } => *status >= 500,
            FetchError::Tls(_) | FetchError::Timeout(_) | FetchError::TooLarge { .. } => false,
        }
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            FetchError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Connect(e) => write!(f, "cannot connect ({e}); is the process running and the port right?"),
            FetchError::Broken(e) => write!(f, "the connection broke before the response was complete ({e}); the process exited, or the connection to it (a port-forward, a proxy) dropped"),
            FetchError::Tls(e) => write!(f, "TLS: the server's certificate is not trusted ({e}); the gate always verifies certificates, so give it a certificate from an authority this machine trusts, or reach pprof over http:// through a port-forward"),
            FetchError::Timeout(d) => write!(
                f,
                "no complete response within {}; the process or the network is stalled",
                super::plan::format_duration(*d)
            ),
            FetchError::Status { status, message } => {
                write!(f, "HTTP {status} {message}")?;
                match *status {
                    404 => write!(f, "; is this a Go pprof endpoint (net/http/pprof)?")?,
                    401 | 403 => write!(
                        f,
                        "; the endpoint asks for credentials, and the gate sends none: serve pprof without authentication on a port only the cluster reaches, and give the gate the Kubernetes object (svc/NAME), which it reaches through a port-forward"
                    )?,
                    _ => {}
                }
                Ok(())
            }
            FetchError::TooLarge { limit } => write!(
                f,
                "the response is larger than {} MiB, the limit (--max-body-mib)",
                limit >> 20
            ),
        }
    }
}

/// A successful response.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The HTTP status (200).
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

/// GETs `url` within `timeout` (connect, wait and body together), reading at most `max_body`
/// bytes.
pub async fn fetch(
    client: &Client,
    url: &Url,
    timeout: Duration,
    max_body: u64,
) -> Result<Fetched, FetchError> {
    let work = async {
        let mut response = client
            .get(url.clone())
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| classify(&e, timeout))?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            let mut body = Vec::new();
            // The start of an error body is enough to explain it.
            while body.len() < 4096 {
                match response.chunk().await {
                    Ok(Some(c)) => body.extend_from_slice(&c),
                    _ => break,
                }
            }
            return Err(FetchError::Status {
                status: status.as_u16(),
                message: format!(
                    "{}{}",
                    status.canonical_reason().unwrap_or(""),
                    match snippet(&body) {
                        s if s.is_empty() => String::new(),
                        s => format!(": {s}"),
                    }
                ),
            });
        }
        if response.content_length().is_some_and(|n| n > max_body) {
            return Err(FetchError::TooLarge { limit: max_body });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| classify(&e, timeout))? {
            if body.len() as u64 + chunk.len() as u64 > max_body {
                return Err(FetchError::TooLarge { limit: max_body });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched {
            status: status.as_u16(),
            body,
        })
    };
    // reqwest's timeout covers connect, wait and body; this one bounds everything else too.
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(FetchError::Timeout(timeout)),
    }
}

/// Sorts a reqwest error into a [`FetchError`], keeping the most specific cause's words.
fn classify(e: &reqwest::Error, timeout: Duration) -> FetchError {
    if e.is_timeout() {
        return FetchError::Timeout(timeout);
    }
    let cause = crate::errors::root_cause(e);
    if is_certificate_error(e) {
        FetchError::Tls(cause)
    } else if e.is_connect() {
        FetchError::Connect(cause)
    } else {
        FetchError::Broken(cause)
    }
}

/// Whether any cause in the chain is a refused certificate (rustls says "invalid peer
/// certificate: UnknownIssuer", "... Expired", "... NotValidForName").
fn is_certificate_error(e: &(dyn std::error::Error + 'static)) -> bool {
    crate::errors::causes(e).any(|c| c.to_string().to_ascii_lowercase().contains("certificate"))
}

/// The start of a body as one line of plain text: tags dropped, whitespace collapsed, control
/// characters removed, at most 160 characters. Binary bodies are described, not shown.
pub fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(4096)]);
    let binary = text
        .chars()
        .filter(|c| *c == '\u{fffd}' || (c.is_control() && !c.is_whitespace()))
        .count();
    if binary * 10 > text.chars().count().max(1) {
        return format!("({} bytes of binary data)", body.len());
    }
    let mut out = String::new();
    let mut in_tag = false;
    let mut space = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                space = true;
            }
            _ if in_tag => {}
            c if c.is_whitespace() || c.is_control() => space = true,
            c => {
                if space && !out.is_empty() {
                    out.push(' ');
                }
                space = false;
                out.push(c);
            }
        }
    }
    if out.chars().count() > 160 {
        out = out.chars().take(160).collect::<String>() + "...";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_are_one_readable_line() {
        assert_eq!(
            snippet(b"<html>\n<body><h1>Not Found</h1>\n<p>no\tsuch page</p></body></html>"),
            "Not Found no such page"
        );
        assert_eq!(snippet(b"404 page not found\n"), "404 page not found");
        assert_eq!(
            snippet(b"\x1f\x8b\x08\x00\x00\x00"),
            "(6 bytes of binary data)"
        );
        assert_eq!(
            snippet(b"error: a\x1b[31mb and some more text"),
            "error: a [31mb and some more text"
        );
        assert_eq!(snippet(&[b'x'; 500]).chars().count(), 163);
    }

    #[test]
    fn only_connection_trouble_and_5xx_are_retried() {
        assert!(FetchError::Connect("refused".into()).transient());
        assert!(FetchError::Broken("reset".into()).transient());
        let status = |s| FetchError::Status {
            status: s,
            message: String::new(),
        };
        assert!(status(500).transient());
        assert!(status(503).transient());
        assert!(!status(404).transient());
        assert!(!status(400).transient());
        assert!(!FetchError::Timeout(Duration::from_secs(1)).transient());
        assert!(!FetchError::TooLarge { limit: 1 }.transient());
        let tls = FetchError::Tls("invalid peer certificate: UnknownIssuer".into());
        assert!(!tls.transient(), "a refused certificate stays refused");
        assert!(tls.to_string().contains("always verifies certificates"));
        assert!(status(404).to_string().contains("pprof endpoint"));
    }
}

//! The capture plan: which endpoints, which profiles, and when each request starts. Pure: no
//! network, no clock; the engine turns the plan into requests at `t0 + offset`.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;

use crate::profile::ProfileKind;

use super::PlanError;

/// Default pause between two windows (see [`PlanSettings::gap`]).
pub const DEFAULT_GAP: Duration = Duration::from_millis(250);
/// Default time a request may take beyond its window (see [`PlanSettings::timeout_margin`]).
pub const DEFAULT_TIMEOUT_MARGIN: Duration = Duration::from_secs(10);
/// Default largest response body accepted (256 MiB).
pub const DEFAULT_MAX_BODY_BYTES: u64 = 256 << 20;
/// Attempts per request during the windows (the first try included).
pub const WINDOW_ATTEMPTS: u32 = 3;
/// Attempts per pod for the reachability check before the first window.
pub const PREFLIGHT_ATTEMPTS: u32 = 4;
/// First back-off between attempts in a window; it doubles after each failure.
pub const WINDOW_BACKOFF: Duration = Duration::from_millis(100);
/// First back-off between reachability attempts; it doubles after each failure.
pub const PREFLIGHT_BACKOFF: Duration = Duration::from_millis(250);
/// Longest accepted pod or side name.
pub const MAX_NAME_LEN: usize = 100;

/// What the user asked for, before validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanSettings {
    /// Total profiled time, split into `windows` equal windows.
    pub duration: Duration,
    /// Number of windows.
    pub windows: u32,
    /// Profile kinds to capture (duplicates are ignored).
    pub kinds: Vec<ProfileKind>,
    /// Pause between windows. Go serves one CPU profile at a time and answers a few
    /// milliseconds after the window (the profile is encoded then); the pause lets that answer
    /// arrive before the next window's CPU profile is asked for, so every window can start at
    /// its planned instant and skew does not accumulate from window to window.
    pub gap: Duration,
    /// Time a request may take beyond its window (or, for snapshots, at all).
    pub timeout_margin: Duration,
    /// Largest response body accepted, in bytes.
    pub max_body_bytes: u64,
}

impl PlanSettings {
    /// Settings with the documented defaults: 60 s in 6 windows, every profile kind.
    pub fn new(duration: Duration, windows: u32) -> PlanSettings {
        PlanSettings {
            duration,
            windows,
            kinds: ProfileKind::ALL.to_vec(),
            gap: DEFAULT_GAP,
            timeout_margin: DEFAULT_TIMEOUT_MARGIN,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// A validated capture plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturePlan {
    /// Number of windows.
    pub windows: u32,
    /// Length of one window, in whole seconds (pprof's `?seconds=` takes an integer).
    pub window_seconds: u64,
    /// Pause between windows.
    pub gap: Duration,
    /// Kinds captured, in [`ProfileKind::ALL`] order.
    pub kinds: Vec<ProfileKind>,
    /// Time a request may take beyond its window.
    pub timeout_margin: Duration,
    /// Largest response body accepted, in bytes.
    pub max_body_bytes: u64,
}

/// When a request starts relative to its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// At the window's start, running for the whole window (`?seconds=W`): cpu, allocs, mutex,
    /// block.
    Window,
    /// At the window's end, a snapshot: heap and goroutine. The engine starts it once the
    /// pod's window profiles have been answered (so the snapshot does not count their
    /// handlers), and runs a pod's snapshots one at a time.
    Snapshot,
}

/// One request of one pod in one window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRequest {
    /// Window number, from 1.
    pub window: u32,
    /// The profile.
    pub kind: ProfileKind,
    /// Whether it covers the window or is a snapshot at its end.
    pub phase: Phase,
    /// When it starts in the nominal schedule, from the start of the first window (the engine
    /// starts a window later when a pod has not yet answered the previous one).
    pub at: Duration,
    /// Path and query relative to the pod's pprof base URL, e.g. `profile?seconds=10`.
    pub path: String,
    /// How long the whole request (connect, wait, body) may take.
    pub timeout: Duration,
}

impl CapturePlan {
    /// Validates settings: at least one window of at least one whole second, windows that
    /// divide the duration into whole seconds, at least one profile kind, a positive margin.
    pub fn new(settings: &PlanSettings) -> Result<CapturePlan, PlanError> {
        if settings.windows == 0 {
            return Err(PlanError::Invalid(
                "--windows must be at least 1".to_owned(),
            ));
        }
        let window = settings.duration / settings.windows;
        if window < Duration::from_secs(1) {
            return Err(PlanError::Invalid(format!(
                "--duration {} split into {} windows gives {} per window; a window must last at least 1s (pprof profiles whole seconds)",
                format_duration(settings.duration),
                settings.windows,
                format_duration(window)
            )));
        }
        if !settings
            .duration
            .as_nanos()
            .is_multiple_of(u128::from(settings.windows) * 1_000_000_000)
        {
            let secs = window.as_secs();
            return Err(PlanError::Invalid(format!(
                "--duration {} split into {} windows gives {} per window; pprof profiles whole seconds, so use a duration that is a multiple of the windows, e.g. --duration {}s",
                format_duration(settings.duration),
                settings.windows,
                format_duration(window),
                secs * u64::from(settings.windows)
            )));
        }
        if settings.kinds.is_empty() {
            return Err(PlanError::Invalid(
                "--profiles names no profile; use some of cpu,heap,allocs,goroutine,mutex,block"
                    .to_owned(),
            ));
        }
        if settings.timeout_margin < Duration::from_millis(100) {
            return Err(PlanError::Invalid(format!(
                "--timeout-margin {} is too short; allow at least 100ms for a response",
                format_duration(settings.timeout_margin)
            )));
        }
        if settings.max_body_bytes == 0 {
            return Err(PlanError::Invalid(
                "--max-body-mib must be at least 1".to_owned(),
            ));
        }
        let kinds = ProfileKind::ALL
            .into_iter()
            .filter(|k| settings.kinds.contains(k))
            .collect();
        Ok(CapturePlan {
            windows: settings.windows,
            window_seconds: window.as_secs(),
            gap: settings.gap,
            kinds,
            timeout_margin: settings.timeout_margin,
            max_body_bytes: settings.max_body_bytes,
        })
    }

    /// Length of one window.
    pub fn window(&self) -> Duration {
        Duration::from_secs(self.window_seconds)
    }

    /// Start of window `window` (from 1), from the start of the first window.
    pub fn window_start(&self, window: u32) -> Duration {
        (self.window() + self.gap) * window.saturating_sub(1)
    }

    /// End of window `window` (from 1): when its snapshots are taken.
    pub fn window_end(&self, window: u32) -> Duration {
        self.window_start(window) + self.window()
    }

    /// Time from the first window's start to the last window's end.
    pub fn total(&self) -> Duration {
        self.window_end(self.windows)
    }

    /// How late a request may start (first try or retry) and still count for its window.
    ///
    /// A fifth of the window, between 300 ms and 2 s: later than that, the profile would
    /// describe a different stretch of time than the other pods' profiles.
    pub fn late_limit(&self) -> Duration {
        (self.window() / 5).clamp(Duration::from_millis(300), Duration::from_secs(2))
    }

    /// Timeout of a request that covers the window (`?seconds=W`).
    pub fn window_timeout(&self) -> Duration {
        self.window() + self.timeout_margin
    }

    /// Timeout of a snapshot request and of the reachability check.
    pub fn snapshot_timeout(&self) -> Duration {
        self.timeout_margin
    }

    /// Every request one pod makes, in start order (window, then window requests before
    /// snapshots, then [`ProfileKind::ALL`] order).
    pub fn requests(&self) -> Vec<PlannedRequest> {
        let mut out = Vec::with_capacity(self.windows as usize * self.kinds.len());
        for window in 1..=self.windows {
            for phase in [Phase::Window, Phase::Snapshot] {
                for &kind in &self.kinds {
                    if phase_of(kind) != phase {
                        continue;
                    }
                    let (at, path, timeout) = match phase {
                        Phase::Window => (
                            self.window_start(window),
                            format!("{}?seconds={}", endpoint(kind), self.window_seconds),
                            self.window_timeout(),
                        ),
                        Phase::Snapshot => (
                            self.window_end(window),
                            endpoint(kind).to_owned(),
                            self.snapshot_timeout(),
                        ),
                    };
                    out.push(PlannedRequest {
                        window,
                        kind,
                        phase,
                        at,
                        path,
                        timeout,
                    });
                }
            }
        }
        out
    }
}

/// Whether a kind is captured over the window or as a snapshot at its end.
pub fn phase_of(kind: ProfileKind) -> Phase {
    if kind.is_snapshot() {
        Phase::Snapshot
    } else {
        Phase::Window
    }
}

/// The endpoint name under `/debug/pprof/`.
pub fn endpoint(kind: ProfileKind) -> &'static str {
    match kind {
        ProfileKind::Cpu => "profile",
        other => other.name(),
    }
}

/// Path of the reachability check: a goroutine snapshot, small, cheap, and a real profile.
pub const PREFLIGHT_PATH: &str = "goroutine";

/// Parses a duration such as `60s`, `2m`, `500ms`, `1m30s`, `1.5s` or `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, PlanError> {
    let bad = |why: &str| {
        PlanError::Invalid(format!(
            "{text:?} is not a duration ({why}); write e.g. 60s, 2m, 500ms or 1m30s"
        ))
    };
    let s = text.trim();
    if s.is_empty() {
        return Err(bad("it is empty"));
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(bad("expected a number"));
        }
        let (num, tail) = rest.split_at(num_len);
        let value: f64 = num.parse().map_err(|_| bad("bad number"))?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let factor = match unit {
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(bad("a unit is missing")),
            _ => return Err(bad("units are ms, s, m, h")),
        };
        total += value * factor;
        rest = tail;
    }
    if !total.is_finite() || total > 1e9 {
        return Err(bad("too long"));
    }
    Ok(Duration::from_secs_f64(total))
}

/// Formats a duration the way [`parse_duration`] reads it (`10s`, `1.5s`, `250ms`).
pub fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        let secs = format!("{:.3}", d.as_secs_f64());
        format!("{}s", secs.trim_end_matches('0').trim_end_matches('.'))
    }
}

/// Parses a comma-separated list of profile kinds (`cpu,heap`); `all` means every kind.
pub fn parse_kinds(text: &str) -> Result<Vec<ProfileKind>, PlanError> {
    let mut kinds = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if part == "all" {
            kinds.extend(ProfileKind::ALL);
            continue;
        }
        let kind = ProfileKind::from_name(part).ok_or_else(|| {
            PlanError::Invalid(format!(
                "unknown profile {part:?}; use some of cpu,heap,allocs,goroutine,mutex,block"
            ))
        })?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    Ok(kinds)
}

/// One pod to capture: a name (a directory name in the archive) and its pprof base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodTarget {
    /// Safe as a single path component (see [`check_name`]).
    pub name: String,
    /// The pprof base URL, ending in `/` (e.g. `http://127.0.0.1:6060/debug/pprof/`).
    pub base_url: Url,
}

impl PodTarget {
    /// The URL of one endpoint, e.g. `profile?seconds=10`.
    pub fn url(&self, path: &str) -> Url {
        // A base ending in `/` joined with a relative path cannot fail; fall back to the base.
        self.base_url
            .join(path)
            .unwrap_or_else(|_| self.base_url.clone())
    }
}

/// One side of a live capture: its name (`baseline`, `candidate`) and its pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SideTargets {
    /// The side's name, used as a directory name.
    pub side: String,
    /// The targets as the user gave them.
    pub targets: Vec<String>,
    /// The pods.
    pub pods: Vec<PodTarget>,
}

/// What a command-line target names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    /// A pprof endpoint reached over HTTP, with the pod name the user chose (`NAME=URL`).
    Http {
        /// The pod name given with `NAME=URL`.
        name: Option<String>,
        /// The pprof base URL.
        url: Url,
    },
    /// A Kubernetes object (`[NS/]KIND/NAME`); not reachable by this version.
    Kubernetes(String),
    /// Anything else: a local file or directory of saved profiles.
    Path(PathBuf),
}

const KUBE_KINDS: [&str; 8] = [
    "svc",
    "service",
    "deploy",
    "deployment",
    "sts",
    "statefulset",
    "pod",
    "po",
];

/// Classifies a target argument; URLs are validated and normalised to their pprof base.
///
/// `http(s)://HOST:PORT[/PREFIX]` or `NAME=http(s)://...` is a live pod; `[NS/]KIND/NAME` with
/// a Kubernetes kind is a Kubernetes target; anything else is a path (the caller checks that
/// it exists, and prefers an existing path over a Kubernetes reading).
pub fn parse_target(arg: &str) -> Result<TargetSpec, PlanError> {
    let (name, url_text) = match arg.split_once('=') {
        Some((name, rest)) if rest.contains("://") && !name.contains(['/', ':']) => {
            check_name(name).map_err(|why| {
                PlanError::Invalid(format!("{arg}: bad pod name {name:?}: {why}"))
            })?;
            (Some(name.to_owned()), rest)
        }
        _ => (None, arg),
    };
    if url_text.contains("://") {
        return Ok(TargetSpec::Http {
            name,
            url: pprof_base(url_text)?,
        });
    }
    let parts: Vec<&str> = arg.split('/').collect();
    let looks_kube = matches!(parts.len(), 2 | 3)
        && KUBE_KINDS.contains(&parts[parts.len() - 2])
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        });
    if looks_kube {
        return Ok(TargetSpec::Kubernetes(arg.to_owned()));
    }
    Ok(TargetSpec::Path(PathBuf::from(arg)))
}

/// Validates a URL and returns its pprof base: `/debug/pprof/` is appended unless the path
/// already ends with it (so `http://h:6060`, `http://h:6060/debug/pprof` and
/// `http://h:6060/admin/debug/pprof/` all work).
pub fn pprof_base(text: &str) -> Result<Url, PlanError> {
    let bad = |why: String| {
        PlanError::Invalid(format!(
            "{}: not a usable pprof URL ({why})",
            without_credentials(text)
        ))
    };
    let mut url = Url::parse(text).map_err(|e| bad(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!(
            "scheme {:?}; use http:// or https://",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host".to_owned()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad(
            "it has a query or fragment; give the base URL, e.g. http://HOST:PORT".to_owned(),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "credentials in URLs are not supported; they would be written to the manifest"
                .to_owned(),
        ));
    }
    let path = url.path().trim_end_matches('/').to_owned();
    let path = if path.ends_with("/debug/pprof") {
        format!("{path}/")
    } else {
        format!("{path}/debug/pprof/")
    };
    url.set_path(&path);
    Ok(url)
}

/// `text` with the user information of every URL in it (`user:password@`) replaced by `***@`,
/// so that an error quoting a refused URL never prints its password. Works on any text, parsed
/// as a URL or not: it looks for `://` and the authority after it.
pub fn without_credentials(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("://") || !text.contains('@') {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(user_end) => {
                out.push_str("***");
                out.push_str(&authority[user_end..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out.into()
}

/// Checks that a user-given name is safe as one path component: 1 to 100 characters among
/// letters, digits, `.`, `_` and `-`, not starting with `.` (so never `.`, `..`, `/` or NUL).
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".to_owned());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("it is longer than {MAX_NAME_LEN} characters"));
    }
    if name.starts_with('.') {
        return Err("it starts with '.'".to_owned());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "it contains {c:?}; use letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// `first` when no earlier name took it, else the first free of `{stem}-2{ending}`,
/// `{stem}-3{ending}`, ...; recorded in `taken`. Names that meet (once made safe, or derived
/// alike) get numbers rather than one overwriting the other's files.
pub(crate) fn first_free(
    first: String,
    stem: &str,
    ending: &str,
    taken: &mut HashSet<String>,
) -> String {
    let mut name = first;
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{stem}-{n}{ending}");
        n += 1;
    }
    taken.insert(name.clone());
    name
}

/// A safe path component derived from any text: unsafe characters become `_`, a leading `.`
/// gets a `_` before it, and the result is cut to [`MAX_NAME_LEN`] characters.
pub fn safe_name(text: &str) -> String {
    let mut s: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_NAME_LEN)
        .collect();
    if s.is_empty() || s.starts_with('.') {
        s.insert(0, '_');
        s.truncate(MAX_NAME_LEN);
    }
    s
}

/// The pod name derived from a URL: `HOST-PORT`, e.g. `127.0.0.1-6060` (IPv6 colons become
/// `_`).
pub fn pod_name(url: &Url) -> String {
    let host = url
        .host_str()
        .unwrap_or("pod")
        .trim_start_matches('[')
        .trim_end_matches(']');
    match url.port_or_known_default() {
        Some(port) => safe_name(&format!("{host}-{port}")),
        None => safe_name(host),
    }
}

/// Builds one side's pods from its URL targets: names from `NAME=` or derived from the URL,
/// derived duplicates numbered (`-2`, `-3`), given duplicates and repeated URLs refused.
pub fn side_targets(
    side: &str,
    targets: &[(String, Option<String>, Url)],
) -> Result<SideTargets, PlanError> {
    check_name(side).map_err(|why| PlanError::Invalid(format!("bad side name {side:?}: {why}")))?;
    let mut used: HashSet<String> = targets.iter().filter_map(|t| t.1.clone()).collect();
    let mut given = HashSet::new();
    let mut pods = Vec::with_capacity(targets.len());
    for (arg, name, url) in targets {
        let name = match name {
            Some(n) => {
                if !given.insert(n.clone()) {
                    return Err(PlanError::Invalid(format!(
                        "{side}: the pod name {n:?} is given twice"
                    )));
                }
                n.clone()
            }
            None => {
                let base = pod_name(url);
                first_free(base.clone(), &base, "", &mut used)
            }
        };
        used.insert(name.clone());
        if pods.iter().any(|p: &PodTarget| p.base_url == *url) {
            return Err(PlanError::Invalid(format!(
                "{side}: {arg} is listed twice; each pod is one process"
            )));
        }
        pods.push(PodTarget {
            name,
            base_url: url.clone(),
        });
    }
    Ok(SideTargets {
        side: side.to_owned(),
        targets: targets.iter().map(|t| t.0.clone()).collect(),
        pods,
    })
}

/// Refuses the same endpoint on two sides: one process serves one CPU profile at a time, and a
/// process compared with itself says nothing.
pub fn check_disjoint(sides: &[&SideTargets]) -> Result<(), PlanError> {
    for (i, a) in sides.iter().enumerate() {
        for b in &sides[i + 1..] {
            for pa in &a.pods {
                if let Some(pb) = b.pods.iter().find(|pb| pb.base_url == pa.base_url) {
                    return Err(PlanError::Invalid(format!(
                        "{} is both a {} pod ({}) and a {} pod ({}); each side must be its own processes",
                        pa.base_url, a.side, pa.name, b.side, pb.name
                    )));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn credentials_in_urls_never_reach_a_message() {
        use super::without_credentials as w;
        assert_eq!(w("http://user:pw@host:6060/x"), "http://***@host:6060/x");
        assert_eq!(
            w("a http://u@h b https://u:p:q@h2?x"),
            "a http://***@h b https://***@h2?x"
        );
        assert_eq!(w("http://host:6060/a@b"), "http://host:6060/a@b");
        assert_eq!(w("no url here @ all"), "no url here @ all");
        assert_eq!(w("http://u:p@"), "http://***@");
        let refused = super::pprof_base("http://admin:s3cret@10.0.0.5:6060").unwrap_err();
        assert!(!refused.to_string().contains("s3cret"), "{refused}");
        assert!(
            refused.to_string().contains("http://***@10.0.0.5:6060"),
            "{refused}"
        );
    }

    use super::*;

    fn plan(duration: &str, windows: u32) -> Result<CapturePlan, PlanError> {
        CapturePlan::new(&PlanSettings::new(
            parse_duration(duration).unwrap(),
            windows,
        ))
    }

    #[test]
    fn durations_parse_in_every_unit() {
        let d = |s| parse_duration(s).unwrap();
        assert_eq!(d("60s"), Duration::from_secs(60));
        assert_eq!(d("2m"), Duration::from_secs(120));
        assert_eq!(d("500ms"), Duration::from_millis(500));
        assert_eq!(d("1m30s"), Duration::from_secs(90));
        assert_eq!(d("1.5s"), Duration::from_millis(1500));
        assert_eq!(d("1h"), Duration::from_secs(3600));
        for bad in ["", "60", "s", "10x", "1..5s", "-1s", "1e9h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_secs(10)), "10s");
    }

    #[test]
    fn windows_follow_each_other_with_the_gap() {
        let p = plan("60s", 6).unwrap();
        assert_eq!(p.window_seconds, 10);
        assert_eq!(p.window_start(1), Duration::ZERO);
        assert_eq!(p.window_start(2), Duration::from_millis(10_250));
        assert_eq!(p.window_end(6), Duration::from_millis(5 * 10_250 + 10_000));
        assert_eq!(p.total(), p.window_end(6));
        assert_eq!(p.late_limit(), Duration::from_secs(2));
        assert_eq!(
            plan("6s", 3).unwrap().late_limit(),
            Duration::from_millis(400)
        );
    }

    #[test]
    fn bad_plans_are_refused_with_a_reason() {
        let msg = |r: Result<CapturePlan, PlanError>| r.unwrap_err().to_string();
        assert!(msg(plan("60s", 0)).contains("at least 1"));
        assert!(msg(plan("2s", 3)).contains("at least 1s"));
        assert!(msg(plan("7s", 2)).contains("--duration 6s"));
        assert!(msg(plan("1500ms", 1)).contains("whole seconds"));
        let mut s = PlanSettings::new(Duration::from_secs(6), 3);
        s.kinds.clear();
        assert!(CapturePlan::new(&s).is_err());
    }

    #[test]
    fn each_window_asks_for_deltas_at_its_start_and_snapshots_at_its_end() {
        let p = plan("4s", 2).unwrap();
        let r = p.requests();
        assert_eq!(r.len(), 12);
        let first: Vec<(&str, Duration)> = r[..6].iter().map(|q| (q.path.as_str(), q.at)).collect();
        let end = Duration::from_secs(2);
        assert_eq!(
            first,
            vec![
                ("profile?seconds=2", Duration::ZERO),
                ("allocs?seconds=2", Duration::ZERO),
                ("mutex?seconds=2", Duration::ZERO),
                ("block?seconds=2", Duration::ZERO),
                ("heap", end),
                ("goroutine", end),
            ]
        );
        assert!(r[6..].iter().all(|q| q.window == 2));
        assert_eq!(r[0].timeout, Duration::from_secs(12));
        assert_eq!(r[4].timeout, Duration::from_secs(10));
    }

    #[test]
    fn kinds_parse_and_keep_a_fixed_order_in_the_plan() {
        assert_eq!(
            parse_kinds("heap, cpu,cpu").unwrap(),
            vec![ProfileKind::Heap, ProfileKind::Cpu]
        );
        assert_eq!(parse_kinds("all").unwrap().len(), 6);
        assert!(parse_kinds("cpu,threads").is_err());
        let mut s = PlanSettings::new(Duration::from_secs(2), 1);
        s.kinds = vec![ProfileKind::Goroutine, ProfileKind::Cpu];
        let p = CapturePlan::new(&s).unwrap();
        assert_eq!(p.kinds, vec![ProfileKind::Cpu, ProfileKind::Goroutine]);
    }

    #[test]
    fn urls_become_pprof_bases() {
        let base = |s| pprof_base(s).unwrap().to_string();
        assert_eq!(
            base("http://127.0.0.1:6060"),
            "http://127.0.0.1:6060/debug/pprof/"
        );
        assert_eq!(
            base("http://127.0.0.1:6060/debug/pprof"),
            "http://127.0.0.1:6060/debug/pprof/"
        );
        assert_eq!(
            base("https://h/admin/debug/pprof/"),
            "https://h/admin/debug/pprof/"
        );
        assert_eq!(base("http://h:1/admin"), "http://h:1/admin/debug/pprof/");
        for bad in [
            "ftp://h:1",
            "http://",
            "http://h:1/?seconds=3",
            "http://u:p@h:1",
            "http://h:99999",
        ] {
            assert!(pprof_base(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn targets_are_classified() {
        assert!(matches!(
            parse_target("http://127.0.0.1:1").unwrap(),
            TargetSpec::Http { name: None, .. }
        ));
        assert_eq!(
            parse_target("web-1=http://127.0.0.1:1").unwrap(),
            TargetSpec::Http {
                name: Some("web-1".into()),
                url: pprof_base("http://127.0.0.1:1").unwrap()
            }
        );
        assert!(parse_target("../x=http://127.0.0.1:1").is_err());
        assert!(parse_target("a b=http://127.0.0.1:1").is_err());
        assert_eq!(
            parse_target("prod/deploy/api").unwrap(),
            TargetSpec::Kubernetes("prod/deploy/api".into())
        );
        assert_eq!(
            parse_target("svc/api").unwrap(),
            TargetSpec::Kubernetes("svc/api".into())
        );
        assert_eq!(
            parse_target("out/profiles/baseline").unwrap(),
            TargetSpec::Path("out/profiles/baseline".into())
        );
    }

    #[test]
    fn names_never_escape_their_directory() {
        for hostile in ["..", ".", "a/../b", "x\0y", "/etc", "", ".hidden"] {
            let s = safe_name(hostile);
            assert!(check_name(&s).is_ok(), "{hostile:?} -> {s:?}");
            assert!(!s.contains('/') && !s.contains('\0') && s != ".." && s != ".");
        }
        assert_eq!(safe_name(&"x".repeat(300)).len(), MAX_NAME_LEN);
        let url = |s| pprof_base(s).unwrap();
        assert_eq!(pod_name(&url("http://127.0.0.1:6060")), "127.0.0.1-6060");
        assert_eq!(pod_name(&url("http://[::1]:6060")), "__1-6060");
        assert_eq!(pod_name(&url("https://example.com")), "example.com-443");
    }

    #[test]
    fn targets_whose_names_meet_once_made_safe_get_folders_of_their_own() {
        // `[::1]` and `__1` both make `__1-6060`; a given name takes the next number first.
        let t = |s: &str| (s.to_owned(), None, pprof_base(s).unwrap());
        let side = side_targets(
            "baseline",
            &[
                t("http://[::1]:6060"),
                t("http://__1:6060"),
                (
                    "__1-6060-2=http://h:1".to_owned(),
                    Some("__1-6060-2".to_owned()),
                    pprof_base("http://h:1").unwrap(),
                ),
                t("http://[::1]:6060/admin"),
            ],
        )
        .unwrap();
        let names: Vec<&str> = side.pods.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["__1-6060", "__1-6060-3", "__1-6060-2", "__1-6060-4"]
        );
        for n in names {
            assert!(check_name(n).is_ok(), "{n:?}");
        }
    }

    #[test]
    fn derived_names_are_unique_and_urls_distinct() {
        let t = |s: &str| (s.to_owned(), None, pprof_base(s).unwrap());
        let side = side_targets(
            "baseline",
            &[t("http://h:1"), t("http://h:1/admin"), t("http://h:2")],
        )
        .unwrap();
        let names: Vec<&str> = side.pods.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["h-1", "h-1-2", "h-2"]);
        assert!(side_targets("baseline", &[t("http://h:1"), t("http://h:1/")]).is_err());
        assert!(side_targets("../x", &[t("http://h:1")]).is_err());
        let other = side_targets("candidate", &[t("http://h:2")]).unwrap();
        assert!(check_disjoint(&[&side, &other]).is_err());
        assert_eq!(
            side.pods[0].url("profile?seconds=2").as_str(),
            "http://h:1/debug/pprof/profile?seconds=2"
        );
    }
}

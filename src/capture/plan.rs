//! The capture plan: which profiles, in which windows, and when each request starts. Pure: no
//! network, no clock; the engine turns the plan into requests at `t0 + offset`.

use std::time::Duration;

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
    /// Paths that replace a kind's `/debug/pprof/<name>` (see [`parse_endpoint`]).
    pub endpoints: Vec<(ProfileKind, String)>,
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
            endpoints: Vec::new(),
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
    /// Paths that replace a kind's `/debug/pprof/<name>`, for servers that mount them
    /// elsewhere: relative to the target's pprof base, or from the host's root with a `/`.
    pub endpoints: Vec<(ProfileKind, String)>,
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
    /// The same plan without `absent` kinds (those no pod serves), or `None` when nothing
    /// would be left.
    pub fn without(&self, absent: &[ProfileKind]) -> Option<CapturePlan> {
        let kinds: Vec<ProfileKind> = self
            .kinds
            .iter()
            .copied()
            .filter(|k| !absent.contains(k))
            .collect();
        (!kinds.is_empty()).then(|| CapturePlan {
            kinds,
            ..self.clone()
        })
    }

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
            endpoints: settings.endpoints.clone(),
        })
    }

    /// The path a kind is fetched from: its `--endpoint` when one was given, else the name
    /// under `/debug/pprof/` that Go uses.
    pub fn endpoint(&self, kind: ProfileKind) -> &str {
        self.endpoints
            .iter()
            .rev()
            .find(|(k, _)| *k == kind)
            .map_or_else(|| endpoint(kind), |(_, path)| path.as_str())
    }

    /// `path` with pprof's `seconds` parameter, kept with any query the path has.
    fn with_seconds(path: &str, seconds: u64) -> String {
        let join = if path.contains('?') { '&' } else { '?' };
        format!("{path}{join}seconds={seconds}")
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
                            Self::with_seconds(self.endpoint(kind), self.window_seconds),
                            self.window_timeout(),
                        ),
                        Phase::Snapshot => (
                            self.window_end(window),
                            self.endpoint(kind).to_owned(),
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

/// The reachability checks of a pod, in the order they are tried: a snapshot of each planned
/// kind but CPU (small, cheap, and a real profile), goroutines first, as Go serves them
/// all; last, a one-second CPU profile, asked only when nothing else answered (a service
/// that serves CPU alone, as the `pprof` crate gives a Rust service).
///
/// A runtime other than Go serves fewer kinds (Node.js: CPU and heap), so a kind that answers
/// 404 is not a dead pod: the next is tried, and the kinds every pod lacks are left out.
pub fn preflight_probes(plan: &CapturePlan) -> Vec<(ProfileKind, String)> {
    const ORDER: [ProfileKind; 5] = [
        ProfileKind::Goroutine,
        ProfileKind::Heap,
        ProfileKind::Allocs,
        ProfileKind::Mutex,
        ProfileKind::Block,
    ];
    let mut probes: Vec<(ProfileKind, String)> = ORDER
        .into_iter()
        .filter(|k| plan.kinds.contains(k))
        .map(|k| (k, plan.endpoint(k).to_owned()))
        .collect();
    let cpu = ProfileKind::Cpu;
    if plan.kinds.contains(&cpu) {
        probes.push((cpu, CapturePlan::with_seconds(plan.endpoint(cpu), 1)));
    }
    probes
}

/// Parses `--endpoint KIND=PATH`: where a server that does not follow Go's `/debug/pprof/`
/// layout serves one kind. PATH is relative to the target's pprof base (`profile`), or from
/// the host's root when it starts with `/` (`/profiling/cpu`); it may carry a query, to which
/// `seconds=` is added for profiles taken over a window.
pub fn parse_endpoint(text: &str) -> Result<(ProfileKind, String), PlanError> {
    let bad = |why: &str| {
        PlanError::Invalid(format!(
            "--endpoint {text:?}: {why}; write KIND=PATH, e.g. cpu=/profiling/cpu or heap=heap.pb"
        ))
    };
    let (kind, path) = text.split_once('=').ok_or_else(|| bad("no '='"))?;
    let kind = ProfileKind::from_name(kind.trim())
        .ok_or_else(|| bad("the kind is one of cpu, heap, allocs, goroutine, mutex, block"))?;
    let path = path.trim();
    if path.is_empty() {
        return Err(bad("the path is empty"));
    }
    if path.contains("://") || path.starts_with("//") {
        return Err(bad("a path, not a URL: the target gives the host"));
    }
    if path
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '#')
    {
        return Err(bad("the path has a space, a control character or a '#'"));
    }
    if path.split(['/', '?']).any(|part| part == "..") {
        return Err(bad("'..' is not allowed"));
    }
    Ok((kind, path.to_owned()))
}

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

#[cfg(test)]
mod tests {
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
    fn the_reachability_check_asks_for_planned_snapshots_first_and_cpu_alone_last() {
        use ProfileKind::*;
        let paths = |kinds: &[ProfileKind]| -> Vec<String> {
            let mut s = PlanSettings::new(Duration::from_secs(6), 3);
            s.kinds = kinds.to_vec();
            let p = CapturePlan::new(&s).unwrap();
            preflight_probes(&p).into_iter().map(|(_, p)| p).collect()
        };
        assert_eq!(
            paths(&ProfileKind::ALL),
            vec![
                "goroutine",
                "heap",
                "allocs",
                "mutex",
                "block",
                "profile?seconds=1"
            ]
        );
        assert_eq!(paths(&[Cpu, Heap]), vec!["heap", "profile?seconds=1"]);
        assert_eq!(paths(&[Cpu]), vec!["profile?seconds=1"]);
        // What no pod serves leaves the plan; nothing left is no plan.
        let p = plan("6s", 3).unwrap();
        let pruned = p.without(&[Goroutine, Allocs, Mutex, Block]).unwrap();
        assert_eq!(pruned.kinds, vec![Cpu, Heap]);
        assert_eq!(pruned.windows, p.windows);
        assert!(p.without(&ProfileKind::ALL).is_none());
        // Node.js names CPU time `wall`, and its count `sample`.
        assert_eq!(
            Cpu.find_sample_type("cpu", ["sample", "wall"]),
            Some((1, "wall"))
        );
        assert_eq!(
            Cpu.find_sample_type("samples", ["sample", "wall"]),
            Some((0, "sample"))
        );
        assert_eq!(
            Cpu.find_sample_type("cpu", ["samples", "cpu", "wall"]),
            Some((1, "cpu"))
        );
        assert_eq!(Heap.find_sample_type("inuse_space", ["wall"]), None);
    }

    #[test]
    fn endpoints_replace_a_kinds_path_and_keep_their_query() {
        let mut s = PlanSettings::new(Duration::from_secs(4), 2);
        s.kinds = vec![ProfileKind::Cpu, ProfileKind::Heap];
        s.endpoints = vec![
            parse_endpoint("cpu=/profiling/cpu?format=pprof").unwrap(),
            parse_endpoint("heap = heap.pb").unwrap(),
        ];
        let p = CapturePlan::new(&s).unwrap();
        let requests = p.requests();
        let paths: Vec<&str> = requests[..2].iter().map(|r| r.path.as_str()).collect();
        assert_eq!(
            paths,
            vec!["/profiling/cpu?format=pprof&seconds=2", "heap.pb"]
        );
        assert_eq!(
            preflight_probes(&p),
            vec![
                (ProfileKind::Heap, "heap.pb".to_owned()),
                (
                    ProfileKind::Cpu,
                    "/profiling/cpu?format=pprof&seconds=1".to_owned()
                ),
            ]
        );
        for (bad, why) in [
            ("cpu", "no '='"),
            ("threads=/t", "the kind is one of"),
            ("cpu=", "the path is empty"),
            ("cpu=http://evil/x", "a path, not a URL"),
            ("cpu=//evil/x", "a path, not a URL"),
            ("cpu=/a b", "a space"),
            ("cpu=../../etc", "'..' is not allowed"),
        ] {
            let e = parse_endpoint(bad).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains("KIND=PATH"), "{bad}: {e}");
        }
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
}

//! `manifest.json`: what was asked of whom, when each request ran, what came back, and how far
//! apart the pods' windows started. Serde types plus pure summaries.

use serde::{Deserialize, Serialize};

use crate::profile::ProfileKind;

/// Pods whose CPU profiles of one window started this far apart by their own clocks get a
/// warning: a tenth of the shortest window one would capture, and ten times what clocks
/// synchronised by NTP usually differ by.
const LATE_POD_START_MS: f64 = 1000.0;

/// Version of the `manifest.json` schema; bumped on any incompatible change.
pub const MANIFEST_SCHEMA_VERSION: u32 = 1;

/// Everything about one capture run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The schema version, [`MANIFEST_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The tool version that captured.
    pub tool_version: String,
    /// Wall-clock time of the first window's planned start, in milliseconds since the Unix
    /// epoch; every `*_ms` below counts from this instant (on a monotonic clock).
    pub started_at_unix_ms: u64,
    /// The plan followed.
    pub plan: PlanRecord,
    /// One entry per side.
    pub sides: Vec<SideRecord>,
    /// One entry per window: planned start and measured skew.
    pub windows: Vec<WindowRecord>,
    /// The largest skew over all windows, in milliseconds (absent when no window ran on two or
    /// more pods).
    pub max_skew_ms: Option<f64>,
    /// The largest skew over all windows as the pods' own clocks tell it (their CPU profiles'
    /// start), in milliseconds: unlike [`Manifest::max_skew_ms`] it includes whatever delayed a
    /// request between the gate and the process (a slow port-forward, a proxy). Absent when no
    /// window has CPU profiles from two or more pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pod_skew_ms: Option<f64>,
    /// Profiles planned but not captured.
    pub missing: Vec<Missing>,
    /// What a reader of the report should know (pods lost, windows missing, kinds dropped).
    pub warnings: Vec<String>,
    /// True when the run was interrupted (Ctrl-C) before its end.
    pub interrupted: bool,
}

/// The plan as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRecord {
    /// Number of windows.
    pub windows: u32,
    /// Length of each window, in seconds.
    pub window_seconds: u64,
    /// Pause between windows, in milliseconds.
    pub gap_ms: u64,
    /// Profiles asked for.
    pub profiles: Vec<ProfileKind>,
    /// Time a request could take beyond its window, in milliseconds.
    pub timeout_margin_ms: u64,
    /// Largest body accepted, in bytes.
    pub max_body_bytes: u64,
    /// Attempts allowed per request in a window.
    pub attempts: u32,
    /// How late a request could start and still count for its window, in milliseconds.
    pub late_limit_ms: u64,
    /// Paths given with `--endpoint`, by kind.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub endpoints: std::collections::BTreeMap<String, String>,
}

/// Where a side's profiles came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SideSource {
    /// Captured live from pprof endpoints.
    Live,
    /// Read from saved files (`gate run` with a directory as a side).
    Local,
}

/// One side of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SideRecord {
    /// `baseline`, `candidate`, or the name given to `gate capture --side`.
    pub side: String,
    /// Live or local.
    pub source: SideSource,
    /// The targets as given on the command line.
    pub targets: Vec<String>,
    /// The pods (live sides only).
    pub pods: Vec<PodRecord>,
    /// How the side's Kubernetes targets resolved (Kubernetes sides only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubeSideRecord>,
}

/// How one side's Kubernetes targets resolved to pods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeSideRecord {
    /// The apiserver (its URL only, never credentials).
    pub server: String,
    /// `--max-pods`, when it capped the choice.
    pub max_pods: Option<usize>,
    /// The seed of the pod choice: the same pods, ready pods and seed give the same choice
    /// (`--pod-seed`).
    pub seed: u64,
    /// One entry per target.
    pub targets: Vec<KubeTargetRecord>,
}

/// One Kubernetes target and what it resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeTargetRecord {
    /// The target as given (`svc/stable`).
    pub target: String,
    /// The namespace used.
    pub namespace: String,
    /// The label selector used (absent for a pod target).
    pub selector: Option<String>,
    /// Pods the selector matched.
    pub matched: usize,
    /// Of those, Running and Ready.
    pub ready: usize,
    /// The pods chosen.
    pub chosen: Vec<String>,
}

/// A pod reached through a Kubernetes port-forward.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubePodRecord {
    /// The namespace.
    pub namespace: String,
    /// The pod's UID when resolved.
    pub uid: Option<String>,
    /// The node it ran on.
    pub node: Option<String>,
    /// The image of the container serving pprof.
    pub image: Option<String>,
    /// The container port forwarded.
    pub port: u16,
    /// Restarts of its containers (summed) before the first window.
    pub restarts_at_start: i64,
    /// Restarts after the last window (absent when it could not be read).
    pub restarts_at_end: Option<i64>,
    /// Local connections carried, each over its own port-forward.
    pub forwarded_connections: u64,
    /// Of those, carried by a port-forward opened ahead (upgrades were slow).
    #[serde(default)]
    pub opened_ahead: u64,
    /// The longest a request waited for its port-forward, in milliseconds (the reachability
    /// check left out): it reached the pod that much after the gate sent it.
    #[serde(default)]
    pub waited_ms_max: u64,
    /// Port-forwards that failed.
    pub forward_failures: u64,
    /// The longest port-forward upgrade, in milliseconds (absent in older manifests).
    #[serde(default)]
    pub upgrade_ms_max: u64,
    /// Why its profiles were left out of the comparison (restarted or replaced mid-run).
    pub dropped: Option<String>,
}

/// What a Kubernetes session learnt about a run, for the manifest: each side's targets, each
/// pod's facts (a pod restarted or replaced during the run carries why in `dropped`), and the
/// warnings. Built by the session, written into the capture by [`crate::capture::Capture::add_kubernetes`].
#[derive(Debug, Clone, Default)]
pub struct KubeRunRecord {
    /// One per Kubernetes side.
    pub sides: Vec<KubeSideRun>,
    /// What a reader of the report should know (restarts, slow port-forwards).
    pub warnings: Vec<String>,
}

/// One side of a [`KubeRunRecord`].
#[derive(Debug, Clone)]
pub struct KubeSideRun {
    /// The side's name.
    pub side: String,
    /// Its targets as resolved.
    pub record: KubeSideRecord,
    /// `(pod folder, pod record)` for each forwarded pod.
    pub pods: Vec<(String, KubePodRecord)>,
}

/// One pod of a live side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodRecord {
    /// The pod's name (its directory under `profiles/<side>/`).
    pub name: String,
    /// Its pprof base URL.
    pub base_url: String,
    /// The reachability check made before the first window.
    pub preflight: RequestRecord,
    /// Planned kinds the pod answered 404 for in its reachability check: profiles its
    /// runtime does not serve.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub absent: Vec<ProfileKind>,
    /// Why the pod took no part in the windows, if it did not.
    pub error: Option<String>,
    /// Its windows, in order.
    pub windows: Vec<PodWindow>,
    /// The Kubernetes pod behind the port-forward (Kubernetes targets only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubePodRecord>,
}

/// One window of one pod.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodWindow {
    /// Window number, from 1.
    pub window: u32,
    /// When this pod's window was under way: the latest start among its requests covering the
    /// window (or among its snapshots, when only snapshots were asked for).
    pub start_ms: Option<f64>,
    /// The requests, in plan order.
    pub requests: Vec<RequestRecord>,
}

/// One HTTP request, with its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// The profile asked for.
    pub profile: ProfileKind,
    /// The URL requested.
    pub url: String,
    /// When the plan wanted it to start.
    pub planned_ms: f64,
    /// When the attempt that counts started (the last one).
    pub start_ms: Option<f64>,
    /// When its response ended (or it failed).
    pub end_ms: Option<f64>,
    /// Attempts made.
    pub attempts: u32,
    /// HTTP status of the last attempt, when one came back.
    pub status: Option<u16>,
    /// Body bytes received.
    pub bytes: u64,
    /// The saved file, relative to the output directory.
    pub file: Option<String>,
    /// Why it failed (the last attempt's error).
    pub error: Option<String>,
    /// Errors of earlier attempts that were retried.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retried: Vec<String>,
    /// When the profile says it started, by the pod's own clock, in milliseconds since the
    /// Unix epoch (CPU profiles only: their `time_nanos` is the instant profiling began).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_started_unix_ms: Option<f64>,
}

impl RequestRecord {
    /// A request not yet made.
    pub fn planned(profile: ProfileKind, url: String, planned_ms: f64) -> RequestRecord {
        RequestRecord {
            profile,
            url,
            planned_ms,
            start_ms: None,
            end_ms: None,
            attempts: 0,
            status: None,
            bytes: 0,
            file: None,
            error: None,
            retried: Vec::new(),
            pod_started_unix_ms: None,
        }
    }

    /// True when a profile was captured.
    pub fn ok(&self) -> bool {
        self.error.is_none() && self.attempts > 0
    }
}

/// Skew of one window across every pod of every side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowRecord {
    /// Window number, from 1.
    pub window: u32,
    /// Its start in the plan (`(W + gap) × (window - 1)`).
    pub planned_start_ms: f64,
    /// When the engine started it on every pod: the planned start, or later when a pod had
    /// not yet answered the previous window (absent when it never started).
    pub started_ms: Option<f64>,
    /// Latest pod start minus earliest pod start, over all pods of all sides.
    pub skew_ms: Option<f64>,
    /// Difference between the sides' median pod starts (two sides only).
    pub side_offset_ms: Option<f64>,
    /// Latest minus earliest CPU profile start by the pods' own clocks (their profiles'
    /// `time_nanos`), over all pods of all sides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_skew_ms: Option<f64>,
    /// Pods that started the window.
    pub pods: usize,
}

/// A profile planned but not captured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Missing {
    /// The side.
    pub side: String,
    /// The pod.
    pub pod: String,
    /// Window number, from 1.
    pub window: u32,
    /// The profile.
    pub profile: ProfileKind,
    /// Why.
    pub reason: String,
}

impl Manifest {
    /// Fills [`Manifest::windows`], [`Manifest::max_skew_ms`] and [`Manifest::missing`] from
    /// the pods' records, and adds warnings about missing windows.
    pub fn summarise(&mut self) {
        let mut windows = Vec::with_capacity(self.plan.windows as usize);
        for w in 1..=self.plan.windows {
            let per_side: Vec<Vec<f64>> = self
                .sides
                .iter()
                .filter(|s| s.source == SideSource::Live)
                .map(|s| {
                    s.pods
                        .iter()
                        .filter_map(|p| p.windows.iter().find(|pw| pw.window == w))
                        .filter_map(|pw| pw.start_ms)
                        .collect()
                })
                .collect();
            let all: Vec<f64> = per_side.iter().flatten().copied().collect();
            let skew_ms = spread(&all);
            let pod_starts: Vec<f64> = self
                .sides
                .iter()
                .filter(|s| s.source == SideSource::Live)
                .flat_map(|s| &s.pods)
                .filter_map(|p| p.windows.iter().find(|pw| pw.window == w))
                .filter_map(|pw| {
                    pw.requests
                        .iter()
                        .find(|r| r.profile == ProfileKind::Cpu && r.ok())
                        .and_then(|r| r.pod_started_unix_ms)
                })
                .collect();
            let pod_skew_ms = spread(&pod_starts);
            let side_offset_ms = match per_side.as_slice() {
                [a, b] if !a.is_empty() && !b.is_empty() => Some(median(b) - median(a)),
                _ => None,
            };
            let planned_start_ms = (self.plan.window_seconds as f64 * 1e3
                + self.plan.gap_ms as f64)
                * f64::from(w - 1);
            let started_ms = self
                .windows
                .iter()
                .find(|x| x.window == w)
                .and_then(|x| x.started_ms);
            windows.push(WindowRecord {
                window: w,
                planned_start_ms,
                started_ms,
                skew_ms,
                side_offset_ms,
                pod_skew_ms,
                pods: all.len(),
            });
        }
        let largest = |of: fn(&WindowRecord) -> Option<f64>| {
            windows
                .iter()
                .filter_map(of)
                .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.max(s))))
        };
        self.max_skew_ms = largest(|w| w.skew_ms);
        self.max_pod_skew_ms = largest(|w| w.pod_skew_ms);
        if let Some(late) = self.max_pod_skew_ms.filter(|&s| s >= LATE_POD_START_MS) {
            self.warnings.push(format!(
                "by the pods' own clocks their CPU profiles started up to {:.1} s apart in a window (the gate started them at most {:.0} ms apart): something between the gate and the pods delayed some requests, so those windows compare partly different moments",
                late / 1e3,
                self.max_skew_ms.unwrap_or(0.0)
            ));
        }
        self.windows = windows;

        let mut missing = Vec::new();
        for side in &self.sides {
            for pod in &side.pods {
                for pw in &pod.windows {
                    for r in pw.requests.iter().filter(|r| !r.ok()) {
                        missing.push(Missing {
                            side: side.side.clone(),
                            pod: pod.name.clone(),
                            window: pw.window,
                            profile: r.profile,
                            reason: r
                                .error
                                .clone()
                                .unwrap_or_else(|| "not requested".to_owned()),
                        });
                    }
                }
                if let Some(e) = &pod.error {
                    self.warnings.push(format!(
                        "{} pod {} took no part in the capture: {e}",
                        side.side, pod.name
                    ));
                }
            }
        }
        for line in missing_lines(&missing) {
            self.warnings.push(line);
        }
        self.missing = missing;
    }

    /// One line about the run: windows, pods, skew.
    pub fn facts(&self) -> String {
        let pods: Vec<String> = self
            .sides
            .iter()
            .map(|s| match s.source {
                SideSource::Live => format!(
                    "{} {} pod{}",
                    s.side,
                    s.pods.len(),
                    if s.pods.len() == 1 { "" } else { "s" }
                ),
                SideSource::Local => format!("{} from {}", s.side, s.targets.join(", ")),
            })
            .collect();
        let skew = match (self.max_skew_ms, self.max_pod_skew_ms) {
            (Some(s), Some(p)) => {
                format!("; window start skew at most {s:.1} ms ({p:.1} ms by the pods' clocks)")
            }
            (Some(s), None) => format!("; window start skew at most {s:.1} ms"),
            (None, _) => String::new(),
        };
        format!(
            "{} window{} of {}s ({}); {}{}",
            self.plan.windows,
            if self.plan.windows == 1 { "" } else { "s" },
            self.plan.window_seconds,
            self.plan
                .profiles
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(","),
            pods.join(", "),
            skew
        )
    }
}

/// Largest minus smallest of two or more instants.
fn spread(instants: &[f64]) -> Option<f64> {
    (instants.len() >= 2).then(|| {
        let max = instants.iter().copied().fold(f64::MIN, f64::max);
        let min = instants.iter().copied().fold(f64::MAX, f64::min);
        max - min
    })
}

/// Groups missing profiles per pod and reason into readable lines: `baseline pod p: windows
/// 2-3 missing (cpu, heap): connection refused`.
fn missing_lines(missing: &[Missing]) -> Vec<String> {
    use std::collections::BTreeMap;
    // Each kind's missing windows, per (side, pod, reason); then kinds missing in exactly the
    // same windows share a line. So a line never names a window in which one of its kinds
    // was captured, and no window of a kind is named twice.
    let mut per_kind: BTreeMap<(String, String, String, ProfileKind), Vec<u32>> = BTreeMap::new();
    for m in missing {
        let key = (
            m.side.clone(),
            m.pod.clone(),
            short_reason(&m.reason),
            m.profile,
        );
        let windows = per_kind.entry(key).or_default();
        if !windows.contains(&m.window) {
            windows.push(m.window);
        }
    }
    let mut lines: BTreeMap<(String, String, String, Vec<u32>), Vec<ProfileKind>> = BTreeMap::new();
    for ((side, pod, reason, kind), mut windows) in per_kind {
        windows.sort_unstable();
        lines
            .entry((side, pod, reason, windows))
            .or_default()
            .push(kind);
    }
    lines
        .into_iter()
        .map(|((side, pod, reason, windows), kinds)| {
            format!(
                "{side} pod {pod}: window{} {} missing ({}): {reason}",
                if windows.len() == 1 { "" } else { "s" },
                ranges(&windows),
                kinds
                    .iter()
                    .map(|k| k.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect()
}

/// The first line of a reason, cut to a readable length.
fn short_reason(reason: &str) -> String {
    let line = reason.lines().next().unwrap_or("");
    if line.chars().count() > 200 {
        let cut: String = line.chars().take(200).collect();
        format!("{cut}...")
    } else {
        line.to_owned()
    }
}

/// `1, 2, 3, 5` as `1-3, 5`.
fn ranges(sorted: &[u32]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(", ")
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(kind: ProfileKind, start: Option<f64>, error: Option<&str>) -> RequestRecord {
        RequestRecord {
            start_ms: start,
            attempts: 1,
            error: error.map(str::to_owned),
            ..RequestRecord::planned(kind, "http://h/".into(), 0.0)
        }
    }

    fn pod(name: &str, starts: &[Option<f64>], error: Option<&str>) -> PodRecord {
        PodRecord {
            name: name.into(),
            base_url: "http://h/debug/pprof/".into(),
            preflight: request(ProfileKind::Goroutine, Some(-100.0), None),
            absent: Vec::new(),
            error: None,
            windows: starts
                .iter()
                .enumerate()
                .map(|(i, s)| PodWindow {
                    window: i as u32 + 1,
                    start_ms: *s,
                    requests: vec![
                        request(ProfileKind::Cpu, *s, error),
                        request(ProfileKind::Heap, *s, None),
                    ],
                })
                .collect(),
            kubernetes: None,
        }
    }

    fn manifest(sides: Vec<SideRecord>) -> Manifest {
        Manifest {
            schema_version: MANIFEST_SCHEMA_VERSION,
            tool_version: "test".into(),
            started_at_unix_ms: 0,
            plan: PlanRecord {
                windows: 2,
                window_seconds: 1,
                gap_ms: 250,
                profiles: vec![ProfileKind::Cpu, ProfileKind::Heap],
                timeout_margin_ms: 1000,
                max_body_bytes: 1,
                attempts: 3,
                late_limit_ms: 300,
                endpoints: Default::default(),
            },
            sides,
            windows: Vec::new(),
            max_skew_ms: None,
            max_pod_skew_ms: None,
            missing: Vec::new(),
            warnings: Vec::new(),
            interrupted: false,
        }
    }

    fn live(side: &str, pods: Vec<PodRecord>) -> SideRecord {
        SideRecord {
            side: side.into(),
            source: SideSource::Live,
            targets: vec![],
            pods,
            kubernetes: None,
        }
    }

    #[test]
    fn skew_spans_every_pod_of_both_sides() {
        let mut m = manifest(vec![
            live(
                "baseline",
                vec![
                    pod("a", &[Some(0.5), Some(1250.0)], None),
                    pod("b", &[Some(1.5), Some(1252.0)], None),
                ],
            ),
            live("candidate", vec![pod("c", &[Some(3.0), None], None)]),
        ]);
        m.summarise();
        assert_eq!(m.windows[0].skew_ms, Some(2.5));
        assert_eq!(m.windows[0].side_offset_ms, Some(2.0));
        assert_eq!(m.windows[1].skew_ms, Some(2.0));
        assert_eq!(m.windows[1].side_offset_ms, None);
        assert_eq!(m.max_skew_ms, Some(2.5));
        assert!(m.missing.is_empty());
        let back: Manifest = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn pod_skew_is_read_from_the_cpu_profiles_own_start_and_warned_about_past_a_second() {
        // The gate started both pods' windows within 2.5 ms; the candidate's CPU profiles
        // began 1.4 s later by the processes' clocks (a slow port-forward, say).
        let with_clock = |mut p: PodRecord, unix_ms: [f64; 2]| {
            for (pw, at) in p.windows.iter_mut().zip(unix_ms) {
                pw.requests[0].pod_started_unix_ms = Some(at);
                // Only CPU profiles count: a heap snapshot's time is when it was taken.
                pw.requests[1].pod_started_unix_ms = Some(at + 5000.0);
            }
            p
        };
        let mut m = manifest(vec![
            live(
                "baseline",
                vec![with_clock(
                    pod("a", &[Some(0.5), Some(1250.0)], None),
                    [1e12, 1e12 + 1250.0],
                )],
            ),
            live(
                "candidate",
                vec![with_clock(
                    pod("c", &[Some(3.0), Some(1251.0)], None),
                    [1e12 + 1400.0, 1e12 + 1270.0],
                )],
            ),
        ]);
        m.summarise();
        assert_eq!(m.max_skew_ms, Some(2.5));
        assert_eq!(m.windows[0].pod_skew_ms, Some(1400.0));
        assert_eq!(m.windows[1].pod_skew_ms, Some(20.0));
        assert_eq!(m.max_pod_skew_ms, Some(1400.0));
        assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
        assert!(
            m.warnings[0].contains("started up to 1.4 s apart")
                && m.warnings[0].contains("at most 2 ms apart"),
            "{:?}",
            m.warnings
        );
        assert!(
            m.facts().contains("(1400.0 ms by the pods' clocks)"),
            "{}",
            m.facts()
        );
        // Within a second: recorded, not warned about.
        for side in &mut m.sides {
            for p in &mut side.pods {
                p.windows[0].requests[0].pod_started_unix_ms = Some(1e12 + 10.0);
            }
        }
        m.warnings.clear();
        m.summarise();
        assert_eq!(m.max_pod_skew_ms, Some(20.0));
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    }

    #[test]
    fn missing_windows_are_grouped_into_one_warning_per_pod_and_reason() {
        let mut m = manifest(vec![live(
            "baseline",
            vec![pod(
                "a",
                &[Some(0.0), Some(1.0)],
                Some("connection refused"),
            )],
        )]);
        m.summarise();
        assert_eq!(m.missing.len(), 2);
        assert_eq!(
            m.warnings,
            vec!["baseline pod a: windows 1-2 missing (cpu): connection refused"]
        );
        assert_eq!(ranges(&[1, 2, 3, 5, 7, 8]), "1-3, 5, 7-8");
        // A line names only windows in which all of its kinds are missing, each once.
        let gone = |window, profile| Missing {
            side: "candidate".into(),
            pod: "p".into(),
            window,
            profile,
            reason: "interrupted".into(),
        };
        assert_eq!(
            missing_lines(&[
                gone(1, ProfileKind::Cpu),
                gone(3, ProfileKind::Cpu),
                gone(1, ProfileKind::Heap),
                gone(3, ProfileKind::Goroutine),
                gone(1, ProfileKind::Goroutine),
                gone(1, ProfileKind::Heap),
            ]),
            vec![
                "candidate pod p: window 1 missing (heap): interrupted",
                "candidate pod p: windows 1, 3 missing (cpu, goroutine): interrupted",
            ]
        );
        assert!(m
            .facts()
            .starts_with("2 windows of 1s (cpu,heap); baseline 1 pod"));
    }
}

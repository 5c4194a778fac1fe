//! What a finished capture records: each request's outcome as the manifest keeps it (times in
//! milliseconds from the first window's planned start), each pod's windows, and the profiles
//! the requests brought back.

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::Url;
use tokio::time::Instant;

use crate::profile::ProfileKind;

use super::captured::{archive_path, Capture, CapturedProfile};
use super::endpoints::SideTargets;
use super::manifest::{
    Manifest, PlanRecord, PodRecord, PodWindow, RequestRecord, SideRecord, SideSource,
    MANIFEST_SCHEMA_VERSION,
};
use super::plan::{CapturePlan, Phase, PlannedRequest, WINDOW_ATTEMPTS};
use super::preflight::Preflight;
use super::request::Outcome;

/// The capture's clock: the instant the first window was planned to start, on the monotonic
/// clock and on the wall clock.
pub(super) struct Timeline {
    pub(super) t0: Instant,
    pub(super) wall0: SystemTime,
}

impl Timeline {
    /// Milliseconds from the first window's planned start (negative before it).
    pub(super) fn ms(&self, i: Instant) -> f64 {
        if i >= self.t0 {
            (i - self.t0).as_secs_f64() * 1e3
        } else {
            -((self.t0 - i).as_secs_f64() * 1e3)
        }
    }

    /// One request's outcome as the manifest records it.
    fn request(&self, kind: ProfileKind, url: &Url, planned_ms: f64, o: &Outcome) -> RequestRecord {
        RequestRecord {
            profile: kind,
            url: url.to_string(),
            planned_ms,
            start_ms: o.start.map(|i| self.ms(i)),
            end_ms: o.end.map(|i| self.ms(i)),
            attempts: o.attempts,
            status: o.status,
            bytes: o.bytes,
            file: None,
            error: o.error.clone(),
            retried: o.retried.clone(),
            pod_started_unix_ms: o
                .profile
                .as_ref()
                .filter(|(_, p)| kind == ProfileKind::Cpu && p.time_nanos > 0)
                .map(|(_, p)| p.time_nanos as f64 / 1e6),
        }
    }
}

/// Everything a capture ends with, to be recorded.
pub(super) struct Outcomes<'a> {
    /// The plan that ran (without the kinds no pod serves).
    pub(super) plan: &'a CapturePlan,
    pub(super) sides: &'a [SideTargets],
    pub(super) requests: &'a [PlannedRequest],
    /// [side][pod]: the reachability check.
    pub(super) preflight: &'a [Vec<Preflight>],
    /// [side][pod]: whether the pod passed it and took part.
    pub(super) live: &'a [Vec<bool>],
    /// [side][pod][request]: what each request brought, `None` when it never finished.
    pub(super) results: Vec<Vec<Vec<Option<Outcome>>>>,
    /// How many windows ran (0 when none could).
    pub(super) windows: u32,
    /// [window]: when it started on every pod, from 1 (index 0 unused).
    pub(super) window_starts: Vec<Option<Instant>>,
    pub(super) interrupted: bool,
    pub(super) warnings: Vec<String>,
    pub(super) timeline: Timeline,
}

/// The capture: its manifest and the profiles it brought back.
pub(super) fn capture(mut o: Outcomes<'_>) -> Capture {
    let (sides, profiles) = sides(&mut o);
    let mut manifest = Manifest {
        schema_version: MANIFEST_SCHEMA_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at_unix_ms: o
            .timeline
            .wall0
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
        plan: plan_record(o.plan),
        sides,
        windows: Vec::new(),
        max_skew_ms: None,
        max_pod_skew_ms: None,
        missing: Vec::new(),
        warnings: std::mem::take(&mut o.warnings),
        interrupted: o.interrupted,
    };
    if o.interrupted {
        manifest
            .warnings
            .push("the capture was interrupted before its end".to_owned());
    }
    manifest.summarise();
    for w in &mut manifest.windows {
        w.started_ms = o
            .window_starts
            .get(w.window as usize)
            .copied()
            .flatten()
            .map(|i| o.timeline.ms(i));
    }
    Capture { manifest, profiles }
}

/// The plan as the manifest records it.
fn plan_record(plan: &CapturePlan) -> PlanRecord {
    PlanRecord {
        windows: plan.windows,
        window_seconds: plan.window_seconds,
        gap_ms: plan.gap.as_millis() as u64,
        profiles: plan.kinds.clone(),
        timeout_margin_ms: plan.timeout_margin.as_millis() as u64,
        max_body_bytes: plan.max_body_bytes,
        attempts: WINDOW_ATTEMPTS,
        late_limit_ms: plan.late_limit().as_millis() as u64,
        endpoints: plan
            .endpoints
            .iter()
            .map(|(k, path)| (k.name().to_owned(), path.clone()))
            .collect(),
    }
}

/// Every side's record and the profiles captured, in side, pod, window order.
fn sides(o: &mut Outcomes<'_>) -> (Vec<SideRecord>, Vec<CapturedProfile>) {
    let mut profiles = Vec::new();
    let mut records = Vec::with_capacity(o.sides.len());
    let mut results = std::mem::take(&mut o.results);
    for (si, side) in o.sides.iter().enumerate() {
        let pods = side
            .pods
            .iter()
            .enumerate()
            .map(|(pi, _)| {
                let mut rec = pod_record(o, si, pi);
                if o.live[si][pi] {
                    for w in 1..=o.windows {
                        let window = pod_window(o, si, pi, w, &mut results[si][pi], &mut profiles);
                        rec.windows.push(window);
                    }
                }
                rec
            })
            .collect();
        records.push(SideRecord {
            side: side.side.clone(),
            source: SideSource::Live,
            targets: side.targets.clone(),
            pods,
            kubernetes: None,
        });
    }
    (records, profiles)
}

/// A pod's record before its windows: its reachability check, and why it took no part.
fn pod_record(o: &Outcomes<'_>, si: usize, pi: usize) -> PodRecord {
    let pod = &o.sides[si].pods[pi];
    let checked = &o.preflight[si][pi];
    let (pre, (probe_kind, probe_path)) = (&checked.outcome, &checked.probe);
    PodRecord {
        name: pod.name.clone(),
        base_url: pod.base_url.to_string(),
        preflight: o.timeline.request(
            *probe_kind,
            &pod.url(probe_path),
            pre.start.map(|i| o.timeline.ms(i)).unwrap_or(0.0),
            pre,
        ),
        absent: checked.absent.clone(),
        error: (!o.live[si][pi]).then(|| {
            format!(
                "{}{}: {}",
                pod.base_url,
                probe_path,
                pre.error.as_deref().unwrap_or("not checked")
            )
        }),
        windows: Vec::new(),
        kubernetes: None,
    }
}

/// One window of one pod: its requests' records, the profiles they brought (moved into
/// `profiles`) and when the window started for that pod.
fn pod_window(
    o: &Outcomes<'_>,
    si: usize,
    pi: usize,
    w: u32,
    results: &mut [Option<Outcome>],
    profiles: &mut Vec<CapturedProfile>,
) -> PodWindow {
    let (side, pod) = (&o.sides[si], &o.sides[si].pods[pi]);
    let mut window = PodWindow {
        window: w,
        start_ms: None,
        requests: Vec::new(),
    };
    for (ri, r) in o.requests.iter().enumerate().filter(|(_, r)| r.window == w) {
        let nominal_ms = r.at.as_secs_f64() * 1e3;
        let url = pod.url(&r.path);
        let rec = match results[ri].take() {
            Some(mut outcome) => {
                let planned_ms = outcome.planned.map_or(nominal_ms, |i| o.timeline.ms(i));
                let mut rec = o.timeline.request(r.kind, &url, planned_ms, &outcome);
                if let Some((bytes, profile)) = outcome.profile.take() {
                    rec.file = Some(archive_path(&side.side, &pod.name, r.kind, w));
                    profiles.push(CapturedProfile {
                        side: side.side.clone(),
                        pod: pod.name.clone(),
                        kind: r.kind,
                        window: w,
                        bytes,
                        profile,
                    });
                }
                rec
            }
            None => RequestRecord {
                error: Some(if o.interrupted {
                    "interrupted".to_owned()
                } else {
                    "the request task ended unexpectedly".to_owned()
                }),
                ..RequestRecord::planned(r.kind, url.to_string(), nominal_ms)
            },
        };
        window.requests.push(rec);
    }
    window.start_ms = window_anchor(&window.requests, o.requests, w);
    window
}

/// When a pod's window started: the latest start among its requests covering the window (the
/// window is under way once all of them run; a CPU profile waiting for the previous one
/// counts), or among its snapshots when only snapshots were asked for.
fn window_anchor(records: &[RequestRecord], plan: &[PlannedRequest], window: u32) -> Option<f64> {
    let phases: Vec<Phase> = plan
        .iter()
        .filter(|r| r.window == window)
        .map(|r| r.phase)
        .collect();
    let latest = |phase: Phase| {
        records
            .iter()
            .zip(&phases)
            .filter(|(_, p)| **p == phase)
            .filter_map(|(r, _)| r.start_ms)
            .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.max(s))))
    };
    if phases.contains(&Phase::Window) {
        latest(Phase::Window)
    } else {
        latest(Phase::Snapshot)
    }
}

//! The capture engine: a reachability check, then window after window started on every pod of
//! every side at the same instant, with retries, timeouts and the one-CPU-profile-per-process
//! rule.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::{Client, Url};
use tokio::sync::{watch, Mutex, RwLock};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::profile::{DecodeOptions, ProfileKind};

use super::endpoints::SideTargets;

use super::captured::{archive_path, Capture};
use super::plan::{
    format_duration, CapturePlan, Phase, PlannedRequest, WINDOW_ATTEMPTS, WINDOW_BACKOFF,
};
use super::preflight::{absent_everywhere, check_pods, Preflight};
use super::progress::{NoProgress, Progress};
use super::record::{self, Outcomes, Timeline};
use super::request::{cancelled, request, Outcome, Retry, Shared};
use super::CaptureError;

/// How long before the first window the engine plans it, so every request task is waiting on
/// its timer when the instant comes.
const LEAD: Duration = Duration::from_millis(100);

/// A way of reaching pods whose connections take long to open (a Kubernetes port-forward), and
/// that can open them ahead so each request reaches its pod at its planned instant.
///
/// The engine says what it will ask for and when; the transport decides whether opening ahead
/// is worth it (not when connections open in milliseconds: an idle connection is a goroutine
/// in the target, which goroutine profiles count).
pub trait ConnectionWarmer: Send + Sync {
    /// How long before its first window the capture should start, so every pod's connections
    /// can be opened ahead (zero when they open quickly).
    fn lead(&self) -> Duration;
    /// `count` requests to the pod at `base_url` will start at `at`.
    fn expect(&self, base_url: &Url, count: usize, at: std::time::Instant);
}

/// Everything the engine needs besides the plan and the targets.
#[derive(Clone)]
pub struct CaptureOptions {
    /// Bounds for decoding each body (every body is decoded to check it is a profile).
    pub decode_limits: DecodeOptions,
    /// Receives progress events.
    pub progress: Arc<dyn Progress>,
    /// Becomes `true` to stop the capture early (a stop signal); what was captured is kept.
    pub cancel: Option<watch::Receiver<bool>>,
    /// A directory each profile is written to as soon as it is checked, at
    /// [`CapturedProfile::relative_path`] under it, so that a run killed outright keeps them.
    pub spool: Option<PathBuf>,
    /// Opens connections ahead of the requests, where the transport needs it.
    pub warmer: Option<Arc<dyn ConnectionWarmer>>,
}

impl std::fmt::Debug for CaptureOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureOptions")
            .field("decode_limits", &self.decode_limits)
            .field("cancel", &self.cancel.is_some())
            .field("spool", &self.spool)
            .field("warmer", &self.warmer.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for CaptureOptions {
    fn default() -> Self {
        CaptureOptions {
            decode_limits: DecodeOptions::default(),
            progress: Arc::new(NoProgress),
            cancel: None,
            spool: None,
            warmer: None,
        }
    }
}

/// Where a request belongs: side, pod, and index in the plan's request list.
type Key = (usize, usize, usize);

/// Captures every side's pods according to the plan.
///
/// First each pod is checked (a goroutine snapshot, with retries); pods that fail take no part.
/// When a side has no reachable pod, no window runs. Otherwise each window starts on every pod
/// at once, `W + gap` after the previous one, or up to [`CapturePlan::late_limit`] later while
/// a pod has not answered the previous window (so the pods stay matched). Per pod, a CPU
/// profile starts only after the previous one has been answered (Go serves one at a time),
/// and a request is retried only while it can still start within the late limit of its
/// window's start. Nothing here waits without a deadline. Failures are recorded in the
/// manifest, never returned as errors: the caller decides with [`Capture::side_profiles`]
/// whether enough was captured.
pub async fn capture(
    plan: &CapturePlan,
    sides: &[SideTargets],
    options: CaptureOptions,
) -> Result<Capture, CaptureError> {
    let client = http_client(plan)?;
    // A sender kept alive for the whole run when the caller gave no cancellation.
    let (_never_tx, never_rx) = watch::channel(false);
    let shared = Shared {
        client,
        limits: options.decode_limits,
        max_body: plan.max_body_bytes,
        cancel: options.cancel.clone().unwrap_or(never_rx),
        spool: options.spool.clone().map(Arc::new),
    };
    let progress = options.progress.clone();

    // Reachability check, all pods at once.
    let pod_count: usize = sides.iter().map(|s| s.pods.len()).sum();
    tracing::info!(
        "checking {pod_count} pod{} ({})",
        if pod_count == 1 { "" } else { "s" },
        sides
            .iter()
            .map(|s| format!("{} {}", s.side, s.pods.len()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let preflight = check_pods(&shared, sides, plan).await;
    let mut interrupted = *shared.cancel.borrow();
    let mut warnings = Vec::new();
    let live = took_part(sides, &preflight);
    let unreachable: Vec<&str> = sides
        .iter()
        .zip(&live)
        .filter(|(_, flags)| !flags.iter().any(|ok| *ok))
        .map(|(s, _)| s.side.as_str())
        .collect();
    let absent = absent_everywhere(&preflight, &live, &plan.kinds);
    let pruned;
    let plan = match without_absent(plan, &absent) {
        Some((p, warning)) => {
            warnings.push(warning);
            pruned = p;
            &pruned
        }
        None => plan,
    };
    let run_windows = unreachable.is_empty() && !interrupted;
    if !unreachable.is_empty() {
        warnings.push(format!(
            "no window was captured: no pod of {} could be reached",
            unreachable.join(" or ")
        ));
    }

    // Time for connections that open slowly to be opened ahead of the first window.
    let lead = LEAD.max(
        options
            .warmer
            .as_ref()
            .map_or(Duration::ZERO, |w| w.lead())
            .min(plan.late_limit() * 4),
    );
    let t0 = Instant::now() + lead;
    let wall0 = SystemTime::now() + lead;
    let requests = plan.requests();
    let mut results: Vec<Vec<Vec<Option<Outcome>>>> = sides
        .iter()
        .map(|s| {
            s.pods
                .iter()
                .map(|_| requests.iter().map(|_| None).collect())
                .collect()
        })
        .collect();

    let mut window_starts = Vec::new();
    if run_windows {
        let live_pods = live.iter().flatten().filter(|ok| **ok).count();
        progress.started((live_pods * requests.len()) as u64, live_pods, plan.windows);
        tracing::info!(
            "capturing {} window{} of {}s from {live_pods} pod{} ({}), about {}",
            plan.windows,
            if plan.windows == 1 { "" } else { "s" },
            plan.window_seconds,
            if live_pods == 1 { "" } else { "s" },
            plan.kinds
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(","),
            format_duration(plan.total())
        );
        let (stopped, started) = run(
            plan,
            sides,
            &live,
            &requests,
            &shared,
            options.warmer.as_deref(),
            &*progress,
            t0,
            &mut results,
        )
        .await;
        interrupted |= stopped;
        window_starts = started;
    }
    progress.finished();

    Ok(record::capture(Outcomes {
        plan,
        sides,
        requests: &requests,
        preflight: &preflight,
        live: &live,
        results,
        windows: if run_windows { plan.windows } else { 0 },
        window_starts,
        interrupted,
        warnings,
        timeline: Timeline { t0, wall0 },
    }))
}

/// [side][pod]: whether the pod passed the reachability check and takes part.
fn took_part(sides: &[SideTargets], preflight: &[Vec<Preflight>]) -> Vec<Vec<bool>> {
    sides
        .iter()
        .zip(preflight)
        .map(|(side, checks)| {
            side.pods
                .iter()
                .zip(checks)
                .map(|(pod, checked)| {
                    let o = &checked.outcome;
                    let ok = o.error.is_none() && o.attempts > 0;
                    if !ok {
                        // Reported once with the warnings at the end; the details at debug level.
                        tracing::debug!(
                            "{} pod {}: {}{}: {}",
                            side.side,
                            pod.name,
                            pod.base_url,
                            &checked.probe.1,
                            o.error.as_deref().unwrap_or("not checked")
                        );
                    }
                    ok
                })
                .collect()
        })
        .collect()
}

/// The plan without the kinds no pod serves, and the warning that says so; `None` when
/// nothing is absent or nothing would be left.
fn without_absent(plan: &CapturePlan, absent: &[ProfileKind]) -> Option<(CapturePlan, String)> {
    if absent.is_empty() {
        return None;
    }
    let p = plan.without(absent)?;
    let names =
        |ks: &[ProfileKind], sep: &str| ks.iter().map(|k| k.name()).collect::<Vec<_>>().join(sep);
    let warning = format!(
        "not served by any pod (HTTP 404), so not captured: {}; captured: {} (a runtime other than Go serves fewer profiles; --profiles {} asks for these alone)",
        names(absent, ", "),
        names(&p.kinds, ", "),
        names(&p.kinds, ",")
    );
    Some((p, warning))
}

/// The HTTP client every request of a capture shares.
fn http_client(plan: &CapturePlan) -> Result<Client, CaptureError> {
    Client::builder()
        .no_proxy()
        // No idle connections kept: each connection the gate holds open is a goroutine in the
        // target, and how many a pool keeps depends on timing, so goroutine snapshots would
        // count a varying number of the gate's own (a 10% rule on a small service is one or
        // two goroutines). A connection per request costs a handshake per profile, nothing.
        .pool_max_idle_per_host(0)
        .connect_timeout(plan.timeout_margin.min(Duration::from_secs(5)))
        .user_agent(concat!("profile-gate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| CaptureError::Client(e.to_string()))
}

/// What a live pod shares between its request tasks.
struct PodLanes {
    side: usize,
    pod: usize,
    /// One CPU profile at a time per process: held from a CPU request's first attempt until
    /// its response has ended.
    cpu: Arc<Mutex<()>>,
    /// Per window: the profiles covering it hold it shared; its snapshots take it exclusively,
    /// so they wait until the window's profiles are answered (and do not count the profiling
    /// handlers' goroutines) and run one at a time.
    stages: Vec<Arc<RwLock<()>>>,
}

/// Runs the windows; returns whether the run was interrupted, and when each window started.
///
/// Window `w` starts on every live pod at once: at its planned instant (`W + gap` after the
/// previous window's start), or later, once every pod has answered the previous window's
/// profiles, but never more than [`CapturePlan::late_limit`] later. So all pods start together
/// even when a loaded process answers its CPU profile late, and the CPU rule rarely has to
/// skip a profile.
#[allow(clippy::too_many_arguments)]
async fn run(
    plan: &CapturePlan,
    sides: &[SideTargets],
    live: &[Vec<bool>],
    requests: &[PlannedRequest],
    shared: &Shared,
    warmer: Option<&dyn ConnectionWarmer>,
    progress: &dyn Progress,
    t0: Instant,
    results: &mut [Vec<Vec<Option<Outcome>>>],
) -> (bool, Vec<Option<Instant>>) {
    let late_limit = plan.late_limit();
    let windows = plan.windows;
    let mut tasks = JoinSet::new();
    let mut keys: HashMap<tokio::task::Id, Key> = HashMap::new();
    let mut remaining: Vec<usize> = vec![0; windows as usize + 1];
    let mut started: Vec<Option<Instant>> = vec![None; windows as usize + 1];
    let pods: Vec<PodLanes> = sides
        .iter()
        .enumerate()
        .flat_map(|(si, side)| (0..side.pods.len()).map(move |pi| (si, pi)))
        .filter(|(si, pi)| live[*si][*pi])
        .map(|(side, pod)| PodLanes {
            side,
            pod,
            cpu: Arc::new(Mutex::new(())),
            stages: (0..=windows).map(|_| Arc::new(RwLock::new(()))).collect(),
        })
        .collect();

    // Tells the transport how many requests of a phase each pod will make in a window, and when.
    let announce = |window: u32, phase: Phase, at: Instant| {
        let Some(warmer) = warmer else { return };
        let count = requests
            .iter()
            .filter(|r| r.window == window && r.phase == phase)
            .count();
        for lanes in &pods {
            let pod = &sides[lanes.side].pods[lanes.pod];
            warmer.expect(&pod.base_url, count, at.into_std());
        }
    };
    announce(1, Phase::Window, t0);

    let mut next = 1u32;
    let mut next_planned = t0;
    // Profiles of the last window started that are still running.
    let mut pending = 0usize;
    let mut interrupted = false;
    // One warning per pod and reason; repeats (a dead pod fails every request) go to debug.
    let mut warned: HashSet<(usize, usize, String)> = HashSet::new();
    loop {
        let releasing = next <= windows && !interrupted;
        if !releasing && tasks.is_empty() {
            break;
        }
        let release_at = if pending == 0 {
            next_planned
        } else {
            next_planned + late_limit
        };
        tokio::select! {
            biased;
            _ = cancelled(shared.cancel.clone()), if !interrupted => {
                interrupted = true;
                tracing::warn!("interrupted: stopping the capture, keeping what was captured");
            }
            _ = tokio::time::sleep_until(release_at), if releasing => {
                let now = Instant::now();
                if pending > 0 {
                    tracing::debug!(
                        "window {next}: {pending} profile(s) of window {} still running; starting anyway",
                        next - 1
                    );
                }
                started[next as usize] = Some(now);
                pending = 0;
                for lanes in &pods {
                    let pod = &sides[lanes.side].pods[lanes.pod];
                    for (ri, r) in requests.iter().enumerate().filter(|(_, r)| r.window == next) {
                        remaining[next as usize] += 1;
                        let planned = match r.phase {
                            Phase::Window => {
                                pending += 1;
                                now
                            }
                            Phase::Snapshot => now + plan.window(),
                        };
                        let work = request_task(
                            shared.clone(),
                            pod.url(&r.path),
                            r,
                            planned,
                            late_limit,
                            lanes.cpu.clone(),
                            lanes.stages[next as usize].clone(),
                        );
                        let handle = tasks.spawn(work);
                        keys.insert(handle.id(), (lanes.side, lanes.pod, ri));
                    }
                }
                let late = signed_ms(now, t0 + plan.window_start(next));
                tracing::info!(
                    "window {next}/{windows} started{}",
                    if late >= 10.0 { format!(" ({late:.0} ms after the plan)") } else { String::new() }
                );
                progress.window_started(next, windows);
                announce(next, Phase::Snapshot, now + plan.window());
                if next < windows {
                    announce(next + 1, Phase::Window, now + plan.window() + plan.gap);
                }
                next_planned = now + plan.window() + plan.gap;
                next += 1;
            }
            joined = tasks.join_next_with_id(), if !tasks.is_empty() => {
                let Some(joined) = joined else { continue };
                let (id, outcome) = match joined {
                    Ok((id, o)) => (id, o),
                    Err(e) => (e.id(), Outcome::failed(format!("the request task failed: {e}"))),
                };
                let Some(&(si, pi, ri)) = keys.get(&id) else { continue };
                let (side, pod, r) = (&sides[si], &sides[si].pods[pi], &requests[ri]);
                if r.phase == Phase::Window && r.window + 1 == next {
                    pending = pending.saturating_sub(1);
                }
                progress.request_done(outcome.bytes, outcome.profile.is_some());
                let what = format!("{} pod {}: {} window {}", side.side, pod.name, r.kind, r.window);
                match &outcome.error {
                    None => tracing::debug!(
                        "{what}: HTTP {} {} bytes, started {:+.1} ms from plan, took {}",
                        outcome.status.unwrap_or(0),
                        outcome.bytes,
                        outcome.start.zip(outcome.planned).map_or(0.0, |(s, p)| signed_ms(s, p)),
                        outcome.start.zip(outcome.end).map_or_else(String::new, |(s, e)| format_duration(e - s)),
                    ),
                    Some(e) => {
                        let reason = e.lines().next().unwrap_or("").to_owned();
                        if warned.insert((si, pi, reason)) {
                            tracing::warn!("{what}: {}: {e}", pod.url(&r.path));
                        } else {
                            tracing::debug!("{what}: {e}");
                        }
                    }
                }
                if let (Some(dir), Some((bytes, _))) = (&shared.spool, &outcome.profile) {
                    spool(dir, &archive_path(&side.side, &pod.name, r.kind, r.window), bytes);
                }
                results[si][pi][ri] = Some(outcome);
                let w = r.window as usize;
                remaining[w] -= 1;
                if remaining[w] == 0 {
                    log_window_done(plan, requests, results, r.window, t0);
                }
            }
            else => break,
        }
    }
    (interrupted, started)
}

/// One request of one pod in one window, from its planned instant to its outcome.
fn request_task(
    shared: Shared,
    url: Url,
    r: &PlannedRequest,
    planned: Instant,
    late_limit: Duration,
    cpu: Arc<Mutex<()>>,
    stage: Arc<RwLock<()>>,
) -> impl std::future::Future<Output = Outcome> + Send + 'static {
    let (kind, phase, timeout) = (r.kind, r.phase, r.timeout);
    let cancel = shared.cancel.clone();
    let work = async move {
        tokio::time::sleep_until(planned).await;
        let late = planned + late_limit;
        let mut _window = None;
        let mut _snapshot = None;
        let mut _turn = None;
        let until = match phase {
            Phase::Window => {
                _window = Some(stage.read_owned().await);
                if kind == ProfileKind::Cpu {
                    match tokio::time::timeout_at(late, cpu.lock_owned()).await {
                        Ok(guard) => _turn = Some(guard),
                        Err(_) => {
                            return Outcome::failed(format!(
                                "skipped: the previous CPU profile of this process had not ended {} after this window's start (a process serves one CPU profile at a time)",
                                format_duration(late_limit)
                            ))
                        }
                    }
                }
                late
            }
            Phase::Snapshot => {
                // Waits a bounded time: a stalled window does not stop its snapshots.
                _snapshot = tokio::time::timeout_at(late, stage.write_owned())
                    .await
                    .ok();
                Instant::now() + late_limit
            }
        };
        let retry = Retry {
            attempts: WINDOW_ATTEMPTS,
            backoff: WINDOW_BACKOFF,
            until: Some(until),
        };
        request(&shared, &url, kind, timeout, retry).await
    };
    async move {
        let mut outcome = tokio::select! {
            o = work => o,
            _ = cancelled(cancel) => Outcome::failed("interrupted"),
        };
        outcome.planned = Some(planned);
        outcome
    }
}

/// Writes one checked profile under the spool directory (a temporary name, then renamed, so a
/// file there is always whole). A failure is a warning: the profile stays in memory and is
/// written again with the manifest, where a failure is an error.
fn spool(dir: &std::path::Path, relative: &str, bytes: &[u8]) {
    let path = dir.join(relative);
    let write = || -> std::io::Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = path.with_extension("gz.partial");
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &path)
    };
    if let Err(e) = write() {
        tracing::warn!(
            "{}: cannot write the profile as it arrives ({e}); it is kept in memory",
            path.display()
        );
    }
}

/// `a - b` in milliseconds, signed.
fn signed_ms(a: Instant, b: Instant) -> f64 {
    if a >= b {
        (a - b).as_secs_f64() * 1e3
    } else {
        -((b - a).as_secs_f64() * 1e3)
    }
}

/// One log line when every request of a window has ended: profiles, bytes, start skew.
fn log_window_done(
    plan: &CapturePlan,
    requests: &[PlannedRequest],
    results: &[Vec<Vec<Option<Outcome>>>],
    window: u32,
    t0: Instant,
) {
    let has_window_phase = requests
        .iter()
        .any(|r| r.window == window && r.phase == Phase::Window);
    let (mut ok, mut total, mut bytes) = (0usize, 0usize, 0u64);
    let mut anchors = Vec::new();
    for pod in results.iter().flatten() {
        let mut anchor: Option<f64> = None;
        let mut ran = false;
        for (r, o) in requests.iter().zip(pod) {
            let Some(o) = o.as_ref().filter(|_| r.window == window) else {
                continue;
            };
            ran = true;
            total += 1;
            ok += usize::from(o.profile.is_some());
            bytes += o.bytes;
            let counts = !has_window_phase || r.phase == Phase::Window;
            if let (true, Some(s)) = (counts, o.start) {
                let s = signed_ms(s, t0);
                anchor = Some(anchor.map_or(s, |a: f64| a.max(s)));
            }
        }
        if let (true, Some(a)) = (ran, anchor) {
            anchors.push(a);
        }
    }
    let skew = match anchors.len() {
        0 | 1 => String::new(),
        _ => {
            let max = anchors.iter().copied().fold(f64::MIN, f64::max);
            let min = anchors.iter().copied().fold(f64::MAX, f64::min);
            format!(", start skew {:.1} ms", max - min)
        }
    };
    tracing::info!(
        "window {window}/{} done: {ok}/{total} profiles, {:.1} MiB{skew}",
        plan.windows,
        bytes as f64 / (1u64 << 20) as f64
    );
}

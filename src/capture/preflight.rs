//! The reachability check before the first window: which pods answer, and which planned
//! kinds their runtime does not serve (Node.js has no goroutine, allocs, mutex or block
//! profile), so that those are left out instead of failing every request.

use std::time::Duration;

use tokio::task::JoinSet;

use crate::profile::ProfileKind;

use super::endpoints::{PodTarget, SideTargets};
use super::plan::{preflight_probes, CapturePlan, PREFLIGHT_ATTEMPTS, PREFLIGHT_BACKOFF};
use super::request::{cancelled, request, Outcome, Retry, Shared};

/// Checks every pod of every side at once: `[side][pod]`.
pub(super) async fn check_pods(
    shared: &Shared,
    sides: &[SideTargets],
    plan: &CapturePlan,
) -> Vec<Vec<Preflight>> {
    let probes = preflight_probes(plan);
    let mut preflight: Vec<Vec<Preflight>> = sides
        .iter()
        .map(|s| s.pods.iter().map(|_| Preflight::new(&probes[0])).collect())
        .collect();
    let mut checks = JoinSet::new();
    for (si, side) in sides.iter().enumerate() {
        for (pi, pod) in side.pods.iter().enumerate() {
            let shared = shared.clone();
            let pod = pod.clone();
            let probes = probes.clone();
            let timeout = plan.snapshot_timeout();
            checks.spawn(async move {
                let work = check_pod(&shared, &pod, &probes, timeout);
                let checked = tokio::select! {
                    c = work => c,
                    _ = cancelled(shared.cancel.clone()) => Preflight {
                        outcome: Outcome::failed("interrupted"),
                        ..Preflight::new(&probes[0])
                    },
                };
                (si, pi, checked)
            });
        }
    }
    while let Some(joined) = checks.join_next().await {
        match joined {
            Ok((si, pi, mut checked)) => {
                checked.outcome.profile = None;
                preflight[si][pi] = checked;
            }
            Err(e) => tracing::error!("a reachability check failed unexpectedly: {e}"),
        }
    }
    preflight
}

/// The planned kinds that every reachable pod (`live[side][pod]`) answered 404 for: the
/// runtime does not have them. A kind only some pods lack stays planned, and their missing
/// windows say why.
pub(super) fn absent_everywhere(
    preflight: &[Vec<Preflight>],
    live: &[Vec<bool>],
    kinds: &[ProfileKind],
) -> Vec<ProfileKind> {
    let reachable: Vec<&Preflight> = preflight
        .iter()
        .zip(live)
        .flat_map(|(pods, flags)| {
            pods.iter()
                .zip(flags)
                .filter(|(_, ok)| **ok)
                .map(|(p, _)| p)
        })
        .collect();
    kinds
        .iter()
        .copied()
        .filter(|k| !reachable.is_empty() && reachable.iter().all(|p| p.absent.contains(k)))
        .collect()
}

/// A pod's reachability check: the probe that decided it, its outcome, and the kinds the pod
/// answered 404 for.
pub(super) struct Preflight {
    pub(super) probe: (ProfileKind, String),
    pub(super) outcome: Outcome,
    pub(super) absent: Vec<ProfileKind>,
}

impl Preflight {
    fn new((kind, path): &(ProfileKind, String)) -> Preflight {
        Preflight {
            probe: (*kind, path.clone()),
            outcome: Outcome::default(),
            absent: Vec::new(),
        }
    }
}

/// Checks one pod: the first probe that answers makes it reachable. A pod that answered the
/// first at once is a Go pod and nothing more is asked; one that answered 404 to some
/// serves fewer kinds, and each remaining probe is asked once so that the kinds it lacks are
/// known before the first window.
async fn check_pod(
    shared: &Shared,
    pod: &PodTarget,
    probes: &[(ProfileKind, String)],
    timeout: Duration,
) -> Preflight {
    let retry = Retry {
        attempts: PREFLIGHT_ATTEMPTS,
        backoff: PREFLIGHT_BACKOFF,
        until: None,
    };
    let mut answered: Option<Preflight> = None;
    let mut absent = Vec::new();
    let mut last = None;
    for (kind, path) in probes {
        let kind = *kind;
        // A pod that answered its first probe serves what Go does; and the one-second CPU
        // probe is for pods that answered nothing else.
        if answered.is_some() && (absent.is_empty() || kind == ProfileKind::Cpu) {
            break;
        }
        let retry = if answered.is_some() {
            Retry {
                attempts: 1,
                ..retry
            }
        } else {
            retry
        };
        // The CPU probe (only CPU planned) profiles for a second before it answers.
        let timeout = if kind == ProfileKind::Cpu {
            timeout + Duration::from_secs(1)
        } else {
            timeout
        };
        let outcome = request(shared, &pod.url(path), kind, timeout, retry).await;
        if outcome.status == Some(404) {
            absent.push(kind);
            last = Some(Preflight {
                probe: (kind, path.clone()),
                outcome,
                absent: Vec::new(),
            });
            continue;
        }
        if answered.is_none() {
            let failed = outcome.error.is_some();
            answered = Some(Preflight {
                probe: (kind, path.clone()),
                outcome,
                absent: Vec::new(),
            });
            if failed {
                // Unreachable, or not a pprof endpoint: the reason is this answer.
                break;
            }
        }
    }
    let mut checked = answered
        .or(last)
        .unwrap_or_else(|| Preflight::new(&probes[0]));
    absent.sort_by_key(|k| ProfileKind::ALL.iter().position(|x| x == k));
    checked.absent = absent;
    checked
}

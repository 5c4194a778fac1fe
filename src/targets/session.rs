//! The Kubernetes part of a run: resolve each side's targets to pods, check that a
//! port-forward opens to each, bridge each pod to a local listener, and hand the capture engine
//! plain `http://127.0.0.1:PORT` URLs. After the capture, [`KubeSession::finish`] reads every
//! pod again and returns the run's Kubernetes record: a pod restarted (or replaced) during the
//! run is marked to be dropped from the comparison, with a warning, since its cumulative
//! counters reset; and each pod's node, image and restart counts.
//!
//! The forwards run on a runtime of their own (one worker thread), so they serve whichever
//! runtime the capture engine runs on, and they all end when the session is dropped.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use reqwest::Url;

use crate::capture::endpoints::{
    first_free, pprof_base, safe_name, PodTarget, SideTargets, MAX_NAME_LEN,
};
use crate::capture::manifest::{
    KubePodRecord, KubeRunRecord, KubeSideRecord, KubeSideRun, KubeTargetRecord,
};
use crate::capture::ConnectionWarmer;

use super::cluster::{Cluster, KubeOptions, Resolved};
use super::forward::{self, PodForward};
use super::select::{fresh_seed, restart_count};
use super::{KubeRef, TargetError};

/// A request that waited this long (ms) for its port-forward is warned about: it reached its
/// pod that much after its window's start.
const SLOW_UPGRADE_MS: u64 = 1000;

/// One side's Kubernetes targets: `(argument as given, parsed target)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeSideSpec {
    /// The side's name (`baseline`, `candidate`).
    pub side: String,
    /// Its targets.
    pub targets: Vec<(String, KubeRef)>,
}

/// The folder of a pod's profiles within its side: the pod's name made one safe path
/// component (the names come from the apiserver, which may be hostile: `..`, `/`, NUL);
/// `NAMESPACE.NAME` when two namespaces have pods of one name; numbered (`-2`, `-3`) when two
/// names still meet (`..` and `_..` both become `_..`), so no pod's profiles overwrite
/// another's.
fn pod_dir(namespace: &str, name: &str, taken: &mut HashSet<String>) -> String {
    let mut dir = safe_name(name);
    if taken.contains(&dir) {
        dir = safe_name(&format!("{namespace}.{name}"));
    }
    let stem: String = dir.chars().take(MAX_NAME_LEN - 8).collect();
    first_free(dir, &stem, "", taken)
}

struct SessionSide {
    side: String,
    resolved: Vec<Resolved>,
    /// `(pod directory name, forward)`.
    forwards: Vec<(String, Arc<PodForward>)>,
}

/// The session's forwards as the capture engine sees them: by local address. Weak, so the
/// forwards still close when the session finishes.
struct ForwardWarmer {
    forwards: HashMap<SocketAddr, Weak<PodForward>>,
}

impl ForwardWarmer {
    fn forward(&self, base_url: &Url) -> Option<Arc<PodForward>> {
        let addr = base_url.socket_addrs(|| None).ok()?.into_iter().next()?;
        self.forwards.get(&addr)?.upgrade()
    }
}

impl ConnectionWarmer for ForwardWarmer {
    fn lead(&self) -> Duration {
        self.forwards
            .values()
            .filter_map(Weak::upgrade)
            .map(|f| f.lead())
            .max()
            .unwrap_or(Duration::ZERO)
    }

    fn expect(&self, base_url: &Url, count: usize, at: std::time::Instant) {
        if let Some(f) = self.forward(base_url) {
            f.expect(count, at);
        }
    }
}

/// Live port-forwards for the Kubernetes sides of one run.
pub struct KubeSession {
    runtime: Option<tokio::runtime::Runtime>,
    cluster: Cluster,
    seed: u64,
    max_pods: Option<usize>,
    api_timeout: Duration,
    sides: Vec<SessionSide>,
    warnings: Vec<String>,
}

impl std::fmt::Debug for KubeSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeSession")
            .field("cluster", &self.cluster)
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

impl Drop for KubeSession {
    fn drop(&mut self) {
        for side in &mut self.sides {
            side.forwards.clear();
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_millis(200));
        }
    }
}

impl KubeSession {
    /// Resolves every side, probes a port-forward to each pod, and starts the local
    /// listeners. Returns the session (keep it alive during the capture) and, per side, the
    /// pods as the capture engine takes them.
    ///
    /// Fails when the cluster cannot be used: no configuration (exit 2), unknown object,
    /// forbidden, unreachable apiserver, no Ready pod, or no pod a port-forward reaches.
    pub fn start(
        options: &KubeOptions,
        specs: &[KubeSideSpec],
    ) -> Result<(KubeSession, Vec<SideTargets>), TargetError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("gate-forward")
            .enable_all()
            .build()
            .map_err(|e| {
                TargetError::Forward(format!("cannot start the port-forward runtime: {e}"))
            })?;
        let seed = options.seed.unwrap_or_else(fresh_seed);
        let cluster = runtime.block_on(Cluster::connect(options))?;
        let mut session = KubeSession {
            runtime: None,
            cluster: cluster.clone(),
            seed,
            max_pods: options.max_pods,
            api_timeout: options.api_timeout,
            sides: Vec::new(),
            warnings: Vec::new(),
        };
        let result = runtime.block_on(session.setup(options, specs));
        session.runtime = Some(runtime);
        let targets = result?;
        Ok((session, targets))
    }

    async fn setup(
        &mut self,
        options: &KubeOptions,
        specs: &[KubeSideSpec],
    ) -> Result<Vec<SideTargets>, TargetError> {
        // Resolve everything first: a bad target fails before any forward opens.
        let mut resolved_sides = Vec::with_capacity(specs.len());
        let mut owner: HashMap<(String, String), String> = HashMap::new();
        for spec in specs {
            let mut resolved = Vec::new();
            for (arg, target) in &spec.targets {
                let mut r = self
                    .cluster
                    .resolve(target, &options.port, options.max_pods, self.seed)
                    .await?;
                r.target = arg.clone();
                for pod in &r.pods {
                    let key = (pod.namespace.clone(), pod.name.clone());
                    match owner.get(&key) {
                        Some(side) if *side != spec.side => {
                            return Err(TargetError::Invalid(format!(
                                "pod {} (namespace {}) is both a {side} pod and a {} pod; each side must be its own pods",
                                pod.name, pod.namespace, spec.side
                            )));
                        }
                        _ => {
                            owner.insert(key, spec.side.clone());
                        }
                    }
                }
                tracing::info!(
                    "{} {arg}: {} of {} Ready pod{} ({} matched){}",
                    spec.side,
                    r.pods.len(),
                    r.ready,
                    if r.ready == 1 { "" } else { "s" },
                    r.matched,
                    if r.pods.len() < r.ready {
                        format!(", chosen with --pod-seed {}", self.seed)
                    } else {
                        String::new()
                    }
                );
                resolved.push(r);
            }
            resolved_sides.push(resolved);
        }

        // One probe per pod, all at once: RBAC and reachability before any window.
        let mut probes = tokio::task::JoinSet::new();
        for (si, resolved) in resolved_sides.iter().enumerate() {
            for (ri, r) in resolved.iter().enumerate() {
                for (pi, pod) in r.pods.iter().enumerate() {
                    let cluster = self.cluster.clone();
                    let pod = pod.clone();
                    let timeout = options.upgrade_timeout;
                    probes.spawn(async move {
                        ((si, ri, pi), forward::probe(&cluster, &pod, timeout).await)
                    });
                }
            }
        }
        let mut failed: HashMap<(usize, usize, usize), TargetError> = HashMap::new();
        while let Some(joined) = probes.join_next().await {
            let Ok((key, result)) = joined else { continue };
            if let Err(e) = result {
                if matches!(
                    e,
                    TargetError::Forbidden { .. } | TargetError::Unauthorized(_)
                ) {
                    return Err(e);
                }
                failed.insert(key, e);
            }
        }

        let mut out = Vec::with_capacity(specs.len());
        for (si, (spec, resolved)) in specs.iter().zip(resolved_sides).enumerate() {
            let mut side = SessionSide {
                side: spec.side.clone(),
                resolved: Vec::new(),
                forwards: Vec::new(),
            };
            let mut reasons = Vec::new();
            let mut seen = HashSet::new();
            let mut names: HashSet<String> = HashSet::new();
            for (ri, r) in resolved.iter().enumerate() {
                for (pi, pod) in r.pods.iter().enumerate() {
                    if !seen.insert((pod.namespace.clone(), pod.name.clone())) {
                        continue; // named by two targets of this side
                    }
                    if let Some(e) = failed.remove(&(si, ri, pi)) {
                        let msg = format!("{} pod {} left out: {e}", spec.side, pod.name);
                        tracing::debug!("{msg}");
                        reasons.push(e.to_string());
                        self.warnings.push(msg);
                        continue;
                    }
                    let dir = pod_dir(&pod.namespace, &pod.name, &mut names);
                    let fwd =
                        forward::start(self.cluster.clone(), pod.clone(), options.upgrade_timeout)
                            .await?;
                    side.forwards.push((dir, Arc::new(fwd)));
                }
            }
            side.resolved = resolved;
            if side.forwards.is_empty() {
                return Err(TargetError::Forward(format!(
                    "{}: no pod could be reached through a port-forward: {}",
                    spec.side,
                    reasons.join("; ")
                )));
            }
            let pods = side
                .forwards
                .iter()
                .map(|(dir, f)| {
                    let base_url = pprof_base(&format!("http://{}", f.local))
                        .map_err(|e| TargetError::Forward(e.to_string()))?;
                    Ok(PodTarget {
                        name: dir.clone(),
                        base_url,
                    })
                })
                .collect::<Result<Vec<_>, TargetError>>()?;
            out.push(SideTargets {
                side: spec.side.clone(),
                targets: spec.targets.iter().map(|(a, _)| a.clone()).collect(),
                pods,
            });
            self.sides.push(side);
        }
        Ok(out)
    }

    /// What lets the capture engine have port-forwards opened ahead of its requests.
    pub fn warmer(&self) -> Arc<dyn ConnectionWarmer> {
        let forwards = self
            .sides
            .iter()
            .flat_map(|s| &s.forwards)
            .map(|(_, f)| (f.local, Arc::downgrade(f)))
            .collect();
        Arc::new(ForwardWarmer { forwards })
    }

    /// The seed used for the pod choice.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Local addresses, one line per pod: `side pod -> http://127.0.0.1:PORT/debug/pprof/`.
    pub fn describe_forwards(&self) -> Vec<String> {
        self.sides
            .iter()
            .flat_map(|s| {
                s.forwards.iter().map(move |(dir, f)| {
                    format!(
                        "{} pod {dir} (node {}, port {}): http://{}/debug/pprof/",
                        s.side,
                        f.pod.node.as_deref().unwrap_or("?"),
                        f.pod.port,
                        f.local
                    )
                })
            })
            .collect()
    }

    /// Keeps the forwards open until Ctrl-C, or for `limit` when given.
    pub fn wait(&self, limit: Option<Duration>) {
        let Some(runtime) = self.runtime.as_ref() else {
            return;
        };
        runtime.block_on(async {
            let limit = limit.unwrap_or(Duration::from_secs(u64::from(u32::MAX)));
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = tokio::time::sleep(limit) => {}
            }
        });
    }

    /// After the capture: reads every pod again, closes the forwards, and returns what the run
    /// should record: each pod's facts (a pod restarted or replaced during the run marked
    /// `dropped`, with a warning) for [`crate::capture::Capture::add_kubernetes`]. The session
    /// edits nothing of the capture itself.
    pub fn finish(mut self) -> KubeRunRecord {
        let Some(runtime) = self.runtime.take() else {
            return KubeRunRecord::default();
        };
        let mut sides = Vec::with_capacity(self.sides.len());
        let cluster = self.cluster.clone();
        let timeout = self.api_timeout;
        let mut warnings = std::mem::take(&mut self.warnings);
        for side in &self.sides {
            // Every pod at once, each under the API deadline.
            let ends: Vec<Result<Option<k8s_openapi::api::core::v1::Pod>, TargetError>> = runtime
                .block_on(async {
                    let mut checks = tokio::task::JoinSet::new();
                    for (i, (_, f)) in side.forwards.iter().enumerate() {
                        let cluster = cluster.clone();
                        let (ns, name) = (f.pod.namespace.clone(), f.pod.name.clone());
                        checks.spawn(async move {
                            let now = tokio::time::timeout(timeout, cluster.current(&ns, &name))
                                .await
                                .unwrap_or_else(|_| {
                                    Err(TargetError::Api("no answer from the apiserver".to_owned()))
                                });
                            (i, now)
                        });
                    }
                    let mut out: Vec<Result<Option<k8s_openapi::api::core::v1::Pod>, TargetError>> =
                        (0..side.forwards.len())
                            .map(|_| Err(TargetError::Api("not checked".to_owned())))
                            .collect();
                    while let Some(joined) = checks.join_next().await {
                        if let Ok((i, now)) = joined {
                            out[i] = now;
                        }
                    }
                    out
                });
            let side_record = KubeSideRecord {
                server: cluster.server().to_owned(),
                max_pods: self.max_pods,
                seed: self.seed,
                targets: side
                    .resolved
                    .iter()
                    .map(|r| KubeTargetRecord {
                        target: r.target.clone(),
                        namespace: r.namespace.clone(),
                        selector: r.selector.clone(),
                        matched: r.matched,
                        ready: r.ready,
                        chosen: r.pods.iter().map(|p| p.name.clone()).collect(),
                    })
                    .collect(),
            };
            let mut pods = Vec::with_capacity(side.forwards.len());
            for ((dir, f), now) in side.forwards.iter().zip(ends) {
                let pod = &f.pod;
                let (restarts_at_end, dropped) = match now {
                    Ok(Some(p)) => {
                        let end = restart_count(&p);
                        let replaced = pod.uid.is_some() && p.metadata.uid != pod.uid;
                        let dropped = if replaced {
                            Some("the pod was replaced during the run (another UID under the same name)".to_owned())
                        } else if end != pod.restarts {
                            Some(format!(
                                "restarted during the run (container restarts {} at the start, {end} at the end)",
                                pod.restarts
                            ))
                        } else {
                            None
                        };
                        (Some(end), dropped)
                    }
                    Ok(None) => (None, Some("the pod was deleted during the run".to_owned())),
                    Err(e) => {
                        warnings.push(format!(
                            "{} pod {dir}: could not check for restarts after the run: {e}",
                            side.side
                        ));
                        (None, None)
                    }
                };
                if let Some(why) = &dropped {
                    warnings.push(format!(
                        "{} pod {dir} {why}: its counters reset, so its profiles are left out of the comparison",
                        side.side
                    ));
                }
                // Slow upgrades are made ahead of the requests; a request that still waited
                // for one reached the pod late, unseen by the start skew.
                let load =
                    |n: &std::sync::atomic::AtomicU64| n.load(std::sync::atomic::Ordering::Relaxed);
                let upgrade_ms_max = load(&f.stats.upgrade_ms_max);
                let waited_ms_max = load(&f.stats.waited_ms_max);
                if waited_ms_max >= SLOW_UPGRADE_MS {
                    warnings.push(format!(
                        "{} pod {dir}: requests waited up to {:.1} s for their port-forward (upgrades took up to {:.1} s), so some of its profiles started that much after the window's start; the start skew (measured at the gate) does not include it",
                        side.side,
                        waited_ms_max as f64 / 1e3,
                        upgrade_ms_max as f64 / 1e3
                    ));
                }
                pods.push((
                    dir.clone(),
                    KubePodRecord {
                        namespace: pod.namespace.clone(),
                        uid: pod.uid.clone(),
                        node: pod.node.clone(),
                        image: pod.image.clone(),
                        port: pod.port,
                        restarts_at_start: pod.restarts,
                        restarts_at_end,
                        forwarded_connections: f
                            .stats
                            .connections
                            .load(std::sync::atomic::Ordering::Relaxed),
                        forward_failures: f
                            .stats
                            .failures
                            .load(std::sync::atomic::Ordering::Relaxed),
                        upgrade_ms_max,
                        opened_ahead: load(&f.stats.opened_ahead),
                        waited_ms_max,
                        dropped,
                    },
                ));
            }
            sides.push(KubeSideRun {
                side: side.side.clone(),
                record: side_record,
                pods,
            });
        }
        for side in &mut self.sides {
            side.forwards.clear();
        }
        runtime.shutdown_timeout(Duration::from_millis(200));
        KubeRunRecord { sides, warnings }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::endpoints::check_name;

    #[test]
    fn pod_folders_are_safe_and_never_shared() {
        let mut taken = HashSet::new();
        let dirs: Vec<String> = [
            ("default", ".."),
            ("default", "_.."),
            ("default", "../../etc/passwd"),
            ("default", "/abs"),
            ("default", "x\0y"),
            ("default", "web-1"),
            ("other", "web-1"),
            ("default", "default.web-1"),
            ("default", &"p".repeat(300)),
            ("other", &"p".repeat(300)),
        ]
        .iter()
        .map(|(ns, name)| pod_dir(ns, name, &mut taken))
        .collect();
        for d in &dirs {
            assert!(check_name(d).is_ok(), "{d:?}");
        }
        let unique: HashSet<&String> = dirs.iter().collect();
        assert_eq!(unique.len(), dirs.len(), "{dirs:?}");
        assert_eq!(dirs[0], "_..");
        assert_eq!(dirs[1], "default._..");
        assert_eq!(dirs[5], "web-1");
        assert_eq!(dirs[6], "other.web-1");
        assert_eq!(dirs[7], "default.web-1");
    }
}

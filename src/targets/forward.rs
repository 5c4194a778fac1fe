//! Port-forwards bridged to local listeners: one listener on `127.0.0.1:0` per pod, and for
//! every TCP connection accepted there, one websocket port-forward (`v4.channel.k8s.io`)
//! through the apiserver to the pod's port. The capture engine only ever sees
//! `http://127.0.0.1:PORT`.
//!
//! An upgrade takes a round trip through the apiserver to the kubelet: milliseconds on a healthy
//! cluster, seconds on a loaded one. When upgrades are slow, a request would reach its pod that
//! much after its window's start, so the forward opens port-forwards ahead of the requests the
//! capture engine announces ([`PodForward::expect`]) and hands them to the connections as they
//! come. When upgrades are quick nothing is opened ahead: an idle forward is an idle connection
//! in the target, a goroutine its goroutine profile would count.
//!
//! kube's `portforward()` has no deadline of its own: every upgrade here runs under one. When
//! a forward cannot be opened, or the pod side reports an error before any byte came back,
//! the local connection is answered with `502 Bad Gateway` and the reason, so the capture
//! engine records a message a person can act on (and, 502 being transient, retries it).
//! `Portforwarder::join()` may report an error after a normal close by the server; that is
//! logged at debug level, never treated as a failure.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::api::Portforwarder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::cluster::{Cluster, ResolvedPod};
use super::TargetError;

/// How long one direction of a bridged connection may outlive the other.
const LINGER: Duration = Duration::from_secs(5);
/// How long to wait for `join()` once both directions are closed.
const JOIN_WAIT: Duration = Duration::from_secs(2);
/// How many failure messages a forward keeps.
const KEEP_ERRORS: usize = 8;
/// Upgrades quicker than this are made when a connection asks; slower ones are made ahead.
const OPEN_AHEAD_FROM: Duration = Duration::from_millis(150);
/// How long before the announced instant a forward opened ahead should be ready: the
/// upgrades' own jitter. Kept under the capture's pause between windows (250 ms), so forwards
/// for the next window are not yet idle in the target when the previous window's goroutine
/// snapshot is taken.
const READY_BEFORE: Duration = Duration::from_millis(100);
/// A forward opened ahead and not used within this long is closed (servers close idle
/// connections: Go's `ReadHeaderTimeout` is often 10 s).
const SPARE_MAX_AGE: Duration = Duration::from_secs(5);
/// At most this many forwards are open ahead per pod.
const MAX_SPARES: usize = 16;
/// How many recent upgrades estimate how long the next will take.
const RECENT_UPGRADES: usize = 8;

/// Counters of one pod's forward.
#[derive(Debug, Default)]
pub struct ForwardStats {
    /// Local connections accepted.
    pub connections: AtomicU64,
    /// Port-forwards that could not be opened, or that failed before the pod answered.
    pub failures: AtomicU64,
    /// Bytes carried from the pod.
    pub bytes_from_pod: AtomicU64,
    /// The longest port-forward upgrade, in milliseconds.
    pub upgrade_ms_max: AtomicU64,
    /// Connections carried by a port-forward opened ahead of them.
    pub opened_ahead: AtomicU64,
    /// The longest a connection waited for its port-forward, in milliseconds, the first
    /// connection (the capture's reachability check) left out: its request reached the pod
    /// that much after the engine sent it, which the engine's start times do not see.
    pub waited_ms_max: AtomicU64,
    /// The first few failure messages.
    pub errors: Mutex<Vec<String>>,
    /// The latest upgrades' durations, in milliseconds.
    recent: Mutex<VecDeque<u64>>,
}

impl ForwardStats {
    fn upgraded(&self, took: Duration) {
        let ms = took.as_millis() as u64;
        self.upgrade_ms_max.fetch_max(ms, Ordering::Relaxed);
        if let Ok(mut recent) = self.recent.lock() {
            if recent.len() == RECENT_UPGRADES {
                recent.pop_front();
            }
            recent.push_back(ms);
        }
    }

    /// How long the next upgrade may take: the longest of the latest few.
    fn expected_upgrade(&self) -> Duration {
        let ms = self
            .recent
            .lock()
            .map(|r| r.iter().copied().max().unwrap_or(0))
            .unwrap_or(0);
        Duration::from_millis(ms)
    }

    fn fail(&self, message: &str) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut errors) = self.errors.lock() {
            if errors.len() < KEEP_ERRORS {
                errors.push(message.to_owned());
            }
        }
    }
}

/// Port-forwards opened ahead, waiting for the connections announced.
#[derive(Default)]
struct Spares {
    /// Ready forwards, oldest first, with the instant each became ready.
    ready: Mutex<VecDeque<(Instant, Portforwarder)>>,
    /// Forwards being opened ahead.
    opening: AtomicUsize,
    /// Signalled when an opening ends, ready or failed.
    settled: Notify,
}

impl Spares {
    /// A ready forward young enough to trust; stale ones are closed on the way.
    fn pop_fresh(&self) -> Option<Portforwarder> {
        let mut ready = self.ready.lock().ok()?;
        while let Some((at, pf)) = ready.pop_front() {
            if at.elapsed() <= SPARE_MAX_AGE {
                return Some(pf);
            }
            tokio::spawn(close(pf));
        }
        None
    }

    /// A forward opened ahead: a ready one, or the next one to become ready while others are
    /// being opened (sooner than opening a new one), until `deadline`.
    async fn take(&self, deadline: tokio::time::Instant) -> Option<Portforwarder> {
        loop {
            let settled = self.settled.notified();
            if let Some(pf) = self.pop_fresh() {
                return Some(pf);
            }
            if self.opening.load(Ordering::Acquire) == 0 {
                return None;
            }
            if tokio::time::timeout_at(deadline, settled).await.is_err() {
                return None;
            }
        }
    }
}

/// One pod's local listener; the listener and every connection it carries end when dropped.
pub struct PodForward {
    /// The pod.
    pub pod: ResolvedPod,
    /// The local address that reaches it: `127.0.0.1:PORT`.
    pub local: SocketAddr,
    /// Counters.
    pub stats: Arc<ForwardStats>,
    /// What its connections share, for the forwards opened ahead.
    link: Link,
    runtime: tokio::runtime::Handle,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for PodForward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodForward")
            .field("pod", &self.pod)
            .field("local", &self.local)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl PodForward {
    /// How long the next upgrade may take, when that is slow enough to open forwards ahead.
    fn slow_upgrade(&self) -> Option<Duration> {
        Some(self.stats.expected_upgrade()).filter(|&u| u >= OPEN_AHEAD_FROM)
    }

    /// How long before its first window a capture should start so that this pod's forwards
    /// can be opened ahead (zero when upgrades are quick).
    pub fn lead(&self) -> Duration {
        self.slow_upgrade()
            .map_or(Duration::ZERO, |u| u + READY_BEFORE)
    }

    /// `count` connections will come at `at`: when upgrades are slow, opens that many
    /// port-forwards so they are ready just before. Callable from any thread.
    pub fn expect(&self, count: usize, at: Instant) {
        let Some(upgrade) = self.slow_upgrade() else {
            return;
        };
        let spares = &self.link.spares;
        let held = spares.ready.lock().map(|r| r.len()).unwrap_or(0)
            + spares.opening.load(Ordering::Acquire);
        let count = count.min(MAX_SPARES.saturating_sub(held));
        if count == 0 {
            return;
        }
        spares.opening.fetch_add(count, Ordering::AcqRel);
        let open_at = at
            .checked_sub(upgrade + READY_BEFORE)
            .unwrap_or_else(Instant::now);
        let link = self.link.clone();
        self.runtime.spawn(async move {
            tokio::time::sleep_until(open_at.into()).await;
            let mut opens = JoinSet::new();
            for _ in 0..count {
                let link = link.clone();
                opens.spawn(async move { link.open_spare().await });
            }
            while opens.join_next().await.is_some() {}
        });
    }
}

impl Drop for PodForward {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Opens one port-forward to a pod within `timeout`; errors name what is missing (a 403 names
/// the RBAC verb and resource, `create pods/portforward`).
pub async fn open(
    cluster: &Cluster,
    pod: &ResolvedPod,
    timeout: Duration,
) -> Result<Portforwarder, TargetError> {
    let api = cluster.pods(&pod.namespace);
    match tokio::time::timeout(timeout, api.portforward(&pod.name, &[pod.port])).await {
        Ok(Ok(pf)) => Ok(pf),
        Ok(Err(e)) => Err(match cluster.api_error(
            e,
            "create",
            "pods/portforward",
            &pod.namespace,
            &format!("pod {:?} in namespace {:?}", pod.name, pod.namespace),
        ) {
            TargetError::Api(m) | TargetError::Forward(m) => {
                TargetError::Forward(format!("port-forward to pod {} refused: {m}", pod.name))
            }
            TargetError::NotFound { .. } => TargetError::Forward(format!(
                "port-forward to pod {} refused: the pod no longer exists",
                pod.name
            )),
            other => other,
        }),
        Err(_) => Err(TargetError::Forward(format!(
            "port-forward to pod {} port {} did not open within {}s (the apiserver accepted the request but never completed the websocket upgrade)",
            pod.name,
            pod.port,
            timeout.as_secs_f64()
        ))),
    }
}

/// Opens one port-forward and closes it again: checks access (RBAC) and reachability before
/// any window is planned.
pub async fn probe(
    cluster: &Cluster,
    pod: &ResolvedPod,
    timeout: Duration,
) -> Result<(), TargetError> {
    let pf = open(cluster, pod, timeout).await?;
    close(pf).await;
    Ok(())
}

/// Waits a little for the forward's task after its streams closed; an error after a normal
/// close by the server is expected and only logged.
async fn close(pf: Portforwarder) {
    match tokio::time::timeout(JOIN_WAIT, pf.join()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!("port-forward closed with: {e}"),
        Err(_) => tracing::debug!("port-forward did not close within {JOIN_WAIT:?}; left to end"),
    }
}

/// Starts a local listener that forwards every connection to the pod.
pub async fn start(
    cluster: Cluster,
    pod: ResolvedPod,
    upgrade_timeout: Duration,
) -> Result<PodForward, TargetError> {
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| {
        TargetError::Forward(format!(
            "cannot open a local listener for pod {}: {e}",
            pod.name
        ))
    })?;
    let local = listener.local_addr().map_err(|e| {
        TargetError::Forward(format!(
            "cannot open a local listener for pod {}: {e}",
            pod.name
        ))
    })?;
    let stats = Arc::new(ForwardStats::default());
    let link = Link {
        cluster,
        pod: pod.clone(),
        upgrade_timeout,
        stats: stats.clone(),
        spares: Arc::new(Spares::default()),
    };
    let task = tokio::spawn(accept_loop(listener, link.clone()));
    tracing::debug!("pod {} port {} forwarded from {local}", pod.name, pod.port);
    Ok(PodForward {
        pod,
        local,
        stats,
        link,
        runtime: tokio::runtime::Handle::current(),
        task,
    })
}

/// What every connection of one pod's forward shares.
#[derive(Clone)]
struct Link {
    cluster: Cluster,
    pod: ResolvedPod,
    upgrade_timeout: Duration,
    stats: Arc<ForwardStats>,
    spares: Arc<Spares>,
}

impl Link {
    /// Opens one port-forward ahead and keeps it ready for the next connection.
    async fn open_spare(self) {
        let asked = Instant::now();
        match open(&self.cluster, &self.pod, self.upgrade_timeout).await {
            Ok(pf) => {
                self.stats.upgraded(asked.elapsed());
                if let Ok(mut ready) = self.spares.ready.lock() {
                    ready.push_back((Instant::now(), pf));
                }
            }
            Err(e) => tracing::debug!("opening a port-forward ahead: {e}"),
        }
        self.spares.opening.fetch_sub(1, Ordering::AcqRel);
        self.spares.settled.notify_waiters();
    }
}

async fn accept_loop(listener: TcpListener, link: Link) {
    // Connections live in this set: aborting the loop ends them all.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    let first = link.stats.connections.fetch_add(1, Ordering::Relaxed) == 0;
                    let _ = tcp.set_nodelay(true);
                    connections.spawn(serve(tcp, link.clone(), first));
                }
                Err(e) => {
                    tracing::debug!("accepting a local connection for pod {}: {e}", link.pod.name);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// The pod side's error (the kubelet's message on the error channel), led by what it means:
/// the capture engine keeps only the start of an error body.
pub fn pod_side_reason(port: u16, message: &str) -> String {
    let message = message.trim();
    if message.to_ascii_lowercase().contains("connection refused") {
        format!("nothing listens on port {port} in the pod (connection refused); is --port right? ({message})")
    } else {
        message.to_owned()
    }
}

/// Answers a local connection with `502 Bad Gateway` and the reason.
async fn bad_gateway(tcp: &mut (impl AsyncWriteExt + Unpin), reason: &str) {
    let body = format!("{reason}\n");
    let response = format!(
        "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(2), tcp.write_all(response.as_bytes())).await;
    let _ = tcp.shutdown().await;
}

/// Carries one local connection over its own port-forward: one opened ahead when there is
/// one, else one opened now. `first`: the pod's first connection (the reachability check).
async fn serve(mut tcp: TcpStream, link: Link, first: bool) {
    let Link {
        cluster,
        pod,
        upgrade_timeout,
        stats,
        spares,
    } = link;
    let asked = Instant::now();
    let spare = spares
        .take(tokio::time::Instant::now() + upgrade_timeout)
        .await;
    let opened = match spare {
        Some(pf) => {
            stats.opened_ahead.fetch_add(1, Ordering::Relaxed);
            Ok(pf)
        }
        None => {
            let opened = open(&cluster, &pod, upgrade_timeout).await;
            if opened.is_ok() {
                stats.upgraded(asked.elapsed());
            }
            opened
        }
    };
    if !first {
        let waited = asked.elapsed().as_millis() as u64;
        stats.waited_ms_max.fetch_max(waited, Ordering::Relaxed);
    }
    let mut pf = match opened {
        Ok(pf) => pf,
        Err(e) => {
            let msg = e.to_string();
            tracing::debug!("{msg}");
            stats.fail(&msg);
            bad_gateway(&mut tcp, &msg).await;
            return;
        }
    };
    let (Some(upstream), Some(pod_error)) = (pf.take_stream(pod.port), pf.take_error(pod.port))
    else {
        bad_gateway(&mut tcp, "the port-forward carried no stream").await;
        return;
    };
    let (mut from_client, mut to_client) = tcp.into_split();
    let (mut from_pod, mut to_pod) = tokio::io::split(upstream);
    let client_to_pod = async {
        let _ = tokio::io::copy(&mut from_client, &mut to_pod).await;
        let _ = to_pod.shutdown().await;
    };
    let pod_to_client = async {
        let mut pod_error = std::pin::pin!(pod_error);
        let mut error_done = false;
        let mut failure: Option<String> = None;
        let mut sent = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            tokio::select! {
                read = from_pod.read(&mut buf) => match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if to_client.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        sent += n as u64;
                    }
                },
                message = &mut pod_error, if !error_done => {
                    error_done = true;
                    if let Some(m) = message {
                        failure = Some(m);
                        break;
                    }
                }
            }
        }
        if sent == 0 && failure.is_none() && !error_done {
            // The pod side closed without a byte: its reason may be on its way. Only a failed
            // forward gets here, so waiting costs nothing normally; 300 ms was too short on a
            // loaded machine, and the client then saw a bare closed connection.
            failure = tokio::time::timeout(Duration::from_secs(2), &mut pod_error)
                .await
                .ok()
                .flatten();
        }
        stats.bytes_from_pod.fetch_add(sent, Ordering::Relaxed);
        if let Some(m) = failure {
            tracing::debug!(
                "port-forward to pod {} port {}: {} (after {sent} bytes)",
                pod.name,
                pod.port,
                m.trim()
            );
            let msg = format!("port-forward: {}", pod_side_reason(pod.port, &m));
            stats.fail(&msg);
            if sent == 0 {
                bad_gateway(&mut to_client, &msg).await;
                return;
            }
        }
        let _ = to_client.shutdown().await;
    };
    {
        let mut up = std::pin::pin!(client_to_pod);
        let mut down = std::pin::pin!(pod_to_client);
        tokio::select! {
            _ = &mut up => { let _ = tokio::time::timeout(LINGER, &mut down).await; }
            _ = &mut down => { let _ = tokio::time::timeout(LINGER, &mut up).await; }
        }
    }
    drop((from_pod, to_pod));
    close(pf).await;
}

//! Port-forwards bridged to local listeners: one listener on `127.0.0.1:0` per pod, and for
//! every TCP connection accepted there, one websocket port-forward (`v4.channel.k8s.io`)
//! through the apiserver to the pod's port. The capture engine only ever sees
//! `http://127.0.0.1:PORT`.
//!
//! kube's `portforward()` has no deadline of its own: every upgrade here runs under one. When
//! a forward cannot be opened, or the pod side reports an error before any byte came back,
//! the local connection is answered with `502 Bad Gateway` and the reason, so the capture
//! engine records a message a person can act on (and, 502 being transient, retries it).
//! `Portforwarder::join()` may report an error after a normal close by the server; that is
//! logged at debug level, never treated as a failure.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::api::Portforwarder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::cluster::{Cluster, ResolvedPod};
use super::TargetError;

/// How long one direction of a bridged connection may outlive the other.
const LINGER: Duration = Duration::from_secs(5);
/// How long to wait for `join()` once both directions are closed.
const JOIN_WAIT: Duration = Duration::from_secs(2);
/// How many failure messages a forward keeps.
const KEEP_ERRORS: usize = 8;

/// Counters of one pod's forward.
#[derive(Debug, Default)]
pub struct ForwardStats {
    /// Local connections accepted.
    pub connections: AtomicU64,
    /// Port-forwards that could not be opened, or that failed before the pod answered.
    pub failures: AtomicU64,
    /// Bytes carried from the pod.
    pub bytes_from_pod: AtomicU64,
    /// The longest port-forward upgrade, in milliseconds: each connection waits this long
    /// before its request reaches the pod, which the engine's start times do not see.
    pub upgrade_ms_max: AtomicU64,
    /// The first few failure messages.
    pub errors: Mutex<Vec<String>>,
}

impl ForwardStats {
    fn fail(&self, message: &str) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut errors) = self.errors.lock() {
            if errors.len() < KEEP_ERRORS {
                errors.push(message.to_owned());
            }
        }
    }
}

/// One pod's local listener; the listener and every connection it carries end when dropped.
#[derive(Debug)]
pub struct PodForward {
    /// The pod.
    pub pod: ResolvedPod,
    /// The local address that reaches it: `127.0.0.1:PORT`.
    pub local: SocketAddr,
    /// Counters.
    pub stats: Arc<ForwardStats>,
    task: tokio::task::JoinHandle<()>,
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
    let task = tokio::spawn(accept_loop(
        listener,
        cluster,
        pod.clone(),
        upgrade_timeout,
        stats.clone(),
    ));
    tracing::debug!("pod {} port {} forwarded from {local}", pod.name, pod.port);
    Ok(PodForward {
        pod,
        local,
        stats,
        task,
    })
}

async fn accept_loop(
    listener: TcpListener,
    cluster: Cluster,
    pod: ResolvedPod,
    upgrade_timeout: Duration,
    stats: Arc<ForwardStats>,
) {
    // Connections live in this set: aborting the loop ends them all.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    stats.connections.fetch_add(1, Ordering::Relaxed);
                    let _ = tcp.set_nodelay(true);
                    connections.spawn(serve(
                        tcp,
                        cluster.clone(),
                        pod.clone(),
                        upgrade_timeout,
                        stats.clone(),
                    ));
                }
                Err(e) => {
                    tracing::debug!("accepting a local connection for pod {}: {e}", pod.name);
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

/// Carries one local connection over its own port-forward.
async fn serve(
    mut tcp: TcpStream,
    cluster: Cluster,
    pod: ResolvedPod,
    upgrade_timeout: Duration,
    stats: Arc<ForwardStats>,
) {
    let asked = tokio::time::Instant::now();
    let mut pf = match open(&cluster, &pod, upgrade_timeout).await {
        Ok(pf) => {
            let took = asked.elapsed().as_millis() as u64;
            stats.upgrade_ms_max.fetch_max(took, Ordering::Relaxed);
            pf
        }
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

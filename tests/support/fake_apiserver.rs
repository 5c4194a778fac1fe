//! A fake Kubernetes apiserver for the tests: plain HTTP on a loopback port, speaking the real
//! protocol as kube-rs uses it.
//!
//! - Discovery: `/version`, `/api`, `/apis` (kube's typed calls need none, but a client may
//!   ask).
//! - GET of services, deployments, statefulsets and pods; pod lists filtered by
//!   `labelSelector` (`k=v` terms joined by commas).
//! - `Status` objects for 404 and 403 (the 403 names the verb and resource as RBAC does).
//! - The websocket port-forward, `pods/NAME/portforward?ports=P`, subprotocol
//!   `v4.channel.k8s.io`: binary frames whose first byte is the channel (data 0, error 1 for
//!   the one port), the first frame on each channel carrying the port as 2 little-endian bytes;
//!   each websocket is bridged to the pod's backend address (a real example-service process).
//!
//! Faults are set per pod ([`Fault`]) or globally ([`FakeApiServer::forbid`]); the whole
//! server can go away mid-run ([`Outage`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// The bearer token in the kubeconfig the fake writes: it must never appear in any output.
pub const FAKE_TOKEN: &str = "fake-token-must-never-be-printed-7f3a";

/// What goes wrong with a pod's port-forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The upgrade request is accepted and never answered.
    StallUpgrade,
    /// Upgrades are answered this many milliseconds late (a slow or distant apiserver), after
    /// the first `after` (answered at once: an apiserver that slows down mid-run).
    SlowUpgrade {
        /// The delay.
        millis: u64,
        /// How many upgrades to the pod are quick before the slow ones.
        after: usize,
    },
    /// The next `connections` port-forwards that carry more than `bytes` bytes from the pod
    /// are cut after `bytes` bytes (the websocket closes, as when a kubelet drops).
    DropAfter {
        /// Bytes carried before the cut.
        bytes: usize,
        /// How many connections are cut (`usize::MAX`: all).
        connections: usize,
    },
}

/// How the whole apiserver goes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// The listener closes and every open connection, port-forwards included, is cut without
    /// a websocket close: new connections are refused (the apiserver or its load balancer
    /// died).
    Down,
    /// Connections are accepted and never answered, and open port-forwards stop carrying
    /// bytes (a network partition that drops packets). Bounded: after two minutes the
    /// connections close.
    Blackhole,
}

/// One fake pod.
#[derive(Debug, Clone)]
pub struct FakePod {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Running and Ready.
    pub ready: bool,
    /// Container restarts.
    pub restarts: i64,
    /// Where port-forwards to it go: `127.0.0.1:PORT`.
    pub backend: String,
    /// The node it "runs" on.
    pub node: String,
}

impl FakePod {
    /// A Ready pod in `default` with labels `app=web,track=TRACK`, forwarding to `backend`.
    pub fn new(name: &str, track: &str, backend: &str) -> FakePod {
        FakePod {
            namespace: "default".into(),
            name: name.into(),
            labels: BTreeMap::from([
                ("app".to_owned(), "web".to_owned()),
                ("track".to_owned(), track.to_owned()),
            ]),
            ready: true,
            restarts: 0,
            backend: backend.into(),
            node: format!("node-{}", name.len() % 3 + 1),
        }
    }
}

#[derive(Default)]
struct State {
    /// (namespace, name) -> selector labels.
    services: HashMap<(String, String), BTreeMap<String, String>>,
    deployments: HashMap<(String, String), BTreeMap<String, String>>,
    statefulsets: HashMap<(String, String), BTreeMap<String, String>>,
    pods: Vec<FakePod>,
    faults: HashMap<String, Fault>,
    /// Port-forward upgrades requested, per pod.
    upgrades: HashMap<String, usize>,
    /// `"verb resource"` pairs refused with 403, e.g. `create pods/portforward`.
    forbidden: HashSet<String>,
    /// Port-forward websockets opened, per pod.
    forwards: HashMap<String, usize>,
    /// Connections cut by [`Fault::DropAfter`], per pod.
    cuts: HashMap<String, usize>,
    /// Every request line seen, for debugging failed tests.
    log: Vec<String>,
    /// Port-forward upgrades requested, all pods together.
    forward_requests: usize,
    /// The outage that begins with the port-forward request number `.0` (from 1).
    outage_after: Option<(usize, Outage)>,
    /// Announces an outage to every task of the server.
    outage: Option<Arc<watch::Sender<Option<Outage>>>>,
}

/// Resolves once the server is in `want`; never when it is not.
async fn outage_is(mut rx: watch::Receiver<Option<Outage>>, want: Outage) {
    if rx.wait_for(|o| *o == Some(want)).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The fake apiserver, served by a runtime of its own until dropped.
pub struct FakeApiServer {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    state: Arc<Mutex<State>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl FakeApiServer {
    /// Starts serving on a free loopback port.
    pub fn start() -> FakeApiServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the fake apiserver");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("binding a loopback port");
        let addr = listener.local_addr().unwrap().to_string();
        let (outage_tx, outage_rx) = watch::channel(None);
        let state = Arc::new(Mutex::new(State {
            outage: Some(Arc::new(outage_tx)),
            ..State::default()
        }));
        let shared = state.clone();
        runtime.spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    // Down: the listener closes, so new connections are refused.
                    _ = outage_is(outage_rx.clone(), Outage::Down) => return,
                };
                let Ok((stream, _)) = accepted else {
                    continue;
                };
                let state = shared.clone();
                let down = outage_rx.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(handle(state, req).await) }
                    });
                    let serve = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades();
                    // Down: every open connection is cut.
                    tokio::select! {
                        _ = serve => {}
                        _ = outage_is(down, Outage::Down) => {}
                    }
                });
            }
        });
        FakeApiServer {
            addr,
            state,
            runtime: Some(runtime),
        }
    }

    /// Adds a Service selecting `labels` in `default`.
    pub fn add_service(&self, name: &str, labels: &[(&str, &str)]) {
        self.lock()
            .services
            .insert(("default".into(), name.into()), to_map(labels));
    }

    /// Adds a Deployment selecting `labels` in `default`.
    pub fn add_deployment(&self, name: &str, labels: &[(&str, &str)]) {
        self.lock()
            .deployments
            .insert(("default".into(), name.into()), to_map(labels));
    }

    /// Adds a StatefulSet selecting `labels` in `default`.
    pub fn add_statefulset(&self, name: &str, labels: &[(&str, &str)]) {
        self.lock()
            .statefulsets
            .insert(("default".into(), name.into()), to_map(labels));
    }

    /// Adds a pod.
    pub fn add_pod(&self, pod: FakePod) {
        self.lock().pods.push(pod);
    }

    /// Deletes a pod: from now on it is not listed, a GET of it is 404, and so is a new
    /// port-forward to it.
    pub fn delete_pod(&self, name: &str) {
        self.lock().pods.retain(|p| p.name != name);
    }

    /// Sets a pod's restart count (as the kubelet would after a container restart).
    pub fn set_restarts(&self, pod: &str, restarts: i64) {
        for p in self.lock().pods.iter_mut().filter(|p| p.name == pod) {
            p.restarts = restarts;
        }
    }

    /// Sets a fault on a pod's port-forwards.
    pub fn set_fault(&self, pod: &str, fault: Fault) {
        self.lock().faults.insert(pod.into(), fault);
    }

    /// Refuses `verb resource` (e.g. `create pods/portforward`) with 403.
    pub fn forbid(&self, verb: &str, resource: &str) {
        self.lock().forbidden.insert(format!("{verb} {resource}"));
    }

    /// Takes the whole server away now (see [`Outage`]).
    pub fn go_away(&self, outage: Outage) {
        outage_now(&self.state, outage);
    }

    /// Takes the whole server away when the `n`-th port-forward is requested (from 1, all
    /// pods together; that request and every later one fail).
    pub fn go_away_at_forward(&self, n: usize, outage: Outage) {
        self.lock().outage_after = Some((n, outage));
    }

    /// Port-forward websockets opened to a pod so far.
    pub fn forwards(&self, pod: &str) -> usize {
        self.lock().forwards.get(pod).copied().unwrap_or(0)
    }

    /// Connections cut so far by [`Fault::DropAfter`] on a pod.
    pub fn cuts(&self, pod: &str) -> usize {
        self.lock().cuts.get(pod).copied().unwrap_or(0)
    }

    /// The requests seen, one line each.
    pub fn log(&self) -> String {
        self.lock().log.join("\n")
    }

    /// Writes a kubeconfig pointing at this server (namespace `default`, a bearer token).
    pub fn write_kubeconfig(&self, path: &Path) {
        let text = format!(
            "apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: http://{addr}
contexts:
- name: fake
  context:
    cluster: fake
    user: gate
    namespace: default
current-context: fake
users:
- name: gate
  user:
    token: {FAKE_TOKEN}
",
            addr = self.addr
        );
        std::fs::write(path, text).expect("writing the kubeconfig");
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn outage_now(state: &Mutex<State>, outage: Outage) {
    let s = state.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(tx) = &s.outage {
        tx.send_replace(Some(outage));
    }
}

/// The outage in force, if any.
fn current_outage(state: &Mutex<State>) -> Option<Outage> {
    let s = state.lock().unwrap_or_else(|p| p.into_inner());
    s.outage.as_ref().and_then(|tx| *tx.borrow())
}

fn to_map(labels: &[(&str, &str)]) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(value.to_string())))
        .unwrap()
}

/// A `metav1.Status` failure, as the apiserver sends it.
fn status(code: u16, reason: &str, message: String) -> Response<Full<Bytes>> {
    json(
        StatusCode::from_u16(code).unwrap(),
        serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": message, "reason": reason, "code": code
        }),
    )
}

fn not_found(resource: &str, name: &str) -> Response<Full<Bytes>> {
    status(404, "NotFound", format!("{resource} \"{name}\" not found"))
}

fn forbidden(verb: &str, resource: &str, name: &str, ns: &str) -> Response<Full<Bytes>> {
    let (res, sub) = resource.split_once('/').unwrap_or((resource, ""));
    let full = if sub.is_empty() {
        res.to_owned()
    } else {
        format!("{res}/{sub}")
    };
    status(
        403,
        "Forbidden",
        format!(
            "{res}{} is forbidden: User \"system:serviceaccount:ci:gate\" cannot {verb} resource \"{full}\" in API group \"\" in the namespace \"{ns}\"",
            if name.is_empty() { String::new() } else { format!(" \"{name}\"") }
        ),
    )
}

fn pod_json(p: &FakePod) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": p.name, "namespace": p.namespace, "uid": format!("uid-{}", p.name),
            "labels": p.labels, "resourceVersion": "1"
        },
        "spec": {
            "nodeName": p.node,
            "containers": [{
                "name": "app", "image": "example/go-service:test",
                "ports": [{"name": "pprof", "containerPort": 6060, "protocol": "TCP"}]
            }]
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": if p.ready { "True" } else { "False" }}],
            "containerStatuses": [{
                "name": "app", "image": "example/go-service:test", "imageID": "sha256:0",
                "ready": p.ready, "restartCount": p.restarts, "started": true, "state": {}
            }]
        }
    })
}

fn workload_json(kind: &str, name: &str, labels: &BTreeMap<String, String>) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "apps/v1", "kind": kind,
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": labels},
            "serviceName": name,
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "example/go-service:test"}]}
            }
        }
    })
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `k=v,k2=v2` matched against labels.
fn matches(selector: &str, labels: &BTreeMap<String, String>) -> bool {
    selector
        .split(',')
        .filter(|t| !t.is_empty())
        .all(|term| match term.split_once('=') {
            Some((k, v)) => labels.get(k.trim()).is_some_and(|l| l == v.trim()),
            None => false,
        })
}

async fn handle(state: Arc<Mutex<State>>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let lock = || state.lock().unwrap_or_else(|p| p.into_inner());
    lock().log.push(format!("{} {path}?{query}", req.method()));
    if parts_are_portforward(&path) {
        let mut s = lock();
        s.forward_requests += 1;
        let n = s.forward_requests;
        if let Some((at, outage)) = s.outage_after {
            if n >= at {
                drop(s);
                outage_now(&state, outage);
            }
        }
    }
    match current_outage(&state) {
        // The connection task is being cut; this answer goes nowhere.
        Some(Outage::Down) => return status(503, "ServiceUnavailable", "going away".into()),
        Some(Outage::Blackhole) => {
            tokio::time::sleep(Duration::from_secs(120)).await;
            return status(503, "ServiceUnavailable", "partitioned".into());
        }
        None => {}
    }
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let is_forbidden =
        |verb: &str, resource: &str| lock().forbidden.contains(&format!("{verb} {resource}"));
    match parts.as_slice() {
        ["version"] => json(
            StatusCode::OK,
            serde_json::json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0-fake"}),
        ),
        ["api"] => json(
            StatusCode::OK,
            serde_json::json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}),
        ),
        ["apis"] => json(
            StatusCode::OK,
            serde_json::json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [{
                "name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}
            }]}),
        ),
        ["api", "v1", "namespaces", ns, "services", name] => {
            if is_forbidden("get", "services") {
                return forbidden("get", "services", name, ns);
            }
            let found = lock()
                .services
                .get(&((*ns).into(), (*name).into()))
                .cloned();
            match found {
                Some(sel) => json(
                    StatusCode::OK,
                    serde_json::json!({
                        "apiVersion": "v1", "kind": "Service",
                        "metadata": {"name": name, "namespace": ns},
                        "spec": {"selector": sel, "ports": [{"port": 80}]}
                    }),
                ),
                None => not_found("services", name),
            }
        }
        ["apis", "apps", "v1", "namespaces", ns, kind @ ("deployments" | "statefulsets"), name] => {
            if is_forbidden("get", kind) {
                return forbidden("get", kind, name, ns);
            }
            let key = ((*ns).to_owned(), (*name).to_owned());
            let found = if *kind == "deployments" {
                lock().deployments.get(&key).cloned()
            } else {
                lock().statefulsets.get(&key).cloned()
            };
            let api_kind = if *kind == "deployments" {
                "Deployment"
            } else {
                "StatefulSet"
            };
            match found {
                Some(sel) => json(StatusCode::OK, workload_json(api_kind, name, &sel)),
                None => not_found(&format!("{kind}.apps"), name),
            }
        }
        ["api", "v1", "namespaces", ns, "pods"] => {
            if is_forbidden("list", "pods") {
                return forbidden("list", "pods", "", ns);
            }
            let selector = query_param(&query, "labelSelector").unwrap_or_default();
            let items: Vec<serde_json::Value> = lock()
                .pods
                .iter()
                .filter(|p| p.namespace == *ns && matches(&selector, &p.labels))
                .map(pod_json)
                .collect();
            json(
                StatusCode::OK,
                serde_json::json!({
                    "apiVersion": "v1", "kind": "PodList",
                    "metadata": {"resourceVersion": "1"}, "items": items
                }),
            )
        }
        ["api", "v1", "namespaces", ns, "pods", name] => {
            if is_forbidden("get", "pods") {
                return forbidden("get", "pods", name, ns);
            }
            let found = lock()
                .pods
                .iter()
                .find(|p| p.namespace == *ns && p.name == *name)
                .map(pod_json);
            match found {
                Some(p) => json(StatusCode::OK, p),
                None => not_found("pods", name),
            }
        }
        ["api", "v1", "namespaces", ns, "pods", name, "portforward"] => {
            if is_forbidden("create", "pods/portforward") {
                return forbidden("create", "pods/portforward", name, ns);
            }
            let pod = lock()
                .pods
                .iter()
                .find(|p| p.namespace == *ns && p.name == *name)
                .cloned();
            let Some(pod) = pod else {
                return not_found("pods", name);
            };
            let (fault, nth) = {
                let mut state = lock();
                let nth = state.upgrades.entry((*name).to_owned()).or_default();
                *nth += 1;
                let nth = *nth;
                (state.faults.get(*name).copied(), nth)
            };
            if fault == Some(Fault::StallUpgrade) {
                // Accepted, never answered (bounded, so nothing outlives the test by much).
                tokio::time::sleep(Duration::from_secs(120)).await;
                return status(500, "Timeout", "stalled".into());
            }
            if let Some(Fault::SlowUpgrade { millis, after }) = fault {
                if nth > after {
                    tokio::time::sleep(Duration::from_millis(millis)).await;
                }
            }
            let port: u16 = query_param(&query, "ports")
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            upgrade(state.clone(), req, pod, port, fault)
        }
        _ => status(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
        ),
    }
}

fn parts_are_portforward(path: &str) -> bool {
    path.ends_with("/portforward")
}

/// Answers the upgrade with 101 and bridges the websocket to the pod's backend.
fn upgrade(
    state: Arc<Mutex<State>>,
    mut req: Request<Incoming>,
    pod: FakePod,
    port: u16,
    fault: Option<Fault>,
) -> Response<Full<Bytes>> {
    let headers = req.headers();
    let is_ws = headers
        .get("upgrade")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let protocols = headers
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let Some(key) = headers
        .get("sec-websocket-key")
        .map(|k| k.as_bytes().to_vec())
    else {
        return status(400, "BadRequest", "missing Sec-WebSocket-Key".into());
    };
    if !is_ws
        || !protocols
            .split(',')
            .any(|p| p.trim() == "v4.channel.k8s.io")
    {
        return status(
            400,
            "BadRequest",
            format!("expected a websocket with subprotocol v4.channel.k8s.io, got {protocols:?}"),
        );
    }
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(&key);
    let on_upgrade = hyper::upgrade::on(&mut req);
    {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        *s.forwards.entry(pod.name.clone()).or_default() += 1;
    }
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        let outage = {
            let s = state.lock().unwrap_or_else(|p| p.into_inner());
            s.outage.as_ref().map(|tx| tx.subscribe())
        };
        let Some(outage) = outage else { return };
        tokio::select! {
            _ = bridge(state, ws, pod, port, fault) => {}
            // Down: cut without a close frame. Blackhole: hold the websocket, carry nothing.
            _ = outage_is(outage.clone(), Outage::Down) => {}
            _ = outage_is(outage, Outage::Blackhole) => {
                tokio::time::sleep(Duration::from_secs(120)).await;
            }
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("Upgrade", "websocket")
        .header("Connection", "Upgrade")
        .header("Sec-WebSocket-Accept", accept)
        .header("Sec-WebSocket-Protocol", "v4.channel.k8s.io")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// The kubelet's side of one port-forward: channel 0 data, channel 1 errors.
async fn bridge(
    state: Arc<Mutex<State>>,
    ws: WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>,
    pod: FakePod,
    port: u16,
    fault: Option<Fault>,
) {
    let (mut sink, mut stream) = ws.split();
    let port_bytes = port.to_le_bytes();
    for ch in [0u8, 1u8] {
        if sink
            .send(Message::binary(vec![ch, port_bytes[0], port_bytes[1]]))
            .await
            .is_err()
        {
            return;
        }
    }
    let backend = match tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(&pod.backend),
    )
    .await
    {
        Ok(Ok(s)) => s,
        _ => {
            let msg = format!(
                "error forwarding port {port} to pod {}, uid : failed to connect to localhost:{port} inside namespace \"{}\": connection refused",
                pod.name, pod.namespace
            );
            let mut frame = vec![1u8];
            frame.extend_from_slice(msg.as_bytes());
            let _ = sink.send(Message::binary(frame)).await;
            let _ = sink.send(Message::Close(None)).await;
            return;
        }
    };
    let (mut from_backend, mut to_backend) = backend.into_split();
    let limit = match fault {
        Some(Fault::DropAfter { bytes, connections }) => {
            let cuts = state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .cuts
                .get(&pod.name)
                .copied()
                .unwrap_or(0);
            (cuts < connections).then_some(bytes)
        }
        _ => None,
    };
    let mut sent = 0usize;
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        tokio::select! {
            msg = stream.next() => match msg {
                Some(Ok(Message::Binary(data))) if data.len() > 1 && data[0] == 0 => {
                    let written = to_backend.write_all(&data[1..]).await;
                    if written.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                _ => {}
            },
            read = from_backend.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut n = n;
                    let mut cut = false;
                    if let Some(limit) = limit {
                        if sent + n > limit {
                            n = limit - sent;
                            cut = true;
                        }
                    }
                    if n > 0 {
                        let mut frame = Vec::with_capacity(n + 1);
                        frame.push(0u8);
                        frame.extend_from_slice(&buf[..n]);
                        if sink.send(Message::binary(frame)).await.is_err() {
                            break;
                        }
                        sent += n;
                    }
                    if cut {
                        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
                        *s.cuts.entry(pod.name.clone()).or_default() += 1;
                        break;
                    }
                }
            }
        }
    }
    let _ = sink.send(Message::Close(None)).await;
    let _ = to_backend.shutdown().await;
}

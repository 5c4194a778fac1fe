//! The Kubernetes client: configuration (kubeconfig, context, in-cluster), resolution of an
//! object to its Running and Ready pods, and API errors as messages that say what to fix.
//!
//! Every API call has a deadline ([`KubeOptions::api_timeout`]): kube's client has a connect
//! timeout but no overall one. Credentials are never logged: only the server URL is.

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use super::select::{
    choose, labels_selector, not_ready_reason, pod_port, restart_count, workload_selector,
};
use super::{KubeKind, KubeRef, PortSpec, TargetError};

/// Default deadline of one API call.
pub const DEFAULT_API_TIMEOUT: Duration = Duration::from_secs(15);
/// Default deadline for a port-forward's websocket upgrade.
pub const DEFAULT_UPGRADE_TIMEOUT: Duration = Duration::from_secs(5);

/// How to reach the cluster and which pods to take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeOptions {
    /// A kubeconfig file (`--kubeconfig`); otherwise `KUBECONFIG`, `~/.kube/config`, or the
    /// in-cluster service account.
    pub kubeconfig: Option<PathBuf>,
    /// A kubeconfig context (`--context`); otherwise the current one.
    pub context: Option<String>,
    /// The namespace of targets that name none (`--namespace`); otherwise the context's.
    pub namespace: Option<String>,
    /// The pods' pprof port (`--port`): a number or a container port's name.
    pub port: PortSpec,
    /// At most this many pods per side (`--max-pods`); `None`: all Ready pods.
    pub max_pods: Option<usize>,
    /// Seed of the pod choice when `max_pods` caps it; `None`: a fresh one, recorded.
    pub seed: Option<u64>,
    /// Deadline of each API call.
    pub api_timeout: Duration,
    /// Deadline of each port-forward upgrade.
    pub upgrade_timeout: Duration,
}

impl Default for KubeOptions {
    fn default() -> Self {
        KubeOptions {
            kubeconfig: None,
            context: None,
            namespace: None,
            port: PortSpec::Number(6060),
            max_pods: None,
            seed: None,
            api_timeout: DEFAULT_API_TIMEOUT,
            upgrade_timeout: DEFAULT_UPGRADE_TIMEOUT,
        }
    }
}

/// One pod chosen as a replicate, as it was when resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedPod {
    /// The pod's name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// Its UID (a pod recreated under the same name has another).
    pub uid: Option<String>,
    /// The node it runs on.
    pub node: Option<String>,
    /// The image of the container serving pprof.
    pub image: Option<String>,
    /// The container port forwarded.
    pub port: u16,
    /// Restarts of its containers, summed, at resolution.
    pub restarts: i64,
}

/// What one Kubernetes target resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The target as given.
    pub target: String,
    /// The namespace used.
    pub namespace: String,
    /// The label selector used (absent for `pod/NAME`).
    pub selector: Option<String>,
    /// Pods the selector matched.
    pub matched: usize,
    /// Of those, Running and Ready.
    pub ready: usize,
    /// The pods chosen, sorted by name.
    pub pods: Vec<ResolvedPod>,
}

/// A connected client with its deadlines.
#[derive(Clone)]
pub struct Cluster {
    client: Client,
    server: String,
    default_namespace: String,
    timeout: Duration,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("server", &self.server)
            .field("default_namespace", &self.default_namespace)
            .finish_non_exhaustive()
    }
}

/// Every cause of an error, joined: kube's top-level messages alone often say only
/// "client error (Connect)".
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    crate::errors::chain_message(e)
}

/// A URL without user information (`https://user:pw@host/` becomes `https://host/`), so the
/// apiserver can be named in messages and the manifest.
pub fn without_userinfo(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_owned(),
    }
}

impl Cluster {
    /// Loads the configuration (`--kubeconfig` and `--context`, else `KUBECONFIG` or
    /// `~/.kube/config`, else the in-cluster service account) and builds a client. Nothing is
    /// sent to the apiserver yet.
    pub async fn connect(options: &KubeOptions) -> Result<Cluster, TargetError> {
        let kc_options = KubeConfigOptions {
            context: options.context.clone(),
            ..KubeConfigOptions::default()
        };
        let mut config = if let Some(path) = &options.kubeconfig {
            let kubeconfig = Kubeconfig::read_from(path).map_err(|e| {
                TargetError::Config(format!(
                    "--kubeconfig {}: cannot read it ({})",
                    path.display(),
                    chain(&e)
                ))
            })?;
            Config::from_custom_kubeconfig(kubeconfig, &kc_options)
                .await
                .map_err(|e| {
                    TargetError::Config(format!(
                        "--kubeconfig {}{}: {}",
                        path.display(),
                        options
                            .context
                            .as_ref()
                            .map(|c| format!(" --context {c}"))
                            .unwrap_or_default(),
                        chain(&e)
                    ))
                })?
        } else if options.context.is_some() {
            Config::from_kubeconfig(&kc_options).await.map_err(|e| {
                TargetError::Config(format!(
                    "--context {}: {}",
                    options.context.as_deref().unwrap_or(""),
                    chain(&e)
                ))
            })?
        } else {
            Config::infer().await.map_err(|e| {
                TargetError::Config(format!(
                    "no Kubernetes configuration: give --kubeconfig FILE, set KUBECONFIG, or run the gate in a pod with a service account ({})",
                    chain(&e)
                ))
            })?
        };
        if config.proxy_url.is_some() {
            // No proxy support is compiled in: connect directly rather than fail.
            tracing::warn!("the kubeconfig or environment names a proxy; the gate connects to the apiserver directly");
            config.proxy_url = None;
        }
        config.connect_timeout = Some(options.api_timeout.min(Duration::from_secs(10)));
        let server = without_userinfo(&config.cluster_url.to_string());
        if config.accept_invalid_certs && config.cluster_url.scheme_str() == Some("https") {
            // Never the gate's choice: only a kubeconfig that asks for it turns it off.
            tracing::warn!(
                "TLS verification of the apiserver {server} is off, as the kubeconfig asks (insecure-skip-tls-verify: true): whoever sits between the gate and the cluster can read its credentials and answer for the cluster; give the kubeconfig the cluster's certificate-authority-data instead"
            );
        }
        let default_namespace = options
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        // The namespace names API paths and, for pods of two namespaces, output folders.
        super::check_namespace(&default_namespace).map_err(|why| {
            TargetError::Config(format!(
                "{default_namespace:?} is not a namespace name ({why}); namespaces are lowercase letters, digits and '-' (from {})",
                if options.namespace.is_some() {
                    "--namespace"
                } else {
                    "the kubeconfig context"
                }
            ))
        })?;
        let client = Client::try_from(config).map_err(|e| {
            TargetError::Config(format!(
                "cannot set up a client for {server}: {}",
                chain(&e)
            ))
        })?;
        tracing::debug!("Kubernetes apiserver {server}, namespace {default_namespace}");
        Ok(Cluster {
            client,
            server,
            default_namespace,
            timeout: options.api_timeout,
        })
    }

    /// The apiserver URL (no credentials).
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The namespace of a target: its own, else `--namespace`, else the context's.
    pub fn namespace_of(&self, target: &KubeRef) -> String {
        target
            .namespace
            .clone()
            .unwrap_or_else(|| self.default_namespace.clone())
    }

    /// The pods API of a namespace.
    pub fn pods(&self, namespace: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// Runs one API call within the deadline and turns its errors into [`TargetError`]s that
    /// name the RBAC verb and resource it needed.
    async fn call<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, kube::Error>>,
        verb: &str,
        resource: &str,
        namespace: &str,
        what: impl Fn() -> String,
    ) -> Result<T, TargetError> {
        match tokio::time::timeout(self.timeout, work).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.api_error(e, verb, resource, namespace, &what())),
            Err(_) => Err(TargetError::Unreachable {
                server: self.server.clone(),
                reason: format!(
                    "no answer to {verb} {resource} within {}s",
                    self.timeout.as_secs_f64()
                ),
            }),
        }
    }

    /// Sorts a kube error: 404, 403, 401 and connection failures each get their message.
    pub fn api_error(
        &self,
        e: kube::Error,
        verb: &str,
        resource: &str,
        namespace: &str,
        what: &str,
    ) -> TargetError {
        match e {
            kube::Error::Api(status) => match status.code {
                404 => TargetError::NotFound {
                    what: what.to_owned(),
                    hint: format!(
                        " (is the namespace right? give NAMESPACE/KIND/NAME or --namespace; looked in {namespace:?})"
                    ),
                },
                403 => TargetError::Forbidden {
                    verb: verb.to_owned(),
                    resource: resource.to_owned(),
                    namespace: namespace.to_owned(),
                    detail: if status.message.is_empty() {
                        String::new()
                    } else {
                        format!(" (apiserver: {})", status.message)
                    },
                },
                401 => TargetError::Unauthorized(if status.message.is_empty() {
                    String::new()
                } else {
                    format!(": {}", status.message)
                }),
                code => TargetError::Api(format!(
                    "{verb} {resource} for {what}: the apiserver answered {code} {}: {}",
                    status.reason, status.message
                )),
            },
            kube::Error::HyperError(_) | kube::Error::Service(_) => TargetError::Unreachable {
                server: self.server.clone(),
                reason: chain(&e),
            },
            other => TargetError::Api(format!(
                "{verb} {resource} for {what}: {}",
                chain(&other)
            )),
        }
    }

    /// Resolves a target to the pods that serve as its replicates: Running and Ready, at most
    /// `max_pods` of them chosen with `seed`, each with its pprof port.
    pub async fn resolve(
        &self,
        target: &KubeRef,
        port: &PortSpec,
        max_pods: Option<usize>,
        seed: u64,
    ) -> Result<Resolved, TargetError> {
        let ns = self.namespace_of(target);
        let name = target.name.as_str();
        let what = || format!("{} {name:?} in namespace {ns:?}", target.kind.name());
        let selector = match target.kind {
            KubeKind::Pod => None,
            KubeKind::Service => {
                let api: Api<Service> = Api::namespaced(self.client.clone(), &ns);
                let svc = self
                    .call(api.get(name), "get", "services", &ns, what)
                    .await?;
                let labels = svc.spec.and_then(|s| s.selector).unwrap_or_default();
                if labels.is_empty() {
                    return Err(TargetError::Api(format!(
                        "{target}: the service has no selector, so it names no pods; give deploy/NAME or pod/NAME instead"
                    )));
                }
                Some(labels_selector(&labels))
            }
            KubeKind::Deployment => {
                let api: Api<Deployment> = Api::namespaced(self.client.clone(), &ns);
                let d = self
                    .call(api.get(name), "get", "deployments", &ns, what)
                    .await?;
                Some(
                    d.spec
                        .and_then(|s| workload_selector(&s.selector))
                        .ok_or_else(|| {
                            TargetError::Api(format!(
                                "{target}: the deployment's selector selects no pods"
                            ))
                        })?,
                )
            }
            KubeKind::StatefulSet => {
                let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), &ns);
                let s = self
                    .call(api.get(name), "get", "statefulsets", &ns, what)
                    .await?;
                Some(
                    s.spec
                        .and_then(|s| workload_selector(&s.selector))
                        .ok_or_else(|| {
                            TargetError::Api(format!(
                                "{target}: the statefulset's selector selects no pods"
                            ))
                        })?,
                )
            }
        };
        let pods_api = self.pods(&ns);
        let pods: Vec<Pod> = match &selector {
            None => vec![
                self.call(pods_api.get(name), "get", "pods", &ns, what)
                    .await?,
            ],
            Some(sel) => {
                let list = self
                    .call(
                        pods_api.list(&ListParams::default().labels(sel)),
                        "list",
                        "pods",
                        &ns,
                        || format!("pods matching {sel:?} in namespace {ns:?}"),
                    )
                    .await?;
                list.items
            }
        };
        let matched = pods.len();
        let mut not_ready = Vec::new();
        let mut ready = Vec::new();
        for pod in pods {
            let pod_name = pod.metadata.name.clone().unwrap_or_default();
            match not_ready_reason(&pod) {
                None => ready.push(pod),
                Some(why) => not_ready.push(format!("{pod_name}: {why}")),
            }
        }
        if ready.is_empty() {
            let detail = if matched == 0 {
                match &selector {
                    Some(sel) => format!("no pod matches the selector {sel:?}"),
                    None => "no such pod".to_owned(),
                }
            } else {
                format!(
                    "{matched} pod{} matched: {}",
                    if matched == 1 { "" } else { "s" },
                    not_ready.join("; ")
                )
            };
            return Err(TargetError::NoReadyPods {
                target: target.to_string(),
                detail,
            });
        }
        if !not_ready.is_empty() {
            tracing::warn!(
                "{target}: {} pod{} not used, not Running and Ready: {}",
                not_ready.len(),
                if not_ready.len() == 1 { "" } else { "s" },
                not_ready.join("; ")
            );
        }
        let ready_count = ready.len();
        let names: Vec<String> = ready
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        let chosen = choose(&names, max_pods.unwrap_or(usize::MAX), seed);
        let mut out = Vec::with_capacity(chosen.len());
        for pod in ready {
            let Some(pod_name) = pod.metadata.name.clone() else {
                continue;
            };
            if !chosen.contains(&pod_name) {
                continue;
            }
            let (port, image) = pod_port(&pod, port)
                .map_err(|why| TargetError::Invalid(format!("{target}: pod {pod_name}: {why}")))?;
            out.push(ResolvedPod {
                name: pod_name,
                namespace: ns.clone(),
                uid: pod.metadata.uid.clone(),
                node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
                image,
                port,
                restarts: restart_count(&pod),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Resolved {
            target: target.to_string(),
            namespace: ns,
            selector,
            matched,
            ready: ready_count,
            pods: out,
        })
    }

    /// The pod as it is now: `Ok(None)` when it no longer exists.
    pub async fn current(&self, namespace: &str, name: &str) -> Result<Option<Pod>, TargetError> {
        let api = self.pods(namespace);
        match self
            .call(api.get(name), "get", "pods", namespace, || {
                format!("pod {name:?} in namespace {namespace:?}")
            })
            .await
        {
            Ok(p) => Ok(Some(p)),
            Err(TargetError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_lose_their_user_information() {
        assert_eq!(
            without_userinfo("https://admin:s3cret@10.0.0.1:6443/"),
            "https://10.0.0.1:6443/"
        );
        assert_eq!(
            without_userinfo("http://127.0.0.1:8080/"),
            "http://127.0.0.1:8080/"
        );
        assert_eq!(
            without_userinfo("https://k8s.example.com/prefix@x"),
            "https://k8s.example.com/prefix@x"
        );
    }
}

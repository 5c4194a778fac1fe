//! Targets: what a command-line TARGET names, and for Kubernetes targets, the pods behind it,
//! each reached through a port-forward bridged to a local listener.
//!
//! A TARGET is one of
//! - `[NAMESPACE/]KIND/NAME` with KIND `svc|service|deploy|deployment|sts|statefulset|pod|po`:
//!   a Kubernetes object, resolved through its selector to its pods that are Running and Ready;
//! - `http(s)://HOST:PORT[/PREFIX]` or `NAME=URL`: one pprof endpoint reached directly;
//! - anything else: a saved profile file or directory.
//!
//! - [`parse`] (this file): pure parsing into a validated [`Target`]; errors name the target
//!   and what to write instead.
//! - [`select`]: pure helpers: label selectors as text, readiness, the named port, and the
//!   reproducible (seeded) choice of pods under `--max-pods`.
//! - [`cluster`]: the Kubernetes client (kubeconfig, context, in-cluster), resolution of an
//!   object to its pods, and API errors turned into messages that say what to fix.
//! - [`forward`]: one local listener on `127.0.0.1:0` per pod; every accepted TCP connection
//!   gets its own websocket port-forward, opened within a deadline.
//! - [`session`]: the whole Kubernetes side of a run: resolve, forward, hand the capture engine
//!   plain `http://127.0.0.1:PORT` URLs, and afterwards check restarts and record the pods in
//!   the manifest.

pub mod cluster;
pub mod forward;
pub mod select;
pub mod session;

use std::path::PathBuf;

use reqwest::Url;

use crate::capture::endpoints::{check_name, pprof_base};

pub use cluster::{KubeOptions, ResolvedPod};
pub use session::KubeSession;

/// The kinds of Kubernetes object a target may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KubeKind {
    /// `svc`, `service`: the pods its selector matches.
    Service,
    /// `deploy`, `deployment`: the pods its selector matches.
    Deployment,
    /// `sts`, `statefulset`: the pods its selector matches.
    StatefulSet,
    /// `pod`, `po`: that one pod.
    Pod,
}

impl KubeKind {
    /// Reads a kind as `kubectl` spells it (short or long, singular).
    pub fn from_word(word: &str) -> Option<KubeKind> {
        Some(match word {
            "svc" | "service" => KubeKind::Service,
            "deploy" | "deployment" => KubeKind::Deployment,
            "sts" | "statefulset" => KubeKind::StatefulSet,
            "pod" | "po" => KubeKind::Pod,
            _ => return None,
        })
    }

    /// The short form, as in `svc/stable`.
    pub fn short(self) -> &'static str {
        match self {
            KubeKind::Service => "svc",
            KubeKind::Deployment => "deploy",
            KubeKind::StatefulSet => "sts",
            KubeKind::Pod => "pod",
        }
    }

    /// The resource name in the API, as RBAC rules name it (`services`, `deployments`, ...).
    pub fn resource(self) -> &'static str {
        match self {
            KubeKind::Service => "services",
            KubeKind::Deployment => "deployments",
            KubeKind::StatefulSet => "statefulsets",
            KubeKind::Pod => "pods",
        }
    }

    /// The kind as the API names it (`Service`, `Deployment`, ...).
    pub fn name(self) -> &'static str {
        match self {
            KubeKind::Service => "Service",
            KubeKind::Deployment => "Deployment",
            KubeKind::StatefulSet => "StatefulSet",
            KubeKind::Pod => "Pod",
        }
    }
}

/// A Kubernetes object named by a target: `[NAMESPACE/]KIND/NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KubeRef {
    /// The namespace given in the target; `None` means `--namespace`, else the context's.
    pub namespace: Option<String>,
    /// The kind.
    pub kind: KubeKind,
    /// The object's name.
    pub name: String,
}

impl std::fmt::Display for KubeRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(ns) = &self.namespace {
            write!(f, "{ns}/")?;
        }
        write!(f, "{}/{}", self.kind.short(), self.name)
    }
}

/// What a command-line target names, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One pprof endpoint reached over HTTP, with the pod name the user chose (`NAME=URL`).
    Http {
        /// The pod name given with `NAME=URL`.
        name: Option<String>,
        /// The pprof base URL (ending in `/debug/pprof/`).
        url: Url,
    },
    /// A Kubernetes object; its pods are reached through port-forwards.
    Kube(KubeRef),
    /// A saved profile file or directory (the caller checks it exists).
    Path(PathBuf),
}

/// A target or Kubernetes setting that cannot work, or a cluster that cannot be used.
///
/// Its [`Classified`](crate::errors::Classified) class tells which are the user's to fix
/// (exit 2) and which are infrastructure failures (exit 3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// A target that cannot be parsed, and what to write instead.
    #[error("{0}")]
    Invalid(String),
    /// No usable Kubernetes configuration (kubeconfig, context, in-cluster).
    #[error("{0}")]
    Config(String),
    /// The object does not exist (HTTP 404).
    #[error("{what} not found{hint}")]
    NotFound {
        /// The object, e.g. `service "stable" in namespace "default"`.
        what: String,
        /// A hint, e.g. about the namespace.
        hint: String,
    },
    /// The account may not do what the gate needs (HTTP 403).
    #[error("forbidden: the gate's account may not {verb} {resource} in namespace {namespace:?}; grant RBAC verb `{verb}` on resource `{resource}` (see examples/k8s/rbac.yaml){detail}")]
    Forbidden {
        /// The RBAC verb, e.g. `create`.
        verb: String,
        /// The RBAC resource, e.g. `pods/portforward`.
        resource: String,
        /// The namespace.
        namespace: String,
        /// The apiserver's own message, when it gave one.
        detail: String,
    },
    /// The credentials were refused (HTTP 401).
    #[error("the apiserver refused the credentials (401 Unauthorized){0}; check the kubeconfig's user or token")]
    Unauthorized(String),
    /// The apiserver could not be reached or did not answer in time.
    #[error("cannot reach the Kubernetes apiserver at {server}: {reason}")]
    Unreachable {
        /// The apiserver URL.
        server: String,
        /// What failed.
        reason: String,
    },
    /// An object resolved to no pod that is Running and Ready.
    #[error("{target}: no pod is Running and Ready ({detail})")]
    NoReadyPods {
        /// The target.
        target: String,
        /// What was found instead.
        detail: String,
    },
    /// Another answer of the apiserver that cannot be used.
    #[error("{0}")]
    Api(String),
    /// A port-forward could not be set up.
    #[error("{0}")]
    Forward(String),
}

impl crate::errors::Classified for TargetError {
    fn class(&self) -> crate::errors::FailureClass {
        match self {
            TargetError::Invalid(_) | TargetError::Config(_) => {
                crate::errors::FailureClass::BadInput
            }
            // The cluster answered (or did not) about targets that were well formed.
            TargetError::NotFound { .. }
            | TargetError::Forbidden { .. }
            | TargetError::Unauthorized(_)
            | TargetError::Unreachable { .. }
            | TargetError::NoReadyPods { .. }
            | TargetError::Api(_)
            | TargetError::Forward(_) => crate::errors::FailureClass::Infrastructure,
        }
    }
}

/// Longest Kubernetes object name (DNS subdomain).
const MAX_OBJECT_NAME: usize = 253;
/// Longest namespace (DNS label).
const MAX_NAMESPACE: usize = 63;

/// Plural or API spellings people write, with the short form to write instead.
const KIND_TYPOS: [(&str, &str); 10] = [
    ("services", "svc"),
    ("deployments", "deploy"),
    ("statefulsets", "sts"),
    ("pods", "pod"),
    ("Service", "svc"),
    ("Deployment", "deploy"),
    ("StatefulSet", "sts"),
    ("Pod", "pod"),
    ("daemonset", "pod (one per pod)"),
    ("ds", "pod (one per pod)"),
];

/// Parses one TARGET argument. `exists` tells whether a path exists: an existing file or
/// directory wins over a Kubernetes reading (`svc/x` may be a saved directory).
///
/// Errors name the target and what to write instead.
pub fn parse(arg: &str, exists: impl Fn(&str) -> bool) -> Result<Target, TargetError> {
    let invalid = TargetError::Invalid;
    if arg.trim().is_empty() {
        return Err(invalid(
            "an empty target; give [NAMESPACE/]KIND/NAME (e.g. svc/stable), http://HOST:PORT or a saved directory".to_owned(),
        ));
    }
    // NAME=URL, or a bare URL.
    let (name, url_text) = match arg.split_once('=') {
        Some((name, rest)) if rest.contains("://") && !name.contains(['/', ':']) => {
            check_name(name)
                .map_err(|why| invalid(format!("{arg}: bad pod name {name:?}: {why}")))?;
            (Some(name.to_owned()), rest)
        }
        _ => (None, arg),
    };
    if url_text.contains("://") {
        let url = pprof_base(url_text).map_err(|e| invalid(e.to_string()))?;
        return Ok(Target::Http { name, url });
    }
    if exists(arg) {
        return Ok(Target::Path(PathBuf::from(arg)));
    }
    let parts: Vec<&str> = arg.split('/').collect();
    if matches!(parts.len(), 2 | 3) {
        let word = parts[parts.len() - 2];
        if let Some(kind) = KubeKind::from_word(word) {
            let name = parts[parts.len() - 1];
            check_object_name(name).map_err(|why| {
                invalid(format!(
                    "{arg}: {name:?} is not a Kubernetes object name ({why}); names are lowercase letters, digits, '-' and '.', e.g. {}/stable",
                    kind.short()
                ))
            })?;
            let namespace = if parts.len() == 3 {
                let ns = parts[0];
                check_namespace(ns).map_err(|why| {
                    invalid(format!(
                        "{arg}: {ns:?} is not a namespace ({why}); write NAMESPACE/{}/{name}, e.g. prod/{}/{name}",
                        kind.short(),
                        kind.short()
                    ))
                })?;
                Some(ns.to_owned())
            } else {
                None
            };
            return Ok(Target::Kube(KubeRef {
                namespace,
                kind,
                name: name.to_owned(),
            }));
        }
        if let Some((_, short)) = KIND_TYPOS.iter().find(|(w, _)| *w == word) {
            let name = parts[parts.len() - 1];
            let ns = if parts.len() == 3 {
                format!("{}/", parts[0])
            } else {
                String::new()
            };
            return Err(invalid(format!(
                "{arg}: no such file or directory, and {word:?} is not a kind the gate reads; write {ns}{short}/{name} (kinds: svc, deploy, sts, pod)"
            )));
        }
    }
    Ok(Target::Path(PathBuf::from(arg)))
}

/// A DNS-1123 subdomain: 1 to 253 of lowercase letters, digits, `-` and `.`, starting and
/// ending with a letter or digit.
fn check_object_name(name: &str) -> Result<(), String> {
    check_dns(name, MAX_OBJECT_NAME, true)
}

/// A DNS-1123 label: 1 to 63 of lowercase letters, digits and `-`.
pub(crate) fn check_namespace(ns: &str) -> Result<(), String> {
    check_dns(ns, MAX_NAMESPACE, false)
}

fn check_dns(s: &str, max: usize, dots: bool) -> Result<(), String> {
    if s.is_empty() {
        return Err("it is empty".to_owned());
    }
    if s.len() > max {
        return Err(format!("longer than {max} characters"));
    }
    if let Some(c) = s.chars().find(|c| {
        !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || (dots && *c == '.'))
    }) {
        return Err(format!("it contains {c:?}"));
    }
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !edge(s.chars().next()) || !edge(s.chars().last()) {
        return Err("it must start and end with a letter or digit".to_owned());
    }
    Ok(())
}

/// The `--port` value: a number, or the name of a container port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortSpec {
    /// A port number.
    Number(u16),
    /// A container port's name, looked up in each pod's spec.
    Named(String),
}

impl PortSpec {
    /// Parses `6060` or `pprof` (an IANA_SVC_NAME: up to 15 lowercase letters, digits, `-`).
    pub fn parse(text: &str) -> Result<PortSpec, TargetError> {
        if let Ok(n) = text.parse::<u16>() {
            if n == 0 {
                return Err(TargetError::Invalid(
                    "--port 0: give the pod's pprof port, e.g. --port 6060".to_owned(),
                ));
            }
            return Ok(PortSpec::Number(n));
        }
        let ok = !text.is_empty()
            && text.len() <= 15
            && text
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && text.chars().any(|c| c.is_ascii_lowercase());
        if !ok {
            return Err(TargetError::Invalid(format!(
                "--port {text:?}: give a port number (1-65535) or a container port's name (e.g. pprof)"
            )));
        }
        Ok(PortSpec::Named(text.to_owned()))
    }
}

impl std::fmt::Display for PortSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PortSpec::Number(n) => write!(f, "{n}"),
            PortSpec::Named(n) => write!(f, "{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(arg: &str) -> Result<Target, TargetError> {
        parse(arg, |_| false)
    }

    fn kube(ns: Option<&str>, kind: KubeKind, name: &str) -> Target {
        Target::Kube(KubeRef {
            namespace: ns.map(str::to_owned),
            kind,
            name: name.to_owned(),
        })
    }

    #[test]
    fn every_kind_spelling_parses() {
        for (word, kind) in [
            ("svc", KubeKind::Service),
            ("service", KubeKind::Service),
            ("deploy", KubeKind::Deployment),
            ("deployment", KubeKind::Deployment),
            ("sts", KubeKind::StatefulSet),
            ("statefulset", KubeKind::StatefulSet),
            ("pod", KubeKind::Pod),
            ("po", KubeKind::Pod),
        ] {
            assert_eq!(p(&format!("{word}/api")).unwrap(), kube(None, kind, "api"));
            assert_eq!(
                p(&format!("prod/{word}/api-1.v2")).unwrap(),
                kube(Some("prod"), kind, "api-1.v2")
            );
        }
        let r = KubeRef {
            namespace: Some("prod".into()),
            kind: KubeKind::Deployment,
            name: "api".into(),
        };
        assert_eq!(r.to_string(), "prod/deploy/api");
    }

    #[test]
    fn urls_and_paths_still_parse() {
        assert!(matches!(
            p("http://127.0.0.1:6060").unwrap(),
            Target::Http { name: None, .. }
        ));
        assert!(matches!(
            p("web=http://127.0.0.1:6060").unwrap(),
            Target::Http { name: Some(_), .. }
        ));
        assert_eq!(
            p("out/profiles/baseline").unwrap(),
            Target::Path("out/profiles/baseline".into())
        );
        // An existing directory named like a target is read as a directory.
        assert_eq!(
            parse("svc/stable", |_| true).unwrap(),
            Target::Path("svc/stable".into())
        );
    }

    #[test]
    fn bad_targets_say_what_to_write() {
        let msg = |a: &str| p(a).unwrap_err().to_string();
        assert!(
            msg("svc/Stable").contains("lowercase"),
            "{}",
            msg("svc/Stable")
        );
        assert!(msg("Prod/svc/stable").contains("prod/svc/stable"));
        assert!(msg("deployments/api").contains("write deploy/api"));
        assert!(msg("prod/services/api").contains("write prod/svc/api"));
        assert!(msg("svc/-x").contains("start and end"));
        assert!(msg("").contains("svc/stable"));
        assert!(msg("a b=http://h:1").contains("bad pod name"));
        assert!(p("../x=http://h:1").is_err());
        assert!(msg("ftp://h:1").contains("http://"));
        assert!(p("svc/stable").is_ok());
    }

    #[test]
    fn ports_are_numbers_or_names() {
        assert_eq!(PortSpec::parse("6060").unwrap(), PortSpec::Number(6060));
        assert_eq!(
            PortSpec::parse("pprof").unwrap(),
            PortSpec::Named("pprof".into())
        );
        for bad in ["0", "70000", "PPROF", "a_b", "", "this-name-is-too-long"] {
            assert!(PortSpec::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}

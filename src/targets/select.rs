//! Pure helpers for resolution: label selectors as text, pod readiness, the pprof port of a
//! pod, and the reproducible choice of pods under `--max-pods`. No network.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::PortSpec;

/// A `matchLabels` map as a label selector (`app=web,track=stable`), keys in order.
pub fn labels_selector(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A workload's `LabelSelector` as label-selector text: `matchLabels` then `matchExpressions`
/// (`In`, `NotIn`, `Exists`, `DoesNotExist`). `None` when it selects nothing usable (empty,
/// or an operator this version does not know).
pub fn workload_selector(selector: &LabelSelector) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(labels) = &selector.match_labels {
        if !labels.is_empty() {
            parts.push(labels_selector(labels));
        }
    }
    for req in selector.match_expressions.iter().flatten() {
        let values = req.values.clone().unwrap_or_default().join(",");
        parts.push(match req.operator.as_str() {
            "In" => format!("{} in ({values})", req.key),
            "NotIn" => format!("{} notin ({values})", req.key),
            "Exists" => req.key.clone(),
            "DoesNotExist" => format!("!{}", req.key),
            _ => return None,
        });
    }
    (!parts.is_empty()).then(|| parts.join(","))
}

/// Why a pod does not count as a replicate, or `None` when it is Running, Ready and not being
/// deleted.
pub fn not_ready_reason(pod: &Pod) -> Option<String> {
    if pod.metadata.deletion_timestamp.is_some() {
        return Some("terminating".to_owned());
    }
    let status = pod.status.as_ref();
    let phase = status
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "Unknown".to_owned());
    if phase != "Running" {
        return Some(phase);
    }
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    if !ready {
        return Some("Running, not Ready".to_owned());
    }
    None
}

/// Sum of the restart counts of a pod's containers.
pub fn restart_count(pod: &Pod) -> i64 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .map(|c| i64::from(c.restart_count))
        .sum()
}

/// The container port to forward: the number given, or the port of that name in the pod's
/// containers. Also returns the image of the container that declares it (or of the first
/// container).
pub fn pod_port(pod: &Pod, port: &PortSpec) -> Result<(u16, Option<String>), String> {
    let containers = pod
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    let first_image = containers.first().and_then(|c| c.image.clone());
    match port {
        PortSpec::Number(n) => {
            let image = containers
                .iter()
                .find(|c| {
                    c.ports
                        .iter()
                        .flatten()
                        .any(|p| p.container_port == i32::from(*n))
                })
                .and_then(|c| c.image.clone())
                .or(first_image);
            Ok((*n, image))
        }
        PortSpec::Named(name) => {
            for c in containers {
                for p in c.ports.iter().flatten() {
                    if p.name.as_deref() == Some(name.as_str()) {
                        let n = u16::try_from(p.container_port)
                            .ok()
                            .filter(|n| *n > 0)
                            .ok_or_else(|| {
                                format!(
                                    "container port {name:?} has number {}, not a usable port",
                                    p.container_port
                                )
                            })?;
                        return Ok((n, c.image.clone()));
                    }
                }
            }
            let names: Vec<String> = containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .filter_map(|p| p.name.clone())
                .collect();
            Err(format!(
                "no container port is named {name:?} (named ports: {}); give --port with a number or one of those names",
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            ))
        }
    }
}

/// A seed for the pod choice when none is given: different from run to run.
pub fn fresh_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    splitmix(nanos ^ u64::from(std::process::id()).rotate_left(32))
}

/// SplitMix64: a small, well-mixed generator step (public domain, Vigna).
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Chooses at most `max` of `names` (sorted first, so the API's order does not matter),
/// uniformly at random from `seed`: the same names and seed always give the same choice.
/// Returns the chosen names in sorted order.
pub fn choose(names: &[String], max: usize, seed: u64) -> Vec<String> {
    let mut sorted: Vec<String> = names.to_vec();
    sorted.sort();
    sorted.dedup();
    if sorted.len() <= max {
        return sorted;
    }
    // Partial Fisher-Yates driven by SplitMix64.
    let mut state = seed;
    for i in 0..max {
        state = splitmix(state);
        let span = (sorted.len() - i) as u64;
        let j = i + (state % span) as usize;
        sorted.swap(i, j);
    }
    let mut chosen: Vec<String> = sorted.into_iter().take(max).collect();
    chosen.sort();
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Container, ContainerPort, ContainerStatus, PodCondition, PodSpec, PodStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn pod(phase: &str, ready: bool, restarts: i32) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "app".into(),
                    image: Some("example/go-service:1".into()),
                    ports: Some(vec![ContainerPort {
                        container_port: 6060,
                        name: Some("pprof".into()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                container_statuses: Some(vec![ContainerStatus {
                    restart_count: restarts,
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn selectors_become_text() {
        let s = LabelSelector {
            match_labels: Some(BTreeMap::from([
                ("track".to_owned(), "stable".to_owned()),
                ("app".to_owned(), "web".to_owned()),
            ])),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "In".into(),
                    values: Some(vec!["a".into(), "b".into()]),
                },
                LabelSelectorRequirement {
                    key: "canary".into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                },
            ]),
        };
        assert_eq!(
            workload_selector(&s).unwrap(),
            "app=web,track=stable,tier in (a,b),!canary"
        );
        assert_eq!(workload_selector(&LabelSelector::default()), None);
    }

    #[test]
    fn readiness_and_restarts() {
        assert_eq!(not_ready_reason(&pod("Running", true, 0)), None);
        assert_eq!(
            not_ready_reason(&pod("Running", false, 0)).unwrap(),
            "Running, not Ready"
        );
        assert_eq!(
            not_ready_reason(&pod("Pending", false, 0)).unwrap(),
            "Pending"
        );
        assert_eq!(restart_count(&pod("Running", true, 3)), 3);
    }

    #[test]
    fn named_ports_are_looked_up() {
        let p = pod("Running", true, 0);
        assert_eq!(
            pod_port(&p, &PortSpec::Named("pprof".into())).unwrap(),
            (6060, Some("example/go-service:1".into()))
        );
        assert_eq!(pod_port(&p, &PortSpec::Number(7070)).unwrap().0, 7070);
        let e = pod_port(&p, &PortSpec::Named("debug".into())).unwrap_err();
        assert!(e.contains("named ports: pprof"), "{e}");
    }

    #[test]
    fn the_choice_is_reproducible_and_capped() {
        let names: Vec<String> = (0..10).map(|i| format!("web-{i}")).collect();
        let a = choose(&names, 3, 42);
        assert_eq!(a.len(), 3);
        assert_eq!(a, choose(&names, 3, 42));
        let mut reversed = names.clone();
        reversed.reverse();
        assert_eq!(
            a,
            choose(&reversed, 3, 42),
            "the API's order must not matter"
        );
        // Different seeds give different choices (over a few seeds, not all the same).
        let distinct: std::collections::HashSet<Vec<String>> =
            (0..8).map(|s| choose(&names, 3, s)).collect();
        assert!(distinct.len() > 1);
        assert_eq!(choose(&names, 20, 1).len(), 10);
        // Every pod can be chosen.
        let seen: std::collections::HashSet<String> =
            (0..200).flat_map(|s| choose(&names, 2, s)).collect();
        assert_eq!(seen.len(), 10);
    }
}

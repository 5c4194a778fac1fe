//! What a capture returns: every profile captured and checked, the manifest, and what each
//! side has for the comparison.

use std::path::PathBuf;

use crate::profile::{FunctionProfile, ProfileKind};
use crate::side::{self, ProfileFile, SideProfiles};

use super::manifest::{KubeRunRecord, Manifest, SideSource};
use super::CaptureError;

/// One profile captured and checked.
#[derive(Debug, Clone)]
pub struct CapturedProfile {
    /// The side.
    pub side: String,
    /// The pod.
    pub pod: String,
    /// The kind, from the endpoint asked.
    pub kind: ProfileKind,
    /// Window number, from 1.
    pub window: u32,
    /// The body as received (gzipped protobuf from Go).
    pub bytes: Vec<u8>,
    /// The body decoded and aggregated, its kind set from the endpoint.
    pub profile: FunctionProfile,
}

impl CapturedProfile {
    /// Where the profile goes under the output directory:
    /// `profiles/<side>/<pod>/<profile>-<window>.pb.gz`.
    pub fn relative_path(&self) -> PathBuf {
        PathBuf::from(archive_path(&self.side, &self.pod, self.kind, self.window))
    }
}

/// `profiles/<side>/<pod>/<profile>-<window>.pb.gz`, with `/` separators (names are checked
/// safe path components).
pub fn archive_path(side: &str, pod: &str, kind: ProfileKind, window: u32) -> String {
    format!("profiles/{side}/{pod}/{}-{window}.pb.gz", kind.name())
}

/// The result of a capture run: the manifest and every profile captured.
#[derive(Debug, Clone)]
pub struct Capture {
    /// What happened, request by request.
    pub manifest: Manifest,
    /// The profiles, in side, pod, window, kind order.
    pub profiles: Vec<CapturedProfile>,
}

impl Capture {
    /// Adds what the Kubernetes session recorded: each side's and pod's record and the
    /// warnings. The profiles of a pod restarted or replaced during the run are left out, of
    /// the comparison and of the manifest's files: its counters reset.
    pub fn add_kubernetes(&mut self, k: KubeRunRecord) {
        for run in k.sides {
            let side = run.side;
            let Some(record) = self.manifest.sides.iter_mut().find(|s| s.side == side) else {
                continue;
            };
            record.kubernetes = Some(run.record);
            for (dir, pod) in run.pods {
                let dropped = pod.dropped.is_some();
                if let Some(rec) = record.pods.iter_mut().find(|p| p.name == dir) {
                    if dropped {
                        for r in rec.windows.iter_mut().flat_map(|w| &mut w.requests) {
                            r.file = None;
                        }
                    }
                    rec.kubernetes = Some(pod);
                }
                if dropped {
                    self.profiles.retain(|p| !(p.side == side && p.pod == dir));
                }
            }
        }
        self.manifest.warnings.extend(k.warnings);
    }

    /// The kinds planned of which a live side has no profile at all, with the side and the
    /// first reason the manifest gives (a refusal, a failed request, no reachable pod).
    pub fn kinds_missing(&self) -> Vec<(ProfileKind, String, String)> {
        let mut out = Vec::new();
        for side in self
            .manifest
            .sides
            .iter()
            .filter(|s| s.source == SideSource::Live)
        {
            for &kind in &self.manifest.plan.profiles {
                let has = self
                    .profiles
                    .iter()
                    .any(|p| p.side == side.side && p.kind == kind);
                if has {
                    continue;
                }
                let reason = self
                    .manifest
                    .missing
                    .iter()
                    .find(|m| m.side == side.side && m.profile == kind)
                    .map(|m| format!("pod {} window {}: {}", m.pod, m.window, m.reason))
                    .or_else(|| {
                        side.pods
                            .iter()
                            .find_map(|p| p.error.as_ref().map(|e| format!("pod {}: {e}", p.name)))
                    })
                    .unwrap_or_else(|| "nothing was captured".to_owned());
                out.push((kind, side.side.clone(), reason));
            }
        }
        out
    }

    /// How many windows have at least one profile from every live side: what a run stopped
    /// early can still compare.
    pub fn windows_from_every_side(&self) -> u32 {
        let live: Vec<&str> = self
            .manifest
            .sides
            .iter()
            .filter(|s| s.source == SideSource::Live)
            .map(|s| s.side.as_str())
            .collect();
        (1..=self.manifest.plan.windows)
            .filter(|&w| {
                live.iter().all(|side| {
                    self.profiles
                        .iter()
                        .any(|p| p.window == w && p.side == *side)
                })
            })
            .count() as u32
    }

    /// One side's profiles ready for comparison, kinds from the endpoints; an error naming
    /// what went wrong when nothing usable was captured for the side.
    pub fn side_profiles(&self, side: &str) -> Result<SideProfiles, CaptureError> {
        let files: Vec<ProfileFile> = self
            .profiles
            .iter()
            .filter(|p| p.side == side)
            .map(|p| ProfileFile {
                path: p.relative_path(),
                pod: p.pod.clone(),
                window: Some(p.window),
                kind: p.kind,
                profile: p.profile.clone(),
            })
            .collect();
        if files.is_empty() {
            let prefix = format!("{side} pod ");
            let mut reasons: Vec<String> = self
                .manifest
                .warnings
                .iter()
                .filter(|w| w.starts_with(&prefix))
                .cloned()
                .collect();
            if reasons.is_empty() {
                reasons = self.manifest.warnings.clone();
            }
            if self.manifest.interrupted {
                reasons.push("the capture was interrupted".to_owned());
            }
            return Err(CaptureError::NothingCaptured {
                side: side.to_owned(),
                reasons,
            });
        }
        Ok(side::group(files))
    }
}

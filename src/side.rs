//! A side of a comparison (baseline or candidate): its pods' decoded profiles per kind, in
//! window order, whatever they came from: files on disk ([`crate::inputs`]), a live capture
//! or the archive. Pure: the readers at the edges build it with [`group`]; compare and judge
//! read it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::profile::{FunctionProfile, ProfileKind};

/// One decoded profile file, with where it came from.
#[derive(Debug, Clone)]
pub struct ProfileFile {
    /// The file read.
    pub path: PathBuf,
    /// The pod (replicate) the file belongs to.
    pub pod: String,
    /// The window number, when the file name carries one (`cpu-3.pb.gz` is window 3).
    pub window: Option<u32>,
    /// The profile kind, from the file name when it names one, else from the content.
    pub kind: ProfileKind,
    /// The aggregated profile.
    pub profile: FunctionProfile,
}

/// The windows captured from one pod, for one profile kind.
#[derive(Debug, Clone)]
pub struct PodProfiles {
    /// Pod name (a directory name, or a file stem for loose files).
    pub pod: String,
    /// One profile per window, in window order.
    pub windows: Vec<FunctionProfile>,
}

/// One side (baseline or candidate) of a comparison: its pods, per profile kind.
#[derive(Debug, Clone, Default)]
pub struct SideProfiles {
    /// Pods per kind; kinds present on this side only.
    pub kinds: BTreeMap<ProfileKind, Vec<PodProfiles>>,
    /// Number of files read.
    pub files: usize,
}

impl SideProfiles {
    /// The kinds present, comma-separated, for messages.
    pub fn kind_names(&self) -> String {
        self.kinds
            .keys()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One pod's profiles with their window numbers.
type Windows = Vec<(Option<u32>, FunctionProfile)>;

/// Groups files by kind, then pod, windows in window order.
pub fn group(files: Vec<ProfileFile>) -> SideProfiles {
    let count = files.len();
    let mut kinds: BTreeMap<ProfileKind, BTreeMap<String, Windows>> = BTreeMap::new();
    for f in files {
        kinds
            .entry(f.kind)
            .or_default()
            .entry(f.pod)
            .or_default()
            .push((f.window, f.profile));
    }
    let kinds = kinds
        .into_iter()
        .map(|(kind, pods)| {
            let pods = pods
                .into_iter()
                .map(|(pod, mut windows)| {
                    windows.sort_by_key(|(w, _)| *w);
                    PodProfiles {
                        pod,
                        windows: windows.into_iter().map(|(_, p)| p).collect(),
                    }
                })
                .collect();
            (kind, pods)
        })
        .collect();
    SideProfiles {
        kinds,
        files: count,
    }
}

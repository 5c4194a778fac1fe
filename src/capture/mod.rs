//! Live capture over plain HTTP pprof endpoints, in matched windows.
//!
//! Each side (baseline, candidate) is a list of pods, each a name and a pprof base URL
//! ([`PodTarget`]); Kubernetes targets resolve to such URLs through port-forwards, so the
//! engine only ever sees URLs (and, through [`ConnectionWarmer`], tells a slow transport what
//! it will ask for and when, so connections can be opened ahead). For every pod of every side, window `i` starts at the same
//! planned instant: the CPU profile (`profile?seconds=W`) runs alongside the delta profiles
//! (`allocs`, `mutex`, `block` with `?seconds=W`), and the heap and goroutine snapshots are
//! taken at the window's end (once the pod has answered the window's profiles, so they do not
//! count the profiling handlers' own goroutines). Windows follow each other with a short pause
//! ([`PlanSettings::gap`]) so that the previous CPU profile has been answered before the
//! next is asked for, and skew never accumulates.
//!
//! - [`plan`]: the plan: windows, requests and when each starts; durations and kinds. Pure.
//! - [`endpoints`]: target arguments, pprof base URLs, pod names and folders. Pure.
//! - [`fetch`]: one GET with a deadline and a body limit; failures sorted into transient and
//!   definitive.
//! - [`engine`]: the scheduled requests and the CPU rule; `preflight` is the reachability
//!   check before them (which pods answer, which planned kinds no pod serves); `request`
//!   makes one request with its retries and checks its body; `record` turns what the requests
//!   brought into the manifest's records and the captured profiles; `captured` is what it
//!   returns.
//! - [`manifest`]: `manifest.json` (every request's start, end, bytes, status, error; skew per
//!   window, at the gate and by the pods' own clocks) and the warnings drawn from it. Pure.
//! - [`progress`]: a progress bar for terminals; log lines go through `tracing`.
//!
//! The engine writes no file: the caller (the CLI) saves [`Capture::profiles`] and the
//! manifest, and decides with [`Capture::side_profiles`] whether a side has anything usable.

mod captured;
pub mod endpoints;
pub mod engine;
pub mod fetch;
pub mod manifest;
pub mod plan;
mod preflight;
pub mod progress;
mod record;
mod request;

pub use captured::{archive_path, Capture, CapturedProfile};
pub use endpoints::{parse_target, PodTarget, SideTargets, TargetSpec};
pub use engine::{capture, CaptureOptions, ConnectionWarmer};
pub use manifest::{Manifest, MANIFEST_SCHEMA_VERSION};
pub use plan::{parse_duration, parse_kinds, CapturePlan, PlanSettings};
pub use progress::{BarProgress, NoProgress, Progress, StderrWriter};

/// A capture that cannot be planned: bad arguments. The message names the flag or target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A flag value or target that cannot be used, and why.
    #[error("{0}")]
    Invalid(String),
}

impl crate::errors::Classified for PlanError {
    fn class(&self) -> crate::errors::FailureClass {
        // A capture plan is built from flags and targets.
        crate::errors::FailureClass::BadInput
    }
}

/// A capture that ran but cannot be used: an infrastructure failure.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The HTTP client could not be set up.
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    /// Not one profile was captured for a side.
    #[error("nothing usable was captured for {side}: {}", reasons.join("; "))]
    NothingCaptured {
        /// The side.
        side: String,
        /// What went wrong, per pod.
        reasons: Vec<String>,
    },
    /// Each side has profiles, but of no kind in common.
    #[error("no profile kind was captured on both sides (baseline: [{baseline}], candidate: [{candidate}]); see the warnings above")]
    NoCommonKind {
        /// Kinds the baseline has.
        baseline: String,
        /// Kinds the candidate has.
        candidate: String,
    },
    /// The async runtime could not start.
    #[error("cannot start the capture runtime: {0}")]
    Runtime(String),
}

impl crate::errors::Classified for CaptureError {
    fn class(&self) -> crate::errors::FailureClass {
        match self {
            // The pods, their endpoints or the runtime failed: the input was fine.
            CaptureError::Client(_)
            | CaptureError::NothingCaptured { .. }
            | CaptureError::NoCommonKind { .. }
            | CaptureError::Runtime(_) => crate::errors::FailureClass::Infrastructure,
        }
    }
}

/// The capture facts for `report.json`: skew, missing profiles and warnings (the full record
/// is `manifest.json`).
pub fn notes_json(manifest: &Manifest) -> serde_json::Value {
    serde_json::json!({
        "manifest_schema_version": manifest.schema_version,
        "facts": manifest.facts(),
        "windows": manifest.windows,
        "max_skew_ms": manifest.max_skew_ms,
        "missing": manifest.missing,
        "warnings": manifest.warnings,
        "interrupted": manifest.interrupted,
    })
}

//! `archive.json`: the index of one archived run. Serde types.

use serde::{Deserialize, Serialize};

/// Version of the `archive.json` schema; bumped on any incompatible change.
pub const INDEX_SCHEMA_VERSION: u32 = 1;

/// What made the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    /// `gate run --archive`: a comparison with its verdict.
    Run,
    /// `gate archive`: the nightly capture, one side, no comparison.
    Nightly,
}

/// Whether every object of the run is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Every object listed in [`ArchiveIndex::objects`] was stored before this index.
    Complete,
    /// Some objects are missing (see [`ArchiveIndex::missing`]), or the run is still being
    /// written (the first index, written before any object).
    Incomplete,
}

/// One side of an archived run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexSide {
    /// The side's folder: `baseline`, `candidate`, `nightly`...
    pub side: String,
    /// `live` (captured by this run), `local` (saved files, copied in) or `archive` (an
    /// earlier archived run, not copied again).
    pub source: String,
    /// The targets as given.
    pub targets: Vec<String>,
    /// The pods stored.
    pub pods: Vec<String>,
}

/// One stored object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexObject {
    /// Its key relative to the run's folder.
    pub key: String,
    /// Its size in bytes.
    pub bytes: u64,
}

/// An object that could not be stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingObject {
    /// Its key relative to the run's folder.
    pub key: String,
    /// Why.
    pub error: String,
}

/// The policy a comparison run was judged by (stored beside as `policy.yaml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRecord {
    /// The policy file given, or `built-in` for the default policy.
    pub source: String,
    /// SHA-256 of its bytes, lowercase hex.
    pub sha256: String,
}

/// SHA-256 of some bytes, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `archive.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchiveIndex {
    /// [`INDEX_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The version of `gate` that wrote it.
    pub tool_version: String,
    /// The service (first folder).
    pub service: String,
    /// The run id (its folder).
    pub run_id: String,
    /// When the run started, RFC 3339 UTC.
    pub started_at: String,
    /// Run or nightly.
    pub kind: RunKind,
    /// Complete or incomplete.
    pub status: RunStatus,
    /// Why the status is what it is, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The sides.
    pub sides: Vec<IndexSide>,
    /// The verdict (`pass`, `fail`, ...) of a comparison run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    /// The policy of a comparison run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyRecord>,
    /// Objects stored before this index was written.
    pub objects: Vec<IndexObject>,
    /// Objects that could not be stored.
    #[serde(default)]
    pub missing: Vec<MissingObject>,
}

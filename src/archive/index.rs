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
    /// The commit the run was taken at, when given (`--commit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Objects stored before this index was written.
    pub objects: Vec<IndexObject>,
    /// Objects that could not be stored.
    #[serde(default)]
    pub missing: Vec<MissingObject>,
}

/// Why an `archive.json` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// Written by a newer gate, with a schema this one does not know: reading it by guess
    /// could take an incomplete run for a complete one.
    #[error("schema_version {found} is newer than this gate reads ({supported}); the run was written by gate {tool_version}: upgrade the gate to read it")]
    Newer {
        /// The version in the file.
        found: u64,
        /// [`INDEX_SCHEMA_VERSION`].
        supported: u32,
        /// The tool version recorded in the file.
        tool_version: String,
    },
    /// Not JSON, or not an index of this schema.
    #[error("not an archive index: {0}")]
    Invalid(String),
}

impl IndexError {
    /// True when the file is from a newer gate.
    pub fn is_newer(&self) -> bool {
        matches!(self, IndexError::Newer { .. })
    }
}

/// Reads an `archive.json`, refusing a schema newer than [`INDEX_SCHEMA_VERSION`] before
/// anything else is read from it.
pub fn parse_index(bytes: &[u8]) -> Result<ArchiveIndex, IndexError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| IndexError::Invalid(e.to_string()))?;
    let found = value
        .get("schema_version")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| IndexError::Invalid("no schema_version field".to_owned()))?;
    if found > u64::from(INDEX_SCHEMA_VERSION) {
        return Err(IndexError::Newer {
            found,
            supported: INDEX_SCHEMA_VERSION,
            tool_version: value
                .get("tool_version")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("unknown")
                .chars()
                .take(64)
                .collect(),
        });
    }
    serde_json::from_value(value).map_err(|e| IndexError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_schema_is_refused_before_its_fields_are_read() {
        let newer = br#"{"schema_version": 2, "tool_version": "9.0.0", "whatever": []}"#;
        let err = parse_index(newer).unwrap_err();
        assert!(err.is_newer());
        let text = err.to_string();
        assert!(
            text.contains("schema_version 2") && text.contains("9.0.0") && text.contains("upgrade"),
            "{text}"
        );
        assert!(matches!(parse_index(b"{}"), Err(IndexError::Invalid(_))));
        assert!(matches!(parse_index(b"\xff"), Err(IndexError::Invalid(_))));
    }
}

//! The archive: every raw profile of a run, its manifest and its reports, kept in a local
//! folder or object storage, listed, pruned, and read back as a side of a comparison.
//!
//! - [`store`]: one small interface over `object_store` (folder, `file://`, `s3://`, `gs://`,
//!   `az://`), each call with a timeout and bounded retries.
//! - [`layout`]: the key layout `<service>/<yyyy>/<mm>/<dd>/<run-id>/<side>/<pod>/<profile>-<window>.pb.gz`
//!   and safe names. Pure.
//! - [`index`]: `archive.json`, the run's index: written first marked incomplete, rewritten
//!   last as complete (or incomplete, naming what is missing), so a partial run is never
//!   mistaken for a complete one.
//! - [`ops`]: archiving a run, listing runs newest first, pruning old runs.
//! - [`history`]: `archive+URL#SERVICE[@WHEN][:SIDE]`, an archived run read as a side.
//! - [`summary`]: `summary.parquet`, a side of a run reduced to per-function numbers, written
//!   beside its profiles for `gate history` (and for queries where the archive lies).

pub mod history;
pub mod index;
pub mod layout;
pub mod ops;
pub mod store;
pub mod summary;

pub use history::{parse_ref, read_side, read_side_into, ArchiveRef, When};
pub use index::{ArchiveIndex, IndexObject, IndexSide, PolicyRecord, RunKind, RunStatus};
pub use ops::{
    archive_run, list_runs, prune, ArchiveObject, ArchiveOutcome, Payload, RunArchive, RunEntry,
};
pub use store::Store;

/// Why the archive could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// A store URL that cannot be used.
    #[error("archive {url}: {why}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// Why.
        why: String,
    },
    /// A history reference that cannot be parsed.
    #[error("{text}: {why}; write archive+URL#SERVICE[@latest|@YYYY-MM-DD|@RUN_ID][:SIDE]")]
    BadRef {
        /// The reference as given.
        text: String,
        /// Why.
        why: String,
    },
    /// A key the store refuses.
    #[error("archive key {key}: {why}")]
    BadKey {
        /// The key.
        key: String,
        /// Why.
        why: String,
    },
    /// A retention age that cannot be parsed.
    #[error("{0:?} is not an age; write e.g. 365d, 8w or 12h")]
    BadAge(String),
    /// No archived run matches a reference.
    #[error("{0}")]
    NotFound(String),
    /// A run whose index was written by a newer gate (the message names the file and both
    /// versions).
    #[error("{0}")]
    Newer(String),
    /// A store call failed (after its retries).
    #[error("cannot {op} {url}: {cause}")]
    Store {
        /// What was attempted: read, write, list, delete.
        op: &'static str,
        /// The object or prefix.
        url: String,
        /// The store's error (its message already carries its causes, so it is not chained
        /// as a source, which would print them twice).
        cause: Box<object_store::Error>,
    },
    /// A store call took too long.
    #[error("cannot {op} {url}: no answer within {seconds} s")]
    Timeout {
        /// What was attempted.
        op: &'static str,
        /// The object or prefix.
        url: String,
        /// The timeout.
        seconds: u64,
    },
    /// A local file could not be read or a folder created.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: std::path::PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// An archived object that is not what it should be (a broken index, a bad profile).
    #[error("{url}: {why}")]
    Corrupt {
        /// The object.
        url: String,
        /// What is wrong.
        why: String,
    },
    /// The runtime for store calls could not start.
    #[error("cannot start the archive runtime: {0}")]
    Runtime(String),
}

impl crate::errors::Classified for ArchiveError {
    fn class(&self) -> crate::errors::FailureClass {
        match self {
            ArchiveError::BadUrl { .. }
            | ArchiveError::BadRef { .. }
            | ArchiveError::BadKey { .. }
            | ArchiveError::BadAge(_)
            | ArchiveError::NotFound(_)
            | ArchiveError::Newer(_) => crate::errors::FailureClass::BadInput,
            ArchiveError::Store { .. }
            | ArchiveError::Timeout { .. }
            | ArchiveError::Io { .. }
            | ArchiveError::Corrupt { .. }
            | ArchiveError::Runtime(_) => crate::errors::FailureClass::Infrastructure,
        }
    }
}

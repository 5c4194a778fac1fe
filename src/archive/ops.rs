//! Archiving a run, listing the runs stored, and pruning old ones.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, TimeZone, Utc};

use super::index::{
    parse_index, ArchiveIndex, IndexObject, IndexSide, MissingObject, INDEX_SCHEMA_VERSION,
};
use super::layout::{self, RunPath, INDEX};
use super::{ArchiveError, RunKind, RunStatus, Store};

/// After this many failed writes in a row the store is taken to be down, and the remaining
/// objects are not attempted.
pub const MAX_CONSECUTIVE_FAILURES: usize = 3;

/// The bytes of an object to store.
#[derive(Debug, Clone)]
pub enum Payload {
    /// Bytes in memory.
    Bytes(Vec<u8>),
    /// A local file, read when it is stored.
    File(PathBuf),
}

/// One object of a run.
#[derive(Debug, Clone)]
pub struct ArchiveObject {
    /// Its key relative to the run's folder, e.g. `baseline/pod-1/cpu-1.pb.gz`; every
    /// segment must already be safe ([`layout::safe_segment`]).
    pub key: String,
    /// Its content.
    pub payload: Payload,
}

/// A run to archive.
#[derive(Debug, Clone)]
pub struct RunArchive {
    /// The service (made safe before use).
    pub service: String,
    /// The run id (made safe before use).
    pub run_id: String,
    /// When the run started: its date folders.
    pub started_at: DateTime<Utc>,
    /// Run or nightly.
    pub kind: RunKind,
    /// The sides, for the index.
    pub sides: Vec<IndexSide>,
    /// The verdict, for a comparison.
    pub verdict: Option<String>,
    /// The policy, for a comparison.
    pub policy: Option<super::PolicyRecord>,
    /// The commit the run was taken at (`--commit`), for history.
    pub commit: Option<String>,
    /// The objects, profiles first.
    pub objects: Vec<ArchiveObject>,
    /// Why the run covers only part of its plan (stopped by a signal), when it does: it is
    /// archived, but its index stays incomplete with this note, so it is never read as history.
    pub partial: Option<String>,
}

/// What archiving a run achieved.
#[derive(Debug, Clone)]
pub struct ArchiveOutcome {
    /// Where the run went: the store URL and the run's folder.
    pub location: String,
    /// Objects stored.
    pub stored: Vec<IndexObject>,
    /// Objects not stored, with why.
    pub missing: Vec<MissingObject>,
    /// True when the final `archive.json` was written.
    pub index_written: bool,
    /// Why the final index could not be written.
    pub index_error: Option<String>,
}

impl ArchiveOutcome {
    /// True when every object and the final index (marked complete) were stored.
    pub fn complete(&self) -> bool {
        self.missing.is_empty() && self.index_written
    }

    /// What was not archived, in one paragraph; empty when complete.
    pub fn shortfall(&self) -> String {
        if self.complete() {
            return String::new();
        }
        let mut parts = Vec::new();
        if !self.missing.is_empty() {
            let names: Vec<&str> = self
                .missing
                .iter()
                .take(5)
                .map(|m| m.key.as_str())
                .collect();
            let more = self.missing.len().saturating_sub(names.len());
            parts.push(format!(
                "{} of {} objects not archived ({}{}): {}",
                self.missing.len(),
                self.missing.len() + self.stored.len(),
                names.join(", "),
                if more > 0 {
                    format!(", and {more} more")
                } else {
                    String::new()
                },
                self.missing[0].error
            ));
        }
        if self.index_written {
            parts.push(format!(
                "{}/{INDEX} marks the run incomplete",
                self.location
            ));
        } else {
            parts.push(format!(
                "{INDEX} not written ({}), so the run does not count as complete",
                self.index_error.as_deref().unwrap_or("not attempted")
            ));
        }
        parts.join("; ")
    }
}

fn index_for(run: &RunArchive, service: &str, run_id: &str) -> ArchiveIndex {
    ArchiveIndex {
        schema_version: INDEX_SCHEMA_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        service: service.to_owned(),
        run_id: run_id.to_owned(),
        started_at: run
            .started_at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        kind: run.kind,
        status: RunStatus::Incomplete,
        note: None,
        sides: run.sides.clone(),
        verdict: run.verdict.clone(),
        policy: run.policy.clone(),
        commit: run.commit.clone(),
        objects: Vec::new(),
        missing: Vec::new(),
    }
}

fn index_bytes(index: &ArchiveIndex) -> Vec<u8> {
    let mut json = serde_json::to_vec_pretty(index).unwrap_or_default();
    json.push(b'\n');
    json
}

/// Archives a run: `archive.json` marked incomplete first, then every object (each one
/// whole, by a single put), then `archive.json` again, complete only if everything was
/// stored. Failures of single objects are collected, not returned: the caller decides whether
/// an incomplete archive is a warning or an error. After [`MAX_CONSECUTIVE_FAILURES`] failed
/// writes in a row, or once the store is taken for silent (see `StoreHealth`), the rest is
/// not attempted.
pub fn archive_run(store: &Store, run: &RunArchive) -> ArchiveOutcome {
    let service = layout::safe_segment(&run.service);
    let run_id = layout::safe_segment(&run.run_id);
    let prefix = layout::run_prefix(&service, run.started_at, &run_id);
    let mut index = index_for(run, &service, &run_id);
    let mut outcome = ArchiveOutcome {
        location: store.url_of(&prefix),
        stored: Vec::new(),
        missing: Vec::new(),
        index_written: false,
        index_error: None,
    };

    index.note = Some("being written: the objects are stored before this index is rewritten; if this note stays, the run was cut short".into());
    let mut health = StoreHealth::default();
    match store.put(&format!("{prefix}/{INDEX}"), index_bytes(&index)) {
        Ok(()) => health.stored(),
        Err(e) => {
            health.failed(&e);
            tracing::debug!("archive: first index: {e}");
        }
    }

    for object in &run.objects {
        if let Some(why) = health.why_not_attempted() {
            outcome.missing.push(MissingObject {
                key: object.key.clone(),
                error: why,
            });
            continue;
        }
        let bytes = match &object.payload {
            Payload::Bytes(b) => Ok(b.clone()),
            Payload::File(path) => std::fs::read(path).map_err(|source| ArchiveError::Io {
                path: path.clone(),
                source,
            }),
        };
        let result = bytes.and_then(|b| {
            let len = b.len() as u64;
            store
                .put(&format!("{prefix}/{}", object.key), b)
                .map(|()| len)
        });
        match result {
            Ok(bytes) => {
                health.stored();
                outcome.stored.push(IndexObject {
                    key: object.key.clone(),
                    bytes,
                });
            }
            Err(e) => {
                health.failed(&e);
                outcome.missing.push(MissingObject {
                    key: object.key.clone(),
                    error: e.to_string(),
                });
            }
        }
    }

    index.objects = outcome.stored.clone();
    index.missing = outcome.missing.clone();
    if let Some(why) = &run.partial {
        index.note = Some(format!("partial: {why}"));
    } else if outcome.missing.is_empty() {
        index.status = RunStatus::Complete;
        index.note = None;
    } else {
        index.note = Some(format!(
            "{} of {} objects could not be stored",
            outcome.missing.len(),
            run.objects.len()
        ));
    }
    // A store silent from its first write is not asked again, even for the final index.
    if health.silent() && !health.ever_answered {
        outcome.index_error = health.why_not_attempted();
        return outcome;
    }
    match store.put(&format!("{prefix}/{INDEX}"), index_bytes(&index)) {
        Ok(()) => outcome.index_written = true,
        Err(e) => outcome.index_error = Some(e.to_string()),
    }
    outcome
}

/// How a store has answered the writes of one run: when to stop asking it.
///
/// A store that never answers costs a full timeout per write. Silent from the first write,
/// nothing more is attempted, not even the final index: one timeout, not one per object. Once
/// it has answered, one slow write (a large profile on a slow link) is not taken for silence;
/// two timeouts in a row are, and the final index is still tried once. Apart from silence,
/// [`MAX_CONSECUTIVE_FAILURES`] refused writes in a row stop the run too.
#[derive(Default)]
struct StoreHealth {
    /// Some write of this run got an answer (stored, or refused).
    ever_answered: bool,
    /// Failed writes in a row (a local file that could not be read resets the count).
    failures_in_a_row: usize,
    /// Writes in a row that waited out their timeout.
    timeouts_in_a_row: usize,
    /// How long the last of those waited.
    timeout_seconds: u64,
}

impl StoreHealth {
    fn stored(&mut self) {
        self.ever_answered = true;
        self.failures_in_a_row = 0;
        self.timeouts_in_a_row = 0;
    }

    fn failed(&mut self, e: &ArchiveError) {
        match e {
            // A local file that could not be read says nothing about the store.
            ArchiveError::Io { .. } => self.failures_in_a_row = 0,
            ArchiveError::Timeout { seconds, .. } => {
                self.failures_in_a_row += 1;
                self.timeouts_in_a_row += 1;
                self.timeout_seconds = *seconds;
            }
            _ => {
                self.failures_in_a_row += 1;
                self.ever_answered = true;
                self.timeouts_in_a_row = 0;
            }
        }
    }

    /// The store is taken for one that does not answer.
    fn silent(&self) -> bool {
        self.timeouts_in_a_row >= 2 || (self.timeouts_in_a_row == 1 && !self.ever_answered)
    }

    /// Why the next write is not attempted, if it is not.
    fn why_not_attempted(&self) -> Option<String> {
        if self.silent() {
            Some(format!(
                "not attempted: the store did not answer a write within {} s",
                self.timeout_seconds
            ))
        } else if self.failures_in_a_row >= MAX_CONSECUTIVE_FAILURES {
            Some(format!(
                "not attempted after {MAX_CONSECUTIVE_FAILURES} failed writes in a row"
            ))
        } else {
            None
        }
    }
}

/// One run found in the store.
#[derive(Debug, Clone)]
pub struct RunEntry {
    /// Its folders.
    pub path: RunPath,
    /// Objects stored under it (the index included).
    pub objects: usize,
    /// Their total size.
    pub bytes: u64,
    /// Its index, when there is one that parses.
    pub index: Option<ArchiveIndex>,
    /// Why the index could not be read, when there is one that does not.
    pub index_error: Option<String>,
    /// True when the index was written by a newer gate (its schema is unknown here): the run
    /// is neither used nor taken for incomplete.
    pub newer_index: bool,
}

impl RunEntry {
    /// When the run started: from its index, else its run id, else its date at midnight.
    pub fn started_at(&self) -> DateTime<Utc> {
        self.index
            .as_ref()
            .and_then(|i| DateTime::parse_from_rfc3339(&i.started_at).ok())
            .map(|t| t.with_timezone(&Utc))
            .or_else(|| layout::run_id_time(&self.path.run_id))
            .unwrap_or_else(|| {
                Utc.from_utc_datetime(&self.path.date.and_hms_opt(0, 0, 0).unwrap_or_default())
            })
    }

    /// True when the index says every object was stored.
    pub fn complete(&self) -> bool {
        self.index
            .as_ref()
            .is_some_and(|i| i.status == RunStatus::Complete)
    }

    /// `complete`, `incomplete`, `newer-gate` (an index this gate cannot read) or `no-index`.
    pub fn status(&self) -> &'static str {
        if self.newer_index {
            return "newer-gate";
        }
        match &self.index {
            Some(i) if i.status == RunStatus::Complete => "complete",
            Some(_) => "incomplete",
            None => "no-index",
        }
    }

    /// The side folders stored (from the index, else from the keys seen).
    pub fn sides(&self) -> Vec<String> {
        match &self.index {
            Some(i) => i.sides.iter().map(|s| s.side.clone()).collect(),
            None => Vec::new(),
        }
    }
}

/// The runs stored, newest first; with a service, that service's only. Each run's index is
/// read.
pub fn list_runs(store: &Store, service: Option<&str>) -> Result<Vec<RunEntry>, ArchiveError> {
    let prefix = service.map(layout::safe_segment).unwrap_or_default();
    let objects = store.list(&prefix)?;
    let mut runs: BTreeMap<String, RunEntry> = BTreeMap::new();
    for o in &objects {
        let Some((path, rest)) = layout::split_key(&o.key) else {
            continue;
        };
        let entry = runs.entry(path.prefix()).or_insert_with(|| RunEntry {
            path: path.clone(),
            objects: 0,
            bytes: 0,
            index: None,
            index_error: None,
            newer_index: false,
        });
        entry.objects += 1;
        entry.bytes += o.size;
        if rest == INDEX {
            entry.index_error = Some(String::new());
        }
    }
    for (prefix, entry) in runs.iter_mut() {
        if entry.index_error.take().is_none() {
            continue;
        }
        let key = format!("{prefix}/{INDEX}");
        if let Some(bytes) = store.get(&key)? {
            match parse_index(&bytes) {
                Ok(i) => entry.index = Some(i),
                Err(e) => {
                    entry.newer_index = e.is_newer();
                    entry.index_error = Some(format!("{}: {e}", store.url_of(&key)));
                }
            }
        }
    }
    let mut out: Vec<RunEntry> = runs.into_values().collect();
    out.sort_by(|a, b| {
        b.started_at()
            .cmp(&a.started_at())
            .then_with(|| b.path.run_id.cmp(&a.path.run_id))
    });
    Ok(out)
}

/// A run pruned (or to be pruned, on a dry run).
#[derive(Debug, Clone)]
pub struct Pruned {
    /// The run.
    pub run: RunEntry,
    /// Its objects' keys.
    pub keys: Vec<String>,
}

/// Deletes every run that started before `cutoff` (that service's only, with a service),
/// oldest first; with `dry_run`, deletes nothing and returns the same list. In each run the
/// index goes first, so a run cut short by an error is never taken for a complete one.
pub fn prune(
    store: &Store,
    service: Option<&str>,
    cutoff: DateTime<Utc>,
    dry_run: bool,
) -> Result<Vec<Pruned>, ArchiveError> {
    let mut runs = list_runs(store, service)?;
    runs.retain(|r| r.started_at() < cutoff);
    runs.reverse();
    let mut out = Vec::new();
    for run in runs {
        let prefix = run.path.prefix();
        let mut keys: Vec<String> = store.list(&prefix)?.into_iter().map(|o| o.key).collect();
        let index_key = format!("{prefix}/{INDEX}");
        keys.sort_by_key(|k| (*k != index_key, k.clone()));
        if !dry_run {
            for key in &keys {
                store.delete(key)?;
            }
        }
        out.push(Pruned { run, keys });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(objects: Vec<ArchiveObject>) -> RunArchive {
        RunArchive {
            partial: None,
            service: "svc".into(),
            run_id: "r".into(),
            started_at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
            kind: RunKind::Run,
            sides: Vec::new(),
            verdict: Some("pass".into()),
            policy: None,
            commit: None,
            objects,
        }
    }

    fn bytes(key: &str) -> ArchiveObject {
        ArchiveObject {
            key: key.into(),
            payload: Payload::Bytes(key.as_bytes().to_vec()),
        }
    }

    #[test]
    fn an_unreadable_local_file_leaves_the_run_incomplete_but_the_rest_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().to_str().unwrap()).unwrap();
        let mut objects = vec![bytes("a/p/cpu-1.pb.gz")];
        for _ in 0..MAX_CONSECUTIVE_FAILURES + 1 {
            objects.push(ArchiveObject {
                key: "a/p/heap-1.pb.gz".into(),
                payload: Payload::File(dir.path().join("missing")),
            });
        }
        objects.push(bytes("report.json"));
        let outcome = archive_run(&store, &run(objects));
        // Unreadable local files say nothing about the store: later objects are still tried.
        assert_eq!(outcome.stored.len(), 2);
        assert_eq!(outcome.missing.len(), MAX_CONSECUTIVE_FAILURES + 1);
        assert!(outcome.index_written && !outcome.complete());
        assert!(outcome.shortfall().contains("marks the run incomplete"));
        let runs = list_runs(&store, None).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].status(), "incomplete");
        assert_eq!(runs[0].path.prefix(), "svc/2026/01/02/r");
        assert_eq!(
            store.get("svc/2026/01/02/r/report.json").unwrap().unwrap(),
            b"report.json"
        );
    }

    #[test]
    fn a_complete_run_lists_with_its_index_and_prunes_index_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().to_str().unwrap()).unwrap();
        let outcome = archive_run(&store, &run(vec![bytes("b/p/cpu-1.pb.gz")]));
        assert!(outcome.complete(), "{}", outcome.shortfall());
        assert!(outcome.shortfall().is_empty());
        let runs = list_runs(&store, Some("svc")).unwrap();
        assert_eq!(runs[0].status(), "complete");
        assert_eq!(runs[0].objects, 2);
        assert_eq!(
            runs[0].started_at(),
            Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
        );
        assert!(list_runs(&store, Some("other")).unwrap().is_empty());
        let cutoff = Utc.with_ymd_and_hms(2026, 1, 3, 0, 0, 0).unwrap();
        let dry = prune(&store, None, cutoff, true).unwrap();
        assert_eq!(dry[0].keys[0], "svc/2026/01/02/r/archive.json");
        assert_eq!(list_runs(&store, None).unwrap().len(), 1);
        prune(&store, None, cutoff, false).unwrap();
        assert!(list_runs(&store, None).unwrap().is_empty());
        assert!(store.list("").unwrap().is_empty());
    }
}

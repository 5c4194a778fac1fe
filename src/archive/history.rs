//! History as a side: `archive+URL#SERVICE[@WHEN][:SIDE]` names one archived run's side, read
//! the way [`crate::inputs`] reads a directory of `<pod>/<profile>-<window>.pb.gz`.
//!
//! - `URL`: the store, as for `--archive` (a folder, `file://`, `s3://`, `gs://`, `az://`).
//! - `SERVICE`: the service folder.
//! - `WHEN`: `latest` (the default), a date `YYYY-MM-DD` (that day's newest run), or a run id.
//! - `SIDE`: the side folder (`baseline`, `candidate`, `nightly`...). Without it, only runs
//!   with a single side (the nightly ones) are considered.
//!
//! Only runs whose index says complete are ever used.

use std::path::PathBuf;

use chrono::NaiveDate;

use super::layout::{self, INDEX};
use super::ops::{list_runs, RunEntry};
use super::{ArchiveError, Store};
use crate::inputs;
use crate::profile::DecodeOptions;
use crate::side::{self, SideProfiles};

/// The prefix that marks a side as archived history.
pub const PREFIX: &str = "archive+";

/// Which run of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum When {
    /// The newest complete run.
    Latest,
    /// The newest complete run of that day (UTC).
    Date(NaiveDate),
    /// That run.
    Run(String),
}

/// A parsed `archive+URL#SERVICE[@WHEN][:SIDE]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveRef {
    /// The reference as written.
    pub text: String,
    /// The store URL.
    pub url: String,
    /// The service.
    pub service: String,
    /// Which run.
    pub when: When,
    /// Which side, when named.
    pub side: Option<String>,
}

/// Parses a history reference; `Ok(None)` when `text` does not start with `archive+`.
pub fn parse_ref(text: &str) -> Result<Option<ArchiveRef>, ArchiveError> {
    let Some(rest) = text.strip_prefix(PREFIX) else {
        return Ok(None);
    };
    let bad = |why: &str| ArchiveError::BadRef {
        text: text.to_owned(),
        why: why.to_owned(),
    };
    let (url, fragment) = rest
        .rsplit_once('#')
        .ok_or_else(|| bad("the service is missing (#SERVICE)"))?;
    if url.is_empty() {
        return Err(bad("the store URL is missing"));
    }
    let (head, side) = match fragment.rsplit_once(':') {
        Some((h, s)) => (h, Some(s)),
        None => (fragment, None),
    };
    let (service, when) = match head.split_once('@') {
        Some((s, w)) => (s, Some(w)),
        None => (head, None),
    };
    let clean = |name: &str, what: &str| -> Result<String, ArchiveError> {
        if name.is_empty() || layout::safe_segment(name) != name {
            Err(bad(&format!(
                "{what} {name:?} is not a folder name (letters, digits, . _ -)"
            )))
        } else {
            Ok(name.to_owned())
        }
    };
    let service = clean(service, "the service")?;
    let side = side.map(|s| clean(s, "the side")).transpose()?;
    let when = match when {
        None | Some("latest") => When::Latest,
        Some(w) => match NaiveDate::parse_from_str(w, "%Y-%m-%d") {
            Ok(d) => When::Date(d),
            Err(_) => When::Run(clean(w, "the run id")?),
        },
    };
    Ok(Some(ArchiveRef {
        text: text.to_owned(),
        url: url.to_owned(),
        service,
        when,
        side,
    }))
}

/// Finds the run and side a reference names: the newest complete run that matches.
pub fn resolve(store: &Store, r: &ArchiveRef) -> Result<(RunEntry, String), ArchiveError> {
    let runs = list_runs(store, Some(&r.service))?;
    let total = runs.len();
    let matching: Vec<RunEntry> = runs
        .into_iter()
        .filter(|run| match &r.when {
            When::Latest => true,
            When::Date(d) => run.path.date == *d,
            When::Run(id) => run.path.run_id == *id,
        })
        .collect();
    let mut incomplete = 0;
    let mut several: Vec<String> = Vec::new();
    // The sides of complete runs that lack the one asked for, to say what there is.
    let mut other_sides: Vec<String> = Vec::new();
    for run in &matching {
        if run.newer_index {
            // Newest first: this run would be the one read, or is newer than it. Skipping it
            // would silently give an older run than the one asked for.
            return Err(ArchiveError::Newer(format!(
                "{}: {}",
                r.text,
                run.index_error
                    .as_deref()
                    .unwrap_or("written by a newer gate")
            )));
        }
        if !run.complete() {
            incomplete += 1;
            continue;
        }
        let sides = run.sides();
        let side = match &r.side {
            Some(s) if sides.contains(s) => s.clone(),
            Some(_) => {
                for s in sides {
                    if !other_sides.contains(&s) {
                        other_sides.push(s);
                    }
                }
                continue;
            }
            None if sides.len() == 1 => sides[0].clone(),
            None => {
                if matches!(r.when, When::Run(_)) {
                    return Err(ArchiveError::NotFound(format!(
                        "{}: run {} has sides {}; name one, e.g. {}:{}",
                        r.text,
                        run.path.run_id,
                        sides.join(", "),
                        r.text,
                        sides.first().map(String::as_str).unwrap_or("baseline")
                    )));
                }
                if several.is_empty() {
                    several = sides;
                }
                continue;
            }
        };
        return Ok((run.clone(), side));
    }
    Err(ArchiveError::NotFound(format!(
        "{}: no complete archived run matches ({total} run{} of service {} in {}, {} matching {}{}); see gate archive list --to {} --service {}",
        r.text,
        if total == 1 { "" } else { "s" },
        r.service,
        r.url,
        matching.len(),
        match &r.when {
            When::Latest => "any date".to_owned(),
            When::Date(d) => d.to_string(),
            When::Run(id) => id.clone(),
        },
        match (incomplete, several.first()) {
            (0, None) if !other_sides.is_empty() => format!(
                "; none has a side {}: they have {}",
                r.side.as_deref().unwrap_or_default(),
                other_sides.join(", ")
            ),
            (0, None) => String::new(),
            (n, None) => format!(", {n} of them incomplete"),
            (n, Some(first)) => format!(
                ", {n} incomplete; runs with sides {} need one named, e.g. {}:{first}",
                several.join(", "),
                r.text
            ),
        },
        r.url,
        r.service
    )))
}

/// Reads the side a reference names: every `<pod>/<file>` under the run's side folder,
/// decoded and grouped as [`inputs::read_side`] groups a directory. Returns the profiles and
/// a description naming the run, for the report.
pub fn read_side(
    r: &ArchiveRef,
    limits: DecodeOptions,
) -> Result<(SideProfiles, String), ArchiveError> {
    read_side_into(r, limits, None)
}

/// [`read_side`], also writing each file as it was archived to `copy_to/<pod>/<file>`: the
/// run's output then holds both sides' profiles, and flame graphs are drawn from them.
pub fn read_side_into(
    r: &ArchiveRef,
    limits: DecodeOptions,
    copy_to: Option<&std::path::Path>,
) -> Result<(SideProfiles, String), ArchiveError> {
    let store = Store::open_existing(&r.url, &r.text, "check the path after archive+")?;
    let (run, side) = resolve(&store, r)?;
    let files = read_run_side(&store, &run, &side, limits, copy_to).map_err(|e| match e {
        ArchiveError::NotFound(why) => ArchiveError::NotFound(format!("{}: {why}", r.text)),
        other => other,
    })?;
    let described = format!(
        "{} (run {}, side {side})",
        store.url_of(&run.path.prefix()),
        run.path.run_id
    );
    Ok((files, described))
}

/// Reads one run's side from a store: every `<pod>/<file>` under its folder, decoded and
/// grouped; with `copy_to`, each file is also written as archived to `copy_to/<pod>/<file>`.
pub fn read_run_side(
    store: &Store,
    run: &RunEntry,
    side: &str,
    limits: DecodeOptions,
    copy_to: Option<&std::path::Path>,
) -> Result<SideProfiles, ArchiveError> {
    let prefix = format!("{}/{}", run.path.prefix(), side);
    let mut files = Vec::new();
    for object in store.list(&prefix)? {
        let Some(rest) = object.key.strip_prefix(&format!("{prefix}/")) else {
            continue;
        };
        let Some((pod, name)) = rest.split_once('/') else {
            continue;
        };
        if name.contains('/') || name == INDEX || !inputs::is_profile_file(name.as_ref()) {
            continue;
        }
        let url = store.url_of(&object.key);
        let bytes = store
            .get(&object.key)?
            .ok_or_else(|| ArchiveError::Corrupt {
                url: url.clone(),
                why: "listed but gone".into(),
            })?;
        let file = inputs::decode_file(&bytes, &PathBuf::from(&url), pod, limits).map_err(|e| {
            ArchiveError::Corrupt {
                url: url.clone(),
                why: e.to_string(),
            }
        })?;
        if let Some(dir) = copy_to {
            // Names were checked safe path segments when archived; checked again here.
            let safe = |s: &str| !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\\']);
            if safe(pod) && safe(name) {
                let pod_dir = dir.join(pod);
                std::fs::create_dir_all(&pod_dir)
                    .and_then(|()| std::fs::write(pod_dir.join(name), &bytes))
                    .map_err(|source| ArchiveError::Io {
                        path: pod_dir.join(name),
                        source,
                    })?;
            }
        }
        files.push(file);
    }
    if files.is_empty() {
        return Err(ArchiveError::NotFound(format!(
            "run {} has no profiles under {side}/",
            run.path.run_id
        )));
    }
    Ok(side::group(files))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_with_defaults() {
        assert_eq!(parse_ref("/tmp/x").unwrap(), None);
        let r = parse_ref("archive+s3://bucket/pre#api").unwrap().unwrap();
        assert_eq!(r.url, "s3://bucket/pre");
        assert_eq!(r.service, "api");
        assert_eq!(r.when, When::Latest);
        assert_eq!(r.side, None);
        let r = parse_ref("archive+/srv/a#api@2026-11-21:baseline")
            .unwrap()
            .unwrap();
        assert_eq!(
            r.when,
            When::Date(NaiveDate::from_ymd_opt(2026, 11, 21).unwrap())
        );
        assert_eq!(r.side.as_deref(), Some("baseline"));
        let r = parse_ref("archive+file:///a#api@20261122T081530Z-3fa9")
            .unwrap()
            .unwrap();
        assert_eq!(r.when, When::Run("20261122T081530Z-3fa9".into()));
        for bad in [
            "archive+/a",
            "archive+#api",
            "archive+/a#../x",
            "archive+/a#api@../../x",
            "archive+/a#api:",
        ] {
            assert!(parse_ref(bad).is_err(), "{bad}");
        }
    }
}

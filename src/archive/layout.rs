//! Where things go in the archive, and the names that are safe there. Pure.
//!
//! A run lives under `<service>/<yyyy>/<mm>/<dd>/<run-id>/`: its profiles as
//! `<side>/<pod>/<profile>-<window>.pb.gz`, `manifest.json`, the reports, and
//! [`INDEX`] (written first as incomplete, rewritten last).

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};

use super::ArchiveError;

/// The run's archive index: written first marked incomplete, rewritten last with the outcome.
pub const INDEX: &str = "archive.json";

/// Longest path segment kept (in bytes).
const MAX_SEGMENT: usize = 120;

/// A name made safe as one path segment: letters, digits, `.`, `_` and `-` are kept, anything
/// else (`/`, `\`, NUL, spaces, non-ASCII) becomes `_`; a name that is empty, `.` or `..`, or
/// starts with a dot gets a leading `_`, so it can never climb out of its folder or hide.
pub fn safe_segment(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.len() > MAX_SEGMENT {
        s.truncate(MAX_SEGMENT);
    }
    if s.is_empty() || s.starts_with('.') {
        s.insert(0, '_');
    }
    s
}

/// A fresh run id: the UTC time to the second and four hex digits, e.g.
/// `20261122T081530Z-3fa9`; ids sort in time order.
pub fn new_run_id(at: DateTime<Utc>, salt: u64) -> String {
    let mut x = salt ^ u64::from(at.timestamp_subsec_nanos()) ^ u64::from(std::process::id());
    // splitmix64 finaliser: spreads the bits of the salt.
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    format!("{}-{:04x}", at.format("%Y%m%dT%H%M%SZ"), x & 0xffff)
}

/// The time a run id made by [`new_run_id`] carries.
pub fn run_id_time(run_id: &str) -> Option<DateTime<Utc>> {
    let stamp = run_id.get(..16)?;
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| Utc.from_utc_datetime(&t))
}

/// `<service>/<yyyy>/<mm>/<dd>/<run-id>`, each name made safe.
pub fn run_prefix(service: &str, at: DateTime<Utc>, run_id: &str) -> String {
    format!(
        "{}/{:04}/{:02}/{:02}/{}",
        safe_segment(service),
        at.year(),
        at.month(),
        at.day(),
        safe_segment(run_id)
    )
}

/// A run found in a listing: the parts of its prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunPath {
    /// The service folder.
    pub service: String,
    /// The date folders.
    pub date: NaiveDate,
    /// The run id folder.
    pub run_id: String,
}

impl RunPath {
    /// `<service>/<yyyy>/<mm>/<dd>/<run-id>`.
    pub fn prefix(&self) -> String {
        format!(
            "{}/{:04}/{:02}/{:02}/{}",
            self.service,
            self.date.year(),
            self.date.month(),
            self.date.day(),
            self.run_id
        )
    }
}

/// Splits a key into its run and the rest (`<side>/<pod>/<file>`, `manifest.json`...); `None`
/// for keys outside the layout.
pub fn split_key(key: &str) -> Option<(RunPath, &str)> {
    let mut parts = key.splitn(6, '/');
    let service = parts.next()?;
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    let run_id = parts.next()?;
    let rest = parts.next()?;
    if y.len() != 4 || m.len() != 2 || d.len() != 2 || run_id.is_empty() || rest.is_empty() {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)?;
    Some((
        RunPath {
            service: service.to_owned(),
            date,
            run_id: run_id.to_owned(),
        },
        rest,
    ))
}

/// Parses a retention age: `365d`, `52w`, `12h`, or any duration `gate` accepts (`90m`).
pub fn parse_age(text: &str) -> Result<chrono::Duration, ArchiveError> {
    let s = text.trim();
    let bad = || ArchiveError::BadAge(text.to_owned());
    let days = |n: &str, per: i64| -> Result<chrono::Duration, ArchiveError> {
        let n: i64 = n.parse().map_err(|_| bad())?;
        if !(0..=100_000).contains(&n) {
            return Err(bad());
        }
        Ok(chrono::Duration::days(n * per))
    };
    if let Some(n) = s.strip_suffix('d') {
        return days(n, 1);
    }
    if let Some(n) = s.strip_suffix('w') {
        return days(n, 7);
    }
    let d = crate::capture::parse_duration(s).map_err(|_| bad())?;
    chrono::Duration::from_std(d).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_stay_one_harmless_segment() {
        for (name, want) in [
            ("../../etc", "_.._.._etc"),
            ("..", "_.."),
            (".", "_."),
            ("", "_"),
            ("/abs/path", "_abs_path"),
            ("a\0b", "a_b"),
            ("C:\\x", "C__x"),
            (".hidden", "_.hidden"),
            ("pod-1_ok.v2", "pod-1_ok.v2"),
            ("名前", "__"),
        ] {
            let got = safe_segment(name);
            assert_eq!(got, want, "{name:?}");
            assert!(!got.contains('/') && got != ".." && got != "." && !got.starts_with('.'));
        }
        let long = "x".repeat(1000);
        assert_eq!(safe_segment(&long).len(), MAX_SEGMENT);
        assert_eq!(
            run_prefix(
                "../svc",
                Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap(),
                "/r"
            ),
            "_.._svc/2026/03/04/_r"
        );
    }

    #[test]
    fn run_ids_carry_their_time_and_keys_split_back() {
        let at = Utc.with_ymd_and_hms(2026, 11, 22, 8, 15, 30).unwrap();
        let id = new_run_id(at, 7);
        assert!(id.starts_with("20261122T081530Z-"), "{id}");
        assert_eq!(run_id_time(&id), Some(at));
        assert_eq!(run_id_time("nightly-42"), None);
        let key = format!("{}/baseline/pod-1/cpu-1.pb.gz", run_prefix("api", at, &id));
        let (run, rest) = split_key(&key).unwrap();
        assert_eq!(run.service, "api");
        assert_eq!(run.run_id, id);
        assert_eq!(rest, "baseline/pod-1/cpu-1.pb.gz");
        assert_eq!(run.prefix(), run_prefix("api", at, &id));
        assert!(split_key("api/2026/13/01/r/x").is_none());
        assert!(split_key("api/2026/11/01/r").is_none());
    }

    #[test]
    fn ages_in_days_weeks_and_durations() {
        assert_eq!(parse_age("365d").unwrap(), chrono::Duration::days(365));
        assert_eq!(parse_age("2w").unwrap(), chrono::Duration::days(14));
        assert_eq!(parse_age("90m").unwrap(), chrono::Duration::minutes(90));
        assert!(parse_age("soon").is_err());
        assert!(parse_age("-3d").is_err());
    }
}

//! `summary.parquet`: one archived side of a run reduced to per-function numbers, written
//! beside its profiles (`<run>/<side>/summary.parquet`) so that history reads a small table per
//! run instead of decoding every profile, and so that a year of runs for many services can be
//! queried where they lie (DuckDB: `SELECT ... FROM 's3://bucket/**/summary.parquet'`; Athena,
//! BigQuery external tables).
//!
//! One row per run, side, profile, pod, sample type and function, plus one row per pod and
//! sample type with no function: its total. Bytes in, bytes out.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parquet::basic::Compression;
use parquet::column::reader::ColumnReader;
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int32Type, Int64Type};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, RowGroupReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

use crate::compare::summary::{FunctionSummary, PodSummary, SampleTypeSummary};
use crate::history::RunSummary;
use crate::profile::{ProfileKind, SampleType};

/// The file name, in the side's folder.
pub const SUMMARY: &str = "summary.parquet";

/// Version of the table's columns, in the file's key-value metadata; bumped on any change a
/// reader of the previous version would misread.
pub const SUMMARY_VERSION: u32 = 1;
const VERSION_KEY: &str = "profile_gate_summary_version";

const SCHEMA: &str = "
message profile_gate_summary {
  REQUIRED BYTE_ARRAY service (UTF8);
  REQUIRED BYTE_ARRAY run_id (UTF8);
  REQUIRED INT64 started (TIMESTAMP(MILLIS,true));
  OPTIONAL BYTE_ARRAY commit (UTF8);
  REQUIRED BYTE_ARRAY side (UTF8);
  REQUIRED BYTE_ARRAY profile (UTF8);
  REQUIRED BYTE_ARRAY pod (UTF8);
  REQUIRED INT32 windows;
  REQUIRED DOUBLE seconds;
  REQUIRED BYTE_ARRAY sample_type (UTF8);
  REQUIRED BYTE_ARRAY unit (UTF8);
  REQUIRED BOOLEAN exact;
  OPTIONAL BYTE_ARRAY function (UTF8);
  REQUIRED DOUBLE flat;
  REQUIRED DOUBLE cum;
  REQUIRED DOUBLE flat_events;
  REQUIRED DOUBLE cum_events;
  REQUIRED DOUBLE depth;
}";

/// Why a summary could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    /// The Parquet library refused the table.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Written by a newer gate.
    #[error(
        "summary version {0} is newer than this gate reads ({SUMMARY_VERSION}); upgrade the gate"
    )]
    Newer(u32),
    /// A column is missing or of another type.
    #[error("not a Profile Gate summary: {0}")]
    Invalid(String),
}

/// Which run and side a summary belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryRun {
    /// The service.
    pub service: String,
    /// The run id.
    pub run_id: String,
    /// When the run started.
    pub started: DateTime<Utc>,
    /// The commit, when recorded.
    pub commit: Option<String>,
    /// The side.
    pub side: String,
}

/// The table's columns, row by row.
#[derive(Default)]
struct Columns {
    profile: Vec<ByteArray>,
    pod: Vec<ByteArray>,
    windows: Vec<i32>,
    seconds: Vec<f64>,
    sample_type: Vec<ByteArray>,
    unit: Vec<ByteArray>,
    exact: Vec<bool>,
    function: Vec<ByteArray>,
    function_def: Vec<i16>,
    flat: Vec<f64>,
    cum: Vec<f64>,
    flat_events: Vec<f64>,
    cum_events: Vec<f64>,
    depth: Vec<f64>,
}

impl Columns {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        kind: ProfileKind,
        pod: &PodSummary,
        st: &SampleTypeSummary,
        function: Option<&str>,
        values: [f64; 5],
    ) {
        self.profile.push(ByteArray::from(kind.name()));
        self.pod.push(ByteArray::from(pod.pod.as_str()));
        self.windows
            .push(i32::try_from(pod.windows).unwrap_or(i32::MAX));
        self.seconds.push(pod.seconds);
        self.sample_type
            .push(ByteArray::from(st.sample_type.name.as_str()));
        self.unit
            .push(ByteArray::from(st.sample_type.unit.as_str()));
        self.exact.push(st.exact);
        match function {
            Some(f) => {
                self.function.push(ByteArray::from(f));
                self.function_def.push(1);
            }
            None => self.function_def.push(0),
        }
        let [flat, cum, fe, ce, depth] = values;
        self.flat.push(flat);
        self.cum.push(cum);
        self.flat_events.push(fe);
        self.cum_events.push(ce);
        self.depth.push(depth);
    }
}

/// Writes one side's summary: one row group per profile kind and sample type, so a reader
/// that needs only some of them skips the rest undecoded.
pub fn encode(
    run: &SummaryRun,
    kinds: &BTreeMap<ProfileKind, Vec<PodSummary>>,
) -> Result<Vec<u8>, SummaryError> {
    let mut groups: BTreeMap<(ProfileKind, &str), Columns> = BTreeMap::new();
    for (&kind, pods) in kinds {
        for pod in pods {
            for st in &pod.sample_types {
                let c = groups
                    .entry((kind, st.sample_type.name.as_str()))
                    .or_default();
                c.push(
                    kind,
                    pod,
                    st,
                    None,
                    [st.total, st.total, st.total_events, st.total_events, 0.0],
                );
                for f in &st.functions {
                    c.push(
                        kind,
                        pod,
                        st,
                        Some(&f.name),
                        [f.flat, f.cum, f.flat_events, f.cum_events, f.depth],
                    );
                }
            }
        }
    }
    let schema = Arc::new(parse_message_type(SCHEMA)?);
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_key_value_metadata(Some(vec![KeyValue::new(
                VERSION_KEY.to_owned(),
                SUMMARY_VERSION.to_string(),
            )]))
            .set_created_by(format!("profile-gate {}", env!("CARGO_PKG_VERSION")))
            .build(),
    );
    let mut writer = SerializedFileWriter::new(Vec::new(), schema, props)?;
    for c in groups.values() {
        write_group(&mut writer, run, c)?;
    }
    Ok(writer.into_inner()?)
}

fn write_group(
    writer: &mut SerializedFileWriter<Vec<u8>>,
    run: &SummaryRun,
    c: &Columns,
) -> Result<(), SummaryError> {
    let rows = c.flat.len();
    let mut group = writer.next_row_group()?;
    let constant = |s: &str| vec![ByteArray::from(s); rows];
    let started = run.started.timestamp_millis();
    let commit_def: Vec<i16> = vec![i16::from(run.commit.is_some()); rows];
    let commit: Vec<ByteArray> = match &run.commit {
        Some(s) => constant(s),
        None => Vec::new(),
    };
    let mut index = 0;
    while let Some(mut col) = group.next_column()? {
        match index {
            0 => write_bytes(&mut col, &constant(&run.service), None)?,
            1 => write_bytes(&mut col, &constant(&run.run_id), None)?,
            2 => {
                col.typed::<Int64Type>()
                    .write_batch(&vec![started; rows], None, None)?;
            }
            3 => write_bytes(&mut col, &commit, Some(&commit_def))?,
            4 => write_bytes(&mut col, &constant(&run.side), None)?,
            5 => write_bytes(&mut col, &c.profile, None)?,
            6 => write_bytes(&mut col, &c.pod, None)?,
            7 => {
                col.typed::<Int32Type>()
                    .write_batch(&c.windows, None, None)?;
            }
            8 => write_doubles(&mut col, &c.seconds)?,
            9 => write_bytes(&mut col, &c.sample_type, None)?,
            10 => write_bytes(&mut col, &c.unit, None)?,
            11 => {
                col.typed::<BoolType>().write_batch(&c.exact, None, None)?;
            }
            12 => write_bytes(&mut col, &c.function, Some(&c.function_def))?,
            13 => write_doubles(&mut col, &c.flat)?,
            14 => write_doubles(&mut col, &c.cum)?,
            15 => write_doubles(&mut col, &c.flat_events)?,
            16 => write_doubles(&mut col, &c.cum_events)?,
            17 => write_doubles(&mut col, &c.depth)?,
            _ => return Err(SummaryError::Invalid(format!("unexpected column {index}"))),
        }
        col.close()?;
        index += 1;
    }
    group.close()?;
    Ok(())
}

fn write_bytes(
    col: &mut parquet::file::writer::SerializedColumnWriter<'_>,
    values: &[ByteArray],
    def: Option<&[i16]>,
) -> Result<(), SummaryError> {
    col.typed::<ByteArrayType>()
        .write_batch(values, def, None)?;
    Ok(())
}

fn write_doubles(
    col: &mut parquet::file::writer::SerializedColumnWriter<'_>,
    values: &[f64],
) -> Result<(), SummaryError> {
    col.typed::<DoubleType>().write_batch(values, None, None)?;
    Ok(())
}

/// One column read whole.
enum Read {
    Bytes(Vec<ByteArray>, Vec<i16>),
    Doubles(Vec<f64>),
    Ints(Vec<i32>),
    Longs(Vec<i64>),
    Bools(Vec<bool>),
}

fn read_column(reader: ColumnReader, rows: usize) -> Result<Read, SummaryError> {
    let mut def = Vec::with_capacity(rows);
    Ok(match reader {
        ColumnReader::ByteArrayColumnReader(mut r) => {
            let mut v = Vec::with_capacity(rows);
            r.read_records(rows, Some(&mut def), None, &mut v)?;
            Read::Bytes(v, def)
        }
        ColumnReader::DoubleColumnReader(mut r) => {
            let mut v = Vec::with_capacity(rows);
            r.read_records(rows, Some(&mut def), None, &mut v)?;
            Read::Doubles(v)
        }
        ColumnReader::Int32ColumnReader(mut r) => {
            let mut v = Vec::with_capacity(rows);
            r.read_records(rows, Some(&mut def), None, &mut v)?;
            Read::Ints(v)
        }
        ColumnReader::Int64ColumnReader(mut r) => {
            let mut v = Vec::with_capacity(rows);
            r.read_records(rows, Some(&mut def), None, &mut v)?;
            Read::Longs(v)
        }
        ColumnReader::BoolColumnReader(mut r) => {
            let mut v = Vec::with_capacity(rows);
            r.read_records(rows, Some(&mut def), None, &mut v)?;
            Read::Bools(v)
        }
        _ => return Err(SummaryError::Invalid("a column of an unknown type".into())),
    })
}

fn text(b: &ByteArray) -> Result<&str, SummaryError> {
    b.as_utf8()
        .map_err(|_| SummaryError::Invalid("a text value that is not UTF-8".into()))
}

/// Reads a summary back: the run it belongs to (its side aside) and each kind's pods, with
/// only the profile kinds and sample types `wanted` says yes to (their row groups are the only
/// ones decoded).
pub fn decode(
    bytes: Vec<u8>,
    wanted: &dyn Fn(ProfileKind, &str) -> bool,
) -> Result<(RunSummary, String), SummaryError> {
    let reader = SerializedFileReader::new(bytes::Bytes::from(bytes))?;
    let version = reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == VERSION_KEY))
        .and_then(|k| k.value.as_deref())
        .and_then(|v| v.parse::<u32>().ok())
        .ok_or_else(|| SummaryError::Invalid(format!("no {VERSION_KEY} in its metadata")))?;
    if version > SUMMARY_VERSION {
        return Err(SummaryError::Newer(version));
    }
    let mut run = RunSummary {
        run_id: String::new(),
        started: String::new(),
        commit: None,
        kinds: BTreeMap::new(),
    };
    let mut side = String::new();
    for g in 0..reader.num_row_groups() {
        let Some(c) = read_group(reader.get_row_group(g)?.as_ref(), wanted)? else {
            continue;
        };
        if let (Some(id), Some(s), Some(&ms)) =
            (c.run_ids.first(), c.sides.first(), c.started.first())
        {
            run.run_id = text(id)?.to_owned();
            side = text(s)?.to_owned();
            run.started = DateTime::<Utc>::from_timestamp_millis(ms)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default();
            if c.commit_def.first() == Some(&1) {
                run.commit = c.commits.first().map(text).transpose()?.map(str::to_owned);
            }
        }
        add_rows(&mut run, &c)?;
    }
    Ok((run, side))
}

/// One row group's columns, each of its rows long (but `functions` and `commits`, which hold
/// only the rows whose definition level is 1).
struct GroupColumns {
    rows: usize,
    run_ids: Vec<ByteArray>,
    sides: Vec<ByteArray>,
    commits: Vec<ByteArray>,
    commit_def: Vec<i16>,
    profiles: Vec<ByteArray>,
    pods: Vec<ByteArray>,
    sample_types: Vec<ByteArray>,
    units: Vec<ByteArray>,
    functions: Vec<ByteArray>,
    function_def: Vec<i16>,
    started: Vec<i64>,
    windows: Vec<i32>,
    seconds: Vec<f64>,
    exact: Vec<bool>,
    flat: Vec<f64>,
    cum: Vec<f64>,
    flat_events: Vec<f64>,
    cum_events: Vec<f64>,
    depth: Vec<f64>,
}

/// A row group's columns; `None` when the group holds one profile kind and sample type that
/// is not wanted (only its two naming columns are then decoded).
fn read_group(
    group: &dyn RowGroupReader,
    wanted: &dyn Fn(ProfileKind, &str) -> bool,
) -> Result<Option<GroupColumns>, SummaryError> {
    let rows = usize::try_from(group.metadata().num_rows()).unwrap_or(0);
    let names: Vec<String> = group
        .metadata()
        .schema_descr()
        .columns()
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    // The group's kind and sample type first: a group of one unwanted pair is skipped.
    let position = |name: &str| names.iter().position(|n| n == name);
    let (Some(pi), Some(si)) = (position("profile"), position("sample_type")) else {
        return Err(SummaryError::Invalid(
            "no profile or sample_type column".into(),
        ));
    };
    let mut columns: BTreeMap<String, Read> = BTreeMap::new();
    for i in [pi, si] {
        columns.insert(
            names[i].clone(),
            read_column(group.get_column_reader(i)?, rows)?,
        );
    }
    if let (Some(Read::Bytes(p, _)), Some(Read::Bytes(s, _))) =
        (columns.get("profile"), columns.get("sample_type"))
    {
        fn single(v: &[ByteArray]) -> Option<&ByteArray> {
            v.first().filter(|f| v.iter().all(|x| x == *f))
        }
        if let (Some(p), Some(s)) = (single(p), single(s)) {
            let kind = ProfileKind::from_name(text(p)?);
            if !kind.is_some_and(|k| wanted(k, text(s).unwrap_or_default())) {
                return Ok(None);
            }
        }
    }
    for (i, name) in names.into_iter().enumerate() {
        if i != pi && i != si {
            columns.insert(name, read_column(group.get_column_reader(i)?, rows)?);
        }
    }
    let missing = |name: &str| SummaryError::Invalid(format!("no column {name} of its type"));
    macro_rules! take {
        ($name:literal, $variant:ident) => {
            match columns.remove($name) {
                Some(Read::$variant(v)) if v.len() == rows => v,
                _ => return Err(missing($name)),
            }
        };
    }
    let mut bytes = |name: &str| match columns.remove(name) {
        Some(Read::Bytes(v, def)) => Ok((v, def)),
        _ => Err(missing(name)),
    };
    let (run_ids, _) = bytes("run_id")?;
    let (sides, _) = bytes("side")?;
    let (commits, commit_def) = bytes("commit")?;
    let (profiles, _) = bytes("profile")?;
    let (pods, _) = bytes("pod")?;
    let (sample_types, _) = bytes("sample_type")?;
    let (units, _) = bytes("unit")?;
    let (functions, function_def) = bytes("function")?;
    let c = GroupColumns {
        rows,
        run_ids,
        sides,
        commits,
        commit_def,
        profiles,
        pods,
        sample_types,
        units,
        functions,
        function_def,
        started: take!("started", Longs),
        windows: take!("windows", Ints),
        seconds: take!("seconds", Doubles),
        exact: take!("exact", Bools),
        flat: take!("flat", Doubles),
        cum: take!("cum", Doubles),
        flat_events: take!("flat_events", Doubles),
        cum_events: take!("cum_events", Doubles),
        depth: take!("depth", Doubles),
    };
    for len in [
        c.run_ids.len(),
        c.sides.len(),
        c.profiles.len(),
        c.pods.len(),
        c.sample_types.len(),
        c.units.len(),
        c.function_def.len(),
    ] {
        if len != rows {
            return Err(SummaryError::Invalid("columns of different lengths".into()));
        }
    }
    Ok(Some(c))
}

/// Adds a row group's rows to the run: a pod's total row (no function) or one function's.
fn add_rows(run: &mut RunSummary, c: &GroupColumns) -> Result<(), SummaryError> {
    let mut next_function = 0;
    // Where the last row's pod and sample type went, to skip lookups on a run of rows.
    let mut last: Option<(ProfileKind, usize, usize)> = None;
    for row in 0..c.rows {
        let function = if c.function_def[row] == 1 {
            let f = c
                .functions
                .get(next_function)
                .ok_or_else(|| SummaryError::Invalid("function column too short".into()))?;
            next_function += 1;
            Some(text(f)?)
        } else {
            None
        };
        let Some(kind) = ProfileKind::from_name(text(&c.profiles[row])?) else {
            continue;
        };
        let pod_name = text(&c.pods[row])?;
        let st_name = text(&c.sample_types[row])?;
        let (pod_i, st_i) = match last {
            Some((k, p, s))
                if k == kind
                    && function.is_some()
                    && run.kinds[&k][p].pod == pod_name
                    && run.kinds[&k][p].sample_types[s].sample_type.name == st_name =>
            {
                (p, s)
            }
            _ => slot(run, kind, pod_name, st_name, c, row)?,
        };
        last = Some((kind, pod_i, st_i));
        let st = &mut run.kinds.get_mut(&kind).expect("inserted above")[pod_i].sample_types[st_i];
        match function {
            None => {
                st.total = c.flat[row];
                st.total_events = c.flat_events[row];
            }
            Some(name) => st.functions.push(FunctionSummary {
                name: name.to_owned(),
                flat: c.flat[row],
                cum: c.cum[row],
                flat_events: c.flat_events[row],
                cum_events: c.cum_events[row],
                depth: c.depth[row],
            }),
        }
    }
    Ok(())
}

/// Where a row's pod and sample type sit in the run, made on their first row.
fn slot(
    run: &mut RunSummary,
    kind: ProfileKind,
    pod_name: &str,
    st_name: &str,
    c: &GroupColumns,
    row: usize,
) -> Result<(usize, usize), SummaryError> {
    let list = run.kinds.entry(kind).or_default();
    let p = match list.iter().position(|p| p.pod == pod_name) {
        Some(p) => p,
        None => {
            list.push(PodSummary {
                pod: pod_name.to_owned(),
                windows: usize::try_from(c.windows[row]).unwrap_or(0),
                seconds: c.seconds[row],
                sample_types: Vec::new(),
            });
            list.len() - 1
        }
    };
    let sts = &mut list[p].sample_types;
    let s = match sts.iter().position(|s| s.sample_type.name == st_name) {
        Some(s) => s,
        None => {
            sts.push(SampleTypeSummary {
                sample_type: SampleType {
                    name: st_name.to_owned(),
                    unit: text(&c.units[row])?.to_owned(),
                },
                total: 0.0,
                total_events: 0.0,
                exact: c.exact[row],
                functions: Vec::new(),
            });
            sts.len() - 1
        }
    };
    Ok((p, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, f: f64) -> PodSummary {
        PodSummary {
            pod: name.into(),
            windows: 2,
            seconds: 20.0,
            sample_types: vec![SampleTypeSummary {
                sample_type: SampleType {
                    name: "cpu".into(),
                    unit: "nanoseconds".into(),
                },
                total: 1e9,
                total_events: 100.0,
                exact: false,
                functions: vec![
                    FunctionSummary {
                        name: "main.a".into(),
                        flat: f,
                        cum: f * 2.0,
                        flat_events: f / 1e7,
                        cum_events: f / 5e6,
                        depth: 1.5,
                    },
                    FunctionSummary {
                        name: "crypto/sha256.block".into(),
                        flat: 3e8,
                        cum: 3e8,
                        flat_events: 30.0,
                        cum_events: 30.0,
                        depth: 0.0,
                    },
                ],
            }],
        }
    }

    #[test]
    fn a_summary_reads_back_as_written() {
        let mut kinds = BTreeMap::new();
        kinds.insert(ProfileKind::Cpu, vec![pod("p1", 2e8), pod("p2", 4e8)]);
        let run = SummaryRun {
            service: "api".into(),
            run_id: "20261205T031700Z-ab12".into(),
            started: DateTime::parse_from_rfc3339("2026-12-05T03:17:00Z")
                .unwrap()
                .with_timezone(&Utc),
            commit: Some("0123456789abcdef".into()),
            side: "nightly".into(),
        };
        let bytes = encode(&run, &kinds).unwrap();
        assert_eq!(&bytes[..4], b"PAR1");
        let (back, side) = decode(bytes.clone(), &|_, _| true).unwrap();
        assert_eq!(side, "nightly");
        assert_eq!(back.run_id, run.run_id);
        assert_eq!(back.started, "2026-12-05T03:17:00Z");
        assert_eq!(back.commit.as_deref(), Some("0123456789abcdef"));
        assert_eq!(back.kinds, kinds);

        let no_commit = SummaryRun {
            commit: None,
            ..run
        };
        let (back, _) = decode(encode(&no_commit, &kinds).unwrap(), &|_, _| true).unwrap();
        assert_eq!(back.commit, None);
        assert!(matches!(
            decode(b"not parquet".to_vec(), &|_, _| true),
            Err(SummaryError::Parquet(_))
        ));
        // Unwanted groups are skipped whole.
        let (none, _) = decode(bytes, &|_, st| st != "cpu").unwrap();
        assert!(none.kinds.is_empty());
    }
}

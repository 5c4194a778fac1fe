//! Per-function aggregation: flat and cumulative values for every sample type.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use serde::{Deserialize, Serialize};

use super::decode::{not_a_profile, DecodeOptions};
use super::footprint::{is_profiler_function, Footprint};
use super::labels::LabelView;
use super::proto;
use super::wire::{self, RawLocation, RawProfile, RawValueType};
use super::{ProfileError, ProfileKind, MAX_TABLE_CELLS};

/// What one value column of a profile measures, e.g. `cpu` in `nanoseconds`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SampleType {
    /// The quantity, e.g. `cpu`, `alloc_space`, `goroutine`.
    pub name: String,
    /// Its unit, e.g. `nanoseconds`, `bytes`, `count`.
    pub unit: String,
}

#[cfg(test)]
impl SampleType {
    /// A live heap profile's columns, as Go and @datadog/pprof write them.
    pub(crate) fn inuse() -> Vec<SampleType> {
        [("inuse_objects", "count"), ("inuse_space", "bytes")]
            .map(|(name, unit)| SampleType {
                name: name.into(),
                unit: unit.into(),
            })
            .to_vec()
    }
}

impl std::fmt::Display for SampleType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.name, self.unit)
    }
}

/// A profile reduced to per-function totals: the input of every comparison.
///
/// Values are kept in a dense table (function × sample type) because comparisons walk every
/// function for every sample type.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionProfile {
    /// The kind the content points to; mutex and block cannot be told apart by content and
    /// come out as [`ProfileKind::Mutex`] until a file name or capture says otherwise.
    pub kind: Option<ProfileKind>,
    /// The value columns, in the profile's order.
    pub sample_types: Vec<SampleType>,
    /// The sample type the profile asks to show by default, if it names one.
    pub default_sample_type: Option<String>,
    /// What one sampling period measures.
    pub period_type: Option<SampleType>,
    /// The sampling period, in units of `period_type` (e.g. 10,000,000 ns for 100 Hz CPU).
    pub period: i64,
    /// How long the profile covers, in nanoseconds (0 for snapshots).
    pub duration_nanos: i64,
    /// When the profile was taken, in nanoseconds since the epoch.
    pub time_nanos: i64,
    /// Number of samples (stack records) in the profile.
    pub sample_count: usize,
    /// Sum of every sample's values, per sample type.
    pub totals: Vec<i64>,
    /// Sum of the values removed as the gate's own footprint, per sample type (not in
    /// `totals`; zeros when nothing was removed).
    pub footprint: Vec<i64>,
    /// Function names; a function's index addresses its rows in the value tables. Shared, so
    /// that the comparison and every label group hold the names without copying them.
    pub functions: Vec<Arc<str>>,
    /// Per function: the sum, over the samples whose stack holds it, of how many frames below
    /// it the leaf is (0 for the leaf itself), and the number of those samples. Their ratio
    /// says how deep a function sits, which per-function totals alone cannot.
    pub leaf_distance: Vec<(u64, u64)>,
    flat: Vec<i64>,
    cum: Vec<i64>,
}

impl FunctionProfile {
    /// Builds a profile from per-function values, for simulations and tests.
    ///
    /// `flat` and `cum` are indexed `[function][sample type]`; totals are the sum of flat, as
    /// they are in a real profile. Returns `None` when the shapes disagree.
    #[allow(clippy::too_many_arguments)]
    pub fn from_values(
        kind: ProfileKind,
        sample_types: Vec<SampleType>,
        functions: Vec<String>,
        flat: Vec<Vec<i64>>,
        cum: Vec<Vec<i64>>,
        period: i64,
        duration_nanos: i64,
    ) -> Option<FunctionProfile> {
        let n_types = sample_types.len();
        let shaped =
            |t: &Vec<Vec<i64>>| t.len() == functions.len() && t.iter().all(|r| r.len() == n_types);
        if !shaped(&flat) || !shaped(&cum) {
            return None;
        }
        let totals: Vec<i64> = (0..n_types)
            .map(|st| flat.iter().map(|r| r[st]).sum())
            .collect();
        Some(FunctionProfile {
            kind: Some(kind),
            sample_types,
            default_sample_type: None,
            period_type: None,
            period,
            duration_nanos,
            time_nanos: 0,
            sample_count: functions.len(),
            footprint: vec![0; totals.len()],
            totals,
            leaf_distance: vec![(0, 0); functions.len()],
            functions: functions.into_iter().map(Arc::from).collect(),
            flat: flat.into_iter().flatten().collect(),
            cum: cum.into_iter().flatten().collect(),
        })
    }

    /// A profile with this one's metadata (kind, sample types, period, duration) and no
    /// samples: what a window holds for a label value that did not occur in it.
    pub fn empty_like(&self) -> FunctionProfile {
        FunctionProfile {
            sample_count: 0,
            totals: vec![0; self.sample_types.len()],
            footprint: vec![0; self.sample_types.len()],
            leaf_distance: Vec::new(),
            functions: Vec::new(),
            flat: Vec::new(),
            cum: Vec::new(),
            ..self.clone_metadata()
        }
    }

    fn clone_metadata(&self) -> FunctionProfile {
        FunctionProfile {
            kind: self.kind,
            sample_types: self.sample_types.clone(),
            default_sample_type: self.default_sample_type.clone(),
            period_type: self.period_type.clone(),
            period: self.period,
            duration_nanos: self.duration_nanos,
            time_nanos: self.time_nanos,
            sample_count: 0,
            totals: Vec::new(),
            footprint: Vec::new(),
            leaf_distance: Vec::new(),
            functions: Vec::new(),
            flat: Vec::new(),
            cum: Vec::new(),
        }
    }

    /// Own value of `function` (samples where it is the innermost frame) for sample type `st`.
    pub fn flat(&self, function: usize, st: usize) -> i64 {
        self.flat[function * self.sample_types.len() + st]
    }

    /// Cumulative value of `function` (samples with it anywhere on the stack) for `st`.
    pub fn cum(&self, function: usize, st: usize) -> i64 {
        self.cum[function * self.sample_types.len() + st]
    }

    /// Index of the sample type called `name`.
    pub fn sample_type_index(&self, name: &str) -> Option<usize> {
        self.sample_types.iter().position(|t| t.name == name)
    }

    /// The index of the sample type to show when nobody asks for one: the profile's default,
    /// else the last one (pprof's rule).
    pub fn default_sample_index(&self) -> usize {
        self.default_sample_type
            .as_deref()
            .and_then(|n| self.sample_type_index(n))
            .unwrap_or(self.sample_types.len().saturating_sub(1))
    }
}

/// Aggregates a decoded profile per function (see [`aggregate_bytes`]).
pub fn aggregate(p: &proto::Profile) -> Result<FunctionProfile, ProfileError> {
    use prost::Message;
    aggregate_bytes(&p.encode_to_vec())
}

/// Aggregates a profile per function, straight from its (inflated) protobuf bytes.
///
/// Flat goes to the innermost frame of each sample (the first line of the first location,
/// since a location's lines are innermost-first); cum goes once to every distinct function on
/// the stack, so recursion is not counted twice. Functions are identified by name, as pprof's
/// default `functions` granularity does; frames without a function are named by address.
///
/// The gate's own footprint is removed (see [`Footprint`]).
pub fn aggregate_bytes(raw: &[u8]) -> Result<FunctionProfile, ProfileError> {
    let mut groups = aggregate_view(raw, &LabelView::default(), Footprint::Remove)?;
    Ok(groups.pop().expect("a view of everything has one group").1)
}

/// Reads a profile file as cheaply as anything can: inflated, its messages located in place,
/// and every sample's location ids and values walked, without aggregating. Returns the number
/// of samples and the sum of their first values. The floor that `cargo bench --bench decode`
/// measures aggregation against; nothing in the gate needs it.
pub fn scan(bytes: &[u8], limits: DecodeOptions) -> Result<(usize, i64), ProfileError> {
    let raw = super::inflate(bytes, limits)?;
    let p = wire::read_profile(&raw).map_err(|e| not_a_profile(&raw, Some(e.to_string())))?;
    let (mut locations, mut values) = (Vec::new(), Vec::new());
    let mut sum = 0i64;
    for (si, sample) in p.samples.iter().enumerate() {
        wire::read_sample(sample, &mut locations, &mut values)
            .map_err(|e| ProfileError::Protobuf(format!("sample {si}: {e}")))?;
        sum = sum.wrapping_add(values.first().copied().unwrap_or(0) as i64);
        sum = sum.wrapping_add(locations.len() as i64);
    }
    Ok((p.samples.len(), sum))
}

/// Aggregates the samples a [`LabelView`] keeps: one profile (`None`) without a split, else
/// one per value of the split label, in order of first appearance (or, when no sample has the
/// label, one empty profile under `None` that carries the metadata). Labels are read only when
/// the view asks for them, so the whole-profile path costs nothing extra. With
/// [`Footprint::Remove`], samples whose stack runs through the profiling machinery are left out
/// and summed in [`FunctionProfile::footprint`] instead.
pub fn aggregate_view(
    raw: &[u8],
    view: &LabelView,
    footprint: Footprint,
) -> Result<Vec<(Option<String>, FunctionProfile)>, ProfileError> {
    let p = match wire::read_profile(raw) {
        Ok(p) if !p.sample_types.is_empty() => p,
        Ok(_) => return Err(not_a_profile(raw, None)),
        Err(e) => return Err(not_a_profile(raw, Some(e.to_string()))),
    };
    let strings = StringTable::new(&p.strings);
    let meta = Metadata::read(&p, &strings)?;
    let Frames {
        names,
        frames,
        locations,
    } = Frames::build(&p, &strings, footprint)?;
    let n_names = names.len();
    let n_types = meta.sample_types.len();
    let mut groups = Groups::new(n_names, n_types, view.by.is_none())?;
    let stride = Table::stride(n_types);
    let read_labels = !view.is_everything();
    let (mut raw_labels, mut labels) = (Vec::new(), Vec::new());
    let mut stack: Vec<(u32, u32)> = Vec::new();
    let overflow = |st: usize| ProfileError::Overflow {
        sample_type: meta.sample_types[st].to_string(),
    };
    let (mut location_ids, mut raw_values) = (Vec::new(), Vec::new());
    let mut values: Vec<i64> = Vec::with_capacity(n_types);

    for (si, sample) in p.samples.iter().enumerate() {
        wire::read_sample(sample, &mut location_ids, &mut raw_values)
            .map_err(|e| ProfileError::Protobuf(format!("sample {si}: {e}")))?;
        if raw_values.len() != n_types {
            return Err(ProfileError::ValueCount {
                sample: si,
                got: raw_values.len(),
                expected: n_types,
            });
        }
        values.clear();
        values.extend(raw_values.iter().map(|&v| v as i64));
        let g = if read_labels {
            wire::read_labels(sample, &mut raw_labels)
                .map_err(|e| ProfileError::Protobuf(format!("sample {si}: {e}")))?;
            labels.clear();
            for l in &raw_labels {
                let value = if l.str != 0 {
                    strings.get(l.str, "label.str")?.into_owned()
                } else {
                    l.num.to_string()
                };
                labels.push((strings.get(l.key, "label.key")?.into_owned(), value));
            }
            match view.place(&labels) {
                None => continue,
                Some(None) => 0,
                Some(Some(value)) => groups.of_value(value)?,
            }
        } else {
            0
        };
        stack.clear();
        let mut through_profiler = false;
        for &loc_id in &location_ids {
            // An error is built only when a location is missing: building one per frame and
            // dropping it (a call into the error's drop glue) was 0.7% of `gate diff`'s CPU.
            let Some(&(start, end, profiler)) = locations.get(loc_id) else {
                return Err(ProfileError::UnknownLocation {
                    sample: si,
                    location: loc_id,
                });
            };
            through_profiler |= profiler;
            stack.push((start, end));
        }
        if through_profiler {
            let removed = &mut groups.tables[g].1.footprint;
            for (st, &v) in values.iter().enumerate() {
                removed[st] = removed[st].saturating_add(v);
            }
            continue;
        }
        let Table {
            flat,
            rows,
            totals,
            samples,
            ..
        } = &mut groups.tables[g].1;
        *samples += 1;
        // The last sample that credited a function: sample `si` stamps `si + 1`; zero: none.
        let stamp = si as i64 + 1;
        let mut innermost = true;
        let mut distance = 0i64;
        for &(start, end) in &stack {
            for &name in &frames[start as usize..end as usize] {
                if innermost {
                    let cells = &mut flat[name as usize * n_types..][..n_types];
                    for (st, (cell, &v)) in cells.iter_mut().zip(&values).enumerate() {
                        *cell = cell.checked_add(v).ok_or_else(|| overflow(st))?;
                    }
                    innermost = false;
                }
                let row = &mut rows[name as usize * stride..][..stride];
                let (book, cum) = row.split_at_mut(3);
                if book[0] != stamp {
                    book[0] = stamp;
                    // Summed distance from the leaf, and the samples holding the function.
                    book[1] += distance;
                    book[2] += 1;
                    for (st, (cell, &v)) in cum.iter_mut().zip(&values).enumerate() {
                        *cell = cell.checked_add(v).ok_or_else(|| overflow(st))?;
                    }
                }
                distance += 1;
            }
        }
        for (st, &v) in values.iter().enumerate() {
            totals[st] = totals[st].checked_add(v).ok_or_else(|| overflow(st))?;
        }
    }
    Ok(groups.into_profiles(names.into_names(), &meta, &p))
}

/// What a profile says of itself, besides its samples.
struct Metadata {
    sample_types: Vec<SampleType>,
    default_sample_type: Option<String>,
    period_type: Option<SampleType>,
}

impl Metadata {
    fn read(p: &RawProfile<'_>, strings: &StringTable<'_>) -> Result<Metadata, ProfileError> {
        let sample_types = p
            .sample_types
            .iter()
            .map(|vt| strings.value_type(vt, "sample_type"))
            .collect::<Result<Vec<_>, _>>()?;
        let default_sample_type = match p.default_sample_type {
            0 => None,
            i => Some(strings.get(i, "default_sample_type")?.into_owned()),
        };
        let period_type = p
            .period_type
            .as_ref()
            .map(|vt| strings.value_type(vt, "period_type"))
            .transpose()?;
        Ok(Metadata {
            sample_types,
            default_sample_type,
            period_type,
        })
    }
}

/// Every location's frames as interned function names, innermost first, so the sample loop
/// only looks ranges up.
struct Frames<'a> {
    names: NameTable<'a>,
    /// Every location's frames, one after another.
    frames: Vec<u32>,
    /// Location id -> its range in `frames`, and whether it holds a frame of the profiling
    /// machinery (decided once per location, so the sample loop only ORs flags).
    locations: IdIndex<(u32, u32, bool)>,
}

impl<'a> Frames<'a> {
    fn build(
        p: &RawProfile<'a>,
        strings: &StringTable<'a>,
        footprint: Footprint,
    ) -> Result<Frames<'a>, ProfileError> {
        let mut names = NameTable::with_capacity(p.functions.len());
        // Function id -> interned name. Ids are usually dense from 1, so a vector beats a map.
        let function_names = IdIndex::build(p.functions.iter().map(|f| f.0), |i| {
            let (id, name) = p.functions[i];
            let name = strings.bytes(name, "function.name")?;
            Ok(if name.is_empty() {
                names.intern_made(format!("function#{id}"))
            } else {
                names.intern_raw(name)
            })
        })?;
        let mapping_index = IdIndex::build(p.mappings.iter().map(|m| m.id), Ok)?;
        let mut frames: Vec<u32> = Vec::with_capacity(p.line_functions.len() + 16);
        let locations = IdIndex::build(p.locations.iter().map(|l| l.id), |i| {
            let loc = &p.locations[i];
            let start = frames.len() as u32;
            if loc.lines.is_empty() {
                let name = address_name(loc, p, &mapping_index, strings)?;
                frames.push(names.intern_made(name));
            }
            for &function_id in &p.line_functions[loc.lines.clone()] {
                let Some(&name) = function_names.get(function_id) else {
                    return Err(ProfileError::UnknownFunction {
                        location: loc.id,
                        function: function_id,
                    });
                };
                frames.push(name);
            }
            let through_profiler = footprint == Footprint::Remove
                && frames[start as usize..]
                    .iter()
                    .any(|&n| is_profiler_function(names.name(n)));
            Ok((start, frames.len() as u32, through_profiler))
        })?;
        Ok(Frames {
            names,
            frames,
            locations,
        })
    }
}

/// The tables samples are summed into: one, or one per value of the split label, in order
/// of first appearance.
struct Groups {
    tables: Vec<(Option<String>, Table)>,
    index: HashMap<String, usize>,
    n_names: usize,
    n_types: usize,
}

impl Groups {
    /// No table yet when the view splits by a label (each value makes its own), else the one.
    fn new(n_names: usize, n_types: usize, whole: bool) -> Result<Groups, ProfileError> {
        let mut groups = Groups {
            tables: Vec::new(),
            index: HashMap::new(),
            n_names,
            n_types,
        };
        groups.check_cells(1, "")?;
        if whole {
            groups.tables.push((None, groups.table()));
        }
        Ok(groups)
    }

    fn table(&self) -> Table {
        Table {
            flat: super::written_zeros(self.n_names * self.n_types),
            rows: super::written_zeros(self.n_names * Table::stride(self.n_types)),
            n_types: self.n_types,
            totals: vec![0i64; self.n_types],
            footprint: vec![0i64; self.n_types],
            samples: 0,
        }
    }

    /// Refuses tables whose cells would pass [`MAX_TABLE_CELLS`].
    fn check_cells(&self, groups: usize, hint: &'static str) -> Result<(), ProfileError> {
        let cells = self.n_names as u128 * self.n_types as u128 * groups as u128;
        if cells > MAX_TABLE_CELLS as u128 {
            return Err(ProfileError::TooManyCells {
                functions: self.n_names,
                sample_types: self.n_types,
                groups,
                cells,
                limit: MAX_TABLE_CELLS,
                hint,
            });
        }
        Ok(())
    }

    /// The table of one value of the split label, made on its first sample.
    fn of_value(&mut self, value: &str) -> Result<usize, ProfileError> {
        if let Some(&g) = self.index.get(value) {
            return Ok(g);
        }
        self.check_cells(
            self.tables.len() + 1,
            "; split by a label with fewer values, or narrow the samples with --tag",
        )?;
        self.index.insert(value.to_owned(), self.tables.len());
        self.tables.push((Some(value.to_owned()), self.table()));
        Ok(self.tables.len() - 1)
    }

    /// One profile per table, sharing the names and the metadata.
    fn into_profiles(
        mut self,
        names: Vec<Arc<str>>,
        meta: &Metadata,
        p: &RawProfile<'_>,
    ) -> Vec<(Option<String>, FunctionProfile)> {
        if self.tables.is_empty() {
            // No sample carried the split label: an empty profile still carries the metadata.
            let table = self.table();
            self.tables.push((None, table));
        }
        let kind =
            ProfileKind::from_content(&meta.sample_types, meta.default_sample_type.as_deref());
        let mut functions = Some(names);
        let last = self.tables.len() - 1;
        self.tables
            .into_iter()
            .enumerate()
            .map(|(i, (value, t))| {
                // The names are shared by every group: copied for all but the last, which
                // takes them.
                let functions = if i == last {
                    functions.take()
                } else {
                    functions.clone()
                }
                .unwrap_or_default();
                let (cum, leaf_distance) = t.columns();
                let profile = FunctionProfile {
                    kind,
                    sample_types: meta.sample_types.clone(),
                    default_sample_type: meta.default_sample_type.clone(),
                    period_type: meta.period_type.clone(),
                    period: p.period,
                    duration_nanos: p.duration_nanos,
                    time_nanos: p.time_nanos,
                    sample_count: t.samples,
                    totals: t.totals,
                    footprint: t.footprint,
                    leaf_distance,
                    functions,
                    flat: t.flat,
                    cum,
                };
                (value, profile)
            })
            .collect()
    }
}

/// One group's per-function sums while its samples are read.
///
/// What the sample loop reads and adds at every frame of a function (whether this sample
/// already counted it, its distance from the leaf, its cumulative values) lies in one row, so
/// a frame costs one cache miss, not three: on the 250,000-stack heap profile, whose tables
/// outgrow the cache, separate arrays spent most of the aggregation waiting for memory. Flat
/// values, added once a sample, stay apart and keep the row small.
struct Table {
    /// Flat values, by function then sample type.
    flat: Vec<i64>,
    /// Per function, `stride(n_types)` cells: the stamp of the last sample that counted it
    /// (sample `si` stamps `si + 1`), its summed distance from the leaf, the samples holding
    /// it, then its cumulative values.
    rows: Vec<i64>,
    n_types: usize,
    totals: Vec<i64>,
    footprint: Vec<i64>,
    samples: usize,
}

impl Table {
    /// Cells per function row.
    fn stride(n_types: usize) -> usize {
        n_types + 3
    }

    /// The rows as the profile's columns: cumulative values by function then sample type,
    /// and each function's (summed distance, samples).
    fn columns(&self) -> (Vec<i64>, Vec<(u64, u64)>) {
        let n = self.n_types;
        let rows = self.rows.chunks_exact(Table::stride(n));
        let cum = rows.clone().flat_map(|r| &r[3..]).copied().collect();
        let leaf = rows.map(|r| (r[1] as u64, r[2] as u64)).collect();
        (cum, leaf)
    }
}

/// Names a frame that has no function: by mapping file and offset when known, else by address.
fn address_name(
    loc: &RawLocation,
    p: &RawProfile<'_>,
    mappings: &IdIndex<usize>,
    strings: &StringTable<'_>,
) -> Result<String, ProfileError> {
    if loc.mapping_id != 0 {
        if let Some(&mi) = mappings.get(loc.mapping_id) {
            let m = &p.mappings[mi];
            let file = strings.get(m.filename, "mapping.filename")?;
            if !file.is_empty() {
                let base = file.rsplit('/').next().unwrap_or(&file);
                let offset = loc
                    .address
                    .wrapping_sub(m.memory_start)
                    .wrapping_add(m.file_offset);
                return Ok(format!("{base}+0x{offset:x}"));
            }
        }
    }
    Ok(format!("0x{:x}", loc.address))
}

/// The profile's string table, with bounds-checked lookups; strings stay borrowed bytes and
/// are converted (lossily: non-UTF-8 names stay readable) only when looked up.
struct StringTable<'a> {
    raw: &'a [&'a [u8]],
}

impl<'a> StringTable<'a> {
    fn new(raw: &'a [&'a [u8]]) -> Self {
        StringTable { raw }
    }

    fn get(&self, index: i64, field: &'static str) -> Result<Cow<'a, str>, ProfileError> {
        self.bytes(index, field).map(String::from_utf8_lossy)
    }

    fn bytes(&self, index: i64, field: &'static str) -> Result<&'a [u8], ProfileError> {
        match usize::try_from(index).ok().and_then(|i| self.raw.get(i)) {
            Some(&bytes) => Ok(bytes),
            None => Err(ProfileError::StringIndex {
                field,
                index,
                len: self.raw.len(),
            }),
        }
    }

    fn value_type(
        &self,
        vt: &RawValueType,
        field: &'static str,
    ) -> Result<SampleType, ProfileError> {
        Ok(SampleType {
            name: self.get(vt.r#type, field)?.into_owned(),
            unit: self.get(vt.unit, field)?.into_owned(),
        })
    }
}

/// Interns function names so that equal names share one row.
///
/// Names from the string table are keyed by their bytes, borrowed from the profile, so each
/// distinct name costs one allocation; names made up here (addresses) are keyed by text.
struct NameTable<'a> {
    raw: FxHashMap<&'a [u8], u32>,
    made: FxHashMap<String, u32>,
    names: Vec<Arc<str>>,
}

impl<'a> NameTable<'a> {
    fn with_capacity(n: usize) -> Self {
        NameTable {
            raw: FxHashMap::with_capacity_and_hasher(n, Default::default()),
            made: FxHashMap::default(),
            names: Vec::with_capacity(n),
        }
    }

    fn intern_raw(&mut self, bytes: &'a [u8]) -> u32 {
        if let Some(&i) = self.raw.get(bytes) {
            return i;
        }
        // Names are almost always valid UTF-8, which `from_utf8` checks several times faster
        // than the lossy conversion walks it.
        let name: Arc<str> = match std::str::from_utf8(bytes) {
            Ok(name) => Arc::from(name),
            Err(_) => Arc::from(String::from_utf8_lossy(bytes)),
        };
        let i = match self.made.get(&*name) {
            Some(&i) => i,
            None => self.push(name),
        };
        self.raw.insert(bytes, i);
        i
    }

    fn intern_made(&mut self, name: String) -> u32 {
        if let Some(&i) = self
            .raw
            .get(name.as_bytes())
            .or_else(|| self.made.get(&name))
        {
            return i;
        }
        let i = self.push(Arc::from(name.as_str()));
        self.made.insert(name, i);
        i
    }

    fn push(&mut self, name: Arc<str>) -> u32 {
        self.names.push(name);
        self.names.len() as u32 - 1
    }

    fn len(&self) -> usize {
        self.names.len()
    }

    fn name(&self, i: u32) -> &str {
        &self.names[i as usize]
    }

    fn into_names(self) -> Vec<Arc<str>> {
        self.names
    }
}

/// Maps pprof ids (nonzero u64) to values: a dense vector when ids are compact, else a map.
enum IdIndex<T> {
    Dense(Vec<Option<T>>),
    Sparse(HashMap<u64, T>),
}

impl<T> IdIndex<T> {
    /// Builds the index over `ids`, computing each entry's value from its position.
    fn build<I, F>(ids: I, mut value: F) -> Result<Self, ProfileError>
    where
        I: ExactSizeIterator<Item = u64>,
        F: FnMut(usize) -> Result<T, ProfileError>,
    {
        let n = ids.len();
        let ids: Vec<u64> = ids.collect();
        let max = ids.iter().copied().max().unwrap_or(0);
        if max as u128 <= (n as u128) * 4 + 16 {
            let mut dense: Vec<Option<T>> = Vec::new();
            dense.resize_with(max as usize + 1, || None);
            for (i, &id) in ids.iter().enumerate() {
                dense[id as usize] = Some(value(i)?);
            }
            Ok(IdIndex::Dense(dense))
        } else {
            let mut map = HashMap::with_capacity(n);
            for (i, &id) in ids.iter().enumerate() {
                map.insert(id, value(i)?);
            }
            Ok(IdIndex::Sparse(map))
        }
    }

    fn get(&self, id: u64) -> Option<&T> {
        match self {
            IdIndex::Dense(v) => usize::try_from(id).ok().and_then(|i| v.get(i)?.as_ref()),
            IdIndex::Sparse(m) => m.get(&id),
        }
    }
}

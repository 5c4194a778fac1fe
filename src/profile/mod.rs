//! Decode pprof profiles and aggregate them per function.
//!
//! Pure: bytes in, values out. File names are added to errors by the caller that read the file.
mod aggregate;
mod decode;
mod footprint;
mod kind;
pub mod labels;
pub mod proto;
#[cfg(test)]
mod tests;
pub mod units;
mod wire;

pub use aggregate::{
    aggregate, aggregate_bytes, aggregate_view, scan, FunctionProfile, SampleType,
};
pub use decode::{decode, inflate, DecodeOptions, Inflated, MemoryBudget};
pub use footprint::{is_profiler_function, Footprint};
pub use kind::ProfileKind;
pub use labels::{LabelView, TagFilter};

/// A table of `n` zeros, written now rather than left to the kernel.
///
/// `vec![0; n]` asks for zeroed memory, which large tables get as untouched pages: the first
/// read of each page maps the shared zero page and the first write then copies it, a second
/// fault that also flushes the other decoding thread's TLB. Sums are read before they are
/// written, so on `gate diff` of large.cpu that was 5% of the CPU (`perf`). Writing the zeros
/// up front costs one fault per page. The zero goes through `black_box` so that the compiler
/// cannot turn the allocation and its fill back into a zeroed allocation.
pub(crate) fn written_zeros<T: Copy + Default>(n: usize) -> Vec<T> {
    let mut table = Vec::with_capacity(n);
    table.resize(n, std::hint::black_box(T::default()));
    table
}

/// Why a profile could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Zero bytes.
    #[error("the file is empty; expected a pprof profile (.pb.gz)")]
    Empty,
    /// Text where a binary profile was expected: an HTML error page, a `debug=1` profile.
    #[error("this is text, not a pprof profile (it starts with {snippet:?}); capture with /debug/pprof/<profile> without debug=1, and check the URL")]
    Text {
        /// The start of the text, for the user to recognise it.
        snippet: String,
    },
    /// The gzip stream is corrupt or truncated.
    #[error("the gzip data is corrupt or truncated ({0}); the file was likely cut short while downloading")]
    Gzip(#[source] std::io::Error),
    /// Decompressed data exceeds the configured bound.
    #[error("the profile inflates to more than {limit} bytes, the limit; if it is genuine, raise the limit")]
    TooLarge {
        /// The bound in bytes.
        limit: u64,
    },
    /// The bytes are not a valid protobuf `Profile`.
    #[error("not a pprof profile: {0}")]
    Protobuf(String),
    /// A message that decodes but declares no sample types.
    #[error("not a pprof profile: it declares no sample types")]
    NoSampleTypes,
    /// A string-table index beyond the table.
    #[error(
        "corrupt profile: {field} refers to string {index}, but the string table has {len} entries"
    )]
    StringIndex {
        /// Which field held the index.
        field: &'static str,
        /// The bad index.
        index: i64,
        /// The table's length.
        len: usize,
    },
    /// A sample refers to a location the profile does not define.
    #[error(
        "corrupt profile: sample {sample} refers to location {location}, which is not defined"
    )]
    UnknownLocation {
        /// Position of the sample.
        sample: usize,
        /// The missing location id.
        location: u64,
    },
    /// A line refers to a function the profile does not define.
    #[error(
        "corrupt profile: location {location} refers to function {function}, which is not defined"
    )]
    UnknownFunction {
        /// The location id.
        location: u64,
        /// The missing function id.
        function: u64,
    },
    /// A sample with the wrong number of values.
    #[error("corrupt profile: sample {sample} has {got} values but the profile declares {expected} sample types")]
    ValueCount {
        /// Position of the sample.
        sample: usize,
        /// Values found.
        got: usize,
        /// Values expected.
        expected: usize,
    },
    /// Values whose sum does not fit 64 bits.
    #[error("corrupt profile: the values of {sample_type} overflow a 64-bit sum; Go never writes such values, so the file is damaged or was not written by Go")]
    Overflow {
        /// The sample type that overflowed.
        sample_type: String,
    },
    /// The per-function tables would be larger than [`MAX_TABLE_CELLS`].
    #[error("the profile needs {cells} table cells ({functions} functions x {sample_types} sample types x {groups} label values), more than the limit of {limit}; a Go profile is far smaller, so the file is likely damaged{hint}")]
    TooManyCells {
        /// Distinct function names.
        functions: usize,
        /// Sample types.
        sample_types: usize,
        /// Label values split by (1 without a split).
        groups: usize,
        /// The product.
        cells: u128,
        /// [`MAX_TABLE_CELLS`].
        limit: usize,
        /// What to do when splitting by a label.
        hint: &'static str,
    },
}

/// Most cells (function x sample type x label value) the aggregated tables of one profile may
/// hold: 2^26, 1 GiB of flat and cumulative values (and 24 bytes of bookkeeping a function
/// while the samples are summed). A Go profile with a million functions and four sample types
/// needs 4 million. The bound stops a small hostile file (a million sample types and a million
/// functions, no samples) from asking for terabytes.
pub const MAX_TABLE_CELLS: usize = 1 << 26;

/// Longest function name reports show, in characters; longer names are shortened by
/// [`display_name`]. Matching (policy globs, comparisons) always uses the whole name.
pub const MAX_DISPLAY_NAME_CHARS: usize = 240;

/// A function name as reports show it: whole when at most [`MAX_DISPLAY_NAME_CHARS`]
/// characters, else its start and its end (where Go puts the method) around an ellipsis and
/// the length, e.g. `main.xxxx…(1048581 chars)….End`.
pub fn display_name(name: &str) -> std::borrow::Cow<'_, str> {
    const HEAD: usize = 160;
    const TAIL: usize = 60;
    if name.len() <= MAX_DISPLAY_NAME_CHARS {
        return std::borrow::Cow::Borrowed(name);
    }
    let chars = name.chars().count();
    if chars <= MAX_DISPLAY_NAME_CHARS {
        return std::borrow::Cow::Borrowed(name);
    }
    let head: String = name.chars().take(HEAD).collect();
    let tail_start = name
        .char_indices()
        .rev()
        .nth(TAIL - 1)
        .map_or(0, |(i, _)| i);
    std::borrow::Cow::Owned(format!("{head}…({chars} chars)…{}", &name[tail_start..]))
}

/// Decodes and aggregates a profile file's bytes (gzipped or raw) in one step.
pub fn read_profile(bytes: &[u8], limits: DecodeOptions) -> Result<FunctionProfile, ProfileError> {
    let mut groups = aggregate_view(
        &inflate(bytes, limits)?,
        &LabelView::default(),
        limits.footprint,
    )?;
    Ok(groups.pop().expect("a view of everything has one group").1)
}

/// Decodes a profile file's bytes and aggregates the samples a [`LabelView`] keeps (one
/// profile per value of its split label, if it has one).
pub fn read_profile_view(
    bytes: &[u8],
    limits: DecodeOptions,
    view: &LabelView,
) -> Result<Vec<(Option<String>, FunctionProfile)>, ProfileError> {
    aggregate_view(&inflate(bytes, limits)?, view, limits.footprint)
}

//! From file bytes to the raw protobuf message: gunzip with a size bound, then decode.

use std::borrow::Cow;
use std::io::Read;
use std::ops::Deref;
use std::sync::{Condvar, Mutex};

use prost::Message;

use super::footprint::Footprint;
use super::proto;
use super::ProfileError;

/// How profile files are read: the limits that keep hostile input from exhausting memory,
/// and whether the gate's own footprint is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Largest accepted size of the profile once decompressed, in bytes.
    ///
    /// A gzip bomb inflates a few kilobytes into gigabytes; past this bound decoding stops with
    /// [`ProfileError::TooLarge`] instead of allocating.
    pub max_decompressed_bytes: u64,
    /// Whether samples through the profiling machinery are removed (see [`Footprint`]).
    pub footprint: Footprint,
    /// The run's bound on bytes inflated at once, over every profile being decoded: without
    /// one, each pod's bomb could take the per-profile limit at the same time.
    pub budget: Option<&'static MemoryBudget>,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            max_decompressed_bytes: 1 << 30,
            footprint: Footprint::Remove,
            budget: None,
        }
    }
}

/// A bound on the bytes all decodes of a run hold inflated at once.
///
/// A decode reserves its profile's limit before inflating (waiting while others hold the
/// budget), keeps what its profile really took while the inflated bytes live, and gives the
/// rest back at once. So however many pods send bombs, at most the budget is inflated at any
/// time, and a bomb is cut at the per-profile limit; well-formed profiles only wait their turn.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: u64,
    used: Mutex<u64>,
    freed: Condvar,
}

impl PartialEq for MemoryBudget {
    /// Budgets are the same when they are the same object: each run has one.
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for MemoryBudget {}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub const fn new(limit: u64) -> MemoryBudget {
        MemoryBudget {
            limit,
            used: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// Waits until `bytes` (at most the whole budget) are free and holds them.
    fn lease(&'static self, bytes: u64) -> Lease {
        let bytes = bytes.min(self.limit);
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        while *used + bytes > self.limit {
            used = self.freed.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used += bytes;
        Lease {
            budget: self,
            bytes,
        }
    }

    fn give_back(&self, bytes: u64) {
        if bytes == 0 {
            return;
        }
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        *used = used.saturating_sub(bytes);
        self.freed.notify_all();
    }
}

/// Bytes held from a [`MemoryBudget`] until dropped.
#[derive(Debug)]
struct Lease {
    budget: &'static MemoryBudget,
    bytes: u64,
}

impl Lease {
    /// Keeps `bytes` of the lease and gives the rest back.
    fn shrink_to(&mut self, bytes: u64) {
        if bytes < self.bytes {
            self.budget.give_back(self.bytes - bytes);
            self.bytes = bytes;
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

/// A profile's raw protobuf bytes, holding their part of the run's [`MemoryBudget`] while
/// they live.
#[derive(Debug)]
pub struct Inflated<'a> {
    bytes: Cow<'a, [u8]>,
    _lease: Option<Lease>,
}

impl Deref for Inflated<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The raw protobuf bytes of a profile file: inflated when gzipped, checked against the limits.
pub fn inflate(bytes: &[u8], limits: DecodeOptions) -> Result<Inflated<'_>, ProfileError> {
    if bytes.is_empty() {
        return Err(ProfileError::Empty);
    }
    let mut lease = None;
    let raw: Cow<'_, [u8]> = if bytes.starts_with(&GZIP_MAGIC) {
        let mut cap = limits.max_decompressed_bytes;
        if let Some(budget) = limits.budget {
            let held = lease.insert(budget.lease(cap.saturating_add(1)));
            cap = cap.min(held.bytes.saturating_sub(1));
        }
        let out = inflate_gzip(bytes, cap, limits.max_decompressed_bytes)?;
        if let Some(held) = lease.as_mut() {
            held.shrink_to(out.capacity() as u64);
        }
        Cow::Owned(out)
    } else {
        if bytes.len() as u64 > limits.max_decompressed_bytes {
            return Err(ProfileError::TooLarge {
                limit: limits.max_decompressed_bytes,
            });
        }
        Cow::Borrowed(bytes)
    };
    if raw.is_empty() {
        return Err(ProfileError::Empty);
    }
    Ok(Inflated {
        bytes: raw,
        _lease: lease,
    })
}

/// Decodes a pprof profile from its file bytes, gzipped or raw protobuf, into owned messages.
///
/// Aggregation does not need this (see [`super::read_profile`]); it is for callers that want
/// the whole message.
pub fn decode(bytes: &[u8], limits: DecodeOptions) -> Result<proto::Profile, ProfileError> {
    let raw = inflate(bytes, limits)?;
    match proto::Profile::decode(raw.as_ref()) {
        Ok(profile) if !profile.sample_type.is_empty() => Ok(profile),
        Ok(_) => Err(not_a_profile(&raw, None)),
        Err(e) => Err(not_a_profile(&raw, Some(e.to_string()))),
    }
}

/// The error for bytes that did not decode as a profile, or decoded to one without sample
/// types. Text is only diagnosed after decoding fails: a valid profile starts with byte 0x0a,
/// which is also a newline, so sniffing first would misjudge some.
pub(crate) fn not_a_profile(raw: &[u8], decode_error: Option<String>) -> ProfileError {
    if looks_like_text(raw) {
        return not_pprof_text(raw);
    }
    match decode_error {
        Some(e) => ProfileError::Protobuf(e),
        None => ProfileError::NoSampleTypes,
    }
}

/// Inflates at most `cap` bytes (the profile limit, or less when the run's budget is
/// smaller), never holding a buffer larger than `cap + 1`: growth doubles, but is cut at the
/// cap, so a bomb costs what the cap allows and not twice that.
fn inflate_gzip(bytes: &[u8], cap: u64, limit: u64) -> Result<Vec<u8>, ProfileError> {
    let most = usize::try_from(cap.saturating_add(1)).unwrap_or(usize::MAX);
    // A gzip member ends with its inflated size (mod 2^32): one allocation of that size (cut
    // at the cap) instead of a doubling series, whose copies cost time and whose freed
    // buffers the allocator may keep. Where the trailer lies or there are several members,
    // the buffer grows as it must.
    let trailer = bytes.len().checked_sub(4).map(|at| {
        let size = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        size as usize
    });
    // Deflate inflates at most 1032x: a trailer claiming more lies, and is not believed.
    let most_possible = bytes.len().saturating_mul(1032);
    let initial = match trailer {
        Some(size) if size > 0 => size.min(most_possible).saturating_add(1),
        // Most profiles compress 2-4x.
        _ => bytes.len().saturating_mul(3),
    };
    let mut out = Vec::with_capacity(initial.min(most));
    let mut reader = flate2::read::MultiGzDecoder::new(bytes).take(cap.saturating_add(1));
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ProfileError::Gzip(e)),
        };
        if out.len() + n > out.capacity() {
            let want = out
                .capacity()
                .saturating_mul(2)
                .max(out.len() + n)
                .min(most);
            out.reserve_exact(want - out.len());
        }
        out.extend_from_slice(&chunk[..n]);
    }
    if out.len() as u64 > cap {
        return Err(ProfileError::TooLarge {
            limit: cap.min(limit),
        });
    }
    Ok(out)
}

/// Whether the bytes read as text (an HTML error page, a `debug=1` text profile, JSON) rather
/// than binary protobuf.
fn looks_like_text(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(256)];
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        // The cut may split a multi-byte character; the valid prefix decides.
        Err(e) if e.valid_up_to() > 0 && head.len() - e.valid_up_to() < 4 => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or("")
        }
        Err(_) => return false,
    };
    !text.is_empty()
        && text
            .chars()
            .all(|c| !c.is_control() || c == '\n' || c == '\r' || c == '\t')
}

fn not_pprof_text(bytes: &[u8]) -> ProfileError {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]);
    let first_line = head.lines().next().unwrap_or("").trim();
    let snippet: String = first_line.chars().take(60).collect();
    ProfileError::Text { snippet }
}

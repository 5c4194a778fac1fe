//! From file bytes to the raw protobuf message: gunzip with a size bound, then decode.

use std::borrow::Cow;
use std::io::Read;

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
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            max_decompressed_bytes: 1 << 30,
            footprint: Footprint::Remove,
        }
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The raw protobuf bytes of a profile file: inflated when gzipped, checked against the limits.
pub fn inflate(bytes: &[u8], limits: DecodeOptions) -> Result<Cow<'_, [u8]>, ProfileError> {
    if bytes.is_empty() {
        return Err(ProfileError::Empty);
    }
    let raw: Cow<'_, [u8]> = if bytes.starts_with(&GZIP_MAGIC) {
        Cow::Owned(inflate_gzip(bytes, limits)?)
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
    Ok(raw)
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

fn inflate_gzip(bytes: &[u8], limits: DecodeOptions) -> Result<Vec<u8>, ProfileError> {
    // Most profiles compress 2-4x; a guess avoids regrowing the buffer many times.
    let guess = bytes
        .len()
        .saturating_mul(3)
        .min(limits.max_decompressed_bytes as usize);
    let mut out = Vec::with_capacity(guess);
    let mut reader =
        flate2::read::MultiGzDecoder::new(bytes).take(limits.max_decompressed_bytes + 1);
    reader.read_to_end(&mut out).map_err(ProfileError::Gzip)?;
    if out.len() as u64 > limits.max_decompressed_bytes {
        return Err(ProfileError::TooLarge {
            limit: limits.max_decompressed_bytes,
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

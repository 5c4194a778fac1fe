//! A zero-copy reader of the pprof protobuf wire format, for the hot path.
//!
//! Decoding a profile into owned prost messages allocates for every sample, location and
//! string; aggregation needs none of that. This reader borrows from the inflated bytes and
//! keeps each sample as a slice, parsed only when it is aggregated. Every length is checked
//! against the buffer, so hostile input yields [`WireError`], never a panic or a huge
//! allocation. [`super::proto`] remains the reference definition of the format.

use std::ops::Range;

/// Malformed protobuf: where and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed protobuf at byte {offset}: {what}")]
pub struct WireError {
    /// Offset in the message being read.
    pub offset: usize,
    /// What was wrong.
    pub what: &'static str,
}

/// One field's value as it appears on the wire.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    /// A 32- or 64-bit fixed-width value: no pprof field uses one, so it is only skipped.
    Fixed,
}

impl<'a> Value<'a> {
    fn int(self, offset: usize) -> Result<u64, WireError> {
        match self {
            Value::Varint(v) => Ok(v),
            _ => Err(WireError {
                offset,
                what: "expected an integer field",
            }),
        }
    }

    fn bytes(self, offset: usize) -> Result<&'a [u8], WireError> {
        match self {
            Value::Bytes(b) => Ok(b),
            _ => Err(WireError {
                offset,
                what: "expected a length-delimited field",
            }),
        }
    }

    /// A repeated integer field, packed or not: pushes each value.
    fn ints(self, offset: usize, out: &mut Vec<u64>) -> Result<(), WireError> {
        match self {
            Value::Varint(v) => {
                out.push(v);
                Ok(())
            }
            Value::Bytes(b) => {
                let mut pos = 0;
                while pos < b.len() {
                    out.push(varint(b, &mut pos)?);
                }
                Ok(())
            }
            _ => Err(WireError {
                offset,
                what: "expected a repeated integer field",
            }),
        }
    }
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, WireError> {
    let mut result = 0u64;
    for shift in 0..10 {
        let Some(&b) = buf.get(*pos) else {
            return Err(WireError {
                offset: *pos,
                what: "truncated varint",
            });
        };
        *pos += 1;
        result |= u64::from(b & 0x7f) << (shift * 7);
        if b & 0x80 == 0 {
            return Ok(result);
        }
    }
    Err(WireError {
        offset: *pos,
        what: "varint longer than 10 bytes",
    })
}

/// Calls `f(field, value, offset)` for every field of a message.
pub(crate) fn for_each_field<'a>(
    buf: &'a [u8],
    mut f: impl FnMut(u32, Value<'a>, usize) -> Result<(), WireError>,
) -> Result<(), WireError> {
    let mut pos = 0;
    while pos < buf.len() {
        let start = pos;
        let key = varint(buf, &mut pos)?;
        let field = u32::try_from(key >> 3).map_err(|_| WireError {
            offset: start,
            what: "field number out of range",
        })?;
        if field == 0 {
            return Err(WireError {
                offset: start,
                what: "field number 0",
            });
        }
        let value = match key & 7 {
            0 => Value::Varint(varint(buf, &mut pos)?),
            1 => {
                take(buf, &mut pos, 8)?;
                Value::Fixed
            }
            2 => {
                let len = varint(buf, &mut pos)?;
                let len = usize::try_from(len).map_err(|_| WireError {
                    offset: pos,
                    what: "length out of range",
                })?;
                Value::Bytes(take(buf, &mut pos, len)?)
            }
            5 => {
                take(buf, &mut pos, 4)?;
                Value::Fixed
            }
            _ => {
                return Err(WireError {
                    offset: start,
                    what: "unsupported wire type (groups are not used by pprof)",
                })
            }
        };
        f(field, value, start)?;
    }
    Ok(())
}

fn take<'a>(buf: &'a [u8], pos: &mut usize, len: usize) -> Result<&'a [u8], WireError> {
    let end = pos
        .checked_add(len)
        .filter(|&e| e <= buf.len())
        .ok_or(WireError {
            offset: *pos,
            what: "length runs past the end of the message",
        })?;
    let s = &buf[*pos..end];
    *pos = end;
    Ok(s)
}

/// A `ValueType`: string indices of type and unit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RawValueType {
    pub r#type: i64,
    pub unit: i64,
}

/// A `Mapping`, reduced to what naming address-only frames needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RawMapping {
    pub id: u64,
    pub memory_start: u64,
    pub file_offset: u64,
    pub filename: i64,
}

/// A `Location`: its lines' function ids are `line_functions[lines]` of the profile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RawLocation {
    pub id: u64,
    pub mapping_id: u64,
    pub address: u64,
    pub lines: Range<usize>,
}

/// A profile as slices of its bytes: everything aggregation needs, nothing owned per string
/// or sample.
#[derive(Debug, Default)]
pub(crate) struct RawProfile<'a> {
    pub strings: Vec<&'a [u8]>,
    pub sample_types: Vec<RawValueType>,
    pub samples: Vec<&'a [u8]>,
    pub mappings: Vec<RawMapping>,
    pub locations: Vec<RawLocation>,
    pub line_functions: Vec<u64>,
    pub functions: Vec<(u64, i64)>,
    pub time_nanos: i64,
    pub duration_nanos: i64,
    pub period_type: Option<RawValueType>,
    pub period: i64,
    pub default_sample_type: i64,
}

/// Reads a `Profile` message.
pub(crate) fn read_profile(buf: &[u8]) -> Result<RawProfile<'_>, WireError> {
    let mut p = RawProfile::default();
    for_each_field(buf, |field, v, at| {
        match field {
            1 => p
                .sample_types
                .push(value_type(v.bytes(at)?, RawValueType::default())?),
            2 => p.samples.push(v.bytes(at)?),
            3 => p.mappings.push(mapping(v.bytes(at)?)?),
            4 => {
                let loc = location(v.bytes(at)?, &mut p.line_functions)?;
                p.locations.push(loc);
            }
            5 => p.functions.push(function(v.bytes(at)?)?),
            6 => p.strings.push(v.bytes(at)?),
            9 => p.time_nanos = v.int(at)? as i64,
            10 => p.duration_nanos = v.int(at)? as i64,
            11 => {
                let seen = p.period_type.take().unwrap_or_default();
                p.period_type = Some(value_type(v.bytes(at)?, seen)?);
            }
            12 => p.period = v.int(at)? as i64,
            14 => p.default_sample_type = v.int(at)? as i64,
            // drop_frames, keep_frames, comments, doc_url and unknown fields do not matter here.
            _ => {}
        }
        Ok(())
    })?;
    Ok(p)
}

/// Reads a ValueType over `t`: protobuf merges a singular message field that appears twice
/// (fields present in the later one win, the others stay), as prost does for `period_type`.
fn value_type(buf: &[u8], mut t: RawValueType) -> Result<RawValueType, WireError> {
    for_each_field(buf, |field, v, at| {
        match field {
            1 => t.r#type = v.int(at)? as i64,
            2 => t.unit = v.int(at)? as i64,
            _ => {}
        }
        Ok(())
    })?;
    Ok(t)
}

fn mapping(buf: &[u8]) -> Result<RawMapping, WireError> {
    let mut m = RawMapping::default();
    for_each_field(buf, |field, v, at| {
        match field {
            1 => m.id = v.int(at)?,
            2 => m.memory_start = v.int(at)?,
            4 => m.file_offset = v.int(at)?,
            5 => m.filename = v.int(at)? as i64,
            _ => {}
        }
        Ok(())
    })?;
    Ok(m)
}

fn location(buf: &[u8], line_functions: &mut Vec<u64>) -> Result<RawLocation, WireError> {
    let start = line_functions.len();
    let mut l = RawLocation::default();
    for_each_field(buf, |field, v, at| {
        match field {
            1 => l.id = v.int(at)?,
            2 => l.mapping_id = v.int(at)?,
            3 => l.address = v.int(at)?,
            4 => {
                let mut function_id = 0;
                for_each_field(v.bytes(at)?, |f, v, at| {
                    if f == 1 {
                        function_id = v.int(at)?;
                    }
                    Ok(())
                })?;
                line_functions.push(function_id);
            }
            _ => {}
        }
        Ok(())
    })?;
    l.lines = start..line_functions.len();
    Ok(l)
}

fn function(buf: &[u8]) -> Result<(u64, i64), WireError> {
    let (mut id, mut name) = (0, 0);
    for_each_field(buf, |field, v, at| {
        match field {
            1 => id = v.int(at)?,
            2 => name = v.int(at)? as i64,
            _ => {}
        }
        Ok(())
    })?;
    Ok((id, name))
}

/// Reads one sample's location ids and values into reusable buffers.
pub(crate) fn read_sample(
    buf: &[u8],
    locations: &mut Vec<u64>,
    values: &mut Vec<u64>,
) -> Result<(), WireError> {
    locations.clear();
    values.clear();
    for_each_field(buf, |field, v, at| match field {
        1 => v.ints(at, locations),
        2 => v.ints(at, values),
        _ => Ok(()),
    })
}

/// A sample label as indices into the string table (`str` 0: a numeric label).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RawLabel {
    pub key: i64,
    pub str: i64,
    pub num: i64,
}

/// Reads one sample's labels into a reusable buffer.
pub(crate) fn read_labels(buf: &[u8], labels: &mut Vec<RawLabel>) -> Result<(), WireError> {
    labels.clear();
    for_each_field(buf, |field, v, at| {
        if field == 3 {
            let mut label = RawLabel::default();
            for_each_field(v.bytes(at)?, |field, v, at| {
                match field {
                    1 => label.key = v.int(at)? as i64,
                    2 => label.str = v.int(at)? as i64,
                    3 => label.num = v.int(at)? as i64,
                    _ => {}
                }
                Ok(())
            })?;
            labels.push(label);
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::profile::proto;

    #[test]
    fn reads_what_prost_writes_packed_or_not() {
        let p = proto::Profile {
            sample_type: vec![proto::ValueType { r#type: 1, unit: 2 }],
            sample: vec![proto::Sample {
                location_id: vec![1, 2, 3],
                value: vec![-7],
                label: vec![],
            }],
            string_table: vec![b"".to_vec(), b"a".to_vec(), b"b".to_vec()],
            period: 10,
            ..Default::default()
        };
        let bytes = p.encode_to_vec();
        let raw = read_profile(&bytes).unwrap();
        assert_eq!(raw.strings, vec![&b""[..], b"a", b"b"]);
        assert_eq!(raw.period, 10);
        let (mut locs, mut vals) = (Vec::new(), Vec::new());
        read_sample(raw.samples[0], &mut locs, &mut vals).unwrap();
        assert_eq!(locs, [1, 2, 3]);
        assert_eq!(vals[0] as i64, -7);
        // Unpacked encoding, as Go writes short lists: field 1 varint 5, field 2 varint 9.
        read_sample(&[0x08, 5, 0x10, 9], &mut locs, &mut vals).unwrap();
        assert_eq!(
            (locs.as_slice(), vals.as_slice()),
            (&[5u64][..], &[9u64][..])
        );
    }

    #[test]
    fn lengths_past_the_end_are_errors() {
        // Field 2 (sample), length 100, but only 2 bytes follow.
        let err = read_profile(&[0x12, 100, 1, 2]).unwrap_err();
        assert_eq!(err.what, "length runs past the end of the message");
        assert!(read_profile(&[0x80]).is_err(), "truncated varint");
        assert!(read_profile(&[0xff; 11]).is_err(), "overlong varint");
        assert!(read_profile(&[0x0b]).is_err(), "group wire type");
    }
}

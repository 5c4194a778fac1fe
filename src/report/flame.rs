//! Differential flame graphs: baseline and candidate stacks folded, drawn by inferno with red
//! where the candidate grew and blue where it shrank.
//!
//! Pure: decoded profiles in, folded stacks and SVG bytes out.

use std::collections::BTreeMap;

use crate::profile::proto;
use crate::profile::{display_name, is_profiler_function, Footprint, ProfileKind};

/// Why a flame graph could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum FlameError {
    /// A string-table index beyond the table.
    #[error("corrupt profile: string {0} is beyond the string table")]
    StringIndex(i64),
    /// Neither side has a sample of the sample type.
    #[error("no {0} samples on either side; nothing to draw")]
    Empty(String),
    /// inferno refused the folded stacks.
    #[error("drawing the flame graph failed: {0}")]
    Draw(String),
    /// The folded stacks would exceed [`MAX_FOLDED_BYTES`].
    #[error("the stacks fold to more than {limit} bytes, too many to draw; the comparison itself is unaffected")]
    TooLarge {
        /// [`MAX_FOLDED_BYTES`].
        limit: usize,
    },
}

/// Deepest stack drawn, in frames: deeper ones keep their root-most frames and end in a frame
/// saying how many were cut (Go's own tracebacks stop at 100 frames; recursion in a hostile
/// or odd profile can go a million deep).
pub const MAX_FLAME_DEPTH: usize = 1024;

/// Largest folded-stacks text of one side and kind, in bytes. Beyond it a flame graph is not
/// drawn (a warning), so a profile of many deep stacks cannot exhaust memory.
pub const MAX_FOLDED_BYTES: usize = 256 << 20;

/// Folded stacks: `root;caller;leaf` to the summed value of one sample type.
pub type Folded = BTreeMap<String, u64>;

/// The index of the sample type a flame graph of `kind` draws: the kind's main sample type (or
/// what stands in for it, see [`ProfileKind::find_sample_type`]), else the profile's default,
/// else the last (pprof's rule).
pub fn sample_index(kind: ProfileKind, profile: &proto::Profile) -> Option<usize> {
    let name = |i: i64| {
        usize::try_from(i)
            .ok()
            .and_then(|i| profile.string_table.get(i))
            .map(|b| String::from_utf8_lossy(b).into_owned())
    };
    let names: Vec<Option<String>> = profile.sample_type.iter().map(|t| name(t.r#type)).collect();
    let find = |n: &str| names.iter().position(|x| x.as_deref() == Some(n));
    kind.find_sample_type(
        kind.main_sample_type(),
        names.iter().map(|n| n.as_deref().unwrap_or("")),
    )
    .map(|(i, _)| i)
    .or_else(|| {
        (profile.default_sample_type != 0)
            .then(|| name(profile.default_sample_type))
            .flatten()
            .and_then(|d| find(&d))
    })
    .or_else(|| profile.sample_type.len().checked_sub(1))
}

/// Adds a profile's stacks into `into`, root first, for the sample type at `sample_index`.
///
/// Frames are function names (inlined frames included, innermost last); frames without a
/// function are named by address. `;` and line breaks in names are replaced, so a hostile
/// name cannot forge frames or lines of the folded format. With [`Footprint::Remove`], stacks
/// through the profiling machinery are left out, as the comparison leaves them out.
pub fn fold_into(
    into: &mut Folded,
    profile: &proto::Profile,
    sample_index: usize,
    footprint: Footprint,
) -> Result<(), FlameError> {
    let string = |i: i64| -> Result<String, FlameError> {
        usize::try_from(i)
            .ok()
            .and_then(|i| profile.string_table.get(i))
            .map(|b| clean(&display_name(&String::from_utf8_lossy(b))))
            .ok_or(FlameError::StringIndex(i))
    };
    let mut functions: BTreeMap<u64, String> = BTreeMap::new();
    for f in &profile.function {
        let name = string(f.name)?;
        functions.insert(
            f.id,
            if name.is_empty() {
                format!("function#{}", f.id)
            } else {
                name
            },
        );
    }
    // Each location's frames, innermost first as the profile stores them.
    let mut locations: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut profiler: std::collections::BTreeSet<u64> = Default::default();
    for l in &profile.location {
        let frames = if l.line.is_empty() {
            vec![format!("0x{:x}", l.address)]
        } else {
            l.line
                .iter()
                .map(|line| {
                    functions
                        .get(&line.function_id)
                        .cloned()
                        .unwrap_or_else(|| format!("function#{}", line.function_id))
                })
                .collect()
        };
        if footprint == Footprint::Remove && frames.iter().any(|f| is_profiler_function(f)) {
            profiler.insert(l.id);
        }
        locations.insert(l.id, frames);
    }
    let unknown = "unknown".to_owned();
    let mut stack: Vec<&str> = Vec::new();
    let mut bytes: usize = into.keys().map(|k| k.len() + 24).sum();
    for s in &profile.sample {
        let Some(&value) = s.value.get(sample_index) else {
            continue;
        };
        if value <= 0 || s.location_id.iter().any(|id| profiler.contains(id)) {
            continue;
        }
        stack.clear();
        // location_id[0] is the leaf: walk from the root end inwards (each location's frames
        // are innermost first, so they are walked backwards too), keeping at most
        // MAX_FLAME_DEPTH - 1 frames and counting the rest.
        let mut cut = 0usize;
        for id in s.location_id.iter().rev() {
            let frames: &[String] = match locations.get(id) {
                Some(frames) => frames,
                None => std::slice::from_ref(&unknown),
            };
            for frame in frames.iter().rev() {
                if stack.len() < MAX_FLAME_DEPTH - 1 {
                    stack.push(frame);
                } else {
                    cut += 1;
                }
            }
        }
        if stack.is_empty() {
            stack.push("unknown");
        }
        let mut key = stack.join(";");
        match cut {
            0 => {}
            // One frame more fits as itself.
            1 => {
                let last = s.location_id.first().and_then(|id| locations.get(id));
                key.push(';');
                key.push_str(last.and_then(|f| f.first()).unwrap_or(&unknown));
            }
            n => key.push_str(&format!(";[{n} deeper frames cut]")),
        }
        key.shrink_to_fit();
        match into.get_mut(&key) {
            Some(total) => *total = total.saturating_add(value as u64),
            None => {
                bytes = bytes.saturating_add(key.len() + 24);
                if bytes > MAX_FOLDED_BYTES {
                    return Err(FlameError::TooLarge {
                        limit: MAX_FOLDED_BYTES,
                    });
                }
                into.insert(key, value as u64);
            }
        }
    }
    Ok(())
}

/// Every side's stacks, folded per profile kind, with the sample type folded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SideStacks {
    /// Per kind: the sample type's name and the folded stacks.
    pub kinds: BTreeMap<ProfileKind, (String, Folded)>,
}

impl SideStacks {
    /// Adds a profile of `kind`, folding its main sample type (see [`sample_index`]).
    pub fn add(
        &mut self,
        kind: ProfileKind,
        profile: &proto::Profile,
        footprint: Footprint,
    ) -> Result<(), FlameError> {
        let Some(index) = sample_index(kind, profile) else {
            return Ok(());
        };
        let sample = usize::try_from(profile.sample_type[index].r#type)
            .ok()
            .and_then(|i| profile.string_table.get(i))
            .map(|b| clean(&String::from_utf8_lossy(b)))
            .unwrap_or_default();
        let entry = self
            .kinds
            .entry(kind)
            .or_insert_with(|| (sample, Folded::new()));
        fold_into(&mut entry.1, profile, index, footprint)
    }
}

/// The differential flame graph of each kind in `kinds`, baseline against candidate.
pub fn differential_svgs(
    kinds: &[ProfileKind],
    baseline: &SideStacks,
    candidate: &SideStacks,
) -> Vec<(ProfileKind, Result<Vec<u8>, FlameError>)> {
    let empty = (String::new(), Folded::new());
    kinds
        .iter()
        .map(|&kind| {
            let (sample, base) = baseline.kinds.get(&kind).unwrap_or(&empty);
            let (cand_sample, cand) = candidate.kinds.get(&kind).unwrap_or(&empty);
            let sample = if sample.is_empty() {
                cand_sample
            } else {
                sample
            };
            (kind, differential_svg(kind, sample, base, cand))
        })
        .collect()
}

/// A frame name made safe for the folded format: no `;`, no line breaks, no other controls.
fn clean(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            ';' => ':',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

fn folded_text(folded: &Folded) -> String {
    let mut s = String::new();
    for (stack, count) in folded {
        s.push_str(stack);
        s.push(' ');
        s.push_str(&count.to_string());
        s.push('\n');
    }
    s
}

/// The differential flame graph of one profile kind as SVG: the candidate's stacks, coloured
/// red where they grew and blue where they shrank against the baseline. The baseline is first
/// scaled to the candidate's total (inferno's `normalize`), so colours show shifts in the mix
/// of work rather than a change in load.
pub fn differential_svg(
    kind: ProfileKind,
    sample_type: &str,
    baseline: &Folded,
    candidate: &Folded,
) -> Result<Vec<u8>, FlameError> {
    if baseline.is_empty() && candidate.is_empty() {
        return Err(FlameError::Empty(sample_type.to_owned()));
    }
    let mut diff = Vec::new();
    inferno::differential::from_readers(
        inferno::differential::Options {
            normalize: true,
            strip_hex: false,
        },
        folded_text(baseline).as_bytes(),
        folded_text(candidate).as_bytes(),
        &mut diff,
    )
    .map_err(|e| FlameError::Draw(e.to_string()))?;
    let diff = String::from_utf8_lossy(&diff).into_owned();
    let mut options = inferno::flamegraph::Options::default();
    options.title = format!("{kind} {sample_type}: candidate against baseline");
    options.subtitle =
        Some("red grew, blue shrank (baseline scaled to the candidate's total)".to_owned());
    options.count_name = sample_type.to_owned();
    options.deterministic = true;
    let mut svg = Vec::new();
    inferno::flamegraph::from_lines(&mut options, diff.lines(), &mut svg)
        .map_err(|e| FlameError::Draw(e.to_string()))?;
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> proto::Profile {
        let strings = ["", "cpu", "nanoseconds", "main.main", "main.hot;evil\nline"];
        proto::Profile {
            sample_type: vec![proto::ValueType { r#type: 1, unit: 2 }],
            sample: vec![
                proto::Sample {
                    location_id: vec![2, 1],
                    value: vec![30],
                    label: vec![],
                },
                proto::Sample {
                    location_id: vec![1],
                    value: vec![10],
                    label: vec![],
                },
            ],
            location: vec![
                proto::Location {
                    id: 1,
                    line: vec![proto::Line {
                        function_id: 1,
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                proto::Location {
                    id: 2,
                    line: vec![proto::Line {
                        function_id: 2,
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
            function: vec![
                proto::Function {
                    id: 1,
                    name: 3,
                    ..Default::default()
                },
                proto::Function {
                    id: 2,
                    name: 4,
                    ..Default::default()
                },
            ],
            string_table: strings.iter().map(|s| s.as_bytes().to_vec()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn stacks_fold_root_first_and_names_cannot_forge_frames() {
        let mut f = Folded::new();
        fold_into(&mut f, &profile(), 0, Footprint::Remove).unwrap();
        let expected: Folded = [
            ("main.main".to_owned(), 10),
            ("main.main;main.hot:evil line".to_owned(), 30),
        ]
        .into_iter()
        .collect();
        assert_eq!(f, expected);
        assert_eq!(sample_index(ProfileKind::Cpu, &profile()), Some(0));
    }

    #[test]
    fn deep_stacks_are_cut_root_first_and_long_names_shortened() {
        let mut p = profile();
        let long = format!("main.{}", "y".repeat(100_000));
        p.string_table[4] = long.clone().into_bytes();
        // main.main at the root, then 5,000 frames of the long-named function.
        let mut ids = vec![2u64; 5_000];
        ids.push(1);
        p.sample = vec![proto::Sample {
            location_id: ids,
            value: vec![7],
            label: vec![],
        }];
        let mut f = Folded::new();
        fold_into(&mut f, &p, 0, Footprint::Remove).unwrap();
        let (key, &value) = f.iter().next().unwrap();
        assert_eq!(value, 7);
        let frames: Vec<&str> = key.split(';').collect();
        assert_eq!(frames.len(), MAX_FLAME_DEPTH);
        assert_eq!(frames[0], "main.main");
        assert_eq!(
            frames[MAX_FLAME_DEPTH - 1],
            format!("[{} deeper frames cut]", 5_001 - (MAX_FLAME_DEPTH - 1))
        );
        assert_eq!(frames[1], display_name(&long));
        assert!(key.len() < MAX_FLAME_DEPTH * 300);
        // Exactly one frame too many is shown as itself.
        p.sample[0].location_id = vec![2u64; MAX_FLAME_DEPTH];
        let mut f = Folded::new();
        fold_into(&mut f, &p, 0, Footprint::Remove).unwrap();
        assert_eq!(f.keys().next().unwrap().split(';').count(), MAX_FLAME_DEPTH);
        assert!(!f.keys().next().unwrap().contains("cut"));
        // Values that overflow u64 when summed saturate instead of panicking.
        p.sample = vec![
            proto::Sample {
                location_id: vec![1],
                value: vec![i64::MAX],
                label: vec![],
            };
            3
        ];
        let mut f = Folded::new();
        fold_into(&mut f, &p, 0, Footprint::Remove).unwrap();
        assert_eq!(f.values().next(), Some(&u64::MAX));
    }
}

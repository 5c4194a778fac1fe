//! Reading profiles from disk: a file, or a directory of files (one per pod and window).
//!
//! This is an edge: it does the file I/O and names the file in every error, then hands a
//! [`crate::side`] to the pure core.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::profile::{self, DecodeOptions, FunctionProfile, LabelView, ProfileError, ProfileKind};
use crate::side::{group, ProfileFile, SideProfiles};

/// Why profiles could not be read from disk.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The path does not exist or cannot be read.
    #[error("{path}: cannot read ({source}); check the path")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file that is not a usable profile.
    #[error("{path}: {source}")]
    Profile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: ProfileError,
    },
    /// A directory holding no profile files.
    #[error("{path}: no profile files found (expected *.pb.gz, *.pb, *.pprof or *.prof files, directly or one directory per pod)")]
    NoProfiles {
        /// The directory.
        path: PathBuf,
    },
    /// A profile whose kind cannot be told.
    #[error("{path}: cannot tell which profile this is (sample types: {sample_types}); name the file after its kind, e.g. cpu-1.pb.gz")]
    UnknownKind {
        /// The file.
        path: PathBuf,
        /// Its sample types.
        sample_types: String,
    },
    /// A file name naming one kind holding another.
    #[error(
        "{path}: the file name says {named} but the content is a {found} profile; rename the file"
    )]
    KindMismatch {
        /// The file.
        path: PathBuf,
        /// What the name says.
        named: ProfileKind,
        /// What the content says.
        found: ProfileKind,
    },
}

impl crate::errors::Classified for InputError {
    fn class(&self) -> crate::errors::FailureClass {
        // Every input error is about a file or folder the user named.
        crate::errors::FailureClass::BadInput
    }
}

const EXTENSIONS: [&str; 5] = [".pb.gz", ".pb", ".pprof", ".prof", ".gz"];

/// True for file names profiles are saved under (`.pb.gz`, `.pb`, `.pprof`, `.prof`, `.gz`).
pub fn is_profile_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    EXTENSIONS.iter().any(|e| name.ends_with(e))
}

/// Reads and decodes one profile file.
pub fn read_file(path: &Path, pod: &str, limits: DecodeOptions) -> Result<ProfileFile, InputError> {
    let bytes = std::fs::read(path).map_err(|source| InputError::Io {
        path: path.to_owned(),
        source,
    })?;
    decode_file(&bytes, path, pod, limits)
}

/// Decodes the bytes of a profile file already read (from disk or an archive); `path` names
/// it in messages and, by its file name, tells the kind and window.
pub fn decode_file(
    bytes: &[u8],
    path: &Path,
    pod: &str,
    limits: DecodeOptions,
) -> Result<ProfileFile, InputError> {
    let profile = profile::read_profile(bytes, limits).map_err(|source| InputError::Profile {
        path: path.to_owned(),
        source,
    })?;
    classify(path, pod, profile)
}

/// Names a decoded profile's kind (from the file name when it names one, else the content)
/// and window.
fn classify(path: &Path, pod: &str, profile: FunctionProfile) -> Result<ProfileFile, InputError> {
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let named = ProfileKind::from_file_name(file_name);
    let kind = match (named, profile.kind) {
        (Some(named), Some(found)) if !named.same_family(found) => {
            return Err(InputError::KindMismatch {
                path: path.to_owned(),
                named,
                found,
            })
        }
        (Some(named), _) => named,
        (None, Some(found)) => found,
        (None, None) => {
            return Err(InputError::UnknownKind {
                path: path.to_owned(),
                sample_types: profile
                    .sample_types
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
    };
    Ok(ProfileFile {
        path: path.to_owned(),
        pod: pod.to_owned(),
        window: window_number(file_name),
        kind,
        profile,
    })
}

/// The window number in names like `cpu-3.pb.gz`.
fn window_number(file_name: &str) -> Option<u32> {
    let stem = EXTENSIONS
        .iter()
        .find_map(|e| file_name.strip_suffix(e))
        .unwrap_or(file_name);
    stem.rsplit(['-', '_', '.']).next()?.parse().ok()
}

/// Lists the profile files of a side with their pod names.
///
/// A file is one pod. A directory of files: each file is its own pod unless the names carry
/// window numbers (`cpu-1.pb.gz`, `cpu-2.pb.gz`), in which case the directory is one pod. A
/// directory of directories: each subdirectory is a pod (the `profiles/<side>/<pod>/` layout).
pub fn list_side(path: &Path) -> Result<Vec<(PathBuf, String)>, InputError> {
    let io = |source| InputError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.is_file() {
        let pod = stem(path);
        return Ok(vec![(path.to_owned(), pod)]);
    }
    let mut files = Vec::new();
    let mut loose = Vec::new();
    for entry in sorted_entries(path)? {
        if entry.is_dir() {
            let pod = entry
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            for file in sorted_entries(&entry)? {
                if file.is_file() && is_profile_file(&file) {
                    files.push((file, pod.clone()));
                }
            }
        } else if is_profile_file(&entry) {
            loose.push(entry);
        }
    }
    let windowed = loose.iter().all(|f| {
        f.file_name()
            .and_then(|n| n.to_str())
            .and_then(window_number)
            .is_some()
    });
    let dir_pod = stem(path);
    for f in loose {
        let pod = if windowed { dir_pod.clone() } else { stem(&f) };
        files.push((f, pod));
    }
    if files.is_empty() {
        return Err(InputError::NoProfiles {
            path: path.to_owned(),
        });
    }
    Ok(files)
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, InputError> {
    let io = |source| InputError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut entries = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io)?;
    entries.sort();
    Ok(entries)
}

fn stem(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    EXTENSIONS
        .iter()
        .find_map(|e| name.strip_suffix(e))
        .map(str::to_owned)
        .unwrap_or(name)
}

/// Reads every profile of a side, decoding files in parallel, and groups them by kind and pod.
pub fn read_side(path: &Path, limits: DecodeOptions) -> Result<SideProfiles, InputError> {
    let listed = list_side(path)?;
    let files = read_files(&listed, limits)?;
    Ok(group(files))
}

/// Decodes files on all cores; the first error (in file order) wins.
pub fn read_files(
    listed: &[(PathBuf, String)],
    limits: DecodeOptions,
) -> Result<Vec<ProfileFile>, InputError> {
    read_files_with(listed, |path, pod| read_file(path, pod, limits))
}

/// Runs `read` on every listed file, on all cores; the first error (in file order) wins.
fn read_files_with<T: Send>(
    listed: &[(PathBuf, String)],
    read: impl Fn(&Path, &str) -> Result<T, InputError> + Sync,
) -> Result<Vec<T>, InputError> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(listed.len())
        .max(1);
    if threads == 1 {
        // One file (a side of `gate diff`) or one core: a thread of its own buys nothing.
        return listed.iter().map(|(path, pod)| read(path, pod)).collect();
    }
    let chunk = listed.len().div_ceil(threads);
    let read = &read;
    let results: Vec<Result<T, InputError>> = std::thread::scope(|s| {
        let handles: Vec<_> = listed
            .chunks(chunk.max(1))
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|(path, pod)| read(path, pod))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    results.into_iter().collect()
}

/// One file's profiles per label value, as [`profile::read_profile_view`] returns them.
type LabelledProfiles = Vec<(Option<String>, FunctionProfile)>;

/// Reads a side through a label view: its profiles per value of the split label (`None`: the
/// kept samples, unsplit). Every value has every pod and window of the side, a window where
/// the value did not occur holding an empty profile, so windows stay matched.
pub fn read_side_view(
    path: &Path,
    limits: DecodeOptions,
    view: &LabelView,
) -> Result<BTreeMap<Option<String>, SideProfiles>, InputError> {
    if view.is_everything() {
        return Ok(BTreeMap::from([(None, read_side(path, limits)?)]));
    }
    let listed = list_side(path)?;
    // Reuses the parallel reader: each file read once, split into its label values.
    let split: Vec<(ProfileFile, LabelledProfiles)> = read_files_with(&listed, |path, pod| {
        let bytes = std::fs::read(path).map_err(|source| InputError::Io {
            path: path.to_owned(),
            source,
        })?;
        let groups = profile::read_profile_view(&bytes, limits, view).map_err(|source| {
            InputError::Profile {
                path: path.to_owned(),
                source,
            }
        })?;
        let template = groups[0].1.empty_like();
        let file = classify(path, pod, template)?;
        Ok((file, groups))
    })?;
    let split_by = view.by.is_some();
    let values: std::collections::BTreeSet<Option<String>> = split
        .iter()
        .flat_map(|(_, groups)| groups.iter().map(|(v, _)| v.clone()))
        .filter(|v| !split_by || v.is_some())
        .collect();
    Ok(values
        .into_iter()
        .map(|value| {
            let files = split
                .iter()
                .map(|(file, groups)| ProfileFile {
                    profile: groups
                        .iter()
                        .find(|(v, _)| *v == value)
                        .map(|(_, p)| p.clone())
                        .unwrap_or_else(|| file.profile.clone()),
                    ..file.clone()
                })
                .collect();
            let mut side = group(files);
            // A kind none of whose samples carry the value (memory profiles have no labels).
            side.kinds.retain(|_, pods| {
                pods.iter()
                    .flat_map(|p| &p.windows)
                    .any(|w| w.sample_count > 0)
            });
            (value, side)
        })
        .filter(|(_, side)| !side.kinds.is_empty())
        .collect())
}

/// Reads one profile file whole (every sample with its stack, as flame graphs need), with its
/// kind from the file name or, failing that, from the content.
pub fn read_raw_file(
    path: &Path,
    pod: &str,
    limits: DecodeOptions,
) -> Result<(ProfileKind, profile::proto::Profile), InputError> {
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let kind = match ProfileKind::from_file_name(file_name) {
        Some(k) => k,
        None => read_file(path, pod, limits)?.kind,
    };
    let bytes = std::fs::read(path).map_err(|source| InputError::Io {
        path: path.to_owned(),
        source,
    })?;
    let raw = profile::decode(&bytes, limits).map_err(|source| InputError::Profile {
        path: path.to_owned(),
        source,
    })?;
    Ok((kind, raw))
}

//! The output directory (`--out`): owned by one run at a time, from a clean start.
//!
//! Two gates writing into one folder delete each other's profiles, and a folder reused from an
//! earlier run would archive that run's flame graphs under this one. So a run claims the folder
//! before anything slow happens (a file or an unwritable path is bad input at once, not after
//! a minute of capture), holds an advisory lock on it for its whole life (released by the
//! kernel however the process ends), and removes what an earlier run wrote. Files the gate
//! did not write are left alone.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;

use super::BadInput;
use crate::profile::ProfileKind;

/// The lock file's name inside the output directory.
pub const LOCK_FILE: &str = ".gate.lock";

/// Report files a run writes at the top of the output directory.
const REPORT_FILES: [&str; 5] = [
    "report.txt",
    "report.md",
    "report.json",
    "manifest.json",
    ERROR_FILE,
];

/// Where a run that ends in an error says why, for CI systems that keep `--out` as an
/// artifact.
pub const ERROR_FILE: &str = "error.txt";

/// Which captured profiles of an earlier run a new one removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EarlierProfiles<'a> {
    /// Every side's (`gate run`, `gate archive --out`).
    All,
    /// One side's (`gate capture --side NAME`: captures of other sides into the same folder
    /// are kept for a later `gate diff`).
    Side(&'a str),
    /// None (`gate diff` writes reports only, and may be reading profiles from the folder).
    Keep,
}

/// An output directory claimed by this run; the claim ends when this is dropped.
#[derive(Debug)]
pub struct OutDir {
    path: PathBuf,
    _lock: File,
    /// Whether an earlier run's files were removed yet.
    cleared: AtomicBool,
}

impl OutDir {
    /// Claims `path` for this run: creates it, checks it can be written to, and locks it.
    /// A file in the way, an unwritable folder or a folder in use by another gate is bad input
    /// (exit 2) naming the path and what to do.
    pub fn claim(path: &Path) -> Result<OutDir, BadInput> {
        let shown = path.display();
        if path.exists() && !path.is_dir() {
            return Err(BadInput(format!(
                "--out {shown}: is a file, not a directory; give a directory for the reports and profiles"
            )));
        }
        std::fs::create_dir_all(path).map_err(|e| {
            BadInput(format!(
                "--out {shown}: cannot create the output directory ({e}); give a directory you can write to"
            ))
        })?;
        let lock_path = path.join(LOCK_FILE);
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| {
                BadInput(format!(
                    "--out {shown}: cannot write into the output directory ({e}); give a directory you can write to"
                ))
            })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = lock.read_to_string(&mut holder);
                let holder = holder.trim();
                let by = if holder.chars().all(|c| c.is_ascii_digit()) && !holder.is_empty() {
                    format!(" (gate process {holder})")
                } else {
                    String::new()
                };
                return Err(BadInput(format!(
                    "--out {shown}: another gate run is writing into this directory{by}; give each run its own --out"
                )));
            }
            Err(TryLockError::Error(e)) => {
                return Err(BadInput(format!(
                    "--out {shown}: cannot lock the output directory ({e}); give a directory on a local file system"
                )))
            }
        }
        // Who holds it, for the message a second run prints; a failure here changes nothing.
        let _ = lock
            .set_len(0)
            .and_then(|()| lock.rewind())
            .and_then(|()| writeln!(lock, "{}", std::process::id()));
        Ok(OutDir {
            path: path.to_path_buf(),
            _lock: lock,
            cleared: AtomicBool::new(false),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes [`ERROR_FILE`]: the error that ended the run. Best effort: the error itself is
    /// what the run reports. Failed before the clean start, the earlier run's reports go first:
    /// an artifact with this error beside an old PASS would mislead.
    pub fn record_failure(&self, message: &str) {
        if !self.cleared.load(Ordering::Relaxed) {
            let _ = self.clear_earlier_run(EarlierProfiles::Keep);
        }
        let _ = std::fs::write(self.path.join(ERROR_FILE), format!("error: {message}\n"));
    }

    /// Removes what an earlier run wrote here: reports, the manifest, flame graphs and the
    /// captured profiles asked for (`profiles/<side>/<pod>/<profile>-<window>.pb.gz`, and the
    /// folders left empty). Nothing else is touched.
    pub fn clear_earlier_run(&self, profiles: EarlierProfiles<'_>) -> anyhow::Result<()> {
        self.cleared.store(true, Ordering::Relaxed);
        // The manifest describes the profiles: kept with them.
        let mut stale: Vec<PathBuf> = REPORT_FILES
            .iter()
            .filter(|f| profiles != EarlierProfiles::Keep || **f != "manifest.json")
            .map(|f| self.path.join(f))
            .collect();
        for entry in std::fs::read_dir(&self.path)
            .with_context(|| format!("reading {}", self.path.display()))?
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            let flame = name
                .strip_prefix("flame-")
                .and_then(|n| n.strip_suffix(".svg"))
                .is_some_and(|kind| ProfileKind::from_name(kind).is_some());
            if flame {
                stale.push(entry.path());
            }
        }
        for file in stale {
            match std::fs::remove_file(&file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("removing {} of an earlier run", file.display()))
                }
            }
        }
        let root = self.path.join("profiles");
        let sides: Vec<PathBuf> = match profiles {
            EarlierProfiles::Keep => Vec::new(),
            EarlierProfiles::Side(side) => vec![root.join(side)],
            EarlierProfiles::All => std::fs::read_dir(&root)
                .map(|d| {
                    d.flatten()
                        .map(|s| s.path())
                        .filter(|p| p.is_dir())
                        .collect()
                })
                .unwrap_or_default(),
        };
        for side in sides {
            clear_profiles(&side)?;
            // Folders are removed only when empty: anything of the user's keeps its folder.
            let _ = std::fs::remove_dir(&side);
        }
        if profiles != EarlierProfiles::Keep {
            let _ = std::fs::remove_dir(&root);
        }
        Ok(())
    }
}

/// Whether a file in a pod folder under `profiles/` is a profile: any name a side is read
/// from (the capture's `<profile>-<window>.pb.gz`, an archived side's copies under their own
/// names), or a spooled one still being written (`.partial`), since a stale one would be read
/// as part of the next run's side.
fn is_profile_file(name: &str) -> bool {
    let name = name.strip_suffix(".partial").unwrap_or(name);
    crate::inputs::is_profile_file(Path::new(name))
}

/// Removes the profile files under `out/profiles/<side>/` whose path (relative to `out`) is
/// not in `kept`, and the pod folders left empty.
pub fn remove_profiles_except(
    out: &Path,
    side: &str,
    kept: &std::collections::BTreeSet<PathBuf>,
) -> anyhow::Result<()> {
    let dir = Path::new("profiles").join(side);
    let Ok(pods) = std::fs::read_dir(out.join(&dir)) else {
        return Ok(());
    };
    for pod in pods.flatten().filter(|p| p.path().is_dir()) {
        let Ok(files) = std::fs::read_dir(pod.path()) else {
            continue;
        };
        for file in files.flatten() {
            let name = file.file_name();
            let relative = dir.join(pod.file_name()).join(&name);
            if is_profile_file(&name.to_string_lossy()) && !kept.contains(&relative) {
                std::fs::remove_file(file.path())
                    .with_context(|| format!("removing {}", file.path().display()))?;
            }
        }
        let _ = std::fs::remove_dir(pod.path());
    }
    Ok(())
}

/// Removes the profiles of an earlier capture from `profiles/<side>/`, pod folder by pod
/// folder, and the pod folders left empty.
fn clear_profiles(side: &Path) -> anyhow::Result<()> {
    let Ok(pods) = std::fs::read_dir(side) else {
        return Ok(());
    };
    for pod in pods.flatten() {
        let pod_dir = pod.path();
        if !pod_dir.is_dir() {
            continue;
        }
        let Ok(files) = std::fs::read_dir(&pod_dir) else {
            continue;
        };
        for file in files.flatten() {
            if is_profile_file(&file.file_name().to_string_lossy()) {
                std::fs::remove_file(file.path())
                    .with_context(|| format!("removing {}", file.path().display()))?;
            }
        }
        let _ = std::fs::remove_dir(&pod_dir);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_files_are_recognised_by_name_only() {
        assert!(is_profile_file("cpu-1.pb.gz"));
        assert!(is_profile_file("goroutine-12.pb.gz"));
        assert!(is_profile_file("heap-3.pb.gz.partial"));
        // Whatever a side is read from, since it would be read again.
        assert!(is_profile_file("heap.pprof"));
        assert!(!is_profile_file("cpu-1.txt"));
        assert!(!is_profile_file("notes.txt"));
        assert!(!is_profile_file("notes.partial"));
    }
}

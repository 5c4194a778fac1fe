//! Which Go profile a file holds, and its main sample type.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A Go pprof profile kind, as served under `/debug/pprof/<kind>`.
///
/// Mutex and block profiles carry identical sample types, so they are told apart by the file name
/// (`mutex-1.pb.gz`) or by how they were captured, never by content alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProfileKind {
    /// CPU time, sampled at the profiling rate (`samples/count`, `cpu/nanoseconds`).
    Cpu,
    /// Live heap at the moment of the snapshot (default sample type `inuse_space`).
    Heap,
    /// Allocations over the window (default sample type `alloc_space`).
    Allocs,
    /// Goroutines alive at the moment of the snapshot (`goroutine/count`).
    Goroutine,
    /// Contended mutexes (`contentions/count`, `delay/nanoseconds`).
    Mutex,
    /// Blocking on synchronisation primitives (`contentions/count`, `delay/nanoseconds`).
    Block,
}

impl ProfileKind {
    /// Every kind, in the order reports list them.
    pub const ALL: [ProfileKind; 6] = [
        ProfileKind::Cpu,
        ProfileKind::Heap,
        ProfileKind::Allocs,
        ProfileKind::Goroutine,
        ProfileKind::Mutex,
        ProfileKind::Block,
    ];

    /// The name used on the command line, in file names and in `/debug/pprof/<name>`.
    pub fn name(self) -> &'static str {
        match self {
            ProfileKind::Cpu => "cpu",
            ProfileKind::Heap => "heap",
            ProfileKind::Allocs => "allocs",
            ProfileKind::Goroutine => "goroutine",
            ProfileKind::Mutex => "mutex",
            ProfileKind::Block => "block",
        }
    }

    /// Parses a kind name; `profile` is accepted for CPU because that is Go's endpoint name.
    pub fn from_name(name: &str) -> Option<ProfileKind> {
        match name {
            "cpu" | "profile" => Some(ProfileKind::Cpu),
            "heap" => Some(ProfileKind::Heap),
            "allocs" => Some(ProfileKind::Allocs),
            "goroutine" => Some(ProfileKind::Goroutine),
            "mutex" => Some(ProfileKind::Mutex),
            "block" => Some(ProfileKind::Block),
            _ => None,
        }
    }

    /// The sample type a comparison uses when the policy names none.
    pub fn main_sample_type(self) -> &'static str {
        match self {
            ProfileKind::Cpu => "cpu",
            ProfileKind::Heap => "inuse_space",
            ProfileKind::Allocs => "alloc_space",
            ProfileKind::Goroutine => "goroutine",
            ProfileKind::Mutex | ProfileKind::Block => "delay",
        }
    }

    /// The sample types that other runtimes' profiles of this kind record in place of
    /// `wanted`, in order of preference: Node.js's profiler (`@datadog/pprof`) writes a
    /// wall-clock CPU profile with `sample` and `wall` where Go writes `samples` and `cpu`.
    /// Its wall time counts the JavaScript thread's busy time only (idle is left out), so it
    /// reads as CPU time does.
    pub fn stand_ins(self, wanted: &str) -> &'static [&'static str] {
        match (self, wanted) {
            (ProfileKind::Cpu, "cpu") => &["wall"],
            (ProfileKind::Cpu, "samples") => &["sample"],
            _ => &[],
        }
    }

    /// The index of the sample type `wanted` among `names`, or of the first of its
    /// [`stand_ins`](Self::stand_ins) there, with the name found.
    pub fn find_sample_type<'a, I>(self, wanted: &str, names: I) -> Option<(usize, &'a str)>
    where
        I: IntoIterator<Item = &'a str>,
        I::IntoIter: Clone,
    {
        let names = names.into_iter();
        std::iter::once(wanted)
            .chain(self.stand_ins(wanted).iter().copied())
            .find_map(|w| names.clone().enumerate().find(|(_, n)| *n == w))
    }

    /// True for profiles that are a snapshot at one instant (heap in-use, goroutines) rather than
    /// a total over the capture window; snapshots are averaged over windows, not summed.
    pub fn is_snapshot(self) -> bool {
        matches!(self, ProfileKind::Heap | ProfileKind::Goroutine)
    }
}

impl fmt::Display for ProfileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl ProfileKind {
    /// Infers the kind from a profile's sample types.
    ///
    /// Mutex and block profiles look the same; both come out as `Mutex`, to be corrected by a
    /// file name (see [`ProfileKind::from_file_name`]).
    pub fn from_content(
        sample_types: &[super::SampleType],
        default_sample_type: Option<&str>,
    ) -> Option<ProfileKind> {
        let has = |name: &str| sample_types.iter().any(|t| t.name == name);
        if has("cpu") || (has("samples") && sample_types.len() <= 2 && !has("contentions")) {
            Some(ProfileKind::Cpu)
        } else if has("inuse_space") || has("alloc_space") {
            if default_sample_type == Some("alloc_space") || !has("inuse_space") {
                Some(ProfileKind::Allocs)
            } else {
                Some(ProfileKind::Heap)
            }
        } else if has("goroutine") {
            Some(ProfileKind::Goroutine)
        } else if has("contentions") || has("delay") {
            Some(ProfileKind::Mutex)
        } else {
            None
        }
    }

    /// Reads the kind from a file name such as `cpu-3.pb.gz`, `heap.pb.gz` or `pod-1.mutex.pprof`.
    pub fn from_file_name(file_name: &str) -> Option<ProfileKind> {
        file_name
            .split(|c: char| !c.is_ascii_alphanumeric())
            .find_map(ProfileKind::from_name)
    }

    /// Whether two kinds carry the same sample types and so can be compared.
    pub fn same_family(self, other: ProfileKind) -> bool {
        let family = |k: ProfileKind| match k {
            ProfileKind::Mutex | ProfileKind::Block => ProfileKind::Mutex,
            ProfileKind::Heap | ProfileKind::Allocs => ProfileKind::Heap,
            k => k,
        };
        family(self) == family(other)
    }
}

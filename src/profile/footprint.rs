//! The gate's own footprint in a profile: what serving the gate's requests cost the service.
//!
//! A Go service profiled over HTTP spends CPU, allocations and goroutines on the profiling
//! itself: the `net/http/pprof` handler serving each request, and `runtime/pprof` writing the
//! profile (its builder, gzip writer and CPU reader). That cost comes and goes with the gate's
//! requests, not with the release, so a goroutine snapshot counts the gate's in-flight requests
//! and an allocation profile grows with the profiles it served. Samples whose stack runs through
//! those functions are removed before comparing (the archived files are left untouched).

use serde::{Deserialize, Serialize};

/// Whether reading a profile removes the gate's own footprint (policy `defaults.footprint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Footprint {
    /// Remove samples whose stack runs through the profiling machinery (the default).
    #[default]
    Remove,
    /// Keep every sample as the service wrote it.
    Keep,
}

impl Footprint {
    /// The setting as policies spell it.
    pub fn name(self) -> &'static str {
        match self {
            Footprint::Remove => "remove",
            Footprint::Keep => "keep",
        }
    }
}

/// Whether a function belongs to the machinery that serves a profile over HTTP: Go's
/// `net/http/pprof` handlers and `runtime/pprof`'s writers.
///
/// `runtime/pprof.Do` is not: it runs the service's own code under pprof labels.
pub fn is_profiler_function(name: &str) -> bool {
    if let Some(rest) = name.strip_prefix("runtime/pprof.") {
        return !(rest == "Do" || rest.starts_with("Do.") || rest.starts_with("Do["));
    }
    name.starts_with("net/http/pprof.")
}

#[cfg(test)]
mod tests {
    use super::is_profiler_function;

    #[test]
    fn handlers_and_writers_are_the_profiler_and_labelled_user_code_is_not() {
        for name in [
            "net/http/pprof.Index",
            "net/http/pprof.handler.ServeHTTP",
            "runtime/pprof.writeHeapInternal",
            "runtime/pprof.(*profileBuilder).build",
            "runtime/pprof.profileWriter",
        ] {
            assert!(is_profiler_function(name), "{name}");
        }
        for name in [
            "runtime/pprof.Do",
            "runtime/pprof.Do.func1",
            "runtime.gopark",
            "net/http.(*conn).serve",
            "main.handler",
            "github.com/acme/pprofx.Write",
        ] {
            assert!(!is_profiler_function(name), "{name}");
        }
    }
}

//! Profile Gate: a release gate built on pprof profiles, for Go services first and for the
//! other runtimes that serve pprof (Node.js, Rust).
//!
//! Data flows one way through modules that each do one job:
//!
//! - [`targets`]: the edge that reads TARGET arguments and, for Kubernetes objects
//!   (`svc/stable`), resolves their Ready pods and bridges each to a local port-forward, so
//!   capture only ever sees base URLs.
//! - [`capture`]: the edge that captures profiles live from pprof HTTP endpoints, in matched
//!   windows on every pod of both sides, and records each request in a manifest.
//! - [`inputs`]: the edge that reads profile files and directories from disk (through a label
//!   view when only some samples are compared).
//! - [`side`]: a side of a comparison, its pods' profiles per kind in window order, whatever
//!   it came from (files, a live capture, the archive). Pure.
//! - [`profile`]: decode pprof files (gzip + protobuf) and aggregate them per function, flat and
//!   cumulative, for every sample type, optionally per pprof label value. Pure: bytes in,
//!   values out.
//! - [`compare`]: per-function and total effects between baseline and candidate, with the noise
//!   statistics (pods as replicates, overdispersed Poisson, exact tests for one pod). Pure.
//! - [`policy`]: the YAML threshold policy, and the verdict it gives on a comparison. Pure.
//! - [`judge`]: the pipeline's central step: both sides' profiles in, compared under every
//!   normalisation the policy asks for, one report with its verdict out. Pure.
//! - [`report`]: renders a verdict as text, Markdown (minijinja templates) or JSON, and draws
//!   differential flame graphs. Pure: values in, bytes out.
//! - [`publish`]: the edge that publishes a verdict on GitHub: one sticky pull-request comment,
//!   a check run, the step summary and the action's outputs. Failures there are warnings.
//! - [`archive`]: the edge that stores every run's profiles, manifest and reports in a local
//!   folder or object storage (S3, GCS, Azure), lists and prunes them, and reads an archived
//!   run back as a side (`archive+URL#SERVICE@latest`).
//! - [`history`]: what changed across archived runs: per function and total, a series of
//!   normalised levels over the runs and the change points beyond the policy's thresholds,
//!   named at the service's own code; rendered as text, Markdown and SVG. Pure.
//! - [`errors`]: one walk over an error's chain of causes, for the messages people read.
//! - [`cli`]: the `gate` command line; the only place that knows about exit codes and files written.
//!
//! The edges that reach the network (`targets`, `capture`, `publish`, `archive`) and the command
//! line sit behind the default feature `cli`. Without it the crate is the pure core, which is
//! what the fuzz targets under `fuzz/` build with coverage instrumentation.
#[cfg(feature = "cli")]
pub mod archive;
#[cfg(feature = "cli")]
pub mod capture;
#[cfg(feature = "cli")]
pub mod cli;
pub mod compare;
pub mod errors;
pub mod history;
pub mod inputs;
pub mod judge;
pub mod policy;
pub mod profile;
#[cfg(feature = "cli")]
pub mod publish;
pub mod report;
pub mod side;
#[cfg(feature = "cli")]
pub mod targets;

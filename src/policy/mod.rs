//! The YAML threshold policy.

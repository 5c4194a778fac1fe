//! Reading profiles from disk.

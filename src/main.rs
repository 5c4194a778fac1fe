//! The `gate` binary: parses arguments and hands them to the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    keep_freed_memory();
    profile_gate::cli::main()
}

/// Tells glibc's allocator to keep memory the gate frees for its next allocations instead of
/// handing it back to the system at once.
///
/// The gate's work comes in bursts that free much and then allocate much again: decoding a
/// profile frees its inflated bytes and scratch tables, and the comparison that follows
/// allocates about as much. By default glibc gives blocks of over 128 KiB their own mapping,
/// unmapped when freed, and trims the heap's free top; each page of the next allocation is
/// then faulted in anew, and on virtual machines a page fault is dear (about 1.7 us here, a
/// quarter of `gate diff`'s CPU on google/pprof's large.cpu). With blocks of up to 32 MiB
/// kept in the heap and up to 64 MiB of free top kept, `gate diff` of large.cpu faults 6,400
/// pages instead of 8,200 and takes 0.92-0.95x the CPU; its peak memory grows by about 1 MiB.
/// Larger blocks (a huge profile's inflated bytes) are still mapped and returned.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    // SAFETY: mallopt only sets two of the allocator's parameters, before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}

/// Other allocators keep their defaults.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

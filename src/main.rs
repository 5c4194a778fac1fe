//! The `gate` binary: parses arguments and hands them to the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    profile_gate::cli::main()
}

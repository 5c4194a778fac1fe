//! Records the commit `gate --version` prints, as the compile-time variable `GATE_COMMIT`:
//! the `GATE_COMMIT` environment variable when set (a Docker build argument, a packager),
//! else `git rev-parse --short=12 HEAD`, else `unknown` (a source tarball, no git).

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=GATE_COMMIT");
    let commit = std::env::var("GATE_COMMIT")
        .ok()
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=GATE_COMMIT={commit}");
}

/// Runs git and returns its trimmed output, `None` on any failure.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// The short commit of HEAD; asks cargo to run this again when HEAD moves (HEAD itself, the
/// branch it points to, packed refs). Only files that exist are named: a missing one would make
/// cargo rebuild the crate every time.
fn git_commit() -> Option<String> {
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in &watched {
        if let Some(path) = git(&["rev-parse", "--path-format=absolute", "--git-path", name]) {
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    Some(commit)
}

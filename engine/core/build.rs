//! Records which commit the engine was built from, for transcript headers: the one
//! place the build reads the outside world (`git`), at compile time only. Built from a
//! tree without git (a source tarball), the commit is simply absent.

// The crate's sans-IO lints (clippy.toml) are for the library; this script runs at
// compile time, and asking git is its whole job.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::process::Command;

fn main() {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(commit) => {
            println!("cargo:rustc-env=TERRARIUM_COMMIT={commit}");
            println!("cargo:rustc-env=TERRARIUM_VERSION={version} (commit {commit})");
        }
        None => println!("cargo:rustc-env=TERRARIUM_VERSION={version}"),
    }
    // Rebuild when HEAD moves: the file HEAD, and the branch it points at.
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        let dir = std::path::Path::new(&dir);
        println!("cargo:rerun-if-changed={}", dir.join("HEAD").display());
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={}", dir.join(branch).display());
        }
        println!("cargo:rerun-if-changed={}", dir.join("packed-refs").display());
    }
}

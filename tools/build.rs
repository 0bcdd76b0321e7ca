//! Records which commit the `terrarium` binary was built from: `--version` shows it and
//! every transcript header carries it (`build`, provenance only). It lives in the
//! binary crate alone, so a new commit rebuilds only the binary, never the engine's
//! libraries; built from a tree without git (a source tarball), the commit is absent.
//!
//! Cargo reruns a build script whose `rerun-if-changed` file does not exist on every
//! build, so only files that exist are named: `HEAD`, and the branch's ref file or,
//! where the branch lives only in `packed-refs` (a fresh clone), that file.

use std::path::Path;
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
    println!("cargo:rerun-if-changed=build.rs");
    let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) else { return };
    let dir = Path::new(&dir);
    let mut watch = vec![dir.join("HEAD")];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        // A branch's ref is a loose file, or a line of packed-refs (or both).
        watch.push(dir.join(branch));
        watch.push(dir.join("packed-refs"));
    }
    for file in watch.iter().filter(|f| f.is_file()) {
        println!("cargo:rerun-if-changed={}", file.display());
    }
}

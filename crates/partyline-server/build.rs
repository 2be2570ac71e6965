//! With the `embed-web` feature: finds the web app scripts/build-web.sh built,
//! which `web::embedded` includes in the binary, and fails the build with what
//! to do when it is missing.
use std::path::PathBuf;

/// Where to take the web app from instead of the source tree's `target/web`.
const DIR_VARIABLE: &str = "PARTYLINE_EMBED_WEB_DIR";
/// Files the page cannot start without: a directory lacking one is not a
/// finished build of the web app.
const REQUIRED: [&str; 4] = [
    "index.html",
    "worker.js",
    "pkg/partyline_web_bg.wasm",
    "pyodide/pyodide.asm.wasm",
];

fn main() {
    println!("cargo::rerun-if-env-changed={DIR_VARIABLE}");
    if std::env::var_os("CARGO_FEATURE_EMBED_WEB").is_none() {
        return;
    }
    let dir = std::env::var_os(DIR_VARIABLE).map_or_else(
        || {
            let manifest = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it");
            PathBuf::from(manifest).join("../../target/web")
        },
        PathBuf::from,
    );
    // Cargo looks at every file below it: a new build of the web app rebuilds the binary.
    println!("cargo::rerun-if-changed={}", dir.display());
    let missing: Vec<&str> = REQUIRED
        .into_iter()
        .filter(|file| !dir.join(file).is_file())
        .collect();
    if !missing.is_empty() {
        println!(
            "cargo::error=the feature embed-web builds the web app into the binary, but {} has \
             no finished build of it (missing: {}). Run scripts/build-web.sh first, or point \
             {DIR_VARIABLE} at a directory it made.",
            dir.display(),
            missing.join(", ")
        );
        return;
    }
    let dir = dir.canonicalize().expect("the directory exists");
    println!(
        "cargo::rustc-env=PARTYLINE_EMBEDDED_WEB_DIR={}",
        dir.display()
    );
}

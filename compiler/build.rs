//! Embed the runtime crate's sources, the templates and the lockfile into
//! the `rill` binary, so an installed `rill` works from any folder.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest
        .parent()
        .expect("compiler/ sits in the workspace")
        .to_path_buf();
    let mut files = Vec::new();
    collect(&root, &root.join("runtime/Cargo.toml"), &mut files);
    collect(&root, &root.join("runtime/src"), &mut files);
    collect(&root, &root.join("templates"), &mut files);
    collect(&root, &root.join("Cargo.lock"), &mut files);
    files.sort();
    let mut out = String::from("/// Files embedded at build time: (path relative to the repository, contents).\npub static FILES: &[(&str, &[u8])] = &[\n");
    for (rel, abs) in &files {
        out.push_str(&format!("    ({rel:?}, include_bytes!({abs:?})),\n"));
    }
    out.push_str("];\n");
    let dest = PathBuf::from(env::var("OUT_DIR").expect("set by cargo")).join("embedded.rs");
    fs::write(dest, out).expect("write embedded.rs");
    for dir in ["runtime/src", "runtime/Cargo.toml", "templates", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
}

fn collect(root: &Path, path: &Path, out: &mut Vec<(String, String)>) {
    if path.is_dir() {
        let mut entries: Vec<_> = fs::read_dir(path)
            .expect("readable")
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        for entry in entries {
            collect(root, &entry, out);
        }
    } else if path.is_file() {
        let rel = path
            .strip_prefix(root)
            .expect("under root")
            .to_string_lossy()
            .replace('\\', "/");
        out.push((rel, path.to_string_lossy().into_owned()));
    }
}

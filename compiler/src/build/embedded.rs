//! The runtime sources, templates and lockfile carried inside `rill`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// One embedded file by its repository path.
pub fn file(path: &str) -> Option<&'static [u8]> {
    FILES.iter().find(|(p, _)| *p == path).map(|(_, c)| *c)
}

/// A template as text.
pub fn template(name: &str) -> &'static str {
    let bytes =
        file(&format!("templates/{name}")).unwrap_or_else(|| panic!("template {name} is embedded at build time"));
    std::str::from_utf8(bytes).expect("templates are UTF-8")
}

/// Hash of the embedded runtime: a new runtime gets a new folder, so
/// pipelines built by different `rill` versions never mix sources.
fn runtime_hash() -> String {
    let mut h = Sha256::new();
    for (path, contents) in FILES.iter().filter(|(p, _)| p.starts_with("runtime/")) {
        h.update(path.as_bytes());
        h.update(contents);
    }
    h.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// Write the runtime crate under `cache` (once) and return its folder.
pub fn extract_runtime(cache: &Path) -> io::Result<PathBuf> {
    let dir = cache.join("runtime").join(runtime_hash());
    let done = dir.join(".complete");
    if done.exists() {
        return Ok(dir);
    }
    for (path, contents) in FILES.iter().filter(|(p, _)| p.starts_with("runtime/")) {
        let dest = dir.join(path.trim_start_matches("runtime/"));
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(dest, contents)?;
    }
    fs::write(done, b"")?;
    Ok(dir)
}

//! The runtime sources, templates and lockfile carried inside `rill`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

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
///
/// Two `rill build`s may start at once (two targets, or two terminals): the files are
/// written into a private folder that is then renamed into place whole, so neither
/// build's cargo can read a file the other is still writing.
pub fn extract_runtime(cache: &Path) -> io::Result<PathBuf> {
    let hash = runtime_hash();
    let dir = cache.join("runtime").join(&hash);
    let done = dir.join(".complete");
    if done.exists() {
        return Ok(dir);
    }
    static STAGED: AtomicU64 = AtomicU64::new(0);
    let staging = cache.join("runtime").join(format!(
        ".{hash}-{}-{}",
        std::process::id(),
        STAGED.fetch_add(1, Ordering::Relaxed)
    ));
    let placed = write_runtime(&staging).and_then(|()| {
        // A failed rename means another build renamed its copy in first, or an
        // incomplete folder from an older rill (which wrote in place) is in the way.
        if fs::rename(&staging, &dir).is_err() && !done.exists() {
            let _ = fs::remove_dir_all(&dir);
            if let Err(e) = fs::rename(&staging, &dir) {
                if !done.exists() {
                    return Err(e);
                }
            }
        }
        Ok(())
    });
    // Left behind only when it was not renamed: a full disk, or another build first.
    let _ = fs::remove_dir_all(&staging);
    placed.map(|()| dir)
}

/// The runtime's files and its `.complete` mark, written under `dir`.
fn write_runtime(dir: &Path) -> io::Result<()> {
    for (path, contents) in FILES.iter().filter(|(p, _)| p.starts_with("runtime/")) {
        let dest = dir.join(path.trim_start_matches("runtime/"));
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(dest, contents)?;
    }
    fs::write(dir.join(".complete"), b"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rill-embedded-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn assert_whole(dir: &Path) {
        for (path, contents) in FILES.iter().filter(|(p, _)| p.starts_with("runtime/")) {
            let on_disk = fs::read(dir.join(path.trim_start_matches("runtime/"))).unwrap();
            assert!(on_disk == *contents, "{path} differs");
        }
        assert!(dir.join(".complete").exists());
    }

    #[test]
    fn builds_starting_at_once_each_find_the_whole_runtime_and_leave_no_staging_behind() {
        for round in 0..5 {
            let cache = scratch(&format!("race-{round}"));
            // Each reads the runtime as soon as it is returned, as cargo would, while
            // the others may still be extracting.
            let dirs: Vec<PathBuf> = std::thread::scope(|s| {
                let workers: Vec<_> = (0..8)
                    .map(|_| {
                        s.spawn(|| {
                            let dir = extract_runtime(&cache).unwrap();
                            assert_whole(&dir);
                            dir
                        })
                    })
                    .collect();
                workers.into_iter().map(|w| w.join().unwrap()).collect()
            });
            assert!(dirs.windows(2).all(|w| w[0] == w[1]));
            let left: Vec<_> = fs::read_dir(cache.join("runtime")).unwrap().collect();
            assert_eq!(left.len(), 1, "only the runtime's folder: {left:?}");
            fs::remove_dir_all(&cache).unwrap();
        }
    }

    #[test]
    fn an_incomplete_folder_left_by_an_older_rill_is_replaced() {
        let cache = scratch("stale");
        let dir = cache.join("runtime").join(runtime_hash());
        fs::create_dir_all(dir.join("src")).unwrap();
        fs::write(dir.join("src/lib.rs"), "half a file").unwrap();
        assert_eq!(extract_runtime(&cache).unwrap(), dir);
        assert_whole(&dir);
        fs::remove_dir_all(&cache).unwrap();
    }
}

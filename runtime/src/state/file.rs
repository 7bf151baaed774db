//! The checkpoint file: one self-checking file per checkpoint.
//!
//! ```text
//! "RILLCKPT"  format version (u32 LE)  body length (u64 LE)  CRC-32 of the body (u32 LE)  body
//! ```
//!
//! The body is a [`Checkpoint`] in postcard (a compact binary serde format). A file is
//! written whole under a temporary name, synced, renamed into place and the directory
//! synced (the rename is what makes it exist), so a crash at any moment leaves either
//! the previous checkpoints alone or the new one complete. A torn or damaged file is
//! still possible after a power cut on a disk that lies about syncs, or by hand: the
//! length and checksum catch it, and the loader falls back to the previous checkpoint.

use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"RILLCKPT";
/// Bumped when the layout of [`Checkpoint`] changes, or of any state a component saves
/// in it: an operator's saved struct, or what the compiler makes a record or a key hold
/// for the same spec. The spec hash ties a checkpoint to its spec, not to the rill that
/// built the binary, and postcard is not self-describing: a layout read as another may
/// fail or may misread. Format 2: hopping windows keep panes, and joins and patterns
/// hold a key field once.
pub const FORMAT_VERSION: u32 = 2;
const HEADER: usize = 8 + 4 + 8 + 4;
/// How many complete checkpoints are kept: the newest and the one before, to fall back on.
pub const KEEP: usize = 2;

/// What one checkpoint holds: every component's state, taken at the same step boundary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Numbers only grow; the file name carries it too.
    pub seq: u64,
    pub pipeline: String,
    /// The spec hash of the binary that wrote it: state is only read by the same spec.
    pub spec_hash: String,
    /// Wall clock when it was taken (Unix ms), for humans.
    pub written_ms: i64,
    /// `(component, state)` in the pipeline's order; each component reads its own bytes.
    pub sections: Vec<(String, Vec<u8>)>,
}

impl Checkpoint {
    pub fn section(&self, name: &str) -> Option<&[u8]> {
        self.sections.iter().find(|(n, _)| n == name).map(|(_, b)| b.as_slice())
    }

    /// Bytes of component state in total.
    pub fn state_bytes(&self) -> usize {
        self.sections.iter().map(|(_, b)| b.len()).sum()
    }
}

/// The folder of checkpoint files inside a state directory.
pub fn checkpoint_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("checkpoints")
}

fn file_name(seq: u64) -> String {
    format!("checkpoint-{seq:020}.bin")
}

/// The sequence number in a checkpoint file name.
pub fn parse_name(name: &str) -> Option<u64> {
    name.strip_prefix("checkpoint-")?.strip_suffix(".bin")?.parse().ok()
}

/// Encodes a checkpoint into its file bytes.
pub fn encode(cp: &Checkpoint) -> Result<Vec<u8>, String> {
    let body = postcard::to_allocvec(cp).map_err(|e| format!("cannot encode the checkpoint: {e}"))?;
    let mut bytes = Vec::with_capacity(HEADER + body.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    bytes.extend_from_slice(&body);
    Ok(bytes)
}

/// Why a checkpoint file cannot be used, precisely enough to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// Shorter than its header or its declared body: cut off (a torn write).
    Torn {
        len: u64,
        expected: u64,
    },
    NotACheckpoint,
    /// Written by another format version of rill.
    Version(u32),
    /// The body does not match its checksum: some byte changed.
    Checksum {
        stored: u32,
        computed: u32,
    },
    /// Longer than its declared body.
    TrailingBytes {
        extra: u64,
    },
    /// The checksum matches but the body does not decode (a bug, or another layout).
    Undecodable(String),
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Damage::Torn { len, expected } => {
                write!(f, "torn: {len} bytes of the {expected} it should have")
            }
            Damage::NotACheckpoint => f.write_str("not a rill checkpoint (wrong magic bytes)"),
            Damage::Version(v) => write!(
                f,
                "written in checkpoint format {v} by another version of rill; this binary reads format \
                 {FORMAT_VERSION} (a binary built by the rill that wrote it can resume from it)"
            ),
            Damage::Checksum { stored, computed } => write!(
                f,
                "checksum mismatch (stored {stored:08x}, computed {computed:08x}): a byte inside changed"
            ),
            Damage::TrailingBytes { extra } => write!(f, "{extra} unexpected bytes after the end"),
            Damage::Undecodable(e) => write!(f, "checksum good but the contents do not decode: {e}"),
        }
    }
}

/// Decodes and verifies a checkpoint file's bytes.
pub fn decode(bytes: &[u8]) -> Result<Checkpoint, Damage> {
    let len = bytes.len() as u64;
    if bytes.len() < HEADER {
        if !MAGIC.starts_with(&bytes[..bytes.len().min(8)]) {
            return Err(Damage::NotACheckpoint);
        }
        return Err(Damage::Torn {
            len,
            expected: HEADER as u64,
        });
    }
    if &bytes[..8] != MAGIC {
        return Err(Damage::NotACheckpoint);
    }
    let word = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let version = word(8);
    if version != FORMAT_VERSION {
        return Err(Damage::Version(version));
    }
    let mut body_len = [0u8; 8];
    body_len.copy_from_slice(&bytes[12..20]);
    let body_len = u64::from_le_bytes(body_len);
    let expected = (HEADER as u64).saturating_add(body_len);
    if len < expected {
        return Err(Damage::Torn { len, expected });
    }
    if len > expected {
        return Err(Damage::TrailingBytes { extra: len - expected });
    }
    let body = &bytes[HEADER..];
    let (stored, computed) = (word(20), crc32fast::hash(body));
    if stored != computed {
        return Err(Damage::Checksum { stored, computed });
    }
    postcard::from_bytes(body).map_err(|e| Damage::Undecodable(e.to_string()))
}

/// Writes `cp` as the newest checkpoint in `dir`: temporary file, fsync, rename, fsync
/// of the directory; then removes all but the [`KEEP`] newest. Returns the bytes written.
pub fn write(dir: &Path, cp: &Checkpoint) -> Result<u64, String> {
    let bytes = encode(cp)?;
    let fail = |what: &str, e: std::io::Error| format!("{what} in `{}`: {e}", dir.display());
    fs::create_dir_all(dir).map_err(|e| fail("cannot create the checkpoint folder", e))?;
    let tmp = dir.join(format!("{}.tmp", file_name(cp.seq)));
    let done = dir.join(file_name(cp.seq));
    let written = File::create(&tmp)
        .and_then(|mut f| f.write_all(&bytes).and_then(|()| f.sync_all()))
        .and_then(|()| fs::rename(&tmp, &done))
        .and_then(|()| sync_dir(dir));
    if let Err(e) = written {
        // A full disk: what was written of it must not take the space of the next try.
        let _ = fs::remove_file(&tmp);
        return Err(fail("cannot write a checkpoint", e));
    }
    for (_, old) in list(dir).into_iter().skip(KEEP) {
        let _ = fs::remove_file(old);
    }
    Ok(bytes.len() as u64)
}

/// Makes a rename (or a removal) in `dir` durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The checkpoint files in `dir`, newest first (leftover temporary files are ignored).
pub fn list(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut found: Vec<(u64, PathBuf)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            parse_name(name.to_str()?).map(|seq| (seq, entry.path()))
        })
        .collect();
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    found
}

/// Removes temporary files of checkpoints a crash interrupted (they were never renamed
/// into place, so nothing reads them).
pub fn remove_unfinished(dir: &Path) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with("checkpoint-") && n.ends_with(".tmp"))
        {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Reads one checkpoint file.
pub fn read(path: &Path) -> Result<Checkpoint, Damage> {
    match fs::read(path) {
        Ok(bytes) => decode(&bytes),
        Err(e) => Err(Damage::Undecodable(format!("cannot read it: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TempDir;

    fn sample(seq: u64) -> Checkpoint {
        Checkpoint {
            seq,
            pipeline: "p".into(),
            spec_hash: "abc".into(),
            written_ms: 1,
            sections: vec![("sources.in".into(), vec![1, 2, 3]), ("windows.w".into(), vec![])],
        }
    }

    #[test]
    fn round_trips_and_keeps_the_two_newest() {
        let dir = TempDir::new("ckpt_files");
        let dir = Path::new(&dir.path("c")).to_owned();
        for seq in 1..=4 {
            write(&dir, &sample(seq)).unwrap_or_else(|e| panic!("{e}"));
        }
        let found = list(&dir);
        assert_eq!(found.iter().map(|f| f.0).collect::<Vec<_>>(), [4, 3]);
        assert_eq!(read(&found[0].1), Ok(sample(4)));
        assert_eq!(sample(4).section("sources.in"), Some(&[1u8, 2, 3][..]));
    }

    #[test]
    fn every_kind_of_damage_is_named() {
        let good = encode(&sample(7)).unwrap_or_default();
        assert_eq!(decode(&good), Ok(sample(7)));
        let torn = decode(&good[..good.len() - 1]);
        assert_eq!(
            torn,
            Err(Damage::Torn {
                len: good.len() as u64 - 1,
                expected: good.len() as u64
            })
        );
        assert!(matches!(decode(&good[..10]), Err(Damage::Torn { len: 10, .. })));
        assert_eq!(decode(b""), Err(Damage::Torn { len: 0, expected: 24 }));
        let mut flipped = good.clone();
        let last = flipped.len() - 2;
        flipped[last] ^= 0x40;
        assert!(matches!(decode(&flipped), Err(Damage::Checksum { .. })));
        let mut longer = good.clone();
        longer.push(0);
        assert_eq!(decode(&longer), Err(Damage::TrailingBytes { extra: 1 }));
        let mut version = good.clone();
        version[8] = 9;
        assert_eq!(decode(&version), Err(Damage::Version(9)));
        assert_eq!(
            decode(b"{\"json\": true, \"but\": \"no\"}"),
            Err(Damage::NotACheckpoint)
        );
    }
}

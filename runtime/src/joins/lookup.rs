//! [`LookupFile`]: reference data read from a JSON-lines or CSV file into a map by key,
//! read again when the file changes.
//!
//! - At start the file must be readable: a join without its reference data is a start
//!   error, not a stream of misses.
//! - Every `reload` ms (wall clock, looked at with a lookup, so an idle pipeline does
//!   not reload), the file's modification time and length are compared with the last
//!   read; when either changed, the file is read again into a new
//!   map, which replaces the old one only when the whole file was read. A file that
//!   cannot be read then (gone, mid-rename) keeps the old map, with a warning.
//! - A row that does not decode is skipped and counted (`rows_skipped` in the log line
//!   each load writes); when two rows have one key, the later one wins.

use crate::batch::strip_newline;
use crate::errors::StartError;
use crate::formats::Decoder;
use crate::log;
use serde_json::json;
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

pub struct LookupFile<K, D: Decoder> {
    component: &'static str,
    path: PathBuf,
    /// A fresh decoder for each read (a CSV file's header is read again).
    decoder: fn() -> D,
    key_of: fn(&D::Output) -> K,
    rows: HashMap<K, D::Output>,
    /// What the file was when last read: modification time and length.
    seen: Option<(SystemTime, u64)>,
    reload: Option<Duration>,
    next_look: Instant,
}

impl<K: Hash + Eq, D: Decoder> LookupFile<K, D> {
    /// Reads `path` with decoders `decoder` makes; `key_of` gives a row's key;
    /// `reload_ms` how often to look for a change (`None`: never).
    pub fn open(
        component: &'static str,
        path: &str,
        decoder: fn() -> D,
        key_of: fn(&D::Output) -> K,
        reload_ms: Option<u64>,
    ) -> Result<Self, StartError> {
        let mut table = LookupFile {
            component,
            path: PathBuf::from(path),
            decoder,
            key_of,
            rows: HashMap::new(),
            seen: None,
            reload: reload_ms.map(Duration::from_millis),
            next_look: Instant::now(),
        };
        table
            .read()
            .map_err(|e| StartError::new(format!("{component}: cannot read the lookup file `{path}`: {e}")))?;
        Ok(table)
    }

    /// The row of `key`, if the file has one.
    #[inline]
    pub fn get<Q>(&mut self, key: &Q) -> Option<&D::Output>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.reload.is_some() {
            self.maybe_reload();
        }
        self.rows.get(key)
    }

    /// Rows held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.rows.len()
    }

    fn maybe_reload(&mut self) {
        let Some(every) = self.reload else { return };
        let now = Instant::now();
        if now < self.next_look {
            return;
        }
        // At most u64::MAX ms (the compiler allows i64::MAX): well within the clock.
        self.next_look = now + every;
        let changed = match std::fs::metadata(&self.path) {
            Ok(meta) => Some((meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), meta.len())) != self.seen,
            Err(_) => true,
        };
        if !changed {
            return;
        }
        if let Err(e) = self.read() {
            log::warn(
                "lookup file unreadable; keeping the rows read before",
                &[
                    ("component", json!(self.component)),
                    ("path", json!(self.path.display().to_string())),
                    ("reason", json!(e.to_string())),
                ],
            );
        }
    }

    /// Reads the whole file into a new map, which replaces the old one.
    fn read(&mut self) -> std::io::Result<()> {
        let file = std::fs::File::open(&self.path)?;
        let meta = file.metadata()?;
        let seen = (meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), meta.len());
        let mut decoder = (self.decoder)();
        let mut rows = HashMap::new();
        let mut skipped = 0u64;
        let mut line = Vec::new();
        let mut reader = BufReader::new(file);
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            match decoder.decode(strip_newline(&line)) {
                Ok(Some(row)) => {
                    rows.insert((self.key_of)(&row), row);
                }
                Ok(None) => {}
                Err(_) => skipped += 1,
            }
        }
        log::info(
            "lookup file read",
            &[
                ("component", json!(self.component)),
                ("path", json!(self.path.display().to_string())),
                ("rows", json!(rows.len())),
                ("rows_skipped", json!(skipped)),
            ],
        );
        self.rows = rows;
        self.seen = Some(seen);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::JsonDecoder;
    use crate::test_util::TempDir;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    struct Device {
        id: String,
        site: String,
    }

    impl crate::formats::ScanJson for Device {}

    fn key_of(d: &Device) -> String {
        d.id.clone()
    }

    #[test]
    fn rows_are_found_by_key_the_last_of_a_key_wins_and_bad_rows_are_skipped() {
        let dir = TempDir::new("lookup-rows");
        let path = dir.write(
            "devices.jsonl",
            b"{\"id\":\"a\",\"site\":\"x\"}\nnot json\n\n{\"id\":\"b\",\"site\":\"y\"}\n{\"id\":\"a\",\"site\":\"z\"}\n",
        );
        let mut table = LookupFile::open("joins.t", &path, JsonDecoder::<Device>::new, key_of, None).unwrap();
        assert_eq!(table.len(), 2);
        assert_eq!(table.get("a").map(|d| d.site.as_str()), Some("z"));
        assert_eq!(table.get("b").map(|d| d.site.as_str()), Some("y"));
        assert_eq!(table.get("c"), None);
    }

    #[test]
    fn a_missing_file_is_a_start_error() {
        let e = LookupFile::open(
            "joins.t",
            "/nonexistent/devices.jsonl",
            JsonDecoder::<Device>::new,
            key_of,
            None,
        )
        .err()
        .expect("no file, no start");
        assert!(e.to_string().contains("cannot read the lookup file"), "{e}");
    }

    #[test]
    fn a_changed_file_is_read_again_and_a_vanished_one_keeps_the_old_rows() {
        let dir = TempDir::new("lookup-reload");
        let path = dir.write("devices.jsonl", b"{\"id\":\"a\",\"site\":\"x\"}\n");
        let mut table = LookupFile::open("joins.t", &path, JsonDecoder::<Device>::new, key_of, Some(0)).unwrap();
        std::fs::write(
            &path,
            "{\"id\":\"a\",\"site\":\"new\"}\n{\"id\":\"b\",\"site\":\"y\"}\n",
        )
        .unwrap();
        table.get("a");
        assert_eq!(table.len(), 2, "read again: its length changed");
        assert_eq!(table.get("a").map(|d| d.site.as_str()), Some("new"));
        std::fs::remove_file(&path).unwrap();
        table.get("a");
        assert_eq!(table.len(), 2, "the rows read before stay");
    }

    #[test]
    fn the_longest_reload_period_is_no_overflow() {
        let dir = TempDir::new("lookup-far");
        let path = dir.write("devices.jsonl", b"{\"id\":\"a\",\"site\":\"x\"}\n");
        let mut table = LookupFile::open("joins.t", &path, JsonDecoder::<Device>::new, key_of, Some(u64::MAX)).unwrap();
        assert!(table.get("a").is_some());
        assert!(table.get("a").is_some(), "the first look added the period to the clock");
    }
}

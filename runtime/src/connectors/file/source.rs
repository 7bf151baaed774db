//! `FileSource`: newline-delimited records from a file, read once or followed (`tail -F`).

use crate::batch::RawBatch;
use crate::errors::{RunError, StartError};
use crate::sources::framing::LineSplitter;
use crate::sources::{Poll, RawSource};
use std::fs::File;
use std::io::{ErrorKind, Seek, SeekFrom};
use std::time::Duration;

/// How many of the file's first bytes identify it (as Vector's file source does): when
/// they change, the file was truncated and written again, even if it grew past the
/// position read so far before anyone looked.
const FINGERPRINT_BYTES: usize = 256;

/// Bytes read in one poll at most, so a poll returns even when no line ends (a record
/// being skipped because it is too long, `/dev/zero`): shutdown stays responsive.
const READ_PER_POLL: u64 = 16 << 20;

/// How long a followed file at its end is left alone: appended lines show up within
/// this, and an idle pipeline wakes 4 times a second to look. (Filebeat's log input
/// waits 1 s at first, `backoff`; `tail -F` 1 s; Vector and Fluent Bit use inotify or
/// similar, which would need a dependency here.)
pub const FOLLOW_LOOK: Duration = Duration::from_millis(250);

/// Reads a file line by line.
///
/// Without `follow` it returns `Finished` at end of file (a last line without `'\n'` is
/// still a record). With `follow` it returns `Idle` at end of file, keeps a partial last
/// line until its `'\n'` arrives, and, at the end of the file and before reading on
/// after it:
/// - starts again from the top when the file was truncated: it is shorter than the
///   position read, or its first bytes (up to [`FINGERPRINT_BYTES`]) are no longer those
///   read (`copytruncate` rotation, or a file rewritten past the old position);
/// - switches to the new file when the path names another file (rename rotation), after
///   reading the old one to its end.
///
/// Records longer than `max_record_bytes` are bad records (see [`LineSplitter`]).
#[derive(Debug)]
pub struct FileSource {
    path: String,
    file: File,
    follow: bool,
    splitter: LineSplitter,
    /// Bytes read from the current file.
    position: u64,
    /// The first bytes of the current file as read (up to [`FINGERPRINT_BYTES`]).
    head: Vec<u8>,
    /// The last read reached the end of the file (follow mode): check for a truncation
    /// before reading on.
    at_end: bool,
    done: bool,
}

impl FileSource {
    /// Opens `path`; records longer than `max_record_bytes` are bad records.
    pub fn open(path: &str, follow: bool, max_record_bytes: u64) -> Result<Self, StartError> {
        let file = File::open(path).map_err(|e| StartError::new(format!("cannot open `{path}`: {e}")))?;
        Ok(FileSource {
            path: path.to_owned(),
            file,
            follow,
            splitter: LineSplitter::new(usize::try_from(max_record_bytes).unwrap_or(usize::MAX)),
            position: 0,
            head: Vec::new(),
            at_end: false,
            done: false,
        })
    }

    fn io_error(&self, e: std::io::Error) -> RunError {
        RunError::new(format!("reading `{}`: {e}", self.path))
    }

    /// Follow mode, at the end of the file or before reading on after it: detects a
    /// truncation (and reads from the top) or, at the end only, a replacement.
    fn check_rotation(&mut self, batch: &mut RawBatch, at_end: bool) -> Result<(), RunError> {
        if let Some(why) = self.truncated()? {
            crate::log::warn(
                "file truncated, reading from the start",
                &[("path", self.path.as_str().into()), ("why", why.into())],
            );
            self.file.seek(SeekFrom::Start(0)).map_err(|e| self.io_error(e))?;
            self.restart();
            return Ok(());
        }
        if at_end && self.replaced() {
            // The old file is drained (we are at its end); its unterminated last line
            // will never be completed, so it is emitted rather than lost.
            if let Ok(file) = File::open(&self.path) {
                crate::log::info(
                    "file replaced, following the new one",
                    &[("path", self.path.as_str().into())],
                );
                self.splitter.finish(batch);
                self.file = file;
                self.restart();
            }
            return Ok(());
        }
        self.remember_head()
    }

    /// Reading the current file (again) from its first byte.
    fn restart(&mut self) {
        self.position = 0;
        self.head.clear();
        self.splitter.clear();
    }

    /// Why the open file no longer holds what was read from it, if it does not.
    fn truncated(&self) -> Result<Option<String>, RunError> {
        let len = self.file.metadata().map_err(|e| self.io_error(e))?.len();
        if len < self.position {
            return Ok(Some(format!("{len} bytes, less than the {} read", self.position)));
        }
        if !self.head.is_empty() && self.read_head(self.head.len())? != self.head {
            return Ok(Some(format!("its first {} bytes changed", self.head.len())));
        }
        Ok(None)
    }

    /// Remembers up to [`FINGERPRINT_BYTES`] of the file's first bytes, as far as read.
    fn remember_head(&mut self) -> Result<(), RunError> {
        let want = FINGERPRINT_BYTES.min(usize::try_from(self.position).unwrap_or(usize::MAX));
        if want > self.head.len() {
            self.head = self.read_head(want)?;
        }
        Ok(())
    }

    /// The first `n` bytes of the open file (fewer if it is shorter), read without
    /// moving the position.
    #[cfg(unix)]
    fn read_head(&self, n: usize) -> Result<Vec<u8>, RunError> {
        use std::os::unix::fs::FileExt;
        let mut head = vec![0; n];
        let mut filled = 0;
        while filled < n {
            match self.file.read_at(&mut head[filled..], filled as u64) {
                Ok(0) => break,
                Ok(k) => filled += k,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_error(e)),
            }
        }
        head.truncate(filled);
        Ok(head)
    }

    /// Without positional reads the first bytes are not compared: truncation is
    /// detected by size only.
    #[cfg(not(unix))]
    fn read_head(&self, _n: usize) -> Result<Vec<u8>, RunError> {
        Ok(Vec::new())
    }

    #[cfg(unix)]
    fn replaced(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (self.file.metadata(), std::fs::metadata(&self.path)) {
            (Ok(open), Ok(now)) => open.ino() != now.ino() || open.dev() != now.dev(),
            // A missing path (between rename and re-create) is not a replacement yet.
            _ => false,
        }
    }

    #[cfg(not(unix))]
    fn replaced(&self) -> bool {
        false
    }
}

/// Where a checkpoint left a file: which file (device and inode, as a rotation changes
/// them) and the offset of the first byte not yet part of a handled record.
#[derive(serde::Serialize, serde::Deserialize)]
struct Position {
    path: String,
    dev: u64,
    ino: u64,
    offset: u64,
}

#[cfg(unix)]
fn identity(file: &File) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    file.metadata().map_or((0, 0), |m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn identity(_file: &File) -> (u64, u64) {
    (0, 0)
}

impl RawSource for FileSource {
    fn position(&self) -> Vec<u8> {
        let (dev, ino) = identity(&self.file);
        let position = Position {
            path: self.path.clone(),
            dev,
            ino,
            offset: self.position - self.splitter.unconsumed(),
        };
        let mut saved = Vec::new();
        // A struct of integers and a string always encodes.
        let _ = crate::state::save_value(&self.path, &position, &mut saved);
        saved
    }

    /// Continues at the checkpoint's offset when the file is still the one it was
    /// (same device and inode, at least that long); otherwise the file was replaced or
    /// cut since, and it is read from the start, saying so.
    fn resume(&mut self, saved: &[u8]) -> Result<(), StartError> {
        let at: Position = crate::state::restore_value(&self.path, saved)?;
        let len = self
            .file
            .metadata()
            .map_err(|e| StartError::new(format!("cannot read `{}`: {e}", self.path)))?
            .len();
        if identity(&self.file) != (at.dev, at.ino) || len < at.offset {
            crate::log::warn(
                "input is not the file the checkpoint read; reading it from the start",
                &[
                    ("path", self.path.as_str().into()),
                    ("checkpoint_path", at.path.into()),
                    ("checkpoint_offset", at.offset.into()),
                    ("length_now", len.into()),
                ],
            );
            return Ok(());
        }
        self.file
            .seek(SeekFrom::Start(at.offset))
            .map_err(|e| StartError::new(format!("cannot seek in `{}`: {e}", self.path)))?;
        self.position = at.offset;
        self.splitter.resume(at.offset == 0);
        self.head.clear();
        Ok(())
    }

    /// Only a followed file at its end is idle; it cannot notify, so it asks to be
    /// looked at again after [`FOLLOW_LOOK`].
    fn idle_for(&self) -> Option<Duration> {
        Some(FOLLOW_LOOK)
    }

    fn poll(&mut self, batch: &mut RawBatch, max: usize) -> Result<Poll, RunError> {
        if self.done {
            return Ok(Poll::Finished);
        }
        if self.at_end {
            // The file may have been truncated and written again since: look before
            // reading on from the old position.
            self.check_rotation(batch, false)?;
            self.at_end = false;
        }
        let mut read = 0u64;
        loop {
            if self.splitter.drain_lines(batch, max) {
                return Ok(Poll::Ready);
            }
            if read >= READ_PER_POLL {
                // No line ended in all that: let the pipeline look up (a signal).
                return Ok(Poll::Ready);
            }
            match self.splitter.read_from(&mut self.file) {
                Ok(0) if self.follow => {
                    self.at_end = true;
                    self.check_rotation(batch, true)?;
                    return Ok(Poll::unless_filled(batch, Poll::Idle));
                }
                Ok(0) => {
                    self.splitter.finish(batch);
                    self.done = true;
                    return Ok(Poll::unless_filled(batch, Poll::Finished));
                }
                Ok(n) => {
                    self.position += n as u64;
                    read += n as u64;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_error(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TempDir;
    use std::io::Write;

    const MAX: u64 = 1 << 20;

    fn poll_all(src: &mut FileSource, max: usize) -> (Vec<String>, Poll) {
        let mut out = vec![];
        loop {
            let mut b = RawBatch::new();
            let p = src.poll(&mut b, max).unwrap_or_else(|e| panic!("{e}"));
            assert!(b.len() <= max);
            out.extend(b.iter().map(|r| String::from_utf8_lossy(r).into_owned()));
            if p != Poll::Ready {
                return (out, p);
            }
        }
    }

    #[test]
    fn reads_once_including_unterminated_last_line() {
        let dir = TempDir::new("file_once");
        let path = dir.write("in.txt", b"a\r\nb\n\nc");
        let mut src = FileSource::open(&path, false, MAX).unwrap_or_else(|e| panic!("{e}"));
        let (lines, end) = poll_all(&mut src, 2);
        assert_eq!(lines, ["a", "b", "", "c"]);
        assert_eq!(end, Poll::Finished);
        assert_eq!(poll_all(&mut src, 2).1, Poll::Finished);
    }

    #[test]
    fn reading_dev_zero_returns_between_polls_and_reports_the_endless_record() {
        let mut src = FileSource::open("/dev/zero", false, 1024).unwrap_or_else(|e| panic!("{e}"));
        let mut reports = 0;
        for _ in 0..3 {
            let mut b = RawBatch::new();
            assert_eq!(src.poll(&mut b, 10), Ok(Poll::Ready));
            reports += (0..b.len()).filter(|&i| b.failure(i).is_some()).count();
        }
        assert!(reports >= 3, "{reports} reports");
    }

    #[test]
    fn missing_file_is_a_start_error() {
        let err = FileSource::open("/nonexistent/rill/x.jsonl", false, MAX).err();
        assert!(err.is_some_and(|e| e.to_string().contains("cannot open `/nonexistent/rill/x.jsonl`")));
    }

    #[test]
    fn follow_picks_up_appended_lines_and_partial_lines() {
        let dir = TempDir::new("file_follow");
        let path = dir.write("in.txt", b"one\ntw");
        let mut src = FileSource::open(&path, true, MAX).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(poll_all(&mut src, 10), (vec!["one".to_owned()], Poll::Idle));
        assert_eq!(poll_all(&mut src, 10), (vec![], Poll::Idle), "partial line held back");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("{e}"));
        f.write_all(b"o\nthree\nfo").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            poll_all(&mut src, 10),
            (vec!["two".to_owned(), "three".to_owned()], Poll::Idle)
        );
        f.write_all(b"ur\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(poll_all(&mut src, 10), (vec!["four".to_owned()], Poll::Idle));
    }

    #[test]
    fn follow_restarts_after_truncation() {
        let dir = TempDir::new("file_trunc");
        let path = dir.write("in.txt", b"old line one\nold line two\n");
        let mut src = FileSource::open(&path, true, MAX).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(poll_all(&mut src, 10).0.len(), 2);
        std::fs::write(&path, b"new\n").unwrap_or_else(|e| panic!("{e}"));
        // First poll notices the truncation, the next reads from the top.
        let mut lines = poll_all(&mut src, 10).0;
        lines.extend(poll_all(&mut src, 10).0);
        assert_eq!(lines, ["new"]);
    }

    #[test]
    fn follow_restarts_when_the_file_is_refilled_past_the_position_read() {
        let dir = TempDir::new("file_refill");
        let old: String = (0..100).map(|i| format!("old {i}\n")).collect();
        let path = dir.write("in.txt", old.as_bytes());
        let mut src = FileSource::open(&path, true, MAX).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(poll_all(&mut src, 1000).0.len(), 100);
        // Truncated and written again, longer than before, between two polls: the size
        // alone does not show it, the first bytes do.
        let new: Vec<String> = (0..200).map(|i| format!("new {i}")).collect();
        std::fs::write(&path, new.iter().map(|l| format!("{l}\n")).collect::<String>())
            .unwrap_or_else(|e| panic!("{e}"));
        let mut lines = poll_all(&mut src, 1000).0;
        lines.extend(poll_all(&mut src, 1000).0);
        assert_eq!(lines, new);
    }

    #[test]
    fn follow_switches_to_a_replaced_file() {
        let dir = TempDir::new("file_rotate");
        let path = dir.write("in.txt", b"a\npartial");
        let mut src = FileSource::open(&path, true, MAX).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(poll_all(&mut src, 10).0, ["a"]);
        std::fs::rename(&path, dir.path("in.txt.1")).unwrap_or_else(|e| panic!("{e}"));
        dir.write("in.txt", b"b\n");
        let mut lines = poll_all(&mut src, 10).0;
        lines.extend(poll_all(&mut src, 10).0);
        assert_eq!(lines, ["partial", "b"]);
    }
}

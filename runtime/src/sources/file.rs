//! `FileSource`: newline-delimited records from a file, read once or followed (`tail -F`).

use super::framing::LineSplitter;
use super::{Poll, RawSource};
use crate::batch::RawBatch;
use crate::errors::{RunError, StartError};
use std::fs::File;
use std::io::{ErrorKind, Seek, SeekFrom};

/// Reads a file line by line.
///
/// Without `follow` it returns `Finished` at end of file (a last line without `'\n'` is
/// still a record). With `follow` it returns `Idle` at end of file, keeps a partial last
/// line until its `'\n'` arrives, starts again from the top when the file is truncated
/// (size < position, as `copytruncate` log rotation does), and switches to the new file
/// when the path is replaced (rename rotation).
#[derive(Debug)]
pub struct FileSource {
    path: String,
    file: File,
    follow: bool,
    splitter: LineSplitter,
    /// Bytes read from the current file.
    position: u64,
    done: bool,
}

impl FileSource {
    pub fn open(path: &str, follow: bool) -> Result<Self, StartError> {
        let file = File::open(path).map_err(|e| StartError::new(format!("cannot open `{path}`: {e}")))?;
        Ok(FileSource {
            path: path.to_owned(),
            file,
            follow,
            splitter: LineSplitter::new(),
            position: 0,
            done: false,
        })
    }

    fn io_error(&self, e: std::io::Error) -> RunError {
        RunError::new(format!("reading `{}`: {e}", self.path))
    }

    /// At end of file in follow mode: detect truncation and replacement.
    fn check_rotation(&mut self, batch: &mut RawBatch) -> Result<(), RunError> {
        let len = self.file.metadata().map_err(|e| self.io_error(e))?.len();
        if len < self.position {
            crate::log::info(
                "file truncated, reading from the start",
                &[("path", self.path.as_str().into())],
            );
            self.file.seek(SeekFrom::Start(0)).map_err(|e| self.io_error(e))?;
            self.position = 0;
            self.splitter.clear();
            return Ok(());
        }
        if self.replaced() {
            // The old file is drained (we are at its end); its unterminated last line
            // will never be completed, so it is emitted rather than lost.
            if let Ok(file) = File::open(&self.path) {
                crate::log::info(
                    "file replaced, following the new one",
                    &[("path", self.path.as_str().into())],
                );
                self.splitter.finish(batch);
                self.file = file;
                self.position = 0;
            }
        }
        Ok(())
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

impl RawSource for FileSource {
    fn poll(&mut self, batch: &mut RawBatch, max: usize) -> Result<Poll, RunError> {
        if self.done {
            return Ok(Poll::Finished);
        }
        loop {
            if self.splitter.drain_lines(batch, max) {
                return Ok(Poll::Ready);
            }
            match self.splitter.read_from(&mut self.file) {
                Ok(0) if self.follow => {
                    self.check_rotation(batch)?;
                    return Ok(Poll::unless_filled(batch, Poll::Idle));
                }
                Ok(0) => {
                    self.splitter.finish(batch);
                    self.done = true;
                    return Ok(Poll::unless_filled(batch, Poll::Finished));
                }
                Ok(n) => self.position += n as u64,
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
        let mut src = FileSource::open(&path, false).unwrap_or_else(|e| panic!("{e}"));
        let (lines, end) = poll_all(&mut src, 2);
        assert_eq!(lines, ["a", "b", "", "c"]);
        assert_eq!(end, Poll::Finished);
        assert_eq!(poll_all(&mut src, 2).1, Poll::Finished);
    }

    #[test]
    fn missing_file_is_a_start_error() {
        let err = FileSource::open("/nonexistent/rill/x.jsonl", false).err();
        assert!(err.is_some_and(|e| e.to_string().contains("cannot open `/nonexistent/rill/x.jsonl`")));
    }

    #[test]
    fn follow_picks_up_appended_lines_and_partial_lines() {
        let dir = TempDir::new("file_follow");
        let path = dir.write("in.txt", b"one\ntw");
        let mut src = FileSource::open(&path, true).unwrap_or_else(|e| panic!("{e}"));
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
        let mut src = FileSource::open(&path, true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(poll_all(&mut src, 10).0.len(), 2);
        std::fs::write(&path, b"new\n").unwrap_or_else(|e| panic!("{e}"));
        // First poll notices the truncation, the next reads from the top.
        let mut lines = poll_all(&mut src, 10).0;
        lines.extend(poll_all(&mut src, 10).0);
        assert_eq!(lines, ["new"]);
    }

    #[test]
    fn follow_switches_to_a_replaced_file() {
        let dir = TempDir::new("file_rotate");
        let path = dir.write("in.txt", b"a\npartial");
        let mut src = FileSource::open(&path, true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(poll_all(&mut src, 10).0, ["a"]);
        std::fs::rename(&path, dir.path("in.txt.1")).unwrap_or_else(|e| panic!("{e}"));
        dir.write("in.txt", b"b\n");
        let mut lines = poll_all(&mut src, 10).0;
        lines.extend(poll_all(&mut src, 10).0);
        assert_eq!(lines, ["partial", "b"]);
    }
}

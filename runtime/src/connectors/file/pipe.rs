//! Named pipes (FIFOs) given as a file source's path.
//!
//! Opening a FIFO blocks until a writer opens it, and reading blocks while the writer is
//! quiet; a blocked main loop would not notice a shutdown signal. So a FIFO is read like
//! stdin, on a thread of its own ([`StdinSource`]), and `poll` never waits for it.

use super::FileSource;
use crate::connectors::stdin::StdinSource;
use crate::errors::StartError;
use crate::sources::RawSource;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileTypeExt;

/// The raw source for a `file` source's path: [`FileSource`] for a regular file, a
/// threaded reader for a named pipe (with `follow`, it waits for the next writer after
/// one closes, as `tail -F` would; without, the first writer's end is the end).
pub fn open_file(path: &str, follow: bool, max_record_bytes: u64) -> Result<Box<dyn RawSource>, StartError> {
    let is_fifo = std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo());
    if !is_fifo {
        return Ok(Box::new(FileSource::open(path, follow, max_record_bytes)?));
    }
    let reader = OpenOnRead {
        path: path.to_owned(),
        follow,
        file: None,
    };
    Ok(Box::new(StdinSource::from_reader_named(
        reader,
        format!("`{path}`"),
        max_record_bytes,
    )))
}

/// Opens the pipe on the first read (on the reader thread, where blocking is harmless).
struct OpenOnRead {
    path: String,
    follow: bool,
    file: Option<File>,
}

impl Read for OpenOnRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let file = match &mut self.file {
                Some(file) => file,
                None => self.file.insert(File::open(&self.path)?),
            };
            match file.read(buf)? {
                0 if self.follow => self.file = None,
                n => return Ok(n),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::RawBatch;
    use crate::sources::Poll;
    use crate::test_util::TempDir;
    use std::io::Write;
    use std::time::{Duration, Instant};

    fn mkfifo(path: &str) {
        let status = std::process::Command::new("mkfifo").arg(path).status();
        assert!(status.is_ok_and(|s| s.success()), "mkfifo {path}");
    }

    #[test]
    fn a_quiet_fifo_never_blocks_poll_and_its_lines_arrive() {
        let dir = TempDir::new("fifo_source");
        let path = dir.path("in.fifo");
        mkfifo(&path);
        let mut src = open_file(&path, false, 1 << 20).unwrap_or_else(|e| panic!("{e}"));
        // No writer yet: opening would block forever; polling returns (this test would
        // hang otherwise).
        assert_eq!(src.poll(&mut RawBatch::new(), 10), Ok(Poll::Idle));
        let writer_path = path.clone();
        let writer = std::thread::spawn(move || {
            let mut w = std::fs::OpenOptions::new().write(true).open(writer_path)?;
            w.write_all(b"one\ntwo\n")
        });
        let mut lines = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut batch = RawBatch::new();
            let poll = src.poll(&mut batch, 10).unwrap_or_else(|e| panic!("{e}"));
            lines.extend(batch.iter().map(|r| String::from_utf8_lossy(r).into_owned()));
            if poll == Poll::Finished || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(writer.join().is_ok_and(|r| r.is_ok()));
        assert_eq!(lines, ["one", "two"]);
    }

    #[test]
    fn regular_files_are_read_directly_and_missing_ones_are_start_errors() {
        let dir = TempDir::new("fifo_source_plain");
        let path = dir.write("plain.txt", b"a\n");
        let mut src = open_file(&path, false, 1 << 20).unwrap_or_else(|e| panic!("{e}"));
        let mut batch = RawBatch::new();
        assert_eq!(src.poll(&mut batch, 10), Ok(Poll::Ready));
        assert_eq!(batch.len(), 1);
        assert_eq!(src.poll(&mut RawBatch::new(), 10), Ok(Poll::Finished));
        assert!(open_file(&dir.path("missing"), false, 1 << 20).is_err());
    }
}

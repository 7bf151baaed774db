//! `FileSink`: records appended to (or replacing) a file.

use crate::errors::{RunError, StartError};
use crate::sinks::RawSink;
use crate::sinks::WriterThread;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

/// The file's write buffer: as large as the chunks an output hands over mid-step
/// ([`crate::sinks::WRITE_AT`]), so those go to the file without being copied into it
/// (`BufWriter` writes through what is at least its size); the smaller rest of a step
/// is gathered.
const BUFFER: usize = crate::sinks::WRITE_AT;

/// Writes to a file through a `BufWriter`; parent directories are created at start so
/// `path: out/alerts.jsonl` works on a fresh machine. A named pipe (FIFO) is opened and
/// written on a [`WriterThread`]: both block until a reader comes and reads.
///
/// When a write or flush fails (a full disk), what was not flushed is discarded and the
/// file is cut back to its length after the last good flush: the file never ends in a
/// torn record, and the records lost are exactly those the output reports.
pub struct FileSink {
    path: String,
    out: Target,
}

enum Target {
    File {
        out: BufWriter<File>,
        /// The file's length after the last successful flush.
        flushed_len: u64,
        /// Bytes handed to `out` since then.
        unflushed: u64,
    },
    Pipe(WriterThread),
}

impl FileSink {
    /// Opens `path`, truncating it unless `append`.
    pub fn create(path: &str, append: bool) -> Result<Self, StartError> {
        let fail = |what: &str, e: std::io::Error| StartError::new(format!("cannot {what} `{path}`: {e}"));
        if std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo()) {
            let owned = path.to_owned();
            let pipe = WriterThread::spawn(format!("`{path}`"), move || OpenOptions::new().write(true).open(owned))
                .map_err(|e| StartError::new(e.message()))?;
            return Ok(FileSink {
                path: path.to_owned(),
                out: Target::Pipe(pipe),
            });
        }
        if let Some(parent) = Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| fail("create the directory of", e))?;
        }
        let mut options = OpenOptions::new();
        options.create(true);
        if append {
            options.append(true);
        } else {
            options.write(true).truncate(true);
        }
        let file = options.open(path).map_err(|e| fail("open", e))?;
        let flushed_len = if append {
            file.metadata().map_or(0, |m| m.len())
        } else {
            0
        };
        Ok(FileSink {
            path: path.to_owned(),
            out: Target::File {
                out: BufWriter::with_capacity(BUFFER, file),
                flushed_len,
                unflushed: 0,
            },
        })
    }

    /// After a failed write or flush: drop what is buffered and cut off a torn tail.
    fn forget_unflushed(&mut self, e: std::io::Error) -> RunError {
        if let Target::File {
            out,
            flushed_len,
            unflushed,
        } = &mut self.out
        {
            *unflushed = 0;
            let fresh = out.get_ref().try_clone().map(|f| BufWriter::with_capacity(BUFFER, f));
            if let Ok(fresh) = fresh {
                // The old writer's buffer is dropped without being written.
                let (file, _) = std::mem::replace(out, fresh).into_parts();
                // A device such as /dev/full has no length to cut back to. The clone
                // shares the file position, which must not stay past the new end.
                if file.metadata().is_ok_and(|m| m.is_file()) {
                    let _ = file.set_len(*flushed_len);
                    let _ = (&file).seek(SeekFrom::Start(*flushed_len));
                }
            }
        }
        RunError::new(format!("writing `{}`: {e}", self.path))
    }
}

impl RawSink for FileSink {
    fn write(&mut self, bytes: &[u8]) -> Result<(), RunError> {
        match &mut self.out {
            Target::File { out, unflushed, .. } => match out.write_all(bytes) {
                Ok(()) => {
                    *unflushed += bytes.len() as u64;
                    Ok(())
                }
                Err(e) => Err(self.forget_unflushed(e)),
            },
            Target::Pipe(pipe) => pipe.write(bytes),
        }
    }

    /// A pipe's writer thread takes the buffer itself; a file copies it into its own.
    fn write_from(&mut self, buf: &mut Vec<u8>) -> Result<(), RunError> {
        let written = match &mut self.out {
            Target::Pipe(pipe) => pipe.hand_over(buf),
            Target::File { .. } => self.write(buf),
        };
        buf.clear();
        written
    }

    fn flush(&mut self) -> Result<(), RunError> {
        match &mut self.out {
            Target::File {
                out,
                flushed_len,
                unflushed,
            } => match out.flush() {
                Ok(()) => {
                    *flushed_len += std::mem::take(unflushed);
                    Ok(())
                }
                Err(e) => Err(self.forget_unflushed(e)),
            },
            Target::Pipe(pipe) => pipe.flush(),
        }
    }

    /// The file's path and committed length, after an fsync: a power cut cannot take
    /// back what a checkpoint counts as written. A pipe or a device (`/dev/null`,
    /// which cannot be synced or cut) has no position.
    fn save_position(&mut self) -> Result<Vec<u8>, RunError> {
        let Target::File { out, flushed_len, .. } = &mut self.out else {
            return Ok(Vec::new());
        };
        if !out.get_ref().metadata().is_ok_and(|m| m.is_file()) {
            return Ok(Vec::new());
        }
        let len = *flushed_len;
        out.get_ref()
            .sync_data()
            .map_err(|e| RunError::new(format!("syncing `{}`: {e}", self.path)))?;
        let mut saved = Vec::new();
        crate::state::save_value(&self.path, &(self.path.as_str(), len), &mut saved)?;
        Ok(saved)
    }

    /// Cuts the file back to its length at the checkpoint: what follows was written
    /// after it, and the replay writes it again.
    fn rewind(&mut self, saved: &[u8]) -> Result<(), StartError> {
        let Target::File { out, flushed_len, .. } = &mut self.out else {
            return Ok(());
        };
        if saved.is_empty() {
            return Ok(());
        }
        let (path, len): (String, u64) = crate::state::restore_value(&self.path, saved)?;
        if path != self.path {
            return Err(StartError::new(format!(
                "the checkpoint's output is `{path}`, now it is `{}`; run with --reset-state to start over with the new file",
                self.path
            )));
        }
        let file = out.get_ref();
        let now = file
            .metadata()
            .map_err(|e| StartError::new(format!("cannot read `{path}`: {e}")))?
            .len();
        if now < len {
            return Err(StartError::new(format!(
                "`{path}` is {now} bytes, shorter than the {len} bytes the checkpoint committed: \
                 it was cut or replaced since; run with --reset-state to start over"
            )));
        }
        if now > len {
            crate::log::info(
                "output cut back to the checkpoint; the replay writes the rest again",
                &[("path", path.as_str().into()), ("from", now.into()), ("to", len.into())],
            );
        }
        file.set_len(len)
            .and_then(|()| file.sync_data())
            .map_err(|e| StartError::new(format!("cannot cut `{path}` back to {len} bytes: {e}")))?;
        *flushed_len = len;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TempDir;

    #[test]
    fn creates_parents_truncates_or_appends() {
        let dir = TempDir::new("file_sink");
        let path = dir.path("a/b/out.txt");
        for (append, text, expected) in [(false, "1\n", "1\n"), (true, "2\n", "1\n2\n"), (false, "3\n", "3\n")] {
            let mut sink = FileSink::create(&path, append).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(sink.write(text.as_bytes()), Ok(()));
            assert_eq!(sink.flush(), Ok(()));
            assert_eq!(std::fs::read_to_string(&path).ok().as_deref(), Some(expected));
        }
    }

    #[test]
    fn a_file_saves_its_committed_length_and_is_cut_back_to_it_a_device_saves_nothing() {
        let dir = TempDir::new("file_sink_position");
        let path = dir.path("out.txt");
        let mut sink = FileSink::create(&path, false).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sink.write(b"kept\n").and_then(|()| sink.flush()), Ok(()));
        let saved = sink.save_position().unwrap_or_default();
        assert_eq!(sink.write(b"after\n").and_then(|()| sink.flush()), Ok(()));
        drop(sink);
        let mut resumed = FileSink::create(&path, true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(resumed.rewind(&saved), Ok(()));
        assert_eq!(resumed.write(b"again\n").and_then(|()| resumed.flush()), Ok(()));
        assert_eq!(std::fs::read_to_string(&path).ok().as_deref(), Some("kept\nagain\n"));

        let mut null = FileSink::create("/dev/null", false).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(null.write(b"x\n").and_then(|()| null.flush()), Ok(()));
        assert_eq!(null.save_position(), Ok(Vec::new()), "/dev/null cannot be synced");
    }

    #[test]
    fn a_file_shorter_than_its_checkpoint_is_refused_with_the_way_out() {
        let dir = TempDir::new("file_sink_shorter");
        let path = dir.path("out.txt");
        let mut sink = FileSink::create(&path, false).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sink.write(b"kept\n").and_then(|()| sink.flush()), Ok(()));
        let saved = sink.save_position().unwrap_or_default();
        drop(sink);
        std::fs::write(&path, b"k").unwrap_or_else(|e| panic!("{e}"));
        let mut resumed = FileSink::create(&path, true).unwrap_or_else(|e| panic!("{e}"));
        let err = resumed.rewind(&saved).err().map(|e| e.to_string());
        let expected = format!(
            "`{path}` is 1 bytes, shorter than the 5 bytes the checkpoint committed: it was cut or \
             replaced since; run with --reset-state to start over"
        );
        assert_eq!(err, Some(expected));
    }

    #[test]
    fn unwritable_path_is_a_start_error() {
        let dir = TempDir::new("file_sink_err");
        let file = dir.write("plain", b"");
        let err = FileSink::create(&format!("{file}/sub/out.txt"), false).err();
        assert!(err.is_some_and(|e| e.to_string().starts_with("cannot create the directory of")));
    }
}

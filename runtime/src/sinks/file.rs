//! `FileSink`: records appended to (or replacing) a file.

use super::RawSink;
use crate::errors::{RunError, StartError};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;

/// Writes to a file through a `BufWriter`; parent directories are created at start so
/// `path: out/alerts.jsonl` works on a fresh machine.
#[derive(Debug)]
pub struct FileSink {
    path: String,
    out: BufWriter<File>,
}

impl FileSink {
    /// Opens `path`, truncating it unless `append`.
    pub fn create(path: &str, append: bool) -> Result<Self, StartError> {
        let fail = |what: &str, e: std::io::Error| StartError::new(format!("cannot {what} `{path}`: {e}"));
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
        Ok(FileSink {
            path: path.to_owned(),
            out: BufWriter::with_capacity(64 * 1024, file),
        })
    }
}

impl RawSink for FileSink {
    fn write(&mut self, bytes: &[u8]) -> Result<(), RunError> {
        self.out
            .write_all(bytes)
            .map_err(|e| RunError::new(format!("writing `{}`: {e}", self.path)))
    }

    fn flush(&mut self) -> Result<(), RunError> {
        self.out
            .flush()
            .map_err(|e| RunError::new(format!("flushing `{}`: {e}", self.path)))
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
    fn unwritable_path_is_a_start_error() {
        let dir = TempDir::new("file_sink_err");
        let file = dir.write("plain", b"");
        let err = FileSink::create(&format!("{file}/sub/out.txt"), false).err();
        assert!(err.is_some_and(|e| e.to_string().starts_with("cannot create the directory of")));
    }
}

//! `type: file`: records read from a file (followed like `tail -F`, or a named pipe),
//! and records written to one.

mod pipe;
mod sink;
mod source;

pub use pipe::open_file;
pub use sink::FileSink;
pub use source::FileSource;

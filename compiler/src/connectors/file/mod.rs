//! `type: file`: read a file once or follow it as it grows (a named pipe too), and
//! write records to one.

mod sink_spec;
mod source_spec;

pub use sink_spec::FileSink;
pub use source_spec::FileSource;

use proc_macro2::TokenStream;
use quote::quote;

use super::{CheckedSink, CheckedSource, IrSinkKind, IrSourceKind, SinkContext, SourceContext};
use crate::validate::{max_record_bytes, Cx};

pub const RUNTIME_TYPES: &[&str] = &["FileSink", "FileSource"];

#[derive(Debug, Clone)]
pub struct IrFileSource {
    pub path_key: String,
    pub follow: bool,
    pub max_record_key: String,
}

#[derive(Debug, Clone)]
pub struct IrFileSink {
    pub path_key: String,
    pub append: bool,
}

pub fn check_source(f: &FileSource, source: &SourceContext<'_>, cx: &mut Cx) -> Option<CheckedSource> {
    let name = source.name;
    let path_key = cx.setting(
        &["sources", name, "path"],
        "path",
        &f.path.0,
        "path of the file to read",
    );
    let kind = IrSourceKind::File(IrFileSource {
        path_key,
        follow: f.follow,
        max_record_key: max_record_bytes(name, f.max_record_bytes.as_ref(), cx),
    });
    Some(CheckedSource {
        kind,
        record: source.record.clone(),
        metadata: Vec::new(),
        commits: false,
    })
}

pub fn check_sink(f: &FileSink, sink: &SinkContext<'_>, cx: &mut Cx) -> Option<CheckedSink> {
    let name = sink.name;
    let path_key = cx.setting(&["sinks", name, "path"], "path", &f.path.0, "path of the file to write");
    Some(CheckedSink::stream(IrSinkKind::File(IrFileSink {
        path_key,
        append: f.append,
    })))
}

pub fn emit_source(f: &IrFileSource) -> TokenStream {
    let IrFileSource {
        path_key,
        follow,
        max_record_key,
    } = f;
    // `open_file` boxes: a named pipe is read on a thread, a regular file directly.
    quote!(open_file(&ctx.settings.non_empty(#path_key)?, #follow, ctx.settings.positive(#max_record_key)?)?)
}

pub fn emit_sink(f: &IrFileSink) -> TokenStream {
    let IrFileSink { path_key, append } = f;
    // When a checkpoint is restored, the file keeps its contents: the restore cuts it
    // back to the checkpointed length.
    let append = match append {
        true => quote!(true),
        false => quote!(ctx.resuming),
    };
    quote!(Box::new(FileSink::create(&ctx.settings.non_empty(#path_key)?, #append)?))
}

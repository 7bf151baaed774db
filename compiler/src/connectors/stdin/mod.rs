//! `type: stdin` — read records from standard input until it closes.

use proc_macro2::TokenStream;
use quote::quote;

use super::{CheckedSource, IrSourceKind, SourceContext};
use crate::spec::Setting;
use crate::validate::{max_record_bytes, Cx};

pub const RUNTIME_TYPES: &[&str] = &["StdinSource"];

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping of the source's options")]
pub struct StdinSource {
    /// Longest record (line) read whole, in bytes, as for `type: file`.
    pub max_record_bytes: Option<Setting>,
}

#[derive(Debug, Clone)]
pub struct IrStdin {
    pub max_record_key: String,
}

pub fn check(s: &StdinSource, source: &SourceContext<'_>, cx: &mut Cx) -> Option<CheckedSource> {
    let kind = IrSourceKind::Stdin(IrStdin {
        max_record_key: max_record_bytes(source.name, s.max_record_bytes.as_ref(), cx),
    });
    Some(CheckedSource {
        kind,
        record: source.record.clone(),
        metadata: Vec::new(),
        commits: false,
    })
}

pub fn emit(s: &IrStdin) -> TokenStream {
    let key = &s.max_record_key;
    quote!(Box::new(StdinSource::new(ctx.settings.positive(#key)?)))
}

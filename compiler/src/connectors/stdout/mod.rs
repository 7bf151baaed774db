//! `type: stdout` — write records to standard output.

use proc_macro2::TokenStream;
use quote::quote;

pub const RUNTIME_TYPES: &[&str] = &["StdoutSink"];

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping of the sink's options")]
pub struct StdoutSink {}

pub fn emit() -> TokenStream {
    quote!(Box::new(StdoutSink::new()))
}

//! `type: http` — a source that is an ingest server (a request answered once its
//! records are safe downstream), and a sink POSTing batches of records, with retries.

mod check;
mod spec;

pub use check::{sink as check_sink, source as check_source};
pub use spec::{HttpSink, HttpSource};

use proc_macro2::TokenStream;
use quote::quote;

use crate::ir::{IrSink, IrSource};

pub const RUNTIME_TYPES: &[&str] = &["HttpListen", "HttpPost", "HttpSink", "HttpSource"];

#[derive(Debug, Clone)]
pub struct IrHttpSource {
    /// The keys of settings resolved at start.
    pub address: String,
    pub token: Option<String>,
    pub path: String,
    pub max_body: u64,
    pub max_pending: u64,
}

/// `Box::new(HttpSource::new(..))`, asked for the metadata the record's fields read.
pub fn emit_source(h: &IrHttpSource, s: &IrSource) -> TokenStream {
    let component = format!("sources.{}", s.name);
    let address = &h.address;
    let token = match &h.token {
        Some(key) => quote!(ctx.settings.str(#key)?),
        None => quote!(String::new()),
    };
    let (path, max_body, max_pending) = (&h.path, h.max_body, h.max_pending);
    let metadata = s.metadata.iter().map(|m| &m.meta);
    quote! {
        Box::new(HttpSource::new(
            #component,
            HttpListen {
                address: ctx.settings.non_empty(#address)?,
                path: #path.to_string(),
                token: #token,
                max_body: #max_body,
                max_pending: #max_pending,
            },
            &[#(#metadata),*],
            ctx,
        )?)
    }
}

#[derive(Debug, Clone)]
pub struct IrHttpSink {
    /// The keys of settings resolved at start.
    pub url: String,
    pub token: Option<String>,
    /// Header names, and the keys of their values' settings.
    pub headers: Vec<(String, String)>,
    pub method: &'static str,
    /// `array` or `lines`.
    pub encoding: &'static str,
    pub timeout_ms: u64,
    pub max_records: u64,
    pub max_bytes: u64,
    pub max_wait_ms: u64,
    pub attempts: u32,
    pub backoff_ms: u64,
    pub max_retry_ms: u64,
}

/// `Box::new(HttpSink::new(..))`, its URL, headers and token resolved at start.
pub fn emit_sink(h: &IrHttpSink, s: &IrSink) -> TokenStream {
    let component = format!("sinks.{}", s.name);
    let url = &h.url;
    let token = match &h.token {
        Some(key) => quote!(ctx.settings.str(#key)?),
        None => quote!(String::new()),
    };
    let headers = h
        .headers
        .iter()
        .map(|(name, key)| quote!((#name, ctx.settings.str(#key)?)));
    let (method, encoding) = (h.method, h.encoding);
    let (timeout_ms, max_records, max_bytes, max_wait_ms) = (h.timeout_ms, h.max_records, h.max_bytes, h.max_wait_ms);
    let (attempts, backoff_ms, max_retry_ms) = (h.attempts, h.backoff_ms, h.max_retry_ms);
    quote! {
        Box::new(HttpSink::new(
            #component,
            HttpPost {
                url: ctx.settings.non_empty(#url)?,
                method: #method,
                headers: vec![#(#headers),*],
                token: #token,
                timeout_ms: #timeout_ms,
                encoding: #encoding,
                max_records: #max_records,
                max_bytes: #max_bytes,
                max_wait_ms: #max_wait_ms,
                attempts: #attempts,
                backoff_ms: #backoff_ms,
                max_retry_ms: #max_retry_ms,
            },
            ctx,
        )?)
    }
}

//! `type: pulsar` — a subscription read with every message acknowledged once its
//! records are safe downstream, and a batching producer with a topic, partition key and
//! properties per record.

mod check;
mod spec;

pub use check::{sink as check_sink, source as check_source};
pub use spec::{PulsarSink, PulsarSource};

use proc_macro2::TokenStream;
use quote::quote;

use crate::ir::{IrSink, IrSource};

pub const RUNTIME_TYPES: &[&str] = &[
    "PulsarConnect",
    "PulsarProducer",
    "PulsarPublish",
    "PulsarSource",
    "PulsarSubscribe",
    "PulsarSubscription",
    "PulsarCompression",
];

/// How to reach the broker: the keys of settings resolved at start.
#[derive(Debug, Clone)]
pub struct IrPulsarClient {
    pub url: String,
    pub token: Option<String>,
}

#[derive(Debug, Clone)]
pub struct IrPulsarSource {
    pub client: IrPulsarClient,
    pub topics: Vec<String>,
    /// Settings keys.
    pub subscription: String,
    pub consumer_name: Option<String>,
    /// `Exclusive`, `Shared`, `Failover` or `KeyShared`.
    pub kind: &'static str,
    pub earliest: bool,
}

#[derive(Debug, Clone)]
pub struct IrPulsarSink {
    pub client: IrPulsarClient,
    /// The topic of records whose address names none (empty when every record names one).
    pub topic: String,
    pub batch_max_records: u32,
    pub batch_max_bytes: u64,
    pub batch_max_wait_ms: u64,
    /// `None`, `Lz4`, `Zlib`, `Zstd` or `Snappy`.
    pub compression: &'static str,
    pub delivery_timeout_ms: u64,
}

/// `PulsarConnect { .. }`, its settings resolved at start.
fn connect(c: &IrPulsarClient) -> TokenStream {
    let url = &c.url;
    let token = match &c.token {
        Some(key) => quote!(ctx.settings.str(#key)?),
        None => quote!(String::new()),
    };
    quote! {
        PulsarConnect {
            url: ctx.settings.non_empty(#url)?,
            token: #token,
        }
    }
}

/// `Box::new(PulsarSource::new(..))`, asked for the metadata the record's fields read.
pub fn emit_source(p: &IrPulsarSource, s: &IrSource) -> TokenStream {
    let component = format!("sources.{}", s.name);
    let connect = connect(&p.client);
    let metadata = s.metadata.iter().map(|m| &m.meta);
    let topics = &p.topics;
    let subscription = &p.subscription;
    let consumer_name = match &p.consumer_name {
        Some(key) => quote!(ctx.settings.str(#key)?),
        None => quote!(String::new()),
    };
    let kind = quote::format_ident!("{}", p.kind);
    let earliest = p.earliest;
    quote! {
        Box::new(PulsarSource::new(
            #component,
            #connect,
            PulsarSubscribe {
                topics: vec![#(#topics.to_string()),*],
                subscription: ctx.settings.non_empty(#subscription)?,
                kind: PulsarSubscription::#kind,
                earliest: #earliest,
                consumer_name: #consumer_name,
            },
            &[#(#metadata),*],
            ctx,
        )?)
    }
}

/// `Box::new(PulsarProducer::new(..))`.
pub fn emit_sink(p: &IrPulsarSink, s: &IrSink) -> TokenStream {
    let component = format!("sinks.{}", s.name);
    let connect = connect(&p.client);
    let IrPulsarSink {
        topic,
        batch_max_records,
        batch_max_bytes,
        batch_max_wait_ms,
        delivery_timeout_ms,
        ..
    } = p;
    let bytes = usize::try_from(*batch_max_bytes).unwrap_or(usize::MAX);
    let compression = quote::format_ident!("{}", p.compression);
    quote! {
        Box::new(PulsarProducer::new(
            #component,
            #connect,
            PulsarPublish {
                topic: #topic.to_string(),
                batch_max_records: #batch_max_records,
                batch_max_bytes: #bytes,
                batch_max_wait_ms: #batch_max_wait_ms,
                compression: PulsarCompression::#compression,
                delivery_timeout_ms: #delivery_timeout_ms,
            },
            ctx,
        )?)
    }
}

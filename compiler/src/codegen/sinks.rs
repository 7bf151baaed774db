//! Sink construction: raw sink + encoder, per type and format.

use proc_macro2::TokenStream;
use quote::quote;

use super::ident::type_ident;
use crate::ir::{IrFormat, IrSink, IrSinkKind, SinkInput};

/// The field type of a record sink in the `Nodes` struct.
pub fn output_type(s: &IrSink) -> Option<TokenStream> {
    let SinkInput::Records(record) = &s.input else {
        return None;
    };
    let record = type_ident(&record.rust_name);
    let encoder = match s.format {
        IrFormat::Json => quote!(JsonEncoder<#record>),
        IrFormat::Csv { .. } => quote!(CsvEncoder<#record>),
        IrFormat::Lines => quote!(LinesEncoder<#record>),
    };
    Some(match s.kind {
        IrSinkKind::Kafka { .. } => quote!(KafkaOutput<#encoder>),
        IrSinkKind::Stdout | IrSinkKind::File { .. } => quote!(Output<#encoder>),
    })
}

/// The raw sink, boxed (not for Kafka, whose output is not a byte stream).
pub fn raw_sink(s: &IrSink) -> TokenStream {
    match &s.kind {
        IrSinkKind::Stdout => quote!(Box::new(StdoutSink::new())),
        IrSinkKind::File { path_key, append } => {
            quote!(Box::new(FileSink::create(&ctx.settings.non_empty(#path_key)?, #append)?))
        }
        IrSinkKind::Kafka { .. } => unreachable!("validation sends no dead letters to Kafka"),
    }
}

/// `Output::new(..)` for a record sink.
pub fn construct(s: &IrSink) -> TokenStream {
    let component = format!("sinks.{}", s.name);
    let encoder = match s.format {
        IrFormat::Json => quote!(JsonEncoder::new()),
        IrFormat::Csv { delimiter, header } => quote!(CsvEncoder::new(#delimiter, #header)),
        IrFormat::Lines => quote!(LinesEncoder::new()),
    };
    if let IrSinkKind::Kafka { properties, topic, .. } = &s.kind {
        let properties = super::kafka::properties(properties);
        return quote!(KafkaOutput::new(#component, #properties, #topic, #encoder, ctx)?);
    }
    let raw = raw_sink(s);
    quote!(Output::new(#component, #raw, #encoder, ctx))
}

//! Sink construction: the connector's raw sink behind the output layer its delivery
//! needs (`Output` for a stream, `MessageOutput` for messages), with the format's encoder.

use proc_macro2::TokenStream;
use quote::quote;

use super::ident::type_ident;
use crate::connectors::construct_sink;
use crate::ir::{IrDelivery, IrFormat, IrSink, SinkInput};

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
    Some(match s.delivery {
        IrDelivery::Stream => quote!(Output<#encoder>),
        IrDelivery::Messages(_) => quote!(MessageOutput<#encoder>),
    })
}

/// `Output::new(..)` or `MessageOutput::new(..)` for a record sink.
pub fn construct(s: &IrSink) -> TokenStream {
    let component = format!("sinks.{}", s.name);
    let encoder = match s.format {
        IrFormat::Json => quote!(JsonEncoder::new()),
        IrFormat::Csv { delimiter, header } => quote!(CsvEncoder::new(#delimiter, #header)),
        IrFormat::Lines => quote!(LinesEncoder::new()),
    };
    let raw = construct_sink(s);
    match s.delivery {
        IrDelivery::Stream => quote!(Output::new(#component, #raw, #encoder, ctx)),
        IrDelivery::Messages(_) => quote!(MessageOutput::new(#component, #raw, #encoder, ctx)),
    }
}

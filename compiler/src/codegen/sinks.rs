//! Sink construction: the connector's raw sink behind the output layer its delivery
//! needs (`Output` for a stream, `MessageOutput` for messages), with the format's encoder.

use proc_macro2::TokenStream;
use quote::quote;

use super::ident::type_ident;
use crate::connectors::construct_sink;
use crate::ir::{IrBuffer, IrDelivery, IrFormat, IrSink, SinkInput};

/// The field type of a record sink in the `Nodes` struct.
pub fn output_type(s: &IrSink) -> Option<TokenStream> {
    let encoder = encoder_type(s)?;
    Some(match s.delivery {
        IrDelivery::Stream => quote!(Output<#encoder>),
        IrDelivery::Messages(_) => quote!(MessageOutput<#encoder>),
    })
}

/// The encoder type of a record sink.
pub fn encoder_type(s: &IrSink) -> Option<TokenStream> {
    let SinkInput::Records(record) = &s.input else {
        return None;
    };
    let record = type_ident(&record.rust_name);
    Some(match s.format {
        IrFormat::Json => quote!(JsonEncoder<#record>),
        IrFormat::Csv { .. } => quote!(CsvEncoder<#record>),
        IrFormat::Lines => quote!(LinesEncoder<#record>),
    })
}

/// A new encoder for a sink.
pub fn encoder(s: &IrSink) -> TokenStream {
    match s.format {
        IrFormat::Json => quote!(JsonEncoder::new()),
        IrFormat::Csv { delimiter, header } => quote!(CsvEncoder::new(#delimiter, #header)),
        IrFormat::Lines => quote!(LinesEncoder::new()),
    }
}

/// `Output::new(..)` or `MessageOutput::new(..)` for a record sink.
pub fn construct(s: &IrSink) -> TokenStream {
    let component = format!("sinks.{}", s.name);
    let encoder = encoder(s);
    let raw = construct_sink(s);
    match (&s.delivery, s.buffer) {
        (IrDelivery::Stream, _) => quote!(Output::new(#component, #raw, #encoder, ctx)),
        (IrDelivery::Messages(_), None) => quote!(MessageOutput::new(#component, #raw, #encoder, ctx)),
        (IrDelivery::Messages(_), Some(buffer)) => {
            let options = buffer_options(&buffer);
            quote!(MessageOutput::buffered(#component, #raw, #encoder, #options, ctx)?)
        }
    }
}

/// The runtime's `BufferOptions` for a sink's `buffer:`.
fn buffer_options(b: &IrBuffer) -> TokenStream {
    let max_bytes = b.max_bytes;
    let when_full = if b.drop_oldest {
        quote!(WhenFull::DropOldest)
    } else {
        quote!(WhenFull::Block)
    };
    let fsync = match b.fsync_ms {
        None => quote!(Fsync::Always),
        Some(ms) => quote!(Fsync::millis(#ms)),
    };
    quote!(BufferOptions {
        max_bytes: #max_bytes,
        when_full: #when_full,
        fsync: #fsync,
    })
}

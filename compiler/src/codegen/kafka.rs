//! Kafka glue: client properties resolved at start, the metadata-filling function of a
//! source, and the per-record message (topic, key, headers) of a sink.

use proc_macro2::TokenStream;
use quote::quote;

use super::expr::{to_owned, ExprGen};
use super::ident::{ident, prefixed, type_ident};
use crate::expr::TExpr;
use crate::ir::{IrSink, IrSinkKind, IrSource, IrSourceKind, MetaKind, PropertyValue, SinkInput};
use crate::types::Type;

/// `vec![("bootstrap.servers", ctx.settings.str("sources.x.brokers")?), ..]`
pub fn properties(props: &[(String, PropertyValue)]) -> TokenStream {
    let items = props.iter().map(|(name, value)| match value {
        PropertyValue::Fixed(v) => quote!((#name, #v.to_string())),
        PropertyValue::Setting(key) => quote!((#name, ctx.settings.str(#key)?)),
    });
    quote!(vec![#(#items),*])
}

/// The raw source of a Kafka source.
pub fn raw_source(s: &IrSource) -> Option<TokenStream> {
    let IrSourceKind::Kafka {
        properties: props,
        topics,
        headers,
        metadata,
    } = &s.kind
    else {
        return None;
    };
    let component = format!("sources.{}", s.name);
    let props = properties(props);
    let has_metadata = !metadata.is_empty();
    Some(quote!(KafkaSource::new(#component, #props, &[#(#topics),*], &[#(#headers),*], #has_metadata, ctx)?))
}

/// The name of the function filling a source's metadata fields.
pub fn attach_name(s: &IrSource) -> Option<proc_macro2::Ident> {
    match &s.kind {
        IrSourceKind::Kafka { metadata, .. } if !metadata.is_empty() => Some(prefixed("attach_", &s.name)),
        _ => None,
    }
}

/// `fn attach_<source>(rec, meta)`: copies the message's metadata into its fields.
pub fn attach_fn(s: &IrSource) -> Option<TokenStream> {
    let name = attach_name(s)?;
    let IrSourceKind::Kafka { metadata, .. } = &s.kind else {
        return None;
    };
    let record = type_ident(&s.record.rust_name);
    let sets = metadata.iter().map(|(field, kind)| {
        let field = ident(field);
        let value = match kind {
            MetaKind::Key => quote!(meta.key()),
            MetaKind::Topic => quote!(meta.topic()),
            MetaKind::Partition => quote!(meta.partition()),
            MetaKind::Offset => quote!(meta.offset()),
            MetaKind::Timestamp => quote!(meta.timestamp()),
            MetaKind::Header(n) => quote!(meta.header(#n)),
        };
        quote!(rec.#field = #value;)
    });
    let doc = format!(" The metadata fields of `sources.{}`.", s.name);
    Some(quote! {
        #[doc = #doc]
        fn #name(rec: &mut #record, meta: &MetaView<'_>) {
            #(#sets)*
        }
    })
}

/// The call that sends a record to a Kafka sink.
pub fn send_call(s: &IrSink) -> TokenStream {
    let f = prefixed("send_", &s.name);
    quote!(#f(rec, out)?;)
}

/// `message_<sink>` (evaluates topic, key and headers) and `send_<sink>` for a Kafka sink.
pub fn send_fns(s: &IrSink, exprs: &mut ExprGen) -> Option<TokenStream> {
    let IrSinkKind::Kafka {
        topic_expr,
        key,
        headers,
        ..
    } = &s.kind
    else {
        return None;
    };
    let SinkInput::Records(record) = &s.input else {
        return None;
    };
    let component = format!("sinks.{}", s.name);
    let input = type_ident(&record.rust_name);
    let field = prefixed("sink_", &s.name);
    let message = prefixed("message_", &s.name);
    let send = prefixed("send_", &s.name);
    let mut parts: Vec<&TExpr> = Vec::new();
    parts.extend(topic_expr);
    parts.extend(key);
    parts.extend(headers.iter().map(|(_, e)| e));
    let values: Vec<TokenStream> = parts.iter().map(|e| optional_string(e, exprs)).collect();
    let names: Vec<proc_macro2::Ident> = (0..values.len()).map(|i| quote::format_ident!("v{}", i)).collect();
    let mut at = names.iter();
    let topic = match topic_expr {
        Some(_) => at.next().map(|v| quote!(#v.as_deref())),
        None => None,
    }
    .unwrap_or(quote!(None));
    let key = match key {
        Some(_) => at.next().map(|v| quote!(#v.as_deref())),
        None => None,
    }
    .unwrap_or(quote!(None));
    let header_items = headers
        .iter()
        .zip(at)
        .map(|((name, _), v)| quote!((#name, #v.as_deref())));
    let doc = format!(" `{component}`: the record as a Kafka message.");
    let evaluate = if values.is_empty() {
        TokenStream::new()
    } else {
        quote! {
            let (#(#names,)*) = #message(rec).map_err(|e| RecordError::new(#component, e))?;
        }
    };
    let message_fn = if values.is_empty() {
        TokenStream::new()
    } else {
        let types = values.iter().map(|_| quote!(Option<String>));
        quote! {
            #[inline]
            fn #message(rec: &#input) -> Result<(#(#types,)*), EvalError> {
                Ok((#(#values,)*))
            }
        }
    };
    Some(quote! {
        #message_fn
        #[doc = #doc]
        #[inline]
        fn #send(rec: &#input, out: &mut Nodes) -> Result<(), RecordError> {
            #evaluate
            out.#field.send(rec, KafkaMessage { topic: #topic, key: #key, headers: &[#(#header_items),*] })
        }
    })
}

/// `e` (a string or an optional string) as an `Option<String>`.
fn optional_string(e: &TExpr, exprs: &mut ExprGen) -> TokenStream {
    let (code, repr) = exprs.emit(e);
    let owned = to_owned(code, repr, &e.ty);
    if e.ty == Type::String {
        quote!(Some(#owned))
    } else {
        owned
    }
}

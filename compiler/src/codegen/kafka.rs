//! Kafka glue: client properties resolved at start, the metadata-filling function of a
//! source, and the per-record message (topic, key, headers) of a sink.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::expr::{ExprGen, Repr};
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

/// `KafkaSource::new(..)` for the source `name`; `metadata`: some field reads it.
pub fn raw_source(
    name: &str,
    props: &[(String, PropertyValue)],
    topics: &[String],
    headers: &[String],
    metadata: bool,
) -> TokenStream {
    let component = format!("sources.{name}");
    let props = properties(props);
    quote!(KafkaSource::new(#component, #props, &[#(#topics),*], &[#(#headers),*], #metadata, ctx)?)
}

/// The name of the function filling a source's metadata fields.
pub fn attach_name(s: &IrSource) -> Option<proc_macro2::Ident> {
    match &s.kind {
        IrSourceKind::Kafka { metadata, .. } if !metadata.is_empty() => Some(prefixed("attach_", &s.stem)),
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
        let field = ident(s.record.field(field).map_or(field, |f| &f.ident));
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

/// The call that sends a record to a Kafka sink (an expression: its outcome).
pub fn send_call(s: &IrSink) -> TokenStream {
    let f = prefixed("send_", &s.stem);
    quote!(#f(rec, out))
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
    let field = prefixed("sink_", &s.stem);
    let message = prefixed("message_", &s.stem);
    let send = prefixed("send_", &s.stem);
    // Each part is evaluated once, into `v0`, `v1`, ..; one borrowed from the record
    // (a field) or a literal is not copied.
    let mut values = Vec::new();
    let mut local = |e: &TExpr| {
        let v = format_ident!("v{}", values.len());
        values.push(optional_str(e, exprs));
        quote!(#v.as_deref())
    };
    let topic = topic_expr.as_ref().map_or_else(|| quote!(None), &mut local);
    let key = key.as_ref().map_or_else(|| quote!(None), &mut local);
    let header_items: Vec<TokenStream> = headers
        .iter()
        .map(|(name, e)| {
            let v = local(e);
            quote!((#name, #v))
        })
        .collect();
    let names: Vec<proc_macro2::Ident> = (0..values.len()).map(|i| format_ident!("v{}", i)).collect();
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
        let types = values.iter().map(|_| quote!(Option<std::borrow::Cow<'a, str>>));
        quote! {
            #[inline]
            fn #message<'a>(rec: &'a #input) -> Result<(#(#types,)*), EvalError> {
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

/// `e` (a string or an optional string) as an `Option<Cow<str>>`, borrowed when the
/// expression's value is.
fn optional_str(e: &TExpr, exprs: &mut ExprGen) -> TokenStream {
    let (code, repr) = exprs.emit(e);
    let cow = match repr {
        Repr::Borrowed => quote!(std::borrow::Cow::Borrowed),
        Repr::Owned => quote!(std::borrow::Cow::Owned),
    };
    if e.ty == Type::String {
        quote!(Some(#cow(#code)))
    } else {
        quote!((#code).map(#cow))
    }
}

//! Message sinks: the per-record address (topic, key, headers) evaluated once per
//! record, and the `send_<sink>` function handing record and address to `MessageOutput`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::expr::{ExprGen, Repr};
use super::ident::{prefixed, type_ident};
use crate::expr::TExpr;
use crate::ir::{IrAddress, IrDelivery, IrSink, SinkInput};
use crate::types::Type;

/// The call that sends a record to a message sink (an expression: its outcome).
pub fn send_call(s: &IrSink) -> TokenStream {
    let f = prefixed("send_", &s.stem);
    quote!(#f(rec, out))
}

/// `message_<sink>` (evaluates the address: topic, key and headers) and `send_<sink>`
/// for a message sink.
pub fn send_fns(s: &IrSink, exprs: &mut ExprGen) -> Option<TokenStream> {
    let IrDelivery::Messages(IrAddress { topic, key, headers }) = &s.delivery else {
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
    let topic = topic.as_ref().map_or_else(|| quote!(None), &mut local);
    let key = key.as_ref().map_or_else(|| quote!(None), &mut local);
    let header_items: Vec<TokenStream> = headers
        .iter()
        .map(|(name, e)| {
            let v = local(e);
            quote!((#name, #v))
        })
        .collect();
    let names: Vec<proc_macro2::Ident> = (0..values.len()).map(|i| format_ident!("v{}", i)).collect();
    let doc = format!(" `{component}`: the record as a message, to its address.");
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
            out.#field.send(rec, Address { topic: #topic, key: #key, headers: &[#(#header_items),*] })
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

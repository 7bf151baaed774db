//! Source construction: the connector's raw source + the format's decoder, and the
//! function that fills a record's metadata fields from each message.

use proc_macro2::{Ident, TokenStream};
use quote::quote;

use super::ident::{ident, prefixed, type_ident};
use crate::connectors::construct_source;
use crate::connectors::metadata::MetaType;
use crate::ir::{IrFormat, IrSource};
use crate::spec::OnError;

/// The field type of a source in the `Job` struct; `chain` names its chain module.
pub fn source_type(s: &IrSource, chain: Option<&Ident>) -> TokenStream {
    let record = type_ident(&s.record.rust_name);
    let decoder = match s.format {
        IrFormat::Json => quote!(JsonDecoder<#record>),
        IrFormat::Csv { .. } => quote!(CsvDecoder<#record>),
        IrFormat::Lines => quote!(LinesDecoder<#record>),
    };
    match chain {
        Some(chain) => quote!(Source<#decoder, #chain::Nodes>),
        None => quote!(Source<#decoder>),
    }
}

/// `Source::new(..)` for one source, inside `run`'s build closure.
pub fn construct(s: &IrSource, chain: Option<&Ident>) -> TokenStream {
    let component = format!("sources.{}", s.name);
    let raw = construct_source(s);
    let decoder = match s.format {
        IrFormat::Json => quote!(JsonDecoder::new()),
        IrFormat::Csv { delimiter, .. } => quote!(CsvDecoder::new(#delimiter)),
        IrFormat::Lines => quote!(LinesDecoder::new()),
    };
    let on_error = match s.on_error {
        OnError::DeadLetter => quote!(OnError::DeadLetter),
        OnError::Drop => quote!(OnError::Drop),
        OnError::Fail => quote!(OnError::Fail),
    };
    // `raw` is boxed: dynamic dispatch once per batch.
    let source = match chain {
        Some(chain) => quote!(Source::<_, #chain::Nodes>::new_chained(#component, #raw, #decoder, #on_error, ctx)),
        None => quote!(Source::new(#component, #raw, #decoder, #on_error, ctx)),
    };
    match attach_name(s) {
        Some(attach) => quote!(#source.with_metadata(#attach)),
        None => source,
    }
}

/// The name of the function filling a source's metadata fields, if it has any.
fn attach_name(s: &IrSource) -> Option<proc_macro2::Ident> {
    (!s.metadata.is_empty()).then(|| prefixed("attach_", &s.stem))
}

/// `fn attach_<source>(rec, meta)`: copies each message's metadata into its fields.
pub fn attach_fn(s: &IrSource) -> Option<TokenStream> {
    let name = attach_name(s)?;
    let record = type_ident(&s.record.rust_name);
    let sets = s.metadata.iter().enumerate().map(|(n, m)| {
        let field = ident(&m.ident);
        let value = match m.ty {
            MetaType::Text => quote!(meta.text(#n)),
            MetaType::OptText => quote!(meta.opt_text(#n)),
            MetaType::Int => quote!(meta.int(#n)),
            MetaType::OptTimestamp => quote!(meta.opt_int(#n)),
            MetaType::Bool => quote!(meta.bool(#n)),
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

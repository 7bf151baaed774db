//! Source construction: raw source + decoder, per type and format.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::ident::type_ident;
use crate::ir::{GenField, GenKind, IrFormat, IrSource, IrSourceKind};
use crate::spec::OnError;
use crate::types::TsRepr;

/// The field type of a source in the `Job` struct.
pub fn source_type(s: &IrSource) -> TokenStream {
    let record = type_ident(&s.record.rust_name);
    match s.format {
        IrFormat::Json => quote!(Source<JsonDecoder<#record>>),
        IrFormat::Csv { .. } => quote!(Source<CsvDecoder<#record>>),
        IrFormat::Lines => quote!(Source<LinesDecoder<#record>>),
    }
}

/// `Source::new(..)` for one source, inside `run`'s build closure.
pub fn construct(s: &IrSource) -> TokenStream {
    let component = format!("sources.{}", s.name);
    let raw = match &s.kind {
        IrSourceKind::File {
            path_key,
            follow,
            max_record_key,
        } => {
            quote!(open_file(&ctx.settings.non_empty(#path_key)?, #follow, ctx.settings.positive(#max_record_key)?)?)
        }
        IrSourceKind::Stdin { max_record_key } => {
            quote!(Box::new(StdinSource::new(ctx.settings.positive(#max_record_key)?)))
        }
        IrSourceKind::Kafka {
            properties,
            topics,
            headers,
            metadata,
        } => {
            let raw = super::kafka::raw_source(&s.name, properties, topics, headers, !metadata.is_empty());
            quote!(Box::new(#raw))
        }
        IrSourceKind::Generator {
            count_key,
            rate_key,
            seed,
            ..
        } => {
            let fields = generator_fields_ident(&s.stem);
            quote!(Box::new(GeneratorSource::new(#fields, ctx.settings.opt_u64(#count_key)?, ctx.settings.opt_f64(#rate_key)?, #seed)))
        }
    };
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
    let source = quote!(Source::new(#component, #raw, #decoder, #on_error, ctx));
    match super::kafka::attach_name(s) {
        Some(attach) => quote!(#source.with_metadata(#attach)),
        None => source,
    }
}

/// `<STEM>_FIELDS`: stems are lower case, so this meets no other static.
fn generator_fields_ident(stem: &str) -> proc_macro2::Ident {
    format_ident!("{}_FIELDS", stem.to_uppercase())
}

/// `static <NAME>_FIELDS: &[GenField]` for generator sources.
pub fn generator_statics(s: &IrSource) -> Option<TokenStream> {
    let IrSourceKind::Generator { fields, .. } = &s.kind else {
        return None;
    };
    let name = generator_fields_ident(&s.stem);
    let fields = gen_fields(fields);
    Some(quote!(static #name: &[GenField] = #fields;))
}

fn gen_fields(fields: &[GenField]) -> TokenStream {
    let items = fields.iter().map(|f| {
        let name = &f.name;
        let kind = gen_kind(&f.kind);
        quote!(GenField { name: #name, kind: #kind })
    });
    quote!(&[#(#items),*])
}

fn gen_kind(kind: &GenKind) -> TokenStream {
    match kind {
        GenKind::Values(values) => quote!(GenKind::Values(&[#(#values),*])),
        GenKind::Text { prefix, cardinality } => quote!(GenKind::Text { prefix: #prefix, cardinality: #cardinality }),
        GenKind::Int { min, max } => quote!(GenKind::Int { min: #min, max: #max }),
        GenKind::UInt { min, max } => quote!(GenKind::UInt { min: #min, max: #max }),
        GenKind::Float { min, max } => quote!(GenKind::Float { min: #min, max: #max }),
        GenKind::Bool { p_true } => quote!(GenKind::Bool { p_true: #p_true }),
        GenKind::Time {
            start_ms,
            step_ms,
            jitter_ms,
            repr,
        } => {
            let repr = match repr {
                TsRepr::Millis => quote!(TsRepr::Millis),
                TsRepr::Seconds => quote!(TsRepr::Seconds),
                TsRepr::Rfc3339 => quote!(TsRepr::Rfc3339),
            };
            quote!(GenKind::Time { start_ms: #start_ms, step_ms: #step_ms, jitter_ms: #jitter_ms, repr: #repr })
        }
        GenKind::Sequence => quote!(GenKind::Sequence),
        GenKind::Optional { p_null, inner } => {
            let inner = gen_kind(inner);
            quote!(GenKind::Optional { p_null: #p_null, inner: &#inner })
        }
        GenKind::Object(fields) => {
            let fields = gen_fields(fields);
            quote!(GenKind::Object(#fields))
        }
    }
}

//! The generator's runtime source and its static table of field generators.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::{GenField, GenKind, IrGenerator};
use crate::ir::IrSource;
use crate::types::TsRepr;

/// `<STEM>_FIELDS`: stems are lower case, so this meets no other static.
fn generator_fields_ident(stem: &str) -> proc_macro2::Ident {
    format_ident!("{}_FIELDS", stem.to_uppercase())
}

/// `static <NAME>_FIELDS: &[GenField]`: how each field is generated.
pub fn statics(g: &IrGenerator, s: &IrSource) -> TokenStream {
    let name = generator_fields_ident(&s.stem);
    let fields = gen_fields(&g.fields);
    quote!(static #name: &[GenField] = #fields;)
}

/// `Box::new(GeneratorSource::new(..))`.
pub fn emit(g: &IrGenerator, s: &IrSource) -> TokenStream {
    let IrGenerator {
        count_key,
        rate_key,
        seed,
        ..
    } = g;
    let fields = generator_fields_ident(&s.stem);
    quote!(Box::new(GeneratorSource::new(#fields, ctx.settings.opt_u64(#count_key)?, ctx.settings.opt_f64(#rate_key)?, #seed)))
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

//! Joins: the `flow_` function that looks a record's key up in the reference data and
//! builds the joined record (then `select_`'s output), and the runtime `LookupFile`
//! that holds a file's reference data or `RedisLookup` that reads Redis (a table's rows
//! are the table's own state).

use proc_macro2::TokenStream;
use quote::quote;

use super::expr::ExprGen;
use super::ident::{ident, prefixed, type_ident};
use super::records::rust_type;
use crate::ir::{IrFormat, IrJoin, IrLookup, IrMissing, IrOperator};

/// The `Nodes` field holding the reference data.
pub fn node_field(op: &IrOperator) -> proc_macro2::Ident {
    prefixed("lookup_", &op.stem)
}

fn decoder(j: &IrJoin, format: IrFormat) -> (TokenStream, TokenStream) {
    let reference = type_ident(&j.reference.rust_name);
    match format {
        IrFormat::Csv { delimiter, .. } => (
            quote!(CsvDecoder<#reference>),
            quote!(|| CsvDecoder::<#reference>::new(#delimiter)),
        ),
        _ => (quote!(JsonDecoder<#reference>), quote!(JsonDecoder::<#reference>::new)),
    }
}

/// The field's type in `Nodes`, for a lookup file or Redis.
pub fn node_type(j: &IrJoin) -> Option<TokenStream> {
    let format = j.decoded_format()?;
    let key = rust_type(&j.key.ty);
    let (decoder, _) = decoder(j, format);
    match &j.source {
        IrLookup::File { .. } => Some(quote!(LookupFile<#key, #decoder>)),
        IrLookup::Redis(_) => Some(quote!(RedisLookup<#key, #decoder>)),
        IrLookup::Table { .. } => None,
    }
}

/// `LookupFile::open(..)`: a lookup file, read at start; or `RedisLookup::new(..)`.
pub fn construct(op: &IrOperator, j: &IrJoin) -> Option<TokenStream> {
    let component = op.component();
    let (reference_key, path_key, format, reload) = match &j.source {
        IrLookup::File {
            reference_key,
            path_key,
            format,
            reload,
        } => (reference_key, path_key, format, reload),
        IrLookup::Redis(redis) => {
            let reference = type_ident(&j.reference.rust_name);
            let decoder = quote!(JsonDecoder::<#reference>::new());
            let schema = j.reference.display.as_str();
            return Some(crate::connectors::redis::emit_lookup(
                redis, &component, decoder, schema,
            ));
        }
        IrLookup::Table { .. } => return None,
    };
    let reference = type_ident(&j.reference.rust_name);
    let key_field = ident(reference_key);
    let (_, make) = decoder(j, *format);
    let reload = match reload {
        Some(ms) => quote!(Some(#ms)),
        None => quote!(None),
    };
    Some(quote! {
        LookupFile::open(
            #component,
            &ctx.settings.non_empty(#path_key)?,
            #make,
            |row: &#reference| row.#key_field.clone(),
            #reload,
        )?
    })
}

/// `flow_<join>`: looks the key up, builds the joined record, selects, hands on.
pub fn join_fns(op: &IrOperator, j: &IrJoin, tally: usize, calls: TokenStream, exprs: &mut ExprGen) -> TokenStream {
    let component = op.component();
    let input = type_ident(&op.input.rust_name);
    let joined = type_ident(&j.joined.rust_name);
    let field = node_field(op);
    let flow = prefixed("flow_", &op.stem);
    let (key, key_helper) = super::aggregation::key_arg(op, std::slice::from_ref(&j.key), exprs);
    // The stream's fields are copied; the reference record is last.
    let (stream_fields, reference_field) = j.joined.fields.split_at(j.joined.fields.len() - 1);
    // By name: an identifier is unique within its record, so the reference record's
    // name can move a stream field's (`as: self_` makes the stream's `self` `self__2`).
    let copies = stream_fields.iter().map(|f| {
        let name = ident(&f.ident);
        let from = op
            .input
            .field(&f.name)
            .map_or(name.clone(), |source| ident(&source.ident));
        quote!(#name: rec.#from.clone(),)
    });
    let reference = ident(&reference_field[0].ident);
    // The row, copied out of the file's map or made from the table's state.
    let (row, lacking) = match &j.source {
        IrLookup::File { .. } => (
            quote!(out.#field.get(key).cloned()),
            "no row of the lookup file has this key",
        ),
        IrLookup::Table { stem } => {
            let table = prefixed("table_", stem);
            // A table keyed by one string is looked up as its `StrKeyRef`.
            let key = if super::aggregation::str_key(std::slice::from_ref(&j.key)) {
                quote!(StrKeyRef::new(key))
            } else {
                quote!(key)
            };
            (quote!(out.#table.current(#key)), "the table has no row of this key")
        }
        // A row that does not decode, or a stop while the server is away: a dead letter.
        IrLookup::Redis(_) => (
            quote! {
                out.#field
                    .get(key)
                    .map_err(|reason| RecordError::new(#component, EvalError::Refused { reason }))?
            },
            "Redis has no row of this key",
        ),
    };
    let found = match j.missing {
        IrMissing::Null => quote!(let found = #row;),
        IrMissing::Drop => quote! {
            let Some(found) = #row else {
                out.tallies[#tally].filtered += 1;
                return Ok(());
            };
        },
        IrMissing::DeadLetter => quote! {
            let Some(found) = #row else {
                let reason = #lacking.to_string();
                return Err(RecordError::new(#component, EvalError::Refused { reason }));
            };
        },
    };
    let (helper, select) = match &j.select {
        Some((output, field_exprs)) => {
            let f = prefixed("select_", &op.stem);
            let out_ty = type_ident(&output.rust_name);
            let fields = exprs.record_fields(output, field_exprs);
            let doc = format!(" The output record of `{component}`.");
            (
                quote! {
                    #[doc = #doc]
                    #[inline]
                    fn #f(rec: &#joined) -> Result<#out_ty, EvalError> {
                        Ok(#out_ty { #(#fields)* })
                    }
                },
                quote!(let rec = &#f(rec).map_err(|e| RecordError::new(#component, e))?;),
            )
        }
        None => (TokenStream::new(), TokenStream::new()),
    };
    let doc = format!(" `{component}`: look the record's key up and hand the joined record on.");
    quote! {
        #key_helper
        #helper
        #[doc = #doc]
        #[inline]
        fn #flow(rec: &#input, t: i64, out: &mut Nodes) -> Result<(), RecordError> {
            out.tallies[#tally].received += 1;
            let key = #key;
            #found
            let rec = &#joined { #(#copies)* #reference: found };
            #select
            out.tallies[#tally].sent += 1;
            #calls
        }
    }
}

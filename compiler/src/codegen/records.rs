//! One struct per record type, with the format impls its sources and sinks need.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::ident::{ident, type_ident};
use crate::types::{Field, RecordType, TsRepr, Type};

/// The Rust type of a field.
pub fn rust_type(ty: &Type) -> TokenStream {
    match ty {
        Type::String => quote!(String),
        Type::Bool => quote!(bool),
        Type::I64 | Type::Timestamp => quote!(i64),
        Type::U64 => quote!(u64),
        Type::F64 => quote!(f64),
        Type::Optional(inner) => {
            let inner = rust_type(inner);
            quote!(Option<#inner>)
        }
        Type::List(inner) => {
            let inner = rust_type(inner);
            quote!(Vec<#inner>)
        }
        Type::Record(r) => {
            let name = type_ident(&r.rust_name);
            quote!(#name)
        }
    }
}

/// What an operator keeps of a record `rec` of type `input`: a copy of it, or of the
/// fields of `held` (a record of some of its fields).
pub fn kept(input: &RecordType, held: &RecordType) -> TokenStream {
    if input.rust_name == held.rust_name {
        return quote!(rec.clone());
    }
    let ty = type_ident(&held.rust_name);
    // By name: a field's identifier is unique within its record, so it may differ
    // between the two (`self_` next to `self` in one, alone in the other).
    let fields = held.fields.iter().map(|f| {
        let name = ident(&f.ident);
        let from = input.field(&f.name).map_or(name.clone(), |source| ident(&source.ident));
        quote!(#name: rec.#from.clone(),)
    });
    quote!(#ty { #(#fields)* })
}

/// The struct with serde derives for JSON.
pub fn record_struct(record: &RecordType) -> TokenStream {
    let name = type_ident(&record.rust_name);
    let doc = format!(" Record type: {}.", record.display);
    let fields = record.fields.iter().map(field);
    let names: Vec<_> = record.fields.iter().map(|f| ident(&f.ident)).collect();
    // `source` unused in a record without fields.
    let unused = names.is_empty().then(|| quote!(let _ = source;));
    quote! {
        #[doc = #doc]
        #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
        #[serde(crate = "rill_runtime::codegen::serde")]
        pub struct #name {
            #(#fields)*
        }

        /// Written over field by field, so a kept record's strings keep their buffers (a
        /// window split across threads copies each record it routes into a kept one).
        impl Clone for #name {
            fn clone(&self) -> Self {
                #name { #(#names: self.#names.clone(),)* }
            }
            fn clone_from(&mut self, source: &Self) {
                #unused
                #(self.#names.clone_from(&source.#names);)*
            }
        }
    }
}

fn field(f: &Field) -> TokenStream {
    let name = ident(&f.ident);
    let ty = rust_type(&f.ty);
    // The spec's name stays the name on the wire.
    let rename = (f.ident.trim_start_matches("r#") != f.name).then(|| {
        let original = &f.name;
        quote!(#[serde(rename = #original)])
    });
    let with = match (&f.ty, f.ts_repr) {
        (Type::Timestamp, TsRepr::Seconds) => quote!(#[serde(with = "rill_runtime::codegen::ts_seconds")]),
        (Type::Timestamp, TsRepr::Rfc3339) => quote!(#[serde(with = "rill_runtime::codegen::ts_rfc3339")]),
        (Type::Optional(inner), TsRepr::Seconds) if **inner == Type::Timestamp => {
            quote!(#[serde(default, with = "rill_runtime::codegen::opt_ts_seconds")])
        }
        (Type::Optional(inner), TsRepr::Rfc3339) if **inner == Type::Timestamp => {
            quote!(#[serde(default, with = "rill_runtime::codegen::opt_ts_rfc3339")])
        }
        _ => quote!(),
    };
    let skip = f.from_metadata.then(|| quote!(#[serde(skip_deserializing)]));
    quote! { #rename #with #skip pub #name: #ty, }
}

fn repr_tokens(repr: TsRepr) -> TokenStream {
    match repr {
        TsRepr::Millis => quote!(TsRepr::Millis),
        TsRepr::Seconds => quote!(TsRepr::Seconds),
        TsRepr::Rfc3339 => quote!(TsRepr::Rfc3339),
    }
}

/// `impl CsvRecord`: column names, decoding by column, encoding in order.
pub fn csv_impl(record: &RecordType) -> TokenStream {
    let name = type_ident(&record.rust_name);
    let columns = record.fields.iter().map(|f| &f.name);
    let reads = record.fields.iter().enumerate().map(|(i, f)| {
        let field = ident(&f.ident);
        let repr = repr_tokens(f.ts_repr);
        match &f.ty {
            Type::Timestamp => quote!(#field: row.timestamp(#i, #repr)?,),
            Type::Optional(inner) if **inner == Type::Timestamp => quote!(#field: row.opt_timestamp(#i, #repr)?,),
            _ => quote!(#field: row.get(#i)?,),
        }
    });
    let writes = record.fields.iter().map(|f| {
        let field = ident(&f.ident);
        let repr = repr_tokens(f.ts_repr);
        match &f.ty {
            Type::Timestamp => quote!(w.timestamp(self.#field, #repr);),
            Type::Optional(inner) if **inner == Type::Timestamp => quote!(w.opt_timestamp(self.#field, #repr);),
            _ => quote!(w.field(&self.#field);),
        }
    });
    quote! {
        impl CsvRecord for #name {
            const COLUMNS: &'static [&'static str] = &[#(#columns),*];
            fn from_csv(row: &CsvRow<'_>) -> Result<Self, DecodeError> {
                Ok(Self { #(#reads)* })
            }
            fn to_csv(&self, w: &mut CsvWriter<'_>) {
                #(#writes)*
            }
        }
    }
}

/// `impl ScanJson`: the JSON decoder's fast path, reading the record's fields straight
/// from the line, over the record decoded before (`scan_into`: its strings' buffers are
/// reused). `None` hands the line to serde_json. A field serde reads through a `with`
/// module (timestamps in seconds or RFC 3339) is not the scanner's: such a record gets
/// the empty impl, and serde_json reads it all.
pub fn json_impl(record: &RecordType) -> TokenStream {
    let name = type_ident(&record.rust_name);
    if record
        .fields
        .iter()
        .any(|f| !f.from_metadata && f.ts_repr != TsRepr::Millis && holds_timestamp(&f.ty))
    {
        return quote!(impl ScanJson for #name {});
    }
    // Flags are numbered, so no field name can shadow `s`, `key` or `k`.
    let seen = |i: usize| format_ident!("seen_{}", i);
    let decoded = || record.fields.iter().enumerate().filter(|(_, f)| !f.from_metadata);
    let flags = decoded().map(|(i, _)| {
        let seen = seen(i);
        quote!(let mut #seen = false;)
    });
    let arms = decoded().map(|(i, f)| {
        let (field, seen) = (ident(&f.ident), seen(i));
        let key = proc_macro2::Literal::byte_string(f.name.as_bytes());
        quote!(#key => s.field(&mut self.#field, &mut #seen)?,)
    });
    let required: Vec<_> = decoded()
        .filter(|(_, f)| !f.ty.is_optional())
        .map(|(i, _)| seen(i))
        .collect();
    let check = (!required.is_empty()).then(|| quote!(if !(#(#required)&&*) { return None; }));
    // serde's derive reads a missing optional field as `None`; metadata comes after.
    let resets = record.fields.iter().enumerate().filter_map(|(i, f)| {
        let (field, seen) = (ident(&f.ident), seen(i));
        if f.from_metadata {
            Some(quote!(self.#field = Default::default();))
        } else {
            f.ty.is_optional().then(|| quote!(if !#seen { self.#field = None; }))
        }
    });
    quote! {
        impl ScanJson for #name {
            fn scan(s: &mut JsonScan<'_>) -> Option<Self> {
                let mut record = Self::default();
                record.scan_into(s)?;
                Some(record)
            }
            fn scan_into(&mut self, s: &mut JsonScan<'_>) -> Option<()> {
                #(#flags)*
                let mut key = s.first_key()?;
                while let Some(k) = key {
                    match k {
                        #(#arms)*
                        _ => s.skip(k)?,
                    }
                    key = s.next_key()?;
                }
                #check
                #(#resets)*
                Some(())
            }
        }
    }
}

/// `impl WriteJson`: the JSON encoder's fast path, each key written as serde_json would
/// escape it (escaped here, once), each value by its own `WriteJson`. A record serde
/// writes through a `with` module gets the empty impl, as for [`json_impl`].
pub fn write_impl(record: &RecordType) -> TokenStream {
    let name = type_ident(&record.rust_name);
    if record
        .fields
        .iter()
        .any(|f| f.ts_repr != TsRepr::Millis && holds_timestamp(&f.ty))
    {
        return quote!(impl WriteJson for #name {});
    }
    let fields = record.fields.iter().enumerate().map(|(i, f)| {
        let field = ident(&f.ident);
        let key = serde_json::to_string(&f.name).unwrap_or_default();
        let before = proc_macro2::Literal::byte_string(format!("{}{key}:", if i == 0 { '{' } else { ',' }).as_bytes());
        quote! {
            out.extend_from_slice(#before);
            if !self.#field.write_json(out) {
                return false;
            }
        }
    });
    let open = record.fields.is_empty().then(|| quote!(out.push(b'{');));
    quote! {
        impl WriteJson for #name {
            fn write_json(&self, out: &mut Vec<u8>) -> bool {
                #open
                #(#fields)*
                out.push(b'}');
                true
            }
        }
    }
}

fn holds_timestamp(ty: &Type) -> bool {
    match ty {
        Type::Timestamp => true,
        Type::Optional(inner) | Type::List(inner) => holds_timestamp(inner),
        _ => false,
    }
}

/// `impl LineRecord` for a record of exactly one string field.
pub fn line_impl(record: &RecordType) -> TokenStream {
    let name = type_ident(&record.rust_name);
    let field = ident(&record.fields[0].ident);
    let metadata: Vec<_> = record.fields[1..].iter().map(|f| ident(&f.ident)).collect();
    quote! {
        impl LineRecord for #name {
            fn from_line(line: &str) -> Self {
                Self { #field: line.to_string(), #(#metadata: Default::default(),)* }
            }
            fn line(&self) -> &str {
                &self.#field
            }
            fn set_line(&mut self, line: &str) {
                self.#field.clear();
                self.#field.push_str(line);
                #(self.#metadata = Default::default();)*
            }
        }
    }
}

//! What a join of two streams and a pattern share: a `select` that runs over a record of
//! borrowed parts (a join's `<Name>PairRef` of the two held records, a pattern's
//! `<Name>MatchRef` of its steps' events), and the key in it when a part's key field is
//! held only as the key.

use proc_macro2::TokenStream;
use quote::quote;

use super::expr::ExprGen;
use super::ident::ident;
use crate::expr::TExpr;
use crate::types::RecordType;

/// The fields of `output`, each `select` expression over `rec`, whose parts are
/// references already.
pub fn select_fields(exprs: &mut ExprGen, output: &RecordType, select: &[TExpr]) -> Vec<TokenStream> {
    exprs.borrowed_roots = true;
    let fields = exprs.record_fields(output, select);
    exprs.borrowed_roots = false;
    fields
}

/// The field that holds the key (`key_ref`), when a part holds its key field only as the
/// key: its declaration in the struct of borrowed parts, and its value there.
pub fn key_field(key_ref: Option<&String>) -> (TokenStream, TokenStream) {
    match key_ref {
        Some(name) => {
            let name = ident(name);
            (quote!(#name: &'a String,), quote!(#name: key,))
        }
        None => (TokenStream::new(), TokenStream::new()),
    }
}

/// `failed_pair`'s list of `(part, field)` to put the key back in.
pub fn held_once(keys: &[(String, String)]) -> TokenStream {
    let pairs = keys.iter().map(|(part, field)| quote!((#part, #field)));
    quote!(&[#(#pairs),*])
}

//! Joins of two streams: the `JoinPair` type (the key, and the joined record built from
//! either side or both), the `select` over it, and the runtime operator.
//!
//! The runtime's `StreamJoin` decides *when* (which records pair, how long each is
//! held, when an outer record comes out alone); this emits *what*: a `<Name>Join` unit
//! struct whose `pair` builds the `<Name>Pair` record, or, with a `select`, runs it
//! over the two held records borrowed (a `<Name>PairRef`) and builds the output record.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::aggregation::key_type;
use super::borrowed;
use super::expr::ExprGen;
use super::ident::{ident, prefixed, type_ident};
use crate::expr::TExpr;
use crate::ir::{IrJoinBounds, IrOperator, IrStreamJoin};
use crate::spec::OnError;
use crate::types::RecordType;

/// The `JoinPair` type and, with `select:`, the `select_` function.
pub fn items(op: &IrOperator, j: &IrStreamJoin, exprs: &mut ExprGen) -> TokenStream {
    let component = op.component();
    let join = type_ident(&j.join_type);
    let (left, right) = (type_ident(&j.left_held.rust_name), type_ident(&j.right_held.rust_name));
    let pair = type_ident(&j.pair.rust_name);
    let key_ty = key_type(std::slice::from_ref(&j.left_key));
    let side = |field: usize, value: TokenStream, optional: bool| {
        let name = ident(&j.pair.fields[field].ident);
        if optional {
            quote!(#name: #value.cloned(),)
        } else {
            // Only an outer side's record comes alone: the other side is always there.
            quote!(#name: #value.cloned().unwrap_or_default(),)
        }
    };
    let left_field = side(0, quote!(left), j.outer_right);
    let right_field = side(1, quote!(right), j.outer_left);
    let window_fields = match j.bounds {
        IrJoinBounds::Windows { .. } => {
            let (start, end) = (ident(&j.pair.fields[2].ident), ident(&j.pair.fields[3].ident));
            quote! {
                #start: window.map_or(0, |w| w.start),
                #end: window.map_or(0, |w| w.end),
            }
        }
        IrJoinBounds::Interval { .. } => TokenStream::new(),
    };
    let owned_pair = quote!(#pair { #left_field #right_field #window_fields });
    let (output, make, selected) = match (&j.select, &j.pair_ref) {
        (Some((record, select)), Some(pair_ref)) => {
            let output = type_ident(&record.rust_name);
            let output = quote!(Result<#output, Box<(EvalError, FailedPair)>>);
            let (items, make) = select_items(op, j, (record, select), pair_ref, owned_pair, exprs);
            (output, make, items)
        }
        _ => (quote!(#pair), owned_pair, TokenStream::new()),
    };
    let doc = format!(" What `{component}` joins.");
    quote! {
        #[doc = #doc]
        struct #join;

        impl Keyed for #join {
            type Input = Sided<#left, #right>;
            type Key = #key_ty;
            type Output = #output;
        }

        impl JoinPair for #join {
            type Left = #left;
            type Right = #right;
            fn pair(&self, key: &#key_ty, left: Option<&#left>, right: Option<&#right>, window: Option<Window>) -> #output {
                #make
            }
        }

        #selected
    }
}

/// With `select:`, the pair of borrowed sides and the `select_` over it, which `pair`
/// calls: the output record is made straight from the records held, and only a pair that
/// `select` cannot make is copied out whole (`owned_pair`, with the key put back where
/// it was held only as the key), for its dead letter.
fn select_items(
    op: &IrOperator,
    j: &IrStreamJoin,
    (record, select): (&RecordType, &[TExpr]),
    pair_ref: &str,
    owned_pair: TokenStream,
    exprs: &mut ExprGen,
) -> (TokenStream, TokenStream) {
    let (left, right) = (type_ident(&j.left_held.rust_name), type_ident(&j.right_held.rust_name));
    let pair_ref = type_ident(pair_ref);
    let output = type_ident(&record.rust_name);
    let f = prefixed("select_", &op.stem);
    // Each side's field: a reference, optional when the other side is outer; a side that
    // is not optional is always there, and an empty record stands in otherwise.
    let side = |field: usize, ty: &proc_macro2::Ident, value: TokenStream, optional: bool| {
        let name = ident(&j.pair.fields[field].ident);
        let absent = format_ident!("no_{}", value.to_string());
        if optional {
            (
                quote!(#name: Option<&'a #ty>,),
                quote!(#name: #value,),
                TokenStream::new(),
            )
        } else {
            let init =
                quote!(#name: match #value { Some(side) => side, None => { #absent = #ty::default(); &#absent } },);
            (quote!(#name: &'a #ty,), init, quote!(let #absent;))
        }
    };
    let (left_decl, left_init, left_absent) = side(0, &left, quote!(left), j.outer_right);
    let (right_decl, right_init, right_absent) = side(1, &right, quote!(right), j.outer_left);
    let (window_decl, window_init) = match j.bounds {
        IrJoinBounds::Windows { .. } => {
            let (start, end) = (ident(&j.pair.fields[2].ident), ident(&j.pair.fields[3].ident));
            (
                quote!(#start: i64, #end: i64,),
                quote!(#start: window.map_or(0, |w| w.start), #end: window.map_or(0, |w| w.end),),
            )
        }
        IrJoinBounds::Interval { .. } => (TokenStream::new(), TokenStream::new()),
    };
    let (key_decl, key_init) = borrowed::key_field(j.key_ref.as_ref());
    let held_once = borrowed::held_once(&j.keys_held_once);
    let fields = borrowed::select_fields(exprs, record, select);
    let component = op.component();
    let doc_ref = format!(" A pair of `{component}`: the sides held, borrowed.");
    let doc = format!(" The output record of a pair of `{component}`.");
    let items = quote! {
        #[doc = #doc_ref]
        struct #pair_ref<'a> { #left_decl #right_decl #window_decl #key_decl }

        #[doc = #doc]
        #[inline]
        fn #f(rec: &#pair_ref<'_>) -> Result<#output, EvalError> {
            Ok(#output { #(#fields)* })
        }
    };
    let make = quote! {
        #left_absent
        #right_absent
        let rec = #pair_ref { #left_init #right_init #window_init #key_init };
        #f(&rec).map_err(|e| Box::new((e, failed_pair(&#owned_pair, key, #held_once))))
    };
    (items, make)
}

/// The field type in the `Nodes` struct.
pub fn node_type(j: &IrStreamJoin) -> TokenStream {
    let join = type_ident(&j.join_type);
    quote!(Stateful<#join, StreamJoin<#join>>)
}

/// `Stateful::new(..)` for a join of two streams.
pub fn construct(op: &IrOperator, j: &IrStreamJoin) -> TokenStream {
    let join = type_ident(&j.join_type);
    let component = op.component();
    let bounds = match j.bounds {
        IrJoinBounds::Interval { from, to } => quote!(JoinBounds::Interval { from: #from, to: #to }),
        IrJoinBounds::Windows { size, slide, offset } => {
            quote!(JoinBounds::Windows { size: #size, slide: #slide, offset: #offset })
        }
    };
    let (outer_left, outer_right) = (j.outer_left, j.outer_right);
    let on_error = match j.on_error {
        OnError::Drop => quote!(OnError::Drop),
        OnError::DeadLetter | OnError::Fail => quote!(OnError::DeadLetter),
    };
    let shape = quote!(JoinShape { bounds: #bounds, outer_left: #outer_left, outer_right: #outer_right });
    quote!(Stateful::new(#component, StreamJoin::new(#join, #shape), #on_error, ctx))
}

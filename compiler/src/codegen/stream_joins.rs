//! Joins of two streams: the `JoinPair` type (the key, and the joined record built from
//! either side or both), the `select` over it, and the runtime operator.
//!
//! The runtime's `StreamJoin` decides *when* (which records pair, how long each is
//! held, when an outer record comes out alone); this emits *what*: a `<Name>Join` unit
//! struct whose `pair` builds the `<Name>Pair` record.

use proc_macro2::TokenStream;
use quote::quote;

use super::aggregation::key_type;
use super::expr::ExprGen;
use super::ident::{ident, prefixed, type_ident};
use crate::ir::{IrJoinBounds, IrOperator, IrStreamJoin};
use crate::spec::OnError;

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
    let select = j.select.as_ref().map(|(output, select)| {
        let f = prefixed("select_", &op.stem);
        let out_ty = type_ident(&output.rust_name);
        let fields = output.fields.iter().zip(select).map(|(field, e)| {
            let name = ident(&field.ident);
            let code = exprs.owned(e);
            quote!(#name: #code,)
        });
        let doc = format!(" The output record of a pair of `{component}`.");
        quote! {
            #[doc = #doc]
            #[inline]
            fn #f(rec: &#pair) -> Result<#out_ty, EvalError> {
                Ok(#out_ty { #(#fields)* })
            }
        }
    });
    let doc = format!(" What `{component}` joins.");
    quote! {
        #[doc = #doc]
        struct #join;

        impl Keyed for #join {
            type Input = Sided<#left, #right>;
            type Key = #key_ty;
            type Output = #pair;
        }

        impl JoinPair for #join {
            type Left = #left;
            type Right = #right;
            fn pair(&self, left: Option<&#left>, right: Option<&#right>, window: Option<Window>) -> #pair {
                #pair { #left_field #right_field #window_fields }
            }
        }

        #select
    }
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

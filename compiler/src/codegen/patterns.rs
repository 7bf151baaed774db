//! Patterns: the `Pattern` type (its steps' conditions and the match record), the
//! `select` that makes the output record of a match, and the runtime operator.
//!
//! The runtime's `Patterns` decides *when* (event time order, partial matches,
//! deadlines); this emits *what*: a `<Name>Pattern` unit struct whose `satisfies` sets
//! one bit per step the record meets, and whose `matched` runs `select` over the last
//! event of each step, borrowed (a `<Name>MatchRef`); the `<Name>Match` record is built
//! only for a match `select` cannot make, for its dead letter.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::aggregation::key_type;
use super::borrowed;
use super::expr::ExprGen;
use super::ident::{ident, prefixed, type_ident};
use crate::ir::{IrOperator, IrPattern};
use crate::spec::windows::OnFull;
use crate::spec::OnError;

/// The generated items of a pattern: its `Pattern` type and its `select_` function.
pub fn items(op: &IrOperator, p: &IrPattern, exprs: &mut ExprGen) -> TokenStream {
    let component = op.component();
    let pat = type_ident(&p.pattern_type);
    let input = type_ident(&op.input.rust_name);
    let matched = type_ident(&p.matched.rust_name);
    let held = type_ident(&p.held.rust_name);
    let kept = super::records::kept(&op.input, &p.held);
    let output = type_ident(&p.output.rust_name);
    let key_ty = key_type(&p.key);
    let bits: Vec<TokenStream> = p
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let code = exprs.owned(&step.condition);
            quote!(if #code { bits |= 1 << #i; })
        })
        .collect();
    let absence = p.absence.as_ref().map(|(condition, _)| {
        let code = exprs.owned(condition);
        let i = p.steps.len();
        quote!(if #code { bits |= 1 << #i; })
    });
    // Steps in order, each taking its event out of `taken` into a local (`step_<i>`):
    // every step but an optional one takes at least one event in every match.
    let step_vars: Vec<proc_macro2::Ident> = (0..p.steps.len()).map(|i| format_ident!("step_{i}")).collect();
    let takes = p.steps.iter().zip(&step_vars).map(|(step, var)| {
        if step.min == 0 {
            quote!(let #var = taken.next().flatten();)
        } else {
            quote!(let #var = taken.next().flatten().unwrap_or_default();)
        }
    });
    let names: Vec<_> = p.matched.fields.iter().map(|f| ident(&f.ident)).collect();
    let match_ref = type_ident(&p.match_ref);
    let ref_decls = p.steps.iter().zip(&names).map(|(step, name)| match step.min {
        0 => quote!(#name: Option<&'a #held>,),
        _ => quote!(#name: &'a #held,),
    });
    let ref_inits = p
        .steps
        .iter()
        .zip(&names)
        .zip(&step_vars)
        .map(|((step, name), var)| match step.min {
            0 => quote!(#name: #var.as_ref(),),
            _ => quote!(#name: &#var,),
        });
    let (key_decl, key_init) = borrowed::key_field(p.key_ref.as_ref());
    let held_once = borrowed::held_once(&p.keys_held_once);
    let select = prefixed("select_", &op.stem);
    let out_fields = borrowed::select_fields(exprs, &p.output, &p.select);
    let doc_pat = format!(" What `{component}` matches.");
    let doc_ref = format!(" A match of `{component}`: the events of its steps, borrowed.");
    let doc_select = format!(" The output record of a match of `{component}`.");
    quote! {
        #[doc = #doc_pat]
        struct #pat;

        impl Keyed for #pat {
            type Input = #input;
            type Key = #key_ty;
            type Output = Result<#output, Box<(EvalError, FailedPair)>>;
        }

        impl Pattern for #pat {
            type Held = #held;
            #[inline]
            fn hold(&self, rec: &#input) -> #held {
                #kept
            }
            #[inline]
            fn satisfies(&self, rec: &#input) -> Result<u64, EvalError> {
                let mut bits = 0u64;
                #(#bits)*
                #absence
                Ok(bits)
            }
            /// The output record of a match; one `select` cannot make goes with the
            /// whole match, for its dead letter.
            fn matched(
                &self,
                key: &#key_ty,
                mut taken: impl Iterator<Item = Option<#held>>,
            ) -> Result<#output, Box<(EvalError, FailedPair)>> {
                #(#takes)*
                let made = #select(&#match_ref { #(#ref_inits)* #key_init });
                made.map_err(|e| {
                    let whole = #matched { #(#names: #step_vars,)* };
                    Box::new((e, failed_pair(&whole, key, #held_once)))
                })
            }
        }

        #[doc = #doc_ref]
        struct #match_ref<'a> { #(#ref_decls)* #key_decl }

        #[doc = #doc_select]
        #[inline]
        fn #select(rec: &#match_ref<'_>) -> Result<#output, EvalError> {
            Ok(#output { #(#out_fields)* })
        }
    }
}

/// The field type in the `Nodes` struct.
pub fn node_type(p: &IrPattern) -> TokenStream {
    let pat = type_ident(&p.pattern_type);
    quote!(Stateful<#pat, Patterns<#pat>>)
}

/// `Stateful::new(..)` for a pattern.
pub fn construct(op: &IrOperator, p: &IrPattern) -> TokenStream {
    let pat = type_ident(&p.pattern_type);
    let component = op.component();
    let steps = p.steps.iter().map(|s| {
        let (min, max, strict) = (s.min, s.max, s.strict);
        quote!(PatternStep { min: #min, max: #max, strict: #strict })
    });
    let option = |v: Option<i64>| match v {
        Some(ms) => quote!(Some(#ms)),
        None => quote!(None),
    };
    let within = option(p.within);
    let absence = option(p.absence.as_ref().map(|(_, ms)| *ms));
    let max_partial = usize::try_from(p.max_partial).unwrap_or(usize::MAX);
    let max_keys = match p.max_keys {
        Some(n) => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            quote!(Some(#n))
        }
        None => quote!(None),
    };
    let on_full = match p.on_full {
        OnFull::EvictOldest => quote!(OnFull::EvictOldest),
        OnFull::DeadLetter => quote!(OnFull::Reject),
    };
    let on_error = match p.on_error {
        OnError::Drop => quote!(OnError::Drop),
        OnError::DeadLetter | OnError::Fail => quote!(OnError::DeadLetter),
    };
    let shape = quote! {
        PatternShape {
            steps: vec![#(#steps),*],
            within: #within,
            absence: #absence,
            max_partial: #max_partial,
        }
    };
    let opts = quote!(StateOptions { allowed_lateness: 0, max_keys: #max_keys, on_full: #on_full });
    quote!(Stateful::new(#component, Patterns::new(#pat, #shape, #opts), #on_error, ctx))
}

//! Windows and tables: the key, the accumulator struct, the `Aggregation` impl, and
//! the runtime operator that holds them.
//!
//! The runtime decides *when* (windows, watermarks, lateness); this emits *what*: one
//! `<Name>Acc` struct with a runtime aggregator per aggregate, and a `<Name>Agg` unit
//! struct implementing `Aggregation` (key type, add, merge, output record). The
//! accumulator derives serde's traits, as the key types have them, so checkpoints can
//! save both.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::expr::ExprGen;
use super::ident::{ident, type_ident};
use super::records::rust_type;
use crate::expr::aggregates::{AggFunc, TAggregate};
use crate::expr::{TExpr, TKind};
use crate::ir::{IrAggregation, IrOperator, IrOperatorKind, IrWindowKind, WINDOW_FIELDS};
use crate::spec::windows::OnFull;
use crate::spec::OnError;
use crate::types::{RecordType, Type};

/// Names of the generated items of one window or table.
pub struct Names {
    pub acc: proc_macro2::Ident,
    pub agg: proc_macro2::Ident,
}

pub fn names(op: &IrOperator) -> Names {
    let a = op.aggregation().expect("windows and tables have an aggregation");
    Names {
        acc: type_ident(&a.acc_type),
        agg: type_ident(&a.agg_type),
    }
}

/// The identifier of output field `name` (an aggregate, a key, a window bound).
fn field_ident(a: &IrAggregation, name: &str) -> proc_macro2::Ident {
    ident(a.output.field(name).map_or(name, |f| &f.ident))
}

/// The Rust type of the key: the field's type, a tuple, or `()` for a global window.
pub fn key_type(key: &[TExpr]) -> TokenStream {
    match key {
        [one] => rust_type(&one.ty),
        many => {
            let types = many.iter().map(|k| rust_type(&k.ty));
            quote!((#(#types,)*))
        }
    }
}

/// True when a window or table is keyed by one string: its key is a `StrKey`, its bytes
/// inline (see the runtime's `windows::str_key`), and records hand it a `StrKeyRef`.
pub fn str_key(key: &[TExpr]) -> bool {
    matches!(key, [one] if one.ty == Type::String)
}

/// The Rust type of a window's or table's key: [`key_type`], but a `StrKey` for one
/// string.
fn aggregation_key_type(key: &[TExpr]) -> TokenStream {
    if str_key(key) {
        quote!(StrKey)
    } else {
        key_type(key)
    }
}

/// The key as `process` receives it, borrowed when it is a plain field (no allocation
/// per record), and any helper function needed to compute it.
pub fn key_arg(op: &IrOperator, key: &[TExpr], exprs: &mut ExprGen) -> (TokenStream, TokenStream) {
    let key_fn = super::ident::prefixed("key_", &op.stem);
    key_arg_of(&op.input, &key_fn, &op.component(), key, exprs)
}

/// The key argument of a window or table keyed by one field of its input, read in
/// place and wrapped as `process` takes it; `None` for any other key.
pub fn field_key_arg(key: &[TExpr]) -> Option<TokenStream> {
    let key_ref = field_key_ref(key)?;
    Some(match str_key(key) {
        true => quote!(StrKeyRef::new(#key_ref)),
        false => key_ref,
    })
}

/// A key that is one field of the input, looked up in place (no allocation per record):
/// `&str` for a `String` field, else `&field`; `None` for any other key.
fn field_key_ref(key: &[TExpr]) -> Option<TokenStream> {
    let [TExpr {
        kind: TKind::Field(field),
        ty,
        ..
    }] = key
    else {
        return None;
    };
    let idents = field.idents.iter().map(|p| ident(p));
    let access = quote!(rec #(.#idents)*);
    Some(match ty {
        Type::String => quote!(#access.as_str()),
        _ => quote!(&#access),
    })
}

/// [`key_arg`] for records of type `input`, with the helper (if any) named `key_fn`.
pub fn key_arg_of(
    input: &RecordType,
    key_fn: &proc_macro2::Ident,
    component: &str,
    key: &[TExpr],
    exprs: &mut ExprGen,
) -> (TokenStream, TokenStream) {
    let input = type_ident(&input.rust_name);
    if let Some(key_ref) = field_key_ref(key) {
        return (key_ref, TokenStream::new());
    }
    match key {
        [] => (quote!(&()), TokenStream::new()),
        many => {
            let key_ty = key_type(many);
            let values: Vec<TokenStream> = many.iter().map(|k| exprs.owned(k)).collect();
            // One computed key is its value, not a 1-tuple (see `key_type`).
            let value = match values.as_slice() {
                [one] => one.clone(),
                _ => quote!((#(#values,)*)),
            };
            let doc = format!(" The key of `{component}`.");
            let helper = quote! {
                #[doc = #doc]
                #[inline]
                fn #key_fn(rec: &#input) -> Result<#key_ty, EvalError> {
                    Ok(#value)
                }
            };
            (
                quote!(&#key_fn(rec).map_err(|e| RecordError::new(#component, e))?),
                helper,
            )
        }
    }
}

/// The type of the (non-null) values an aggregate is given; `None` for `count()`.
fn value_type(agg: &TAggregate) -> Option<Type> {
    agg.arg.as_ref().map(|a| match &a.ty {
        Type::Optional(inner) => (**inner).clone(),
        other => other.clone(),
    })
}

/// The runtime aggregator type of one aggregate.
fn aggregator_type(agg: &TAggregate) -> TokenStream {
    let base = value_type(agg);
    let value_ty = || base.as_ref().map(rust_type).unwrap_or_else(|| quote!(()));
    let hashed_ty = || match &base {
        Some(Type::F64) => quote!(u64),
        _ => value_ty(),
    };
    match agg.func {
        AggFunc::Count => quote!(Count),
        AggFunc::Sum => {
            let t = value_ty();
            quote!(Sum<#t>)
        }
        // f64 extremes have an 8-byte form (NaN = empty); one exists per key per window.
        AggFunc::Min if base == Some(Type::F64) => quote!(MinF64),
        AggFunc::Max if base == Some(Type::F64) => quote!(MaxF64),
        AggFunc::Min => {
            let t = value_ty();
            quote!(Min<#t>)
        }
        AggFunc::Max => {
            let t = value_ty();
            quote!(Max<#t>)
        }
        AggFunc::First => {
            let t = value_ty();
            quote!(First<#t>)
        }
        AggFunc::Last => {
            let t = value_ty();
            quote!(Last<#t>)
        }
        AggFunc::Avg => quote!(Avg),
        AggFunc::Variance => quote!(Variance),
        AggFunc::VarianceSample => quote!(VarianceSample),
        AggFunc::Stddev => quote!(Stddev),
        AggFunc::StddevSample => quote!(StddevSample),
        AggFunc::CountDistinct => {
            let t = hashed_ty();
            quote!(CountDistinct<#t>)
        }
        AggFunc::ApproxCountDistinct => {
            let t = hashed_ty();
            quote!(ApproxCountDistinct<#t>)
        }
        AggFunc::Percentile | AggFunc::Median => quote!(Percentile),
        AggFunc::Collect => {
            let t = value_ty();
            quote!(Collect<#t>)
        }
    }
}

fn aggregator_new(agg: &TAggregate) -> TokenStream {
    match agg.func {
        AggFunc::Percentile | AggFunc::Median => {
            let q = agg.quantile.unwrap_or(0.5);
            quote!(Percentile::new(#q))
        }
        AggFunc::Collect => {
            let limit = agg.limit.unwrap_or(100) as usize;
            quote!(Collect::new(#limit))
        }
        _ => {
            let t = aggregator_type(agg);
            quote!(<#t>::default())
        }
    }
}

/// How a (non-null) value `v` is handed to the aggregator's `add`.
fn add_value(agg: &TAggregate, v: TokenStream) -> TokenStream {
    match (agg.func, value_type(agg)) {
        (AggFunc::Count, _) => quote!(()),
        (
            AggFunc::Avg
            | AggFunc::Variance
            | AggFunc::VarianceSample
            | AggFunc::Stddev
            | AggFunc::StddevSample
            | AggFunc::Percentile
            | AggFunc::Median,
            Some(Type::I64 | Type::U64),
        ) => quote!(#v as f64),
        (AggFunc::CountDistinct | AggFunc::ApproxCountDistinct, Some(Type::F64)) => quote!((#v).to_bits()),
        _ => v,
    }
}

/// The `<Name>Acc` struct, the `<Name>Agg` type and its `Aggregation` impl.
pub fn items(op: &IrOperator, exprs: &mut ExprGen) -> TokenStream {
    let a = op.aggregation().expect("windows and tables have an aggregation");
    let n = names(op);
    let (acc, agg_ty) = (&n.acc, &n.agg);
    let input = type_ident(&op.input.rust_name);
    let output = type_ident(&a.output.rust_name);
    let key_ty = aggregation_key_type(&a.key);
    let component = op.component();
    let acc_fields = a.aggregates.iter().map(|(field, agg)| {
        let name = field_ident(a, field);
        let ty = aggregator_type(agg);
        quote!(#name: #ty,)
    });
    let inits = a.aggregates.iter().map(|(field, agg)| {
        let name = field_ident(a, field);
        let init = aggregator_new(agg);
        quote!(#name: #init,)
    });
    // Evaluate every argument first, so an expression error leaves the accumulator untouched.
    let mut evals = Vec::new();
    let mut adds = Vec::new();
    for (i, (field, agg)) in a.aggregates.iter().enumerate() {
        let name = field_ident(a, field);
        let v = format_ident!("v{}", i);
        match &agg.arg {
            None => adds.push(quote!(acc.#name.add((), t)?;)),
            Some(arg) => {
                let optional = arg.ty.is_optional();
                if agg.func == AggFunc::Count && !optional {
                    adds.push(quote!(acc.#name.add((), t)?;));
                    continue;
                }
                let code = exprs.owned(arg);
                evals.push(quote!(let #v = #code;));
                if optional {
                    let value = add_value(agg, quote!(x));
                    adds.push(quote!(if let Some(x) = #v { acc.#name.add(#value, t)?; }));
                } else {
                    let value = add_value(agg, quote!(#v));
                    adds.push(quote!(acc.#name.add(#value, t)?;));
                }
            }
        }
    }
    let merges = a.aggregates.iter().map(|(field, _)| {
        let name = field_ident(a, field);
        quote!(acc.#name.merge(other.#name)?;)
    });
    let heap = a.aggregates.iter().map(|(field, _)| {
        let name = field_ident(a, field);
        quote!(+ acc.#name.heap_bytes())
    });
    // Each key field's value, and how it is written over a kept result's
    // (`Aggregation::output_into`), reusing a string's buffer.
    let key_values: Vec<(TokenStream, TokenStream)> = match a.key.len() {
        0 => Vec::new(),
        1 if str_key(&a.key) => vec![(quote!(String::from(key)), quote!(key.as_str().clone_into))],
        1 => vec![(quote!(key.clone()), quote!((key).clone_into))],
        n => (0..n)
            .map(|i| {
                let i = syn::Index::from(i);
                (quote!(key.#i.clone()), quote!((key.#i).clone_into))
            })
            .collect(),
    };
    let mut out_fields = Vec::new();
    // `output_into` takes the kept row apart into every field by name, with no `..`, so
    // a field added to `output` and not here fails to compile rather than stay stale.
    // Each field is bound as `row_<field>`, which no parameter (`key`, `acc`, ...) is.
    let mut row_fields = Vec::new();
    let mut into_fields = Vec::new();
    let mut row = |name: &proc_macro2::Ident| {
        let local = format_ident!("row_{}", name);
        row_fields.push(quote!(#name: #local));
        local
    };
    for (f, (value, clone_into)) in a.output.fields.iter().zip(key_values) {
        let name = ident(&f.ident);
        out_fields.push(quote!(#name: #value,));
        let local = row(&name);
        into_fields.push(quote!(#clone_into(#local);));
    }
    if a.window_bounds {
        let (start, end) = (field_ident(a, WINDOW_FIELDS[0]), field_ident(a, WINDOW_FIELDS[1]));
        out_fields.push(quote!(#start: window.start, #end: window.end,));
        let (row_start, row_end) = (row(&start), row(&end));
        into_fields.push(quote!(*#row_start = window.start; *#row_end = window.end;));
    }
    for (field, agg) in &a.aggregates {
        let name = field_ident(a, field);
        // A window or table only exists once a record reached it, so a non-optional
        // argument always gave a value; the default is never used.
        let value = if agg.func.result_is_option() && !agg.ty.is_optional() {
            quote!(acc.#name.result().unwrap_or_default())
        } else {
            quote!(acc.#name.result())
        };
        out_fields.push(quote!(#name: #value,));
        let local = row(&name);
        into_fields.push(quote!(*#local = #value;));
    }
    if a.update_field {
        // The parameter `update` of `output` has the field's name (it is always `update`).
        out_fields.push(quote!(update,));
        let local = row(&format_ident!("update"));
        into_fields.push(quote!(*#local = update;));
    }
    let ordered_rows = splits_by_key(op).then(|| {
        // Rows of one window compare as their keys: the key fields come first.
        let compares = a.output.fields.iter().take(a.key.len()).map(|f| {
            let name = ident(&f.ident);
            quote!(.then_with(|| a.#name.cmp(&b.#name)))
        });
        quote! {
            impl OrderedRows for #agg_ty {
                fn cmp_keys(&self, a: &#output, b: &#output) -> ::std::cmp::Ordering {
                    ::std::cmp::Ordering::Equal #(#compares)*
                }
            }
        }
    });
    let doc_acc = format!(" Running aggregates of `{component}`, one per output field.");
    let doc_agg = format!(" What `{component}` computes per key.");
    quote! {
        #[doc = #doc_acc]
        #[derive(Debug, Clone, Serialize, Deserialize)]
        #[serde(crate = "rill_runtime::codegen::serde")]
        struct #acc {
            #(#acc_fields)*
        }

        #[doc = #doc_agg]
        struct #agg_ty;

        impl Keyed for #agg_ty {
            type Input = #input;
            type Key = #key_ty;
            type Output = #output;
        }

        impl Aggregation for #agg_ty {
            type Acc = #acc;
            fn new_acc(&self) -> #acc {
                #acc { #(#inits)* }
            }
            #[inline]
            fn add(&self, acc: &mut #acc, rec: &#input, t: i64) -> Result<(), EvalError> {
                #(#evals)*
                #(#adds)*
                Ok(())
            }
            fn merge(&self, acc: &mut #acc, other: #acc) -> Result<(), EvalError> {
                #(#merges)*
                Ok(())
            }
            fn output(&self, key: &#key_ty, window: Window, acc: &#acc, update: bool) -> #output {
                #output { #(#out_fields)* }
            }
            #[inline]
            fn output_into(&self, key: &#key_ty, window: Window, acc: &#acc, update: bool, into: &mut #output) {
                let #output { #(#row_fields),* } = into;
                #(#into_fields)*
            }
            fn acc_heap_bytes(&self, acc: &#acc) -> usize {
                0 #(#heap)*
            }
        }

        #ordered_rows
    }
}

/// A window or table whose keys the runtime may split across the workers (see
/// [`crate::ir::IrWindow::splits_by_key`], [`crate::ir::IrTable::splits_by_key`]).
fn splits_by_key(op: &IrOperator) -> bool {
    match &op.kind {
        IrOperatorKind::Window(w) => w.splits_by_key(),
        IrOperatorKind::Table(t) => t.splits_by_key(),
        _ => false,
    }
}

/// The field type in the `Nodes` struct.
pub fn node_type(op: &IrOperator) -> TokenStream {
    let agg = names(op).agg;
    let operator = match &op.kind {
        IrOperatorKind::Window(w) => match w.kind {
            IrWindowKind::Fixed { .. } if w.shares_panes() => quote!(PanedWindows<#agg>),
            IrWindowKind::Fixed { .. } => quote!(FixedWindows<#agg>),
            IrWindowKind::Session { .. } => quote!(SessionWindows<#agg>),
            IrWindowKind::Count { .. } => quote!(CountWindows<#agg>),
        },
        IrOperatorKind::Table(_) => quote!(Table<#agg>),
        IrOperatorKind::Transform(_)
        | IrOperatorKind::Join(_)
        | IrOperatorKind::Pattern(_)
        | IrOperatorKind::StreamJoin(_) => {
            unreachable!(
                "transforms and lookups hold no window state; patterns and joins of two streams have their own modules"
            )
        }
    };
    let operator = match splits_by_key(op) {
        true => quote!(SplitByKey<#agg, #operator>),
        false => operator,
    };
    quote!(Stateful<#agg, #operator>)
}

/// `Stateful::new(..)` for a window or table.
pub fn construct(op: &IrOperator) -> TokenStream {
    let a = op.aggregation().expect("windows and tables have an aggregation");
    let agg = names(op).agg;
    let component = op.component();
    let allowed_lateness = match &op.kind {
        IrOperatorKind::Window(w) => w.allowed_lateness,
        _ => 0,
    };
    let max_keys = match a.max_keys {
        Some(n) => {
            let n = n as usize;
            quote!(Some(#n))
        }
        None => quote!(None),
    };
    let on_full = match a.on_full {
        OnFull::EvictOldest => quote!(OnFull::EvictOldest),
        OnFull::DeadLetter => quote!(OnFull::Reject),
    };
    let opts = quote!(StateOptions { allowed_lateness: #allowed_lateness, max_keys: #max_keys, on_full: #on_full });
    let operator = match &op.kind {
        IrOperatorKind::Window(w) => match w.kind {
            IrWindowKind::Fixed { size, slide, offset } if w.shares_panes() => {
                quote!(PanedWindows::new(#agg, #size, #slide, #offset, #opts))
            }
            IrWindowKind::Fixed { size, slide, offset } => {
                quote!(FixedWindows::new(#agg, #size, #slide, #offset, #opts))
            }
            IrWindowKind::Session { gap } => quote!(SessionWindows::new(#agg, #gap, #opts)),
            IrWindowKind::Count { count } => quote!(CountWindows::new(#agg, #count, #opts)),
        },
        IrOperatorKind::Table(t) => {
            let emit = match t.emit_every {
                Some(ms) => quote!(Emit::Every(#ms)),
                None => quote!(Emit::Change),
            };
            let ttl = match t.ttl {
                Some(ms) => quote!(Some(#ms)),
                None => quote!(None),
            };
            quote!(Table::new(#agg, #emit, #ttl, #opts))
        }
        IrOperatorKind::Transform(_)
        | IrOperatorKind::Join(_)
        | IrOperatorKind::Pattern(_)
        | IrOperatorKind::StreamJoin(_) => {
            unreachable!(
                "transforms and lookups hold no window state; patterns and joins of two streams have their own modules"
            )
        }
    };
    let operator = match splits_by_key(op) {
        true => quote!(SplitByKey::new(#component, ctx, #agg, || #operator)),
        false => operator,
    };
    let on_error = match a.on_error {
        OnError::Drop => quote!(OnError::Drop),
        OnError::DeadLetter | OnError::Fail => quote!(OnError::DeadLetter),
    };
    quote!(Stateful::new(#component, #operator, #on_error, ctx))
}

#[cfg(test)]
mod tests {
    /// The generated file of a spec with the one window `w` of `events`, written as
    /// `window` (its fields after `input`), into a JSON file.
    fn generated(window: &str) -> String {
        generated_spec(&format!(
            "windows:\n  w: {{ input: events, {window} }}\nsinks:\n  o: {{ type: file, input: w, path: o.jsonl }}\n"
        ))
    }

    /// The same with the one table `w` instead, and `more` (another section) after it.
    fn generated_table(table: &str, more: &str) -> String {
        generated_spec(&format!(
            "tables:\n  w: {{ input: events, key: key, {table} }}\n{more}sinks:\n  o: {{ type: file, input: w, path: o.jsonl }}\n"
        ))
    }

    fn split(code: &str) -> bool {
        code.contains("SplitByKey<WAgg,")
            && code.contains("SplitByKey::new(")
            && code.contains("impl OrderedRows for WAgg")
    }

    #[test]
    fn tumbling_and_hopping_windows_whose_adds_cannot_fail_are_split_by_key() {
        let aggregates = "aggregate: { c: count(), a: avg(x), m: max(n), s: sum(x), p: median(x), d: count_distinct(key), f: first(other) }";
        for grid in ["tumbling: 10s", "hopping: { size: 10s, slide: 5s }"] {
            let code = generated(&format!("key: key, {grid}, {aggregates}"));
            assert!(split(&code), "{grid}\n{code}");
        }
        // Rows of a window of two keys compare by both, in the key's order.
        let code = generated("key: [other, key], tumbling: 10s, aggregate: { c: count() }");
        let compare = code.split("impl OrderedRows for WAgg").nth(1).unwrap_or_default();
        let (other, key) = (compare.find("a.other.cmp(&b.other)"), compare.find("a.key.cmp(&b.key)"));
        assert!(other.is_some_and(|o| key.is_some_and(|k| o < k)), "{compare}");
    }

    #[test]
    fn a_window_that_can_fail_a_record_or_judge_lateness_by_key_runs_whole() {
        for window in [
            "key: key, tumbling: 10s, aggregate: { s: sum(n) }",
            "key: key, tumbling: 10s, aggregate: { a: avg(x / 2.0) }",
            "key: key, tumbling: 10s, aggregate: { l: collect(n) }",
            "key: key, tumbling: 10s, allowed_lateness: 5s, aggregate: { c: count() }",
            "key: key, tumbling: 10s, max_keys: 100, aggregate: { c: count() }",
            "tumbling: 10s, aggregate: { c: count() }",
            // A float: a count window's or session's rows a JSON file could refuse.
            "key: key, count: 10, aggregate: { c: count(), a: avg(x) }",
        ] {
            let code = generated(window);
            assert!(
                !code.contains("SplitByKey") && !code.contains("OrderedRows"),
                "{window}\n{code}"
            );
        }
    }

    #[test]
    fn a_table_emitting_on_a_clock_splits_and_one_that_emits_at_a_record_runs_whole() {
        let code = generated_table("emit: 10s, aggregate: { c: count(), a: avg(x) }", "");
        assert!(split(&code), "{code}");
        let lookup = "joins:\n  j: { input: events, key: key, lookup: { table: w } }\n";
        for (table, more) in [
            ("emit: 10s, ttl: 1m, aggregate: { c: count() }", ""),
            ("emit: 10s, max_keys: 100, aggregate: { c: count() }", ""),
            ("emit: 10s, aggregate: { s: sum(n) }", ""),
            ("emit: 10s, aggregate: { c: count() }", lookup),
        ] {
            let code = generated_table(table, more);
            assert!(
                !code.contains("SplitByKey") && !code.contains("OrderedRows"),
                "{table} {more}\n{code}"
            );
        }
    }

    /// The generated file of `spec`'s sections after its schema and source `events`.
    fn generated_spec(sections: &str) -> String {
        let spec = format!(
            "name: t\nschemas:\n  event: {{ key: string, other: i64?, n: i64, x: f64, ts: timestamp_ms }}\nsources:\n  events: {{ type: file, path: in.jsonl, schema: event, event_time: ts }}\n{sections}"
        );
        crate::compile_text("t.yaml", &spec)
            .unwrap_or_else(|e| panic!("{e:?}\n{spec}"))
            .main_rs
    }

    #[test]
    fn change_tables_sessions_and_count_windows_split_when_their_rows_go_only_to_sinks_of_their_own_that_cannot_refuse_one(
    ) {
        let own =
            "sinks:\n  o: { type: file, input: w, path: o.jsonl }\n  p: { type: stdout, input: w, format: csv }\n";
        // Each with what else keeps it whole: expiring keys, keeping sessions for late
        // records (a count window has neither).
        let operators = [
            ("tables", "table_w", "", Some("ttl: 1m, ")),
            (
                "windows",
                "window_w",
                "session: { gap: 10s }, ",
                Some("allowed_lateness: 5s, "),
            ),
            ("windows", "window_w", "count: 10, ", None),
        ];
        for (section, field, kind, keeps_whole) in operators {
            let op = |aggregates: &str, more: &str| {
                format!("{section}:\n  w: {{ input: events, key: key, {kind}{more}aggregate: {{ {aggregates} }} }}\n")
            };
            let code = generated_spec(&format!(
                "{}{own}",
                op("c: count(), m: max(ts), d: count_distinct(other), k: last(key)", "")
            ));
            assert!(split(&code), "{code}");
            let catch_up = format!(
                "if self.nodes.{field}.catch_up() {{\n            emit_w(&mut self.nodes);\n            self.nodes.flush()?;"
            );
            assert!(code.contains(&catch_up), "the step catches up:\n{code}");
            // After the watermarks moved: rows fired into it then are handed on too.
            let step = code.split("fn step(").nth(1).unwrap_or_default();
            let (advance, caught_up) = (step.find("advance_all(&mut self.nodes)"), step.find("catch_up()"));
            assert!(advance.is_some_and(|a| caught_up.is_some_and(|c| a < c)), "{step}");
            let counted = op("c: count()", "");
            let file = "sinks:\n  o: { type: file, input: w, path: o.jsonl }\n";
            let mut whole = vec![
                // A float: a JSON sink could refuse an infinite one.
                format!("{}{file}", op("a: avg(x)", "")),
                // Rows go on to a transform.
                format!("{counted}transforms:\n  f: {{ input: w, filter: \"c > 1\" }}\nsinks:\n  o: {{ type: file, input: f, path: o.jsonl }}\n"),
                // Stdout, which another sink writes to as well.
                format!("{counted}sinks:\n  o: {{ type: stdout, input: w }}\n  d: {{ type: stdout, input: dead_letter }}\n"),
                // A sink sending a message per row, which its client may refuse.
                format!("{counted}sinks:\n  o: {{ type: kafka, input: w, brokers: \"127.0.0.1:9092\", topic: t, key: key, format: json }}\n"),
                // Evicting keys.
                format!("{}{file}", op("c: count()", "max_keys: 10, on_full: evict_oldest, ")),
            ];
            whole.extend(keeps_whole.map(|more| format!("{}{file}", op("c: count()", more))));
            for sections in whole {
                let code = generated_spec(&sections);
                assert!(
                    !code.contains("SplitByKey") && !code.contains("catch_up"),
                    "{sections}\n{code}"
                );
            }
        }
    }
}

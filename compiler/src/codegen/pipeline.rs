//! The file: header attributes, pipeline info, records, fused flow
//! functions (one per source and operator), watermark propagation, the
//! `Nodes` and `Job` structs and `main`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::expr::ExprGen;
use super::ident::ident;
use super::ident::{prefixed, type_ident};
use super::{aggregation, chains, joins, messages, patterns, records, sinks, sources, stream_joins};
use crate::connectors::source_items;
use crate::expr::TExpr;
use crate::ir::{
    Ir, IrDelivery, IrFormat, IrJoin, IrOperator, IrOperatorKind, IrSink, IrSource, IrStreamJoin, IrTime, IrTransform,
    IrWindowKind, Node, SinkInput,
};
use crate::types::{RecordType, Type};

pub fn file(ir: &Ir) -> TokenStream {
    let mut exprs = ExprGen::default();
    let info = pipeline_info(ir);
    let structs = ir.records.iter().map(|r| records::record_struct(r));
    let format_impls = format_impls(ir);
    let source_items = ir.sources.iter().filter_map(source_items);
    let source_flows: Vec<TokenStream> = ir
        .sources
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let flow = source_flow(i, s, ir);
            let ahead = source_ahead(s, ir);
            quote!(#flow #ahead)
        })
        .collect();
    let mut tallies = 0..;
    // Each transform's flow function, by operator, for the chains that run it too.
    let mut transform_flows = vec![None; ir.operators.len()];
    let operator_fns: Vec<TokenStream> = ir
        .operators
        .iter()
        .enumerate()
        .map(|(i, op)| match &op.kind {
            IrOperatorKind::Transform(t) => {
                let (helpers, flow) = transform_fns(op, t, tallies.next().unwrap_or(0), ir, &mut exprs);
                transform_flows[i] = Some(flow.clone());
                quote!(#helpers #flow)
            }
            IrOperatorKind::Window(_)
            | IrOperatorKind::Table(_)
            | IrOperatorKind::Pattern(_)
            | IrOperatorKind::StreamJoin(_) => stateful_fns(op, ir, &mut exprs),
            IrOperatorKind::Join(j) => {
                joins::join_fns(op, j, tallies.next().unwrap_or(0), hand_on(&op.outputs, ir), &mut exprs)
            }
        })
        .collect();
    let chains: Vec<TokenStream> = ir
        .sources
        .iter()
        .enumerate()
        .filter_map(|(i, s)| chains::chain_module(i, s, ir, &transform_flows))
        .collect();
    let advance_fns = advance_fns(ir);
    let attach_fns = ir.sources.iter().filter_map(sources::attach_fn);
    let send_fns: Vec<TokenStream> = ir
        .sinks
        .iter()
        .filter_map(|s| messages::send_fns(s, &mut exprs))
        .collect();
    let regexes = exprs.regexes.iter().enumerate().map(|(i, pattern)| {
        let name = format_ident!("RE_{}", i);
        quote!(static #name: LazyRegex = LazyRegex::new(#pattern);)
    });
    let nodes_struct = nodes_struct(ir);
    let job = job(ir);
    // Allowed, and only these: parameters of the uniform flow and `Aggregation`
    // signatures that a pipeline does not use, and the parentheses that keep emitted
    // expressions' precedence. Anything else unused is a codegen bug, which
    // `tests/e2e.rs` catches by compiling every example with warnings denied.
    quote! {
        #![allow(unused_variables, unused_parens, clippy::all, non_snake_case, non_camel_case_types)]
        use rill_runtime::codegen::*;

        #info
        #(#structs)*
        #(#format_impls)*
        #(#source_items)*
        #(#regexes)*
        #(#attach_fns)*
        #(#source_flows)*
        #(#operator_fns)*
        #(#chains)*
        #(#send_fns)*
        #advance_fns
        #nodes_struct
        #job
    }
}

fn pipeline_info(ir: &Ir) -> TokenStream {
    let name = &ir.name;
    let hash = &ir.spec_hash;
    let settings = ir.settings.iter().map(|s| {
        let (key, default, help, secret) = (&s.key, &s.default, &s.help, s.secret);
        quote!(SettingDef { key: #key, default: #default, help: #help, secret: #secret })
    });
    // Fixed and session windows fire every key at once; count windows one key at a time.
    let fires = ir.operators.iter().any(|o| {
        matches!(&o.kind, IrOperatorKind::Window(w)
            if matches!(w.kind, IrWindowKind::Fixed { .. } | IrWindowKind::Session { .. }))
    });
    quote! {
        static PIPELINE: PipelineInfo = PipelineInfo {
            name: #name,
            spec_hash: #hash,
            settings: &[#(#settings),*],
            fires: #fires,
        };
    }
}

/// CSV and lines impls, once per record that a csv/lines source or sink uses; the JSON
/// scanner's impl for each record a JSON source decodes and the JSON writer's for each
/// record a JSON sink encodes, with the records nested in them.
fn format_impls(ir: &Ir) -> Vec<TokenStream> {
    let mut csv: Vec<&RecordType> = Vec::new();
    let mut lines: Vec<&RecordType> = Vec::new();
    let mut json: Vec<&RecordType> = Vec::new();
    // What is decoded: sources' records, and joins' reference records.
    let decoded: Vec<(IrFormat, &RecordType)> = ir
        .sources
        .iter()
        .map(|s| (s.format, &*s.record))
        .chain(ir.operators.iter().filter_map(|o| match &o.kind {
            IrOperatorKind::Join(j) => j.decoded_format().map(|format| (format, &*j.reference)),
            _ => None,
        }))
        .collect();
    for (_, record) in decoded.iter().filter(|(format, _)| *format == IrFormat::Json) {
        with_nested(record, &mut json);
    }
    let mut json_out: Vec<&RecordType> = Vec::new();
    for sink in ir.sinks.iter().filter(|s| s.format == IrFormat::Json) {
        if let SinkInput::Records(record) = &sink.input {
            with_nested(record, &mut json_out);
        }
    }
    let uses = decoded
        .iter()
        .copied()
        .chain(ir.sinks.iter().filter_map(|s| match &s.input {
            SinkInput::Records(r) => Some((s.format, &**r)),
            SinkInput::DeadLetters => None,
        }));
    for (format, record) in uses {
        let list = match format {
            IrFormat::Csv { .. } => &mut csv,
            IrFormat::Lines => &mut lines,
            IrFormat::Json => continue,
        };
        if !list.iter().any(|r| r.rust_name == record.rust_name) {
            list.push(record);
        }
    }
    csv.into_iter()
        .map(records::csv_impl)
        .chain(lines.into_iter().map(records::line_impl))
        .chain(json.into_iter().map(records::json_impl))
        .chain(json_out.into_iter().map(records::write_impl))
        .collect()
}

/// `record` and every record type nested in its fields, each once in `list`.
fn with_nested<'a>(record: &'a RecordType, list: &mut Vec<&'a RecordType>) {
    if list.iter().any(|r| r.rust_name == record.rust_name) {
        return;
    }
    list.push(record);
    for field in &record.fields {
        let mut ty = &field.ty;
        while let Type::Optional(inner) | Type::List(inner) = ty {
            ty = inner;
        }
        if let Type::Record(nested) = ty {
            with_nested(nested, list);
        }
    }
}

/// An expression that hands `rec` (with its time `t`) to every downstream node and is
/// its outcome. Where the graph fans out, every branch runs even when one fails: a
/// failure belongs to its branch (`branches` combines them).
fn hand_on(outputs: &[Node], ir: &Ir) -> TokenStream {
    let calls: Vec<TokenStream> = outputs
        .iter()
        .map(|node| match node {
            Node::Operator(t) => {
                let f = prefixed("flow_", &ir.operators[*t].stem);
                quote!(#f(rec, t, out))
            }
            Node::JoinRight(t) => {
                let f = prefixed("right_flow_", &ir.operators[*t].stem);
                quote!(#f(rec, t, out))
            }
            Node::Sink(s) if sends_messages(&ir.sinks[*s]) => messages::send_call(&ir.sinks[*s]),
            Node::Sink(s) => {
                let field = prefixed("sink_", &ir.sinks[*s].stem);
                quote!(out.#field.send(rec))
            }
        })
        .collect();
    match calls.as_slice() {
        [] => quote!(Ok(())),
        [one] => one.clone(),
        _ => quote!(branches([#(#calls),*])),
    }
}

/// The field of the one sink an operator's results go to, when that is all they do and
/// its encoder keeps nothing between records ([`encodes_anywhere`]): the rows can be
/// encoded on a worker (the runtime's `Stateful::emit_encoded_elsewhere`).
fn encoded_elsewhere(outputs: &[Node], ir: &Ir) -> Option<proc_macro2::Ident> {
    let [Node::Sink(s)] = outputs else { return None };
    let sink = &ir.sinks[*s];
    encodes_anywhere(sink).then(|| prefixed("sink_", &sink.stem))
}

/// True for a byte stream whose encoder keeps nothing between records (JSON, lines; a
/// CSV encoder writes its header once): a copy of it on another thread writes what it
/// would (the runtime's `EncodeAnywhere`).
pub(super) fn encodes_anywhere(sink: &IrSink) -> bool {
    matches!(sink.delivery, IrDelivery::Stream) && matches!(sink.format, IrFormat::Json | IrFormat::Lines)
}

/// True for a sink of messages, each confirmed later: its outcomes are served every
/// step, it is flushed and closed with the dead letters at hand.
fn sends_messages(sink: &IrSink) -> bool {
    matches!(sink.delivery, IrDelivery::Messages(_))
}

/// True when a source commits positions: the pipeline then tracks acknowledgements
/// and commits after steps.
fn commits(ir: &Ir) -> bool {
    ir.sources.iter().any(|s| s.commits)
}

/// Transforms and joins (the operators without state of their own), in topological
/// order; the n-th counts into `out.tallies[n]`.
pub(super) fn transforms(ir: &Ir) -> impl Iterator<Item = &IrOperator> {
    ir.operators
        .iter()
        .filter(|o| matches!(o.kind, IrOperatorKind::Transform(_) | IrOperatorKind::Join(_)))
}

/// Lookup joins, with the reference data each reads.
fn joins(ir: &Ir) -> impl Iterator<Item = (&IrOperator, &IrJoin)> {
    ir.operators.iter().filter_map(|o| match &o.kind {
        IrOperatorKind::Join(j) => Some((o, j)),
        _ => None,
    })
}

/// Windows, tables, patterns and joins of two streams, in topological order.
fn stateful(ir: &Ir) -> impl Iterator<Item = &IrOperator> {
    ir.operators.iter().filter(|o| {
        matches!(
            o.kind,
            IrOperatorKind::Window(_)
                | IrOperatorKind::Table(_)
                | IrOperatorKind::Pattern(_)
                | IrOperatorKind::StreamJoin(_)
        )
    })
}

/// The `Nodes` field of a window, table, pattern or join of two streams.
fn node_field(op: &IrOperator) -> proc_macro2::Ident {
    match op.kind {
        IrOperatorKind::Table(_) => prefixed("table_", &op.stem),
        IrOperatorKind::Pattern(_) => prefixed("pattern_", &op.stem),
        IrOperatorKind::StreamJoin(_) => prefixed("join_", &op.stem),
        _ => prefixed("window_", &op.stem),
    }
}

/// `ahead_<source>`, when records of the source go straight into a tumbling or hopping
/// window (the operators that act on the hint): shown a record a few before it flows,
/// it asks for the state of the record's key (see the runtime's `Source::poll_ahead`).
/// Only for a key that is one field, read in place: a computed key would cost its
/// computation twice.
fn source_ahead(s: &IrSource, ir: &Ir) -> Option<TokenStream> {
    let hints: Vec<TokenStream> = s
        .outputs
        .iter()
        .filter_map(|node| match node {
            Node::Operator(o) => Some(&ir.operators[*o]),
            _ => None,
        })
        .filter(|op| matches!(&op.kind, IrOperatorKind::Window(w) if matches!(w.kind, IrWindowKind::Fixed { .. })))
        .filter_map(|op| {
            let key = aggregation::field_key_arg(&op.aggregation()?.key)?;
            let field = node_field(op);
            Some(quote!(out.#field.prefetch(#key, t, reach);))
        })
        .collect();
    if hints.is_empty() {
        return None;
    }
    // The record's time, where it is a field: a window finds the pane it goes to.
    let time = match &s.time {
        IrTime::Processing => quote!(None),
        IrTime::Event { idents, optional, .. } => {
            let idents = idents.iter().map(|p| super::ident::ident(p));
            match optional {
                true => quote!(rec #(.#idents)*),
                false => quote!(Some(rec #(.#idents)*)),
            }
        }
    };
    let f = prefixed("ahead_", &s.stem);
    let ty = type_ident(&s.record.rust_name);
    let doc = format!(
        " A record of `sources.{}` flows soon: its keys' state is asked for.",
        s.name
    );
    Some(quote! {
        #[doc = #doc]
        #[inline]
        fn #f(rec: &#ty, out: &Nodes, reach: Reach) {
            let t: Option<i64> = #time;
            #(#hints)*
        }
    })
}

/// True when a source's event time moves the watermark of a window, table, pattern or
/// join of two streams.
pub(super) fn drives_windows(index: usize, s: &IrSource, ir: &Ir) -> bool {
    matches!(s.time, IrTime::Event { .. }) && stateful(ir).any(|o| o.time_sources.contains(&index))
}

/// `flow_<source>`: what happens to each decoded record of a source. On event time,
/// the record's time then moves the source's watermark, which may fire windows.
pub(super) fn source_flow(index: usize, s: &IrSource, ir: &Ir) -> TokenStream {
    let f = prefixed("flow_", &s.stem);
    let ty = type_ident(&s.record.rust_name);
    let component = format!("sources.{}", s.name);
    let doc = format!(" Every record decoded by `{component}`.");
    let calls = hand_on(&s.outputs, ir);
    let time = match &s.time {
        IrTime::Processing => quote!(let t = out.clocks.now_ms();),
        IrTime::Event {
            field,
            idents,
            optional,
            ..
        } => {
            let idents = idents.iter().map(|p| super::ident::ident(p));
            let access = quote!(rec #(.#idents)*);
            if *optional {
                let name = field.join(".");
                quote! {
                    let Some(t) = #access else {
                        return Err(RecordError::new(#component, EvalError::NoEventTime { field: #name }));
                    };
                }
            } else {
                quote!(let t = #access;)
            }
        }
    };
    if !drives_windows(index, s, ir) {
        return quote! {
            #[doc = #doc]
            #[inline]
            fn #f(rec: &#ty, out: &mut Nodes) -> Result<(), RecordError> {
                #time
                #calls
            }
        };
    }
    let to = prefixed("to_", &s.stem);
    let advance = prefixed("advance_after_", &s.stem);
    quote! {
        #[doc = #doc]
        #[inline]
        fn #f(rec: &#ty, out: &mut Nodes) -> Result<(), RecordError> {
            #time
            let forwarded = #to(rec, t, out);
            // After the record itself: it was judged against the watermark before it.
            if out.clocks.observe(#index, t) {
                #advance(out);
            }
            forwarded
        }
        #[inline]
        fn #to(rec: &#ty, t: i64, out: &mut Nodes) -> Result<(), RecordError> {
            #calls
        }
    }
}

/// Watermark propagation: after a source's watermark moved, and after a step (idle
/// inputs, processing time, finished inputs). Operators advance in topological order,
/// so an upstream window's results reach a downstream one before its watermark moves.
fn advance_fns(ir: &Ir) -> TokenStream {
    if stateful(ir).next().is_none() {
        return TokenStream::new();
    }
    let advance = |op: &IrOperator| {
        let field = node_field(op);
        let emit = prefixed("emit_", &op.stem);
        let sources = &op.time_sources;
        quote! {
            if out.#field.advance(out.clocks.watermark(&[#(#sources),*])) {
                #emit(out);
            }
        }
    };
    let per_source = ir.sources.iter().enumerate().filter_map(|(i, s)| {
        if !matches!(s.time, IrTime::Event { .. }) {
            return None;
        }
        let ops: Vec<TokenStream> = stateful(ir)
            .filter(|o| o.time_sources.contains(&i))
            .map(advance)
            .collect();
        if ops.is_empty() {
            return None;
        }
        let f = prefixed("advance_after_", &s.stem);
        let doc = format!(" The watermark of `sources.{}` moved.", s.name);
        Some(quote! {
            #[doc = #doc]
            fn #f(out: &mut Nodes) {
                #(#ops)*
            }
        })
    });
    let all = stateful(ir).map(advance);
    quote! {
        #(#per_source)*
        /// Any watermark may have moved.
        fn advance_all(out: &mut Nodes) {
            #(#all)*
        }
    }
}

/// A window, table, pattern or join of two streams: its items, `flow_` (add a record,
/// route a late one; a join's right side: `right_flow_`), `emit_` (hand results
/// downstream) and `forward_`.
fn stateful_fns(op: &IrOperator, ir: &Ir, exprs: &mut ExprGen) -> TokenStream {
    let component = op.component();
    let field = node_field(op);
    let emit = prefixed("emit_", &op.stem);
    let forward_fn = prefixed("forward_", &op.stem);
    // A pattern, and a join with a `select`, make their output records themselves, and
    // hand on the matches and pairs `select` could not make: each is a dead letter.
    let made = || {
        quote! {
            let rec = match rec {
                Ok(rec) => rec,
                Err(failed) => {
                    let (e, whole) = &**failed;
                    out.#field.result_failed(&mut out.dead_letters, &RecordError::new(#component, e.clone()), whole);
                    continue;
                }
            };
        }
    };
    let (items, flows, emitted, unmade) = match &op.kind {
        IrOperatorKind::Pattern(p) => {
            let flow = record_flow(op, &p.key, ir, exprs);
            let emitted = type_ident(&p.output.rust_name);
            (patterns::items(op, p, exprs), flow, emitted, Some(made()))
        }
        IrOperatorKind::StreamJoin(j) => {
            let flows = join_flows(op, j, ir, exprs);
            let emitted = type_ident(&j.output.rust_name);
            let made = j.select.as_ref().map(|_| made());
            (stream_joins::items(op, j, exprs), flows, emitted, made)
        }
        _ => {
            let a = op.aggregation().expect("windows and tables have an aggregation");
            let flow = record_flow(op, &a.key, ir, exprs);
            let emitted = type_ident(&op.output().rust_name);
            (aggregation::items(op, exprs), flow, emitted, None)
        }
    };
    let calls = hand_on(&op.outputs, ir);
    let doc_emit = format!(" Hand the results of `{component}` downstream; one that fails there is a dead letter.");
    let elsewhere = match unmade {
        None => encoded_elsewhere(&op.outputs, ir).map(|sink| {
            quote! {
                if out.#sink.encodes_elsewhere() {
                    out.#field.emit_encoded_elsewhere(&mut out.#sink, &mut out.dead_letters);
                    return;
                }
            }
        }),
        Some(_) => None,
    };
    quote! {
        #items
        #flows
        #[doc = #doc_emit]
        fn #emit(out: &mut Nodes) {
            #elsewhere
            let mut results = out.#field.take_buffer();
            while out.#field.next_results(&mut results) {
                for &(ref rec, t) in results.as_slice() {
                    #unmade
                    if let Err(e) = #forward_fn(rec, t, out) {
                        out.#field.result_failed(&mut out.dead_letters, &e, rec);
                    }
                }
            }
            out.#field.restore_buffer(results);
        }
        #[inline]
        fn #forward_fn(rec: &#emitted, t: i64, out: &mut Nodes) -> Result<(), RecordError> {
            #calls
        }
    }
}

/// The `flow_` of a window, table or pattern: its key, and the record added.
fn record_flow(op: &IrOperator, key: &[TExpr], ir: &Ir, exprs: &mut ExprGen) -> TokenStream {
    let flow = prefixed("flow_", &op.stem);
    let input = type_ident(&op.input.rust_name);
    let (mut key, key_helper) = aggregation::key_arg(op, key, exprs);
    if op.aggregation().is_some_and(|a| aggregation::str_key(&a.key)) {
        key = quote!(StrKeyRef::new(#key));
    }
    let field = node_field(op);
    let late = match &op.kind {
        IrOperatorKind::Window(w) => late_record(op, w.drop_late, TokenStream::new(), ir),
        IrOperatorKind::Pattern(p) => late_record(op, p.drop_late, TokenStream::new(), ir),
        _ => quote!(out.#field.late_to_dead_letters(&mut out.dead_letters, rec, t, watermark);),
    };
    let emit = prefixed("emit_", &op.stem);
    let doc = format!(" `{}`: add a record; results and late records move on.", op.component());
    quote! {
        #key_helper
        #[doc = #doc]
        #[inline]
        fn #flow(rec: &#input, t: i64, out: &mut Nodes) -> Result<(), RecordError> {
            if let Admit::Late { watermark } = out.#field.process(#key, rec, t)? {
                #late
            }
            if out.#field.has_emitted() {
                #emit(out);
            }
            Ok(())
        }
    }
}

/// What becomes of a late record `rec`: it goes to `<name>.late` (made into its record
/// by `as_late`), is dropped, or is a dead letter.
fn late_record(op: &IrOperator, drop_late: bool, as_late: TokenStream, ir: &Ir) -> TokenStream {
    let field = node_field(op);
    if !op.late_outputs.is_empty() {
        let calls = hand_on(&op.late_outputs, ir);
        quote! {
            #as_late
            out.#field.late_counted(false);
            #calls?;
        }
    } else if drop_late {
        quote!(out.#field.late_counted(true);)
    } else {
        quote!(out.#field.late_to_dead_letters(&mut out.dead_letters, rec, t, watermark);)
    }
}

/// A join of two streams' `flow_` (its left side) and `right_flow_`.
fn join_flows(op: &IrOperator, j: &IrStreamJoin, ir: &Ir, exprs: &mut ExprGen) -> TokenStream {
    let component = op.component();
    let field = node_field(op);
    let emit = prefixed("emit_", &op.stem);
    let sides = [
        (
            "left",
            &op.input,
            &j.left_held,
            &j.left_key,
            "flow_",
            "key_",
            quote!(Sided::Left),
        ),
        (
            "right",
            &j.right,
            &j.right_held,
            &j.right_key,
            "right_flow_",
            "right_key_",
            quote!(Sided::Right),
        ),
    ];
    let mut flows = TokenStream::new();
    for (i, (side, record, held, key, flow, key_fn, sided)) in sides.into_iter().enumerate() {
        let held = records::kept(record, held);
        let input = type_ident(&record.rust_name);
        let key_fn = prefixed(key_fn, &op.stem);
        let (key, key_helper) = aggregation::key_arg_of(record, &key_fn, &component, std::slice::from_ref(key), exprs);
        // To `<join>.late`: the record on its side, the other side null.
        let as_late = j.late.as_ref().map(|late| {
            let ty = type_ident(&late.rust_name);
            let (this, other) = (ident(&late.fields[i].ident), ident(&late.fields[1 - i].ident));
            quote!(let rec = &#ty { #this: Some(rec.clone()), #other: None };)
        });
        let late = late_record(op, j.drop_late, as_late.unwrap_or_default(), ir);
        let flow = prefixed(flow, &op.stem);
        let doc = format!(" `{component}`: add a record of its {side} side; pairs and late records move on.");
        flows.extend(quote! {
            #key_helper
            #[doc = #doc]
            #[inline]
            fn #flow(rec: &#input, t: i64, out: &mut Nodes) -> Result<(), RecordError> {
                if let Admit::Late { watermark } = out.#field.process_owned(#key, #sided(#held), t)? {
                    #late
                }
                if out.#field.has_emitted() {
                    #emit(out);
                }
                Ok(())
            }
        });
    }
    flows
}

/// A transform: its filter and map as small fallible functions, and apart from them its
/// `flow_` function that applies them, counts into `out.tallies[tally]` and forwards
/// the result (emitted again in a source's chain, [`chains`]).
fn transform_fns(
    op: &IrOperator,
    t: &IrTransform,
    tally: usize,
    ir: &Ir,
    exprs: &mut ExprGen,
) -> (TokenStream, TokenStream) {
    let component = op.component();
    let input = type_ident(&op.input.rust_name);
    let mut helpers = TokenStream::new();
    let mut body = quote!(out.tallies[#tally].received += 1;);
    if let Some(filter) = &t.filter {
        let f = prefixed("filter_", &op.stem);
        let code = exprs.owned(filter);
        let doc = format!(" Filter of `{component}`.");
        helpers.extend(quote! {
            #[doc = #doc]
            #[inline]
            fn #f(rec: &#input) -> Result<bool, EvalError> {
                Ok(#code)
            }
        });
        body.extend(quote! {
            if !#f(rec).map_err(|e| RecordError::new(#component, e))? {
                out.tallies[#tally].filtered += 1;
                return Ok(());
            }
        });
    }
    if let Some((output, field_exprs)) = &t.map {
        let f = prefixed("map_", &op.stem);
        let out_ty = type_ident(&output.rust_name);
        let fields = exprs.record_fields(output, field_exprs);
        let doc = format!(" Map of `{component}`.");
        helpers.extend(quote! {
            #[doc = #doc]
            #[inline]
            fn #f(rec: &#input) -> Result<#out_ty, EvalError> {
                Ok(#out_ty { #(#fields)* })
            }
        });
        body.extend(quote! {
            let rec = &#f(rec).map_err(|e| RecordError::new(#component, e))?;
        });
    }
    let flow = prefixed("flow_", &op.stem);
    let calls = hand_on(&op.outputs, ir);
    let mut hand_on = quote! {
        out.tallies[#tally].sent += 1;
        #calls
    };
    if let Some((output, list)) = &t.explode {
        let f = prefixed("explode_", &op.stem);
        let out_ty = type_ident(&output.rust_name);
        let field = super::ident::ident(&output.fields[0].ident);
        let item_ty = records::rust_type(&output.fields[0].ty);
        let code = exprs.owned(list);
        let doc = format!(" The list `{component}` explodes.");
        helpers.extend(quote! {
            #[doc = #doc]
            #[inline]
            fn #f(rec: &#input) -> Result<Vec<#item_ty>, EvalError> {
                Ok(#code)
            }
        });
        // One record in; an empty list lets nothing through. Every element goes on
        // even when an earlier one failed somewhere.
        hand_on = quote! {
            let items = #f(rec).map_err(|e| RecordError::new(#component, e))?;
            if items.is_empty() {
                out.tallies[#tally].filtered += 1;
            } else {
                out.tallies[#tally].sent += 1;
            }
            let mut done = Ok(());
            for item in items {
                let rec = &#out_ty { #field: item };
                done = also(done, #calls);
            }
            done
        };
    }
    let doc = format!(" `{component}`: apply it and forward the result.");
    let flow = quote! {
        #[doc = #doc]
        #[inline]
        fn #flow(rec: &#input, t: i64, out: &mut Nodes) -> Result<(), RecordError> {
            #body
            #hand_on
        }
    };
    (helpers, flow)
}

fn nodes_struct(ir: &Ir) -> TokenStream {
    let sink_fields = ir.sinks.iter().filter_map(|s| {
        let ty = sinks::output_type(s)?;
        let name = prefixed("sink_", &s.stem);
        Some(quote!(#name: #ty,))
    });
    let state_fields = stateful(ir).map(|op| {
        let name = node_field(op);
        let ty = match &op.kind {
            IrOperatorKind::Pattern(p) => patterns::node_type(p),
            IrOperatorKind::StreamJoin(j) => stream_joins::node_type(j),
            _ => aggregation::node_type(op),
        };
        quote!(#name: #ty,)
    });
    let lookup_fields = joins(ir).filter_map(|(op, j)| {
        let name = joins::node_field(op);
        let ty = joins::node_type(j)?;
        Some(quote!(#name: #ty,))
    });
    let flushes = ir
        .sinks
        .iter()
        .filter(|s| matches!(s.input, SinkInput::Records(_)))
        .map(|s| {
            let name = prefixed("sink_", &s.stem);
            if sends_messages(s) {
                quote!(self.#name.flush(&mut self.dead_letters))
            } else {
                quote!(self.#name.flush())
            }
        });
    let tallies = transforms(ir).count();
    let acks = commits(ir).then(|| quote!(acks: Acks,));
    quote! {
        /// Everything records flow into: outputs, windows and tables, the transforms'
        /// counts, the sources' clocks, and the dead letters.
        struct Nodes {
            #(#sink_fields)*
            #(#state_fields)*
            #(#lookup_fields)*
            tallies: [Tally; #tallies],
            clocks: Clocks,
            dead_letters: DeadLetters,
            #acks
        }

        impl Outputs for Nodes {
            fn dead_letters(&mut self) -> &mut DeadLetters {
                &mut self.dead_letters
            }
            /// Every output is flushed even when another fails, the dead letters last
            /// (flushing may add some); all failures are reported.
            fn flush(&mut self) -> Result<(), RunError> {
                for tally in &mut self.tallies {
                    tally.publish();
                }
                RunError::all([#(#flushes,)* self.dead_letters.flush()])
            }
        }
    }
}

fn job(ir: &Ir) -> TokenStream {
    let source_fields = ir.sources.iter().enumerate().map(|(i, s)| {
        let name = prefixed("source_", &s.stem);
        let ty = sources::source_type(s, chains::chain_of(i, s, ir).as_ref());
        quote!(#name: #ty,)
    });
    let any_state = stateful(ir).next().is_some();
    let polls = ir.sources.iter().enumerate().map(|(i, s)| {
        let name = prefixed("source_", &s.stem);
        let flow = prefixed("flow_", &s.stem);
        if any_state {
            let poll = match source_ahead(s, ir) {
                Some(_) => {
                    let ahead = prefixed("ahead_", &s.stem);
                    quote!(self.#name.poll_ahead(&mut self.nodes, #flow, #ahead)?)
                }
                None => quote!(self.#name.poll(&mut self.nodes, #flow)?),
            };
            quote! {
                let poll = #poll;
                self.nodes.clocks.polled(#i, poll);
                moved |= poll == Poll::Finished;
                step = step.and(Step::from(poll));
            }
        } else {
            quote!(step = step.and(Step::from(self.#name.poll(&mut self.nodes, #flow)?));)
        }
    });
    // A split table emitting each change or count window hands on the rows of the
    // step's records (read, or fired into it by a watermark), and split sessions every
    // row due, before the step ends, where a checkpoint may come, and writes them: the
    // polls flushed what they wrote.
    let catch_ups = stateful(ir).filter(|op| op.catches_up()).map(|op| {
        let field = node_field(op);
        let emit = prefixed("emit_", &op.stem);
        quote! {
            if self.nodes.#field.catch_up() {
                #emit(&mut self.nodes);
                self.nodes.flush()?;
            }
        }
    });
    let (tick, advance) = if any_state {
        let samples = stateful(ir).map(|op| {
            let field = node_field(op);
            quote!(self.nodes.#field.sample(false);)
        });
        (
            quote!(let mut moved = self.nodes.clocks.tick();),
            quote! {
                if moved {
                    advance_all(&mut self.nodes);
                    self.nodes.flush()?;
                }
                #(#samples)*
            },
        )
    } else {
        (quote!(self.nodes.clocks.tick();), TokenStream::new())
    };
    let message_sinks: Vec<proc_macro2::Ident> = ir
        .sinks
        .iter()
        .filter(|s| sends_messages(s))
        .map(|s| prefixed("sink_", &s.stem))
        .collect();
    let committing: Vec<proc_macro2::Ident> = ir
        .sources
        .iter()
        .filter(|s| s.commits)
        .map(|s| prefixed("source_", &s.stem))
        .collect();
    // Delivery outcomes arrive between batches too: serve them every step.
    let deliveries = (!message_sinks.is_empty()).then(|| {
        quote! {
            RunError::all([
                #(self.nodes.#message_sinks.flush(&mut self.nodes.dead_letters),)*
                self.nodes.dead_letters.flush(),
            ])?;
        }
    });
    let pending: Vec<TokenStream> = stateful(ir)
        .map(|op| {
            let field = node_field(op);
            quote!(self.nodes.#field.pending_epoch())
        })
        .collect();
    let held = if pending.is_empty() {
        quote!(None)
    } else {
        quote!([#(#pending),*].into_iter().flatten().min())
    };
    let commit = commits(ir).then(|| {
        quote! {
            if self.nodes.acks.due(false) {
                let held = #held;
                self.nodes.acks.end_step(held);
                #(self.#committing.commit()?;)*
            }
        }
    });
    let close_messages = (!message_sinks.is_empty()).then(|| {
        quote! {
            // Wait for messages in flight; failed ones become dead letters.
            let closed = RunError::all([
                #(self.nodes.#message_sinks.close(&mut self.nodes.dead_letters),)*
                self.nodes.dead_letters.flush(),
            ]);
            let flushed = RunError::all([flushed, closed]);
        }
    });
    let final_commit = commits(ir).then(|| {
        quote! {
            // Everything fired and was accepted: confirm all of it (with checkpoints,
            // the final checkpoint does). After a failure only what was confirmed
            // before is committed, and the rest is read again.
            if flushed.is_ok() {
                self.nodes.acks.end_step(None);
            }
        }
    });
    let acks_init = commits(ir).then(|| quote!(acks: ctx.acks.clone(),));
    let closes = stateful(ir).map(|op| {
        let field = node_field(op);
        let emit = prefixed("emit_", &op.stem);
        quote! {
            if self.nodes.#field.close(fire) {
                #emit(&mut self.nodes);
            }
        }
    });
    let source_names: Vec<proc_macro2::Ident> = ir.sources.iter().map(|s| prefixed("source_", &s.stem)).collect();
    // Windows and tables, then the outputs: what a checkpoint saves besides the sources.
    let checkpointed_nodes: Vec<proc_macro2::Ident> = stateful(ir)
        .map(node_field)
        .chain(
            ir.sinks
                .iter()
                .filter(|s| sinks::output_type(s).is_some())
                .map(|s| prefixed("sink_", &s.stem)),
        )
        .collect();
    let source_inits = ir.sources.iter().zip(&source_names).enumerate().map(|(i, (s, name))| {
        let init = sources::construct(s, chains::chain_of(i, s, ir).as_ref());
        quote!(let #name = #init;)
    });
    let sink_inits = ir
        .sinks
        .iter()
        .filter(|s| matches!(s.input, SinkInput::Records(_)))
        .map(|s| {
            let name = prefixed("sink_", &s.stem);
            let init = sinks::construct(s);
            quote!(#name: #init,)
        });
    let state_inits = stateful(ir).map(|op| {
        let name = node_field(op);
        let init = match &op.kind {
            IrOperatorKind::Pattern(p) => patterns::construct(op, p),
            IrOperatorKind::StreamJoin(j) => stream_joins::construct(op, j),
            _ => aggregation::construct(op),
        };
        quote!(#name: #init,)
    });
    let lookup_inits = joins(ir).filter_map(|(op, j)| {
        let name = joins::node_field(op);
        let init = joins::construct(op, j)?;
        Some(quote!(#name: #init,))
    });
    let time_modes = ir.sources.iter().map(|s| match &s.time {
        IrTime::Processing => quote!(TimeMode::Processing),
        IrTime::Event {
            max_out_of_order,
            idle_timeout,
            ..
        } => {
            let idle = match idle_timeout {
                Some(ms) => quote!(Some(#ms)),
                None => quote!(None),
            };
            quote!(TimeMode::Event { max_out_of_order: #max_out_of_order, idle_timeout: #idle })
        }
    });
    let dead_letter_sinks: Vec<TokenStream> = ir
        .sinks
        .iter()
        .filter(|s| matches!(s.input, SinkInput::DeadLetters))
        .map(crate::connectors::construct_sink)
        .collect();
    let dead_letters = if dead_letter_sinks.is_empty() {
        quote!(DeadLetters::stderr().counted(ctx))
    } else {
        quote!(DeadLetters::to_sinks(vec![#(#dead_letter_sinks),*]).counted(ctx))
    };
    let tally_inits = transforms(ir).map(|op| {
        let component = op.component();
        quote!(Tally::new(#component, &ctx.events))
    });
    quote! {
        /// The running pipeline: its sources and everything downstream.
        struct Job {
            #(#source_fields)*
            nodes: Nodes,
        }

        impl Pipeline for Job {
            fn step(&mut self) -> Result<Step, RunError> {
                let mut step = Step::Finished;
                #tick
                // Each poll flushes the outputs it wrote to.
                #(#polls)*
                #advance
                #(#catch_ups)*
                #deliveries
                #commit
                Ok(step)
            }
            fn flush(&mut self) -> Result<(), RunError> {
                self.nodes.flush()
            }
            fn close(&mut self, fire: bool) -> Result<(), RunError> {
                // Open windows fire (with `fire`), upstream first, so downstream ones
                // see their results; every one publishes its last counts.
                #(#closes)*
                let flushed = self.nodes.flush();
                #close_messages
                #final_commit
                flushed
            }
            fn close_sources(&mut self) -> Result<(), RunError> {
                RunError::all([#(self.#source_names.close()),*])
            }
            fn checkpointed(&mut self) -> Vec<&mut dyn Checkpointed> {
                Vec::from([
                    &mut self.nodes.clocks as &mut dyn Checkpointed,
                    &mut self.nodes.dead_letters,
                    #(&mut self.#source_names,)*
                    #(&mut self.nodes.#checkpointed_nodes,)*
                ])
            }
        }

        fn main() -> std::process::ExitCode {
            run(&PIPELINE, |ctx| {
                // Inputs first: an input that cannot be opened must not cost an output
                // file its contents.
                #(#source_inits)*
                let nodes = Nodes {
                    // Lookup files are inputs too: read before any output is opened.
                    #(#lookup_inits)*
                    #(#sink_inits)*
                    #(#state_inits)*
                    tallies: [#(#tally_inits),*],
                    clocks: Clocks::new(&[#(#time_modes),*]),
                    dead_letters: #dead_letters,
                    #acks_init
                };
                Ok(Job {
                    #(#source_names,)*
                    nodes,
                })
            })
        }
    }
}

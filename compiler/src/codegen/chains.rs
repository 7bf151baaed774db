//! A source's chain: its downstream, when that is stateless all the way to its
//! outputs, emitted a second time to run where the source's batches are decoded (the
//! runtime's `sources::chain`).
//!
//! `mod chain_<source>` holds a `Nodes` of its own — the outputs as `Encoded` copies,
//! the transforms' `Counts`, a `BatchClock` — and the same flow functions as the
//! pipeline's, emitted from the same tokens: inside the module, `Nodes` and `flow_<x>`
//! name its own items, and everything else (records, filters, maps) the file's.

use std::collections::BTreeSet;

use proc_macro2::{Ident, TokenStream};
use quote::quote;

use super::ident::{prefixed, type_ident};
use super::pipeline::{drives_windows, encodes_anywhere, source_flow, transforms};
use crate::ir::{Ir, IrOperatorKind, IrSource, Node};
use crate::spec::OnError;

/// The name of a source's chain module, when it has one.
pub fn chain_of(index: usize, s: &IrSource, ir: &Ir) -> Option<Ident> {
    reach(index, s, ir).map(|_| prefixed("chain_", &s.stem))
}

/// What a source's chain runs: the transforms and sinks downstream of it, when every
/// node there is a transform (filter, map, explode) or an output that encodes anywhere,
/// and a bad record does not stop the run (records after it would already be encoded).
/// A source whose time moves a window's watermark feeds that window, so it has none.
fn reach(index: usize, s: &IrSource, ir: &Ir) -> Option<(BTreeSet<usize>, BTreeSet<usize>)> {
    if s.on_error == OnError::Fail || drives_windows(index, s, ir) {
        return None;
    }
    let (mut operators, mut sinks) = (BTreeSet::new(), BTreeSet::new());
    let mut waiting: Vec<&Node> = s.outputs.iter().collect();
    while let Some(node) = waiting.pop() {
        match node {
            Node::Operator(o) if matches!(ir.operators[*o].kind, IrOperatorKind::Transform(_)) => {
                if operators.insert(*o) {
                    waiting.extend(&ir.operators[*o].outputs);
                }
            }
            Node::Sink(k) if encodes_anywhere(&ir.sinks[*k]) => {
                sinks.insert(*k);
            }
            _ => return None,
        }
    }
    (!sinks.is_empty()).then_some((operators, sinks))
}

/// `mod chain_<source>`, when the source has a chain; `transform_flows` holds each
/// transform's flow function, by operator.
pub fn chain_module(
    index: usize,
    s: &IrSource,
    ir: &Ir,
    transform_flows: &[Option<TokenStream>],
) -> Option<TokenStream> {
    let (operators, sinks) = reach(index, s, ir)?;
    let module = prefixed("chain_", &s.stem);
    let record = type_ident(&s.record.rust_name);
    let source_flow_fn = prefixed("flow_", &s.stem);
    let source_flow = source_flow(index, s, ir);
    let flows = operators.iter().filter_map(|o| transform_flows[*o].as_ref());
    let tallies = transforms(ir).count();
    let sinks: Vec<_> = sinks.iter().map(|k| &ir.sinks[*k]).collect();
    let fields = sinks.iter().filter_map(|sink| {
        let name = prefixed("sink_", &sink.stem);
        let encoder = super::sinks::encoder_type(sink)?;
        Some(quote!(#name: Encoded<#encoder>,))
    });
    let inits = sinks.iter().map(|sink| {
        let name = prefixed("sink_", &sink.stem);
        let component = format!("sinks.{}", sink.name);
        let encoder = super::sinks::encoder(sink);
        quote!(#name: Encoded::new(#component, #encoder),)
    });
    let appends = sinks.iter().map(|sink| {
        let name = prefixed("sink_", &sink.stem);
        quote!(into.#name.append(&mut self.#name);)
    });
    let doc = format!(" `sources.{}`'s downstream, run where its batches are decoded.", s.name);
    Some(quote! {
        #[doc = #doc]
        mod #module {
            use super::*;

            /// The outputs, counts and clock of this copy of the downstream.
            pub struct Nodes {
                #(#fields)*
                tallies: [Counts; #tallies],
                clocks: BatchClock,
            }

            impl Chain<#record> for Nodes {
                fn new() -> Self {
                    Nodes {
                        #(#inits)*
                        tallies: [Counts::default(); #tallies],
                        clocks: BatchClock::default(),
                    }
                }
                fn start(&mut self) {
                    self.clocks.tick();
                }
                #[inline]
                fn flow(&mut self, rec: &#record) -> Result<(), RecordError> {
                    #source_flow_fn(rec, self)
                }
            }

            impl Merge<super::Nodes> for Nodes {
                fn merge(&mut self, into: &mut super::Nodes) {
                    for (tally, counts) in into.tallies.iter_mut().zip(&mut self.tallies) {
                        tally.add(counts);
                    }
                    #(#appends)*
                }
            }

            #source_flow
            #(#flows)*
        }
    })
}

#[cfg(test)]
mod tests {
    /// The generated file of a spec whose source `events` feeds `downstream` (transforms
    /// and sinks sections), with `on_error`.
    fn generated(on_error: &str, downstream: &str) -> String {
        let spec = format!(
            "name: t\nschemas:\n  event: {{ key: string, n: i64 }}\nsources:\n  events: {{ type: file, path: in.jsonl, schema: event, on_error: {on_error} }}\n{downstream}"
        );
        crate::compile_text("t.yaml", &spec)
            .unwrap_or_else(|e| panic!("{e:?}\n{spec}"))
            .main_rs
    }

    fn chained(code: &str) -> bool {
        code.contains("mod chain_events") && code.contains("chain_events::Nodes>") && code.contains("new_chained(")
    }

    #[test]
    fn filters_maps_and_explodes_into_json_and_lines_files_are_a_chain() {
        let code = generated(
            "dead_letter",
            "transforms:\n  big: { input: events, filter: n > 3, map: { line: key } }\n  parts:\n    input: events\n    explode:\n      part: split(key, \"-\")\nsinks:\n  a: { type: file, input: big, path: a.txt, format: lines }\n  b: { type: stdout, input: parts }\n  c: { type: file, input: events, path: c.jsonl }\n",
        );
        assert!(chained(&code), "{code}");
        assert!(chained(&generated(
            "drop",
            "sinks:\n  c: { type: file, input: events, path: c.jsonl }\n"
        )));
    }

    #[test]
    fn a_window_a_csv_file_a_broker_or_on_error_fail_anywhere_downstream_is_no_chain() {
        let json_too = "  j: { type: file, input: events, path: j.jsonl }\n";
        for (on_error, downstream) in [
            ("fail", format!("sinks:\n{json_too}")),
            ("dead_letter", format!("sinks:\n{json_too}  c: {{ type: file, input: events, path: c.csv, format: csv }}\n")),
            (
                "dead_letter",
                format!("windows:\n  w: {{ input: events, key: key, tumbling: 10s, aggregate: {{ count: count() }} }}\nsinks:\n{json_too}  o: {{ type: file, input: w, path: o.jsonl }}\n"),
            ),
            (
                "dead_letter",
                format!("sinks:\n{json_too}  k: {{ type: kafka, input: events, brokers: \"localhost:9092\", topic: t }}\n"),
            ),
        ] {
            let code = generated(on_error, &downstream);
            assert!(!code.contains("mod chain_") && !code.contains("new_chained"), "{downstream}\n{code}");
        }
    }
}

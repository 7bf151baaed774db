//! The file: header attributes, pipeline info, records, fused flow
//! functions (one per source and transform), the `Sinks` and `Job` structs
//! and `main`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::expr::ExprGen;
use super::ident::{prefixed, type_ident};
use super::{records, sinks, sources};
use crate::ir::{Ir, IrFormat, IrTransform, Node, SinkInput};
use crate::types::RecordType;

pub fn file(ir: &Ir) -> TokenStream {
    let mut exprs = ExprGen::default();
    let info = pipeline_info(ir);
    let structs = ir.records.iter().map(|r| records::record_struct(r));
    let format_impls = format_impls(ir);
    let generator_statics = ir.sources.iter().filter_map(sources::generator_statics);
    let source_flows: Vec<TokenStream> = ir
        .sources
        .iter()
        .map(|s| flow_fn(&s.name, &format!("sources.{}", s.name), &s.record, &s.outputs, ir))
        .collect();
    let transform_fns: Vec<TokenStream> = ir.transforms.iter().map(|t| transform_fns(t, ir, &mut exprs)).collect();
    let regexes = exprs.regexes.iter().enumerate().map(|(i, pattern)| {
        let name = format_ident!("RE_{}", i);
        quote!(static #name: LazyRegex = LazyRegex::new(#pattern);)
    });
    let sinks_struct = sinks_struct(ir);
    let job = job(ir);
    quote! {
        #![allow(unused, clippy::all, non_snake_case, non_camel_case_types)]
        use rill_runtime::codegen::*;

        #info
        #(#structs)*
        #(#format_impls)*
        #(#generator_statics)*
        #(#regexes)*
        #(#source_flows)*
        #(#transform_fns)*
        #sinks_struct
        #job
    }
}

fn pipeline_info(ir: &Ir) -> TokenStream {
    let name = &ir.name;
    let hash = &ir.spec_hash;
    let settings = ir.settings.iter().map(|s| {
        let (key, default, help) = (&s.key, &s.default, &s.help);
        quote!(SettingDef { key: #key, default: #default, help: #help })
    });
    quote! {
        static PIPELINE: PipelineInfo = PipelineInfo {
            name: #name,
            spec_hash: #hash,
            settings: &[#(#settings),*],
        };
    }
}

/// CSV and lines impls, once per record that a csv/lines source or sink uses.
fn format_impls(ir: &Ir) -> Vec<TokenStream> {
    let mut csv: Vec<&RecordType> = Vec::new();
    let mut lines: Vec<&RecordType> = Vec::new();
    let uses = ir
        .sources
        .iter()
        .map(|s| (s.format, &*s.record))
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
        .collect()
}

/// Calls that hand `rec` to every downstream node.
fn forward(outputs: &[Node], ir: &Ir) -> Vec<TokenStream> {
    outputs
        .iter()
        .map(|node| match node {
            Node::Transform(t) => {
                let f = prefixed("flow_", &ir.transforms[*t].name);
                quote!(#f(rec, out)?;)
            }
            Node::Sink(s) => {
                let field = prefixed("sink_", &ir.sinks[*s].name);
                quote!(out.#field.send(rec)?;)
            }
        })
        .collect()
}

/// `flow_<source>`: what happens to each decoded record of a source.
fn flow_fn(name: &str, component: &str, record: &RecordType, outputs: &[Node], ir: &Ir) -> TokenStream {
    let f = prefixed("flow_", name);
    let ty = type_ident(&record.rust_name);
    let doc = format!(" Every record decoded by `{component}`.");
    let calls = forward(outputs, ir);
    quote! {
        #[doc = #doc]
        #[inline]
        fn #f(rec: &#ty, out: &mut Sinks) -> Result<(), RecordError> {
            #(#calls)*
            Ok(())
        }
    }
}

/// A transform: its filter and map as small fallible functions, and its
/// `flow_` function that applies them and forwards the result.
fn transform_fns(t: &IrTransform, ir: &Ir, exprs: &mut ExprGen) -> TokenStream {
    let component = format!("transforms.{}", t.name);
    let input = type_ident(&t.input.rust_name);
    let mut helpers = TokenStream::new();
    let mut body = TokenStream::new();
    if let Some(filter) = &t.filter {
        let f = prefixed("filter_", &t.name);
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
                return Ok(());
            }
        });
    }
    if let Some((output, field_exprs)) = &t.map {
        let f = prefixed("map_", &t.name);
        let out_ty = type_ident(&output.rust_name);
        let fields = output.fields.iter().zip(field_exprs).map(|(field, e)| {
            let name = super::ident::ident(&field.name);
            let code = exprs.owned(e);
            quote!(#name: #code,)
        });
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
    let flow = prefixed("flow_", &t.name);
    let calls = forward(&t.outputs, ir);
    let doc = format!(" `{component}`: apply it and forward the result.");
    quote! {
        #helpers
        #[doc = #doc]
        #[inline]
        fn #flow(rec: &#input, out: &mut Sinks) -> Result<(), RecordError> {
            #body
            #(#calls)*
            Ok(())
        }
    }
}

fn sinks_struct(ir: &Ir) -> TokenStream {
    let fields = ir.sinks.iter().filter_map(|s| {
        let ty = sinks::output_type(s)?;
        let name = prefixed("sink_", &s.name);
        Some(quote!(#name: #ty,))
    });
    let flushes = ir
        .sinks
        .iter()
        .filter(|s| matches!(s.input, SinkInput::Records(_)))
        .map(|s| {
            let name = prefixed("sink_", &s.name);
            quote!(self.#name.flush()?;)
        });
    quote! {
        /// Every output of the pipeline, and its dead letters.
        struct Sinks {
            #(#fields)*
            dead_letters: DeadLetters,
        }

        impl Outputs for Sinks {
            fn dead_letters(&mut self) -> &mut DeadLetters {
                &mut self.dead_letters
            }
            fn flush(&mut self) -> Result<(), RunError> {
                #(#flushes)*
                self.dead_letters.flush()
            }
        }
    }
}

fn job(ir: &Ir) -> TokenStream {
    let source_fields = ir.sources.iter().map(|s| {
        let name = prefixed("source_", &s.name);
        let ty = sources::source_type(s);
        quote!(#name: #ty,)
    });
    let polls = ir.sources.iter().map(|s| {
        let name = prefixed("source_", &s.name);
        let flow = prefixed("flow_", &s.name);
        quote!(step = step.and(Step::from(self.#name.poll(&mut self.sinks, #flow)?));)
    });
    let source_inits = ir.sources.iter().map(|s| {
        let name = prefixed("source_", &s.name);
        let init = sources::construct(s);
        quote!(#name: #init,)
    });
    let sink_inits = ir
        .sinks
        .iter()
        .filter(|s| matches!(s.input, SinkInput::Records(_)))
        .map(|s| {
            let name = prefixed("sink_", &s.name);
            let init = sinks::construct(s);
            quote!(#name: #init,)
        });
    let dead_letter_sinks: Vec<TokenStream> = ir
        .sinks
        .iter()
        .filter(|s| matches!(s.input, SinkInput::DeadLetters))
        .map(sinks::raw_sink)
        .collect();
    let dead_letters = if dead_letter_sinks.is_empty() {
        quote!(DeadLetters::stderr())
    } else {
        quote!(DeadLetters::to_sinks(vec![#(#dead_letter_sinks),*]))
    };
    quote! {
        /// The running pipeline: its sources and its sinks.
        struct Job {
            #(#source_fields)*
            sinks: Sinks,
        }

        impl Pipeline for Job {
            fn step(&mut self) -> Result<Step, RunError> {
                let mut step = Step::Finished;
                // Each poll flushes the sinks it wrote to.
                #(#polls)*
                Ok(step)
            }
            fn close(&mut self) -> Result<(), RunError> {
                self.sinks.flush()
            }
        }

        fn main() -> std::process::ExitCode {
            run(&PIPELINE, |ctx| {
                let sinks = Sinks {
                    #(#sink_inits)*
                    dead_letters: #dead_letters,
                };
                Ok(Job {
                    #(#source_inits)*
                    sinks,
                })
            })
        }
    }
}

//! Operators (transforms, windows, tables, patterns, joins), in topological order: each gets its input
//! record type from upstream, is checked by its own pass, and learns which sources
//! feed it (its watermark is their minimum).

use std::rc::Rc;

use super::graph::{Graph, Upstream};
use super::records::Schemas;
use super::{joins, patterns, stream_joins, tables, transforms, windows, Cx};
use crate::diagnostics::SpecError;
use crate::ir::{IrOperator, IrOperatorKind, IrSource, IrTime};
use crate::spec::{OperatorSpec, Spec};
use crate::types::RecordType;

/// One entry per spec operator; `None` where it has errors or its inputs do.
pub fn check(
    spec: &Spec,
    graph: &Graph,
    sources: &[Option<IrSource>],
    schemas: &Schemas,
    cx: &mut Cx,
) -> Vec<Option<IrOperator>> {
    let mut out: Vec<Option<IrOperator>> = vec![None; spec.operators.len()];
    for &t in &graph.order {
        let named = &spec.operators[t];
        let (name, section) = (named.name.as_str(), named.spec.section());
        let inputs = &graph.operator_inputs[t];
        let of_streams = matches!(&named.spec, OperatorSpec::Join(j) if j.of_streams());
        let side = |s: &'static str| {
            [section, name]
                .into_iter()
                .chain(of_streams.then_some(s))
                .collect::<Vec<_>>()
        };
        let Some(input) = input_record(name, &side("left"), inputs, sources, &out, cx) else {
            continue;
        };
        let right = if of_streams {
            let Some(right) = input_record(name, &side("right"), &graph.right_inputs[t], sources, &out, cx) else {
                continue;
            };
            Some(right)
        } else {
            None
        };
        let all_inputs: Vec<Upstream> = graph.inputs_of(t).copied().collect();
        let time_sources = time_sources(&all_inputs, &out);
        let kind = match &named.spec {
            OperatorSpec::Join(s) if of_streams => {
                let late_read = graph.reads_late(t);
                let right = right.as_ref().unwrap_or(&input);
                stream_joins::stream_join(name, s, &input, right, late_read, cx).map(IrOperatorKind::StreamJoin)
            }
            OperatorSpec::Transform(s) => transforms::transform(name, s, &input, cx).map(IrOperatorKind::Transform),
            OperatorSpec::Window(s) => {
                let late_read = graph.reads_late(t);
                windows::window(name, s, &input, late_read, cx).map(IrOperatorKind::Window)
            }
            OperatorSpec::Table(s) => tables::table(name, s, &input, cx).map(IrOperatorKind::Table),
            OperatorSpec::Pattern(s) => {
                let late_read = graph.reads_late(t);
                patterns::pattern(name, s, &input, late_read, cx).map(IrOperatorKind::Pattern)
            }
            OperatorSpec::Join(s) => {
                let table = graph.lookup_tables[t].and_then(|i| out[i].as_ref());
                joins::join(name, s, &input, spec, schemas, table, cx).map(IrOperatorKind::Join)
            }
        };
        let Some(kind) = kind else { continue };
        if !matches!(kind, IrOperatorKind::Transform(_) | IrOperatorKind::Join(_))
            && !one_kind_of_time(name, &side("right"), &time_sources, sources, cx)
        {
            continue;
        }
        out[t] = Some(IrOperator {
            name: name.to_string(),
            stem: cx.names.stem(name),
            input,
            kind,
            outputs: Vec::new(),
            late_outputs: Vec::new(),
            time_sources,
        });
    }
    out
}

/// The sources upstream of an operator, in index order.
fn time_sources(inputs: &[Upstream], operators: &[Option<IrOperator>]) -> Vec<usize> {
    let mut all: Vec<usize> = inputs
        .iter()
        .flat_map(|up| match *up {
            Upstream::Source(i) => vec![i],
            Upstream::Operator(i) | Upstream::Late(i) => operators[i]
                .as_ref()
                .map(|o| o.time_sources.clone())
                .unwrap_or_default(),
            Upstream::DeadLetters | Upstream::Unreadable => Vec::new(),
        })
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// A window or table cannot mix event time and processing time: their clocks are unrelated.
/// (`at`: the mapping whose `input:` the error points at: the component's, or a join's
/// right side's.)
fn one_kind_of_time(
    name: &str,
    at: &[&str],
    time_sources: &[usize],
    sources: &[Option<IrSource>],
    cx: &mut Cx,
) -> bool {
    let modes: Vec<(bool, &str)> = time_sources
        .iter()
        .filter_map(|&i| sources[i].as_ref())
        .map(|s| (matches!(s.time, IrTime::Event { .. }), s.name.as_str()))
        .collect();
    let Some(&(first_event, first)) = modes.first() else {
        return true;
    };
    let Some(&(_, other)) = modes.iter().find(|(event, _)| *event != first_event) else {
        return true;
    };
    let (event, processing) = if first_event { (first, other) } else { (other, first) };
    let path: Vec<&str> = at.iter().copied().chain(["input"]).collect();
    let at = cx.value(&path);
    cx.error(SpecError::mixed_time(name, &at, event, processing));
    false
}

/// The record type flowing out of an upstream, if it is known.
pub fn upstream_record(
    up: Upstream,
    sources: &[Option<IrSource>],
    operators: &[Option<IrOperator>],
) -> Option<Rc<RecordType>> {
    match up {
        Upstream::Source(i) => sources[i].as_ref().map(|s| s.record.clone()),
        Upstream::Operator(i) => operators[i].as_ref().map(|t| t.output().clone()),
        Upstream::Late(i) => operators[i].as_ref().map(|t| t.late_record().clone()),
        Upstream::DeadLetters | Upstream::Unreadable => None,
    }
}

/// The single record type of a component's inputs (those of the `input:` in the
/// mapping at `at`); all inputs must agree.
pub fn input_record(
    name: &str,
    at: &[&str],
    inputs: &[Upstream],
    sources: &[Option<IrSource>],
    operators: &[Option<IrOperator>],
    cx: &mut Cx,
) -> Option<Rc<RecordType>> {
    let records: Vec<Rc<RecordType>> = inputs
        .iter()
        .map(|u| upstream_record(*u, sources, operators))
        .collect::<Option<_>>()?;
    let first = records.first()?.clone();
    for (i, r) in records.iter().enumerate().skip(1) {
        if r.rust_name != first.rust_name {
            let index = i.to_string();
            let path: Vec<&str> = at.iter().copied().chain(["input", &index]).collect();
            let at = cx.value(&path);
            cx.error(SpecError::input_mismatch(
                name,
                &at,
                &r.display,
                &first.display,
                Some("every input must carry the same record type: sources with the same `schema:`, or the output of the same transform".into()),
            ));
            return None;
        }
    }
    Some(first)
}

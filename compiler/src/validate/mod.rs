//! Validation: check the spec and build the [`Ir`].
//!
//! Every pass runs even when an earlier one found problems, so one
//! `rill check` reports every error at once. A component whose own checks
//! fail is left out of later passes instead of stopping them.

mod aggregation;
mod graph;
mod joins;
mod names;
mod operators;
mod patterns;
mod records;
mod secrets;
mod sinks;
mod sources;
mod stream_joins;
mod tables;
pub(crate) mod transforms;
mod windows;

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use crate::diagnostics::SpecError;
use crate::ir::{
    Ir, IrDelivery, IrJoin, IrLookup, IrOperator, IrOperatorKind, IrSetting, IrSink, IrSource, Node, SinkInput,
};
use crate::names::Names;
use crate::spec::duration::parse_millis;
use crate::spec::spans::{span_in_scalar, Span, SpanIndex};
use crate::spec::{self, Setting, Spec};
use crate::types::Type;
use graph::Upstream;
pub(crate) use sources::max_record_bytes;
pub(crate) use transforms::expression;

/// The outcome of checking a spec: the IR when there are no errors, and
/// every problem (errors and warnings) either way.
pub struct Checked {
    pub ir: Option<Ir>,
    pub problems: Vec<SpecError>,
}

/// Load and validate spec text.
pub fn check_text(text: &str) -> Checked {
    let loaded = spec::load(text);
    if loaded.fatal {
        return Checked {
            ir: None,
            problems: loaded.errors,
        };
    }
    let mut cx = Cx {
        text,
        spans: &loaded.spans,
        errors: loaded.errors,
        settings: Vec::new(),
        features: BTreeSet::new(),
        names: Names::default(),
    };
    let ir = build_ir(&loaded.spec, &mut cx);
    // A field whose type could not be read still exists: naming it is not a second mistake.
    let unreadable = &loaded.spec.unreadable_fields;
    cx.errors
        .retain(|e| !matches!(e, SpecError::UnknownExprField { name, .. } if unreadable.contains(name)));
    let has_errors = cx.errors.iter().any(|e| !e.is_warning());
    Checked {
        ir: if has_errors { None } else { ir },
        problems: cx.errors,
    }
}

/// What every pass shares: the text, its spans, and the problems so far.
pub struct Cx<'a> {
    pub text: &'a str,
    pub spans: &'a SpanIndex,
    pub errors: Vec<SpecError>,
    pub settings: Vec<IrSetting>,
    pub features: BTreeSet<&'static str>,
    /// Every generated Rust name, handed out once.
    pub names: Names,
}

impl Cx<'_> {
    pub fn error(&mut self, e: SpecError) {
        self.errors.push(e);
    }
    pub fn key(&self, path: &[&str]) -> Span {
        self.spans.key(path)
    }
    pub fn value(&self, path: &[&str]) -> Span {
        self.spans.value(path)
    }

    /// A span locator for an expression held in the scalar at `path`.
    pub fn expr_locator<'b>(
        &'b self,
        path: &[&str],
        expr_text: &'b str,
    ) -> impl Fn(&std::ops::Range<usize>) -> Span + 'b {
        let scalar = self.value(path);
        let text = self.text;
        move |r: &std::ops::Range<usize>| span_in_scalar(text, &scalar, expr_text, r)
    }

    /// A duration in the spec at `path`, in ms; reported where it is when it does not
    /// parse, or is zero and `positive` is asked.
    pub fn duration(&mut self, path: &[&str], text: &str, positive: bool) -> Option<i64> {
        let reason = match parse_millis(text) {
            Ok(0) if positive => "must be longer than 0".to_string(),
            Ok(ms) => match i64::try_from(ms) {
                Ok(ms) => return Some(ms),
                Err(_) => "too long".to_string(),
            },
            Err(reason) => reason,
        };
        let at = self.value(path);
        self.error(SpecError::bad_duration(text, &reason, &at));
        None
    }

    /// A connector's URL at `path` (`text`, as known now) cannot be used: says why, where.
    pub fn bad_url(&mut self, path: &[&str], text: &str, problem: &str, help: &str) {
        let span = self.value(path);
        let message = match text {
            "" => problem.to_string(),
            text => format!("`{text}`: {problem}"),
        };
        self.error(SpecError::invalid_value("url", message, &span, Some(help.into())));
    }

    /// A size above zero, compiled in, at `path` (`default` when not given); reported
    /// where it is when it does not parse.
    pub fn size(&mut self, path: &[&str], text: Option<&crate::spec::Setting>, default: u64) -> Option<u64> {
        let Some(crate::spec::Setting(text)) = text else {
            return Some(default);
        };
        if text.contains("${") {
            let span = self.value(path);
            let option = path.last().copied().unwrap_or_default();
            self.error(SpecError::compiled_in(option, text, &span, None));
            return None;
        }
        let parsed = crate::spec::size::parse_bytes(text).and_then(|bytes| match bytes {
            0 => Err("must be more than 0".to_string()),
            bytes => Ok(bytes),
        });
        match parsed {
            Ok(bytes) => Some(bytes),
            Err(reason) => {
                let span = self.value(path);
                self.error(SpecError::bad_size(text, &reason, &span));
                None
            }
        }
    }

    /// Register the value at `path`, resolved at start, and return its key (the path
    /// joined with `.`). `name` is what the value is (an option, or the client
    /// property it becomes): it decides whether the value is a secret, which must be
    /// exactly `${VAR}` (see [`secrets`]); a URL's password is checked whatever the name.
    pub fn setting(&mut self, path: &[&str], name: &str, value: &str, help: &str) -> String {
        let mut secret = false;
        if secrets::is_secret_name(name) {
            secret = true;
            if let Err(problem) = secrets::secret_variable(value) {
                let at = self.value(path);
                let option = path.last().copied().unwrap_or_default();
                self.error(SpecError::secret_in_spec(
                    option,
                    problem.message(),
                    &at,
                    "write exactly `${VAR}` (no default, nothing around it) and set VAR where the binary runs",
                ));
            }
        }
        for (password, from_env) in secrets::url_passwords(value) {
            secret = true;
            if !from_env {
                let at = self.expr_locator(path, value)(&password);
                let option = path.last().copied().unwrap_or_default();
                self.error(SpecError::secret_in_spec(
                    option,
                    "a password in a URL would be compiled into the binary",
                    &at,
                    "take it from the environment: `user:${PASSWORD}@host`",
                ));
            }
        }
        let key = path.join(".");
        self.settings.push(IrSetting {
            key: key.clone(),
            default: value.to_string(),
            help: help.to_string(),
            secret,
        });
        key
    }
}

/// Checks a number setting now where its value is known: a literal, or the default of
/// a sole `${VAR:-default}`. Empty means "none" (unbounded) where `empty_ok`.
pub(crate) fn number_setting(
    value: &Setting,
    path: &[&str],
    valid: impl Fn(&str) -> bool,
    what: &str,
    empty_ok: bool,
    cx: &mut Cx,
) -> bool {
    let known = value.known_now();
    let fine = match known {
        None => true,
        Some("") => empty_ok,
        Some(text) => valid(text),
    };
    if fine {
        return true;
    }
    let at = cx.value(path);
    cx.error(SpecError::invalid_value(
        path.last().copied().unwrap_or_default(),
        format!("expected {what}"),
        &at,
        Some("or `${VAR}` / `${VAR:-default}` to set it when the binary starts".into()),
    ));
    false
}

/// Marks each table a lookup join reads ([`IrTable::looked_up`]).
fn mark_looked_up_tables(operators: &mut [IrOperator]) {
    let read: Vec<String> = operators
        .iter()
        .filter_map(|op| match &op.kind {
            IrOperatorKind::Join(IrJoin {
                source: IrLookup::Table { stem },
                ..
            }) => Some(stem.clone()),
            _ => None,
        })
        .collect();
    for op in operators {
        if let IrOperatorKind::Table(table) = &mut op.kind {
            table.looked_up = read.contains(&op.stem);
        }
    }
}

/// Marks each window and table whose rows go only to sinks of their own that cannot
/// refuse one ([`IrAggregation::rows_to_own_sinks`]): no other input, and no other sink
/// writing to the same stream (two sinks on stdout).
fn mark_rows_to_own_sinks(sources: &[IrSource], operators: &mut [IrOperator], sinks: &[IrSink]) {
    let sharing = sinks.iter().filter(|s| s.kind.shares_its_stream()).count();
    let mut readers = vec![0usize; sinks.len()];
    let edges = sources.iter().flat_map(|s| &s.outputs).chain(
        operators
            .iter()
            .flat_map(|op| op.outputs.iter().chain(&op.late_outputs)),
    );
    for node in edges {
        if let Node::Sink(s) = node {
            readers[*s] += 1;
        }
    }
    for op in operators {
        if op.aggregation().is_none() {
            continue;
        }
        let encodable = !op.output().fields.iter().any(|f| may_hold_float(&f.ty));
        let own_sinks = !op.outputs.is_empty()
            && op.outputs.iter().all(|node| match node {
                Node::Sink(s) => {
                    let sink = &sinks[*s];
                    readers[*s] == 1
                        && (!sink.kind.shares_its_stream() || sharing == 1)
                        && matches!(sink.delivery, IrDelivery::Stream)
                        && matches!(sink.input, SinkInput::Records(_))
                }
                Node::Operator(_) | Node::JoinRight(_) => false,
            });
        if let Some(aggregation) = op.aggregation_mut() {
            aggregation.rows_to_own_sinks = own_sinks && encodable;
        }
    }
}

/// A float anywhere in a value of `ty`: a JSON sink cannot encode an infinite one.
fn may_hold_float(ty: &Type) -> bool {
    match ty {
        Type::F64 => true,
        Type::Optional(inner) | Type::List(inner) => may_hold_float(inner),
        Type::Record(record) => record.fields.iter().any(|f| may_hold_float(&f.ty)),
        Type::String | Type::Bool | Type::I64 | Type::U64 | Type::Timestamp => false,
    }
}

fn build_ir(spec: &Spec, cx: &mut Cx) -> Option<Ir> {
    names::check(spec, cx);
    let schemas = records::from_schemas(spec, &mut cx.names);
    let sources = sources::check(spec, &schemas, cx);
    let graph = graph::resolve(spec, cx);
    let operators = operators::check(spec, &graph, &sources, &schemas, cx);
    let sinks = sinks::check(spec, &graph, &sources, &operators, cx);
    graph::warn_unused(spec, &graph, cx);
    if spec.sources.is_empty() && !spec.unreadable.iter().any(|(s, _)| *s == "sources") {
        let at = cx.value(&[]);
        cx.error(SpecError::no_sources(&at));
    }
    // From here on, every component must have checked out.
    let mut sources: Vec<IrSource> = sources.into_iter().collect::<Option<_>>()?;
    if operators.iter().any(Option::is_none) {
        return None;
    }
    let sinks: Vec<IrSink> = sinks.into_iter().collect::<Option<_>>()?;
    // Lay operators out in topological order and wire every edge.
    let mut ir_index = vec![0; operators.len()];
    for (position, &t) in graph.order.iter().enumerate() {
        ir_index[t] = position;
    }
    // Every operator checked out, so none was on a cycle: `order` is a permutation.
    let mut slots = operators;
    let mut ordered: Vec<IrOperator> = graph.order.iter().filter_map(|&t| slots[t].take()).collect();
    let edges = graph
        .operator_inputs
        .iter()
        .enumerate()
        .flat_map(|(t, ups)| ups.iter().map(move |u| (*u, Node::Operator(t))))
        .chain(
            graph
                .right_inputs
                .iter()
                .enumerate()
                .flat_map(|(t, ups)| ups.iter().map(move |u| (*u, Node::JoinRight(t)))),
        )
        .chain(
            graph
                .sink_inputs
                .iter()
                .enumerate()
                .flat_map(|(s, ups)| ups.iter().map(move |u| (*u, Node::Sink(s)))),
        );
    for (up, node) in edges {
        let node = match node {
            Node::Operator(t) => Node::Operator(ir_index[t]),
            Node::JoinRight(t) => Node::JoinRight(ir_index[t]),
            sink => sink,
        };
        match up {
            Upstream::Source(i) => sources[i].outputs.push(node),
            Upstream::Operator(i) => ordered[ir_index[i]].outputs.push(node),
            Upstream::Late(i) => ordered[ir_index[i]].late_outputs.push(node),
            Upstream::DeadLetters | Upstream::Unreadable => {}
        }
    }
    mark_looked_up_tables(&mut ordered);
    mark_rows_to_own_sinks(&sources, &mut ordered, &sinks);
    let mut records = Vec::new();
    records::collect(&sources, &ordered, &mut records);
    Some(Ir {
        name: spec.name.clone(),
        spec_hash: spec_hash(cx.text),
        records,
        sources,
        operators: ordered,
        sinks,
        settings: std::mem::take(&mut cx.settings),
        features: std::mem::take(&mut cx.features),
    })
}

/// Short hash of the spec text, for `--version`.
pub fn spec_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

//! Every mistake rill can find in a spec, as one miette diagnostic enum.
//!
//! Each variant has a code, a label at the exact span and help text. The
//! source text is attached once, by the caller (see [`Report`]).

use miette::{Diagnostic, SourceSpan};
use thiserror::Error;

use crate::source::SpecSource;
use crate::spec::spans::Span;

fn at(span: &Span) -> SourceSpan {
    SourceSpan::new(span.start.into(), span.end.saturating_sub(span.start))
}

/// Words people bring from other stream processors (Flink, Spark, SQL) and
/// what rill calls the same thing. Used only when the rill word is a valid choice.
const SYNONYMS: &[(&str, &str)] = &[
    ("sliding", "hopping"),
    ("slide", "hopping"),
    ("hop", "hopping"),
    ("fixed", "tumbling"),
    ("tumble", "tumbling"),
    ("window", "tumbling"),
    ("every", "tumbling"),
    ("size", "tumbling"),
    ("gap", "session"),
    ("sessions", "session"),
    ("where", "filter"),
    ("select", "map"),
    ("project", "map"),
    ("flat_map", "explode"),
    ("flatten", "explode"),
    ("unnest", "explode"),
    ("from", "input"),
    ("inputs", "input"),
    ("source", "input"),
    ("group_by", "key"),
    ("partition_by", "key"),
    ("keys", "key"),
    ("key_by", "key"),
    ("aggregates", "aggregate"),
    ("aggregations", "aggregate"),
    ("agg", "aggregate"),
    ("lateness", "allowed_lateness"),
    ("late_after", "allowed_lateness"),
    ("timestamp", "event_time"),
    ("time_field", "event_time"),
    ("watermarks", "watermark"),
    ("topic", "topics"),
    ("bootstrap_servers", "brokers"),
    ("servers", "brokers"),
    ("group", "group_id"),
    ("consumer_group", "group_id"),
    ("file", "path"),
    ("codec", "format"),
    ("errors", "on_error"),
];

/// Renders "did you mean `x`?" when a close candidate (or a known synonym) exists.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let candidates: Vec<&str> = candidates.into_iter().collect();
    let synonym = SYNONYMS
        .iter()
        .find(|(other, ours)| *other == word && candidates.contains(ours));
    if let Some((_, ours)) = synonym {
        return Some(ours.to_string());
    }
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(word, c);
        if score > 0.8 && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c.to_string())
}

/// "did you mean `x`? valid: a, b, c" — the help line most diagnostics share.
pub fn choices_help(word: &str, candidates: &[&str], noun: &str) -> String {
    help_with(did_you_mean(word, candidates.iter().copied()), candidates, noun)
}

/// At most this many choices are listed in a help line: a spec with 20,000 components
/// must not repeat all their names under each of its mistakes.
const LISTED: usize = 20;

fn help_with(suggestion: Option<String>, candidates: &[&str], noun: &str) -> String {
    help_listing(suggestion, candidates, candidates.len(), noun)
}

/// [`help_with`] for the first of `total` candidates.
fn help_listing(suggestion: Option<String>, first: &[&str], total: usize, noun: &str) -> String {
    let list = if total == 0 {
        format!("there are no {noun}s defined")
    } else {
        format!("valid {noun}s: {}", listing_of(first, total))
    };
    match suggestion {
        Some(s) => format!("did you mean `{s}`? {list}"),
        None => list,
    }
}

/// `a, b, c` of the first of `total` names, or the first [`LISTED`] of them and how
/// many there are in all.
fn listing_of(first: &[&str], total: usize) -> String {
    if total <= LISTED && first.len() == total {
        return first.join(", ");
    }
    format!("{}, … ({total} in all)", first[..first.len().min(LISTED)].join(", "))
}

/// Names asked for "did you mean" many times (every component's, for every unknown
/// input): indexed by first character and length once, so each question compares the
/// word with a bounded number of names instead of all of them.
///
/// A component is never offered as its own input: the questions asked for component
/// `own` leave out `own` and `own.late` (which would only suggest a cycle).
pub struct Names<'a> {
    all: Vec<&'a str>,
    set: std::collections::HashSet<&'a str>,
    by_start: std::collections::HashMap<(char, usize), Vec<&'a str>>,
}

impl<'a> Names<'a> {
    /// Below this many names every one is compared.
    const SMALL: usize = 200;
    /// At most this many names are compared for one word.
    const COMPARED: usize = 200;

    pub fn new(all: Vec<&'a str>) -> Self {
        let mut by_start: std::collections::HashMap<(char, usize), Vec<&'a str>> = Default::default();
        if all.len() > Self::SMALL {
            for name in &all {
                if let Some(first) = name.chars().next() {
                    by_start.entry((first, name.chars().count())).or_default().push(name);
                }
            }
        }
        let set = all.iter().copied().collect();
        Names { all, set, by_start }
    }

    fn is_own(name: &str, own: &str) -> bool {
        name == own || name.strip_suffix(".late") == Some(own)
    }

    /// The first names other than `own`'s, enough for a listing, and how many there are.
    fn others(&self, own: &str) -> (Vec<&'a str>, usize) {
        let first = self
            .all
            .iter()
            .copied()
            .filter(|n| !Self::is_own(n, own))
            .take(LISTED + 1)
            .collect();
        let own_late = format!("{own}.late");
        let mine = usize::from(self.set.contains(own)) + usize::from(self.set.contains(own_late.as_str()));
        (first, self.all.len() - mine)
    }

    /// The closest name to `word`, other than `own`'s. Among many names, only those
    /// starting with the same character and at most two characters longer or shorter
    /// are compared.
    pub fn did_you_mean(&self, word: &str, own: &str) -> Option<String> {
        if self.all.len() <= Self::SMALL {
            return did_you_mean(word, self.all.iter().copied().filter(|n| !Self::is_own(n, own)));
        }
        let first = word.chars().next()?;
        let len = word.chars().count();
        let near = (len.saturating_sub(2)..=len + 2)
            .filter_map(|l| self.by_start.get(&(first, l)))
            .flatten()
            .copied()
            .filter(|n| !Self::is_own(n, own))
            .take(Self::COMPARED);
        did_you_mean(word, near)
    }
}

/// A mistake in a spec.
#[derive(Debug, Error, Diagnostic, Clone)]
pub enum SpecError {
    /// The text is not valid YAML.
    #[error("invalid YAML: {message}")]
    #[diagnostic(
        code(rill::yaml_syntax),
        help("inside `{{ … }}`, quote the expression (or any value) that contains `${{VAR}}`, `:` or `,`; otherwise check indentation, quotes and brackets near this point")
    )]
    YamlSyntax {
        message: String,
        #[label("here")]
        span: SourceSpan,
    },

    /// A value has the wrong YAML type or shape.
    #[error("invalid value for `{field}`: {message}")]
    #[diagnostic(code(rill::invalid_value))]
    InvalidValue {
        field: String,
        message: String,
        #[label("{message}")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    /// A number that is not finite (`.nan`, `.inf`, `1e400`) where a real number is needed.
    #[error("`{field}` must be a finite number, found {value}")]
    #[diagnostic(
        code(rill::not_finite),
        help("write an ordinary number, e.g. `0.5` or `1e300`; `.nan` and `.inf` cannot be generated")
    )]
    NotFinite {
        field: String,
        value: String,
        #[label("not a finite number")]
        span: SourceSpan,
    },

    /// A key that this component does not have.
    #[error("unknown field `{field}` in {context}")]
    #[diagnostic(code(rill::unknown_field))]
    UnknownField {
        field: String,
        context: String,
        #[label("not a field of {context}")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    /// A required key is missing.
    #[error("missing field `{field}` in {context}")]
    #[diagnostic(code(rill::missing_field))]
    MissingField {
        field: String,
        context: String,
        #[label("this needs `{field}`")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    /// `type:` names a source or sink kind rill does not have.
    #[error("unknown {kind} type `{ty}`")]
    #[diagnostic(code(rill::unknown_type))]
    UnknownComponentType {
        kind: &'static str,
        ty: String,
        #[label("no such {kind} type")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    /// A component or field name that cannot be used as an identifier.
    #[error("invalid name `{name}`")]
    #[diagnostic(
        code(rill::invalid_name),
        help("names are lower snake_case: a letter or `_`, then letters, digits or `_` (e.g. `hot_readings`)")
    )]
    InvalidName {
        name: String,
        #[label("not a valid name")]
        span: SourceSpan,
    },

    /// Two components (or keys) share a name.
    #[error("`{name}` is defined twice")]
    #[diagnostic(
        code(rill::duplicate_name),
        help(
            "sources, transforms, windows, tables, patterns, joins and sinks share one namespace: rename one of them"
        )
    )]
    DuplicateName {
        name: String,
        #[label("second definition")]
        span: SourceSpan,
        #[label("first defined here")]
        first: SourceSpan,
    },

    /// A source refers to a schema that is not defined.
    #[error("unknown schema `{name}`")]
    #[diagnostic(code(rill::unknown_schema))]
    UnknownSchema {
        name: String,
        #[label("not defined under `schemas:`")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    /// A schema field has a type rill does not know.
    #[error("unknown field type `{ty}`")]
    #[diagnostic(code(rill::unknown_field_type))]
    UnknownFieldType {
        ty: String,
        #[label("not a type")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    /// `input:` names a component that does not exist.
    #[error("unknown input `{input}`")]
    #[diagnostic(code(rill::unknown_input))]
    UnknownInput {
        input: String,
        #[label("no source, transform, window or table is called `{input}`")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    /// A sink is wired as an input.
    #[error("`{input}` is a sink and cannot be an input")]
    #[diagnostic(
        code(rill::sink_as_input),
        help("inputs are sources, transforms, windows and tables; a sink may also read `dead_letter`")
    )]
    SinkAsInput {
        input: String,
        #[label("a sink")]
        span: SourceSpan,
    },

    /// Transforms feed each other in a loop.
    #[error("cycle between transforms: {path}")]
    #[diagnostic(
        code(rill::cycle),
        help("a pipeline is a directed acyclic graph: break the loop by reading from a source")
    )]
    Cycle {
        path: String,
        #[label("this input closes the loop")]
        span: SourceSpan,
    },

    /// A sink or transform without `input:`.
    #[error("`{name}` has no input")]
    #[diagnostic(code(rill::missing_input))]
    MissingInput {
        name: String,
        #[label("add `input: <source, transform, window or table>` here")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    /// A source whose events go nowhere.
    #[error("source `{name}` is not used")]
    #[diagnostic(
        code(rill::unused_source),
        severity(Warning),
        help("no transform or sink reads it; its events are read and discarded")
    )]
    UnusedSource {
        name: String,
        #[label("nothing reads this source")]
        span: SourceSpan,
    },

    /// A transform, window or table whose output goes nowhere.
    #[error("{kind} `{name}` is not used")]
    #[diagnostic(
        code(rill::unused_transform),
        severity(Warning),
        help("no transform, window, table or sink reads its output")
    )]
    UnusedTransform {
        kind: &'static str,
        name: String,
        #[label("nothing reads this {kind}")]
        span: SourceSpan,
    },

    /// A duration that does not parse.
    #[error("invalid duration `{value}`")]
    #[diagnostic(
        code(rill::bad_duration),
        help("a duration is a number with a unit: `250ms`, `2s`, `5m`, `1h`, `1d`, or combined like `1m30s`")
    )]
    BadDuration {
        value: String,
        #[label("{reason}")]
        span: SourceSpan,
        reason: String,
    },

    /// A size (`max_size:`) that does not parse, or is zero.
    #[error("invalid size `{value}`")]
    #[diagnostic(
        code(rill::bad_size),
        help("a size is a number with a unit: `64KiB`, `512MiB`, `1GiB` (powers of 1024), `100MB`, `1GB` (powers of 1000), or bytes: `4096`")
    )]
    BadSize {
        value: String,
        #[label("{reason}")]
        span: SourceSpan,
        reason: String,
    },

    /// `buffer:` on a sink that does not deliver messages to a broker.
    #[error("a `{sink_type}` sink cannot have a disk buffer")]
    #[diagnostic(
        code(rill::buffer_not_supported),
        help("a disk buffer keeps messages while a broker is away: it fits sinks that deliver messages (kafka, mqtt); remove `buffer:` here")
    )]
    BufferNotSupported {
        sink_type: String,
        #[label("this sink writes its records itself")]
        span: SourceSpan,
    },

    /// A format option that does not fit the format or the data.
    #[error("{message}")]
    #[diagnostic(code(rill::format_option))]
    BadFormatOption {
        message: String,
        #[label("here")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    /// An expression that is not valid syntax.
    #[error("invalid expression: {message}")]
    #[diagnostic(
        code(rill::expr_syntax),
        help("expressions use Rust-like syntax: `status == \"ok\" && temperature > 25.0`")
    )]
    ExprSyntax {
        message: String,
        #[label("{message}")]
        span: SourceSpan,
    },

    /// Syntax that parses as Rust but is not part of the expression language.
    #[error("{what} is not allowed in expressions")]
    #[diagnostic(code(rill::expr_unsupported))]
    ExprUnsupported {
        what: String,
        #[label("not allowed")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    /// An expression nested deeper than the language allows.
    #[error("expression nested too deeply")]
    #[diagnostic(code(rill::expr_too_deep))]
    ExprTooDeep {
        #[label("nesting level {level} starts here")]
        span: SourceSpan,
        level: usize,
        #[help]
        help: String,
    },

    /// A function the expression language does not have.
    #[error("unknown function `{name}`")]
    #[diagnostic(code(rill::unknown_function))]
    UnknownFunction {
        name: String,
        #[label("no such function")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    /// A field that the input record does not have.
    #[error("unknown field `{name}` in {record}")]
    #[diagnostic(code(rill::unknown_expr_field))]
    UnknownExprField {
        name: String,
        record: String,
        #[label("not a field of {record}")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    /// Operand or argument types that do not fit.
    #[error("type error: {message}")]
    #[diagnostic(code(rill::type_error))]
    TypeMismatch {
        message: String,
        #[label("{label}")]
        span: SourceSpan,
        label: String,
        #[help]
        help: String,
    },

    /// A regular expression that does not compile.
    #[error("invalid regular expression")]
    #[diagnostic(
        code(rill::bad_regex),
        help("the pattern uses Rust `regex` syntax (https://docs.rs/regex)")
    )]
    BadRegex {
        #[label("{message}")]
        span: SourceSpan,
        message: String,
    },

    /// Inputs of one component with different record types.
    #[error("inputs of `{name}` have different record types")]
    #[diagnostic(code(rill::input_mismatch))]
    InputMismatch {
        name: String,
        #[label("this input produces {found}, the first produces {expected}")]
        span: SourceSpan,
        found: String,
        expected: String,
        #[help]
        help: String,
    },

    /// A window or table fed by sources on event time and on processing time.
    #[error("`{name}` mixes event time and processing time")]
    #[diagnostic(code(rill::mixed_time))]
    MixedTime {
        name: String,
        #[label("`{event}` is on event time, `{processing}` on processing time")]
        span: SourceSpan,
        event: String,
        processing: String,
        #[help]
        help: String,
    },

    /// A section this version of rill does not support yet.
    #[error("`{section}` is not supported yet")]
    #[diagnostic(code(rill::unsupported_section))]
    UnsupportedSection {
        section: String,
        #[label("not supported in this version")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    /// A mapping key that YAML reads as a number, a boolean or null, not as a name.
    #[error("`{raw}` is read by YAML as {reads_as}, not as a name")]
    #[diagnostic(code(rill::non_string_key))]
    NonStringKey {
        raw: String,
        reads_as: &'static str,
        #[label("{reads_as}")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    /// An unquoted expression in a `{ … }` mapping, cut in pieces by a `,`.
    #[error("the expression of `{key}` is cut at a `,`")]
    #[diagnostic(code(rill::unquoted_expression))]
    CutExpression {
        key: String,
        #[label("inside `{{ … }}` a `,` ends the value, so this is read as several keys")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    /// `${VAR}` given for an option that is compiled into the binary.
    #[error("`{field}` is compiled into the binary, so it cannot be `{given}`")]
    #[diagnostic(code(rill::compiled_in))]
    CompiledIn {
        field: String,
        given: String,
        #[label("only known when the binary starts")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    /// A generator option outside the values it can take.
    #[error("generator option `{option}`: {message}")]
    #[diagnostic(code(rill::generator_option))]
    GeneratorOption {
        option: String,
        message: String,
        #[label("{message}")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    /// A password, key or token written in the spec, where it would be compiled into the
    /// binary (a literal, a `${VAR:-default}`, or text around `${VAR}`).
    #[error("`{option}` holds a secret: it must come from the environment")]
    #[diagnostic(code(rill::secret_in_spec))]
    SecretInSpec {
        option: String,
        message: String,
        #[label("{message}")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    /// A spec without any source.
    #[error("the pipeline has no sources")]
    #[diagnostic(
        code(rill::no_sources),
        help(
            "add a `sources:` section, e.g. `sources: {{ demo: {{ type: generator, schema: reading, count: 10 }} }}`"
        )
    )]
    NoSources {
        #[label("pipeline defined here")]
        span: SourceSpan,
    },
}

impl SpecError {
    pub fn yaml_syntax(message: impl Into<String>, span: &Span) -> Self {
        SpecError::YamlSyntax {
            message: message.into(),
            span: at(span),
        }
    }
    pub fn invalid_value(
        field: impl Into<String>,
        message: impl Into<String>,
        span: &Span,
        help: Option<String>,
    ) -> Self {
        let field = field.into();
        let help = help.unwrap_or_else(|| format!("see `{field}` in docs/language.md for the values it takes"));
        SpecError::InvalidValue {
            field,
            message: message.into(),
            span: at(span),
            help,
        }
    }
    pub fn not_finite(field: &str, value: f64, span: &Span) -> Self {
        SpecError::NotFinite {
            field: field.into(),
            // As YAML spells them.
            value: match value {
                v if v.is_nan() => ".nan".into(),
                v if v > 0.0 => ".inf".into(),
                _ => "-.inf".into(),
            },
            span: at(span),
        }
    }
    pub fn unknown_field(field: &str, context: &str, span: &Span, valid: &[&str]) -> Self {
        SpecError::UnknownField {
            field: field.into(),
            context: context.into(),
            span: at(span),
            help: choices_help(field, valid, "field"),
        }
    }
    pub fn missing_field(field: &str, context: &str, span: &Span, help: Option<String>) -> Self {
        SpecError::MissingField {
            field: field.into(),
            context: context.into(),
            span: at(span),
            help: help.unwrap_or_else(|| format!("add `{field}:` to {context}; docs/language.md lists its options")),
        }
    }
    pub fn unknown_component_type(kind: &'static str, ty: &str, span: &Span, valid: &[&str]) -> Self {
        SpecError::UnknownComponentType {
            kind,
            ty: ty.into(),
            span: at(span),
            help: choices_help(ty, valid, &format!("{kind} type")),
        }
    }
    pub fn invalid_name(name: &str, span: &Span) -> Self {
        SpecError::InvalidName {
            name: name.into(),
            span: at(span),
        }
    }
    pub fn duplicate_name(name: &str, span: &Span, first: &Span) -> Self {
        SpecError::DuplicateName {
            name: name.into(),
            span: at(span),
            first: at(first),
        }
    }
    pub fn unknown_schema(name: &str, span: &Span, valid: &[&str]) -> Self {
        SpecError::UnknownSchema {
            name: name.into(),
            span: at(span),
            help: choices_help(name, valid, "schema"),
        }
    }
    pub fn unknown_field_type(ty: &str, span: &Span, valid: &[&str]) -> Self {
        SpecError::UnknownFieldType {
            ty: ty.into(),
            span: at(span),
            help: format!(
                "{}; append `?` for an optional field (`f64?`), or write a mapping for a nested object",
                choices_help(ty, valid, "type")
            ),
        }
    }
    /// `input` of component `own`, which is not among `valid` names.
    pub fn unknown_input(input: &str, own: &str, span: &Span, valid: &Names) -> Self {
        let (first, total) = valid.others(own);
        SpecError::UnknownInput {
            input: input.into(),
            span: at(span),
            help: help_listing(valid.did_you_mean(input, own), &first, total, "input"),
        }
    }
    pub fn sink_as_input(input: &str, span: &Span) -> Self {
        SpecError::SinkAsInput {
            input: input.into(),
            span: at(span),
        }
    }
    pub fn cycle(path: &str, span: &Span) -> Self {
        SpecError::Cycle {
            path: path.into(),
            span: at(span),
        }
    }
    pub fn missing_input(name: &str, span: &Span, valid: &Names) -> Self {
        SpecError::MissingInput {
            name: name.into(),
            span: at(span),
            help: match valid.others(name) {
                (_, 0) => "define a source first".into(),
                (first, total) => format!("possible inputs: {}", listing_of(&first, total)),
            },
        }
    }
    pub fn unused_source(name: &str, span: &Span) -> Self {
        SpecError::UnusedSource {
            name: name.into(),
            span: at(span),
        }
    }
    pub fn unused_transform(kind: &'static str, name: &str, span: &Span) -> Self {
        SpecError::UnusedTransform {
            kind,
            name: name.into(),
            span: at(span),
        }
    }
    pub fn bad_size(value: &str, reason: &str, span: &Span) -> Self {
        SpecError::BadSize {
            value: value.into(),
            reason: reason.into(),
            span: at(span),
        }
    }
    pub fn buffer_not_supported(sink_type: &str, span: &Span) -> Self {
        SpecError::BufferNotSupported {
            sink_type: sink_type.into(),
            span: at(span),
        }
    }
    pub fn bad_duration(value: &str, reason: &str, span: &Span) -> Self {
        SpecError::BadDuration {
            value: value.into(),
            reason: reason.into(),
            span: at(span),
        }
    }
    pub fn bad_format_option(message: impl Into<String>, span: &Span, help: impl Into<String>) -> Self {
        SpecError::BadFormatOption {
            message: message.into(),
            span: at(span),
            help: help.into(),
        }
    }
    pub fn expr_syntax(message: impl Into<String>, span: &Span) -> Self {
        SpecError::ExprSyntax {
            message: message.into(),
            span: at(span),
        }
    }
    pub fn expr_unsupported(what: impl Into<String>, span: &Span, help: impl Into<String>) -> Self {
        SpecError::ExprUnsupported {
            what: what.into(),
            span: at(span),
            help: help.into(),
        }
    }
    pub fn expr_too_deep(span: &Span) -> Self {
        let max = crate::expr::depth::MAX_NESTING;
        SpecError::ExprTooDeep {
            span: at(span),
            level: max + 1,
            help: format!(
                "at most {max} levels of parentheses, calls, `if`s and prefix operators (`!`, `-`); \
                 compute parts in an earlier transform (long flat chains like `a + b + c` are fine)"
            ),
        }
    }
    pub fn unknown_function(name: &str, span: &Span, valid: &[&str]) -> Self {
        let help = match did_you_mean(name, valid.iter().copied()) {
            Some(s) => format!("did you mean `{s}`? see docs/language.md for the function list"),
            None => format!("available functions: {}", valid.join(", ")),
        };
        SpecError::UnknownFunction {
            name: name.into(),
            span: at(span),
            help,
        }
    }
    pub fn unknown_expr_field(name: &str, record: &str, span: &Span, valid: &[&str]) -> Self {
        SpecError::UnknownExprField {
            name: name.into(),
            record: record.into(),
            span: at(span),
            help: choices_help(name, valid, "field"),
        }
    }
    pub fn type_mismatch(
        message: impl Into<String>,
        label: impl Into<String>,
        span: &Span,
        help: Option<String>,
    ) -> Self {
        SpecError::TypeMismatch {
            message: message.into(),
            label: label.into(),
            span: at(span),
            help: help.unwrap_or_else(|| {
                "convert a value where types differ: `to_float(x)`, `to_int(x)`, `to_string(x)`; docs/language.md lists what each operator takes".into()
            }),
        }
    }
    pub fn bad_regex(message: impl Into<String>, span: &Span) -> Self {
        SpecError::BadRegex {
            message: message.into(),
            span: at(span),
        }
    }
    pub fn input_mismatch(name: &str, span: &Span, found: &str, expected: &str, help: Option<String>) -> Self {
        SpecError::InputMismatch {
            name: name.into(),
            span: at(span),
            found: found.into(),
            expected: expected.into(),
            help: help.unwrap_or_else(|| "every input must carry the same record type".into()),
        }
    }
    pub fn mixed_time(name: &str, span: &Span, event: &str, processing: &str) -> Self {
        SpecError::MixedTime {
            name: name.into(),
            span: at(span),
            event: event.into(),
            processing: processing.into(),
            help: format!("give source `{processing}` an `event_time:` field too, so every input shares one clock"),
        }
    }
    pub fn unsupported_section(section: &str, span: &Span, help: impl Into<String>) -> Self {
        SpecError::UnsupportedSection {
            section: section.into(),
            span: at(span),
            help: help.into(),
        }
    }
    pub fn non_string_key(raw: &str, reads_as: &'static str, span: &Span) -> Self {
        SpecError::NonStringKey {
            raw: raw.into(),
            reads_as,
            span: at(span),
            help: format!("quote it, `\"{raw}\"`, if it is meant as text; names start with a letter or `_`"),
        }
    }
    pub fn cut_expression(key: &str, whole: &str, span: &Span) -> Self {
        SpecError::CutExpression {
            key: key.into(),
            span: at(span),
            help: format!(
                "quote the expression: `{key}: \"{}\"`, or write the mapping as a block, one `key: value` per line",
                whole.replace('"', "\\\"")
            ),
        }
    }
    pub fn compiled_in(field: &str, given: &str, span: &Span, valid: Option<Vec<String>>) -> Self {
        let what = match valid {
            Some(valid) if !valid.is_empty() => format!("one of {}", valid.join(", ")),
            _ => "the value itself".to_string(),
        };
        SpecError::CompiledIn {
            field: field.into(),
            given: given.into(),
            span: at(span),
            help: format!(
                "write {what}; only connection settings (brokers, paths, credentials, counts) are read when the binary starts"
            ),
        }
    }
    pub fn generator_option(option: &str, message: impl Into<String>, span: &Span, help: impl Into<String>) -> Self {
        SpecError::GeneratorOption {
            option: option.into(),
            message: message.into(),
            span: at(span),
            help: help.into(),
        }
    }
    pub fn secret_in_spec(option: &str, message: &str, span: &Span, help: &str) -> Self {
        SpecError::SecretInSpec {
            option: option.into(),
            message: message.into(),
            span: at(span),
            help: help.into(),
        }
    }
    pub fn no_sources(span: &Span) -> Self {
        SpecError::NoSources { span: at(span) }
    }

    /// True for problems that do not stop a build.
    pub fn is_warning(&self) -> bool {
        matches!(self, SpecError::UnusedSource { .. } | SpecError::UnusedTransform { .. })
    }

    /// Start offset of the primary label, for ordering reports.
    pub fn offset(&self) -> usize {
        self.labels()
            .and_then(|mut l| l.next())
            .map(|l| l.offset())
            .unwrap_or(0)
    }
}

/// All the problems found in one spec, with its source attached once.
#[derive(Debug, Error, Diagnostic)]
#[error("{summary}")]
pub struct Report {
    summary: String,
    #[source_code]
    source_code: SpecSource,
    #[related]
    pub problems: Vec<SpecError>,
}

impl Report {
    /// Gather problems (sorted by position) under one report for `file`.
    pub fn new(file: &str, text: &str, mut problems: Vec<SpecError>) -> Self {
        problems.sort_by_key(SpecError::offset);
        let errors = problems.iter().filter(|p| !p.is_warning()).count();
        let warnings = problems.len() - errors;
        let summary = match (errors, warnings) {
            (0, w) => format!("{file}: {w} warning{}", plural(w)),
            (e, 0) => format!("{file}: {e} error{}", plural(e)),
            (e, w) => format!("{file}: {e} error{}, {w} warning{}", plural(e), plural(w)),
        };
        Report {
            summary,
            source_code: SpecSource::new(file, text),
            problems,
        }
    }

    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(|p| !p.is_warning())
    }

    /// Render every problem without colour at a fixed width (snapshots, logs).
    pub fn render_plain(&self, width: usize) -> String {
        self.render(width, false)
    }

    /// Render every problem, with or without colour.
    pub fn render(&self, width: usize, color: bool) -> String {
        let theme = if color {
            miette::GraphicalTheme::unicode()
        } else {
            miette::GraphicalTheme::unicode_nocolor()
        };
        let handler = miette::GraphicalReportHandler::new_themed(theme).with_width(width);
        let mut out = String::new();
        for problem in &self.problems {
            let with_source = miette::Report::new(problem.clone()).with_source_code(self.source_code.clone());
            let _ = handler.render_report(&mut out, with_source.as_ref());
        }
        out
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    /// Every variant of `SpecError` comes with help: a `help(…)` in its `#[diagnostic]`,
    /// or a `#[help]` field that is a `String` (never an `Option`, which may be empty).
    /// Read from this file's source, so a new variant without help fails here.
    #[test]
    fn every_variant_has_help() {
        let source = include_str!("diagnostics.rs");
        let body = source
            .split("pub enum SpecError {")
            .nth(1)
            .and_then(|rest| rest.split("\n}\n").next())
            .expect("the SpecError enum");
        let mut variants = 0;
        for chunk in body.split("\n\n") {
            let Some(name) = chunk.lines().find_map(|l| {
                let l = l.strip_prefix("    ")?;
                let name = l.strip_suffix(" {")?;
                name.chars().all(char::is_alphanumeric).then_some(name)
            }) else {
                continue;
            };
            variants += 1;
            let fixed = chunk.contains("help(");
            let field = chunk.contains("#[help]\n        help: String,");
            assert!(fixed || field, "`SpecError::{name}` has no help line");
        }
        assert!(
            variants >= 30,
            "found only {variants} variants: is the enum still parsed?"
        );
    }
}

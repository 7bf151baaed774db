//! Connectors: where records come from and go to, one folder each.
//!
//! A connector's folder holds its spec (the options of `type: <name>`), its checks
//! (spec → IR) and its emitter (IR → the runtime constructor call). This file is the
//! one table of them: the closed [`SourceKind`]/[`SinkKind`] enums and their IR
//! counterparts, each `match` dispatching to the folder. Everything else in the
//! compiler asks what a connector *does* ([`Arrival`], [`Delivery`], whether it commits
//! positions, which metadata it offers), never which one it is.

pub mod file;
pub mod generator;
pub mod http;
pub mod kafka;
pub mod message;
pub mod metadata;
pub mod mqtt;
pub mod pulsar;
pub mod redis;
pub mod stdin;
pub mod stdout;
pub mod template;

use std::rc::Rc;

use proc_macro2::TokenStream;
use serde::de::DeserializeOwned;

use crate::ir::{IrFormat, IrSink, IrSource};
use crate::spec::field_names;
use crate::types::RecordType;
use crate::validate::Cx;
use message::IrAddress;
use metadata::IrMeta;

/// Reads the options of one component (the loader, which reports every mistake).
pub trait ReadOptions {
    fn read<T: DeserializeOwned>(&mut self) -> Option<T>;
}

/// How a source's records arrive: this decides which formats fit and which options
/// (like `max_record_bytes`) apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// A byte stream framed into lines (a file, stdin): every format fits.
    Stream,
    /// Whole messages from a broker, one record each: no CSV header line.
    Messages,
    /// Made up by the source itself, as JSON.
    Generated,
}

/// How a sink's records leave: this decides its output layer in the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Bytes written to a stream once per step (`Output` + `RawSink`).
    Stream,
    /// One message per record, each acknowledged by a broker later (`MessageOutput` +
    /// `MessageSink`): per-record addresses, outcomes served every step.
    Messages,
}

/// The closed set of source types, as written in the spec.
#[derive(Debug, Clone)]
pub enum SourceKind {
    File(file::FileSource),
    Stdin(stdin::StdinSource),
    Generator(generator::GeneratorSource),
    Kafka(Box<kafka::KafkaSource>),
    Mqtt(Box<mqtt::MqttSource>),
    Redis(Box<redis::RedisSource>),
    Http(Box<http::HttpSource>),
    Pulsar(Box<pulsar::PulsarSource>),
}

impl SourceKind {
    /// Every `type:` a source can have.
    pub const TYPES: &'static [&'static str] =
        &["file", "stdin", "generator", "kafka", "mqtt", "redis", "http", "pulsar"];

    pub fn type_name(&self) -> &'static str {
        match self {
            SourceKind::File(_) => "file",
            SourceKind::Stdin(_) => "stdin",
            SourceKind::Generator(_) => "generator",
            SourceKind::Kafka(_) => "kafka",
            SourceKind::Mqtt(_) => "mqtt",
            SourceKind::Redis(_) => "redis",
            SourceKind::Http(_) => "http",
            SourceKind::Pulsar(_) => "pulsar",
        }
    }

    pub fn arrival(&self) -> Arrival {
        match self {
            SourceKind::File(_) | SourceKind::Stdin(_) => Arrival::Stream,
            SourceKind::Generator(_) => Arrival::Generated,
            SourceKind::Kafka(_)
            | SourceKind::Mqtt(_)
            | SourceKind::Redis(_)
            | SourceKind::Http(_)
            | SourceKind::Pulsar(_) => Arrival::Messages,
        }
    }

    /// The keys of type `ty` (one of [`Self::TYPES`]), so a misspelt common key is
    /// recognised among them.
    pub fn keys(ty: &str) -> Vec<String> {
        match ty {
            "file" => field_names::<file::FileSource>(),
            "stdin" => field_names::<stdin::StdinSource>(),
            "generator" => field_names::<generator::GeneratorSource>(),
            "kafka" => field_names::<kafka::KafkaSource>(),
            "mqtt" => field_names::<mqtt::MqttSource>(),
            "http" => field_names::<http::HttpSource>(),
            "pulsar" => field_names::<pulsar::PulsarSource>(),
            _ => field_names::<redis::RedisSource>(),
        }
    }

    /// Reads the options of type `ty` (one of [`Self::TYPES`]).
    pub fn read(ty: &str, options: &mut impl ReadOptions) -> Option<SourceKind> {
        Some(match ty {
            "file" => SourceKind::File(options.read()?),
            "stdin" => SourceKind::Stdin(options.read()?),
            "generator" => SourceKind::Generator(options.read()?),
            "kafka" => SourceKind::Kafka(Box::new(options.read()?)),
            "mqtt" => SourceKind::Mqtt(Box::new(options.read()?)),
            "http" => SourceKind::Http(Box::new(options.read()?)),
            "pulsar" => SourceKind::Pulsar(Box::new(options.read()?)),
            _ => SourceKind::Redis(Box::new(options.read()?)),
        })
    }

    /// Checks the connector's own options against the source's record.
    pub fn check(&self, source: &SourceContext<'_>, cx: &mut Cx) -> Option<CheckedSource> {
        match self {
            SourceKind::File(f) => file::check_source(f, source, cx),
            SourceKind::Stdin(s) => stdin::check(s, source, cx),
            SourceKind::Generator(g) => generator::check(g, source, cx),
            SourceKind::Kafka(k) => kafka::check_source(k, source, cx),
            SourceKind::Mqtt(m) => mqtt::check_source(m, source, cx),
            SourceKind::Redis(r) => redis::check_source(r, source, cx),
            SourceKind::Http(h) => http::check_source(h, source, cx),
            SourceKind::Pulsar(p) => pulsar::check_source(p, source, cx),
        }
    }
}

/// What a connector's source checks are given.
pub struct SourceContext<'a> {
    pub pipeline: &'a str,
    pub name: &'a str,
    pub format: IrFormat,
    pub record: &'a Rc<RecordType>,
}

/// A source's connector, checked.
pub struct CheckedSource {
    pub kind: IrSourceKind,
    /// The schema's record, plus the metadata fields the spec asked for.
    pub record: Rc<RecordType>,
    pub metadata: Vec<IrMeta>,
    /// It commits positions back once records are safe (offsets, acknowledgements):
    /// the pipeline then tracks acknowledgements and commits after steps.
    pub commits: bool,
}

/// The IR of each source type.
#[derive(Debug, Clone)]
pub enum IrSourceKind {
    File(file::IrFileSource),
    Stdin(stdin::IrStdin),
    Generator(generator::IrGenerator),
    Kafka(kafka::IrKafkaSource),
    Mqtt(mqtt::IrMqttSource),
    Redis(redis::IrRedisSource),
    Http(http::IrHttpSource),
    Pulsar(pulsar::IrPulsarSource),
}

/// The runtime's raw source for `s`, boxed (inside `run`'s build closure: `ctx` is there).
pub fn construct_source(s: &IrSource) -> TokenStream {
    match &s.kind {
        IrSourceKind::File(f) => file::emit_source(f),
        IrSourceKind::Stdin(i) => stdin::emit(i),
        IrSourceKind::Generator(g) => generator::emit(g, s),
        IrSourceKind::Kafka(k) => kafka::emit_source(k, s),
        IrSourceKind::Mqtt(m) => mqtt::emit_source(m, s),
        IrSourceKind::Redis(r) => redis::emit_source(r, s),
        IrSourceKind::Http(h) => http::emit_source(h, s),
        IrSourceKind::Pulsar(p) => pulsar::emit_source(p, s),
    }
}

/// Items a source needs at the top of the file (the generator's field table).
pub fn source_items(s: &IrSource) -> Option<TokenStream> {
    match &s.kind {
        IrSourceKind::Generator(g) => Some(generator::statics(g, s)),
        _ => None,
    }
}

/// The closed set of sink types, as written in the spec.
#[derive(Debug, Clone)]
pub enum SinkKind {
    Stdout(stdout::StdoutSink),
    File(file::FileSink),
    Kafka(Box<kafka::KafkaSink>),
    Mqtt(Box<mqtt::MqttSink>),
    Redis(Box<redis::RedisSink>),
    Http(Box<http::HttpSink>),
    Pulsar(Box<pulsar::PulsarSink>),
}

impl SinkKind {
    pub const TYPES: &'static [&'static str] = &["stdout", "file", "kafka", "mqtt", "redis", "http", "pulsar"];

    pub fn type_name(&self) -> &'static str {
        match self {
            SinkKind::Stdout(_) => "stdout",
            SinkKind::File(_) => "file",
            SinkKind::Kafka(_) => "kafka",
            SinkKind::Mqtt(_) => "mqtt",
            SinkKind::Redis(_) => "redis",
            SinkKind::Http(_) => "http",
            SinkKind::Pulsar(_) => "pulsar",
        }
    }

    pub fn delivery(&self) -> Delivery {
        match self {
            SinkKind::Stdout(_) | SinkKind::File(_) => Delivery::Stream,
            SinkKind::Kafka(_) | SinkKind::Mqtt(_) | SinkKind::Redis(_) | SinkKind::Http(_) | SinkKind::Pulsar(_) => {
                Delivery::Messages
            }
        }
    }

    pub fn keys(ty: &str) -> Vec<String> {
        match ty {
            "stdout" => field_names::<stdout::StdoutSink>(),
            "file" => field_names::<file::FileSink>(),
            "kafka" => field_names::<kafka::KafkaSink>(),
            "mqtt" => field_names::<mqtt::MqttSink>(),
            "http" => field_names::<http::HttpSink>(),
            "pulsar" => field_names::<pulsar::PulsarSink>(),
            _ => field_names::<redis::RedisSink>(),
        }
    }

    pub fn read(ty: &str, options: &mut impl ReadOptions) -> Option<SinkKind> {
        Some(match ty {
            "stdout" => SinkKind::Stdout(options.read()?),
            "file" => SinkKind::File(options.read()?),
            "kafka" => SinkKind::Kafka(Box::new(options.read()?)),
            "mqtt" => SinkKind::Mqtt(Box::new(options.read()?)),
            "http" => SinkKind::Http(Box::new(options.read()?)),
            "pulsar" => SinkKind::Pulsar(Box::new(options.read()?)),
            _ => SinkKind::Redis(Box::new(options.read()?)),
        })
    }

    /// Checks the connector's own options.
    pub fn check(&self, sink: &SinkContext<'_>, cx: &mut Cx) -> Option<CheckedSink> {
        match self {
            SinkKind::Stdout(_) => Some(CheckedSink::stream(IrSinkKind::Stdout)),
            SinkKind::File(f) => file::check_sink(f, sink, cx),
            SinkKind::Kafka(k) => kafka::check_sink(k, sink, cx),
            SinkKind::Mqtt(m) => mqtt::check_sink(m, sink, cx),
            SinkKind::Redis(r) => redis::check_sink(r, sink, cx),
            SinkKind::Http(h) => http::check_sink(h, sink, cx),
            SinkKind::Pulsar(p) => pulsar::check_sink(p, sink, cx),
        }
    }
}

/// What a connector's sink checks are given. Without a `record` (the input failed its
/// own checks), only what does not depend on the record is checked, so those mistakes
/// come in the same run.
pub struct SinkContext<'a> {
    pub pipeline: &'a str,
    pub name: &'a str,
    pub record: Option<&'a RecordType>,
    /// The format each record is encoded in.
    pub format: IrFormat,
}

/// A sink's connector, checked.
pub struct CheckedSink {
    pub kind: IrSinkKind,
    /// For message sinks: where each record goes.
    pub address: Option<IrAddress>,
}

impl CheckedSink {
    fn stream(kind: IrSinkKind) -> Self {
        CheckedSink { kind, address: None }
    }
}

/// The IR of each sink type.
#[derive(Debug, Clone)]
pub enum IrSinkKind {
    Stdout,
    File(file::IrFileSink),
    Kafka(kafka::IrKafkaSink),
    Mqtt(mqtt::IrMqttSink),
    Redis(redis::IrRedisSink),
    Http(http::IrHttpSink),
    Pulsar(pulsar::IrPulsarSink),
}

impl IrSinkKind {
    /// Writes to a stream that other sinks of the same spec may write to as well (the
    /// process's stdout): what it writes interleaves with theirs.
    pub fn shares_its_stream(&self) -> bool {
        matches!(self, IrSinkKind::Stdout)
    }
}

/// The runtime's raw sink for `s`, boxed: a `RawSink` for a stream, a `MessageSink`
/// for messages.
pub fn construct_sink(s: &IrSink) -> TokenStream {
    match &s.kind {
        IrSinkKind::Stdout => stdout::emit(),
        IrSinkKind::File(f) => file::emit_sink(f),
        IrSinkKind::Kafka(k) => kafka::emit_sink(k, s),
        IrSinkKind::Mqtt(m) => mqtt::emit_sink(m, s),
        IrSinkKind::Redis(r) => redis::emit_sink(r, s),
        IrSinkKind::Http(h) => http::emit_sink(h, s),
        IrSinkKind::Pulsar(p) => pulsar::emit_sink(p, s),
    }
}

/// Names the runtime exports for connectors: a generated struct must not take one.
pub const RUNTIME_TYPES: &[&[&str]] = &[
    file::RUNTIME_TYPES,
    stdin::RUNTIME_TYPES,
    generator::RUNTIME_TYPES,
    stdout::RUNTIME_TYPES,
    kafka::RUNTIME_TYPES,
    mqtt::RUNTIME_TYPES,
    redis::RUNTIME_TYPES,
    http::RUNTIME_TYPES,
    pulsar::RUNTIME_TYPES,
];

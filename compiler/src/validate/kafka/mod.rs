//! Kafka sources and sinks: spec options → librdkafka properties and message metadata →
//! record fields. Every property is a setting, checked for secrets by `Cx::setting`
//! under the name of the librdkafka property it becomes.

use std::rc::Rc;

use super::transforms::expression;
use super::Cx;
use crate::diagnostics::SpecError;
use crate::expr::TExpr;
use crate::ir::{IrSinkKind, MetaKind, PropertyValue, SinkInput};
use crate::spec::kafka::KafkaClientSpec;
use crate::spec::sinks::{KafkaSink, TopicSpec};
use crate::spec::sources::MetadataSpec;
use crate::spec::transforms::ExprText;
use crate::spec::Setting;
use crate::types::{Field, RecordType, TsRepr, Type};

/// Properties rill sets itself for at-least-once delivery; overriding them would lose data.
const MANAGED: &[&str] = &["enable.auto.offset.store", "enable.auto.commit"];

pub type Properties = Vec<(String, PropertyValue)>;

/// The client part of a source or sink (`path` is `["sources", name]` or
/// `["sinks", name]`) as librdkafka properties; `None` after reporting errors.
pub fn client_properties(path: &[&str], client: KafkaClientSpec<'_>, cx: &mut Cx) -> Option<Properties> {
    let mut ok = true;
    let mut props = Properties::new();
    // `property` is the librdkafka name: it decides whether the value is a secret.
    let setting = |cx: &mut Cx, option: &[&str], property: &str, value: &Setting, help: &str| -> PropertyValue {
        let mut at = path.to_vec();
        at.extend(option);
        PropertyValue::Setting(cx.setting(&at, property, &value.0, help))
    };
    props.push((
        "bootstrap.servers".into(),
        setting(
            cx,
            &["brokers"],
            "bootstrap.servers",
            client.brokers,
            "Kafka brokers, host:port[,host:port..]",
        ),
    ));
    if let Some(tls) = client.tls {
        let files = [
            (
                "ca",
                &tls.ca,
                "ssl.ca.location",
                "CA certificate file (PEM) to verify brokers",
            ),
            (
                "cert",
                &tls.cert,
                "ssl.certificate.location",
                "client certificate file (PEM)",
            ),
            ("key", &tls.key, "ssl.key.location", "client private key file (PEM)"),
        ];
        for (option, value, property, help) in files {
            if let Some(value) = value {
                props.push((property.into(), setting(cx, &["tls", option], property, value, help)));
            }
        }
        if let Some(password) = &tls.key_password {
            props.push((
                "ssl.key.password".into(),
                setting(
                    cx,
                    &["tls", "key_password"],
                    "ssl.key.password",
                    password,
                    "password of the client key",
                ),
            ));
        }
        if tls.verify_hostname == Some(false) {
            props.push((
                "ssl.endpoint.identification.algorithm".into(),
                PropertyValue::Fixed("none".into()),
            ));
        }
    }
    if let Some(sasl) = client.sasl {
        props.push((
            "sasl.mechanisms".into(),
            PropertyValue::Fixed(sasl.mechanism.as_str().into()),
        ));
        props.push((
            "sasl.username".into(),
            setting(
                cx,
                &["sasl", "username"],
                "sasl.username",
                &sasl.username,
                "SASL user name",
            ),
        ));
        props.push((
            "sasl.password".into(),
            setting(
                cx,
                &["sasl", "password"],
                "sasl.password",
                &sasl.password,
                "SASL password",
            ),
        ));
    }
    let protocol = match (client.tls.is_some(), client.sasl.is_some()) {
        (false, false) => None,
        (true, false) => Some("ssl"),
        (false, true) => Some("sasl_plaintext"),
        (true, true) => Some("sasl_ssl"),
    };
    if let Some(protocol) = protocol {
        props.push(("security.protocol".into(), PropertyValue::Fixed(protocol.into())));
    }
    for (name, value) in client.properties {
        let mut at = path.to_vec();
        at.extend(["properties", name.as_str()]);
        if MANAGED.contains(&name.as_str()) {
            let span = cx.key(&at);
            cx.error(SpecError::invalid_value(
                name.as_str(),
                "rill manages offsets itself: it stores an offset only once every record before it reached its sinks",
                &span,
                Some("remove it; `auto.commit.interval.ms` sets how often stored offsets are committed".into()),
            ));
            ok = false;
            continue;
        }
        props.push((
            name.clone(),
            setting(cx, &["properties", name.as_str()], name, value, "librdkafka property"),
        ));
    }
    ok.then_some(props)
}

/// Topic names (`[A-Za-z0-9._-]`, at most 249 characters) or `^regex` patterns.
pub fn topics(path: &[&str], topics: &[String], cx: &mut Cx) -> bool {
    if topics.is_empty() {
        let mut at = path.to_vec();
        at.push("topics");
        let span = cx.value(&at);
        cx.error(SpecError::invalid_value(
            "topics",
            "no topic to read",
            &span,
            Some("list topic names, or regular expressions starting with `^`: `topics: [clicks]`".into()),
        ));
        return false;
    }
    let mut ok = true;
    for (i, topic) in topics.iter().enumerate() {
        if topic.contains("${") {
            let index = i.to_string();
            let mut at = path.to_vec();
            at.extend(["topics", index.as_str()]);
            let span = cx.value(&at);
            cx.error(SpecError::compiled_in("topics", topic, &span, None));
            ok = false;
            continue;
        }
        let problem = match topic.strip_prefix('^') {
            Some(_) => regex::Regex::new(topic)
                .err()
                .map(|e| format!("not a valid pattern: {e}")),
            None => topic_name_problem(topic),
        };
        if let Some(problem) = problem {
            let index = i.to_string();
            let mut at = path.to_vec();
            at.extend(["topics", index.as_str()]);
            let span = cx.value(&at);
            cx.error(SpecError::invalid_value(
                "topics",
                problem,
                &span,
                Some("a topic name has letters, digits, `.`, `_` and `-`; a pattern starts with `^`".into()),
            ));
            ok = false;
        }
    }
    ok
}

/// Why `name` cannot be a Kafka topic, if it cannot.
pub fn topic_name_problem(name: &str) -> Option<String> {
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.len() > 249 || name == "." || name == ".." || !name.chars().all(valid) {
        Some(format!("`{name}` is not a valid topic name"))
    } else {
        None
    }
}

/// A Kafka source's record with its metadata fields.
pub struct WithMetadata {
    /// The schema's record plus the metadata fields (unchanged without metadata).
    pub record: Rc<RecordType>,
    /// The header names the fields read, in `MetaKind::Header` order.
    pub headers: Vec<String>,
    /// Each metadata field and what it receives.
    pub fields: Vec<(String, MetaKind)>,
}

/// The source's record with its metadata fields appended, and what each receives.
pub fn with_metadata(source: &str, record: &Rc<RecordType>, meta: &MetadataSpec, cx: &mut Cx) -> Option<WithMetadata> {
    let optional = |t: Type| Type::Optional(Box::new(t));
    let mut wanted: Vec<(Vec<&str>, &String, MetaKind, Type)> = Vec::new();
    let singles = [
        ("key", &meta.key, MetaKind::Key, optional(Type::String)),
        ("topic", &meta.topic, MetaKind::Topic, Type::String),
        ("partition", &meta.partition, MetaKind::Partition, Type::I64),
        ("offset", &meta.offset, MetaKind::Offset, Type::I64),
        (
            "timestamp",
            &meta.timestamp,
            MetaKind::Timestamp,
            optional(Type::Timestamp),
        ),
    ];
    for (what, field, kind, ty) in singles {
        if let Some(field) = field {
            wanted.push((vec![what], field, kind, ty));
        }
    }
    let mut headers = Vec::new();
    for (header, field) in &meta.headers {
        wanted.push((
            vec!["headers", header.as_str()],
            field,
            MetaKind::Header(headers.len()),
            optional(Type::String),
        ));
        headers.push(header.clone());
    }
    if wanted.is_empty() {
        return Some(WithMetadata {
            record: record.clone(),
            headers,
            fields: Vec::new(),
        });
    }
    let mut fields = record.fields.clone();
    let mut metadata = Vec::new();
    let mut ok = true;
    for (what, field, kind, ty) in wanted {
        let mut path = vec!["sources", source, "metadata"];
        path.extend(what);
        if !crate::spec::is_valid_field_name(field) {
            let at = cx.value(&path);
            cx.error(SpecError::invalid_name(field, &at));
            ok = false;
            continue;
        }
        if fields.iter().any(|f| &f.name == field) {
            let at = cx.value(&path);
            cx.error(SpecError::invalid_value(
                path.last().copied().unwrap_or_default(),
                format!("the record already has a field `{field}`"),
                &at,
                Some("name the metadata field differently, e.g. `kafka_key`".into()),
            ));
            ok = false;
            continue;
        }
        fields.push(Field {
            from_metadata: true,
            ..Field::new(field.clone(), ty, TsRepr::Millis)
        });
        metadata.push((field.clone(), kind));
    }
    ok.then(|| WithMetadata {
        record: Rc::new(RecordType::new(
            cx.names.type_name("", source, "Message"),
            format!("messages of `{source}`"),
            fields,
        )),
        headers,
        fields: metadata,
    })
}

/// A Kafka sink: properties from the spec's options, its topic, key and headers.
/// Without an `input` (its upstream failed), only the options that do not depend on
/// the record are checked.
pub fn sink(name: &str, k: &KafkaSink, input: Option<&SinkInput>, cx: &mut Cx) -> Option<IrSinkKind> {
    let path = ["sinks", name];
    let record = match input {
        Some(SinkInput::Records(record)) => Some(record),
        None => None,
        Some(SinkInput::DeadLetters) => {
            let at = cx.value(&["sinks", name, "input"]);
            cx.error(SpecError::invalid_value(
                "input",
                "dead letters are written to a file or stdout sink, not to Kafka",
                &at,
                Some("use `type: file` for the dead-letter sink".into()),
            ));
            return None;
        }
    };
    let mut ok = record.is_some();
    let properties = client_properties(&path, k.client(), cx);
    let fixed = |name: &str, value: String| (name.to_string(), PropertyValue::Fixed(value));
    let mut tuning = Vec::new();
    let idempotent = k.idempotent.unwrap_or(true);
    tuning.push(fixed("enable.idempotence", idempotent.to_string()));
    match acks_level(name, k.acks.as_ref(), idempotent, cx) {
        Some(level) => tuning.push(fixed("acks", level.into())),
        None => ok = false,
    }
    if let Some(c) = k.compression {
        tuning.push(fixed("compression.type", c.as_str().into()));
    }
    if let Some(ms) = k.linger_ms {
        tuning.push(fixed("linger.ms", ms.to_string()));
    }
    if let Some(bytes) = k.batch_size {
        tuning.push(fixed("batch.size", bytes.to_string()));
    }
    if let Some(text) = &k.delivery_timeout {
        match cx.duration(&["sinks", name, "delivery_timeout"], text, true) {
            Some(ms) => tuning.push(fixed("message.timeout.ms", ms.to_string())),
            None => ok = false,
        }
    }
    let (topic, topic_expr) = match &k.topic {
        None => {
            let at = cx.key(&["sinks", name]);
            cx.error(SpecError::missing_field(
                "topic",
                &format!("sink `{name}`"),
                &at,
                Some("`topic: alerts`, or `topic: { expr: 'concat(\"alerts-\", site)' }` per record".into()),
            ));
            return None;
        }
        Some(TopicSpec::Fixed(topic)) => {
            if topic.contains("${") {
                let at = cx.value(&["sinks", name, "topic"]);
                cx.error(SpecError::compiled_in("topic", topic, &at, None));
                ok = false;
            } else if let Some(problem) = topic_name_problem(topic) {
                let at = cx.value(&["sinks", name, "topic"]);
                cx.error(SpecError::invalid_value(
                    "topic",
                    problem,
                    &at,
                    Some("a topic name has letters, digits, `.`, `_` and `-`".into()),
                ));
                ok = false;
            }
            (topic.clone(), None)
        }
        Some(TopicSpec::Expr(e)) => {
            let e = record.and_then(|record| {
                string_expr(
                    "the topic",
                    &e.expr,
                    record,
                    &["sinks", name, "topic", "expr"],
                    false,
                    cx,
                )
            });
            ok &= e.is_some();
            (String::new(), e)
        }
    };
    let key = match (&k.key, record) {
        (Some(text), Some(record)) => {
            let e = string_expr("the key", text, record, &["sinks", name, "key"], true, cx);
            ok &= e.is_some();
            e
        }
        _ => None,
    };
    let mut headers = Vec::new();
    for (header, text) in &k.headers {
        let Some(record) = record else { break };
        let what = format!("header `{header}`");
        match string_expr(
            &what,
            text,
            record,
            &["sinks", name, "headers", header.as_str()],
            true,
            cx,
        ) {
            Some(e) => headers.push((header.clone(), e)),
            None => ok = false,
        }
    }
    cx.features.insert("kafka");
    let mut properties = properties?;
    // The spec's own options first, so `properties:` can still override them.
    tuning.append(&mut properties);
    ok.then_some(IrSinkKind::Kafka {
        properties: tuning,
        topic,
        topic_expr,
        key,
        headers,
    })
}

/// The producer's `acks` property; `None` after reporting a level that is not one, or
/// that an idempotent producer cannot use.
fn acks_level(sink: &str, acks: Option<&Setting>, idempotent: bool, cx: &mut Cx) -> Option<&'static str> {
    let Some(Setting(text)) = acks else {
        return Some("all");
    };
    if text.contains("${") {
        let at = cx.value(&["sinks", sink, "acks"]);
        let valid = ["all", "1", "0"].map(String::from).to_vec();
        cx.error(SpecError::compiled_in("acks", text, &at, Some(valid)));
        return None;
    }
    let (message, help) = match text.as_str() {
        "all" | "-1" => return Some("all"),
        "1" if !idempotent => return Some("1"),
        "0" if !idempotent => return Some("0"),
        "1" | "0" => (
            "an idempotent producer needs `acks: all`".to_string(),
            "use `acks: all`, or set `idempotent: false` to trade safety for latency",
        ),
        _ => (
            format!("`{text}` is not an acknowledgement level"),
            "one of `all` (every in-sync replica), `1` (the leader) or `0` (none)",
        ),
    };
    let at = cx.value(&["sinks", sink, "acks"]);
    cx.error(SpecError::invalid_value("acks", message, &at, Some(help.into())));
    None
}

/// An expression that must be a string (or, when `optional`, an optional string).
fn string_expr(
    what: &str,
    text: &ExprText,
    record: &RecordType,
    path: &[&str],
    optional: bool,
    cx: &mut Cx,
) -> Option<TExpr> {
    let e = expression(text, record, path, cx)?;
    let fits = match &e.ty {
        Type::String => true,
        Type::Optional(inner) => optional && **inner == Type::String,
        _ => false,
    };
    if fits {
        return Some(e);
    }
    let at = cx.expr_locator(path, &text.0)(&e.span);
    let wanted = if optional {
        "a string or an optional string"
    } else {
        "a string"
    };
    cx.error(SpecError::type_mismatch(
        format!("{what} must be {wanted}, found {}", e.ty),
        format!("this is {}", e.ty),
        &at,
        Some("convert it: `to_string(device_id)`".into()),
    ));
    None
}

#[cfg(test)]
mod tests;

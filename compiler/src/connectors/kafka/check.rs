//! Kafka sources and sinks: spec options → librdkafka properties and message metadata →
//! record fields. Every property is a setting, checked for secrets by `Cx::setting`
//! under the name of the librdkafka property it becomes.

use super::{IrKafkaSink, IrKafkaSource, KafkaClientSpec, KafkaSink, KafkaSource, MetadataSpec, PropertyValue};
use crate::connectors::message::{string_expr, IrAddress, TopicSpec};
use crate::connectors::metadata::{wanted_of, with_metadata, MetaDef, MetaType, Wanted};
use crate::connectors::{CheckedSink, CheckedSource, IrSinkKind, IrSourceKind, SinkContext, SourceContext};
use crate::diagnostics::SpecError;
use crate::spec::Setting;
use crate::validate::Cx;

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

/// What a Kafka message offers besides its payload (and `headers: { name: field }`).
const METADATA: &[MetaDef] = &[
    MetaDef {
        name: "key",
        ty: MetaType::OptText,
    },
    MetaDef {
        name: "topic",
        ty: MetaType::Text,
    },
    MetaDef {
        name: "partition",
        ty: MetaType::Int,
    },
    MetaDef {
        name: "offset",
        ty: MetaType::Int,
    },
    MetaDef {
        name: "timestamp",
        ty: MetaType::OptTimestamp,
    },
];

/// A Kafka source: client properties, topics and metadata fields.
pub fn source(k: &KafkaSource, source: &SourceContext<'_>, cx: &mut Cx) -> Option<CheckedSource> {
    let name = source.name;
    let path = ["sources", name];
    let properties = client_properties(&path, k.client(), cx);
    let topics_ok = topics(&path, &k.topics, cx);
    let metadata = with_metadata(name, source.record, wanted(name, &k.metadata), cx);
    let (mut properties, (record, metadata)) = (properties?, metadata?);
    let default_group = k
        .group_id
        .clone()
        .unwrap_or_else(|| Setting(source.pipeline.to_string()));
    let group = cx.setting(
        &["sources", name, "group_id"],
        "group.id",
        &default_group.0,
        "consumer group: copies with the same group share the partitions",
    );
    properties.push(("group.id".into(), PropertyValue::Setting(group)));
    properties.push((
        "auto.offset.reset".into(),
        PropertyValue::Fixed(k.start.as_str().into()),
    ));
    cx.features.insert("kafka");
    topics_ok.then(|| CheckedSource {
        kind: IrSourceKind::Kafka(IrKafkaSource {
            properties,
            topics: k.topics.clone(),
        }),
        record,
        metadata,
        commits: true,
    })
}

/// The metadata the spec asks for: the offered pieces, then each header by name.
fn wanted<'a>(source: &'a str, meta: &'a MetadataSpec) -> Vec<Wanted<'a>> {
    let given = [&meta.key, &meta.topic, &meta.partition, &meta.offset, &meta.timestamp].map(Option::as_ref);
    let mut wanted = wanted_of(source, METADATA, &given);
    for (header, field) in &meta.headers {
        wanted.push(Wanted {
            meta: format!("header:{header}"),
            ty: MetaType::OptText,
            field,
            path: vec!["sources", source, "metadata", "headers", header.as_str()],
        });
    }
    wanted
}

/// A Kafka sink: properties from the spec's options, its topic, key and headers.
/// Without a `record` (its upstream failed), only the options that do not depend on
/// the record are checked.
pub fn sink(k: &KafkaSink, sink: &SinkContext<'_>, cx: &mut Cx) -> Option<CheckedSink> {
    let (name, record) = (sink.name, sink.record);
    let path = ["sinks", name];
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
    ok.then_some(CheckedSink {
        kind: IrSinkKind::Kafka(IrKafkaSink {
            properties: tuning,
            topic,
        }),
        address: Some(IrAddress {
            topic: topic_expr,
            key,
            headers,
        }),
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

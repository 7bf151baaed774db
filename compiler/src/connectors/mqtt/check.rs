//! MQTT options → the client's settings, topic filters, the sink's topic per record.

use super::spec::{ClientSpec, MqttMetadata, MqttSink, MqttSource};
use super::{IrMqttClient, IrMqttSink, IrMqttSource};
use crate::connectors::message::{string_expr, IrAddress, TopicSpec};
use crate::connectors::metadata::{wanted_of, with_metadata, MetaDef, MetaType};
use crate::connectors::template;
use crate::connectors::{CheckedSink, CheckedSource, IrSinkKind, IrSourceKind, SinkContext, SourceContext};
use crate::diagnostics::SpecError;
use crate::validate::Cx;

/// What an MQTT message offers besides its payload.
const METADATA: &[MetaDef] = &[
    MetaDef {
        name: "topic",
        ty: MetaType::Text,
    },
    MetaDef {
        name: "qos",
        ty: MetaType::Int,
    },
    MetaDef {
        name: "retain",
        ty: MetaType::Bool,
    },
];

pub fn source(m: &MqttSource, source: &SourceContext<'_>, cx: &mut Cx) -> Option<CheckedSource> {
    let name = source.name;
    let path = ["sources", name];
    let client = client(&path, source.pipeline, m.client(), cx);
    let qos = qos(&path, m.qos, cx);
    let filters_ok = topic_filters(name, &m.topics, cx);
    let MqttMetadata {
        topic,
        qos: qos_field,
        retain,
    } = &m.metadata;
    let wanted = wanted_of(name, METADATA, &[topic.as_ref(), qos_field.as_ref(), retain.as_ref()]);
    let metadata = with_metadata(name, source.record, wanted, cx);
    let (client, qos, (record, metadata)) = (client?, qos?, metadata?);
    cx.features.insert("mqtt");
    filters_ok.then(|| CheckedSource {
        kind: IrSourceKind::Mqtt(IrMqttSource {
            client,
            topics: m.topics.clone(),
            qos,
        }),
        record,
        metadata,
        // QoS 0 messages are never acknowledged: nothing to hold back.
        commits: qos > 0,
    })
}

pub fn sink(m: &MqttSink, sink: &SinkContext<'_>, cx: &mut Cx) -> Option<CheckedSink> {
    let (name, record) = (sink.name, sink.record);
    let path = ["sinks", name];
    let client = client(&path, sink.pipeline, m.client(), cx);
    let qos = qos(&path, m.qos, cx);
    let topic = match &m.topic {
        None => {
            let at = cx.key(&path);
            cx.error(SpecError::missing_field(
                "topic",
                &format!("sink `{name}`"),
                &at,
                Some("`topic: alerts`, or `topic: \"alerts/{device_id}\"` per record".into()),
            ));
            None
        }
        Some(TopicSpec::Fixed(text)) if !text.contains('{') => fixed_topic(name, text, cx).map(|topic| (topic, None)),
        Some(TopicSpec::Fixed(template)) => record.and_then(|record| {
            template::expression(name, "topic", template, record, cx).map(|e| (String::new(), Some(e)))
        }),
        Some(TopicSpec::Expr(e)) => record
            .and_then(|record| {
                string_expr(
                    "the topic",
                    &e.expr,
                    record,
                    &["sinks", name, "topic", "expr"],
                    false,
                    cx,
                )
            })
            .map(|e| (String::new(), Some(e))),
    };
    let (client, qos, (topic, topic_expr)) = (client?, qos?, topic?);
    record?;
    cx.features.insert("mqtt");
    Some(CheckedSink {
        kind: IrSinkKind::Mqtt(IrMqttSink {
            client,
            topic,
            qos,
            retain: m.retain,
        }),
        address: Some(IrAddress {
            topic: topic_expr,
            ..IrAddress::default()
        }),
    })
}

/// The connection settings. The default client id, `<pipeline>-<component>`, is
/// stable across restarts (a persistent session belongs to it) and differs between the
/// components of one binary (a broker lets one connection per client id).
fn client(path: &[&str], pipeline: &str, c: ClientSpec<'_>, cx: &mut Cx) -> Option<IrMqttClient> {
    let at = |option: &'static str| {
        let mut p = path.to_vec();
        p.push(option);
        p
    };
    let mut ok = true;
    // Known now: a literal, or the default of a sole `${VAR:-default}`.
    let known = c.url.known_now();
    let url = known.unwrap_or_default().trim();
    let scheme_ok = known.is_none() || url.starts_with("mqtt://") || url.starts_with("mqtts://");
    if !scheme_ok {
        let span = cx.value(&at("url"));
        cx.error(SpecError::invalid_value(
            "url",
            format!("`{url}` is not an MQTT URL"),
            &span,
            Some("`mqtt://host:1883`, or `mqtts://host:8883` for TLS".into()),
        ));
        ok = false;
    }
    let url = cx.setting(
        &at("url"),
        "url",
        &c.url.0,
        "MQTT broker, mqtt://host:port or mqtts://host:port",
    );
    let component = path.get(1).copied().unwrap_or_default();
    let client_id = c
        .client_id
        .map_or_else(|| format!("{pipeline}-{component}"), |s| s.0.clone());
    let client_id = cx.setting(
        &at("client_id"),
        "client_id",
        &client_id,
        "MQTT client id: a persistent session belongs to it",
    );
    // The name decides whether the value is a secret: the password is; `tls.key` is the
    // key's file, not the key.
    let optional = |cx: &mut Cx, option: &[&str], value: Option<&crate::spec::Setting>, help: &str| {
        let name = match option.last().copied().unwrap_or_default() {
            "key" => "key file",
            other => other,
        };
        value.map(|v| cx.setting(option, name, &v.0, help))
    };
    let username = optional(cx, &at("username"), c.username, "MQTT user name");
    let password = optional(cx, &at("password"), c.password, "MQTT password");
    let tls_path = |option: &'static str| {
        let mut p = path.to_vec();
        p.extend(["tls", option]);
        p
    };
    let tls = c.tls.cloned().unwrap_or_default();
    let ca = optional(
        cx,
        &tls_path("ca"),
        tls.ca.as_ref(),
        "CA certificate file (PEM) to verify the broker",
    );
    let cert = optional(
        cx,
        &tls_path("cert"),
        tls.cert.as_ref(),
        "client certificate file (PEM)",
    );
    let key = optional(cx, &tls_path("key"), tls.key.as_ref(), "client private key file (PEM)");
    let protocol = match c.version {
        None => Some(4),
        Some(v) => match (v.as_str(), v.as_u64()) {
            (Some("3.1.1"), _) | (Some("4"), _) => Some(4),
            (Some("5") | Some("5.0"), _) | (_, Some(5)) => Some(5),
            _ => {
                let span = cx.value(&at("version"));
                let given = serde_yaml::to_string(v).unwrap_or_default();
                cx.error(SpecError::invalid_value(
                    "version",
                    format!("`{}` is not an MQTT version rill speaks", given.trim()),
                    &span,
                    Some("`3.1.1` (the default) or `5`".into()),
                ));
                None
            }
        },
    };
    let keep_alive = match c.keep_alive {
        None => Some(30_000),
        Some(text) => keep_alive_ms(&at("keep_alive"), text, cx),
    };
    let (protocol, keep_alive) = (protocol?, keep_alive?);
    ok.then(|| IrMqttClient {
        url,
        client_id,
        clean_session: c.clean_session,
        username,
        password,
        protocol,
        ca,
        cert,
        key,
        keep_alive_secs: u64::try_from(keep_alive / 1000).unwrap_or(1),
    })
}

/// MQTT carries the keep-alive in whole seconds, 1 to 65535 (18h12m15s).
fn keep_alive_ms(path: &[&str], text: &str, cx: &mut Cx) -> Option<i64> {
    let ms = cx.duration(path, text, true)?;
    if (1000..=65_535_000).contains(&ms) {
        return Some(ms);
    }
    let at = cx.value(path);
    cx.error(SpecError::invalid_value(
        "keep_alive",
        format!("`{text}` is not between 1s and 18h12m15s: MQTT counts it in seconds, at most 65535"),
        &at,
        Some("`30s` (the default), `5m`".into()),
    ));
    None
}

fn qos(path: &[&str], qos: Option<u8>, cx: &mut Cx) -> Option<u8> {
    match qos.unwrap_or(1) {
        q @ (0 | 1) => Some(q),
        q => {
            let mut p = path.to_vec();
            p.push("qos");
            let at = cx.value(&p);
            cx.error(SpecError::invalid_value(
                "qos",
                format!("`qos: {q}` is not supported"),
                &at,
                Some("`0` (at most once) or `1` (at least once: acknowledged once safe)".into()),
            ));
            None
        }
    }
}

/// Topic filters: not empty, `+` and `#` only as whole levels, `#` last.
fn topic_filters(source: &str, filters: &[String], cx: &mut Cx) -> bool {
    if filters.is_empty() {
        let at = cx.value(&["sources", source, "topics"]);
        cx.error(SpecError::invalid_value(
            "topics",
            "no topic to subscribe to",
            &at,
            Some("list topic filters: `topics: [sensors/+/reading]`".into()),
        ));
        return false;
    }
    let mut ok = true;
    for (i, filter) in filters.iter().enumerate() {
        let levels: Vec<&str> = filter.split('/').collect();
        let inside_level = levels
            .iter()
            .any(|level| (level.contains('+') && *level != "+") || (level.contains('#') && *level != "#"));
        let hash_not_last = levels[..levels.len() - 1].contains(&"#");
        let problem = if filter.is_empty() || filter.contains('\0') {
            Some("an empty topic filter (or one with a NUL character)".to_string())
        } else if filter.contains("${") {
            Some("topics are compiled in: `${VAR}` is not expanded here".to_string())
        } else if inside_level {
            Some(format!("`{filter}` uses a wildcard inside a level"))
        } else if hash_not_last {
            Some(format!("in `{filter}`, `#` is not the last level"))
        } else {
            None
        };
        if let Some(problem) = problem {
            let index = i.to_string();
            let at = cx.value(&["sources", source, "topics", index.as_str()]);
            cx.error(SpecError::invalid_value(
                "topics",
                problem,
                &at,
                Some(
                    "`+` matches one whole level, `#` all the levels after it: `sensors/+/reading`, `sensors/#`".into(),
                ),
            ));
            ok = false;
        }
    }
    ok
}

fn fixed_topic(sink: &str, topic: &str, cx: &mut Cx) -> Option<String> {
    let problem = if topic.is_empty() || topic.contains('\0') {
        "an empty topic"
    } else if topic.contains(['+', '#']) {
        "a message is published to one topic: `+` and `#` are for subscribing"
    } else if topic.contains("${") {
        "topics are compiled in: `${VAR}` is not expanded here"
    } else {
        return Some(topic.to_string());
    };
    let at = cx.value(&["sinks", sink, "topic"]);
    cx.error(SpecError::invalid_value(
        "topic",
        problem,
        &at,
        Some("`alerts/high`, or `\"alerts/{device_id}\"` for a topic per record".into()),
    ));
    None
}

//! Pulsar options → what the runtime's source and sink are told: the subscription and
//! metadata fields; the topic, key and properties per record, and batching.

use super::spec::{PulsarCompression, PulsarMetadata, PulsarSink, PulsarSource, PulsarStart, PulsarSubscriptionType};
use super::{IrPulsarClient, IrPulsarSink, IrPulsarSource};
use crate::connectors::message::{string_expr, IrAddress, TopicSpec};
use crate::connectors::metadata::{wanted_of, with_metadata, MetaDef, MetaType, Wanted};
use crate::connectors::template;
use crate::connectors::{CheckedSink, CheckedSource, IrSinkKind, IrSourceKind, SinkContext, SourceContext};
use crate::diagnostics::SpecError;
use crate::spec::Setting;
use crate::validate::Cx;

/// What a Pulsar message offers besides its payload (and `properties: { name: field }`).
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
        name: "publish_time",
        ty: MetaType::OptTimestamp,
    },
    MetaDef {
        name: "event_time",
        ty: MetaType::OptTimestamp,
    },
    MetaDef {
        name: "message_id",
        ty: MetaType::Text,
    },
];

/// A batch's default limits: Pulsar's Java client's.
const DEFAULT_BATCH_RECORDS: u64 = 1000;
const DEFAULT_BATCH_BYTES: u64 = 128 * 1024;
const DEFAULT_BATCH_WAIT_MS: u64 = 10;
const DEFAULT_DELIVERY_TIMEOUT_MS: i64 = 30_000;

pub fn source(p: &PulsarSource, source: &SourceContext<'_>, cx: &mut Cx) -> Option<CheckedSource> {
    let name = source.name;
    let path = ["sources", name];
    let client = client(&path, &p.url, p.token.as_ref(), cx);
    let mut ok = true;
    if p.topics.is_empty() {
        let at = cx.value(&["sources", name, "topics"]);
        cx.error(SpecError::invalid_value(
            "topics",
            "no topic to read",
            &at,
            Some("`topics: [persistent://public/default/events]`".into()),
        ));
        ok = false;
    }
    for (i, topic) in p.topics.iter().enumerate() {
        if let Some((problem, help)) = topic_problem(topic) {
            let index = i.to_string();
            let at = cx.value(&["sources", name, "topics", &index]);
            cx.error(SpecError::invalid_value("topics", problem, &at, Some(help.into())));
            ok = false;
        }
    }
    let subscription = p
        .subscription
        .as_ref()
        .map_or_else(|| source.pipeline.to_string(), |s| s.0.clone());
    let subscription = cx.setting(
        &["sources", name, "subscription"],
        "subscription",
        &subscription,
        "Pulsar subscription: the binaries sharing it share its messages (per its type)",
    );
    let consumer_name = p.consumer_name.as_ref().map(|c| {
        cx.setting(
            &["sources", name, "consumer_name"],
            "consumer_name",
            &c.0,
            "Pulsar consumer name",
        )
    });
    let kind = match p.subscription_type.unwrap_or(PulsarSubscriptionType::Exclusive) {
        PulsarSubscriptionType::Exclusive => "Exclusive",
        PulsarSubscriptionType::Shared => "Shared",
        PulsarSubscriptionType::Failover => "Failover",
        PulsarSubscriptionType::KeyShared => "KeyShared",
    };
    let metadata = with_metadata(name, source.record, wanted(name, &p.metadata), cx);
    let (client, (record, metadata)) = (client?, metadata?);
    cx.features.insert("pulsar");
    ok.then(|| CheckedSource {
        kind: IrSourceKind::Pulsar(IrPulsarSource {
            client,
            topics: p.topics.iter().map(|t| t.trim().to_string()).collect(),
            subscription,
            consumer_name,
            kind,
            earliest: p.start.unwrap_or_default() == PulsarStart::Earliest,
        }),
        record,
        metadata,
        // Messages are acknowledged once safe.
        commits: true,
    })
}

/// The metadata the spec asks for: the offered pieces, then each property by name.
fn wanted<'a>(source: &'a str, meta: &'a PulsarMetadata) -> Vec<Wanted<'a>> {
    let given = [
        &meta.key,
        &meta.topic,
        &meta.publish_time,
        &meta.event_time,
        &meta.message_id,
    ]
    .map(Option::as_ref);
    let mut wanted = wanted_of(source, METADATA, &given);
    for (property, field) in &meta.properties {
        wanted.push(Wanted {
            meta: format!("property:{property}"),
            ty: MetaType::OptText,
            field,
            path: vec!["sources", source, "metadata", "properties", property.as_str()],
        });
    }
    wanted
}

/// Why `topic` cannot be a Pulsar topic name, and what would be.
fn topic_problem(topic: &str) -> Option<(&'static str, &'static str)> {
    let help = "`persistent://public/default/events`, or `events` (in public/default)";
    if topic.trim().is_empty() {
        return Some(("an empty topic name", help));
    }
    if topic.contains("${") {
        return Some(("topic names are compiled in: `${VAR}` is not expanded here", help));
    }
    let topic = topic.trim();
    let rest = topic
        .strip_prefix("persistent://")
        .or_else(|| topic.strip_prefix("non-persistent://"));
    let parts: Vec<&str> = match rest {
        Some(rest) => rest.split('/').collect(),
        None if topic.contains("://") => return Some(("not a Pulsar topic: the scheme is `persistent://`", help)),
        None => topic.split('/').collect(),
    };
    let whole = rest.is_some() && parts.len() == 3;
    let short = rest.is_none() && (parts.len() == 1 || parts.len() == 3);
    if !(whole || short) || parts.iter().any(|p| p.is_empty()) {
        return Some(("not a Pulsar topic: `persistent://tenant/namespace/topic`", help));
    }
    if topic.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some(("a topic name has no spaces or control characters", help));
    }
    None
}

pub fn sink(p: &PulsarSink, sink: &SinkContext<'_>, cx: &mut Cx) -> Option<CheckedSink> {
    let (name, record) = (sink.name, sink.record);
    let path = ["sinks", name];
    let client = client(&path, &p.url, p.token.as_ref(), cx);
    let mut ok = record.is_some();
    let (topic, topic_expr) = match &p.topic {
        None => {
            let at = cx.key(&path);
            cx.error(SpecError::missing_field(
                "topic",
                &format!("sink `{name}`"),
                &at,
                Some("`topic: persistent://public/default/alerts`, `topic: \"alerts-{site}\"`, or `topic: { expr: ... }` per record".into()),
            ));
            (String::new(), None)
        }
        Some(TopicSpec::Fixed(text)) if !text.contains('{') || text.contains("${") => {
            if let Some((problem, help)) = topic_problem(text) {
                let at = cx.value(&["sinks", name, "topic"]);
                cx.error(SpecError::invalid_value("topic", problem, &at, Some(help.into())));
                ok = false;
            }
            (text.trim().to_string(), None)
        }
        Some(TopicSpec::Fixed(text)) => {
            let e = record.and_then(|record| template::expression(name, "topic", text, record, cx));
            ok &= e.is_some();
            (String::new(), e)
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
    ok &= p.topic.is_some();
    let key = match (&p.key, record) {
        (Some(text), Some(record)) => {
            let e = string_expr("the key", text, record, &["sinks", name, "key"], true, cx);
            ok &= e.is_some();
            e
        }
        _ => None,
    };
    let mut properties = Vec::new();
    for (property, text) in &p.properties {
        let Some(record) = record else { break };
        let what = format!("property `{property}`");
        let at = ["sinks", name, "properties", property.as_str()];
        match string_expr(&what, text, record, &at, true, cx) {
            Some(e) => properties.push((property.clone(), e)),
            None => ok = false,
        }
    }
    let batch = batch(name, p, cx);
    let delivery_timeout_ms = match &p.delivery_timeout {
        Some(text) => cx.duration(&["sinks", name, "delivery_timeout"], text, true),
        None => Some(DEFAULT_DELIVERY_TIMEOUT_MS),
    };
    let compression = match p.compression.unwrap_or(PulsarCompression::None) {
        PulsarCompression::None => "None",
        PulsarCompression::Lz4 => "Lz4",
        PulsarCompression::Zlib => "Zlib",
        PulsarCompression::Zstd => "Zstd",
        PulsarCompression::Snappy => "Snappy",
    };
    let (client, (batch_max_records, batch_max_bytes, batch_max_wait_ms), delivery_timeout_ms) =
        (client?, batch?, delivery_timeout_ms?);
    cx.features.insert("pulsar");
    ok.then(|| CheckedSink {
        kind: IrSinkKind::Pulsar(IrPulsarSink {
            client,
            topic,
            batch_max_records,
            batch_max_bytes,
            batch_max_wait_ms,
            compression,
            delivery_timeout_ms: delivery_timeout_ms.unsigned_abs(),
        }),
        address: Some(IrAddress {
            topic: topic_expr,
            key,
            headers: properties,
        }),
    })
}

/// `(max_records, max_bytes, max_wait_ms)`.
fn batch(sink: &str, p: &PulsarSink, cx: &mut Cx) -> Option<(u32, u64, u64)> {
    let at = |option: &'static str| ["sinks", sink, "batch", option];
    let b = &p.batch;
    let records = match b.max_records {
        Some(0) => {
            let span = cx.value(&at("max_records"));
            cx.error(SpecError::invalid_value(
                "max_records",
                "a batch needs room for at least one message",
                &span,
                Some("`max_records: 1` sends every message on its own; 1000 is the default".into()),
            ));
            None
        }
        Some(n) => Some(u32::try_from(n.min(100_000)).unwrap_or(100_000)),
        None => Some(DEFAULT_BATCH_RECORDS as u32),
    };
    let bytes = cx.size(&at("max_bytes"), b.max_bytes.as_ref(), DEFAULT_BATCH_BYTES);
    let wait = match &b.max_wait {
        None => Some(DEFAULT_BATCH_WAIT_MS),
        Some(text) => cx.duration(&at("max_wait"), text, false).map(i64::unsigned_abs),
    };
    Some((records?, bytes?, wait?))
}

/// The connection settings, resolved at start. The URL's scheme is checked when it is
/// known now (a literal, or a sole `${VAR:-default}`'s default).
fn client(path: &[&str], url: &Setting, token: Option<&Setting>, cx: &mut Cx) -> Option<IrPulsarClient> {
    let at = |option: &'static str| [path, &[option]].concat();
    let known = url.known_now();
    let text = known.unwrap_or_default().trim();
    let problem = match known {
        None => None,
        Some(_)
            if text
                .strip_prefix("pulsar://")
                .is_some_and(|host| !host.is_empty() && !host.starts_with([':', '/'])) =>
        {
            None
        }
        Some(_) if text.starts_with("pulsar+ssl://") => Some((
            "TLS (`pulsar+ssl://`) is not supported yet",
            "`pulsar://host:6650`; reach a TLS broker through a local TLS tunnel (stunnel)",
        )),
        Some(_) if text.starts_with("pulsar://") => Some(("no broker host after `pulsar://`", "`pulsar://host:6650`")),
        Some(_) if text.is_empty() => Some(("an empty URL", "`pulsar://host:6650`")),
        Some(_) => Some(("not a Pulsar URL", "`pulsar://host:6650`")),
    };
    if let Some((problem, help)) = problem {
        cx.bad_url(&at("url"), text, problem, help);
    }
    let url = cx.setting(&at("url"), "url", &url.0, "Pulsar broker, pulsar://host:6650");
    let token = token.map(|t| cx.setting(&at("token"), "token", &t.0, "Pulsar authentication token (JWT)"));
    problem.is_none().then_some(IrPulsarClient { url, token })
}

#[cfg(test)]
mod tests {
    use super::topic_problem;

    #[test]
    fn topic_names_are_whole_or_short() {
        for good in [
            "persistent://public/default/events",
            "non-persistent://t/ns/x",
            "events",
            "public/default/events",
        ] {
            assert_eq!(topic_problem(good), None, "{good}");
        }
        for bad in [
            "",
            " ",
            "${TOPIC}",
            "persistent://public/events",
            "kafka://a/b/c",
            "a/b",
            "persistent://a//c",
            "my events",
        ] {
            assert!(topic_problem(bad).is_some(), "{bad:?}");
        }
    }
}

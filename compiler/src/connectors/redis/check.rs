//! Redis options → what the runtime's source and sink are told: pub/sub or a stream read
//! with a consumer group; PUBLISH, XADD, SET or HSET, with names per record.

use super::spec::{RedisLookup, RedisMetadata, RedisSink, RedisSource, RedisStart};
use super::{IrRedisClient, IrRedisLookup, IrRedisRead, IrRedisSink, IrRedisSource, IrRedisWrite};
use crate::connectors::message::{IrAddress, TopicSpec};
use crate::connectors::metadata::{wanted_of, with_metadata, MetaDef, MetaType};
use crate::connectors::template;
use crate::connectors::{CheckedSink, CheckedSource, IrSinkKind, IrSourceKind, SinkContext, SourceContext};
use crate::diagnostics::SpecError;
use crate::expr::check::TExpr;
use crate::spec::Setting;
use crate::types::RecordType;
use crate::validate::Cx;

/// What a pub/sub message offers besides its payload.
const PUBSUB_METADATA: &[MetaDef] = &[
    MetaDef {
        name: "channel",
        ty: MetaType::Text,
    },
    MetaDef {
        name: "pattern",
        ty: MetaType::OptText,
    },
];

/// What a stream entry offers besides the field holding the record.
const STREAM_METADATA: &[MetaDef] = &[
    MetaDef {
        name: "stream",
        ty: MetaType::Text,
    },
    MetaDef {
        name: "id",
        ty: MetaType::Text,
    },
];

/// Options that only a stream source reads.
const STREAM_OPTIONS: &[&str] = &["group", "consumer", "field", "start", "claim_idle"];

/// Default `cache` of a lookup: a row changed in Redis is seen within this long.
const DEFAULT_LOOKUP_CACHE_MS: u64 = 10_000;
/// Default `cache_rows` of a lookup.
const DEFAULT_LOOKUP_CACHE_ROWS: u64 = 100_000;

/// Default `claim_idle`: a consumer silent this long is taken for dead.
const DEFAULT_CLAIM_IDLE_MS: i64 = 60_000;

pub fn source(r: &RedisSource, source: &SourceContext<'_>, cx: &mut Cx) -> Option<CheckedSource> {
    let name = source.name;
    let path = ["sources", name];
    let client = client(&path, &r.url, r.username.as_ref(), r.password.as_ref(), cx);
    let pubsub = r.channels.is_some() || r.patterns.is_some();
    let read = match (&r.stream, pubsub) {
        (Some(_), true) => {
            let at = cx.key(&[&path[..], &["stream"]].concat());
            cx.error(SpecError::invalid_value(
                "stream",
                "a source reads pub/sub (`channels`, `patterns`) or one stream, not both",
                &at,
                Some("make two sources, one for each".into()),
            ));
            None
        }
        (None, false) => {
            let at = cx.key(&path);
            cx.error(SpecError::missing_field(
                "channels",
                &format!("source `{name}`"),
                &at,
                Some("`channels: [sensor_data]` (pub/sub), `patterns: [\"sensor.*\"]`, or `stream: readings` with a consumer group".into()),
            ));
            None
        }
        (Some(stream), false) => stream_read(name, source.pipeline, r, stream, cx),
        (None, true) => pubsub_read(name, r, cx),
    };
    let RedisMetadata {
        channel,
        pattern,
        stream,
        id,
    } = &r.metadata;
    let (defs, given, other) = if pubsub {
        (
            PUBSUB_METADATA,
            [channel.as_ref(), pattern.as_ref()],
            [("stream", stream), ("id", id)],
        )
    } else {
        (
            STREAM_METADATA,
            [stream.as_ref(), id.as_ref()],
            [("channel", channel), ("pattern", pattern)],
        )
    };
    let mut metadata_ok = true;
    for (option, given) in other {
        if given.is_some() {
            let at = cx.key(&["sources", name, "metadata", option]);
            let offered = defs
                .iter()
                .map(|d| format!("`{}`", d.name))
                .collect::<Vec<_>>()
                .join(", ");
            cx.error(SpecError::invalid_value(
                option,
                format!(
                    "a {} message has no `{option}`",
                    if pubsub { "pub/sub" } else { "stream" }
                ),
                &at,
                Some(format!("it offers {offered}")),
            ));
            metadata_ok = false;
        }
    }
    let wanted = wanted_of(name, defs, &given);
    let metadata = with_metadata(name, source.record, wanted, cx);
    let (client, read, (record, metadata)) = (client?, read?, metadata?);
    cx.features.insert("redis");
    let commits = matches!(read, IrRedisRead::Stream { .. });
    metadata_ok.then_some(CheckedSource {
        kind: IrSourceKind::Redis(IrRedisSource { client, read }),
        record,
        metadata,
        // Stream entries are acknowledged (XACK) once safe; pub/sub has nothing to hold.
        commits,
    })
}

/// A lookup join's `redis:` (at `path`): the server, the keys' prefix, the cache.
pub fn lookup(path: &[&str], r: &RedisLookup, cx: &mut Cx) -> Option<IrRedisLookup> {
    let client = client(path, &r.url, r.username.as_ref(), r.password.as_ref(), cx);
    let cache_ms = match &r.cache {
        None => Some(DEFAULT_LOOKUP_CACHE_MS),
        Some(text) => cx
            .duration(&[path, &["cache"]].concat(), text, false)
            .map(i64::unsigned_abs),
    };
    cx.features.insert("redis");
    Some(IrRedisLookup {
        client: client?,
        prefix: r.prefix.clone().unwrap_or_default(),
        cache_ms: cache_ms?,
        cache_rows: r.cache_rows.unwrap_or(DEFAULT_LOOKUP_CACHE_ROWS),
    })
}

fn pubsub_read(name: &str, r: &RedisSource, cx: &mut Cx) -> Option<IrRedisRead> {
    let mut ok = true;
    for option in STREAM_OPTIONS {
        let given = match *option {
            "group" => r.group.is_some(),
            "consumer" => r.consumer.is_some(),
            "field" => r.field.is_some(),
            "start" => r.start.is_some(),
            _ => r.claim_idle.is_some(),
        };
        if given {
            let at = cx.key(&["sources", name, option]);
            cx.error(SpecError::invalid_value(
                *option,
                format!("`{option}` is for a stream; pub/sub has no consumer group"),
                &at,
                Some("remove it, or read a stream: `stream: readings`".into()),
            ));
            ok = false;
        }
    }
    let channels = names(name, "channels", r.channels.as_deref(), cx);
    let patterns = names(name, "patterns", r.patterns.as_deref(), cx);
    let (channels, patterns) = (channels?, patterns?);
    if channels.is_empty() && patterns.is_empty() {
        let option = if r.channels.is_some() { "channels" } else { "patterns" };
        let at = cx.value(&["sources", name, option]);
        cx.error(SpecError::invalid_value(
            option,
            "nothing to subscribe to",
            &at,
            Some("name at least one: `channels: [sensor_data]`".into()),
        ));
        ok = false;
    }
    ok.then_some(IrRedisRead::PubSub { channels, patterns })
}

/// Channel or pattern names: non-empty, compiled in.
fn names(source: &str, option: &str, given: Option<&[String]>, cx: &mut Cx) -> Option<Vec<String>> {
    let mut ok = true;
    for (i, text) in given.unwrap_or_default().iter().enumerate() {
        let problem = if text.is_empty() {
            "an empty name"
        } else if text.contains("${") {
            "names are compiled in: `${VAR}` is not expanded here"
        } else {
            continue;
        };
        let index = i.to_string();
        let at = cx.value(&["sources", source, option, &index]);
        cx.error(SpecError::invalid_value(option, problem, &at, None));
        ok = false;
    }
    ok.then(|| given.unwrap_or_default().to_vec())
}

fn stream_read(name: &str, pipeline: &str, r: &RedisSource, stream: &str, cx: &mut Cx) -> Option<IrRedisRead> {
    let mut ok = true;
    if stream.is_empty() || stream.contains("${") {
        let at = cx.value(&["sources", name, "stream"]);
        cx.error(SpecError::invalid_value(
            "stream",
            if stream.is_empty() {
                "an empty stream name"
            } else {
                "stream names are compiled in: `${VAR}` is not expanded here"
            },
            &at,
            Some("`stream: readings`".into()),
        ));
        ok = false;
    }
    let group = r.group.as_ref().map_or_else(|| pipeline.to_string(), |g| g.0.clone());
    let group = cx.setting(
        &["sources", name, "group"],
        "group",
        &group,
        "Redis consumer group: the binaries sharing it share the stream's entries",
    );
    let consumer = r
        .consumer
        .as_ref()
        .map_or_else(|| format!("{pipeline}-{name}"), |c| c.0.clone());
    let consumer = cx.setting(
        &["sources", name, "consumer"],
        "consumer",
        &consumer,
        "Redis consumer name: its pending entries are read again after a restart",
    );
    let field = field_name(&["sources", name, "field"], r.field.as_deref(), cx);
    let claim_idle_ms = match &r.claim_idle {
        Some(text) => cx.duration(&["sources", name, "claim_idle"], text, true),
        None => Some(DEFAULT_CLAIM_IDLE_MS),
    };
    let (field, claim_idle_ms) = (field?, claim_idle_ms?);
    ok.then(|| IrRedisRead::Stream {
        stream: stream.to_string(),
        group,
        consumer,
        field,
        earliest: r.start.unwrap_or_default() == RedisStart::Earliest,
        claim_idle_ms: u64::try_from(claim_idle_ms).unwrap_or(u64::MAX),
    })
}

/// A stream entry's field name (default `data`).
fn field_name(path: &[&str], given: Option<&str>, cx: &mut Cx) -> Option<String> {
    match given {
        None => Some("data".to_string()),
        Some(f) if !f.is_empty() => Some(f.to_string()),
        Some(_) => {
            let at = cx.value(path);
            cx.error(SpecError::invalid_value(
                "field",
                "an empty field name",
                &at,
                Some("`field: data` (the default)".into()),
            ));
            None
        }
    }
}

pub fn sink(r: &RedisSink, sink: &SinkContext<'_>, cx: &mut Cx) -> Option<CheckedSink> {
    let name = sink.name;
    let path = ["sinks", name];
    let client = client(&path, &r.url, r.username.as_ref(), r.password.as_ref(), cx);
    // The option naming where records go, and the command it means.
    let given: Vec<&str> = [
        ("channel", r.channel.is_some()),
        ("stream", r.stream.is_some()),
        ("hash", r.hash.is_some()),
    ]
    .into_iter()
    .filter_map(|(option, set)| set.then_some(option))
    .collect();
    let (command, name_spec) = match (given.as_slice(), &r.key) {
        ([], Some(key)) => (Some("key"), Some(key)),
        (["hash"], _) => (Some("hash"), r.hash.as_ref()),
        ([one], None) => (Some(*one), [&r.channel, &r.stream].into_iter().flatten().next()),
        ([one], Some(_)) => {
            let at = cx.key(&["sinks", name, "key"]);
            cx.error(SpecError::invalid_value(
                "key",
                format!("`key` is for SET (alone) or HSET (with `hash`), not with `{one}`"),
                &at,
                Some("remove `key`; a stream entry or a published message has no key".into()),
            ));
            (None, None)
        }
        ([], None) => {
            let at = cx.key(&path);
            cx.error(SpecError::missing_field(
                "channel",
                &format!("sink `{name}`"),
                &at,
                Some("say where records go: `channel: alerts` (PUBLISH), `stream: clean` (XADD), `key: \"clicks:{user_id}\"` (SET), or `hash: clicks` with `key: \"{user_id}\"` (HSET)".into()),
            ));
            (None, None)
        }
        ([first, second, ..], _) => {
            let at = cx.key(&["sinks", name, second]);
            cx.error(SpecError::invalid_value(
                *second,
                format!("a sink writes one way: `{first}` and `{second}` are both given"),
                &at,
                Some("make one sink for each".into()),
            ));
            (None, None)
        }
    };
    let options_ok = command.is_some_and(|command| options_fit(name, command, r, cx));
    let write = command.and_then(|command| write_of(name, command, r, cx));
    let target = match (command, name_spec) {
        (Some(command), Some(spec)) => target(name, command, spec, sink.record, cx),
        _ => None,
    };
    // HSET: the field in the hash, per record.
    let field = match (command, &r.key) {
        (Some("hash"), None) => {
            let at = cx.key(&path);
            cx.error(SpecError::missing_field(
                "key",
                &format!("sink `{name}`"),
                &at,
                Some("the field of the hash each record is written to: `key: \"{user_id}\"`".into()),
            ));
            None
        }
        (Some("hash"), Some(key)) => sink.record.and_then(|record| match key {
            TopicSpec::Fixed(text) => template::expression(name, "key", text, record, cx).map(Some),
            TopicSpec::Expr(e) => crate::connectors::message::string_expr(
                "the key",
                &e.expr,
                record,
                &["sinks", name, "key", "expr"],
                false,
                cx,
            )
            .map(Some),
        }),
        _ => Some(None),
    };
    let (client, write, (fixed, per_record), field) = (client?, write?, target?, field?);
    sink.record?;
    if !options_ok {
        return None;
    }
    cx.features.insert("redis");
    Some(CheckedSink {
        kind: IrSinkKind::Redis(IrRedisSink {
            client,
            write,
            name: fixed,
        }),
        address: Some(IrAddress {
            topic: per_record,
            key: field,
            ..IrAddress::default()
        }),
    })
}

/// Options of one command given to another: `max_len` without `stream`, `ttl` with it.
fn options_fit(sink: &str, command: &str, r: &RedisSink, cx: &mut Cx) -> bool {
    let misplaced: [(&str, bool, &str, &[&str]); 3] = [
        ("max_len", r.max_len.is_some(), "stream", &["stream"]),
        ("field", r.field.is_some(), "stream", &["stream"]),
        ("ttl", r.ttl.is_some(), "key", &["key", "hash"]),
    ];
    let mut ok = true;
    for (option, given, belongs, fits) in misplaced {
        if given && !fits.contains(&command) {
            let at = cx.key(&["sinks", sink, option]);
            cx.error(SpecError::invalid_value(
                option,
                format!("`{option}` goes with `{belongs}`"),
                &at,
                Some(format!("remove it: this sink writes with `{command}`")),
            ));
            ok = false;
        }
    }
    ok
}

fn write_of(sink: &str, command: &str, r: &RedisSink, cx: &mut Cx) -> Option<IrRedisWrite> {
    let ttl_ms = match &r.ttl {
        Some(text) => Some(cx.duration(&["sinks", sink, "ttl"], text, true)?),
        None => None,
    };
    let ttl_ms = ttl_ms.map_or(0, |ms| u64::try_from(ms).unwrap_or(u64::MAX));
    Some(match command {
        "channel" => IrRedisWrite::Publish,
        "stream" => {
            if r.max_len == Some(0) {
                let at = cx.value(&["sinks", sink, "max_len"]);
                cx.error(SpecError::invalid_value(
                    "max_len",
                    "a stream trimmed to 0 entries keeps nothing",
                    &at,
                    Some("`max_len: 100000` keeps about the newest 100,000 entries".into()),
                ));
                return None;
            }
            IrRedisWrite::Xadd {
                max_len: r.max_len.unwrap_or(0),
                field: field_name(&["sinks", sink, "field"], r.field.as_deref(), cx)?,
            }
        }
        "key" => IrRedisWrite::Set { ttl_ms },
        _ => IrRedisWrite::Hset { ttl_ms },
    })
}

/// The channel, stream, key or hash: compiled in (`fixed`), or per record.
fn target(
    sink: &str,
    option: &str,
    spec: &TopicSpec,
    record: Option<&RecordType>,
    cx: &mut Cx,
) -> Option<(String, Option<TExpr>)> {
    match spec {
        TopicSpec::Fixed(text) if text.is_empty() || text.contains("${") => {
            let at = cx.value(&["sinks", sink, option]);
            cx.error(SpecError::invalid_value(
                option,
                if text.is_empty() {
                    "an empty name"
                } else {
                    "names are compiled in: `${VAR}` is not expanded here"
                },
                &at,
                Some(format!(
                    "`{option}: alerts`, or `{option}: \"alerts.{{device_id}}\"` for one per record"
                )),
            ));
            None
        }
        TopicSpec::Fixed(text) if !text.contains('{') => Some((text.clone(), None)),
        TopicSpec::Fixed(text) => record
            .and_then(|record| template::expression(sink, option, text, record, cx).map(|e| (String::new(), Some(e)))),
        TopicSpec::Expr(e) => record
            .and_then(|record| {
                crate::connectors::message::string_expr(
                    &format!("the {option}"),
                    &e.expr,
                    record,
                    &["sinks", sink, option, "expr"],
                    false,
                    cx,
                )
            })
            .map(|e| (String::new(), Some(e))),
    }
}

/// The connection settings, resolved at start. The URL's scheme is checked when it is
/// known now (a literal, or a sole `${VAR:-default}`'s default).
fn client(
    path: &[&str],
    url: &Setting,
    username: Option<&Setting>,
    password: Option<&Setting>,
    cx: &mut Cx,
) -> Option<IrRedisClient> {
    let at = |option: &'static str| [path, &[option]].concat();
    let known = url.known_now();
    let text = known.unwrap_or_default().trim();
    let problem = match known {
        None => None,
        Some(_) if text.starts_with("redis://") => None,
        Some(_) if text.starts_with("rediss://") => Some((
            "TLS (`rediss://`) is not supported yet",
            "`redis://host:6379`; reach a TLS server through a local TLS tunnel (stunnel)",
        )),
        Some(_) if text.is_empty() => Some(("an empty URL", "`redis://host:6379`")),
        Some(_) => Some((
            "not a Redis URL",
            "`redis://host:6379`, or `redis://host:6379/2` for database 2",
        )),
    };
    if let Some((problem, help)) = problem {
        cx.bad_url(&at("url"), text, problem, help);
    }
    let url = cx.setting(&at("url"), "url", &url.0, "Redis server, redis://host:port[/db]");
    let username = username.map(|u| cx.setting(&at("username"), "username", &u.0, "Redis user (ACL)"));
    let password = password.map(|p| cx.setting(&at("password"), "password", &p.0, "Redis password"));
    problem.is_none().then_some(IrRedisClient {
        url,
        username,
        password,
    })
}

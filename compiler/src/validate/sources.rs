//! Sources: schema, format and connection settings.

use std::rc::Rc;

use super::records::{line_record, Schemas};
use super::{kafka, Cx};
use crate::diagnostics::SpecError;
use crate::ir::{GenField, GenKind, IrFormat, IrSource, IrSourceKind, IrTime, PropertyValue};
use crate::spec::duration::parse_millis;
use crate::spec::sources::{GenFieldSpec, GeneratorSource, KafkaSource, SourceCommon};
use crate::spec::{FormatName, Named, Setting, SourceKind, SourceSpec, Spec};
use crate::types::{RecordType, TsRepr, Type};

/// One entry per spec source; `None` where the source has errors.
pub fn check(spec: &Spec, schemas: &Schemas, cx: &mut Cx) -> Vec<Option<IrSource>> {
    spec.sources
        .iter()
        .map(|s| source(&spec.name, s, schemas, cx))
        .collect()
}

fn source(pipeline: &str, named: &Named<SourceSpec>, schemas: &Schemas, cx: &mut Cx) -> Option<IrSource> {
    let name = named.name.as_str();
    let common = &named.spec.common;
    let is_generator = matches!(named.spec.kind, SourceKind::Generator(_));
    let format_name = common.format.unwrap_or(FormatName::Json);
    if is_generator && format_name != FormatName::Json {
        let at = cx.value(&["sources", name, "format"]);
        cx.error(SpecError::bad_format_option(
            "the generator source produces JSON records",
            &at,
            "remove `format:` or set `format: json`",
        ));
        return None;
    }
    let format = format(common, format_name, &["sources", name], cx)?;
    let mut record = record(name, common, format_name, schemas, cx)?;
    if matches!(format, IrFormat::Csv { .. }) && !record.is_flat() {
        let at = cx.value(&["sources", name, "format"]);
        cx.error(SpecError::bad_format_option(
            format!("csv cannot hold the nested fields of {}", record.display),
            &at,
            "use `format: json` for nested records, or flatten the schema",
        ));
        return None;
    }
    let kind = match &named.spec.kind {
        SourceKind::File(f) => {
            let path_key = cx.setting(
                &["sources", name, "path"],
                "path",
                &f.path.0,
                "path of the file to read",
            );
            IrSourceKind::File {
                path_key,
                follow: f.follow,
            }
        }
        SourceKind::Stdin(_) => IrSourceKind::Stdin,
        SourceKind::Generator(g) => generator(name, g, &record, cx)?,
        SourceKind::Kafka(k) => {
            let (with_meta, kind) = kafka_source(pipeline, name, k, format, &record, cx)?;
            record = with_meta;
            kind
        }
    };
    let time = time(name, common, &record, cx)?;
    Some(IrSource {
        name: name.to_string(),
        kind,
        format,
        record,
        on_error: common.on_error,
        time,
        outputs: Vec::new(),
    })
}

/// A Kafka source's client properties, topics and metadata fields; returns its record
/// with the metadata fields added.
fn kafka_source(
    pipeline: &str,
    name: &str,
    k: &KafkaSource,
    format: IrFormat,
    record: &Rc<RecordType>,
    cx: &mut Cx,
) -> Option<(Rc<RecordType>, IrSourceKind)> {
    let path = ["sources", name];
    if matches!(format, IrFormat::Csv { .. }) {
        let at = cx.value(&["sources", name, "format"]);
        cx.error(SpecError::bad_format_option(
            "csv is not supported for Kafka messages yet (a message has no header line)",
            &at,
            "use `format: json`, or `format: lines` and split the line in a transform",
        ));
        return None;
    }
    let properties = kafka::client_properties(&path, k.client(), cx);
    let topics_ok = kafka::topics(&path, &k.topics, cx);
    let metadata = kafka::with_metadata(name, record, &k.metadata, cx);
    let (mut properties, metadata) = (properties?, metadata?);
    let default_group = k.group_id.clone().unwrap_or_else(|| Setting(pipeline.to_string()));
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
    topics_ok.then(|| {
        let kind = IrSourceKind::Kafka {
            properties,
            topics: k.topics.clone(),
            headers: metadata.headers,
            metadata: metadata.fields,
        };
        (metadata.record, kind)
    })
}

/// `event_time:` and `watermark:`: where records get their time.
fn time(name: &str, common: &SourceCommon, record: &RecordType, cx: &mut Cx) -> Option<IrTime> {
    let Some(field) = &common.event_time else {
        if common.watermark.is_some() {
            let at = cx.key(&["sources", name, "watermark"]);
            cx.error(SpecError::invalid_value(
                "watermark",
                "a watermark tracks event time, and this source has no `event_time:`",
                &at,
                Some("add `event_time: <timestamp field>`, or remove `watermark:` to use processing time".into()),
            ));
            return None;
        }
        return Some(IrTime::Processing);
    };
    let at = cx.value(&["sources", name, "event_time"]);
    let path: Vec<String> = field.split('.').map(|s| s.trim().to_string()).collect();
    let mut current = record;
    let mut ty = None;
    for (i, segment) in path.iter().enumerate() {
        let Some(f) = current.field(segment) else {
            cx.error(SpecError::unknown_expr_field(
                segment,
                &current.display,
                &at,
                &current.field_names(),
            ));
            return None;
        };
        match (&f.ty, i + 1 == path.len()) {
            (t, true) => ty = Some(t.clone()),
            (Type::Record(nested), false) => current = nested,
            (other, false) => {
                cx.error(SpecError::type_mismatch(
                    format!("`{segment}` is {other}, not a record"),
                    "no fields inside",
                    &at,
                    None,
                ));
                return None;
            }
        }
    }
    let optional = match ty? {
        Type::Timestamp => false,
        Type::Optional(inner) if *inner == Type::Timestamp => true,
        other => {
            let help = if matches!(other, Type::I64 | Type::U64 | Type::Optional(_)) {
                "declare the field as `timestamp_ms` (or `timestamp_s`, `timestamp`) in the schema"
            } else {
                "event time comes from a timestamp field of the schema"
            };
            cx.error(SpecError::type_mismatch(
                format!("event time must be a timestamp, `{field}` is {other}"),
                format!("this is {other}"),
                &at,
                Some(help.into()),
            ));
            return None;
        }
    };
    let watermark = common.watermark.as_ref();
    let max_out_of_order = match watermark.and_then(|w| w.max_out_of_order.as_ref()) {
        None => 0,
        Some(text) => cx.duration(&["sources", name, "watermark", "max_out_of_order"], text, false)?,
    };
    let idle_timeout = match watermark.and_then(|w| w.idle_timeout.as_ref()) {
        None => None,
        Some(text) => Some(cx.duration(&["sources", name, "watermark", "idle_timeout"], text, true)?),
    };
    Some(IrTime::Event {
        field: path,
        optional,
        max_out_of_order,
        idle_timeout,
    })
}

/// The format with its options, checked against each other.
pub fn format(options: &impl HasFormatOptions, name: FormatName, path: &[&str], cx: &mut Cx) -> Option<IrFormat> {
    let (delimiter, header) = options.options();
    let at_key = |key: &str, cx: &mut Cx| {
        let mut p = path.to_vec();
        p.push(key);
        cx.key(&p)
    };
    if name != FormatName::Csv {
        for (key, given) in [("delimiter", delimiter.is_some()), ("header", header.is_some())] {
            if given {
                let at = at_key(key, cx);
                cx.error(SpecError::bad_format_option(
                    format!("`{key}` only applies to the csv format, not {}", name.as_str()),
                    &at,
                    "remove it, or set `format: csv`",
                ));
                return None;
            }
        }
    }
    Some(match name {
        FormatName::Json => IrFormat::Json,
        FormatName::Lines => IrFormat::Lines,
        FormatName::Csv => {
            let delimiter = match delimiter {
                None => b',',
                Some(d) if d.len() == 1 && d.is_ascii() => d.as_bytes()[0],
                Some(d) => {
                    let mut p = path.to_vec();
                    p.push("delimiter");
                    let at = cx.value(&p);
                    cx.error(SpecError::bad_format_option(
                        format!("a csv delimiter is one ASCII character, found `{d}`"),
                        &at,
                        "common delimiters: `,` `;` `|` and tab (`\"\\t\"`)",
                    ));
                    return None;
                }
            };
            IrFormat::Csv {
                delimiter,
                header: header.unwrap_or(true),
            }
        }
    })
}

/// Format options shared by sources and sinks.
pub trait HasFormatOptions {
    fn options(&self) -> (Option<&str>, Option<bool>);
}

impl HasFormatOptions for SourceCommon {
    fn options(&self) -> (Option<&str>, Option<bool>) {
        (self.delimiter.as_deref(), None)
    }
}

fn record(
    name: &str,
    common: &SourceCommon,
    format: FormatName,
    schemas: &Schemas,
    cx: &mut Cx,
) -> Option<Rc<RecordType>> {
    if format == FormatName::Lines {
        if common.schema.is_some() {
            let at = cx.key(&["sources", name, "schema"]);
            cx.error(SpecError::bad_format_option(
                "the lines format has a fixed schema: one string field, `line`",
                &at,
                "remove `schema:`; parse the line in a transform, e.g. `split(line, \",\")[0]`",
            ));
            return None;
        }
        return Some(line_record(name));
    }
    let Some(schema) = &common.schema else {
        let at = cx.key(&["sources", name]);
        cx.error(SpecError::missing_field(
            "schema",
            &format!("source `{name}`"),
            &at,
            Some(format!(
                "{} records need a schema: `schema: <name from schemas:>`",
                format.as_str()
            )),
        ));
        return None;
    };
    match schemas.get(schema) {
        Some(r) => Some(r.clone()),
        None => {
            let at = cx.value(&["sources", name, "schema"]);
            let valid: Vec<&str> = schemas.keys().map(String::as_str).collect();
            cx.error(SpecError::unknown_schema(schema, &at, &valid));
            None
        }
    }
}

fn generator(name: &str, g: &GeneratorSource, record: &RecordType, cx: &mut Cx) -> Option<IrSourceKind> {
    let count = g.count.clone().unwrap_or(Setting(String::new()));
    let rate = g.rate.clone().unwrap_or(Setting(String::new()));
    let mut ok = number_setting(
        &count,
        &["sources", name, "count"],
        |s| s.parse::<u64>().is_ok(),
        "a whole number of events",
        cx,
    );
    ok &= number_setting(
        &rate,
        &["sources", name, "rate"],
        |s| s.parse::<f64>().is_ok_and(|r| r > 0.0),
        "events per second, above 0",
        cx,
    );
    let count_key = cx.setting(
        &["sources", name, "count"],
        "count",
        &count.0,
        "number of events to generate (empty: unbounded)",
    );
    let rate_key = cx.setting(
        &["sources", name, "rate"],
        "rate",
        &rate.0,
        "events per second (empty: as fast as possible)",
    );
    for field in g.fields.keys() {
        if record.field(field).is_none() {
            let at = cx.key(&["sources", name, "fields", field]);
            cx.error(SpecError::unknown_field(
                field,
                &record.display,
                &at,
                &record.field_names(),
            ));
            ok = false;
        }
    }
    let fields = gen_fields(record, &g.fields, &["sources", name, "fields"], cx)?;
    ok.then_some(IrSourceKind::Generator {
        count_key,
        rate_key,
        seed: g.seed,
        fields,
    })
}

fn number_setting(value: &Setting, path: &[&str], valid: impl Fn(&str) -> bool, what: &str, cx: &mut Cx) -> bool {
    if value.0.is_empty() || value.is_template() || valid(&value.0) {
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

fn gen_fields(
    record: &RecordType,
    specs: &std::collections::BTreeMap<String, GenFieldSpec>,
    path: &[&str],
    cx: &mut Cx,
) -> Option<Vec<GenField>> {
    let default = GenFieldSpec::default();
    let mut fields = Vec::new();
    let mut ok = true;
    for field in &record.fields {
        let spec = specs.get(&field.name).unwrap_or(&default);
        let mut field_path = path.to_vec();
        field_path.push(&field.name);
        match gen_kind(&field.name, &field.ty, field.ts_repr, spec, &field_path, cx) {
            Some(kind) => fields.push(GenField {
                name: field.name.clone(),
                kind,
            }),
            None => ok = false,
        }
    }
    ok.then_some(fields)
}

fn gen_kind(name: &str, ty: &Type, repr: TsRepr, spec: &GenFieldSpec, path: &[&str], cx: &mut Cx) -> Option<GenKind> {
    let misfit = |option: &str, cx: &mut Cx| {
        let mut p = path.to_vec();
        p.push(option);
        let at = cx.key(&p);
        cx.error(SpecError::invalid_value(
            option,
            format!("does not apply to `{name}` ({ty})"),
            &at,
            Some("strings: values, prefix, cardinality; numbers: min, max, sequence; bool: p_true; timestamps: start, step, jitter; optional: null_ratio".into()),
        ));
        None
    };
    let duration = |option: &str, value: &Option<String>, default: i64, cx: &mut Cx| -> Option<i64> {
        match value {
            None => Some(default),
            Some(text) => match parse_millis(text) {
                Ok(ms) => Some(ms as i64),
                Err(reason) => {
                    let mut p = path.to_vec();
                    p.push(option);
                    let at = cx.value(&p);
                    cx.error(SpecError::bad_duration(text, &reason, &at));
                    None
                }
            },
        }
    };
    let min = spec.min.unwrap_or(0.0);
    let max = spec.max.unwrap_or(100.0);
    Some(match ty {
        Type::Optional(inner) => {
            let inner = gen_kind(
                name,
                inner,
                repr,
                &GenFieldSpec {
                    null_ratio: None,
                    ..spec.clone()
                },
                path,
                cx,
            )?;
            GenKind::Optional {
                p_null: spec.null_ratio.unwrap_or(0.1),
                inner: Box::new(inner),
            }
        }
        _ if spec.null_ratio.is_some() => return misfit("null_ratio", cx),
        Type::String => match (&spec.values, &spec.prefix) {
            (Some(values), _) if !values.is_empty() => GenKind::Values(values.clone()),
            _ => GenKind::Text {
                prefix: spec.prefix.clone().unwrap_or_else(|| format!("{name}-")),
                cardinality: spec.cardinality.unwrap_or(10).max(1),
            },
        },
        _ if spec.values.is_some() => return misfit("values", cx),
        Type::I64 if spec.sequence => GenKind::Sequence,
        Type::U64 if spec.sequence => GenKind::Sequence,
        Type::I64 => GenKind::Int {
            min: min as i64,
            max: max as i64,
        },
        Type::U64 => GenKind::UInt {
            min: min.max(0.0) as u64,
            max: max.max(0.0) as u64,
        },
        Type::F64 => GenKind::Float { min, max },
        Type::Bool => GenKind::Bool {
            p_true: spec.p_true.unwrap_or(0.5),
        },
        Type::Timestamp => {
            let step = duration("step", &spec.step, 1000, cx);
            let jitter = duration("jitter", &spec.jitter, 0, cx);
            GenKind::Time {
                start_ms: spec.start.unwrap_or(1_700_000_000_000),
                step_ms: step?,
                jitter_ms: jitter?,
                repr,
            }
        }
        Type::Record(nested) => GenKind::Object(gen_fields(nested, &Default::default(), path, cx)?),
        Type::List(_) => return misfit("values", cx),
    })
}

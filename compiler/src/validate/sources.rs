//! Sources: schema, format and connection settings.

use std::rc::Rc;

use super::records::{line_record, Schemas};
use super::{number_setting, Cx};
use crate::connectors::{Arrival, SourceContext};
use crate::diagnostics::SpecError;
use crate::ir::{IrFormat, IrSource, IrTime};
use crate::spec::sources::SourceCommon;
use crate::spec::{FormatName, Named, Setting, SourceSpec, Spec};
use crate::types::{RecordType, Type};

/// The default `max_record_bytes` of the sources that frame a byte stream into lines: 1 MiB.
const DEFAULT_MAX_RECORD_BYTES: &str = "1048576";

/// One entry per spec source; `None` where the source has errors.
pub fn check(spec: &Spec, schemas: &Schemas, cx: &mut Cx) -> Vec<Option<IrSource>> {
    spec.sources.iter().map(|s| source(spec, s, schemas, cx)).collect()
}

fn source(spec: &Spec, named: &Named<SourceSpec>, schemas: &Schemas, cx: &mut Cx) -> Option<IrSource> {
    let name = named.name.as_str();
    let common = &named.spec.common;
    let arrival = named.spec.kind.arrival();
    let format_name = common.format.unwrap_or(FormatName::Json);
    if arrival == Arrival::Generated && format_name != FormatName::Json {
        let at = cx.value(&["sources", name, "format"]);
        cx.error(SpecError::bad_format_option(
            format!("the {} source produces JSON records", named.spec.kind.type_name()),
            &at,
            "remove `format:` or set `format: json`",
        ));
        return None;
    }
    let format = format(common, format_name, &["sources", name], cx)?;
    if arrival == Arrival::Messages && matches!(format, IrFormat::Csv { .. }) {
        let at = cx.value(&["sources", name, "format"]);
        cx.error(SpecError::bad_format_option(
            format!(
                "csv is not supported for `{}` messages yet (a message has no header line)",
                named.spec.kind.type_name()
            ),
            &at,
            "use `format: json`, or `format: lines` and split the line in a transform",
        ));
        return None;
    }
    let record = record(name, common, format_name, schemas, &spec.unreadable_schemas, cx)?;
    if matches!(format, IrFormat::Csv { .. }) && !record.is_flat() {
        let at = cx.value(&["sources", name, "format"]);
        cx.error(SpecError::bad_format_option(
            format!("csv cannot hold the nested fields of {}", record.display),
            &at,
            "use `format: json` for nested records, or flatten the schema",
        ));
        return None;
    }
    let context = SourceContext {
        pipeline: spec.name.as_str(),
        name,
        format,
        record: &record,
    };
    let checked = named.spec.kind.check(&context, cx)?;
    let time = time(name, common, &checked.record, cx)?;
    Some(IrSource {
        name: name.to_string(),
        stem: cx.names.stem(name),
        kind: checked.kind,
        format,
        record: checked.record,
        metadata: checked.metadata,
        commits: checked.commits,
        on_error: common.on_error,
        time,
        outputs: Vec::new(),
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
        idents: record.path_idents(&path)?,
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
    unreadable_schemas: &[String],
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
        return Some(line_record(name, &mut cx.names));
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
        // Defined, and already reported where it is.
        None if unreadable_schemas.contains(schema) => None,
        None => {
            let at = cx.value(&["sources", name, "schema"]);
            let valid: Vec<&str> = schemas.keys().map(String::as_str).collect();
            cx.error(SpecError::unknown_schema(schema, &at, &valid));
            None
        }
    }
}

/// The `max_record_bytes` setting of a source framing lines (a whole number above 0).
pub(crate) fn max_record_bytes(name: &str, value: Option<&Setting>, cx: &mut Cx) -> String {
    let value = value
        .cloned()
        .unwrap_or_else(|| Setting(DEFAULT_MAX_RECORD_BYTES.to_owned()));
    number_setting(
        &value,
        &["sources", name, "max_record_bytes"],
        |s| s.parse::<u64>().is_ok_and(|n| n > 0),
        "a whole number of bytes, above 0",
        false,
        cx,
    );
    cx.setting(
        &["sources", name, "max_record_bytes"],
        "max_record_bytes",
        &value.0,
        "longest record in bytes; a longer one is a dead letter",
    )
}

//! Joins: a stream's key, the reference data's file, schema and key field (of the same
//! type, or a diagnostic at both), what becomes of a miss, and the `select` over the
//! joined record.

use std::rc::Rc;

use super::records::Schemas;
use super::transforms::{expression, mapped_record};
use super::Cx;
use crate::diagnostics::SpecError;
use crate::expr::TExpr;
use crate::ir::{IrFormat, IrJoin, IrLookup, IrMissing, IrOperator};
use crate::spec::joins::{JoinSpec, LookupSpec, Missing};
use crate::spec::{FormatName, Spec};
use crate::types::{Field, RecordType, TsRepr, Type};

/// How often a lookup file is looked at for a change, when the spec does not say.
const DEFAULT_RELOAD_MS: u64 = 10_000;

pub fn join(
    name: &str,
    spec: &JoinSpec,
    input: &Rc<RecordType>,
    all: &Spec,
    schemas: &Schemas,
    table: Option<&IrOperator>,
    cx: &mut Cx,
) -> Option<IrJoin> {
    let streams_only = [
        ("kind", spec.kind.is_some()),
        ("interval", spec.interval.is_some()),
        ("tumbling", spec.tumbling.is_some()),
        ("hopping", spec.hopping.is_some()),
        ("offset", spec.offset.is_some()),
        ("late", spec.late.is_some()),
        ("on_error", spec.on_error.is_some()),
    ];
    let mut ok = true;
    for (option, _) in streams_only.iter().filter(|(_, given)| *given) {
        let at = cx.key(&["joins", name, option]);
        cx.error(SpecError::invalid_value(
            *option,
            "only a join of two streams (`left:` and `right:`) takes it",
            &at,
            Some(format!(
                "remove `{option}:`: a lookup pairs each record with the row of its key at once"
            )),
        ));
        ok = false;
    }
    let Some(lookup) = &spec.lookup else {
        let at = cx.key(&["joins", name]);
        cx.error(SpecError::missing_field(
            "lookup",
            &format!("join `{name}`"),
            &at,
            Some("the reference data: `lookup: { file: devices.csv, format: csv, schema: device, key: id }`, or two streams: `left: { input: orders, key: id }` and `right:`".into()),
        ));
        return None;
    };
    let key = stream_key(name, spec, input, cx);
    let given: Vec<&str> = [
        ("file", lookup.file.is_some()),
        ("table", lookup.table.is_some()),
        ("redis", lookup.redis.is_some()),
    ]
    .into_iter()
    .filter_map(|(option, given)| given.then_some(option))
    .collect();
    let found = match given.as_slice() {
        ["table"] => table_lookup(name, lookup, key.as_ref(), table, cx),
        ["redis"] => redis_lookup(name, lookup, all, schemas, cx),
        [first, second, ..] => {
            let at = cx.key(&["joins", name, "lookup", second]);
            cx.error(SpecError::invalid_value(
                *second,
                format!("a lookup reads one of a file, a table or Redis, and this one has `{first}:` too"),
                &at,
                Some(format!("remove `{first}:` or `{second}:`")),
            ));
            None
        }
        // None given: a file's missing `file:` is reported.
        _ => file_lookup(name, spec, lookup, key.as_ref(), all, schemas, cx),
    };
    let missing = match spec.missing.unwrap_or(Missing::Null) {
        Missing::Null => IrMissing::Null,
        Missing::Drop => IrMissing::Drop,
        Missing::DeadLetter => IrMissing::DeadLetter,
    };
    let ((reference, source), key) = (found?, key?);
    if !ok {
        return None;
    }
    let as_name = lookup
        .name
        .clone()
        .or_else(|| lookup.table.clone())
        .unwrap_or_else(|| lookup.schema.clone().unwrap_or_default());
    let joined = joined_record(name, lookup, &as_name, input, &reference, missing, cx)?;
    let select = match &spec.select {
        None => None,
        Some(entries) => Some(mapped_record("joins", name, "select", entries, &joined, cx)?),
    };
    let output = select.as_ref().map_or_else(|| joined.clone(), |(r, _)| r.clone());
    Some(IrJoin {
        key,
        reference,
        source,
        missing,
        joined,
        select,
        output,
    })
}

/// A lookup file: its rows' schema, format, path, key field (of the stream key's type)
/// and reload period.
fn file_lookup(
    name: &str,
    spec: &JoinSpec,
    lookup: &LookupSpec,
    key: Option<&TExpr>,
    all: &Spec,
    schemas: &Schemas,
    cx: &mut Cx,
) -> Option<(Rc<RecordType>, IrLookup)> {
    let path = |field: &'static str| ["joins", name, "lookup", field];
    let reference = reference_record(name, lookup, all, schemas, cx);
    let format = match lookup.format.unwrap_or(FormatName::Json) {
        FormatName::Json => Some(IrFormat::Json),
        FormatName::Csv => match &reference {
            Some(r) if !r.is_flat() => {
                let at = cx.value(&path("format"));
                cx.error(SpecError::bad_format_option(
                    format!("csv cannot hold the nested fields of {}", r.display),
                    &at,
                    "use `format: json` for nested records, or flatten the schema",
                ));
                None
            }
            _ => Some(IrFormat::Csv {
                delimiter: b',',
                header: true,
            }),
        },
        FormatName::Lines => {
            let at = cx.value(&path("format"));
            cx.error(SpecError::bad_format_option(
                "a lookup file is JSON lines or CSV with a header".to_string(),
                &at,
                "set `format: json` or `format: csv`",
            ));
            None
        }
    };
    let path_key = match &lookup.file {
        Some(file) => Some(cx.setting(&path("file"), "file", &file.0, "path of the lookup file")),
        None => {
            let at = cx.key(&["joins", name, "lookup"]);
            cx.error(SpecError::missing_field(
                "file",
                &format!("the lookup of join `{name}`"),
                &at,
                Some("the file to read: `file: devices.csv`".into()),
            ));
            None
        }
    };
    let reload = match lookup.reload.as_deref().map(str::trim) {
        None => Some(Some(DEFAULT_RELOAD_MS)),
        Some("never") => Some(None),
        Some(text) => cx
            .duration(&path("reload"), text, true)
            .map(|ms| Some(ms.unsigned_abs())),
    };
    let reference_key = match &reference {
        Some(r) => reference_key(name, lookup, r, key, spec, cx),
        None => None,
    };
    let (reference, reference_key, format, path_key, reload) =
        (reference?, reference_key?, format?, path_key?, reload?);
    let source = IrLookup::File {
        reference_key,
        path_key,
        format,
        reload,
    };
    Some((reference, source))
}

/// Reports each option only a lookup file takes that `lookup` has (and `schema`, when
/// `schema_too`), saying why with `why`; `true` when there was none.
fn no_file_options(name: &str, lookup: &LookupSpec, schema_too: bool, why: &str, cx: &mut Cx) -> bool {
    let given = [
        ("format", lookup.format.is_some()),
        ("schema", schema_too && lookup.schema.is_some()),
        ("key", lookup.key.is_some()),
        ("reload", lookup.reload.is_some()),
    ];
    let mut none = true;
    for (option, _) in given.iter().filter(|(_, given)| *given) {
        let at = cx.key(&["joins", name, "lookup", option]);
        cx.error(SpecError::invalid_value(
            *option,
            why,
            &at,
            Some(format!("remove `{option}:`: only a lookup file takes it")),
        ));
        none = false;
    }
    none
}

/// Rows from Redis: JSON values of the schema, found by the stream's key (any type a
/// key can have: it is written into the Redis key). The file's options do not apply.
fn redis_lookup(
    name: &str,
    lookup: &LookupSpec,
    all: &Spec,
    schemas: &Schemas,
    cx: &mut Cx,
) -> Option<(Rc<RecordType>, IrLookup)> {
    let ok = no_file_options(
        name,
        lookup,
        false,
        "a row in Redis is the JSON value at `<prefix><key>`",
        cx,
    );
    let reference = reference_record(name, lookup, all, schemas, cx);
    let redis = lookup
        .redis
        .as_ref()
        .and_then(|r| crate::connectors::redis::check_lookup(&["joins", name, "lookup", "redis"], r, cx));
    let (reference, redis) = (reference?, redis?);
    ok.then_some((reference, IrLookup::Redis(redis)))
}

/// A table of the pipeline: one key, of the stream key's type; its output record is the
/// row. The file's options do not apply.
fn table_lookup(
    name: &str,
    lookup: &LookupSpec,
    key: Option<&TExpr>,
    table: Option<&IrOperator>,
    cx: &mut Cx,
) -> Option<(Rc<RecordType>, IrLookup)> {
    let ok = no_file_options(
        name,
        lookup,
        true,
        "a table's rows have its output record, keyed by its key",
        cx,
    );
    // Not found or not a table: reported by the graph; a table with errors: by its checks.
    let table = table?;
    let aggregation = table.aggregation()?;
    let at = cx.value(&["joins", name, "lookup", "table"]);
    let [table_key] = aggregation.key.as_slice() else {
        cx.error(SpecError::invalid_value(
            "table",
            format!(
                "table `{}` has {} key fields; a lookup finds a row by one",
                table.name,
                aggregation.key.len()
            ),
            &at,
            Some("look up a table with one key, e.g. `key: device_id`".into()),
        ));
        return None;
    };
    let key = key?;
    if table_key.ty != key.ty {
        let stream_at = cx.value(&["joins", name, "key"]);
        cx.error(SpecError::type_mismatch(
            format!("the key of table `{}` is {}, the stream's key is {}", table.name, table_key.ty, key.ty),
            format!("keyed by {}", table_key.ty),
            &at,
            Some("the two sides must have one type: convert the stream's key, e.g. with `to_string(...)` or `to_int(...)`".into()),
        ));
        cx.error(SpecError::type_mismatch(
            format!(
                "the stream's key is {}, the key of table `{}` is {}",
                key.ty, table.name, table_key.ty
            ),
            format!("this is {}", key.ty),
            &stream_at,
            Some("the two sides must have one type".into()),
        ));
        return None;
    }
    ok.then(|| {
        let source = IrLookup::Table {
            stem: table.stem.clone(),
        };
        (table.output().clone(), source)
    })
}

fn reference_record(
    name: &str,
    lookup: &LookupSpec,
    all: &Spec,
    schemas: &Schemas,
    cx: &mut Cx,
) -> Option<Rc<RecordType>> {
    let Some(schema) = &lookup.schema else {
        let at = cx.key(&["joins", name, "lookup"]);
        cx.error(SpecError::missing_field(
            "schema",
            &format!("the lookup of join `{name}`"),
            &at,
            Some("the schema of the reference rows: `schema: device`".into()),
        ));
        return None;
    };
    match schemas.get(schema) {
        Some(r) => Some(r.clone()),
        None if all.unreadable_schemas.contains(schema) => None,
        None => {
            let at = cx.value(&["joins", name, "lookup", "schema"]);
            let valid: Vec<&str> = schemas.keys().map(String::as_str).collect();
            cx.error(SpecError::unknown_schema(schema, &at, &valid));
            None
        }
    }
}

/// The stream's key: a string, integer or bool (not null: a null key finds nothing).
fn stream_key(name: &str, spec: &JoinSpec, input: &RecordType, cx: &mut Cx) -> Option<TExpr> {
    let Some(text) = &spec.key else {
        let at = cx.key(&["joins", name]);
        cx.error(SpecError::missing_field(
            "key",
            &format!("join `{name}`"),
            &at,
            Some("the stream's side of the key: `key: device_id`".into()),
        ));
        return None;
    };
    let path = ["joins", name, "key"];
    let e = expression(text, input, &path, cx)?;
    if !matches!(e.ty, Type::String | Type::I64 | Type::U64 | Type::Bool) {
        let at = cx.expr_locator(&path, &text.0)(&e.span);
        cx.error(SpecError::type_mismatch(
            format!("cannot look up by {}", e.ty),
            format!("this is {}", e.ty),
            &at,
            Some(
                "a lookup key is a string, an integer or a bool; for a value that may be null: `coalesce(x, \"\")`"
                    .into(),
            ),
        ));
        return None;
    }
    Some(e)
}

/// The reference record's key field: there, and of the stream key's type (when that
/// checked out).
fn reference_key(
    name: &str,
    lookup: &LookupSpec,
    reference: &RecordType,
    key: Option<&TExpr>,
    spec: &JoinSpec,
    cx: &mut Cx,
) -> Option<String> {
    let Some(field_name) = &lookup.key else {
        let at = cx.key(&["joins", name, "lookup"]);
        cx.error(SpecError::missing_field(
            "key",
            &format!("the lookup of join `{name}`"),
            &at,
            Some("the field of the file's rows that holds the key: `key: id`".into()),
        ));
        return None;
    };
    let at = cx.value(&["joins", name, "lookup", "key"]);
    let Some(field) = reference.field(field_name) else {
        cx.error(SpecError::unknown_expr_field(
            field_name,
            &reference.display,
            &at,
            &reference.field_names(),
        ));
        return None;
    };
    // Compared only with a stream key that checked out (its own error says the rest).
    let key = key?;
    if field.ty != key.ty {
        let stream_at = cx.value(&["joins", name, "key"]);
        let text = spec.key.as_ref().map_or("", |k| k.0.as_str());
        cx.error(SpecError::type_mismatch(
            format!("the lookup key `{field_name}` is {}, the stream's key is {}", field.ty, key.ty),
            format!("this is {}", field.ty),
            &at,
            Some(format!("the two sides must have one type: convert the stream's key (`key: {text}`), e.g. with `to_string(...)` or `to_int(...)`")),
        ));
        cx.error(SpecError::type_mismatch(
            format!(
                "the stream's key is {}, the lookup key `{field_name}` is {}",
                key.ty, field.ty
            ),
            format!("this is {}", key.ty),
            &stream_at,
            Some("the two sides must have one type".into()),
        ));
        return None;
    }
    Some(field.ident.clone())
}

/// The stream's fields and, last, the reference record under `as_name`.
fn joined_record(
    name: &str,
    lookup: &LookupSpec,
    as_name: &str,
    input: &RecordType,
    reference: &Rc<RecordType>,
    missing: IrMissing,
    cx: &mut Cx,
) -> Option<Rc<RecordType>> {
    let at_path: &[&str] = if lookup.name.is_some() {
        &["joins", name, "lookup", "as"]
    } else {
        &["joins", name, "lookup", "schema"]
    };
    if !crate::spec::is_valid_field_name(as_name) {
        let at = cx.value(at_path);
        cx.error(SpecError::invalid_name(as_name, &at));
        return None;
    }
    if input.field(as_name).is_some() {
        let at = cx.value(at_path);
        cx.error(SpecError::invalid_value(
            "as",
            format!("the stream's records already have a field `{as_name}`"),
            &at,
            Some("name the reference record differently: `as: device_info`".into()),
        ));
        return None;
    }
    let record = Type::Record(reference.clone());
    let ty = if missing == IrMissing::Null {
        Type::Optional(Box::new(record))
    } else {
        record
    };
    let mut fields: Vec<Field> = input.fields.to_vec();
    fields.push(Field::new(as_name, ty, TsRepr::Millis));
    Some(Rc::new(RecordType::new(
        cx.names.type_name("", name, "Joined"),
        format!("records of `{name}`"),
        fields,
    )))
}

//! Turning spec text into a [`Spec`], collecting every problem on the way.

use serde::de::DeserializeOwned;
use serde_yaml::{Mapping, Value};

use super::schema::{FieldSpec, ScalarType, SchemaSpec};
use super::serde_messages::{backticked, enum_choices, error_path, plain_words, quoted_after, removal_target};
use super::sinks::{SinkCommon, SinkSpec};
use super::sources::{SourceCommon, SourceSpec};
use super::spans::SpanIndex;
use super::value_path::{
    count_keys, insert_beside, key_text, remove_at, strip_non_string_keys, take_at, value_at, value_at_mut,
};
use super::{is_valid_field_name, is_valid_name, Named, OperatorSpec, Spec};
use crate::connectors::{ReadOptions, SinkKind, SourceKind};
use crate::diagnostics::{did_you_mean, SpecError};

/// The result of loading: the parts of the spec that could be read, the span
/// index for later passes, and every problem found so far.
pub struct Loaded {
    pub spec: Spec,
    pub spans: SpanIndex,
    pub errors: Vec<SpecError>,
    /// The text is not a readable spec at all (invalid YAML): nothing more to check.
    pub fatal: bool,
}

const TOP_LEVEL: &[&str] = &[
    "name",
    "schemas",
    "sources",
    "transforms",
    "windows",
    "tables",
    "patterns",
    "joins",
    "sinks",
    "tests",
];

/// Load a spec. Only invalid YAML stops early; everything else is collected.
pub fn load(text: &str) -> Loaded {
    let spans = match SpanIndex::build(text) {
        Ok(spans) => spans,
        Err(e) => {
            let span = e.offset..(e.offset + 1).min(text.len().max(e.offset));
            return Loaded {
                spec: Spec::default(),
                spans: SpanIndex::default(),
                errors: vec![SpecError::yaml_syntax(e.message, &span)],
                fatal: true,
            };
        }
    };
    let mut loader = Loader {
        spans,
        errors: Vec::new(),
        fatal: false,
    };
    let spec = loader.load_spec(text);
    Loaded {
        spec,
        spans: loader.spans,
        errors: loader.errors,
        fatal: loader.fatal,
    }
}

struct Loader {
    spans: SpanIndex,
    errors: Vec<SpecError>,
    fatal: bool,
}

impl Loader {
    fn load_spec(&mut self, text: &str) -> Spec {
        let mut spec = Spec::default();
        if !self.spans.duplicate_keys.is_empty() {
            for (path, first) in &self.spans.duplicate_keys {
                let second = self.spans.key(&strs(path));
                let name = path.last().cloned().unwrap_or_default();
                self.errors.push(SpecError::duplicate_name(&name, &second, first));
            }
            self.fatal = true;
            return spec;
        }
        let root: Value = match serde_yaml::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                let offset = e.location().map(|l| l.index()).unwrap_or(0);
                let message = e.to_string();
                let message = message.split(" at line ").next().unwrap_or(&message).to_string();
                self.errors.push(SpecError::yaml_syntax(message, &(offset..offset + 1)));
                self.fatal = true;
                return spec;
            }
        };
        let mut root = root;
        self.yaml_traps(text, &mut root);
        let Value::Mapping(root) = root else {
            self.errors.push(SpecError::invalid_value(
                "spec",
                "expected a mapping with `name`, `sources`, `transforms` and `sinks`",
                &self.spans.value(&[]),
                None,
            ));
            self.fatal = true;
            return spec;
        };
        for (key, value) in &root {
            let Some(key) = key.as_str() else { continue };
            match key {
                "name" => match value.as_str() {
                    Some(name) if is_valid_name(name) => spec.name = name.to_string(),
                    Some(name) => self
                        .errors
                        .push(SpecError::invalid_name(name, &self.spans.value(&["name"]))),
                    None => self.errors.push(SpecError::invalid_value(
                        "name",
                        "expected a string",
                        &self.spans.value(&["name"]),
                        None,
                    )),
                },
                "schemas" => {
                    let mut unreadable = Vec::new();
                    for (name, value) in self.section(value, "schemas", &mut unreadable) {
                        let path = ["schemas", name.as_str()];
                        match self.schema(value, &path, &mut spec.unreadable_fields) {
                            Some(schema) => spec.schemas.push(Named { name, spec: schema }),
                            None => spec.unreadable_schemas.push(name),
                        }
                    }
                    spec.unreadable_schemas
                        .extend(unreadable.into_iter().map(|(_, name)| name));
                }
                "sources" => {
                    for (name, value) in self.section(value, "sources", &mut spec.unreadable) {
                        match self.source(value, &name) {
                            Some(source) => spec.sources.push(Named { name, spec: source }),
                            None => spec.unreadable.push(("sources", name)),
                        }
                    }
                }
                "transforms" | "windows" | "tables" | "patterns" | "joins" => {
                    let section = match key {
                        "transforms" => "transforms",
                        "windows" => "windows",
                        "tables" => "tables",
                        "patterns" => "patterns",
                        _ => "joins",
                    };
                    for (name, value) in self.section(value, section, &mut spec.unreadable) {
                        let path = [key, name.as_str()];
                        let context = format!("{} `{name}`", section.trim_end_matches('s'));
                        let value = value.clone();
                        let operator = match section {
                            "transforms" => self.de(value, &path, &context, &[]).map(OperatorSpec::Transform),
                            "windows" => self.de(value, &path, &context, &[]).map(OperatorSpec::Window),
                            "tables" => self.de(value, &path, &context, &[]).map(OperatorSpec::Table),
                            "patterns" => self.de(value, &path, &context, &[]).map(OperatorSpec::Pattern),
                            _ => self.de(value, &path, &context, &[]).map(OperatorSpec::Join),
                        };
                        match operator {
                            Some(op) => spec.operators.push(Named { name, spec: op }),
                            None => spec.unreadable.push((section, name)),
                        }
                    }
                }
                "sinks" => {
                    for (name, value) in self.section(value, "sinks", &mut spec.unreadable) {
                        match self.sink(value, &name) {
                            Some(sink) => spec.sinks.push(Named { name, spec: sink }),
                            None => spec.unreadable.push(("sinks", name)),
                        }
                    }
                }
                "tests" => self.errors.push(SpecError::unsupported_section(
                    key,
                    &self.spans.key(&[key]),
                    "spec tests (`rill test`) arrive in a later version; remove this section for now",
                )),
                other => self.errors.push(SpecError::unknown_field(
                    other,
                    "the pipeline spec",
                    &self.spans.key(&[other]),
                    TOP_LEVEL,
                )),
            }
        }
        if !root.contains_key("name") {
            self.errors.push(SpecError::missing_field(
                "name",
                "the pipeline spec",
                &self.spans.value(&[]),
                Some("add `name: my_pipeline` at the top: it names the binary".into()),
            ));
        }
        spec
    }

    /// The entries of a top-level section, with valid names only. An entry whose name
    /// is not valid is reported and listed in `unreadable`: it exists, so nothing else
    /// should say it is missing.
    fn section<'v>(
        &mut self,
        value: &'v Value,
        section: &'static str,
        unreadable: &mut Vec<(&'static str, String)>,
    ) -> Vec<(String, &'v Value)> {
        let Value::Mapping(map) = value else {
            if !value.is_null() {
                self.errors.push(SpecError::invalid_value(
                    section,
                    "expected a mapping of names to definitions",
                    &self.spans.value(&[section]),
                    None,
                ));
            }
            return Vec::new();
        };
        let mut entries = Vec::new();
        for (key, value) in map {
            let name = match key {
                Value::String(s) => s.clone(),
                // Already reported by `yaml_traps`.
                other => {
                    unreadable.push((section, key_text(other)));
                    continue;
                }
            };
            if !is_valid_name(&name) {
                self.errors
                    .push(SpecError::invalid_name(&name, &self.spans.key(&[section, &name])));
                unreadable.push((section, name));
                continue;
            }
            entries.push((name, value));
        }
        entries
    }

    /// A schema; fields whose type cannot be read are reported, left out and named in
    /// `unreadable_fields`.
    fn schema(&mut self, value: &Value, path: &[&str], unreadable_fields: &mut Vec<String>) -> Option<SchemaSpec> {
        let Value::Mapping(map) = value else {
            self.errors.push(SpecError::invalid_value(
                path.last().copied().unwrap_or("schema"),
                "expected a mapping of field names to types",
                &self.spans.value(path),
                Some("e.g. `reading: { device_id: string, temperature: f64 }`".into()),
            ));
            return None;
        };
        let mut schema = SchemaSpec::default();
        for (key, value) in map {
            let Some(field) = key.as_str() else { continue };
            let mut field_path = path.to_vec();
            field_path.push(field);
            if !is_valid_field_name(field) {
                self.errors
                    .push(SpecError::invalid_name(field, &self.spans.key(&field_path)));
                continue;
            }
            let spec = match value {
                Value::String(ty) => {
                    let (base, optional) = match ty.strip_suffix('?') {
                        Some(base) => (base.trim(), true),
                        None => (ty.trim(), false),
                    };
                    match ScalarType::parse(base) {
                        Some(ty) => FieldSpec::Scalar { ty, optional },
                        None => {
                            self.errors.push(SpecError::unknown_field_type(
                                base,
                                &self.spans.value(&field_path),
                                ScalarType::NAMES,
                            ));
                            unreadable_fields.push(field.to_string());
                            continue;
                        }
                    }
                }
                Value::Mapping(_) => match self.schema(value, &field_path, unreadable_fields) {
                    Some(nested) => FieldSpec::Object(nested),
                    None => {
                        unreadable_fields.push(field.to_string());
                        continue;
                    }
                },
                _ => {
                    self.errors.push(SpecError::unknown_field_type(
                        serde_yaml::to_string(value).unwrap_or_default().trim(),
                        &self.spans.value(&field_path),
                        ScalarType::NAMES,
                    ));
                    unreadable_fields.push(field.to_string());
                    continue;
                }
            };
            schema.fields.push((field.to_string(), spec));
        }
        Some(schema)
    }

    fn source(&mut self, value: &Value, name: &str) -> Option<SourceSpec> {
        let path = ["sources", name];
        let context = format!("source `{name}`");
        let (ty, mut common, rest) =
            self.split_component(value, &path, "source", SourceKind::TYPES, SourceCommon::KEYS)?;
        self.read_misspelt_common(&mut common, &rest, &SourceKind::keys(&ty), SourceCommon::KEYS, &path);
        let common: Option<SourceCommon> = self.de(Value::Mapping(common), &path, &context, &[]);
        let extra = with_type(SourceCommon::KEYS);
        let mut options = Options {
            loader: self,
            value: Value::Mapping(rest),
            path: &path,
            context: &context,
            extra: &extra,
        };
        let kind = SourceKind::read(&ty, &mut options)?;
        Some(SourceSpec { kind, common: common? })
    }

    fn sink(&mut self, value: &Value, name: &str) -> Option<SinkSpec> {
        let path = ["sinks", name];
        let context = format!("sink `{name}`");
        let (ty, mut common, rest) = self.split_component(value, &path, "sink", SinkKind::TYPES, SinkCommon::KEYS)?;
        self.read_misspelt_common(&mut common, &rest, &SinkKind::keys(&ty), SinkCommon::KEYS, &path);
        let common: Option<SinkCommon> = self.de(Value::Mapping(common), &path, &context, &[]);
        let extra = with_type(SinkCommon::KEYS);
        let mut options = Options {
            loader: self,
            value: Value::Mapping(rest),
            path: &path,
            context: &context,
            extra: &extra,
        };
        let kind = SinkKind::read(&ty, &mut options)?;
        Some(SinkSpec { kind, common: common? })
    }

    /// A misspelt common key (`shema:` for `schema:`) lands among the type's own keys,
    /// where it is reported as unknown; the common part reads it as meant, so the
    /// component is not also told it lacks a schema.
    fn read_misspelt_common(
        &mut self,
        common: &mut Mapping,
        rest: &Mapping,
        own: &[String],
        common_keys: &[&str],
        path: &[&str],
    ) {
        for (key, value) in rest {
            let Some(key) = key.as_str() else { continue };
            if own.iter().any(|f| f == key) {
                continue;
            }
            let Some(meant) = did_you_mean(key, common_keys.iter().copied()) else {
                continue;
            };
            if common.contains_key(meant.as_str()) {
                continue;
            }
            let full = |k: &str| {
                path.iter()
                    .map(|s| s.to_string())
                    .chain([k.to_string()])
                    .collect::<Vec<_>>()
            };
            self.spans.alias(&full(key), &full(&meant));
            common.insert(Value::String(meant), value.clone());
        }
    }

    /// Read `type:` and split a component's mapping into its common keys and the rest.
    fn split_component(
        &mut self,
        value: &Value,
        path: &[&str],
        kind: &'static str,
        types: &[&str],
        common_keys: &[&str],
    ) -> Option<(String, Mapping, Mapping)> {
        let Value::Mapping(map) = value else {
            self.errors.push(SpecError::invalid_value(
                path[1],
                format!("expected a mapping with `type:` and the {kind}'s settings"),
                &self.spans.value(path),
                None,
            ));
            return None;
        };
        let ty = match map.get("type") {
            None => {
                self.errors.push(SpecError::missing_field(
                    "type",
                    &format!("{kind} `{}`", path[1]),
                    &self.spans.key(path),
                    Some(format!("valid {kind} types: {}", types.join(", "))),
                ));
                return None;
            }
            Some(Value::String(ty)) if types.contains(&ty.as_str()) => ty.clone(),
            Some(other) => {
                let ty = other
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{other:?}"));
                let mut type_path = path.to_vec();
                type_path.push("type");
                self.errors.push(SpecError::unknown_component_type(
                    kind,
                    &ty,
                    &self.spans.value(&type_path),
                    types,
                ));
                return None;
            }
        };
        let mut common = Mapping::new();
        let mut rest = Mapping::new();
        for (k, v) in map {
            match k.as_str() {
                Some("type") => {}
                Some(key) if common_keys.contains(&key) => {
                    common.insert(k.clone(), v.clone());
                }
                _ => {
                    rest.insert(k.clone(), v.clone());
                }
            }
        }
        Some((ty, common, rest))
    }

    /// Deserialize one piece of the spec, turning serde failures into located diagnostics.
    ///
    /// serde stops at the first failure, so after each one the offending key is taken
    /// out and the rest read again: every mistake of a component is reported in one
    /// run. A component whose only mistakes are unknown keys (they meant nothing) or
    /// `${VAR}` on compiled-in options (the default stands in) is still read; one with a
    /// wrong value is not (a default in its place could mislead later checks).
    fn de<T: DeserializeOwned>(
        &mut self,
        mut value: Value,
        base: &[&str],
        context: &str,
        extra_valid: &[&str],
    ) -> Option<T> {
        let mut removed: Vec<Vec<String>> = Vec::new();
        // Misspelt keys read under the name they were probably meant as.
        let mut guessed: Vec<Vec<String>> = Vec::new();
        let mut trusted = true;
        // Each round removes or renames one key, so twice the keys bound the rounds.
        for _ in 0..=2 * count_keys(&value) {
            let err = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
                Ok(v) => return trusted.then_some(v),
                Err(err) => err,
            };
            let relative = error_path(err.path());
            let message = err.into_inner().to_string();
            let in_guess = guessed.iter().position(|g| {
                relative.starts_with(g) || quoted_after(&message, "missing field `").as_ref() == g.last()
            });
            if let Some(i) = in_guess {
                // The guess did not fit: drop it quietly, its key is reported already.
                let guess = guessed.remove(i);
                remove_at(&mut value, &guess);
                removed.push(guess);
                continue;
            }
            let mut path: Vec<String> = base.iter().map(|s| s.to_string()).collect();
            path.extend(relative.iter().cloned());
            if let Some(field) = quoted_after(&message, "missing field `") {
                let mut missing = relative.clone();
                missing.push(field.clone());
                // Taken out after reporting its value, or misspelt (and reported as unknown).
                let misspelt = removed.iter().any(|r| {
                    r.len() == missing.len()
                        && did_you_mean(r.last().map_or("", String::as_str), [field.as_str()]).is_some()
                });
                if removed.contains(&missing) || misspelt {
                    return None;
                }
            }
            let given = value_at(&value, &relative).cloned();
            // serde_yaml reads a name (an enum) from a number or a list without asking the
            // enum what it expected: ask it, with a name it cannot know.
            let message = match message.split_once(", expected a Value::Tagged enum") {
                Some((found, _)) => format!("{found}, expected one of {}", enum_choices::<T>(&value, &relative)),
                None => message,
            };
            let unknown = quoted_after(&message, "unknown field `");
            // An unknown key inside a mapping of the component (`metadata: { … }`) is named
            // with that mapping, and only that mapping's keys are offered.
            let mut within = relative.clone();
            if within.last() == unknown.as_ref() {
                within.pop();
            }
            let (context, extra_valid) = match &unknown {
                Some(_) if !within.is_empty() => (format!("`{}` of {context}", within.join(".")), &[][..]),
                _ => (context.to_string(), extra_valid),
            };
            let error = self.serde_error(&message, &strs(&path), &context, extra_valid, given.as_ref());
            // Without an unknown key or a `${VAR}` where a literal belongs, the component
            // reads as its author meant it; later checks can still run on it.
            let harmless = matches!(error, SpecError::UnknownField { .. } | SpecError::CompiledIn { .. });
            self.errors.push(error);
            let target = removal_target(&relative, unknown.as_deref());
            if message.starts_with("missing field `") || target.is_empty() {
                return None;
            }
            let taken = take_at(&mut value, &target)?;
            trusted &= harmless;
            // A misspelt key (`sliding:` for `hopping:`) is read as the key it resembles, so
            // the component is checked as meant instead of as missing that key.
            let own_fields = backticked(message.split_once("expected").map_or("", |(_, e)| e));
            let meant = unknown
                .as_deref()
                .and_then(|field| did_you_mean(field, own_fields.iter().map(String::as_str)));
            if let Some(renamed) = meant.and_then(|meant| insert_beside(&mut value, &target, meant, taken)) {
                let full = |p: &[String]| [strs_owned(base), p.to_vec()].concat();
                self.spans.alias(&full(&target), &full(&renamed));
                guessed.push(renamed);
            }
            removed.push(target);
        }
        None
    }

    fn serde_error(
        &self,
        message: &str,
        path: &[&str],
        context: &str,
        extra_valid: &[&str],
        given: Option<&Value>,
    ) -> SpecError {
        if let Some(rest) = message.strip_prefix("unknown field `") {
            let field = rest.split('`').next().unwrap_or_default();
            let mut valid = backticked(rest.split_once("expected").map(|(_, e)| e).unwrap_or(""));
            valid.extend(extra_valid.iter().map(|s| s.to_string()));
            valid.sort();
            valid.dedup();
            let valid: Vec<&str> = valid.iter().map(String::as_str).collect();
            // The path may already end at the unknown key.
            let mut key_path = path.to_vec();
            if key_path.last() != Some(&field) {
                key_path.push(field);
            }
            return SpecError::unknown_field(field, context, &self.spans.key(&key_path), &valid);
        }
        if let Some(rest) = message.strip_prefix("missing field `") {
            let field = rest.split('`').next().unwrap_or_default();
            return SpecError::missing_field(field, context, &self.spans.key(path), None);
        }
        let field = path.last().copied().unwrap_or(context).to_string();
        if let Some(Value::String(text)) = given.filter(|v| v.as_str().is_some_and(|s| s.contains("${"))) {
            let valid = message
                .strip_prefix("unknown variant `")
                .map(|rest| backticked(rest.split_once("expected").map(|(_, e)| e).unwrap_or("")));
            return SpecError::compiled_in(&field, text, &self.spans.value(path), valid);
        }
        if let Some(rest) = message.strip_prefix("unknown variant `") {
            let given = rest.split('`').next().unwrap_or_default();
            let valid = backticked(rest.split_once("expected").map(|(_, e)| e).unwrap_or(""));
            let valid: Vec<&str> = valid.iter().map(String::as_str).collect();
            return SpecError::invalid_value(
                field,
                format!("unknown value `{given}`"),
                &self.spans.value(path),
                Some(crate::diagnostics::choices_help(given, &valid, "value")),
            );
        }
        let message = message.split(" at line ").next().unwrap_or(message);
        SpecError::invalid_value(field, plain_words(message), &self.spans.value(path), None)
    }
}

/// Report what YAML reads differently from what it looks like, and set it right so
/// the rest of the spec can still be checked: keys that are not text are reported and
/// taken out (a section entry is then kept as unreadable by `section`), and an unquoted
/// expression cut by a `,` in `{ … }` is put back together.
impl Loader {
    fn yaml_traps(&mut self, text: &str, root: &mut Value) {
        for key in &self.spans.non_string_keys {
            self.errors
                .push(SpecError::non_string_key(&key.raw, key.reads_as, &key.span));
        }
        for cut in &self.spans.cut_expressions {
            let whole = text.get(cut.span.clone()).unwrap_or_default().to_string();
            let key = cut.path.last().cloned().unwrap_or_default();
            self.errors.push(SpecError::cut_expression(&key, &whole, &cut.span));
            for fragment in &cut.fragments {
                remove_at(root, fragment);
            }
            if let Some(slot) = value_at_mut(root, &cut.path) {
                *slot = Value::String(whole);
            }
        }
        if let Value::Mapping(sections) = root {
            for (_, section) in sections.iter_mut() {
                if let Value::Mapping(entries) = section {
                    for (_, entry) in entries.iter_mut() {
                        strip_non_string_keys(entry);
                    }
                }
            }
        }
    }
}

fn strs_owned(path: &[&str]) -> Vec<String> {
    path.iter().map(|s| s.to_string()).collect()
}

/// A component's own options (everything but the common keys), read by its connector.
struct Options<'l> {
    loader: &'l mut Loader,
    value: Value,
    path: &'l [&'l str],
    context: &'l str,
    extra: &'l [&'static str],
}

impl ReadOptions for Options<'_> {
    fn read<T: DeserializeOwned>(&mut self) -> Option<T> {
        let value = std::mem::replace(&mut self.value, Value::Null);
        self.loader.de(value, self.path, self.context, self.extra)
    }
}

fn with_type(keys: &[&'static str]) -> Vec<&'static str> {
    let mut v = keys.to_vec();
    v.push("type");
    v
}

fn strs(path: &[String]) -> Vec<&str> {
    path.iter().map(String::as_str).collect()
}

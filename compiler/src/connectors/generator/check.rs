//! Generator sources: `count`, `rate` and the options of each generated field, checked
//! against the field's type and against the values each option can take.

use super::{GenField, GenFieldSpec, GenKind, GeneratorSource, IrGenerator};
use crate::diagnostics::SpecError;
use crate::spec::spans::Span;
use crate::spec::Setting;
use crate::types::{RecordType, TsRepr, Type};
use crate::validate::{number_setting, Cx};

/// A generator source: its count and rate settings and how each field is generated.
pub fn generator(name: &str, g: &GeneratorSource, record: &RecordType, cx: &mut Cx) -> Option<IrGenerator> {
    let count = g.count.clone().unwrap_or(Setting(String::new()));
    let rate = g.rate.clone().unwrap_or(Setting(String::new()));
    let mut ok = number_setting(
        &count,
        &["sources", name, "count"],
        |s| s.parse::<u64>().is_ok(),
        "a whole number of events",
        true,
        cx,
    );
    ok &= number_setting(
        &rate,
        &["sources", name, "rate"],
        |s| s.parse::<f64>().is_ok_and(|r| r > 0.0),
        "events per second, above 0",
        true,
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
    ok.then_some(IrGenerator {
        count_key,
        rate_key,
        seed: g.seed,
        fields,
    })
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
    let options = GenOptions { name, ty, path };
    if let Type::Optional(inner) = ty {
        let p_null = spec.null_ratio.unwrap_or(0.1);
        let ratio_ok = options.share("null_ratio", spec.null_ratio, "a share of nulls", cx);
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
        );
        return ratio_ok.then_some(GenKind::Optional {
            p_null,
            inner: Box::new(inner?),
        });
    }
    if !options.all_apply(spec, cx) {
        return None;
    }
    Some(match ty {
        Type::Optional(_) => unreachable!("handled above"),
        Type::String => match &spec.values {
            Some(values) if values.is_empty() => {
                options.error(
                    "values",
                    "an empty list leaves nothing to pick",
                    "list at least one value, or remove `values:` for `prefix` + a number below `cardinality`",
                    cx,
                );
                return None;
            }
            Some(values) => GenKind::Values(values.clone()),
            None if spec.cardinality == Some(0) => {
                options.error(
                    "cardinality",
                    "must be at least 1",
                    "`cardinality: 10` gives `<prefix>0` … `<prefix>9`",
                    cx,
                );
                return None;
            }
            None => GenKind::Text {
                prefix: spec.prefix.clone().unwrap_or_else(|| format!("{name}-")),
                cardinality: spec.cardinality.unwrap_or(10),
            },
        },
        Type::I64 | Type::U64 if spec.sequence => GenKind::Sequence,
        Type::I64 | Type::U64 | Type::F64 => options.number_range(spec, cx)?,
        Type::Bool => {
            if !options.share("p_true", spec.p_true, "a probability", cx) {
                return None;
            }
            GenKind::Bool {
                p_true: spec.p_true.unwrap_or(0.5),
            }
        }
        Type::Timestamp => {
            let step = options.duration("step", &spec.step, 1000, cx);
            let jitter = options.duration("jitter", &spec.jitter, 0, cx);
            GenKind::Time {
                start_ms: spec.start.unwrap_or(1_700_000_000_000),
                step_ms: step?,
                jitter_ms: jitter?,
                repr,
            }
        }
        Type::Record(nested) => GenKind::Object(gen_fields(nested, &Default::default(), path, cx)?),
        Type::List(_) => return None,
    })
}

/// The options of one generated field, checked against its type and their ranges.
struct GenOptions<'a> {
    name: &'a str,
    ty: &'a Type,
    /// `["sources", <source>, "fields", <field>]`.
    path: &'a [&'a str],
}

/// Which options each type of field takes (`null_ratio`: optional fields, any type).
const OPTIONS_HELP: &str = "strings: values, prefix, cardinality; integers: min, max, sequence; f64: min, max; bool: p_true; timestamps: start, step, jitter; optional fields: null_ratio";

impl GenOptions<'_> {
    fn at(&self, option: &str, key: bool, cx: &Cx) -> Span {
        let mut p = self.path.to_vec();
        p.push(option);
        if key {
            cx.key(&p)
        } else {
            cx.value(&p)
        }
    }

    fn error(&self, option: &str, message: impl Into<String>, help: &str, cx: &mut Cx) {
        let at = self.at(option, false, cx);
        cx.error(SpecError::generator_option(option, message, &at, help));
    }

    /// NaN and infinities (`.nan`, `.inf`) cannot be generated, nor written as literals
    /// in the generated code: their own error.
    fn finite(&self, option: &str, value: Option<f64>, cx: &mut Cx) -> bool {
        match value {
            Some(v) if !v.is_finite() => {
                let at = self.at(option, false, cx);
                cx.error(SpecError::not_finite(option, v, &at));
                false
            }
            _ => true,
        }
    }

    /// Every option given applies to the field's type; each one that does not is reported.
    fn all_apply(&self, spec: &GenFieldSpec, cx: &mut Cx) -> bool {
        let applies: &[&str] = match self.ty {
            Type::String => &["values", "prefix", "cardinality"],
            Type::I64 | Type::U64 => &["min", "max", "sequence"],
            Type::F64 => &["min", "max"],
            Type::Bool => &["p_true"],
            Type::Timestamp => &["start", "step", "jitter"],
            Type::Record(_) | Type::List(_) | Type::Optional(_) => &[],
        };
        let mut ok = true;
        for option in given_options(spec) {
            let clash = match option {
                "prefix" | "cardinality" if spec.values.is_some() => Some("has no effect next to `values:`"),
                "min" | "max" if spec.sequence => Some("has no effect next to `sequence: true`"),
                _ => None,
            };
            let message = match clash {
                _ if !applies.contains(&option) => format!("does not apply to `{}` ({})", self.name, self.ty),
                Some(clash) => clash.to_string(),
                None => continue,
            };
            let at = self.at(option, true, cx);
            cx.error(SpecError::generator_option(option, message, &at, OPTIONS_HELP));
            ok = false;
        }
        ok
    }

    /// A probability or share: between 0 and 1.
    fn share(&self, option: &str, value: Option<f64>, what: &str, cx: &mut Cx) -> bool {
        if !self.finite(option, value, cx) {
            return false;
        }
        match value {
            Some(v) if !(0.0..=1.0).contains(&v) => {
                self.error(
                    option,
                    format!("{what} is between 0 and 1, found {v}"),
                    "e.g. `0.25`: one in four",
                    cx,
                );
                false
            }
            _ => true,
        }
    }

    /// `min`/`max` of a number field: finite, whole for integers, not negative for u64,
    /// and `min` not above `max` (defaults 0 and 100).
    fn number_range(&self, spec: &GenFieldSpec, cx: &mut Cx) -> Option<GenKind> {
        let mut ok = true;
        for (option, value) in [("min", spec.min), ("max", spec.max)] {
            let Some(v) = value else { continue };
            if !self.finite(option, value, cx) {
                ok = false;
                continue;
            }
            let problem = match self.ty {
                Type::I64 | Type::U64 if v.fract() != 0.0 => Some("must be a whole number for an integer field"),
                Type::U64 if v < 0.0 => Some("must not be negative for a u64 field"),
                Type::I64 | Type::U64 if v.abs() >= 9.2e18 => Some("is out of range for a 64-bit integer"),
                _ => None,
            };
            if let Some(problem) = problem {
                self.error(
                    option,
                    format!("{problem}, found {v}"),
                    "numbers: `{ min: 0, max: 100 }`",
                    cx,
                );
                ok = false;
            }
        }
        if !ok {
            return None;
        }
        let (min, max) = (spec.min.unwrap_or(0.0), spec.max.unwrap_or(100.0));
        if min > max {
            let given = |v: Option<f64>, default: &str| match v {
                Some(v) => v.to_string(),
                None => format!("{default} (the default)"),
            };
            let option = if spec.min.is_some() { "min" } else { "max" };
            self.error(
                option,
                format!(
                    "`min` {} is above `max` {}",
                    given(spec.min, "0"),
                    given(spec.max, "100")
                ),
                "give both bounds, `min` at most `max`",
                cx,
            );
            return None;
        }
        Some(match self.ty {
            Type::I64 => GenKind::Int {
                min: min as i64,
                max: max as i64,
            },
            Type::U64 => GenKind::UInt {
                min: min as u64,
                max: max as u64,
            },
            _ => GenKind::Float { min, max },
        })
    }

    fn duration(&self, option: &str, value: &Option<String>, default: i64, cx: &mut Cx) -> Option<i64> {
        match value {
            None => Some(default),
            Some(text) => {
                let mut p = self.path.to_vec();
                p.push(option);
                cx.duration(&p, text, false)
            }
        }
    }
}

/// The options a field spec sets, in the order of `GenFieldSpec`.
fn given_options(spec: &GenFieldSpec) -> Vec<&'static str> {
    [
        ("values", spec.values.is_some()),
        ("prefix", spec.prefix.is_some()),
        ("cardinality", spec.cardinality.is_some()),
        ("min", spec.min.is_some()),
        ("max", spec.max.is_some()),
        ("p_true", spec.p_true.is_some()),
        ("start", spec.start.is_some()),
        ("step", spec.step.is_some()),
        ("jitter", spec.jitter.is_some()),
        ("null_ratio", spec.null_ratio.is_some()),
        ("sequence", spec.sequence),
    ]
    .into_iter()
    .filter_map(|(option, given)| given.then_some(option))
    .collect()
}

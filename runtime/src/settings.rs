//! Settings resolved when the binary starts.
//!
//! Topology and logic are compiled in, but connection details (paths, URLs, brokers,
//! credentials) are settings so one binary serves a whole fleet and no secret is baked
//! into it. Each setting has a default template from the spec, expanded from the
//! environment (`${VAR}`, `${VAR:-fallback}`, `$$` for a literal dollar); `--set
//! key=value` replaces the template entirely (and is expanded the same way).

use crate::errors::StartError;

/// One setting the spec declares, known at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingDef {
    /// Dotted key, e.g. `"sources.readings.path"`.
    pub key: &'static str,
    /// Raw value from the spec; may contain `${VAR}` or `${VAR:-default}`.
    pub default: &'static str,
    /// One line shown by `--help`.
    pub help: &'static str,
    /// A password, key or token: `default` is exactly `${VAR}` (or a URL whose
    /// password is one, checked by the compiler). `--help` names the variables
    /// instead of printing the default, and the value is never printed.
    pub secret: bool,
}

impl SettingDef {
    /// The environment variables the default template reads (`${A}`, `${B:-…}`).
    pub fn variables(&self) -> Vec<&'static str> {
        let mut vars = Vec::new();
        let mut rest = self.default;
        while let Some(i) = rest.find("${") {
            rest = &rest[i + 2..];
            let end = rest.find(['}', ':']).unwrap_or(rest.len());
            if is_var_name(&rest[..end]) && !vars.contains(&&rest[..end]) {
                vars.push(&rest[..end]);
            }
        }
        vars
    }
}

/// The resolved value of every setting, in declaration order. Secret values are
/// never shown: not by `Debug`, not in error messages.
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    values: Vec<(&'static str, String)>,
    /// How each value was set (`from --set: `${DIR}/in.csv``), in the same order, for
    /// messages about a value that turned out empty; empty for [`Settings::from_values`].
    origins: Vec<String>,
    /// The keys of settings that hold secrets: their values are never shown.
    secrets: Vec<&'static str>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut map = f.debug_map();
        for (key, value) in &self.values {
            if self.secrets.contains(key) {
                map.entry(key, &"<secret>");
            } else {
                map.entry(key, value);
            }
        }
        map.finish()
    }
}

/// Why a template could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpandError {
    /// `${VAR}` without a fallback and `VAR` is not set.
    Unset(String),
    /// `${` without its closing `}`.
    Unterminated,
    /// The text between `${` and `}` / `:-` is not a variable name.
    BadName(String),
}

impl std::fmt::Display for ExpandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpandError::Unset(var) => write!(
                f,
                "environment variable `{var}` is not set (give a default with ${{{var}:-value}})"
            ),
            ExpandError::Unterminated => f.write_str("`${` is missing its closing `}`"),
            ExpandError::BadName(name) => write!(
                f,
                "`{name}` is not a variable name (letters, digits and `_`; write `$$` for a literal `$`)"
            ),
        }
    }
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Expands `${VAR}`, `${VAR:-fallback}` (fallback used when `VAR` is unset or empty, as
/// in a shell; the fallback may itself contain `${..}`) and `$$`. Values taken from the
/// environment are used literally, never expanded again. A `$` followed by anything
/// else is kept as is.
pub fn expand(template: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, ExpandError> {
    let bytes = template.as_bytes();
    let mut out = String::with_capacity(template.len());
    let mut literal_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'$') => {
                out.push_str(&template[literal_start..i]);
                out.push('$');
                i += 2;
                literal_start = i;
            }
            Some(b'{') => {
                out.push_str(&template[literal_start..i]);
                let close = matching_brace(bytes, i + 2).ok_or(ExpandError::Unterminated)?;
                let inner = &template[i + 2..close];
                let (name, fallback) = match inner.find(":-") {
                    Some(p) => (&inner[..p], Some(&inner[p + 2..])),
                    None => (inner, None),
                };
                if !is_var_name(name) {
                    return Err(ExpandError::BadName(name.to_owned()));
                }
                match (env(name), fallback) {
                    (Some(v), Some(_)) if !v.is_empty() => out.push_str(&v),
                    (Some(v), None) => out.push_str(&v),
                    (_, Some(fb)) => out.push_str(&expand(fb, env)?),
                    (None, None) => return Err(ExpandError::Unset(name.to_owned())),
                }
                i = close + 1;
                literal_start = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&template[literal_start..]);
    Ok(out)
}

/// Index of the `}` closing a `${` whose body starts at `from`, skipping nested `${..}`
/// and `$$` escapes.
fn matching_brace(bytes: &[u8], from: usize) -> Option<usize> {
    let mut depth = 1usize;
    let mut j = from;
    while j < bytes.len() {
        match (bytes[j], bytes.get(j + 1)) {
            (b'$', Some(b'{')) => {
                depth += 1;
                j += 2;
            }
            (b'$', Some(b'$')) => j += 2,
            (b'}', _) => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
                j += 1;
            }
            _ => j += 1,
        }
    }
    None
}

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl Settings {
    /// Resolves every setting from its default template, the process environment and
    /// the `--set` overrides (in command-line order; the last one for a key wins).
    pub fn resolve(defs: &[SettingDef], overrides: &[(String, String)]) -> Result<Settings, StartError> {
        Settings::resolve_with(defs, overrides, &process_env)
    }

    /// [`Settings::resolve`] with an explicit environment, for tests.
    pub fn resolve_with(
        defs: &[SettingDef],
        overrides: &[(String, String)],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Settings, StartError> {
        for (key, _) in overrides {
            if !defs.iter().any(|d| d.key == key) {
                let valid = if defs.is_empty() {
                    "this pipeline has no settings".to_owned()
                } else {
                    let keys: Vec<&str> = defs.iter().map(|d| d.key).collect();
                    format!("valid settings: {}", keys.join(", "))
                };
                return Err(StartError::new(format!("unknown setting `{key}` in --set; {valid}")));
            }
        }
        let mut values = Vec::with_capacity(defs.len());
        let mut origins = Vec::with_capacity(defs.len());
        for def in defs {
            let (template, origin) = match overrides.iter().rev().find(|(k, _)| k == def.key) {
                Some((_, v)) => (v.as_str(), " (from --set)"),
                None => (def.default, ""),
            };
            let value =
                expand(template, env).map_err(|e| StartError::new(format!("setting `{}`{origin}: {e}", def.key)))?;
            values.push((def.key, value));
            origins.push(match origin {
                "" => format!("the spec's value `{template}`"),
                _ => format!("`--set {}={template}`", def.key),
            });
        }
        let secrets = defs.iter().filter(|d| d.secret).map(|d| d.key).collect();
        Ok(Settings {
            values,
            origins,
            secrets,
        })
    }

    /// Settings from already-resolved values (tests and embedding).
    pub fn from_values(values: Vec<(&'static str, String)>) -> Settings {
        Settings {
            values,
            origins: Vec::new(),
            secrets: Vec::new(),
        }
    }

    fn raw(&self, key: &str) -> Result<&str, StartError> {
        self.values
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| StartError::new(format!("unknown setting `{key}`")))
    }

    /// The value as error messages may show it.
    fn shown<'a>(&self, key: &str, raw: &'a str) -> &'a str {
        if self.secrets.contains(&key) {
            "<secret>"
        } else {
            raw
        }
    }

    fn parsed<T: std::str::FromStr>(&self, key: &str, what: &str) -> Result<T, StartError> {
        let raw = self.raw(key)?;
        raw.trim().parse().map_err(|_| {
            let shown = self.shown(key, raw);
            StartError::new(format!("setting `{key}`: expected {what}, got `{shown}`"))
        })
    }

    fn opt_parsed<T: std::str::FromStr>(&self, key: &str, what: &str) -> Result<Option<T>, StartError> {
        if self.raw(key)?.trim().is_empty() {
            Ok(None)
        } else {
            self.parsed(key, what).map(Some)
        }
    }

    pub fn str(&self, key: &str) -> Result<String, StartError> {
        self.raw(key).map(str::to_owned)
    }

    /// A value that must not be empty (a path, an address): an empty one is a start
    /// error naming the setting and how it was set, rather than a confusing error later
    /// (``cannot open ` ` ``).
    pub fn non_empty(&self, key: &str) -> Result<String, StartError> {
        let value = self.raw(key)?;
        if !value.trim().is_empty() {
            return Ok(value.to_owned());
        }
        let origin = self
            .values
            .iter()
            .position(|(k, _)| *k == key)
            .and_then(|i| self.origins.get(i))
            .map(|o| format!(" (from {o})"))
            .unwrap_or_default();
        Err(StartError::new(format!(
            "setting `{key}` is empty{origin}; give it a value, e.g. `--set {key}=...`"
        )))
    }

    pub fn u64(&self, key: &str) -> Result<u64, StartError> {
        self.parsed(key, "an unsigned integer")
    }

    /// A whole number above 0 (a size limit).
    pub fn positive(&self, key: &str) -> Result<u64, StartError> {
        match self.parsed(key, "a whole number above 0")? {
            0 => Err(StartError::new(format!(
                "setting `{key}`: expected a whole number above 0, got `0`"
            ))),
            n => Ok(n),
        }
    }

    pub fn f64(&self, key: &str) -> Result<f64, StartError> {
        self.parsed(key, "a number")
    }

    /// Accepts `true/false`, `yes/no`, `on/off`, `1/0` (case-insensitive).
    pub fn bool(&self, key: &str) -> Result<bool, StartError> {
        let raw = self.raw(key)?;
        match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(true),
            "false" | "no" | "off" | "0" => Ok(false),
            _ => Err(StartError::new(format!(
                "setting `{key}`: expected true or false, got `{}`",
                self.shown(key, raw)
            ))),
        }
    }

    /// An empty value means "not set".
    pub fn opt_u64(&self, key: &str) -> Result<Option<u64>, StartError> {
        self.opt_parsed(key, "an unsigned integer or nothing")
    }

    /// An empty value means "not set".
    pub fn opt_f64(&self, key: &str) -> Result<Option<f64>, StartError> {
        self.opt_parsed(key, "a number or nothing")
    }

    /// Every key with its resolved value, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.values.iter().map(|(k, v)| (*k, v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("broker-1".to_owned()),
            "EMPTY" => Some(String::new()),
            "DOLLAR" => Some("${HOST}".to_owned()),
            _ => None,
        }
    }

    fn ex(t: &str) -> Result<String, ExpandError> {
        expand(t, &env)
    }

    #[test]
    fn expands_variables_defaults_and_escapes() {
        assert_eq!(ex("tcp://${HOST}:9092").as_deref(), Ok("tcp://broker-1:9092"));
        assert_eq!(ex("${NOPE:-in.jsonl}").as_deref(), Ok("in.jsonl"));
        assert_eq!(ex("${EMPTY:-fallback}").as_deref(), Ok("fallback"));
        assert_eq!(ex("[${EMPTY}]").as_deref(), Ok("[]"));
        assert_eq!(ex("${NOPE:-}").as_deref(), Ok(""));
        assert_eq!(ex("${NOPE:-${HOST}:1}").as_deref(), Ok("broker-1:1"));
        assert_eq!(ex("cost $$5 and $x").as_deref(), Ok("cost $5 and $x"));
        assert_eq!(ex("$${HOST}").as_deref(), Ok("${HOST}"));
        assert_eq!(ex("${DOLLAR}").as_deref(), Ok("${HOST}"), "env values are literal");
        assert_eq!(ex("trailing $").as_deref(), Ok("trailing $"));
        assert_eq!(ex("ünï${HOST}cødé").as_deref(), Ok("ünïbroker-1cødé"));
    }

    #[test]
    fn expansion_errors() {
        assert_eq!(ex("${NOPE}"), Err(ExpandError::Unset("NOPE".to_owned())));
        assert_eq!(ex("${HOST"), Err(ExpandError::Unterminated));
        assert_eq!(ex("${NOPE:-${HOST}"), Err(ExpandError::Unterminated));
        assert_eq!(ex("${1X}"), Err(ExpandError::BadName("1X".to_owned())));
        assert_eq!(ex("${}"), Err(ExpandError::BadName(String::new())));
    }

    const DEFS: &[SettingDef] = &[
        SettingDef {
            key: "sources.readings.path",
            default: "${DATA_DIR:-/tmp}/in.jsonl",
            help: "input",
            secret: false,
        },
        SettingDef {
            key: "sinks.out.brokers",
            default: "${BROKERS}",
            help: "brokers",
            secret: false,
        },
        SettingDef {
            key: "sources.gen.rate",
            default: "",
            help: "rate",
            secret: false,
        },
    ];

    fn set(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    #[test]
    fn missing_variable_names_setting_and_variable() {
        let err = Settings::resolve_with(DEFS, &[], &env)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("sinks.out.brokers"), "{err}");
        assert!(err.contains("`BROKERS`"), "{err}");
    }

    #[test]
    fn defaults_and_overrides() {
        let s = Settings::resolve_with(
            DEFS,
            &[
                set("sinks.out.brokers", "${HOST}:9092"),
                set("sources.gen.rate", "1"),
                set("sources.gen.rate", "2.5"),
            ],
            &env,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.str("sources.readings.path").as_deref(), Ok("/tmp/in.jsonl"));
        assert_eq!(s.str("sinks.out.brokers").as_deref(), Ok("broker-1:9092"));
        assert_eq!(s.opt_f64("sources.gen.rate"), Ok(Some(2.5)), "last --set wins");
    }

    #[test]
    fn override_replaces_a_template_with_a_missing_variable() {
        let s = Settings::resolve_with(DEFS, &[set("sinks.out.brokers", "b:1")], &env);
        assert!(s.is_ok());
        let err = Settings::resolve_with(DEFS, &[set("sinks.out.brokers", "${NOPE}")], &env)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("(from --set)") && err.contains("NOPE"), "{err}");
    }

    #[test]
    fn unknown_override_key_lists_valid_keys() {
        let err = Settings::resolve_with(DEFS, &[set("sources.reading.path", "x")], &env)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("unknown setting `sources.reading.path`"), "{err}");
        assert!(
            err.contains("sources.readings.path, sinks.out.brokers, sources.gen.rate"),
            "{err}"
        );
        let err = Settings::resolve_with(&[], &[set("a", "b")], &env)
            .err()
            .map(|e| e.to_string());
        assert!(err.unwrap_or_default().contains("no settings"));
    }

    #[test]
    fn an_empty_value_names_the_setting_and_where_it_came_from() {
        let defs = &[SettingDef {
            key: "sources.in.path",
            default: "${EMPTY}",
            help: "input",
            secret: false,
        }];
        let message = |overrides: &[(String, String)]| {
            Settings::resolve_with(defs, overrides, &env)
                .and_then(|s| s.non_empty("sources.in.path"))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert_eq!(
            message(&[]),
            "setting `sources.in.path` is empty (from the spec's value `${EMPTY}`); give it a value, \
             e.g. `--set sources.in.path=...`"
        );
        assert_eq!(
            message(&[set("sources.in.path", " ")]),
            "setting `sources.in.path` is empty (from `--set sources.in.path= `); give it a value, \
             e.g. `--set sources.in.path=...`"
        );
        let s = Settings::resolve_with(defs, &[set("sources.in.path", "${HOST}.csv")], &env);
        assert_eq!(
            s.and_then(|s| s.non_empty("sources.in.path")).as_deref(),
            Ok("broker-1.csv")
        );
    }

    #[test]
    fn secret_values_are_never_shown() {
        let defs = [SettingDef {
            key: "sinks.out.sasl.password",
            default: "${PW}",
            help: "",
            secret: true,
        }];
        let env = |name: &str| (name == "PW").then(|| "hunter2".to_owned());
        let s = Settings::resolve_with(&defs, &[], &env).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.str("sinks.out.sasl.password").as_deref(), Ok("hunter2"));
        let shown = format!(
            "{s:?} {}",
            s.u64("sinks.out.sasl.password")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        );
        assert!(shown.contains("<secret>"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(defs[0].variables(), ["PW"]);
    }

    #[test]
    fn typed_getters() {
        let s = Settings::from_values(vec![
            ("n", " 42 ".to_owned()),
            ("f", "0.5".to_owned()),
            ("b", "Yes".to_owned()),
            ("e", "".to_owned()),
            ("x", "abc".to_owned()),
            ("z", "0".to_owned()),
        ]);
        assert_eq!(s.u64("n"), Ok(42));
        assert_eq!(s.positive("n"), Ok(42));
        assert!(s
            .positive("z")
            .is_err_and(|e| e.to_string() == "setting `z`: expected a whole number above 0, got `0`"));
        assert_eq!(s.f64("f"), Ok(0.5));
        assert_eq!(s.bool("b"), Ok(true));
        assert_eq!(s.opt_u64("e"), Ok(None));
        assert_eq!(s.opt_u64("n"), Ok(Some(42)));
        assert!(s
            .u64("x")
            .is_err_and(|e| e.to_string().contains("expected an unsigned integer, got `abc`")));
        assert!(s.bool("x").is_err());
        assert!(s.opt_f64("x").is_err());
        assert!(s.str("missing").is_err());
    }
}

//! Secrets: which settings carry one, and the only form a secret may take in a spec.
//!
//! Whatever a spec says is compiled into the binary (a setting's default is printed by
//! `--help` and readable with `strings`), so a password, key or token must come from
//! the environment when the binary starts: its value is exactly `${VAR}`, with no
//! default (`${VAR:-}` included) and no text around it. The same holds for the
//! password in a URL's user info (`mqtt://user:${MQTT_PASSWORD}@host`).
//! A setting that holds a secret is marked so in the IR, and the binary never prints
//! its value.

use std::ops::Range;

/// Words (after lower-casing) whose presence anywhere in a name makes it secret.
const SECRET_STEMS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "credential",
    "apikey",
    "privatekey",
    "accesskey",
    "jaas",
];

/// Whole words that make a name secret.
const SECRET_WORDS: &[&str] = &["pwd", "pass", "psk"];

/// Words after `key` that make it a file path or a description of a key rather than
/// the key itself (`ssl.key.location`).
const NOT_KEY_MATERIAL: &[&str] = &["location", "path", "file", "dir", "directory", "id", "name", "type"];

/// True when the value of the option or property `name` is a secret. Case-insensitive;
/// words are separated by `.`, `_`, `-` (or anything not a letter or digit).
///
/// Secret: anything naming a password, passphrase, secret, token or credential, an
/// API, access or private key, a JAAS or OAUTHBEARER configuration, and a `key` that
/// is key material (`ssl_key`, `ssl.key.pem`). Not secret: the path of a key file
/// (`ssl.key.location`, `ssl.keystore.location`) — the file stays on the device.
pub fn is_secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    if SECRET_STEMS.iter().any(|s| lower.contains(s)) {
        return true;
    }
    let words: Vec<&str> = lower.split(|c: char| !c.is_ascii_alphanumeric()).collect();
    words.iter().enumerate().any(|(i, w)| {
        SECRET_WORDS.contains(w)
            || (*w == "key" && !words.get(i + 1).is_some_and(|next| NOT_KEY_MATERIAL.contains(next)))
            || (*w == "oauthbearer" && words.get(i + 1) == Some(&"config"))
    })
}

/// How a secret is written wrongly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretProblem {
    /// No `${VAR}` at all: the secret itself is in the spec.
    Literal,
    /// `${VAR:-default}`: the default would be compiled in (an empty one too: a
    /// missing secret must stop the binary, not run it without a password).
    Default,
    /// `${VAR}` with text around it, or several variables.
    NotAlone,
}

impl SecretProblem {
    /// What the label says.
    pub fn message(&self) -> &'static str {
        match self {
            SecretProblem::Literal => "a secret written in the spec would be compiled into the binary",
            SecretProblem::Default => "a default for a secret would be compiled into the binary",
            SecretProblem::NotAlone => "text around `${VAR}` would be compiled into the binary",
        }
    }
}

/// The variable a secret comes from, when it is written as exactly `${VAR}`.
pub fn secret_variable(value: &str) -> Result<&str, SecretProblem> {
    let Some(inner) = value.strip_prefix("${").and_then(|v| v.strip_suffix('}')) else {
        return Err(if value.contains("${") {
            SecretProblem::NotAlone
        } else {
            SecretProblem::Literal
        });
    };
    if is_var_name(inner) {
        return Ok(inner);
    }
    match inner.split_once(":-") {
        Some((var, _)) if is_var_name(var) => Err(SecretProblem::Default),
        _ => Err(SecretProblem::NotAlone),
    }
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A password in the user info of a URL or `host:port` list (`mqtt://user:pw@host`,
/// `user:pw@host:9092`), as (byte range of the password, whether it is `${VAR}`).
/// Items are separated by `,` or whitespace; an item with a `/` before its `@` (after
/// any `scheme://`) is a path, not a URL. Defaults (`${VAR:-user:pw@host}`) are
/// searched too: they are compiled in.
pub fn url_passwords(value: &str) -> Vec<(Range<usize>, bool)> {
    let mut found = Vec::new();
    for (offset, default) in defaults(value) {
        found.extend(
            url_passwords(default)
                .into_iter()
                .map(|(r, env)| (r.start + offset..r.end + offset, env)),
        );
    }
    for (item_start, item) in split_items(value) {
        let rest_at = item.find("://").map_or(0, |i| i + 3);
        let rest = &item[rest_at..];
        let Some(at) = last_at_outside_braces(rest) else {
            continue;
        };
        let userinfo = &rest[..at];
        if userinfo.contains('/') {
            continue;
        }
        let Some(colon) = first_colon_outside_braces(userinfo) else {
            continue;
        };
        let password = &userinfo[colon + 1..];
        if password.is_empty() {
            continue;
        }
        let begin = item_start + rest_at + colon + 1;
        found.push((begin..begin + password.len(), secret_variable(password).is_ok()));
    }
    found
}

/// The defaults of the `${VAR:-default}` at the top level of `value`, with their offsets.
fn defaults(value: &str) -> Vec<(usize, &str)> {
    let bytes = value.as_bytes();
    let mut found = Vec::new();
    let mut depth = 0usize;
    let mut open = 0;
    for i in 0..bytes.len() {
        match bytes[i] {
            b'{' if i > 0 && bytes[i - 1] == b'$' => {
                if depth == 0 {
                    open = i + 1;
                }
                depth += 1;
            }
            b'}' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    if let Some(p) = value[open..i].find(":-") {
                        found.push((open + p + 2, &value[open + p + 2..i]));
                    }
                }
            }
            _ => {}
        }
    }
    found
}

/// Items of a list separated by `,` or whitespace outside `${…}`, with their offsets.
fn split_items(value: &str) -> Vec<(usize, &str)> {
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut item_start = 0;
    let bytes = value.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'{' if i > 0 && bytes[i - 1] == b'$' => depth += 1,
            b'}' if depth > 0 => depth -= 1,
            b',' | b' ' | b'\t' | b'\n' if depth == 0 => {
                items.push((item_start, &value[item_start..i]));
                item_start = i + 1;
            }
            _ => {}
        }
    }
    items.push((item_start, &value[item_start..]));
    items.retain(|(_, s)| !s.is_empty());
    items
}

/// Byte offsets of `target` outside `${…}` in `text`.
fn outside_braces(text: &str, target: u8) -> impl Iterator<Item = usize> + '_ {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    (0..bytes.len()).filter(move |&i| match bytes[i] {
        b'{' if i > 0 && bytes[i - 1] == b'$' => {
            depth += 1;
            false
        }
        b'}' if depth > 0 => {
            depth -= 1;
            false
        }
        b => b == target && depth == 0,
    })
}

fn last_at_outside_braces(text: &str) -> Option<usize> {
    outside_braces(text, b'@').last()
}

fn first_colon_outside_braces(text: &str) -> Option<usize> {
    outside_braces(text, b':').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_found_case_insensitively() {
        let secret = [
            "password",
            "sasl.password",
            "SASL.PASSWORD",
            "SSL.KEY.PASSWORD",
            "ssl.keystore.password",
            "ssl.key.pem",
            "private.key.pem",
            "ssl_key",
            "sasl.oauthbearer.client.secret",
            "sasl.oauthbearer.config",
            "sasl.jaas.config",
            "key_password",
            "ssl.key.passphrase",
            "api_key",
            "apiKey",
            "X-Api-Token",
            "aws.credentials",
            "db_pwd",
            "private_key",
            "clientSecret",
        ];
        for name in secret {
            assert!(is_secret_name(name), "{name} should be secret");
        }
        let plain = [
            "bootstrap.servers",
            "ssl.key.location",
            "ssl.keystore.location",
            "ssl.ca.location",
            "ssl.certificate.location",
            "ssl.certificate.pem",
            "ssl.ca.pem",
            "sasl.username",
            "sasl.kerberos.keytab",
            "sasl.oauthbearer.client.id",
            "path",
            "group.id",
            "brokers",
            "compression.type",
            "keyboard",
            "passive",
        ];
        for name in plain {
            assert!(!is_secret_name(name), "{name} should not be secret");
        }
    }

    #[test]
    fn a_secret_is_exactly_one_variable_without_default() {
        assert_eq!(secret_variable("${BROKER_PW}"), Ok("BROKER_PW"));
        assert_eq!(secret_variable("hunter2"), Err(SecretProblem::Literal));
        assert_eq!(secret_variable(""), Err(SecretProblem::Literal));
        assert_eq!(secret_variable("${BROKER_PW:-hunter2}"), Err(SecretProblem::Default));
        assert_eq!(secret_variable("${BROKER_PW:-}"), Err(SecretProblem::Default));
        assert_eq!(secret_variable("secret${X:-}"), Err(SecretProblem::NotAlone));
        assert_eq!(secret_variable("${A}${B}"), Err(SecretProblem::NotAlone));
        assert_eq!(secret_variable("${PW} "), Err(SecretProblem::NotAlone));
        assert_eq!(secret_variable("$${PW}"), Err(SecretProblem::NotAlone));
    }

    #[test]
    fn url_passwords_are_found_in_urls_and_host_lists() {
        let literal = |v: &str| -> Vec<String> {
            url_passwords(v)
                .into_iter()
                .filter(|(_, from_env)| !from_env)
                .map(|(r, _)| v[r].to_string())
                .collect()
        };
        assert_eq!(literal("mqtt://user:hunter2@host:1883"), ["hunter2"]);
        assert_eq!(literal("a:9092,user:pw@b:9092"), ["pw"]);
        assert_eq!(literal("${BROKERS:-user:pw@host:9092}"), ["pw"]);
        assert_eq!(literal("https://u:${PW:-x}@h/p"), ["${PW:-x}"]);
        assert!(literal("mqtt://user:${MQTT_PW}@host").is_empty());
        assert_eq!(url_passwords("mqtt://${U}:${MQTT_PW}@host").len(), 1);
        assert!(url_passwords("mqtt://user@host:1883").is_empty());
        assert!(url_passwords("host:9092,other:9092").is_empty());
        assert!(url_passwords("/data/a:b@c.jsonl").is_empty());
        assert!(url_passwords("${DIR:-/tmp}/in.jsonl").is_empty());
    }
}

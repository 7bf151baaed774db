//! Secrets never reach a binary: every way of writing one into a spec is an error,
//! a secret setting is marked in the generated `PIPELINE`, and the built binary
//! shows neither a default nor the value in `--help`.

mod support;

use std::process::Command;

const LEAKS: &str = "tests/errors/secrets_in_spec.yaml";

fn read(path: &str) -> String {
    std::fs::read_to_string(support::repo().join(path)).unwrap()
}

#[test]
fn every_leak_is_reported_at_once() {
    let Err(report) = rill::check_text("leaks.yaml", &read(LEAKS)) else {
        panic!("{LEAKS} must not check")
    };
    let rendered = report.render_plain(100);
    assert_eq!(rendered.matches("rill::secret_in_spec").count(), 8, "{rendered}");
    for leaked in [
        "KAFKA_PW:-hunter2",
        "secret${X:-}",
        "SSL.KEY.PASSWORD",
        "ssl.key.passphrase",
        "ssl.key.pem",
        "private.key.pem",
        "rill:hunter2@broker-1",
        "KEY_PW:-}",
    ] {
        assert!(rendered.contains(leaked), "{leaked} not reported:\n{rendered}");
    }
    // The path of a key file is not a secret.
    assert!(!rendered.contains("`key` holds a secret"), "{rendered}");
}

/// The leaky spec with each secret taken from the environment instead.
fn fixed_spec() -> String {
    read(LEAKS)
        .replace(
            "${KAFKA_BROKERS:-rill:hunter2@broker-1:9092}",
            "${KAFKA_BROKERS:-broker-1:9092}",
        )
        .replace("${KAFKA_PW:-hunter2}", "${KAFKA_PW}")
        .replace("${KEY_PW:-}", "${KEY_PW}")
        .replace("secret${X:-}", "${OAUTH_SECRET}")
        .replace("SSL.KEY.PASSWORD: plain", "ssl.keystore.password: \"${KEYSTORE_PW}\"")
        .replace("${PASS} and more", "${PASS}")
        .replace("-----BEGIN PRIVATE KEY-----", "${KEY_PEM}")
        .replace("${PEM:-MIIEvQIBADANBg}", "${PEM}")
}

#[test]
fn secret_settings_are_marked_in_the_generated_pipeline() {
    let compiled = rill::compile_text("fixed.yaml", &fixed_spec()).unwrap_or_else(|e| panic!("{e:?}"));
    let secret = |key: &str| {
        let s = compiled
            .ir
            .settings
            .iter()
            .find(|s| s.key == key)
            .unwrap_or_else(|| panic!("no {key}"));
        (s.secret, s.default.clone())
    };
    assert_eq!(secret("sources.clicks.sasl.password"), (true, "${KAFKA_PW}".into()));
    assert_eq!(secret("sources.clicks.tls.key_password"), (true, "${KEY_PW}".into()));
    assert_eq!(
        secret("sources.clicks.properties.ssl.key.pem"),
        (true, "${KEY_PEM}".into())
    );
    assert_eq!(secret("sources.clicks.tls.key"), (false, "/etc/rill/client.key".into()));
    assert_eq!(
        secret("sources.clicks.brokers"),
        (false, "${KAFKA_BROKERS:-broker-1:9092}".into())
    );
    let main_rs = &compiled.main_rs;
    assert!(
        main_rs.contains("key: \"sources.clicks.sasl.password\",\n            default: \"${KAFKA_PW}\",\n            help: \"SASL password\",\n            secret: true,"),
        "{main_rs}"
    );
    for marker in ["hunter2", "MIIEvQIBADANBg", "BEGIN PRIVATE KEY"] {
        assert!(!main_rs.contains(marker), "{marker} in the generated code");
    }
}

/// Build the fixed spec into a binary: no marker of the leaky spec is in it or in its
/// `--help`, a secret shows where it comes from, and a plain default still shows (so
/// the search would find a default if there were one).
#[test]
fn a_built_binary_holds_no_secret_and_help_prints_none() {
    let dir = support::cache_dir().join("specs");
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("secrets_fixed.yaml");
    std::fs::write(&spec, fixed_spec()).unwrap();
    // The leaky spec does not build at all.
    let leaky = support::rill()
        .arg("build")
        .arg(support::repo().join(LEAKS))
        .arg("-o")
        .arg(dir.join("never_built"))
        .output()
        .unwrap();
    assert_eq!(leaky.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&leaky.stderr).contains("rill::secret_in_spec"));
    assert!(!dir.join("never_built").exists());

    let binary = support::build(&spec.to_string_lossy());
    let bytes = std::fs::read(&binary).unwrap();
    let contains = |haystack: &[u8], needle: &str| haystack.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(contains(&bytes, "broker-1:9092"), "a plain default is compiled in");
    for marker in ["hunter2", "MIIEvQIBADANBg", "BEGIN PRIVATE KEY"] {
        assert!(!contains(&bytes, marker), "{marker} is in the binary");
    }

    // Every secret the spec reads, set as it would be on the device.
    let env = [
        "KAFKA_PW",
        "KEY_PW",
        "OAUTH_SECRET",
        "KEYSTORE_PW",
        "PASS",
        "KEY_PEM",
        "PEM",
    ]
    .map(|var| (var, "pw-from-the-environment"));
    let help = Command::new(&binary).arg("--help").envs(env).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("default: ${KAFKA_BROKERS:-broker-1:9092}"), "{help}");
    assert!(
        help.contains("sources.clicks.sasl.password\n      (secret, from $KAFKA_PW)\n"),
        "{help}"
    );
    assert!(!help.contains("pw-from-the-environment"), "{help}");
    assert!(!help.contains("default: ${KAFKA_PW}"), "{help}");
    // A start that fails on a setting names it, never the secret's value.
    let failed = Command::new(&binary)
        .args(["--set", "sources.clicks.group_id=${NOT_SET_ANYWHERE}"])
        .envs(env)
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("NOT_SET_ANYWHERE") && !stderr.contains("pw-from-the-environment"),
        "{stderr}"
    );
}

//! HTTP end to end: the sink against a Python `http.server` receiver
//! (`support/http_receiver.py`) the tests start on a free loopback port.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};
use support::http::{closed_port, Receiver};
use support::{build, counter, counters, dead_letters, json_lines, workdir};

/// `n` readings as JSON lines in `dir/in.jsonl`; returns the file and the records.
fn readings(dir: &Path, n: i64) -> (std::path::PathBuf, Vec<Value>) {
    let records: Vec<Value> = (0..n).map(|i| json!({ "id": i, "value": i as f64 / 4.0 })).collect();
    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
    let path = dir.join("in.jsonl");
    std::fs::write(&path, text).unwrap();
    (path, records)
}

/// The `http_post` test pipeline reading `input`, posting to `url`.
fn post(input: &Path, url: &str) -> Command {
    let mut cmd = Command::new(build("tests/pipelines/http_post.yaml"));
    cmd.env("INPUT", input).env("HTTP_URL", url).env("HTTP_TOKEN", "s3cret");
    cmd
}

/// The records in a request's body (a JSON array).
fn records_of(body: &str) -> Vec<Value> {
    match serde_json::from_str(body) {
        Ok(Value::Array(items)) => items,
        other => panic!("not a JSON array ({other:?}): {body}"),
    }
}

fn retries_logged(stderr: &[u8]) -> usize {
    json_lines(stderr)
        .iter()
        .filter(|l| l["msg"] == "HTTP request failed, retrying")
        .count()
}

#[test]
fn sink_retries_503s_and_then_delivers_everything_once_in_order() {
    let dir = workdir("http-sink-retries");
    let receiver = Receiver::start(&dir, "503,503,200", None);
    let (input, records) = readings(&dir, 35);
    let output = post(&input, &receiver.url()).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let got = receiver.requests();
    assert_eq!(
        got.iter().map(|g| g.status).take(3).collect::<Vec<_>>(),
        [503, 503, 200],
        "{got:?}"
    );
    // The two refused requests were the first batch, sent again as it was.
    assert_eq!(got[0].body, got[2].body);
    let delivered: Vec<Value> = got
        .iter()
        .filter(|g| g.status == 200)
        .flat_map(|g| records_of(&g.body))
        .collect();
    assert_eq!(delivered, records, "every record once, in order");
    assert!(
        got.iter().all(|g| records_of(&g.body).len() <= 10),
        "batches of 10 at most"
    );
    assert_eq!(got[0].headers["authorization"], "Bearer s3cret");
    assert_eq!(got[0].headers["x-source"], "edge-7");
    assert_eq!(got[0].headers["content-type"], "application/json");
    assert_eq!(retries_logged(&output.stderr), 2, "{stderr}");
    assert!(!stderr.contains("s3cret"), "the token is never logged: {stderr}");
    assert!(dead_letters(&output.stderr).is_empty(), "{stderr}");
    let c = counters(&output.stderr);
    assert_eq!(counter(&c, "sinks.out", "sent"), 35);
}

#[test]
fn sink_refused_with_400_dead_letters_every_record_with_the_reason_without_retrying() {
    let dir = workdir("http-sink-refused");
    let receiver = Receiver::start(&dir, "400", None);
    let (input, records) = readings(&dir, 12);
    let output = post(&input, &receiver.url()).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let got = receiver.requests();
    let sent: Vec<Value> = got.iter().flat_map(|g| records_of(&g.body)).collect();
    assert_eq!(sent, records, "each batch tried once: {got:?}");
    assert_eq!(retries_logged(&output.stderr), 0, "{stderr}");
    let letters = dead_letters(&output.stderr);
    assert_eq!(letters.len(), 12, "{stderr}");
    for letter in &letters {
        let reason = letter["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("HTTP 400"), "{reason}");
        assert!(reason.contains("refused: test receiver says no"), "{reason}");
    }
    let c = counters(&output.stderr);
    assert_eq!(counter(&c, "sinks.out", "dead_lettered"), 12);
    assert_eq!(counter(&c, "sinks.out", "sent"), 0);
}

#[test]
fn sink_honours_retry_after_on_429() {
    let dir = workdir("http-sink-429");
    let receiver = Receiver::start(&dir, "429,200", Some("1"));
    let (input, records) = readings(&dir, 3);
    let output = post(&input, &receiver.url()).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let got = receiver.requests();
    assert_eq!(got.iter().map(|g| g.status).collect::<Vec<_>>(), [429, 200], "{stderr}");
    assert_eq!(records_of(&got[1].body), records);
    let retry = json_lines(&output.stderr)
        .into_iter()
        .find(|l| l["msg"] == "HTTP request failed, retrying")
        .unwrap_or_else(|| panic!("no retry logged: {stderr}"));
    assert_eq!(
        retry["retry_in_ms"], 1000,
        "the server's Retry-After, not the 50ms backoff"
    );
}

#[test]
fn sink_to_a_receiver_that_is_down_retries_then_dead_letters() {
    let dir = workdir("http-sink-down");
    let (input, _) = readings(&dir, 5);
    let url = format!("http://127.0.0.1:{}/in", closed_port());
    let output = post(&input, &url).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // 4 tries: 3 retries, then the batch is given up.
    assert_eq!(retries_logged(&output.stderr), 3, "{stderr}");
    let letters = dead_letters(&output.stderr);
    assert_eq!(letters.len(), 5, "{stderr}");
    let reason = letters[0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(&format!("POST {url}: ")), "{reason}");
    assert!(reason.contains("Connection refused"), "{reason}");
    let c = counters(&output.stderr);
    assert_eq!(counter(&c, "sinks.out", "dead_lettered"), 5);
}

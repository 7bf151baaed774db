//! HTTP end to end: the sink against a Python `http.server` receiver
//! (`support/http_receiver.py`) the tests start on a free loopback port.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};
use support::http::{closed_port, curl, Receiver};
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

/// The `http_relay` test pipeline listening on a free loopback port, relaying to
/// `receiver`; returns it running and its ingest URL.
fn relay(receiver: &Receiver, args: &[&str]) -> (support::Running, String) {
    let port = closed_port();
    let mut cmd = Command::new(build("tests/pipelines/http_relay.yaml"));
    cmd.args(args)
        .env("INGEST_ADDRESS", format!("127.0.0.1:{port}"))
        .env("INGEST_TOKEN", "in-t0ken")
        .env("HTTP_URL", receiver.url());
    (support::start(&mut cmd), format!("http://127.0.0.1:{port}/ingest"))
}

/// The records the receiver accepted, in order.
fn delivered(receiver: &Receiver) -> Vec<Value> {
    receiver
        .requests()
        .iter()
        .filter(|g| g.status == 200)
        .flat_map(|g| records_of(&g.body))
        .collect()
}

fn ids_of(records: &[Value]) -> Vec<i64> {
    records.iter().map(|r| r["id"].as_i64().unwrap()).collect()
}

fn lines_of(ids: std::ops::Range<i64>) -> String {
    ids.map(|i| format!("{}\n", json!({ "id": i, "value": 0.5 }))).collect()
}

const TOKEN: Option<&str> = Some("in-t0ken");

#[test]
fn source_answers_202_once_the_records_are_delivered_and_refuses_bad_requests_with_the_reason() {
    let dir = workdir("http-source-answers");
    let receiver = Receiver::start(&dir, "200", None);
    let (running, url) = relay(&receiver, &[]);

    let reply = curl("POST", &url, TOKEN, lines_of(0..3).as_bytes());
    assert_eq!(reply.status, 202, "{reply:?}");
    // 202 comes only once the records are safe: the receiver has them already.
    assert_eq!(ids_of(&delivered(&receiver)), [0, 1, 2]);
    let array = json!([{ "id": 3, "value": 1.5 }, { "id": 4, "value": 2.5 }]).to_string();
    assert_eq!(curl("POST", &url, TOKEN, array.as_bytes()).status, 202);
    assert_eq!(ids_of(&delivered(&receiver)), [0, 1, 2, 3, 4]);
    let sender = delivered(&receiver)[0]["sender"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(sender.starts_with("127.0.0.1:"), "{sender}");

    // A record that does not fit the schema is a dead letter; the others go on.
    let mixed = format!(
        "{}{{\"id\": \"seven\", \"value\": 1}}\n{}",
        lines_of(5..6),
        lines_of(6..7)
    );
    assert_eq!(curl("POST", &url, TOKEN, mixed.as_bytes()).status, 202);
    assert_eq!(ids_of(&delivered(&receiver)), [0, 1, 2, 3, 4, 5, 6]);

    let bad = curl("POST", &url, TOKEN, b"{\"id\": 9, \"value\": 1}\nthis is not json\n");
    assert_eq!(bad.status, 400, "{bad:?}");
    assert!(bad.body.contains("line 2 is not JSON"), "{bad:?}");
    let big = lines_of(100..300);
    assert!(big.len() > 4096);
    assert_eq!(curl("POST", &url, TOKEN, big.as_bytes()).status, 413);
    assert_eq!(
        curl("POST", &url, Some("wrong"), lines_of(10..11).as_bytes()).status,
        401
    );
    assert_eq!(curl("POST", &url, None, lines_of(10..11).as_bytes()).status, 401);
    assert_eq!(curl("PUT", &url, TOKEN, lines_of(10..11).as_bytes()).status, 405);
    let elsewhere = url.replace("/ingest", "/other");
    assert_eq!(curl("POST", &elsewhere, TOKEN, lines_of(10..11).as_bytes()).status, 404);

    running.signal("TERM");
    let output = running.wait();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // Nothing of a refused request went through.
    assert_eq!(ids_of(&delivered(&receiver)), [0, 1, 2, 3, 4, 5, 6], "{stderr}");
    let letters = dead_letters(&output.stderr);
    assert_eq!(letters.len(), 1, "{stderr}");
    assert!(
        letters[0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("(from 127.0.0.1:"),
        "{letters:?}"
    );
    assert!(!stderr.contains("in-t0ken"), "the token is never logged");
    let c = counters(&output.stderr);
    assert_eq!(counter(&c, "sources.readings", "received"), 8);
    assert_eq!(counter(&c, "sinks.out", "sent"), 7);
}

/// Sends `requests` requests of `per_request` records from each of `threads` threads
/// (ids unique across all), each sent again after a `503` up to `tries` times in all,
/// as a client should; returns each request's ids with its last status.
fn flood(url: &str, threads: i64, requests: i64, per_request: i64, tries: usize) -> Vec<(Vec<i64>, u16)> {
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let url = url.to_string();
            std::thread::spawn(move || {
                (0..requests)
                    .map(|r| {
                        let first = (t * requests + r) * per_request;
                        let body = lines_of(first..first + per_request);
                        let mut status = curl("POST", &url, TOKEN, body.as_bytes()).status;
                        for _ in 1..tries {
                            if status != 503 {
                                break;
                            }
                            std::thread::sleep(std::time::Duration::from_millis(20));
                            status = curl("POST", &url, TOKEN, body.as_bytes()).status;
                        }
                        ((first..first + per_request).collect::<Vec<_>>(), status)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
}

#[test]
fn source_under_concurrent_requests_sent_again_after_503_delivers_every_record_exactly_once() {
    let dir = workdir("http-source-concurrent");
    let receiver = Receiver::start(&dir, "200", None);
    let (running, url) = relay(&receiver, &[]);
    // A client sends again after a 503: in the end every request is accepted.
    let sent = flood(&url, 8, 50, 5, 500);
    running.signal("TERM");
    let output = running.wait();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let statuses: Vec<u16> = sent.iter().map(|(_, s)| *s).collect();
    assert!(statuses.iter().all(|s| *s == 202), "{statuses:?}");
    let mut got = ids_of(&delivered(&receiver));
    got.sort_unstable();
    assert_eq!(got, (0..2000).collect::<Vec<_>>(), "every record once\n{stderr}");
    counters(&output.stderr);
}

#[test]
fn source_with_a_slow_sink_answers_503_and_loses_nothing_it_accepted() {
    let dir = workdir("http-source-backpressure");
    // 10 records per request at most, 20 requests a second: about 200 records a second.
    let receiver = Receiver::start_slow(&dir, "200", None, 0.05);
    let (running, url) = relay(&receiver, &["--batch-size", "20"]);
    let sent = flood(&url, 8, 25, 10, 1);
    running.signal("TERM");
    let output = running.wait();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let statuses: Vec<u16> = sent.iter().map(|(_, s)| *s).collect();
    assert!(statuses.contains(&503), "the queue filled: {statuses:?}");
    assert!(statuses.contains(&202), "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 202 || *s == 503), "{statuses:?}");
    let accepted: Vec<i64> = sent
        .iter()
        .filter(|(_, s)| *s == 202)
        .flat_map(|(ids, _)| ids.clone())
        .collect();
    let refused: std::collections::BTreeSet<i64> = sent
        .iter()
        .filter(|(_, s)| *s == 503)
        .flat_map(|(ids, _)| ids.clone())
        .collect();
    let got = ids_of(&delivered(&receiver));
    let mut once = got.clone();
    once.sort_unstable();
    once.dedup();
    assert_eq!(once.len(), got.len(), "no record twice");
    for id in &accepted {
        assert!(got.contains(id), "accepted record {id} was lost\n{stderr}");
    }
    assert!(
        got.iter().all(|id| !refused.contains(id)),
        "a refused record came through"
    );
    counters(&output.stderr);
}

#[test]
fn http_ingest_example_counts_posted_events_per_service_into_kafka() {
    let kafka = support::kafka::Broker::start();
    kafka.create_topic("service_stats", 1);
    let port = closed_port();
    let mut cmd = Command::new(build("pipelines/http_ingest.yaml"));
    cmd.env("INGEST_ADDRESS", format!("127.0.0.1:{port}"))
        .env("INGEST_TOKEN", "ingest-t0ken")
        .env("KAFKA_BROKERS", kafka.bootstrap());
    let running = support::start(&mut cmd);
    let url = format!("http://127.0.0.1:{port}/events");
    let token = Some("ingest-t0ken");
    let event =
        |service: &str, level: &str, latency: f64| json!({ "service": service, "level": level, "latency_ms": latency });
    let lines: String = [
        event("api", "info", 10.0),
        event("api", "error", 30.0),
        event("auth", "info", 5.0),
    ]
    .iter()
    .map(|e| format!("{e}\n"))
    .collect();
    let array = json!([event("api", "info", 20.0), { "service": "auth", "level": "info" }]).to_string();
    // Both requests together, as two clients would: each waits for its window to fire.
    let second = std::thread::spawn(move || curl("POST", &url, token, array.as_bytes()));
    let first = curl(
        "POST",
        &format!("http://127.0.0.1:{port}/events"),
        token,
        lines.as_bytes(),
    );
    let second = second.join().unwrap();
    assert_eq!((first.status, second.status), (202, 202), "{first:?} {second:?}");
    // A 202 means the counts are in Kafka already: read all there is (two services, in
    // one window or two), without waiting for more.
    let consumed = kafka.consume("service_stats", 4, std::time::Duration::from_secs(5));
    // Both requests may fall into one window or two: add the windows up per service.
    let mut per_service = std::collections::BTreeMap::new();
    for c in &consumed {
        let s: Value = serde_json::from_str(&c.value).unwrap();
        let e = per_service
            .entry(s["service"].as_str().unwrap_or_default().to_string())
            .or_insert((0, 0));
        e.0 += s["events"].as_i64().unwrap_or(-100);
        e.1 += s["errors"].as_i64().unwrap_or(-100);
    }
    assert_eq!(
        per_service,
        std::collections::BTreeMap::from([("api".to_string(), (3, 1)), ("auth".to_string(), (1, 0))])
    );
    assert!(consumed.iter().all(|c| c.key.is_some()));
    running.signal("TERM");
    let output = running.wait();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let letters = dead_letters(&output.stderr);
    assert_eq!(letters.len(), 1, "the event without latency: {stderr}");
    counters(&output.stderr);
}

#[test]
fn sink_with_a_disk_buffer_delivers_once_a_receiver_that_was_down_comes_up() {
    let dir = workdir("http-sink-buffered");
    let (input, records) = readings(&dir, 40);
    let port = closed_port();
    let mut cmd = Command::new(build("tests/pipelines/http_buffered.yaml"));
    cmd.env("INPUT", &input)
        .env("HTTP_URL", format!("http://127.0.0.1:{port}/in"))
        .env("RILL_STATE_DIR", dir.join("state"));
    let mut running = support::start(&mut cmd);
    // Down: the first batches fail, worth retrying, and stay in the buffer.
    running.wait_for_log("HTTP request failed, retrying");
    let receiver = Receiver::start_on(&dir, port, "200", None, 0.0);
    support::wait_until("every record delivered", || delivered(&receiver).len() >= records.len());
    running.signal("TERM");
    let output = running.wait();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(delivered(&receiver), records, "in order, each once\n{stderr}");
    assert!(dead_letters(&output.stderr).is_empty(), "{stderr}");
    let c = counters(&output.stderr);
    assert_eq!(counter(&c, "sinks.out", "sent"), 40);
}

#[test]
fn source_stopping_answers_every_waiting_request_and_loses_nothing_it_accepted() {
    let dir = workdir("http-source-stop");
    let receiver = Receiver::start_slow(&dir, "200", None, 0.3);
    let (running, url) = relay(&receiver, &["--batch-size", "5"]);
    let clients: Vec<_> = (0..6)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || {
                let ids = i * 10..i * 10 + 10;
                (
                    ids.clone().collect::<Vec<_>>(),
                    curl("POST", &url, TOKEN, lines_of(ids).as_bytes()),
                )
            })
        })
        .collect();
    // Stop while requests wait: some queued, some read and not yet safe.
    support::wait_until("the receiver to get a first batch", || !receiver.requests().is_empty());
    running.signal("TERM");
    let output = running.wait();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let replies: Vec<(Vec<i64>, support::http::Reply)> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    assert!(
        replies.iter().all(|(_, r)| r.status == 202 || r.status == 503),
        "every request is answered: {replies:?}"
    );
    assert!(
        replies.iter().any(|(_, r)| r.status == 503),
        "some were not safe yet: {replies:?}"
    );
    let got = ids_of(&delivered(&receiver));
    for (ids, reply) in &replies {
        if reply.status == 202 {
            assert!(
                ids.iter().all(|id| got.contains(id)),
                "{ids:?} were accepted and lost\n{stderr}"
            );
        }
    }
    counters(&output.stderr);
}

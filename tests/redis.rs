//! End-to-end tests of the Redis connector against a real `redis-server` started by the
//! tests, with `redis-cli` on the other side.

mod support;

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::{json, Value};
use support::redis::Server;

fn pipeline(spec: &str, server: &Server) -> Command {
    let mut cmd = Command::new(support::build(spec));
    cmd.env("REDIS_URL", server.url())
        .env("REDIS_PORT", server.port().to_string())
        .env_remove("RILL_STATE_DIR");
    cmd
}

#[test]
fn pubsub_readings_are_cleaned_into_a_stream_and_bad_ones_are_dead_letters() {
    let server = Server::start(&support::workdir("redis-example").join("redis"));
    let mut running = support::start(&mut pipeline("pipelines/redis_sensor_stream.yaml", &server));
    running.wait_for_log_any_time("redis subscribed");
    let mut rng = support::Rng(7);
    let mut published = Vec::new();
    let mut lines = Vec::new();
    for n in 0..300 {
        let temperature = rng.decimal(-60.0, 100.0);
        let humidity = if n % 3 == 0 {
            Value::Null
        } else {
            json!(rng.decimal(0.0, 100.0))
        };
        let reading =
            json!({ "device_id": format!("Dev-{}", n % 7), "temperature": temperature, "humidity": humidity });
        lines.push(format!(
            "PUBLISH sensor_data {}",
            serde_json::to_string(&reading.to_string()).unwrap()
        ));
        published.push(reading);
    }
    lines.push("PUBLISH sensor_data \"{not json\"".to_string());
    server.commands(&lines);
    let expected: Vec<Value> = published
        .iter()
        .filter(|r| r["temperature"].as_f64().is_some_and(|t| t > -40.0 && t < 85.0))
        .map(|r| {
            json!({
                "device_id": r["device_id"].as_str().unwrap().to_lowercase(),
                "temperature": (r["temperature"].as_f64().unwrap() * 10.0).round() / 10.0,
                "humidity": r["humidity"],
                "channel": "sensor_data",
            })
        })
        .collect();
    assert!(expected.len() > 100 && expected.len() < 300, "{}", expected.len());
    support::wait_until("the cleaned readings in the stream", || {
        server.stream("sensor_clean", "data").len() >= expected.len()
    });
    running.signal("TERM");
    let out = running.wait();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: Vec<Value> = server
        .stream("sensor_clean", "data")
        .into_iter()
        .map(|(_, data)| serde_json::from_str(&data).unwrap())
        .collect();
    assert_eq!(got, expected, "in order, each once");
    let letters = support::dead_letters(&out.stderr);
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["record"], "{not json");
    assert!(
        letters[0]["reason"].as_str().unwrap().contains("sensor_data"),
        "{letters:?}"
    );
    let counts = support::counters(&out.stderr);
    assert_eq!(support::counter(&counts, "sources.raw", "received"), 301);
    assert_eq!(
        support::counter(&counts, "sinks.clean_stream", "sent"),
        expected.len() as u64
    );
}

/// `n` entries `{"n": i}` added to `relay_in` (ids chosen by the server).
fn add_items(server: &Server, range: std::ops::Range<i64>) {
    let lines: Vec<String> = range
        .map(|n| {
            format!(
                "XADD relay_in * data {}",
                serde_json::to_string(&json!({ "n": n }).to_string()).unwrap()
            )
        })
        .collect();
    server.commands(&lines);
}

/// The `n`s relayed to `relay_out`, and how many entries it has.
fn relayed(server: &Server) -> (BTreeSet<i64>, usize) {
    let entries = server.stream("relay_out", "data");
    let ns = entries
        .iter()
        .map(|(_, data)| serde_json::from_str::<Value>(data).unwrap()["n"].as_i64().unwrap())
        .collect();
    (ns, entries.len())
}

/// Pending entries of the group `relay`.
fn pending(server: &Server) -> u64 {
    let summary = server.json(&["XPENDING", "relay_in", "relay"]);
    summary[0].as_u64().unwrap()
}

#[test]
fn a_stream_read_with_a_group_loses_nothing_across_sigkill_and_acknowledges_everything() {
    let server = Server::start(&support::workdir("redis-stream-kill").join("redis"));
    let relay = "tests/pipelines/redis_stream_relay.yaml";
    let out_len = |server: &Server| server.cli(&["XLEN", "relay_out"]).parse::<usize>().unwrap();
    let mut rng = support::Rng(42);
    let (mut added, mut mid_stream) = (0, 0);
    for round in 0..6 {
        // A backlog of 10,000 entries each round; killed somewhere in the middle of it.
        add_items(&server, added..added + 10_000);
        added += 10_000;
        let before = out_len(&server);
        let mut running = support::start(&mut pipeline(relay, &server));
        support::wait_until("a first entry relayed", || out_len(&server) > before);
        std::thread::sleep(std::time::Duration::from_millis(rng.below(150)));
        running.child.kill().unwrap();
        let _ = running.child.wait();
        let (relayed_now, unacknowledged) = (out_len(&server), pending(&server));
        mid_stream += u64::from(unacknowledged > 0 || relayed_now < added as usize);
        eprintln!("round {round}: killed with {relayed_now} relayed of {added}, {unacknowledged} pending");
    }
    assert!(mid_stream >= 3, "the kills came mid-stream: {mid_stream} of 6");
    let running = support::start(&mut pipeline(relay, &server));
    support::wait_until("every entry relayed", || relayed(&server).0.len() == added as usize);
    support::wait_until("every entry acknowledged", || pending(&server) == 0);
    running.signal("TERM");
    let out = running.wait();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (ns, count) = relayed(&server);
    assert_eq!(ns, (0..added).collect::<BTreeSet<_>>(), "none lost");
    assert!(count >= added as usize, "at least once");
}

#[test]
fn pending_entries_of_a_consumer_gone_for_good_are_claimed_by_another() {
    let server = Server::start(&support::workdir("redis-stream-claim").join("redis"));
    server.cli(&["XGROUP", "CREATE", "relay_in", "relay", "0", "MKSTREAM"]);
    add_items(&server, 0..50);
    // A consumer that read every entry and died before acknowledging any.
    let read = server.json(&[
        "XREADGROUP",
        "GROUP",
        "relay",
        "dead-one",
        "COUNT",
        "100",
        "STREAMS",
        "relay_in",
        ">",
    ]);
    assert_eq!(read["relay_in"].as_array().map(Vec::len), Some(50), "{read}");
    let mut cmd = pipeline("tests/pipelines/redis_stream_relay.yaml", &server);
    cmd.env("CONSUMER", "relay-2");
    let mut running = support::start(&mut cmd);
    // claim_idle is 2 s: claimed once they are that old.
    running.wait_for_log("were claimed");
    support::wait_until("the claimed entries relayed", || relayed(&server).0.len() == 50);
    support::wait_until("and acknowledged", || pending(&server) == 0);
    running.signal("TERM");
    assert!(running.wait().status.success());
}

#[test]
fn a_server_restart_while_flowing_is_survived_by_both_sources() {
    let server_dir = support::workdir("redis-restart").join("redis");
    let mut server = Server::start(&server_dir);
    add_items(&server, 0..500);
    let mut relay = support::start(&mut pipeline("tests/pipelines/redis_stream_relay.yaml", &server));
    let mut example = support::start(&mut pipeline("pipelines/redis_sensor_stream.yaml", &server));
    example.wait_for_log_any_time("redis subscribed");
    support::wait_until("the first entries relayed", || relayed(&server).0.len() == 500);
    server.stop();
    std::thread::sleep(std::time::Duration::from_millis(500));
    server.restart();
    add_items(&server, 500..1000);
    relay.wait_for_log("redis connection back");
    example.wait_for_log("subscribed again");
    support::wait_until("the rest relayed", || relayed(&server).0.len() == 1000);
    server.commands(&["PUBLISH sensor_data \"{\\\"device_id\\\":\\\"A\\\",\\\"temperature\\\":20}\"".to_string()]);
    support::wait_until("a reading after the restart", || {
        server.stream("sensor_clean", "data").len() == 1
    });
    for running in [relay, example] {
        running.signal("TERM");
        let out = running.wait();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

/// Runs `cmd` to its end with `input` on stdin.
fn run_with_stdin(cmd: &mut Command, input: &str) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_table_writes_each_users_latest_row_with_set_and_hset() {
    let server = Server::start(&support::workdir("redis-latest").join("redis"));
    let clicks = [
        ("ann", "/a"),
        ("bob", "/a"),
        ("ann", "/b"),
        ("ann", "/b"),
        ("bob", "/c"),
    ];
    let input: String = clicks
        .iter()
        .map(|(user, url)| format!("{}\n", json!({ "user": user, "url": url })))
        .collect();
    let out = run_with_stdin(&mut pipeline("tests/pipelines/redis_latest.yaml", &server), &input);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ann: Value = serde_json::from_str(&server.cli(&["GET", "clicks:ann"])).unwrap();
    assert_eq!(ann, json!({ "user": "ann", "clicks": 3, "pages": 2 }));
    let bob: Value = serde_json::from_str(&server.cli(&["HGET", "clicks", "bob"])).unwrap();
    assert_eq!(bob, json!({ "user": "bob", "clicks": 2, "pages": 2 }));
    let ttl: i64 = server.cli(&["TTL", "clicks:ann"]).parse().unwrap();
    assert!((3500..=3600).contains(&ttl), "expires in an hour: {ttl}");
    assert_eq!(server.cli(&["TTL", "clicks"]), "-1", "the hash has no ttl");
}

#[test]
fn a_key_of_another_type_is_a_dead_letter_with_the_servers_reason() {
    let server = Server::start(&support::workdir("redis-wrongtype").join("redis"));
    // `clicks` is a plain string: HSET into it is refused.
    server.cli(&["SET", "clicks", "not a hash"]);
    let input = "{\"user\":\"ann\",\"url\":\"/a\"}\n";
    let out = run_with_stdin(&mut pipeline("tests/pipelines/redis_latest.yaml", &server), input);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let letters = support::dead_letters(&out.stderr);
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["component"], "sinks.by_user");
    assert!(
        letters[0]["reason"].as_str().unwrap().contains("WRONGTYPE"),
        "{letters:?}"
    );
    let counts = support::counters(&out.stderr);
    assert_eq!(support::counter(&counts, "sinks.by_user", "dead_lettered"), 1);
    assert_eq!(support::counter(&counts, "sinks.latest", "sent"), 1);
    assert_eq!(server.cli(&["GET", "clicks"]), "not a hash");
}

#[test]
fn publishing_goes_to_each_records_channel_and_a_stream_is_trimmed_to_about_max_len() {
    let server = Server::start(&support::workdir("redis-publish").join("redis"));
    let mut only_a = server.subscribe("alerts.a");
    let input: String = (0..500)
        .map(|n| {
            format!(
                "{}\n",
                json!({ "device": if n % 2 == 0 { "a" } else { "b" }, "value": n })
            )
        })
        .collect();
    let out = run_with_stdin(&mut pipeline("tests/pipelines/redis_publish.yaml", &server), &input);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: Vec<i64> = only_a
        .wait_for(250)
        .iter()
        .map(|m| serde_json::from_str::<Value>(m).unwrap()["value"].as_i64().unwrap())
        .collect();
    assert_eq!(got, (0..500).step_by(2).collect::<Vec<i64>>(), "device a's, in order");
    // `MAXLEN ~ 50` trims whole nodes of the stream: about 50 are left, never fewer.
    let left: usize = server.cli(&["XLEN", "recent"]).parse().unwrap();
    assert!((50..=150).contains(&left), "{left} entries left");
    let newest = server.stream("recent", "data");
    let last: Value = serde_json::from_str(&newest.last().unwrap().1).unwrap();
    assert_eq!(last["value"], 499);
}

#[test]
fn a_disk_buffer_keeps_what_comes_while_the_server_is_away_and_delivers_it_in_order() {
    let dir = support::workdir("redis-buffered");
    let mut server = Server::start(&dir.join("redis"));
    let (state, items) = (dir.join("state"), dir.join("items.jsonl"));
    let append = |range| support::append_items(&items, range);
    append(0..0);
    let mut cmd = pipeline("tests/pipelines/redis_buffered.yaml", &server);
    cmd.env("RILL_STATE_DIR", &state).env("ITEMS", &items);
    let running = support::start(&mut cmd);
    let len = |server: &Server| server.cli(&["XLEN", "buffered_out"]).parse::<usize>().unwrap();
    append(0..1000);
    support::wait_until("the first records delivered", || len(&server) == 1000);
    // Away for about 4 s while 2,000 more records arrive.
    server.stop();
    for start in (1000..3000).step_by(500) {
        append(start..start + 500);
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    server.restart();
    append(3000..4000);
    support::wait_until("every record delivered", || len(&server) >= 4000);
    running.signal("TERM");
    let out = running.wait();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ns: Vec<i64> = server
        .stream("buffered_out", "data")
        .iter()
        .map(|(_, data)| serde_json::from_str::<Value>(data).unwrap()["n"].as_i64().unwrap())
        .collect();
    assert_eq!(ns, (0..4000).collect::<Vec<i64>>(), "every record once, in order");
    let buffer = state.join("buffers").join("sinks.out");
    assert!(buffer.join("delivered").exists(), "the buffer was used");
    let segments: Vec<_> = std::fs::read_dir(&buffer)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("segment-"))
                .collect()
        })
        .unwrap_or_default();
    assert!(segments.is_empty(), "delivered segments are deleted: {segments:?}");
}

#[test]
fn a_password_from_the_environment_gets_in_and_a_wrong_one_ends_the_run() {
    let server = Server::start_with_password(&support::workdir("redis-auth").join("redis"), "s3cret pass");
    let mut out = server.subscribe("out");
    let mut cmd = pipeline("tests/pipelines/redis_auth.yaml", &server);
    cmd.env("REDIS_PASSWORD", "s3cret pass");
    let mut running = support::start(&mut cmd);
    running.wait_for_log_any_time("redis subscribed");
    server.commands(&["PUBLISH in \"{\\\"n\\\":7}\"".to_string()]);
    assert_eq!(out.wait_for(1), ["{\"n\":7}"]);
    running.signal("TERM");
    assert!(running.wait().status.success());

    let mut cmd = pipeline("tests/pipelines/redis_auth.yaml", &server);
    cmd.env("REDIS_PASSWORD", "wrong");
    let output = cmd.output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("refused the credentials"), "{stderr}");
    assert!(!stderr.contains("wrong"), "the password is never logged: {stderr}");
}

#[test]
fn a_pattern_subscription_says_the_channel_and_the_pattern_it_matched() {
    let server = Server::start(&support::workdir("redis-patterns").join("redis"));
    let mut running = support::start(&mut pipeline("tests/pipelines/redis_patterns.yaml", &server));
    running.wait_for_log_any_time("redis subscribed");
    server.commands(&[
        "PUBLISH sensor.a \"{\\\"n\\\":1}\"".to_string(),
        "PUBLISH plain \"{\\\"n\\\":2}\"".to_string(),
        "PUBLISH other \"{\\\"n\\\":3}\"".to_string(),
    ]);
    support::wait_until("both messages relayed", || {
        server.stream("pattern_out", "data").len() >= 2
    });
    running.signal("TERM");
    let out = running.wait();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let records: Vec<Value> = server
        .stream("pattern_out", "data")
        .iter()
        .map(|(_, data)| serde_json::from_str(data).unwrap())
        .collect();
    assert_eq!(
        records,
        vec![
            json!({ "n": 1, "ch": "sensor.a", "pat": "sensor.*" }),
            json!({ "n": 2, "ch": "plain", "pat": null }),
        ]
    );
}

#[test]
fn sigterm_while_the_server_is_gone_stops_and_says_what_was_not_delivered() {
    let dir = support::workdir("redis-sigterm-gone");
    let mut server = Server::start(&dir.join("redis"));
    let items = dir.join("items.jsonl");
    let append = |range| support::append_items(&items, range);
    append(0..100);
    let mut cmd = pipeline("tests/pipelines/redis_follow.yaml", &server);
    cmd.env("ITEMS", &items);
    let mut running = support::start(&mut cmd);
    let len = |server: &Server| server.cli(&["XLEN", "follow_out"]).parse::<usize>().unwrap();
    support::wait_until("the first records written", || len(&server) == 100);
    // Gone for good: the next records wait in the writer, sent again and again.
    server.stop();
    append(100..150);
    running.wait_for_log("redis connection lost");
    running.signal("TERM");
    let output = running.wait();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("still undelivered at shutdown"), "{stderr}");
    // Every record is accounted for: written before the server went, or given up on.
    let c = support::counters(&output.stderr);
    let (received, sent) = (
        support::counter(&c, "sinks.out", "received"),
        support::counter(&c, "sinks.out", "sent"),
    );
    let lost = support::counter(&c, "sinks.out", "dropped") + support::counter(&c, "sinks.out", "dead_lettered");
    assert_eq!((received, sent, lost), (150, 100, 50), "{stderr}");
}

/// The `n`s written to a lookup test's output file, with the rest of each record.
fn by_n(path: &std::path::Path) -> std::collections::BTreeMap<i64, Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    support::json_lines(text.as_bytes())
        .into_iter()
        .map(|r| (r["n"].as_i64().unwrap(), r))
        .collect()
}

#[test]
fn a_lookup_reads_rows_from_redis_keeps_them_its_cache_time_and_waits_out_a_restart() {
    let dir = support::workdir("redis-lookup");
    let mut server = Server::start(&dir.join("redis"));
    server.cli(&["SET", "device:a", r#"{"site":"north","limit":10}"#]);
    server.cli(&["SET", "device:b", r#"{"site":"south","limit":5.5}"#]);
    server.cli(&["SET", "device:bad", "not json"]);
    server.cli(&["HSET", "device:h", "site", "west"]);
    server.cli(&["SET", "parity:0", r#"{"name":"even"}"#]);
    let parity = dir.join("parity.jsonl");
    let (readings, fresh, cached) = (
        dir.join("readings.jsonl"),
        dir.join("fresh.jsonl"),
        dir.join("cached.jsonl"),
    );
    let append = |n: i64, device: &str| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&readings)
            .unwrap();
        writeln!(f, "{}", json!({ "n": n, "device_id": device })).unwrap();
    };
    for (n, device) in ["a", "b", "none", "bad", "h"].into_iter().enumerate() {
        append(n as i64, device);
    }
    let mut cmd = pipeline("tests/pipelines/redis_lookup.yaml", &server);
    cmd.env("READINGS", &readings)
        .env("FRESH_OUT", &fresh)
        .env("CACHED_OUT", &cached)
        .env("PARITY_OUT", &parity);
    let mut running = support::start(&mut cmd);
    support::wait_until("the first readings enriched", || {
        by_n(&fresh).len() == 3 && by_n(&cached).len() == 2
    });
    let row = |site: &str, limit: f64| json!({ "site": site, "limit": limit });
    let (f, c) = (by_n(&fresh), by_n(&cached));
    assert_eq!(f[&0], json!({ "n": 0, "site": "north", "limit": 10.0 }));
    assert_eq!(f[&1], json!({ "n": 1, "site": "south", "limit": 5.5 }));
    assert_eq!(
        f[&2],
        json!({ "n": 2, "site": null, "limit": null }),
        "a missing row: nulls"
    );
    assert_eq!(c[&0], json!({ "n": 0, "site": "north" }));
    assert_eq!(c[&1], json!({ "n": 1, "site": "south" }));
    // A changed row, and a row added: read at once without a cache, not within the
    // cached hour (a miss is cached as a row is).
    server.cli(&["SET", "device:a", &row("east", 10.0).to_string()]);
    server.cli(&["SET", "device:none", &row("added", 1.0).to_string()]);
    append(5, "a");
    append(8, "none");
    support::wait_until("the changed row", || {
        by_n(&fresh).contains_key(&8) && by_n(&cached).contains_key(&5)
    });
    assert_eq!(by_n(&fresh)[&5]["site"], "east");
    assert_eq!(by_n(&fresh)[&8]["site"], "added");
    assert_eq!(by_n(&cached)[&5]["site"], "north", "still the cached row");
    // The server goes away: the lookup waits for it and loses nothing.
    server.stop();
    append(6, "b");
    running.wait_for_log("redis connection lost");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!by_n(&fresh).contains_key(&6), "nothing comes while the server is away");
    server.restart();
    running.wait_for_log("redis connection back");
    support::wait_until("the reading after the restart", || {
        by_n(&fresh).contains_key(&6) && by_n(&cached).contains_key(&6)
    });
    assert_eq!(by_n(&fresh)[&6]["site"], "south");
    // Away again, and a stop while the lookup waits: the reading is a dead letter.
    server.stop();
    append(7, "b");
    running.wait_for_log("redis connection lost");
    running.signal("TERM");
    let out = running.wait();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let letters = support::dead_letters(&out.stderr);
    let reasons: Vec<(String, String)> = letters
        .iter()
        .map(|l| {
            (
                l["component"].as_str().unwrap().to_string(),
                l["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let has = |component: &str, text: &str| reasons.iter().any(|(c, r)| c == component && r.contains(text));
    assert!(has("joins.cached", "Redis has no row of this key"), "{reasons:?}");
    for join in ["joins.fresh", "joins.cached"] {
        assert!(
            has(join, "the Redis key `device:bad` holds no row of schema `device`"),
            "{reasons:?}"
        );
        assert!(has(join, "the Redis key `device:h` is not a string"), "{reasons:?}");
    }
    assert!(
        has("joins.fresh", "stopped while waiting for the Redis server"),
        "{reasons:?}"
    );
    let counters = support::counters(&out.stderr);
    let count = |component: &str, key: &str| support::counter(&counters, component, key);
    assert_eq!(count("sources.readings", "received"), 9);
    assert_eq!(
        (count("joins.fresh", "sent"), count("joins.fresh", "dead_lettered")),
        (6, 3),
        "0, 1, 2, 5, 8 and 6 enriched; bad, h and the one at the stop dead letters"
    );
    assert_eq!(
        count("joins.cached", "dead_lettered"),
        4,
        "none (twice: its miss cached), bad and h"
    );
    assert!(!by_n(&cached).contains_key(&8));
    // An integer key, written in decimal: the even readings found `parity:0`; the odd
    // ones, with no `parity:1`, were dropped.
    let evens: Vec<i64> = by_n(&parity).into_keys().collect();
    assert!(by_n(&parity).values().all(|r| r["parity"] == "even"));
    assert_eq!(&evens[..4], &[0, 2, 4, 6], "{evens:?}");
    assert_eq!(
        count("joins.parity", "filtered"),
        count("joins.parity", "received") - evens.len() as u64
    );
    assert!(stderr.contains("redis lookup cache"), "{stderr}");
}

#[test]
fn a_lookup_waits_for_a_server_away_at_its_start_and_refused_credentials_stop_it_there() {
    let dir = support::workdir("redis-lookup-start");
    let mut server = Server::start_with_password(&dir.join("redis"), "s3cret");
    server.cli(&["SET", "device:a", r#"{"site":"north","limit":10}"#]);
    server.stop();
    let (readings, fresh) = (dir.join("readings.jsonl"), dir.join("fresh.jsonl"));
    std::fs::write(&readings, "{\"n\":0,\"device_id\":\"a\"}\n").unwrap();
    let with_password = |server: &Server, password: &str| {
        let mut cmd = pipeline("tests/pipelines/redis_lookup.yaml", server);
        let url = format!("redis://:{password}@127.0.0.1:{}", server.port());
        cmd.env("REDIS_URL", url)
            .env("READINGS", &readings)
            .env("FRESH_OUT", &fresh)
            .env("CACHED_OUT", dir.join("cached.jsonl"))
            .env("PARITY_OUT", dir.join("parity.jsonl"));
        cmd
    };
    let mut running = support::start(&mut with_password(&server, "s3cret"));
    running.wait_for_log_any_time("redis connection lost");
    assert!(by_n(&fresh).is_empty(), "nothing before the server is there");
    server.restart();
    support::wait_until("the reading enriched", || by_n(&fresh).contains_key(&0));
    assert_eq!(by_n(&fresh)[&0]["site"], "north");
    running.signal("TERM");
    let out = running.wait();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(support::dead_letters(&out.stderr).is_empty());

    let output = with_password(&server, "wrong").output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("refused the credentials"), "{stderr}");
    assert!(!stderr.contains("wrong"), "the password is never logged: {stderr}");
}

#[test]
fn a_lookups_output_on_a_full_disk_fails_the_run_and_says_every_row_lost() {
    let dir = support::workdir("redis-lookup-full");
    let server = Server::start(&dir.join("redis"));
    server.cli(&["SET", "device:a", r#"{"site":"north","limit":10}"#]);
    let readings = dir.join("readings.jsonl");
    let lines: String = (0..3)
        .map(|n| format!("{}\n", json!({ "n": n, "device_id": "a" })))
        .collect();
    std::fs::write(&readings, lines).unwrap();
    let mut cmd = pipeline("tests/pipelines/redis_lookup.yaml", &server);
    cmd.env("READINGS", &readings)
        .env("FRESH_OUT", "/dev/full")
        .env("CACHED_OUT", dir.join("cached.jsonl"))
        .env("PARITY_OUT", dir.join("parity.jsonl"));
    let out = support::start(&mut cmd).wait();
    let counters = support::failed_on_a_full_disk(&out, "sinks.fresh_out", 3);
    assert_eq!(
        support::counter(&counters, "joins.fresh", "sent"),
        3,
        "looked up before the write failed"
    );
}

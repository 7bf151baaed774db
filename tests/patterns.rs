//! Patterns end to end: build the example pipelines `pipelines/login_purchase.yaml` and
//! `pipelines/payment_unconfirmed.yaml` with the `rill` CLI, run them on generated
//! events (out of order within the watermark's bound, and some late), and compare
//! every row with a brute-force search per key written here from the documented rules.
//!
//! The searches share no code with the runtime's matcher: they look at a key's whole
//! list of events at once (sorted by time, then arrival) instead of stepping through it.
//! Watermarks follow the sources' rule: after each record (in input order)
//! `W = max(ts seen) - max_out_of_order`; a record with `ts < W` (the `W` before it) is
//! late, and a dead letter.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};
use support::{build, dead_letters, json_lines, Rng};

const T0: i64 = 1_700_000_000_000;
/// The examples' `max_out_of_order`.
const BOUND: i64 = 5_000;

/// An event as generated: `(key, event, amount, ts)`.
struct Event {
    key: String,
    event: &'static str,
    amount: Option<f64>,
    ts: i64,
}

/// `n` events over `keys` keys, a clock advancing ~1 s per event, each `ts` up to 4 s
/// behind it, and one in a hundred 6 to 30 s behind (most of those late).
fn generate(seed: u64, n: usize, keys: u64, kinds: &[&'static str]) -> Vec<Event> {
    let mut rng = Rng(seed);
    let mut clock = T0;
    (0..n)
        .map(|_| {
            clock += 1 + rng.below(2_000) as i64;
            let behind = if rng.below(100) == 0 {
                6_000 + rng.below(24_000) as i64
            } else {
                rng.below(4_000) as i64
            };
            let event = kinds[rng.below(kinds.len() as u64) as usize];
            let amount = match rng.below(10) {
                0 => None,
                1 => Some(0.0),
                _ => Some(rng.below(10_000) as f64 / 100.0),
            };
            Event {
                key: format!("k{}", rng.below(keys)),
                event,
                amount,
                ts: clock - behind,
            }
        })
        .collect()
}

/// A key's events, each with its arrival index.
type KeyEvents<'a> = Vec<(usize, &'a Event)>;

/// The events not late, grouped by key, each key's list in processing order
/// `(ts, arrival)`; and the number of late ones.
fn on_time(events: &[Event]) -> (BTreeMap<&str, KeyEvents<'_>>, usize) {
    let mut max_ts = i64::MIN;
    let mut late = 0;
    let mut by_key: BTreeMap<&str, KeyEvents<'_>> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        if e.ts < max_ts.saturating_sub(BOUND) {
            late += 1;
        } else {
            by_key.entry(&e.key).or_default().push((i, e));
        }
        max_ts = max_ts.max(e.ts);
    }
    for list in by_key.values_mut() {
        list.sort_by_key(|(i, e)| (e.ts, *i));
    }
    (by_key, late)
}

fn run(bin: &Path, input: &Path, output_var: &str, output: &Path) -> std::process::Output {
    let out = Command::new(bin)
        .env("EVENTS_PATH", input)
        .env(output_var, output)
        .output()
        .expect("the pipeline runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn write(path: &Path, events: &[Event], key_field: &str) {
    let text: String = events
        .iter()
        .map(|e| {
            let mut v = json!({ key_field: e.key, "event": e.event, "ts": e.ts });
            if let Some(a) = e.amount {
                v["amount"] = json!(a);
            }
            format!("{v}\n")
        })
        .collect();
    fs::write(path, text).unwrap();
}

/// The rule of `login_then_purchase`, searched per key: a login's match is the first
/// purchase after it (a relaxed step takes the first event that satisfies it), if that
/// purchase is less than 10 minutes after the login; of a key's logins not yet used, the
/// match that completes first wins (the oldest login among those completing at the same
/// purchase), and the next search starts after its purchase.
fn logins_then_purchases(events: &[Event]) -> (Vec<Value>, usize) {
    const WITHIN: i64 = 600_000;
    let is_purchase = |e: &Event| e.event == "purchase" && e.amount.unwrap_or(0.0) > 0.0;
    let (by_key, late) = on_time(events);
    // (completing event's ts, arrival), row.
    let mut matches: Vec<((i64, usize), Value)> = Vec::new();
    for list in by_key.values() {
        let mut from = 0;
        loop {
            let mut best: Option<(usize, usize)> = None; // (purchase, login) positions
            for i in from..list.len() {
                if list[i].1.event != "login" {
                    continue;
                }
                let Some(j) = (i + 1..list.len()).find(|&j| is_purchase(list[j].1)) else {
                    continue;
                };
                if list[j].1.ts - list[i].1.ts >= WITHIN {
                    continue;
                }
                if best.is_none_or(|(bj, _)| j < bj) {
                    best = Some((j, i));
                }
            }
            let Some((j, i)) = best else { break };
            let (login, purchase) = (list[i].1, list[j].1);
            matches.push((
                (purchase.ts, list[j].0),
                json!({
                    "user_id": login.key,
                    "login_at": login.ts,
                    "purchased_at": purchase.ts,
                    "amount": purchase.amount.unwrap_or(0.0),
                }),
            ));
            from = j + 1;
        }
    }
    matches.sort_by_key(|(at, _)| *at);
    (matches.into_iter().map(|(_, row)| row).collect(), late)
}

/// The rule of `unconfirmed`, searched per key: every payment is a match that waits 5
/// minutes; a confirm after it (in processing order) and strictly before its deadline
/// ends it. What is left comes out by deadline, then in the order the payments were
/// processed (all keys together).
fn unconfirmed_payments(events: &[Event]) -> (Vec<Value>, usize) {
    const WITHIN: i64 = 300_000;
    let (by_key, late) = on_time(events);
    // The order in which the operator processes the records: `(ts, arrival)` over all keys.
    let mut order: Vec<(i64, usize)> = by_key.values().flatten().map(|(i, e)| (e.ts, *i)).collect();
    order.sort();
    let rank: BTreeMap<usize, usize> = order.iter().enumerate().map(|(r, (_, i))| (*i, r)).collect();
    let mut alerts: Vec<((i64, usize), Value)> = Vec::new();
    for list in by_key.values() {
        for (p, (arrival, payment)) in list.iter().enumerate() {
            if payment.event != "payment" {
                continue;
            }
            let deadline = payment.ts + WITHIN;
            let confirmed = list[p + 1..]
                .iter()
                .any(|(_, e)| e.event == "confirm" && e.ts < deadline);
            if !confirmed {
                alerts.push((
                    (deadline, rank[arrival]),
                    json!({ "account": payment.key, "paid_at": payment.ts, "amount": payment.amount.unwrap() }),
                ));
            }
        }
    }
    alerts.sort_by_key(|(at, _)| *at);
    (alerts.into_iter().map(|(_, row)| row).collect(), late)
}

fn assert_same_rows(got: &[Value], expected: &[Value]) {
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert_eq!(g, e, "row {i} differs");
    }
    assert_eq!(got.len(), expected.len(), "row count differs");
}

#[test]
fn login_then_purchase_finds_what_a_search_per_key_finds() {
    let dir = support::workdir("patterns-login-purchase");
    let events = generate(
        7,
        6_000,
        40,
        &["login", "view", "purchase", "view", "login", "purchase", "logout"],
    );
    let input = dir.join("events.jsonl");
    write(&input, &events, "user_id");
    let output = dir.join("matches.jsonl");
    let out = run(&build("pipelines/login_purchase.yaml"), &input, "MATCHES_PATH", &output);
    let (expected, late) = logins_then_purchases(&events);
    assert!(
        expected.len() > 200 && late > 10,
        "a weak input: {} matches, {late} late",
        expected.len()
    );
    assert_same_rows(&json_lines(&fs::read(&output).unwrap()), &expected);
    let c = support::counters(&out.stderr);
    let component = "patterns.login_then_purchase";
    assert_eq!(support::counter(&c, component, "received"), events.len() as u64);
    assert_eq!(support::counter(&c, component, "dead_lettered"), late as u64);
    assert_eq!(support::counter(&c, component, "emitted"), expected.len() as u64);
    let dead = dead_letters(&out.stderr);
    assert_eq!(dead.len(), late);
    assert!(
        dead.iter().all(|d| d["reason"]
            .as_str()
            .unwrap()
            .contains("every match it could be part of was decided")),
        "{dead:?}"
    );
}

#[test]
fn a_payment_without_a_confirmation_within_5_minutes_is_an_alert_at_its_deadline() {
    let dir = support::workdir("patterns-unconfirmed");
    let mut events = generate(11, 4_000, 200, &["payment", "view", "view", "confirm"]);
    for e in &mut events {
        e.amount.get_or_insert(1.0);
    }
    let input = dir.join("payments.jsonl");
    write(&input, &events, "account");
    let output = dir.join("alerts.jsonl");
    let out = run(
        &build("pipelines/payment_unconfirmed.yaml"),
        &input,
        "ALERTS_PATH",
        &output,
    );
    let (expected, late) = unconfirmed_payments(&events);
    let payments = events.iter().filter(|e| e.event == "payment").count();
    assert!(
        expected.len() > 100 && expected.len() < payments,
        "a weak input: {} alerts of {payments} payments",
        expected.len()
    );
    assert_same_rows(&json_lines(&fs::read(&output).unwrap()), &expected);
    let c = support::counters(&out.stderr);
    assert_eq!(
        support::counter(&c, "patterns.unconfirmed", "dead_lettered"),
        late as u64
    );
}

#[test]
fn each_way_a_step_matches_does_what_the_docs_say() {
    let dir = support::workdir("patterns-shapes");
    let events = [
        // strict (`next`): a then b right after it; on s2 an event comes between.
        ("strict", "s1", "a", 1),
        ("strict", "s1", "b", 2),
        ("strict", "s2", "a", 3),
        ("strict", "s2", "x", 4),
        ("strict", "s2", "b", 5),
        // counted (`times: 2`): the b's may have other events between them.
        ("counted", "c1", "a", 10),
        ("counted", "c1", "b", 11),
        ("counted", "c1", "x", 12),
        ("counted", "c1", "c", 13),
        ("counted", "c1", "b", 14),
        ("counted", "c1", "c", 15),
        // some (`one_or_more: 3`): at most 3 b's, the last of them selected.
        ("some", "m1", "a", 20),
        ("some", "m1", "b", 21),
        ("some", "m1", "b", 22),
        ("some", "m1", "b", 23),
        ("some", "m1", "b", 24),
        ("some", "m1", "c", 25),
        // maybe (`optional`): with or without the b.
        ("maybe", "o1", "a", 30),
        ("maybe", "o1", "c", 31),
        ("maybe", "o2", "a", 32),
        ("maybe", "o2", "b", 33),
        ("maybe", "o2", "c", 34),
        // bounded (`max_partial_matches: 1`): the second a pushes the first out.
        ("bounded", "p1", "a", 40),
        ("bounded", "p1", "a", 41),
        ("bounded", "p1", "b", 42),
        // failing: `q` is 10, then 10 / 0 (a dead letter of the match), then 5 (100 / 0
        // in the transform after it: a dead letter of the match's output record).
        ("failing", "f1", "a", 50),
        ("failing", "f1", "c", 53),
        ("failing", "f2", "a", 54),
        ("failing", "f2", "c", 56),
        ("failing", "f3", "a", 57),
        ("failing", "f3", "b", 58),
        ("failing", "f3", "c", 61),
        // Late for every pattern: behind the watermark (61).
        ("strict", "s3", "a", 7),
    ];
    let text: String = events
        .iter()
        .map(|(p, k, e, ts)| format!("{}\n", json!({ "p": p, "k": k, "e": e, "ts": ts })))
        .collect();
    let input = dir.join("events.jsonl");
    fs::write(&input, text).unwrap();
    let out_dir = dir.join("out");
    fs::create_dir_all(&out_dir).unwrap();
    let out = Command::new(build("tests/pipelines/pattern_shapes.yaml"))
        .env("EVENTS_PATH", &input)
        .env("OUT", &out_dir)
        .output()
        .expect("the pipeline runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = |name: &str| json_lines(&fs::read(out_dir.join(format!("{name}.jsonl"))).unwrap());
    assert_eq!(rows("strict"), [json!({ "k": "s1", "a": 1, "b": 2 })]);
    assert_eq!(rows("counted"), [json!({ "k": "c1", "a": 10, "b": 14, "c": 15 })]);
    assert_eq!(rows("some"), [json!({ "k": "m1", "a": 20, "b": 23, "c": 25 })]);
    assert_eq!(
        rows("maybe"),
        [
            json!({ "k": "o1", "a": 30, "b": null, "skipped": true, "c": 31 }),
            json!({ "k": "o2", "a": 32, "b": 33, "skipped": false, "c": 34 })
        ]
    );
    assert_eq!(rows("bounded"), [json!({ "k": "p1", "a": 41, "b": 42 })]);
    assert_eq!(rows("late"), [json!({ "p": "strict", "k": "s3", "e": "a", "ts": 7 })]);
    assert_eq!(rows("after_failing"), [json!({ "k": "f1", "r": 20 })]);
    // A match `select` cannot make: the dead letter holds the match, its key back in each
    // step's record (the pattern holds it once, as the key). One that fails further down:
    // the match's output record.
    let dead: Vec<(String, String, Value)> = rows("dead")
        .iter()
        .map(|d| {
            let record = serde_json::from_str(d["record"].as_str().unwrap_or("")).unwrap_or_default();
            (d["component"].to_string(), d["reason"].to_string(), record)
        })
        .collect();
    let by_zero = || "\"division by zero\"".to_string();
    let whole = json!({ "a": { "k": "f2", "ts": 54 }, "b": null, "c": { "k": "f2", "ts": 56 } });
    assert_eq!(
        dead,
        [
            ("\"patterns.failing\"".to_string(), by_zero(), whole),
            (
                "\"transforms.after_failing\"".to_string(),
                by_zero(),
                json!({ "k": "f3", "q": 5 })
            )
        ]
    );
    let c = support::counters(&out.stderr);
    assert_eq!(support::counter(&c, "patterns.bounded", "evicted"), 1);
    assert_eq!(support::counter(&c, "patterns.failing", "results_failed"), 1);
    for dropping in ["counted", "some", "maybe", "bounded", "failing"] {
        assert_eq!(
            support::counter(&c, &format!("patterns.{dropping}"), "dropped"),
            1,
            "{dropping}"
        );
    }
    assert_eq!(
        support::counter(&c, "patterns.strict", "sent"),
        1,
        "the late record, to `strict.late`"
    );
}

#[test]
fn matches_that_reach_a_full_disk_are_counted_as_lost_and_fail_the_run() {
    let dir = support::workdir("patterns-full-disk");
    let events = generate(3, 2_000, 20, &["login", "view", "purchase"]);
    let input = dir.join("events.jsonl");
    write(&input, &events, "user_id");
    let out = Command::new(build("pipelines/login_purchase.yaml"))
        .env("EVENTS_PATH", &input)
        .env("MATCHES_PATH", "/dev/full")
        .output()
        .unwrap();
    let (expected, _) = logins_then_purchases(&events);
    let c = support::failed_on_a_full_disk(&out, "sinks.matches", expected.len() as u64);
    assert_eq!(
        support::counter(&c, "patterns.login_then_purchase", "emitted"),
        expected.len() as u64
    );
}

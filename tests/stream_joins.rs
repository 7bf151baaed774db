//! Joins of two streams end to end, against nested-loop joins written here from the
//! documented rules (over the whole input at once, sharing no code with the runtime):
//!
//! - the example `pipelines/orders_shipments.yaml` (an interval left join of two file
//!   sources) on generated orders and shipments, each file in time order within the
//!   watermark's bound, so nothing is late;
//! - `tests/pipelines/join_streams.yaml`: one source split into the two sides of an
//!   interval full join (its results counted by a window downstream, and failing in a
//!   transform after it for some: dead letters of its output records), a tumbling left
//!   join (some of whose results fail, and are dropped), a hopping inner join and an
//!   interval right join (some of whose results fail, and are dead letters), on
//!   generated events out of order and some late. Its watermark follows the one source: after
//!   each record (in input order) `W = max(ts seen) - 5s`, and a record is judged
//!   against the `W` before it: late for the interval join when `ts < W`, and in a
//!   window join part of its windows whose end is after `W`.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};
use support::{build, json_lines, Rng};

const T0: i64 = 1_700_000_000_000;

fn read(path: &Path) -> Vec<Value> {
    json_lines(&fs::read(path).unwrap_or_default())
}

/// Rows as sorted JSON text: the joins' output order depends on arrival, the model's
/// does not, and a row may rightly come twice.
fn sorted(rows: impl IntoIterator<Item = Value>) -> Vec<String> {
    let mut rows: Vec<String> = rows.into_iter().map(|v| v.to_string()).collect();
    rows.sort();
    rows
}

type Order = (String, i64, f64);
type Shipment = (String, i64, String);

/// `n` orders every ~20 s and shipments of some of them, up to 70 minutes after their
/// order (so some miss the hour, some come before the order); each file in time order
/// but for up to 20 s of jitter (the example's bound is 30 s), written to `dir`.
fn orders_and_shipments(dir: &Path, seed: u64, n: usize) -> (Vec<Order>, Vec<Shipment>) {
    let mut rng = Rng(seed);
    let mut clock = T0;
    let orders: Vec<Order> = (0..n)
        .map(|i| {
            clock += 1 + rng.below(40_000) as i64;
            let id = format!("o{}", i % (n * 5 / 6).max(1));
            (id, clock - rng.below(20_000) as i64, rng.below(10_000) as f64 / 100.0)
        })
        .collect();
    let mut shipments: Vec<Shipment> = Vec::new();
    for (id, ts, _) in &orders {
        for _ in 0..rng.below(3) {
            let at = ts - 60_000 + rng.below(71 * 60_000) as i64;
            shipments.push((id.clone(), at, format!("c{}", rng.below(4))));
        }
    }
    shipments.sort_by_key(|s| s.1);
    for s in &mut shipments {
        s.1 -= rng.below(20_000) as i64;
    }
    let orders_text: String = orders
        .iter()
        .map(|(id, ts, amount)| format!("{}\n", json!({ "order_id": id, "ts": ts, "amount": amount })))
        .collect();
    let shipments_text: String = shipments
        .iter()
        .map(|(id, ts, carrier)| format!("{}\n", json!({ "order_id": id, "ts": ts, "carrier": carrier })))
        .collect();
    fs::write(dir.join("orders.jsonl"), orders_text).unwrap();
    fs::write(dir.join("shipments.jsonl"), shipments_text).unwrap();
    (orders, shipments)
}

/// The nested loop: every order with every shipment of its id from 0 to 1 h after it
/// (both ends included), and an order with none alone.
fn shipped(orders: &[Order], shipments: &[Shipment]) -> Vec<Value> {
    let mut expected = Vec::new();
    for (id, ts, amount) in orders {
        let row = |carrier: Value, at: Value| json!({ "order_id": id, "ordered_at": ts, "amount": amount, "carrier": carrier, "shipped_at": at });
        let mut found = false;
        for (sid, at, carrier) in shipments {
            if sid == id && (*ts..=ts + 3_600_000).contains(at) {
                expected.push(row(json!(carrier), json!(at)));
                found = true;
            }
        }
        if !found {
            expected.push(row(Value::Null, Value::Null));
        }
    }
    expected
}

fn run_orders_shipments(dir: &Path, shipped_path: &Path) -> std::process::Output {
    Command::new(build("pipelines/orders_shipments.yaml"))
        .env("ORDERS_PATH", dir.join("orders.jsonl"))
        .env("SHIPMENTS_PATH", dir.join("shipments.jsonl"))
        .env("SHIPPED_PATH", shipped_path)
        .env("LATE_PATH", dir.join("late.jsonl"))
        .output()
        .unwrap()
}

#[test]
fn orders_meet_their_shipments_within_the_hour_or_come_alone() {
    let dir = support::workdir("stream-joins-orders");
    let (orders, shipments) = orders_and_shipments(&dir, 11, 3_000);
    let out = run_orders_shipments(&dir, &dir.join("shipped.jsonl"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let expected = shipped(&orders, &shipments);
    let got = read(&dir.join("shipped.jsonl"));
    assert_eq!(sorted(got), sorted(expected.clone()));
    let alone = expected.iter().filter(|e| e["carrier"].is_null()).count();
    assert!(
        alone > 100 && alone < expected.len() - 100,
        "both kinds of rows: {alone}"
    );
    assert!(read(&dir.join("late.jsonl")).is_empty());
    let c = support::counters(&out.stderr);
    assert_eq!(
        support::counter(&c, "joins.shipped", "aggregated"),
        (orders.len() + shipments.len()) as u64
    );
    assert_eq!(support::counter(&c, "joins.shipped", "emitted"), expected.len() as u64);
}

#[test]
fn joined_records_written_to_a_full_disk_fail_the_run_and_are_counted_lost() {
    let dir = support::workdir("stream-joins-full");
    let (orders, shipments) = orders_and_shipments(&dir, 12, 500);
    let out = run_orders_shipments(&dir, Path::new("/dev/full"));
    let expected = shipped(&orders, &shipments).len() as u64;
    let c = support::failed_on_a_full_disk(&out, "sinks.out", expected);
    assert_eq!(support::counter(&c, "joins.shipped", "emitted"), expected);
}

/// An event as generated: its id, side (`a` left, `b` right), key and time.
struct Event {
    id: i64,
    side: &'static str,
    key: String,
    ts: i64,
}

/// `n` events over `keys` keys, a clock advancing up to 2 s per event, each `ts` up to
/// 4 s behind it, and one in fifty 6 to 40 s behind (most of those late). Times are
/// whole half seconds, so many fall exactly on a bound.
fn generate(seed: u64, n: i64, keys: u64) -> Vec<Event> {
    let mut rng = Rng(seed);
    let mut clock = T0;
    (0..n)
        .map(|id| {
            clock += 500 * rng.below(5) as i64;
            let behind = if rng.below(50) == 0 {
                6_000 + 500 * rng.below(68)
            } else {
                500 * rng.below(8)
            };
            Event {
                id,
                side: if rng.below(2) == 0 { "a" } else { "b" },
                key: format!("k{}", rng.below(keys)),
                ts: clock - behind as i64,
            }
        })
        .collect()
}

/// The watermark before each event: `max(ts before) - 5s`, none before the first.
fn watermarks(events: &[Event]) -> Vec<Option<i64>> {
    let mut max: Option<i64> = None;
    events
        .iter()
        .map(|e| {
            let before = max.map(|m| m - 5_000);
            max = Some(max.map_or(e.ts, |m| m.max(e.ts)));
            before
        })
        .collect()
}

/// The windows (starts) of `size` every `slide` shifted by `offset` that hold `t`.
fn windows_of(t: i64, size: i64, slide: i64, offset: i64) -> Vec<i64> {
    let last = offset + (t - offset).div_euclid(slide) * slide;
    (0..).map(|k| last - k * slide).take_while(|s| s + size > t).collect()
}

/// For a window join: (key, window start) → the left and right events in it, each
/// record only in its windows that had not ended (`end > W`) when it came.
type Buckets<'a> = BTreeMap<(&'a str, i64), (Vec<&'a Event>, Vec<&'a Event>)>;

fn window_buckets<'a>(
    events: &'a [Event],
    wms: &[Option<i64>],
    size: i64,
    slide: i64,
    offset: i64,
) -> (Buckets<'a>, Vec<&'a Event>) {
    let mut buckets = Buckets::new();
    let mut late = Vec::new();
    for (e, wm) in events.iter().zip(wms) {
        let open: Vec<i64> = windows_of(e.ts, size, slide, offset)
            .into_iter()
            .filter(|s| wm.is_none_or(|w| s + size > w))
            .collect();
        if open.is_empty() {
            late.push(e);
        }
        for start in open {
            let bucket = buckets.entry((e.key.as_str(), start)).or_default();
            if e.side == "a" {
                bucket.0.push(e);
            } else {
                bucket.1.push(e);
            }
        }
    }
    (buckets, late)
}

#[test]
fn interval_and_window_joins_give_what_nested_loops_give() {
    let dir = support::workdir("stream-joins-model");
    let events = generate(23, 6_000, 40);
    let text: String = events
        .iter()
        .map(|e| format!("{}\n", json!({ "id": e.id, "side": e.side, "key": e.key, "ts": e.ts })))
        .collect();
    fs::write(dir.join("events.jsonl"), text).unwrap();
    let out = Command::new(build("tests/pipelines/join_streams.yaml"))
        .env("EVENTS_PATH", dir.join("events.jsonl"))
        .env("OUT", &dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let wms = watermarks(&events);
    let c = support::counters(&out.stderr);

    // `near`: interval -3 s..=10 s, full outer; late records to `near.late`.
    let on_time: Vec<&Event> = events
        .iter()
        .zip(&wms)
        .filter(|(e, wm)| wm.is_none_or(|w| e.ts >= w))
        .map(|(e, _)| e)
        .collect();
    let mut expected = Vec::new();
    let mut paired = std::collections::HashSet::new();
    for l in on_time.iter().filter(|e| e.side == "a") {
        for r in on_time.iter().filter(|e| e.side == "b" && e.key == l.key) {
            if (l.ts - 3_000..=l.ts + 10_000).contains(&r.ts) {
                expected.push(json!({ "a": l.id, "b": r.id }));
                paired.extend([l.id, r.id]);
            }
        }
    }
    for e in on_time.iter().filter(|e| !paired.contains(&e.id)) {
        expected.push(match e.side {
            "a" => json!({ "a": e.id, "b": -1 }),
            _ => json!({ "a": -1, "b": e.id }),
        });
    }
    assert_eq!(sorted(read(&dir.join("near.jsonl"))), sorted(expected.clone()));
    // Downstream, no result is late: the window counts them all.
    let counted: i64 = read(&dir.join("near_counts.jsonl"))
        .iter()
        .map(|w| w["n"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(counted, expected.len() as i64);
    // `near_ratio` after it: a pair whose `b` is a multiple of 5 fails there, and its dead
    // letter holds the join's output record (not the pair it was made of).
    let both: Vec<&Value> = expected.iter().filter(|e| e["a"] != -1 && e["b"] != -1).collect();
    let (failing, ratios): (Vec<&Value>, Vec<&Value>) =
        both.into_iter().partition(|e| e["b"].as_i64().unwrap_or(0) % 5 == 0);
    let ratios = ratios
        .iter()
        .map(|e| json!({ "a": e["a"], "b": e["b"], "r": 100 / (e["b"].as_i64().unwrap_or(1) % 5) }));
    assert_eq!(sorted(read(&dir.join("near_ratio.jsonl"))), sorted(ratios));
    let all_dead = read(&dir.join("dead.jsonl"));
    let ratio_dead: Vec<Value> = all_dead
        .iter()
        .filter(|d| d["component"] == "transforms.near_ratio")
        .map(|d| {
            assert_eq!(d["reason"], "division by zero");
            serde_json::from_str(d["record"].as_str().unwrap_or("")).unwrap_or_default()
        })
        .collect();
    assert!(failing.len() > 10, "{} failing", failing.len());
    assert_eq!(sorted(ratio_dead), sorted(failing.into_iter().cloned()));
    assert!(expected.iter().any(|e| e["a"] == -1) && expected.iter().any(|e| e["b"] == -1));
    let late_ids: Vec<i64> = read(&dir.join("near_late.jsonl"))
        .iter()
        .map(|l| {
            let side = if l["a"].is_null() { &l["b"] } else { &l["a"] };
            side["id"].as_i64().unwrap_or(-1)
        })
        .collect();
    let expected_late: Vec<i64> = events
        .iter()
        .zip(&wms)
        .filter(|(e, wm)| wm.is_some_and(|w| e.ts < w))
        .map(|(e, _)| e.id)
        .collect();
    assert_eq!(late_ids, expected_late, "late records, in input order");
    assert!(expected_late.len() > 20, "{} late", expected_late.len());

    // `same_window`: tumbling 20 s, left outer; late records dropped, and results whose
    // `q` divides by zero (`a % 7 == 0`) too.
    let (buckets, late) = window_buckets(&events, &wms, 20_000, 20_000, 0);
    let mut expected = Vec::new();
    let mut failed = 0;
    for ((_, start), (lefts, rights)) in &buckets {
        for l in lefts {
            let row = |b: i64| json!({ "a": l.id, "b": b, "start": start, "q": 1000 / (l.id % 7).max(1) });
            let rows = rights.iter().map(|r| r.id).chain(rights.is_empty().then_some(-1));
            for b in rows {
                if l.id % 7 == 0 {
                    failed += 1;
                } else {
                    expected.push(row(b));
                }
            }
        }
    }
    assert_eq!(sorted(read(&dir.join("window.jsonl"))), sorted(expected));
    assert!(failed > 0 && !late.is_empty());
    assert_eq!(support::counter(&c, "joins.same_window", "dropped"), late.len() as u64);
    assert_eq!(support::counter(&c, "joins.same_window", "results_failed"), failed);

    // `hop`: 20 s every 10 s from 3 s, inner; late records are dead letters.
    let (buckets, late) = window_buckets(&events, &wms, 20_000, 10_000, 3_000);
    let mut expected = Vec::new();
    for ((_, start), (lefts, rights)) in &buckets {
        for l in lefts {
            for r in rights {
                expected.push((l.id, r.id, *start));
            }
        }
    }
    let got: Vec<(i64, i64, i64)> = read(&dir.join("hop.jsonl"))
        .iter()
        .map(|p| {
            assert_eq!(p["window_end"].as_i64(), p["window_start"].as_i64().map(|s| s + 20_000));
            let id = |side: &str| p[side]["id"].as_i64().unwrap_or(-1);
            (id("a"), id("b"), p["window_start"].as_i64().unwrap_or(0))
        })
        .collect();
    let (mut got, mut expected) = (got, expected);
    got.sort_unstable();
    expected.sort_unstable();
    assert_eq!(got, expected);
    let dead = read(&dir.join("dead.jsonl"));
    let others = ["transforms.near_ratio", "joins.same_key"];
    let dead = dead
        .into_iter()
        .filter(|d| !others.iter().any(|o| d["component"] == *o));
    let (dead, failed): (Vec<Value>, Vec<Value>) = dead.partition(|d| d["component"] == "joins.hop");
    let dead_ids: Vec<i64> = dead
        .iter()
        .map(|d| {
            assert!(d["reason"]
                .as_str()
                .unwrap_or("")
                .contains("every window it belongs to has closed"));
            let record: Value = serde_json::from_str(d["record"].as_str().unwrap_or("")).unwrap_or_default();
            record["id"].as_i64().unwrap_or(-1)
        })
        .collect();
    assert_eq!(dead_ids, late.iter().map(|e| e.id).collect::<Vec<_>>());

    // `behind`: interval 0 s..=2 s, right outer, the sides named after their inputs;
    // a result whose `q` divides by zero (`b % 11 == 0`) is a dead letter.
    let mut expected = Vec::new();
    let mut failing = 0;
    for r in on_time.iter().filter(|e| e.side == "b") {
        let partners: Vec<i64> = on_time
            .iter()
            .filter(|l| l.side == "a" && l.key == r.key && (l.ts..=l.ts + 2_000).contains(&r.ts))
            .map(|l| l.id)
            .collect();
        let rows = if partners.is_empty() { vec![-1] } else { partners };
        for a in rows {
            match r.id % 11 {
                0 => failing += 1,
                m => expected.push(json!({ "a": a, "b": r.id, "q": 1000 / m })),
            }
        }
    }
    assert_eq!(sorted(read(&dir.join("behind.jsonl"))), sorted(expected));
    assert!(failing > 0);
    // Its dead letters: the results that failed, and (no `late:`) its late records.
    assert!(failed.iter().all(|d| d["component"] == "joins.behind"));
    let (divided, late): (Vec<&Value>, Vec<&Value>) = failed.iter().partition(|d| d["reason"] == "division by zero");
    assert_eq!(divided.len(), failing, "every failed result is a dead letter");
    // A result its `select` could not make: the dead letter holds the pair.
    for d in &divided {
        let pair: Value = serde_json::from_str(d["record"].as_str().unwrap_or("")).unwrap_or_default();
        assert_eq!(pair["rights"]["id"].as_i64().map(|b| b % 11), Some(0), "{pair}");
        assert!(pair.get("lefts").is_some(), "{pair}");
    }
    assert_eq!(support::counter(&c, "joins.behind", "results_failed"), failing as u64);
    assert_eq!(late.len(), expected_late.len());
    assert!(late
        .iter()
        .all(|d| d["reason"].as_str().unwrap_or("").starts_with("late: ")));

    // `same_key`: interval 0 s..=4 s, inner, late records dropped; `select` reads both
    // sides' key fields, which the join holds once, as the key. A result whose `q`
    // divides by zero (`b % 13 == 0`) is a dead letter holding the pair, the key back in
    // both sides' records.
    let mut expected = Vec::new();
    let mut failing = Vec::new();
    for l in on_time.iter().filter(|e| e.side == "a") {
        for r in on_time.iter().filter(|e| e.side == "b" && e.key == l.key) {
            if !(l.ts..=l.ts + 4_000).contains(&r.ts) {
                continue;
            }
            match r.id % 13 {
                0 => failing.push(json!({ "a": { "id": l.id, "key": l.key }, "b": { "id": r.id, "key": r.key } })),
                m => expected.push(json!({
                    "a": l.id, "b": r.id, "ka": l.key, "kb": format!("{}!", r.key), "q": 1000 / m
                })),
            }
        }
    }
    assert_eq!(sorted(read(&dir.join("same_key.jsonl"))), sorted(expected));
    assert!(failing.len() > 5, "{} failing", failing.len());
    let pairs = read(&dir.join("dead.jsonl"))
        .into_iter()
        .filter(|d| d["component"] == "joins.same_key");
    let pairs = pairs.map(|d| {
        assert_eq!(d["reason"], "division by zero");
        serde_json::from_str::<Value>(d["record"].as_str().unwrap_or("")).unwrap_or_default()
    });
    assert_eq!(sorted(pairs), sorted(failing.clone()));
    assert_eq!(
        support::counter(&c, "joins.same_key", "results_failed"),
        failing.len() as u64
    );
}

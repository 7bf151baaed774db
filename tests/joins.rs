//! Lookup joins end to end: the example `pipelines/readings_enriched.yaml` on generated
//! readings and a generated device file, against a nested-loop join written here (for
//! each reading, the last row of the file with its key); and `tests/pipelines/
//! join_missing.yaml` for records the file lacks (dropped, or dead letters with their
//! reason) and for a file changed while the pipeline runs; `tests/pipelines/
//! join_table.yaml` for a lookup of a table's current rows (a stream–table join).

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use support::{build, json_lines, Rng};

fn read(path: &Path) -> Vec<Value> {
    json_lines(&fs::read(path).unwrap_or_default())
}

#[test]
fn readings_get_the_last_row_of_their_device_or_nulls() {
    let dir = support::workdir("joins-enriched");
    let mut rng = Rng(5);
    // 300 devices listed, some twice (the later row wins), d300..d399 not listed.
    let mut devices = String::from("device_id,site,model\n");
    let mut rows: Vec<(String, String, String)> = Vec::new();
    for i in 0..340 {
        let id = format!("d{}", if i < 300 { i } else { rng.below(300) });
        let (site, model) = (format!("site-{}", rng.below(20)), format!("m{}", rng.below(5)));
        devices.push_str(&format!("{id},{site},{model}\n"));
        rows.push((id, site, model));
    }
    fs::write(dir.join("devices.csv"), devices).unwrap();
    let readings: Vec<(String, i64, f64)> = (0..5_000)
        .map(|i| {
            (
                format!("d{}", rng.below(400)),
                1_700_000_000_000 + i,
                rng.decimal(-10.0, 40.0),
            )
        })
        .collect();
    let text: String = readings
        .iter()
        .map(|(d, ts, t)| format!("{}\n", json!({ "device_id": d, "ts": ts, "temperature": t })))
        .collect();
    fs::write(dir.join("readings.jsonl"), text).unwrap();
    let out = Command::new(build("pipelines/readings_enriched.yaml"))
        .env("READINGS_PATH", dir.join("readings.jsonl"))
        .env("DEVICES_PATH", dir.join("devices.csv"))
        .env("ENRICHED_PATH", dir.join("enriched.jsonl"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The nested-loop join: every row with the reading's key, the last one kept.
    let expected: Vec<Value> = readings
        .iter()
        .map(|(d, ts, t)| {
            let row = rows.iter().rev().find(|(id, _, _)| id == d);
            json!({
                "device_id": d,
                "ts": ts,
                "temperature": t,
                "site": row.map(|r| r.1.clone()),
                "model": row.map(|r| r.2.clone()),
            })
        })
        .collect();
    let got = read(&dir.join("enriched.jsonl"));
    assert_eq!(got.len(), expected.len());
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(g, e, "reading {i}");
    }
    assert!(expected.iter().any(|e| e["site"].is_null()) && expected.iter().any(|e| !e["site"].is_null()));
    let c = support::counters(&out.stderr);
    assert_eq!(support::counter(&c, "joins.with_device", "sent"), 5_000);
}

fn order(id: i64, customer: i64) -> String {
    format!("{}\n", json!({ "order_id": id, "customer": customer, "total": 10.5 }))
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = fs::OpenOptions::new().append(true).create(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[test]
fn records_the_file_lacks_are_dropped_or_dead_letters_and_a_changed_file_is_read_again() {
    let dir = support::workdir("joins-missing");
    let customers = dir.join("customers.jsonl");
    fs::write(
        &customers,
        "{\"id\":1,\"name\":\"ann\",\"tier\":\"gold\"}\n{\"id\":2,\"name\":\"bo\",\"tier\":\"basic\"}\nnot a row\n",
    )
    .unwrap();
    let orders = dir.join("orders.jsonl");
    fs::write(&orders, format!("{}{}{}", order(10, 1), order(11, 3), order(12, 2))).unwrap();
    let out_dir = dir.join("out");
    fs::create_dir_all(&out_dir).unwrap();
    let mut cmd = Command::new(build("tests/pipelines/join_missing.yaml"));
    cmd.env("ORDERS_PATH", &orders)
        .env("CUSTOMERS_PATH", &customers)
        .env("OUT", &out_dir);
    let running = support::start(&mut cmd);
    let known = out_dir.join("known.jsonl");
    support::wait_until("the first orders joined", || {
        support::json_lines_so_far(&known).len() == 2
    });
    // Customer 3 arrives, and ann changes tier: `known` reads the file again, `checked`
    // (reload: never) does not.
    fs::write(
        &customers,
        "{\"id\":1,\"name\":\"ann\",\"tier\":\"platinum\"}\n{\"id\":2,\"name\":\"bo\",\"tier\":\"basic\"}\n{\"id\":3,\"name\":\"cy\",\"tier\":\"new\"}\n",
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    append(&orders, &format!("{}{}", order(13, 3), order(14, 1)));
    support::wait_until("the later orders joined", || {
        support::json_lines_so_far(&known).len() == 4
    });
    running.signal("TERM");
    let output = running.wait();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        read(&known),
        [
            json!({ "order_id": 10, "name": "ann", "tier": "gold" }),
            json!({ "order_id": 12, "name": "bo", "tier": "basic" }),
            json!({ "order_id": 13, "name": "cy", "tier": "new" }),
            json!({ "order_id": 14, "name": "ann", "tier": "platinum" }),
        ]
    );
    let checked = read(&out_dir.join("checked.jsonl"));
    let ids: Vec<i64> = checked.iter().map(|r| r["order_id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [10, 12, 14], "without a reload, customer 3 stays unknown");
    assert_eq!(checked[2]["who"]["tier"], "gold", "the rows read at start: {checked:?}");
    let dead = support::dead_letters(&output.stderr);
    let reasons: Vec<(&str, i64)> = dead
        .iter()
        .map(|d| {
            // The record as the source read it: its line.
            let line: Value = serde_json::from_str(d["record"].as_str().unwrap()).unwrap();
            (d["component"].as_str().unwrap(), line["order_id"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(reasons, [("joins.checked", 11), ("joins.checked", 13)], "{dead:?}");
    assert!(dead.iter().all(|d| d["reason"]
        .as_str()
        .unwrap()
        .contains("no row of the lookup file has this key")));
    let c = support::counters(&output.stderr);
    assert_eq!(support::counter(&c, "joins.known", "filtered"), 1, "order 11 dropped");
    assert_eq!(support::counter(&c, "joins.checked", "dead_lettered"), 2);
    assert!(
        stderr.contains("\"rows_skipped\":1"),
        "the bad row is counted: {stderr}"
    );
}

#[test]
fn a_lookup_file_that_cannot_be_read_at_start_is_a_start_error() {
    let dir = support::workdir("joins-no-file");
    fs::write(dir.join("orders.jsonl"), order(1, 1)).unwrap();
    let out = Command::new(build("tests/pipelines/join_missing.yaml"))
        .env("ORDERS_PATH", dir.join("orders.jsonl"))
        .env("CUSTOMERS_PATH", dir.join("nope.jsonl"))
        .env("OUT", &dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("cannot read the lookup file"), "{stderr}");
    assert!(
        !dir.join("known.jsonl").exists(),
        "no output was opened: the lookup is read first"
    );
}

#[test]
fn joined_records_that_reach_a_full_disk_are_counted_as_lost_and_fail_the_run() {
    let dir = support::workdir("joins-full-disk");
    fs::write(dir.join("devices.csv"), "device_id,site,model\nd1,north,T100\n").unwrap();
    let readings: String = (0..300)
        .map(|i| {
            format!(
                "{}\n",
                json!({ "device_id": format!("d{}", i % 3), "ts": i, "temperature": 1.5 })
            )
        })
        .collect();
    fs::write(dir.join("readings.jsonl"), readings).unwrap();
    let out = Command::new(build("pipelines/readings_enriched.yaml"))
        .env("READINGS_PATH", dir.join("readings.jsonl"))
        .env("DEVICES_PATH", dir.join("devices.csv"))
        .env("ENRICHED_PATH", "/dev/full")
        .output()
        .unwrap();
    let c = support::failed_on_a_full_disk(&out, "sinks.enriched", 300);
    assert_eq!(support::counter(&c, "joins.with_device", "sent"), 300);
}

/// A stream–table join: each order gets its item's row of the table as it is when the
/// order comes (the latest price before it in the input, and how many prices came),
/// against a model that replays the input in order.
#[test]
fn orders_get_the_tables_row_as_it_is_when_they_come() {
    let dir = support::workdir("joins-table");
    let mut rng = Rng(17);
    let mut text = String::new();
    // item → (latest price, updates), as the table holds it after each record.
    let mut table: std::collections::HashMap<String, (f64, u64)> = std::collections::HashMap::new();
    let (mut priced, mut checked, mut missing) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..4_000 {
        let item = format!("i{}", rng.below(60));
        if rng.below(3) == 0 {
            let price = rng.below(10_000) as f64 / 100.0;
            text.push_str(&format!(
                "{}\n",
                json!({ "kind": "price", "item": item, "price": price })
            ));
            let row = table.entry(item).or_insert((0.0, 0));
            *row = (price, row.1 + 1);
        } else {
            let qty = i % 7;
            text.push_str(&format!("{}\n", json!({ "kind": "order", "item": item, "qty": qty })));
            let row = table.get(&item);
            priced.push(json!({
                "item": item,
                "qty": qty,
                "price": row.map(|r| r.0),
                "updates": row.map(|r| r.1),
            }));
            match row {
                Some(r) => checked.push(json!({ "item": item, "price": r.0 })),
                None => missing.push(item),
            }
        }
    }
    fs::write(dir.join("events.jsonl"), text).unwrap();
    // Read only by the lookups, the table is read all the same: no warning.
    let check = support::rill()
        .args(["check", "tests/pipelines/join_table.yaml"])
        .current_dir(support::repo())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success() && !said.contains("not used"), "{said}");
    let out = Command::new(build("tests/pipelines/join_table.yaml"))
        .env("EVENTS_PATH", dir.join("events.jsonl"))
        .env("OUT", &dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(read(&dir.join("priced.jsonl")), priced);
    assert_eq!(read(&dir.join("checked.jsonl")), checked);
    let dead = read(&dir.join("dead.jsonl"));
    let dead_items: Vec<String> = dead
        .iter()
        .map(|d| {
            assert_eq!(d["component"], "joins.checked");
            assert_eq!(d["reason"], "refused: the table has no row of this key");
            let record: Value = serde_json::from_str(d["record"].as_str().unwrap_or("")).unwrap_or_default();
            record["item"].as_str().unwrap_or("").to_string()
        })
        .collect();
    assert_eq!(dead_items, missing);
    assert!(!missing.is_empty() && priced.iter().any(|p| !p["price"].is_null()));
    let c = support::counters(&out.stderr);
    assert_eq!(support::counter(&c, "joins.priced", "sent"), priced.len() as u64);
    assert_eq!(
        support::counter(&c, "joins.checked", "dead_lettered"),
        missing.len() as u64
    );
}

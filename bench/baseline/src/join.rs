//! The hand-written equivalent of bench/join.yaml: orders joined with the shipments
//! of the same order from 0 to 1 h after them (an inner interval join), on event time,
//! and its input generator.
//!
//! The same rules as rill's joins of two streams, written for this one join: the
//! watermark is the largest `ts` seen minus 5 s; a record behind it is late and
//! dropped; an order is paired at once with the shipments of its id held, a shipment
//! with the orders, each new record with the other side's in arrival order. Orders are
//! held until the watermark passes `ts + 1h`, shipments until it passes their `ts`:
//! every 1/8 h of watermark progress one sweep drops what expired (nothing expired can
//! pair with a record on time). Per order id: its orders and shipments held; the id is
//! owned once per id (the line buffer is reused), a shipment's carrier once per
//! shipment held.

use super::SplitMix;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};

const TO: i64 = 3_600_000;
const MAX_OUT_OF_ORDER: i64 = 5_000;

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    order_id: Cow<'a, str>,
    ts: i64,
    amount: Option<f64>,
    #[serde(borrow)]
    carrier: Option<Cow<'a, str>>,
}

#[derive(Serialize)]
struct Shipped<'a> {
    order_id: &'a str,
    ordered_at: i64,
    amount: f64,
    carrier: &'a str,
    shipped_at: i64,
}

#[derive(Default)]
struct Held {
    /// `(ts, amount)` of each order, in arrival order.
    orders: Vec<(i64, f64)>,
    /// `(ts, carrier)` of each shipment, in arrival order.
    shipments: Vec<(i64, String)>,
}

pub fn join(input: &str, output: &str) -> std::io::Result<()> {
    let mut reader = BufReader::with_capacity(1 << 16, File::open(input)?);
    let mut writer = BufWriter::with_capacity(1 << 16, File::create(output)?);
    let mut line = Vec::with_capacity(256);
    let mut held: HashMap<String, Held> = HashMap::new();
    let (mut max_ts, mut next_sweep) = (i64::MIN, i64::MIN);
    let (mut read, mut invalid, mut late, mut written) = (0u64, 0u64, 0u64, 0u64);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let raw = line.strip_suffix(b"\n").unwrap_or(&line);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        read += 1;
        let e: Event = match serde_json::from_slice(raw) {
            Ok(e) => e,
            Err(_) => {
                invalid += 1;
                continue;
            }
        };
        let watermark = max_ts.saturating_sub(MAX_OUT_OF_ORDER);
        max_ts = max_ts.max(e.ts);
        let order = match e.kind.as_ref() {
            "order" => true,
            "shipment" => false,
            _ => continue,
        };
        if e.ts < watermark {
            late += 1;
            continue;
        }
        let h = match held.get_mut(e.order_id.as_ref()) {
            Some(h) => h,
            None => held.entry(e.order_id.to_string()).or_default(),
        };
        let mut write = |ordered_at: i64, amount: f64, carrier: &str, shipped_at: i64| {
            let s = Shipped {
                order_id: &e.order_id,
                ordered_at,
                amount,
                carrier,
                shipped_at,
            };
            written += 1;
            serde_json::to_writer(&mut writer, &s)?;
            writer.write_all(b"\n")
        };
        if order {
            let amount = e.amount.unwrap_or(0.0);
            for (shipped_at, carrier) in &h.shipments {
                if (e.ts..=e.ts + TO).contains(shipped_at) {
                    write(e.ts, amount, carrier, *shipped_at)?;
                }
            }
            h.orders.push((e.ts, amount));
        } else {
            let carrier = e.carrier.as_deref().unwrap_or("");
            for &(ordered_at, amount) in &h.orders {
                if (ordered_at..=ordered_at + TO).contains(&e.ts) {
                    write(ordered_at, amount, carrier, e.ts)?;
                }
            }
            h.shipments.push((e.ts, carrier.to_string()));
        }
        let watermark = max_ts.saturating_sub(MAX_OUT_OF_ORDER);
        if watermark >= next_sweep {
            held.retain(|_, h| {
                h.orders.retain(|(ts, _)| ts + TO >= watermark);
                h.shipments.retain(|(ts, _)| *ts >= watermark);
                !(h.orders.is_empty() && h.shipments.is_empty())
            });
            next_sweep = watermark.saturating_add(TO / 8);
        }
    }
    writer.flush()?;
    eprintln!("baseline join: read {read}, invalid {invalid}, late {late}, wrote {written} pairs");
    Ok(())
}

/// N events: 40% orders (`o<n>`, numbered in order, an amount of 0.00 to 499.99) and
/// 60% shipments of one of the last 84,000 orders (about 70 minutes of them, so most
/// ship within the hour), with a carrier of four; a clock advancing 20 ms per event
/// from 1,700,000,000,000, each event up to 3 s behind it, and 0.1% 6 to 20 s behind
/// (most of those late behind the 5 s watermark).
pub fn gen_orders(n: u64, path: &str) -> std::io::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 16, File::create(path)?);
    let mut rng = SplitMix(0x5EED_0F_2026);
    let mut orders = 0u64;
    for i in 0..n {
        let behind = if rng.below(1_000) == 0 {
            6_000 + rng.below(14_001)
        } else {
            rng.below(3_001)
        };
        let ts = 1_700_000_000_000u64 + 20 * i - behind;
        if orders == 0 || rng.below(10) < 4 {
            let a = rng.below(50_000);
            writeln!(
                w,
                "{{\"kind\":\"order\",\"order_id\":\"o{orders}\",\"ts\":{ts},\"amount\":{}.{:02},\"carrier\":null}}",
                a / 100,
                a % 100
            )?;
            orders += 1;
        } else {
            let of = orders - 1 - rng.below(orders.min(84_000));
            let carrier = ["ups", "dhl", "fedex", "post"][rng.below(4) as usize];
            writeln!(
                w,
                "{{\"kind\":\"shipment\",\"order_id\":\"o{of}\",\"ts\":{ts},\"amount\":null,\"carrier\":\"{carrier}\"}}"
            )?;
        }
    }
    w.flush()
}

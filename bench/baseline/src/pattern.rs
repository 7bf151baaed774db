//! The hand-written equivalent of bench/pattern.yaml: per user, a login followed by a
//! purchase (of an amount above 0) less than 10 minutes later, on event time, and its
//! input generator.
//!
//! The same rules as rill's patterns, written for this one pattern: the watermark is
//! the largest `ts` seen minus 5 s; a record behind it is late and dropped; the others
//! wait in a heap until the watermark passes them and are then handled in `(ts,
//! arrival)` order (views and the like change nothing and do not wait). Per user, the
//! logins not yet used (their times, oldest first); a purchase drops those 10 minutes
//! old or more and, if one is left, matches the oldest and forgets them all. The user's id is owned once per user (the line buffer is
//! reused), the event's kind is a byte.

use super::SplitMix;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};

const WITHIN: i64 = 600_000;
const MAX_OUT_OF_ORDER: i64 = 5_000;

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow)]
    user_id: Cow<'a, str>,
    #[serde(borrow)]
    event: Cow<'a, str>,
    amount: Option<f64>,
    ts: i64,
}

#[derive(Serialize)]
struct Match<'a> {
    user_id: &'a str,
    login_at: i64,
    purchased_at: i64,
    amount: f64,
}

/// An event waiting for the watermark, as the pattern needs it: `(ts, arrival, index
/// into users, kind, amount's bits)`, the smallest first.
type Waiting = Reverse<(i64, u64, u32, Kind, u64)>;

/// A login, or a purchase of more than 0.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Login,
    Purchase,
}

struct User {
    id: String,
    /// Times of the logins not yet used, in processing order.
    logins: Vec<i64>,
}

pub fn pattern(input: &str, output: &str) -> std::io::Result<()> {
    let mut reader = BufReader::with_capacity(1 << 16, File::open(input)?);
    let mut writer = BufWriter::with_capacity(1 << 16, File::create(output)?);
    let mut line = Vec::with_capacity(256);
    let mut users: Vec<User> = Vec::new();
    let mut index: HashMap<String, u32> = HashMap::new();
    let mut heap: BinaryHeap<Waiting> = BinaryHeap::new();
    let (mut max_ts, mut arrival) = (i64::MIN, 0u64);
    let (mut read, mut invalid, mut late, mut written) = (0u64, 0u64, 0u64, 0u64);
    let mut handle = |w: Waiting, users: &mut Vec<User>, writer: &mut BufWriter<File>| -> std::io::Result<()> {
        let Reverse((ts, _, user, kind, amount)) = w;
        let user = &mut users[user as usize];
        match kind {
            Kind::Login => user.logins.push(ts),
            Kind::Purchase => {
                user.logins.retain(|&login| ts < login + WITHIN);
                if let Some(&login_at) = user.logins.first() {
                    let m = Match {
                        user_id: &user.id,
                        login_at,
                        purchased_at: ts,
                        amount: f64::from_bits(amount),
                    };
                    serde_json::to_writer(&mut *writer, &m)?;
                    writer.write_all(b"\n")?;
                    written += 1;
                    user.logins.clear();
                }
            }
        }
        Ok(())
    };
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
        if e.ts < watermark {
            late += 1;
            continue;
        }
        let user = match index.get(e.user_id.as_ref()) {
            Some(&u) => u,
            None => {
                let u = users.len() as u32;
                users.push(User {
                    id: e.user_id.to_string(),
                    logins: Vec::new(),
                });
                index.insert(e.user_id.into_owned(), u);
                u
            }
        };
        let amount = e.amount.unwrap_or(0.0);
        let kind = match e.event.as_ref() {
            "login" => Some(Kind::Login),
            "purchase" if amount > 0.0 => Some(Kind::Purchase),
            _ => None,
        };
        max_ts = max_ts.max(e.ts);
        // Other events change nothing: they do not wait.
        if let Some(kind) = kind {
            arrival += 1;
            heap.push(Reverse((e.ts, arrival, user, kind, amount.to_bits())));
        }
        let watermark = max_ts.saturating_sub(MAX_OUT_OF_ORDER);
        while heap.peek().is_some_and(|Reverse(w)| w.0 < watermark) {
            let w = heap.pop().expect("peeked");
            handle(w, &mut users, &mut writer)?;
        }
    }
    while let Some(w) = heap.pop() {
        handle(w, &mut users, &mut writer)?;
    }
    writer.flush()?;
    drop(handle);
    eprintln!("baseline pattern: read {read}, invalid {invalid}, late {late}, wrote {written} matches");
    Ok(())
}

/// N events of 10,000 users (`user-0000`…): 20% logins, 25% purchases (an amount of
/// 0.00 to 499.99, null for 10%), 50% views, 5% logouts; a clock advancing 1 ms per event
/// from 1,700,000,000,000, each event up to 3 s behind it, and 0.1% 6 to 20 s behind
/// (most of those late behind the 5 s watermark).
pub fn gen_events(n: u64, path: &str) -> std::io::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 16, File::create(path)?);
    let mut rng = SplitMix(0x5EED_2026);
    for i in 0..n {
        let user = rng.below(10_000);
        let behind = if rng.below(1_000) == 0 {
            6_000 + rng.below(14_001)
        } else {
            rng.below(3_001)
        };
        let ts = 1_700_000_000_000u64 + i - behind;
        let event = match rng.below(20) {
            0..=3 => "login",
            4..=8 => "purchase",
            9 => "logout",
            _ => "view",
        };
        write!(w, "{{\"user_id\":\"user-{user:04}\",\"event\":\"{event}\",\"amount\":")?;
        if rng.below(10) == 0 {
            w.write_all(b"null")?;
        } else {
            let a = rng.below(50_000);
            write!(w, "{}.{:02}", a / 100, a % 100)?;
        }
        writeln!(w, ",\"ts\":{ts}}}")?;
    }
    w.flush()
}

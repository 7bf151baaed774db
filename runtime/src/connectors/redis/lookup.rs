//! `RedisLookup`: a lookup join's reference rows read from Redis, one `GET <prefix><key>`
//! per key, each a JSON row, kept in a cache for a while.
//!
//! - A key the server lacks is a miss (the join's `missing:` says what becomes of the
//!   record). A value that is not a row of the schema, or a key holding another type,
//!   makes the record a dead letter with the reason.
//! - Rows and misses are kept [`CacheRules::ttl_ms`] after they were read, at most
//!   `max_rows` of them (the oldest go first: every row lives equally long, so they are
//!   also the first to expire). `ttl_ms` 0: every record reads the server.
//! - While the server is away the lookup waits for it, backing off as the other Redis
//!   clients do, and `/health` says so: the pipeline holds its input rather than lose
//!   the enrichment. A stop (SIGTERM) ends the wait: the record becomes a dead letter
//!   saying the server was away.

use super::client::{self, Reconnect, RedisConnect};
use crate::driver::Context;
use crate::errors::StartError;
use crate::formats::Decoder;
use crate::log;
use serde_json::json;
use std::borrow::Borrow;
use std::collections::{HashMap, VecDeque};
use std::fmt::{Display, Write as _};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// How long rows are kept, and how many.
#[derive(Debug, Clone, Copy)]
pub struct CacheRules {
    pub ttl_ms: u64,
    pub max_rows: usize,
}

pub struct RedisLookup<K, D: Decoder> {
    component: &'static str,
    client: redis::Client,
    con: Option<redis::Connection>,
    prefix: String,
    decoder: D,
    /// The rows' schema, as diagnostics name it (schema `device`), for dead letters.
    schema: &'static str,
    cache: Cache<K, Option<D::Output>>,
    reconnect: Reconnect,
    /// The Redis key being read: `prefix` and the record's key.
    name: String,
}

impl<K: Hash + Eq + Clone, D: Decoder> RedisLookup<K, D>
where
    D::Output: Clone,
{
    /// Connects (an unreachable server is waited for at the first lookup; refused
    /// credentials are a start error).
    pub fn new(
        component: &'static str,
        connect: RedisConnect,
        prefix: &str,
        decoder: D,
        schema: &'static str,
        cache: CacheRules,
        ctx: &Context,
    ) -> Result<Self, StartError> {
        let client = connect.client(component)?;
        let mut reconnect = Reconnect::new(component, ctx.events.connection(component));
        let con = match client::connect(&client) {
            Ok(con) => Some(con),
            Err(e) if e.kind() == redis::ErrorKind::AuthenticationFailed => {
                return Err(StartError::new(format!(
                    "{component}: the Redis server refused the credentials: {e}"
                )));
            }
            Err(e) => {
                reconnect.lost(&e.to_string());
                None
            }
        };
        Ok(RedisLookup {
            component,
            client,
            con,
            prefix: prefix.to_string(),
            decoder,
            schema,
            cache: Cache::new(cache),
            reconnect,
            name: String::new(),
        })
    }

    /// The row of `key`: `Ok(None)` when the server has none; `Err` is the reason the
    /// record becomes a dead letter.
    pub fn get<Q>(&mut self, key: &Q) -> Result<Option<D::Output>, String>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + Display + ToOwned<Owned = K> + ?Sized,
    {
        let now = Instant::now();
        if let Some(row) = self.cache.get(key, now) {
            return Ok(row.clone());
        }
        self.name.clear();
        self.name.push_str(&self.prefix);
        let _ = write!(self.name, "{key}");
        let row = match self.read()? {
            None => None,
            Some(value) => match self.decoder.decode(&value) {
                Ok(Some(row)) => Some(row),
                Ok(None) => {
                    return Err(format!(
                        "the Redis key `{}` holds no row of {} (it is blank)",
                        self.name, self.schema
                    ))
                }
                Err(e) => {
                    return Err(format!(
                        "the Redis key `{}` holds no row of {}: {e}",
                        self.name, self.schema
                    ))
                }
            },
        };
        if self.cache.keeps() {
            self.cache.put(key.to_owned(), row.clone(), now);
        }
        Ok(row)
    }

    /// `GET name`, waiting while the server is away.
    fn read(&mut self) -> Result<Option<Vec<u8>>, String> {
        loop {
            let got = match self.con.as_mut() {
                Some(con) => redis::cmd("GET").arg(&self.name).query::<Option<Vec<u8>>>(con),
                None => client::connect(&self.client).and_then(|con| {
                    let con = self.con.insert(con);
                    redis::cmd("GET").arg(&self.name).query(con)
                }),
            };
            let e = match got {
                Ok(value) => {
                    self.reconnect.connected();
                    return Ok(value);
                }
                Err(e) => e,
            };
            // An error about the key itself: the record's. Any other, the server's.
            if e.code() == Some("WRONGTYPE") {
                return Err(format!("the Redis key `{}` is not a string: {e}", self.name));
            }
            self.con = None;
            if crate::shutdown::stop_requested() {
                self.reconnect.lost(&e.to_string());
                return Err(format!(
                    "stopped while waiting for the Redis server, which was away ({e}): the record was not looked up"
                ));
            }
            self.reconnect.failed(&e.to_string(), crate::shutdown::stop_requested);
        }
    }
}

impl<K, D: Decoder> Drop for RedisLookup<K, D> {
    fn drop(&mut self) {
        if self.cache.hits + self.cache.reads > 0 {
            log::info(
                "redis lookup cache",
                &[
                    ("component", json!(self.component)),
                    ("hits", json!(self.cache.hits)),
                    ("reads", json!(self.cache.reads)),
                ],
            );
        }
    }
}

/// Rows by key, each kept `ttl` after it was read; the oldest go first.
struct Cache<K, V> {
    rows: HashMap<K, (Instant, V)>,
    /// Keys in the order they were put, with when: an entry whose time no longer
    /// matches its row's was put again later.
    order: VecDeque<(K, Instant)>,
    ttl: Duration,
    max_rows: usize,
    hits: u64,
    reads: u64,
}

impl<K: Hash + Eq + Clone, V> Cache<K, V> {
    fn new(rules: CacheRules) -> Self {
        Cache {
            rows: HashMap::new(),
            order: VecDeque::new(),
            ttl: Duration::from_millis(rules.ttl_ms),
            max_rows: rules.max_rows,
            hits: 0,
            reads: 0,
        }
    }

    fn get<Q>(&mut self, key: &Q, now: Instant) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self.rows.get(key) {
            Some((at, row)) if now.duration_since(*at) < self.ttl => {
                self.hits += 1;
                Some(row)
            }
            _ => {
                self.reads += 1;
                None
            }
        }
    }

    /// Whether it keeps anything (`cache: 0s` does not).
    fn keeps(&self) -> bool {
        !self.ttl.is_zero() && self.max_rows > 0
    }

    fn put(&mut self, key: K, row: V, now: Instant) {
        if !self.keeps() {
            return;
        }
        // Expired rows go, then the oldest while the cache is full.
        while let Some((oldest, at)) = self.order.front() {
            let expired = now.duration_since(*at) >= self.ttl;
            if !expired && self.rows.len() < self.max_rows {
                break;
            }
            if self.rows.get(oldest).is_some_and(|(put, _)| put == at) {
                self.rows.remove(oldest);
            }
            self.order.pop_front();
        }
        self.order.push_back((key.clone(), now));
        self.rows.insert(key, (now, row));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(ttl_ms: u64, max_rows: usize) -> Cache<String, u32> {
        Cache::new(CacheRules { ttl_ms, max_rows })
    }

    #[test]
    fn a_row_is_kept_for_its_ttl_and_not_a_moment_longer() {
        let mut c = cache(1_000, 10);
        let t0 = Instant::now();
        c.put("a".into(), 1, t0);
        assert_eq!(c.get("a", t0 + Duration::from_millis(999)), Some(&1));
        assert_eq!(c.get("a", t0 + Duration::from_millis(1_000)), None);
        assert_eq!((c.hits, c.reads), (1, 1));
    }

    #[test]
    fn a_full_cache_lets_its_oldest_rows_go_and_a_row_put_again_stays() {
        let mut c = cache(60_000, 2);
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        c.put("a".into(), 1, at(0));
        c.put("b".into(), 2, at(1));
        c.put("a".into(), 3, at(2));
        // Full: the oldest entry is a's first, stale; then b goes.
        c.put("c".into(), 4, at(3));
        assert_eq!(c.get("a", at(4)), Some(&3));
        assert_eq!(c.get("b", at(4)), None);
        assert_eq!(c.get("c", at(4)), Some(&4));
        assert!(c.rows.len() <= 2 && c.order.len() <= 3);
    }

    #[test]
    fn no_ttl_keeps_nothing() {
        let mut c = cache(0, 10);
        let t0 = Instant::now();
        c.put("a".into(), 1, t0);
        assert_eq!(c.get("a", t0), None);
        assert!(c.rows.is_empty());
    }
}

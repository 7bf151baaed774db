//! `type: redis` — pub/sub in and out, streams read with a consumer group (entries
//! acknowledged once safe downstream) and written with XADD, and keys written with SET
//! or HSET so other programs can read a table's or a window's latest results.

mod check;
mod spec;

pub use check::{lookup as check_lookup, sink as check_sink, source as check_source};
pub use spec::{RedisLookup, RedisSink, RedisSource};

use proc_macro2::TokenStream;
use quote::quote;

use crate::ir::{IrSink, IrSource};

pub const RUNTIME_TYPES: &[&str] = &[
    "CacheRules",
    "RedisConnect",
    "RedisLookup",
    "RedisPubSub",
    "RedisStream",
    "RedisStreamRead",
    "RedisWrite",
    "RedisWriter",
];

/// How to reach the server: the keys of settings resolved at start.
#[derive(Debug, Clone)]
pub struct IrRedisClient {
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

#[derive(Debug, Clone)]
pub enum IrRedisRead {
    PubSub {
        channels: Vec<String>,
        patterns: Vec<String>,
    },
    Stream {
        stream: String,
        /// Settings keys.
        group: String,
        consumer: String,
        field: String,
        earliest: bool,
        claim_idle_ms: u64,
    },
}

#[derive(Debug, Clone)]
pub struct IrRedisSource {
    pub client: IrRedisClient,
    pub read: IrRedisRead,
}

/// The command a sink writes each record with.
#[derive(Debug, Clone)]
pub enum IrRedisWrite {
    Publish,
    /// `max_len` 0: no trimming.
    Xadd {
        max_len: u64,
        field: String,
    },
    /// `ttl_ms` 0: no expiry.
    Set {
        ttl_ms: u64,
    },
    Hset {
        ttl_ms: u64,
    },
}

#[derive(Debug, Clone)]
pub struct IrRedisSink {
    pub client: IrRedisClient,
    pub write: IrRedisWrite,
    /// The channel, stream, key or hash of records whose address names none.
    pub name: String,
}

/// A lookup join's rows from Redis.
#[derive(Debug, Clone)]
pub struct IrRedisLookup {
    pub client: IrRedisClient,
    pub prefix: String,
    /// 0: no cache.
    pub cache_ms: u64,
    pub cache_rows: u64,
}

/// `RedisConnect { .. }`, its settings resolved at start.
fn connect(c: &IrRedisClient) -> TokenStream {
    let optional = |key: &Option<String>| match key {
        Some(key) => quote!(ctx.settings.str(#key)?),
        None => quote!(String::new()),
    };
    let url = &c.url;
    let (username, password) = (optional(&c.username), optional(&c.password));
    quote! {
        RedisConnect {
            url: ctx.settings.non_empty(#url)?,
            username: #username,
            password: #password,
        }
    }
}

/// `Box::new(RedisPubSub::new(..))` or `Box::new(RedisStream::new(..))`, asked for the
/// metadata the record's fields read.
pub fn emit_source(r: &IrRedisSource, s: &IrSource) -> TokenStream {
    let component = format!("sources.{}", s.name);
    let connect = connect(&r.client);
    let metadata = s.metadata.iter().map(|m| &m.meta);
    match &r.read {
        IrRedisRead::PubSub { channels, patterns } => quote! {
            Box::new(RedisPubSub::new(#component, #connect, &[#(#channels),*], &[#(#patterns),*], &[#(#metadata),*], ctx)?)
        },
        IrRedisRead::Stream {
            stream,
            group,
            consumer,
            field,
            earliest,
            claim_idle_ms,
        } => quote! {
            Box::new(RedisStream::new(
                #component,
                #connect,
                RedisStreamRead {
                    stream: #stream.to_string(),
                    group: ctx.settings.non_empty(#group)?,
                    consumer: ctx.settings.non_empty(#consumer)?,
                    field: #field.to_string(),
                    earliest: #earliest,
                    claim_idle_ms: #claim_idle_ms,
                },
                &[#(#metadata),*],
                ctx,
            )?)
        },
    }
}

/// `Box::new(RedisWriter::new(..))`.
pub fn emit_sink(r: &IrRedisSink, s: &IrSink) -> TokenStream {
    let component = format!("sinks.{}", s.name);
    let connect = connect(&r.client);
    let name = &r.name;
    let write = match &r.write {
        IrRedisWrite::Publish => quote!(RedisWrite::Publish),
        IrRedisWrite::Xadd { max_len, field } => quote!(RedisWrite::Xadd { max_len: #max_len, field: #field }),
        IrRedisWrite::Set { ttl_ms } => quote!(RedisWrite::Set { ttl_ms: #ttl_ms }),
        IrRedisWrite::Hset { ttl_ms } => quote!(RedisWrite::Hset { ttl_ms: #ttl_ms }),
    };
    quote!(Box::new(RedisWriter::new(#component, #connect, #write, #name, ctx)?))
}

/// `RedisLookup::new(..)`, its rows decoded by `decoder` (an expression) as `schema`.
pub fn emit_lookup(r: &IrRedisLookup, component: &str, decoder: TokenStream, schema: &str) -> TokenStream {
    let connect = connect(&r.client);
    let (prefix, ttl_ms) = (&r.prefix, r.cache_ms);
    let max_rows = usize::try_from(r.cache_rows).unwrap_or(usize::MAX);
    quote! {
        RedisLookup::new(
            #component,
            #connect,
            #prefix,
            #decoder,
            #schema,
            CacheRules { ttl_ms: #ttl_ms, max_rows: #max_rows },
            ctx,
        )?
    }
}

//! `type: mqtt` — subscribe to topic filters, and publish one message per record; the
//! devices' protocol. QoS 1 messages are acknowledged only once their records are safe
//! downstream, through the same acknowledgements every committing source uses.

mod check;
mod spec;

pub use check::{sink as check_sink, source as check_source};
pub use spec::{MqttSink, MqttSource};

use proc_macro2::TokenStream;
use quote::quote;

use crate::ir::{IrSink, IrSource};

pub const RUNTIME_TYPES: &[&str] = &["MqttConnect", "MqttPublisher", "MqttSource"];

/// How to reach the broker: the keys of settings resolved at start, and what is
/// compiled in.
#[derive(Debug, Clone)]
pub struct IrMqttClient {
    pub url: String,
    pub client_id: String,
    pub clean_session: bool,
    pub username: Option<String>,
    pub password: Option<String>,
    /// 4 (MQTT 3.1.1) or 5.
    pub protocol: u8,
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub keep_alive_secs: u64,
}

#[derive(Debug, Clone)]
pub struct IrMqttSource {
    pub client: IrMqttClient,
    pub topics: Vec<String>,
    pub qos: u8,
}

#[derive(Debug, Clone)]
pub struct IrMqttSink {
    pub client: IrMqttClient,
    /// The topic of records whose address names none (empty when every record names one).
    pub topic: String,
    pub qos: u8,
    pub retain: bool,
}

/// `MqttConnect { .. }`, its settings resolved at start.
fn connect(c: &IrMqttClient) -> TokenStream {
    let optional = |key: &Option<String>| match key {
        Some(key) => quote!(ctx.settings.str(#key)?),
        None => quote!(String::new()),
    };
    let (url, client_id) = (&c.url, &c.client_id);
    let (username, password) = (optional(&c.username), optional(&c.password));
    let (ca, cert, key) = (optional(&c.ca), optional(&c.cert), optional(&c.key));
    let (clean_session, protocol, keep_alive_secs) = (c.clean_session, c.protocol, c.keep_alive_secs);
    quote! {
        MqttConnect {
            url: ctx.settings.non_empty(#url)?,
            client_id: ctx.settings.non_empty(#client_id)?,
            clean_session: #clean_session,
            username: #username,
            password: #password,
            protocol: #protocol,
            ca: #ca,
            cert: #cert,
            key: #key,
            keep_alive_secs: #keep_alive_secs,
        }
    }
}

/// `Box::new(MqttSource::new(..))`, asked for the metadata the record's fields read.
pub fn emit_source(m: &IrMqttSource, s: &IrSource) -> TokenStream {
    let component = format!("sources.{}", s.name);
    let connect = connect(&m.client);
    let (topics, qos) = (&m.topics, m.qos);
    let metadata = s.metadata.iter().map(|m| &m.meta);
    quote!(Box::new(MqttSource::new(#component, #connect, &[#(#topics),*], #qos, &[#(#metadata),*], ctx)?))
}

/// `Box::new(MqttPublisher::new(..))`.
pub fn emit_sink(m: &IrMqttSink, s: &IrSink) -> TokenStream {
    let component = format!("sinks.{}", s.name);
    let connect = connect(&m.client);
    let (topic, qos, retain) = (&m.topic, m.qos, m.retain);
    quote!(Box::new(MqttPublisher::new(#component, #connect, #topic, #qos, #retain, ctx)?))
}

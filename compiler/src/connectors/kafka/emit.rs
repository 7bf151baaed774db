//! The Kafka clients' constructors, with their properties resolved at start.

use proc_macro2::TokenStream;
use quote::quote;

use super::{IrKafkaSink, IrKafkaSource, PropertyValue};
use crate::ir::{IrSink, IrSource};

/// `vec![("bootstrap.servers", ctx.settings.str("sources.x.brokers")?), ..]`
fn properties(props: &[(String, PropertyValue)]) -> TokenStream {
    let items = props.iter().map(|(name, value)| match value {
        PropertyValue::Fixed(v) => quote!((#name, #v.to_string())),
        PropertyValue::Setting(key) => quote!((#name, ctx.settings.str(#key)?)),
    });
    quote!(vec![#(#items),*])
}

/// `Box::new(KafkaSource::new(..))`, asked for the metadata the record's fields read.
pub fn source(k: &IrKafkaSource, s: &IrSource) -> TokenStream {
    let component = format!("sources.{}", s.name);
    let props = properties(&k.properties);
    let topics = &k.topics;
    let metadata = s.metadata.iter().map(|m| &m.meta);
    quote!(Box::new(KafkaSource::new(#component, #props, &[#(#topics),*], &[#(#metadata),*], ctx)?))
}

/// `Box::new(KafkaProducer::new(..))`.
pub fn sink(k: &IrKafkaSink, s: &IrSink) -> TokenStream {
    let component = format!("sinks.{}", s.name);
    let props = properties(&k.properties);
    let topic = &k.topic;
    quote!(Box::new(KafkaProducer::new(#component, #props, #topic, ctx)?))
}

//! Patterns: keyed sequences of events on event time ("a login, then a purchase within
//! 10 minutes", "a payment with no confirmation within 5 minutes").
//!
//! [`matcher`] holds the rules for one key; [`Patterns`] runs them over every key in event
//! time order as the watermark passes, and is driven by the generated code like a
//! window ([`crate::windows::KeyedOperator`]).

pub mod matcher;
mod operator;
mod queue;

pub use matcher::{Shape as PatternShape, Step as PatternStep};
pub use operator::{Pattern, Patterns};

//! Joins: a stream enriched from reference data ([`LookupFile`]: a file read into a map
//! by key, read again when it changes), and two streams joined within an interval or a
//! window ([`StreamJoin`]). For a lookup, the generated code looks each record's key up
//! and builds the joined record; only the reference data lives here.

mod lookup;
mod streams;

pub use lookup::LookupFile;
pub use streams::{failed_pair, FailedPair, JoinBounds, JoinPair, JoinShape, Sided, StreamJoin};

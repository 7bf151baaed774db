//! Joins: a stream enriched from reference data ([`LookupFile`]: a file read into a map
//! by key, read again when it changes). The generated code looks each record's key up
//! and builds the joined record; only the reference data lives here.

mod lookup;

pub use lookup::LookupFile;

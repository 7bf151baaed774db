//! Disk buffers: a sink's store-and-forward log (being written; see issue 13).

pub mod check;

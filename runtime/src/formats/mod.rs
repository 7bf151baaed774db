//! Formats: raw record bytes <-> typed records.
//!
//! A [`Decoder`] turns one raw record into the source schema's generated struct; an
//! [`Encoder`] appends one typed record (with its `'\n'`) to an output buffer. Both are
//! generic over the record type so decoding and encoding are monomorphic (no dynamic
//! dispatch per record).

mod csv;
mod finite;
mod json;
mod lines;

pub use self::csv::{CsvDecoder, CsvEncoder, CsvRecord, CsvRow, CsvWriter, FromCsvField, ToCsvField};
pub use self::json::{JsonDecoder, JsonEncoder, JsonScan, ScanJson, WriteJson};
pub use self::lines::{LineRecord, LinesDecoder, LinesEncoder};

use crate::errors::{DecodeError, EvalError};

/// Decodes raw records of one source. Decoders and records cross to worker threads
/// (see [`Self::fork`]), hence `Send`.
pub trait Decoder: Send + 'static {
    type Output: Send + 'static;
    /// `Ok(None)` = not a record (a blank line, a CSV header).
    fn decode(&mut self, raw: &[u8]) -> Result<Option<Self::Output>, DecodeError>;
    /// What [`Self::decode`] gives, written over `into`: a decoder that can reuses the
    /// record there (its strings' buffers), so a list of records decoded again and
    /// again stops allocating.
    fn decode_into(&mut self, raw: &[u8], into: &mut Result<Option<Self::Output>, DecodeError>) {
        *into = self.decode(raw);
    }
    /// A copy that decodes the records that follow exactly as this one would, whatever
    /// it is given first: worker threads decode batches with copies, out of order.
    /// `None` (the default) while decoding depends on the records before (a CSV decoder
    /// that has not read its header yet): everything is then decoded on the pipeline
    /// thread, in order.
    fn fork(&self) -> Option<Self>
    where
        Self: Sized,
    {
        None
    }
    /// What the decoder learnt from the stream so far (a CSV header), for a checkpoint:
    /// a source resumed mid-stream does not see it again.
    fn save_state(&self) -> Vec<u8> {
        Vec::new()
    }
    /// Takes back what [`Self::save_state`] returned.
    fn restore_state(&mut self, saved: &[u8]) -> Result<(), String> {
        let _ = saved;
        Ok(())
    }
}

/// Encodes typed records for one output.
pub trait Encoder {
    type Input;
    /// Appends one record, including its trailing `'\n'`. On error the caller discards
    /// whatever was appended.
    fn encode(&mut self, rec: &Self::Input, out: &mut Vec<u8>) -> Result<(), EvalError>;
    /// What the encoder wrote once at the start (a CSV header), for a checkpoint: an
    /// output resumed mid-file must not write it again.
    fn save_state(&self) -> Vec<u8> {
        Vec::new()
    }
    /// Takes back what [`Self::save_state`] returned.
    fn restore_state(&mut self, saved: &[u8]) -> Result<(), String> {
        let _ = saved;
        Ok(())
    }
}

/// True for an empty or whitespace-only record.
fn is_blank(raw: &[u8]) -> bool {
    raw.iter().all(u8::is_ascii_whitespace)
}

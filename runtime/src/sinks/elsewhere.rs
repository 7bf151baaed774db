//! Encoding a window's results on a worker while the window builds the next ones.
//!
//! A hopping window of a minute sliding every second writes about a row per record, and
//! encoding the rows took a fifth of the pipeline thread's time while the worker that
//! decodes the input had time to spare. [`Output::encode_elsewhere`] hands a chunk of
//! rows (moved, not copied) to a worker and [`Output::finish`] takes the bytes back and
//! writes them as [`Output::send`] would have, row by row; the caller builds the next
//! chunk in between. Only an encoder that keeps nothing between records
//! ([`EncodeAnywhere`]) is copied to a worker, so the bytes are the ones it would write
//! itself, in the same order: the chunks are finished in the order they were started,
//! and nothing else is sent to the output meanwhile.
//!
//! A chunk sits in a slot until a worker takes it; when its bytes are wanted first, the
//! pipeline thread takes it back and encodes it itself, so it never waits for a worker
//! still busy decoding.

use super::Output;
use crate::errors::{EvalError, RecordError};
use crate::formats::{Encoder, JsonEncoder, WriteJson};
use crate::windows::Results;
use std::sync::{mpsc, Arc, Mutex};

/// An encoder whose copy writes what it would write itself: it keeps nothing between
/// records (a CSV encoder, which writes its header once, does).
pub trait EncodeAnywhere: Encoder + Clone + Send + 'static
where
    Self::Input: Send + 'static,
{
}

impl<T: serde::Serialize + WriteJson + Send + 'static> EncodeAnywhere for JsonEncoder<T> {}

/// A chunk of rows and what encoding them gave: their bytes, and the rows that failed,
/// by index.
struct Chunk<E: Encoder> {
    encoder: E,
    rows: Results<E::Input>,
    bytes: Vec<u8>,
    failed: Vec<(usize, EvalError)>,
    encoded: bool,
}

impl<E: Encoder> Chunk<E> {
    /// Encodes the rows (again, after a panic cut it short).
    fn encode(&mut self) {
        self.bytes.clear();
        self.failed.clear();
        for (at, (rec, _)) in self.rows.as_slice().iter().enumerate() {
            let start = self.bytes.len();
            if let Err(e) = self.encoder.encode(rec, &mut self.bytes) {
                self.bytes.truncate(start);
                self.failed.push((at, e));
            }
        }
        self.encoded = true;
    }
}

/// A chunk handed to a worker: see [`Output::finish`].
pub struct Encoding<E: Encoder> {
    slot: Arc<Mutex<Option<Chunk<E>>>>,
    done: mpsc::Receiver<Chunk<E>>,
}

impl<E: EncodeAnywhere> Output<E>
where
    E::Input: Send + 'static,
{
    /// True when there is a worker to encode on (not with `--threads 1`).
    pub fn encodes_elsewhere(&self) -> bool {
        self.workers.is_some()
    }

    /// Starts encoding `rows` on a worker; [`Self::finish`] writes the bytes.
    pub fn encode_elsewhere(&mut self, rows: Results<E::Input>) -> Encoding<E> {
        let chunk = Chunk {
            encoder: self.encoder.clone(),
            rows,
            bytes: std::mem::take(&mut self.spare),
            failed: Vec::new(),
            encoded: false,
        };
        let slot = Arc::new(Mutex::new(Some(chunk)));
        let (sent, done) = mpsc::channel();
        if let Some(workers) = &self.workers {
            let slot = Arc::clone(&slot);
            workers.run(Box::new(move || {
                let taken = slot.lock().map(|mut slot| slot.take());
                if let Ok(Some(mut chunk)) = taken {
                    // An encoder that panics does so where `send` would have: the chunk
                    // goes back unencoded, to be encoded on the pipeline thread.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| chunk.encode()));
                    let _ = sent.send(chunk);
                }
            }));
        }
        Encoding { slot, done }
    }

    /// Waits for `encoding` (or encodes it here, if no worker has taken it), writes its
    /// bytes as [`Self::send`] would have written its rows, and hands back the rows with
    /// the errors of those that failed, in order.
    pub fn finish(&mut self, encoding: Encoding<E>) -> (Results<E::Input>, Vec<(usize, RecordError)>) {
        let waiting = encoding.slot.lock().ok().and_then(|mut slot| slot.take());
        let mut chunk = match waiting {
            Some(chunk) => chunk,
            None => crate::workers::recv_soon(&encoding.done).expect("a worker sends back the chunk it took"),
        };
        if !chunk.encoded {
            chunk.encode();
        }
        let rows = chunk.rows.len() as u64;
        self.offered += rows;
        self.pending += rows - chunk.failed.len() as u64;
        if self.buf.is_empty() {
            std::mem::swap(&mut self.buf, &mut chunk.bytes);
        } else {
            self.buf.extend_from_slice(&chunk.bytes);
        }
        chunk.bytes.clear();
        self.spare = chunk.bytes;
        self.write_if_full();
        let failed = chunk
            .failed
            .into_iter()
            .map(|(at, e)| (at, RecordError::new(self.name, e)))
            .collect();
        (chunk.rows, failed)
    }
}

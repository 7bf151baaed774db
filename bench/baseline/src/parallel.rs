//! The filter_map and windowed jobs on several threads, as a careful engineer would
//! write them with std alone: the most this machine can do, for rill's default thread
//! count to be measured against.
//!
//! The main thread reads the input in chunks of whole lines (`CHUNK` bytes and the
//! rest of the line the read stopped in) and queues them, numbered, for the worker
//! threads; a worker turns a chunk into its result (filter_map: the encoded output
//! lines; windowed: the decoded readings), and the main thread takes the results in
//! input order: it writes them (filter_map), or runs the windows over them (windowed:
//! the watermark is judged in input order, so that part stays on one thread). At most
//! `IN_FLIGHT_PER_WORKER` chunks per worker are read and not yet taken; their buffers
//! and results go round again.
//!
//! The per-line code is the single-threaded programs' (`LineCounts::decode`,
//! `filter_map_line`, `Windows`), so the outputs are byte-identical.

use super::{filter_map_line, report_filter_map, LineCounts, WindowReading, Windows};
use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufWriter, Read, Write};
use std::num::NonZeroUsize;
use std::sync::{mpsc, Mutex};

/// Bytes read per chunk: big enough that a chunk's hand-offs cost nothing next to its
/// parsing, small enough that the chunks in flight stay a few MiB.
const CHUNK: usize = 1 << 20;
/// Chunks read ahead per worker: one being worked on, one waiting, so that a worker
/// finishing early never waits for the main thread.
const IN_FLIGHT_PER_WORKER: usize = 2;

/// `baseline run-mt`: filter_map, the chunks parsed, filtered and encoded by the workers.
pub fn run(input: &str, output: &str, threads: NonZeroUsize) -> std::io::Result<()> {
    let mut out = File::create(output)?; // chunk-sized writes: no BufWriter
    let (mut lines, mut written) = (LineCounts::default(), 0u64);
    in_order(input, threads, encode_chunk, |chunk: &mut Encoded| {
        out.write_all(&chunk.bytes)?;
        lines.add(&chunk.lines);
        written += chunk.written;
        Ok(())
    })?;
    report_filter_map(&lines, written);
    Ok(())
}

/// A chunk's filter_map output.
#[derive(Default)]
struct Encoded {
    bytes: Vec<u8>,
    lines: LineCounts,
    written: u64,
}

fn encode_chunk(chunk: &[u8], out: &mut Encoded) {
    out.bytes.clear();
    (out.lines, out.written) = (LineCounts::default(), 0);
    for line in lines(chunk) {
        let passed = filter_map_line(line, &mut out.lines, &mut out.bytes).expect("writing to a Vec cannot fail");
        out.written += u64::from(passed);
    }
}

/// `baseline window-mt`: the windowed job, the chunks decoded by the workers, the
/// windows run on the main thread.
pub fn window(input: &str, output: &str, threads: NonZeroUsize) -> std::io::Result<()> {
    let mut writer = BufWriter::with_capacity(1 << 16, File::create(output)?);
    let mut windows = Windows::new();
    let mut lines = LineCounts::default();
    in_order(input, threads, decode_chunk, |chunk: &mut Decoded| {
        lines.add(&chunk.lines);
        for r in &chunk.readings {
            let device_id = &chunk.devices[r.device.0..r.device.1];
            windows.add(&mut writer, Cow::Borrowed(device_id), r.ts, r.temperature)?;
        }
        Ok(())
    })?;
    windows.finish(&mut writer)?;
    writer.flush()?;
    windows.report(&lines);
    Ok(())
}

/// A chunk's valid readings, in input order, their device ids side by side in one
/// string (one allocation per chunk, reused, rather than one per reading).
#[derive(Default)]
struct Decoded {
    readings: Vec<DecodedReading>,
    devices: String,
    lines: LineCounts,
}

struct DecodedReading {
    /// Its device id's range in `Decoded::devices`.
    device: (usize, usize),
    ts: i64,
    temperature: f64,
}

fn decode_chunk(chunk: &[u8], out: &mut Decoded) {
    out.readings.clear();
    out.devices.clear();
    out.lines = LineCounts::default();
    for line in lines(chunk) {
        if let Some(r) = out.lines.decode::<WindowReading>(line) {
            let start = out.devices.len();
            out.devices.push_str(&r.device_id);
            out.readings.push(DecodedReading { device: (start, out.devices.len()), ts: r.ts, temperature: r.temperature });
        }
    }
}

/// The lines of a chunk, each with its '\n' (the input's last one may have none).
fn lines(mut chunk: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let line = chunk;
        // On a slice, `skip_until` finds the '\n' with std's memchr (as `read_until`
        // does for the single-threaded programs) and copies nothing.
        let len = chunk.skip_until(b'\n').ok()?;
        (len > 0).then(|| &line[..len])
    })
}

/// A chunk of the input on its way to a worker, and its result on the way back.
struct Job<T> {
    seq: u64,
    input: Vec<u8>,
    result: T,
}

/// Reads `input` in chunks of whole lines, has `work` turn each into a `T` on `threads`
/// worker threads and hands the results to `consume` in input order. The `T`s are
/// reused: `work` is given one of an earlier chunk, and resets what it fills.
fn in_order<T, W, C>(input: &str, threads: NonZeroUsize, work: W, mut consume: C) -> std::io::Result<()>
where
    T: Default + Send,
    W: Fn(&[u8], &mut T) + Sync,
    C: FnMut(&mut T) -> std::io::Result<()>,
{
    let mut reader = Chunks::new(File::open(input)?);
    let in_flight = threads.get() * IN_FLIGHT_PER_WORKER;
    let (job_tx, job_rx) = mpsc::channel::<Job<T>>();
    let (done_tx, done_rx) = mpsc::channel::<Job<T>>();
    let job_rx = Mutex::new(job_rx);
    std::thread::scope(|scope| {
        // Moved in, so that it is dropped when this returns, on an error too: that
        // ends the workers, which the scope waits for.
        let job_tx = job_tx;
        for _ in 0..threads.get() {
            let (job_rx, done_tx, work) = (&job_rx, done_tx.clone(), &work);
            scope.spawn(move || {
                // The lock is held while waiting for a job, not while working on it.
                while let Ok(mut job) = job_rx.lock().expect("a worker panicked").recv() {
                    work(&job.input, &mut job.result);
                    if done_tx.send(job).is_err() {
                        return; // the main thread stopped on an error
                    }
                }
            });
        }
        drop(done_tx);
        // Done chunks by `seq % in_flight`, until their turn; buffers free for reading.
        let mut done: Vec<Option<Job<T>>> = (0..in_flight).map(|_| None).collect();
        let mut free: Vec<(Vec<u8>, T)> = Vec::new();
        let (mut next_read, mut next_out) = (0u64, 0u64);
        loop {
            while !reader.at_end() && next_read - next_out < in_flight as u64 {
                let (mut input, result) = free.pop().unwrap_or_default();
                if !reader.next(&mut input)? {
                    break;
                }
                job_tx.send(Job { seq: next_read, input, result }).expect("the workers run until the queue closes");
                next_read += 1;
            }
            if next_out == next_read {
                return Ok(());
            }
            let job = done_rx.recv().expect("a worker stopped with chunks in flight");
            let slot = (job.seq % in_flight as u64) as usize;
            done[slot] = Some(job);
            // Hand over every chunk that is now next in line.
            while let Some(mut job) = done[(next_out % in_flight as u64) as usize].take() {
                consume(&mut job.result)?;
                free.push((job.input, job.result));
                next_out += 1;
            }
        }
    })
}

/// The input in chunks of whole lines: the bytes after a chunk's last '\n' start the
/// next one.
struct Chunks {
    file: File,
    tail: Vec<u8>,
    at_end: bool,
}

impl Chunks {
    fn new(file: File) -> Self {
        Chunks { file, tail: Vec::new(), at_end: false }
    }

    fn at_end(&self) -> bool {
        self.at_end && self.tail.is_empty()
    }

    /// Fills `buf` with the next chunk; false at the end of the input.
    fn next(&mut self, buf: &mut Vec<u8>) -> std::io::Result<bool> {
        buf.clear();
        buf.append(&mut self.tail);
        while !self.at_end {
            let read_from = buf.len();
            buf.reserve(CHUNK);
            // `take` + `read_to_end`: fills the spare capacity without zeroing it first.
            let n = (&mut self.file).take(CHUNK as u64).read_to_end(buf)?;
            self.at_end = n < CHUNK;
            // The last '\n' of what was read: the tail starts after it (a line longer
            // than a chunk has none yet: read on).
            if let Some(last) = buf[read_from..].iter().rposition(|&b| b == b'\n') {
                self.tail.extend_from_slice(&buf[read_from + last + 1..]);
                buf.truncate(read_from + last + 1);
                break;
            }
        }
        Ok(!buf.is_empty())
    }
}

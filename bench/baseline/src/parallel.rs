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
/// parsing (~2,700 lines), small enough that the chunks in flight stay a few MiB (1 MiB
/// was no faster).
const CHUNK: usize = 256 << 10;
/// Chunks in flight (read, not yet consumed) per worker: enough that the workers always
/// find one queued while the main thread is busy with a chunk's results. On 2 cores,
/// window-mt took 0.88 s with 2, 0.80 s with 4 and 8; run-mt the same with all three.
const IN_FLIGHT_PER_WORKER: usize = 4;

/// `baseline run-mt`: filter_map, the chunks parsed, filtered and encoded by the workers.
pub fn run(input: &str, output: &str, threads: NonZeroUsize) -> std::io::Result<()> {
    let input = Chunks::new(File::open(input)?, CHUNK);
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
    let input = Chunks::new(File::open(input)?, CHUNK);
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
            out.readings.push(DecodedReading {
                device: (start, out.devices.len()),
                ts: r.ts,
                temperature: r.temperature,
            });
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

/// Has `work` turn each chunk of `input` into a `T` on `threads` worker threads and
/// hands the results to `consume` in input order. The `T`s are reused: `work` is given
/// one of an earlier chunk, and resets what it fills.
fn in_order<R, T, W, C>(mut input: Chunks<R>, threads: NonZeroUsize, work: W, mut consume: C) -> std::io::Result<()>
where
    R: Read,
    T: Default + Send,
    W: Fn(&[u8], &mut T) + Sync,
    C: FnMut(&mut T) -> std::io::Result<()>,
{
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
            scope.spawn(move || loop {
                // The lock is held while waiting for a job, not while working on it (in
                // a `while let`, the guard would live through the loop's body).
                let job = job_rx.lock().expect("a worker panicked").recv();
                let Ok(mut job) = job else { return };
                work(&job.input, &mut job.result);
                if done_tx.send(job).is_err() {
                    return; // the main thread stopped on an error
                }
            });
        }
        drop(done_tx);
        // Done chunks by `seq % in_flight`, until their turn; buffers free for reading.
        let mut done: Vec<Option<Job<T>>> = (0..in_flight).map(|_| None).collect();
        let mut free: Vec<(Vec<u8>, T)> = Vec::new();
        let (mut next_read, mut next_out) = (0u64, 0u64);
        loop {
            while !input.at_end() && next_read - next_out < in_flight as u64 {
                let (mut buf, result) = free.pop().unwrap_or_default();
                if !input.next(&mut buf)? {
                    break;
                }
                let job = Job {
                    seq: next_read,
                    input: buf,
                    result,
                };
                job_tx.send(job).expect("the workers run until the queue closes");
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

/// An input in chunks of whole lines, read `size` bytes at a time: the bytes after a
/// chunk's last '\n' start the next one.
struct Chunks<R> {
    input: R,
    size: usize,
    tail: Vec<u8>,
    at_end: bool,
}

impl<R: Read> Chunks<R> {
    fn new(input: R, size: usize) -> Self {
        Chunks {
            input,
            size,
            tail: Vec::new(),
            at_end: false,
        }
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
            buf.reserve(self.size);
            // `take` + `read_to_end`: fills the spare capacity without zeroing it first.
            let n = (&mut self.input).take(self.size as u64).read_to_end(buf)?;
            self.at_end = n < self.size;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Readings for both jobs, with what the programs must get through alike: blank and
    /// invalid lines, CRLF, an escaped device id, one line longer than the small chunks
    /// below, late readings, and a last line without its '\n'.
    fn input() -> Vec<u8> {
        let mut s = String::new();
        for i in 0..400i64 {
            let ts = 1_700_000_000_000 + i * 97 - (i % 7) * 1_500 - if i % 50 == 3 { 9_000 } else { 0 };
            let t = (i * 37) % 5_001;
            let status = if i % 5 == 0 { "error" } else { "ok" };
            s += &format!(
                "{{\"device_id\":\"dev-{}\",\"ts\":{ts},\"temperature\":{}.{:02},\"humidity\":null,\"status\":\"{status}\"}}\n",
                i % 13,
                t / 100,
                t % 100
            );
            match i % 41 {
                0 => s += "\n   \n",
                1 => s += "{not json}\n",
                2 => s += "{\"device_id\":\"dev-\\u0031\",\"ts\":1700000000500,\"temperature\":30.5,\"humidity\":1,\"status\":\"ok\"}\r\n",
                3 => s += &format!("{{\"device_id\":\"{}\",\"ts\":1700000001000,\"temperature\":40,\"humidity\":null,\"status\":\"ok\"}}\n", "d".repeat(300)),
                _ => {}
            }
        }
        s += "{\"device_id\":\"dev-last\",\"ts\":1700000039999,\"temperature\":26.5,\"humidity\":null,\"status\":\"ok\"}";
        s.into_bytes()
    }

    /// The lines as the single-threaded programs see them (`read_until(b'\n')`).
    fn reference_lines(input: &[u8]) -> impl Iterator<Item = &[u8]> {
        input.split_inclusive(|&b| b == b'\n')
    }

    fn sizes() -> impl Iterator<Item = (usize, NonZeroUsize)> {
        [(1, 1), (7, 3), (64, 2), (200, 8), (1 << 20, 2)]
            .map(|(size, threads)| (size, NonZeroUsize::new(threads).unwrap()))
            .into_iter()
    }

    #[test]
    fn chunks_are_the_input_cut_after_a_newline() {
        let input = input();
        for size in [1, 2, 7, 64, 1000, 1 << 20] {
            let mut chunks = Chunks::new(&input[..], size);
            let (mut all, mut buf) = (Vec::new(), Vec::new());
            while chunks.next(&mut buf).unwrap() {
                assert!(!buf.is_empty());
                if all.len() + buf.len() < input.len() {
                    assert_eq!(buf.last(), Some(&b'\n'), "size {size}");
                }
                all.extend_from_slice(&buf);
            }
            assert!(chunks.at_end());
            assert_eq!(all, input, "size {size}");
        }
    }

    #[test]
    fn lines_are_read_untils() {
        let input = input();
        assert!(lines(&input).eq(reference_lines(&input)));
        assert_eq!(lines(b"").count(), 0);
    }

    #[test]
    fn filter_map_output_is_the_single_threaded_one() {
        let input = input();
        let (mut want, mut want_lines, mut want_written) = (Vec::new(), LineCounts::default(), 0);
        for line in reference_lines(&input) {
            want_written += u64::from(filter_map_line(line, &mut want_lines, &mut want).unwrap());
        }
        assert!(want_written > 100 && want_lines.invalid > 0);
        for (size, threads) in sizes() {
            let (mut got, mut got_lines, mut got_written) = (Vec::new(), LineCounts::default(), 0);
            in_order(
                Chunks::new(&input[..], size),
                threads,
                encode_chunk,
                |chunk: &mut Encoded| {
                    got.extend_from_slice(&chunk.bytes);
                    got_lines.add(&chunk.lines);
                    got_written += chunk.written;
                    Ok(())
                },
            )
            .unwrap();
            assert!(got == want, "size {size}, {threads} threads");
            assert_eq!(
                (got_lines.read, got_lines.invalid, got_written),
                (want_lines.read, want_lines.invalid, want_written)
            );
        }
    }

    #[test]
    fn window_output_is_the_single_threaded_one() {
        let input = input();
        let (mut want, mut want_windows, mut want_lines) = (Vec::new(), Windows::new(), LineCounts::default());
        for line in reference_lines(&input) {
            if let Some(r) = want_lines.decode::<WindowReading>(line) {
                want_windows.add(&mut want, r.device_id, r.ts, r.temperature).unwrap();
            }
        }
        want_windows.finish(&mut want).unwrap();
        assert!(want_windows.late > 0 && want_windows.written > 10);
        for (size, threads) in sizes() {
            let (mut got, mut windows, mut got_lines) = (Vec::new(), Windows::new(), LineCounts::default());
            in_order(
                Chunks::new(&input[..], size),
                threads,
                decode_chunk,
                |chunk: &mut Decoded| {
                    got_lines.add(&chunk.lines);
                    for r in &chunk.readings {
                        let device_id = &chunk.devices[r.device.0..r.device.1];
                        windows.add(&mut got, Cow::Borrowed(device_id), r.ts, r.temperature)?;
                    }
                    Ok(())
                },
            )
            .unwrap();
            windows.finish(&mut got).unwrap();
            assert!(got == want, "size {size}, {threads} threads");
            assert_eq!(
                (got_lines.read, got_lines.invalid, windows.late),
                (want_lines.read, want_lines.invalid, want_windows.late)
            );
        }
    }
}

//! Subscribes to a topic (QoS 1, a clean session) and counts its messages: times a job
//! from outside. Once subscribed it creates the `--ready` file, if given. It stops:
//!
//! - with `--expect N`: once N messages are in and then none for `--idle` seconds
//!   (default 0.5; so one more than expected is seen), or after `--timeout` seconds
//!   (default 600), or as soon as process `--pid` has exited (its remaining messages
//!   are waited for `--idle` seconds);
//! - without: once no message arrived for `--idle` seconds after the first.
//!
//! It prints `count=<n> first=<s> done=<s> last=<s>`: the Unix times in seconds
//! (comparable with `date +%s.%N`) at which the first, the N-th (the last without
//! `--expect`) and the last message arrived, and exits 0 when the count is the one
//! expected. `--dump FILE` writes every payload to FILE, one per line.

use rill_bench_mqtt::{epoch_secs, options, Args};
use rumqttc::{Client, Event, Incoming, QoS, RecvTimeoutError};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const USAGE: &str =
    "--broker HOST:PORT --topic T [--expect N] [--idle SECS] [--pid PID] [--timeout SECS] [--ready FILE] [--dump FILE]";

/// Requests queued: only the automatic PUBACKs.
const REQUESTS: u16 = 1000;

fn main() -> ExitCode {
    let args = match Args::parse("mqtt-count", USAGE, &[]) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let parsed = (|| {
        Ok::<_, ExitCode>((
            args.req("broker")?,
            args.req("topic")?,
            args.opt("expect")
                .map(|_| args.num::<u64>("expect", None))
                .transpose()?,
            Duration::from_secs_f64(args.num::<f64>("idle", Some(0.5))?),
            args.num::<u32>("pid", Some(0))?,
            Duration::from_secs(args.num::<u64>("timeout", Some(600))?),
        ))
    })();
    let (broker, topic, expect, idle, pid, timeout) = match parsed {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut dump = match args.opt("dump").map(File::create).transpose() {
        Ok(f) => f.map(BufWriter::new),
        Err(e) => {
            eprintln!("mqtt-count: --dump: {e}");
            return ExitCode::FAILURE;
        }
    };

    let client_id = format!("mqtt-count-{}", std::process::id());
    let (client, mut connection) = Client::new(options(broker, &client_id, true, false, REQUESTS), REQUESTS.into());
    if let Err(e) = client.subscribe(topic, QoS::AtLeastOnce) {
        eprintln!("mqtt-count: subscribe: {e}");
        return ExitCode::FAILURE;
    }
    let started = Instant::now();
    let (mut count, mut first, mut done, mut last) = (0u64, 0.0, 0.0, 0.0);
    let mut last_seen: Option<Instant> = None;
    let mut job_gone = false;
    let failure = loop {
        if started.elapsed() > timeout {
            break Some(format!("timed out after {} s", timeout.as_secs()));
        }
        let quiet = last_seen.is_some_and(|t| t.elapsed() >= idle);
        let enough = expect.is_none_or(|n| count >= n);
        if quiet && (enough || job_gone) {
            break None;
        }
        if pid != 0 && !job_gone && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            job_gone = true;
            last_seen = Some(Instant::now()); // what is still on the way, for `idle`
        }
        match connection.recv_timeout(Duration::from_millis(20)) {
            Ok(Ok(Event::Incoming(Incoming::Publish(p)))) => {
                let now = epoch_secs();
                if count == 0 {
                    first = now;
                }
                count += 1;
                last = now;
                if Some(count) == expect || expect.is_none() {
                    done = now;
                }
                last_seen = Some(Instant::now());
                if let Some(out) = &mut dump {
                    if out.write_all(&p.payload).and_then(|()| out.write_all(b"\n")).is_err() {
                        break Some("cannot write the dump".into());
                    }
                }
            }
            Ok(Ok(Event::Incoming(Incoming::SubAck(_)))) => {
                if let Some(path) = args.opt("ready") {
                    if let Err(e) = File::create(path) {
                        break Some(format!("--ready {path}: {e}"));
                    }
                }
            }
            Ok(Ok(_)) | Err(RecvTimeoutError::Timeout) => {}
            Ok(Err(e)) => break Some(format!("connection: {e}")),
            Err(RecvTimeoutError::Disconnected) => break Some("connection closed".into()),
        }
    };
    if let Some(out) = &mut dump {
        let _ = out.flush();
    }
    println!("count={count} first={first:.6} done={done:.6} last={last:.6}");
    if let Some(why) = failure {
        eprintln!("mqtt-count: {why} ({count} messages)");
        return ExitCode::FAILURE;
    }
    match expect {
        Some(n) if n != count => {
            eprintln!(
                "mqtt-count: {count} messages, expected {n}{}",
                if job_gone { " (the job exited)" } else { "" }
            );
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    }
}

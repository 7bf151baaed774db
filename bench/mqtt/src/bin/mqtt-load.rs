//! Publishes `--count` readings (bench/mqtt's generator) to `bench/in` at QoS 1, as fast
//! as the broker takes them (`--inflight` unacknowledged at once, default 1000), and
//! waits for every PUBACK. Prints
//! `mqtt-load: published=N expect_out=K in S s (R messages/s)`: K of them pass the filter.
//!
//! `--lines FILE` writes the same readings to FILE, one per line, instead (for
//! `mosquitto_pub -l`), and prints the same line.

use rill_bench_mqtt::{options, reading, Args, SplitMix, INPUT_TOPIC, SEED};
use rumqttc::{Client, Event, Incoming, QoS};
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "(--broker HOST:PORT [--inflight N] | --lines FILE) --count N";

fn main() -> ExitCode {
    let args = match Args::parse("mqtt-load", USAGE, &[]) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let (count, inflight) = match (args.num::<u64>("count", None), args.num::<u16>("inflight", Some(1000))) {
        (Ok(c), Ok(i)) => (c, i),
        (Err(code), _) | (_, Err(code)) => return code,
    };
    let started = Instant::now();
    let result = match args.opt("lines") {
        Some(path) => lines(path, count),
        None => match args.req("broker") {
            Ok(broker) => publish(broker, count, inflight),
            Err(code) => return code,
        },
    };
    match result {
        Ok(expect) => {
            let secs = started.elapsed().as_secs_f64();
            println!(
                "mqtt-load: published={count} expect_out={expect} in {secs:.2} s ({:.0} messages/s)",
                count as f64 / secs
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mqtt-load: {e}");
            ExitCode::FAILURE
        }
    }
}

fn lines(path: &str, count: u64) -> Result<u64, String> {
    let file = std::fs::File::create(path).map_err(|e| format!("{path}: {e}"))?;
    let mut out = std::io::BufWriter::new(file);
    let (mut rng, mut buf, mut expect) = (SplitMix(SEED), Vec::with_capacity(256), 0);
    for i in 0..count {
        expect += u64::from(reading(&mut rng, i, &mut buf));
        buf.push(b'\n');
        out.write_all(&buf).map_err(|e| format!("{path}: {e}"))?;
    }
    out.flush().map_err(|e| format!("{path}: {e}"))?;
    Ok(expect)
}

fn publish(broker: &str, count: u64, inflight: u16) -> Result<u64, String> {
    let client_id = format!("mqtt-load-{}", std::process::id());
    let (client, mut connection) = Client::new(
        options(broker, &client_id, true, false, inflight),
        usize::from(inflight),
    );
    // The connection on a thread of its own, counting PUBACKs until all are in.
    let acks = std::thread::spawn(move || -> Result<(), String> {
        let mut acked = 0;
        while acked < count {
            match connection.recv() {
                Ok(Ok(Event::Incoming(Incoming::PubAck(_)))) => acked += 1,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(format!("connection: {e}")),
                Err(_) => return Err("connection closed".into()),
            }
        }
        Ok(())
    });
    let (mut rng, mut buf, mut expect) = (SplitMix(SEED), Vec::with_capacity(256), 0);
    for i in 0..count {
        expect += u64::from(reading(&mut rng, i, &mut buf));
        // Waits while `inflight` requests are queued.
        if client.publish(INPUT_TOPIC, QoS::AtLeastOnce, false, &buf[..]).is_err() {
            break; // the connection thread failed: its error is reported below
        }
    }
    acks.join()
        .map_err(|_| "the connection thread panicked".to_string())??;
    let _ = client.disconnect();
    Ok(expect)
}

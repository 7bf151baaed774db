//! A bounded load generator for HTTP ingest: `--clients` threads each POST
//! `--requests` bodies of `--records` JSON lines (`{"id","value","device"}`, ids unique)
//! to `127.0.0.1:--port/ingest`, one connection per request, sending a request again
//! after a `503` (5 ms later). Every body is built before the clock starts, so the time
//! measured is the server's and the sending's, not the formatting of the load. Prints the
//! records accepted, the seconds from the first request to the last `202`, and records/s.
//!
//!   http-load --port PORT --clients 8 --requests 50 --records 1000

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

fn arg(args: &[String], name: &str) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} N"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (port, clients, requests, records) = (
        arg(&args, "--port"),
        arg(&args, "--clients"),
        arg(&args, "--requests"),
        arg(&args, "--records"),
    );
    let ready = Arc::new(Barrier::new(clients + 1));
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let ready = ready.clone();
            std::thread::spawn(move || {
                let bodies: Vec<String> = (0..requests)
                    .map(|r| {
                        let first = (c * requests + r) * records;
                        (first..first + records)
                            .map(|i| {
                                format!(
                                    "{{\"id\":{i},\"value\":{},\"device\":\"dev-{}\"}}\n",
                                    (i % 100) as f64 / 100.0,
                                    i % 50
                                )
                            })
                            .collect()
                    })
                    .collect();
                ready.wait();
                let mut refused = 0u64;
                for body in &bodies {
                    while post(port, body.as_bytes()) == 503 {
                        refused += 1;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                refused
            })
        })
        .collect();
    ready.wait();
    let started = Instant::now();
    let refused: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let secs = started.elapsed().as_secs_f64();
    let total = clients * requests * records;
    println!(
        "records={total} secs={secs:.3} records_per_s={:.0} refused_503={refused}",
        total as f64 / secs
    );
}

/// One request; its status (panics on anything but 202 and 503).
fn post(port: usize, body: &[u8]) -> u16 {
    let mut stream = TcpStream::connect(("127.0.0.1", port as u16)).expect("connect");
    let head = format!(
        "POST /ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("send");
    stream.write_all(body).expect("send");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    assert!(status == 202 || status == 503, "unexpected answer: {text}");
    status
}

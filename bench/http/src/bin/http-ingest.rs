//! The baseline of bench/http_ingest.yaml, written by hand: an ingest server taking
//! `POST /ingest` bodies of JSON lines, keeping the readings with `value > 0.5`, writing
//! them as JSON lines to stdout, and answering `202` once they are written and flushed:
//! the generated binary's promise. Four threads read requests, as the runtime's do, and
//! each decodes, filters and encodes its own request; only writing holds the lock.
//!
//!   http-ingest --port PORT

use serde::{Deserialize, Serialize};
use std::io::{BufWriter, Read, Stdout, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

#[derive(Deserialize, Serialize)]
struct Reading {
    id: i64,
    value: f64,
    device: String,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port = args
        .iter()
        .position(|a| a == "--port")
        .and_then(|i| args.get(i + 1))
        .expect("--port PORT");
    let listener = TcpListener::bind(format!("127.0.0.1:{port}")).expect("listen");
    let out = Arc::new(Mutex::new(BufWriter::with_capacity(1 << 16, std::io::stdout())));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let listener = listener.try_clone().expect("listener");
            let out = out.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    serve(stream, &out);
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

fn serve(mut stream: TcpStream, out: &Mutex<BufWriter<Stdout>>) {
    let mut head = vec![0u8; 16 * 1024];
    let mut filled = 0;
    let (head_len, length) = loop {
        match stream.read(&mut head[filled..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => filled += n,
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(len)) = request.parse(&head[..filled]) {
            let length = request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (len, length);
        }
    };
    let mut body = head[head_len..filled].to_vec();
    let already = body.len();
    body.resize(length, 0);
    if stream.read_exact(&mut body[already..]).is_err() {
        return;
    }
    // Decoded, filtered and encoded outside the lock, so the four threads do that work
    // at once; only the write and the flush are serialized.
    let mut kept = Vec::with_capacity(body.len());
    for record in body.split(|b| *b == b'\n').filter(|l| !l.trim_ascii().is_empty()) {
        let Ok(reading) = serde_json::from_slice::<Reading>(record) else {
            continue;
        };
        if reading.value > 0.5 {
            serde_json::to_writer(&mut kept, &reading).unwrap();
            kept.push(b'\n');
        }
    }
    {
        let mut out = out.lock().unwrap();
        out.write_all(&kept).unwrap();
        out.flush().unwrap();
    }
    let answer = b"HTTP/1.1 202 Accepted\r\nContent-Length: 9\r\nConnection: close\r\n\r\naccepted\n";
    let _ = stream.write_all(answer);
}

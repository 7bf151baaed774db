//! A proxy between Pulsar clients built on the `pulsar` crate and pulsar-lite, for the
//! tests (tests/support/pulsar.rs) and the benchmark (bench/pulsar): pulsar-lite sends
//! a MESSAGE frame without the optional magic number and checksum, which the Pulsar
//! protocol allows and Apache brokers always send, and the `pulsar` crate 6.9 cannot read
//! a frame without them. The proxy adds them (CRC-32C, as an Apache broker computes
//! it), and in the broker's other answers puts its own address where the broker names
//! itself (a topic lookup answers with the broker's URL, which the client would then
//! connect to directly; the ports must have the same number of digits, so no length
//! changes). Every other byte passes unchanged. While the broker is down the proxy
//! closes each connection it accepts.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};

/// Accepts connections on `listener` and joins each to the broker on `broker_port`,
/// adding the magic number and checksum to MESSAGE frames that lack them.
pub fn checksum_proxy(listener: TcpListener, broker_port: u16, stop: &AtomicBool) {
    let proxy_port = listener.local_addr().unwrap().port();
    let rename = (
        format!("127.0.0.1:{broker_port}").into_bytes(),
        format!("127.0.0.1:{proxy_port}").into_bytes(),
    );
    for client in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let Ok(client) = client else { continue };
        let Ok(broker) = TcpStream::connect(("127.0.0.1", broker_port)) else {
            // The broker is away: so is the proxy, to the client.
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        let _ = (client.set_nodelay(true), broker.set_nodelay(true));
        let (mut up_from, mut up_to) = (client.try_clone().unwrap(), broker.try_clone().unwrap());
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut up_from, &mut up_to);
            let _ = (up_to.shutdown(Shutdown::Both), up_from.shutdown(Shutdown::Both));
        });
        let rename = rename.clone();
        std::thread::spawn(move || {
            let (mut from, mut to) = (broker, client);
            let _ = pass_frames(&mut from, &mut to, &rename);
            let _ = (to.shutdown(Shutdown::Both), from.shutdown(Shutdown::Both));
        });
    }
}

/// Copies frames from the broker to the client, completing payload frames and renaming
/// the broker's address (`rename`: what to find, what to put, of one length) in the rest.
fn pass_frames(from: &mut TcpStream, to: &mut TcpStream, rename: &(Vec<u8>, Vec<u8>)) -> std::io::Result<()> {
    let mut reader = std::io::BufReader::with_capacity(1 << 16, from.try_clone()?);
    let mut writer = std::io::BufWriter::with_capacity(1 << 16, to.try_clone()?);
    let mut frame = Vec::new();
    loop {
        let mut size = [0u8; 4];
        reader.read_exact(&mut size)?;
        let total = u32::from_be_bytes(size) as usize;
        frame.resize(total, 0);
        reader.read_exact(&mut frame)?;
        let command = 4 + u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        if frame.len() == command {
            let (find, put) = rename;
            let mut at = 0;
            while let Some(found) = frame[at..].windows(find.len()).position(|w| w == &find[..]) {
                frame[at + found..at + found + put.len()].copy_from_slice(put);
                at += found + put.len();
            }
        }
        let rest = &frame[command..];
        if rest.is_empty() || rest.starts_with(&[0x0e, 0x01]) {
            writer.write_all(&size)?;
            writer.write_all(&frame)?;
        } else {
            writer.write_all(&(total as u32 + 6).to_be_bytes())?;
            writer.write_all(&frame[..command])?;
            writer.write_all(&[0x0e, 0x01])?;
            writer.write_all(&crc32c(rest).to_be_bytes())?;
            writer.write_all(rest)?;
        }
        // Flush once nothing more is waiting.
        if reader.buffer().is_empty() {
            writer.flush()?;
        }
    }
}

/// CRC-32C (Castagnoli), as Pulsar checksums a message's metadata and payload.
pub fn crc32c(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut table = [0u32; 256];
        for (i, entry) in table.iter_mut().enumerate() {
            let mut crc = i as u32;
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0x82F6_3B78
                } else {
                    crc >> 1
                };
            }
            *entry = crc;
        }
        table
    });
    !data.iter().fold(!0u32, |crc, &b| {
        table[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8)
    })
}

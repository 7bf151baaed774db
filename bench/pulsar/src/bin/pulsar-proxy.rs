//! `pulsar-proxy --broker-port P --port Q`: listens on 127.0.0.1:Q and joins each
//! connection to pulsar-lite on 127.0.0.1:P, completing the MESSAGE frames the `pulsar`
//! crate cannot read (tests/support/pulsar_proxy.rs). The two ports must have the same
//! number of digits (the broker's address is rewritten in place). Runs until killed;
//! while the broker is down it closes each connection it accepts, so the broker may be
//! restarted behind it.

use rill_bench_pulsar::{proxy::checksum_proxy, Args};
use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

const USAGE: &str = "--broker-port P --port Q (two ports of one length)";

fn main() -> ExitCode {
    let args = match Args::parse("pulsar-proxy", USAGE, &[]) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let (broker, port) = match (args.num::<u16>("broker-port", None), args.num::<u16>("port", None)) {
        (Ok(b), Ok(p)) => (b, p),
        (Err(code), _) | (_, Err(code)) => return code,
    };
    if broker.to_string().len() != port.to_string().len() {
        eprintln!("pulsar-proxy: the ports {broker} and {port} differ in length\nusage: pulsar-proxy {USAGE}");
        return ExitCode::from(2);
    }
    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("pulsar-proxy: cannot listen on 127.0.0.1:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("pulsar-proxy: 127.0.0.1:{port} -> 127.0.0.1:{broker}");
    checksum_proxy(listener, broker, &AtomicBool::new(false));
    ExitCode::SUCCESS
}

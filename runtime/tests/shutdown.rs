//! The shutdown timeout: after SIGTERM, a pipeline whose outputs never finish closing
//! (a broker that stopped answering) exits anyway once `--shutdown-timeout` has passed,
//! with status 1 and a log line that says so, instead of hanging until systemd kills it.
//!
//! The pipeline runs in a child process (this test binary started again with
//! `RILL_SHUTDOWN_CHILD` set), because the timeout ends the whole process.

use rill_runtime::codegen::*;
use rill_runtime::driver::run_with_args;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

static INFO: PipelineInfo = PipelineInfo {
    name: "stuck",
    spec_hash: "0000",
    settings: &[],
    fires: false,
};

/// Idles until stopped, then never finishes closing.
struct Stuck;

impl Pipeline for Stuck {
    fn step(&mut self) -> Result<Step, RunError> {
        rill_runtime::wake::look_again_within(Duration::from_millis(50));
        Ok(Step::Idle)
    }
    fn flush(&mut self) -> Result<(), RunError> {
        Ok(())
    }
    fn close(&mut self, _fire: bool) -> Result<(), RunError> {
        std::thread::sleep(Duration::from_secs(600));
        Ok(())
    }
    fn close_sources(&mut self) -> Result<(), RunError> {
        Ok(())
    }
    fn checkpointed(&mut self) -> Vec<&mut dyn Checkpointed> {
        Vec::new()
    }
}

#[test]
fn a_close_that_hangs_ends_at_the_shutdown_timeout() {
    if std::env::var_os("RILL_SHUTDOWN_CHILD").is_some() {
        let args = ["--shutdown-timeout", "300ms"].map(str::to_owned);
        let code = run_with_args(&INFO, args, |_: &Context| Ok(Stuck));
        panic!("the stuck pipeline returned {code:?} instead of being ended by its timeout");
    }
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "a_close_that_hangs_ends_at_the_shutdown_timeout",
            "--nocapture",
        ])
        .env("RILL_SHUTDOWN_CHILD", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut lines = BufReader::new(child.stderr.take().unwrap_or_else(|| panic!("stderr")));
    let mut log = String::new();
    while !log.contains("pipeline started") {
        let mut line = String::new();
        assert!(
            lines.read_line(&mut line).unwrap_or(0) > 0,
            "the child ended early: {log}"
        );
        log.push_str(&line);
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .is_ok_and(|s| s.success()));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut lines, &mut rest).unwrap_or_else(|e| panic!("{e}"));
    log.push_str(&rest);
    let status = child.wait().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("shutdown timed out"), "{log}");
    assert!(log.contains("\"shutdown_timeout_ms\":300"), "{log}");
}

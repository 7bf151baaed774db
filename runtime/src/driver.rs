//! The main loop of a generated binary.
//!
//! Generated code provides a [`PipelineInfo`] and a `build` function returning a
//! [`Pipeline`]; [`run`] does everything else: arguments, settings, logs, signals, the
//! poll loop, closing, the exit summary and the exit code (0 ok, 1 run failure, 2 bad
//! command line or configuration).

use crate::acks::Acks;
use crate::cli::{self, Command};
use crate::errors::{RunError, StartError};
use crate::internal_events::Events;
use crate::log::{self, Level};
use crate::settings::{SettingDef, Settings};
use crate::shutdown::Shutdown;
use crate::sources::Poll;
use crate::wake::{self, Wake};
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

/// What the compiler knows about the pipeline, baked into the binary.
#[derive(Debug)]
pub struct PipelineInfo {
    pub name: &'static str,
    /// Hash of the spec the binary was built from, shown by `--version`.
    pub spec_hash: &'static str,
    pub settings: &'static [SettingDef],
}

/// The outcome of one step; several are combined with [`Step::and`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Some records moved: step again at once.
    Progress,
    /// Nothing to do now: the driver sleeps until something arrives, a signal, or the
    /// earliest time a component asked to be looked at again (see [`crate::wake`]).
    Idle,
    /// Every source is exhausted: close and exit.
    Finished,
}

impl Step {
    /// Combines the outcomes of two sources: `Progress` beats `Idle` beats `Finished`,
    /// so the pipeline finishes only when every source has.
    pub fn and(self, other: Step) -> Step {
        match (self, other) {
            (Step::Progress, _) | (_, Step::Progress) => Step::Progress,
            (Step::Idle, _) | (_, Step::Idle) => Step::Idle,
            (Step::Finished, Step::Finished) => Step::Finished,
        }
    }
}

impl From<Poll> for Step {
    fn from(p: Poll) -> Step {
        match p {
            Poll::Ready => Step::Progress,
            Poll::Idle => Step::Idle,
            Poll::Finished => Step::Finished,
        }
    }
}

/// The generated pipeline: its sources, flow functions and outputs.
pub trait Pipeline {
    /// Poll every source once, route records, write outputs.
    fn step(&mut self) -> Result<Step, RunError>;
    /// Flush and close every output (called once at the end, also after a shutdown
    /// signal or a failed step).
    fn close(&mut self) -> Result<(), RunError>;
}

/// What `build` gets to construct the pipeline.
pub struct Context {
    pub settings: Settings,
    /// Maximum records per source poll.
    pub batch_size: usize,
    pub events: Events,
    /// What sinks have accepted, for sources that commit positions.
    pub acks: Acks,
}

impl Context {
    pub fn new(settings: Settings, batch_size: usize) -> Self {
        Context {
            settings,
            batch_size: batch_size.max(1),
            events: Events::new(),
            acks: Acks::new(),
        }
    }
}

/// Why the loop ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Finished,
    Shutdown,
}

impl Stop {
    fn as_str(self) -> &'static str {
        match self {
            Stop::Finished => "finished",
            Stop::Shutdown => "shutdown",
        }
    }
}

/// Steps until every source is finished, a step fails, or a shutdown is requested.
/// Each step's start and end are told to `events`: `/health` calls a step that does not
/// end stuck. An idle step is followed by a sleep in the kernel (see [`crate::wake`]):
/// until a source's thread or a signal wakes `wake`, or the step's earliest deadline.
fn run_loop<P: Pipeline>(
    pipeline: &mut P,
    shutdown: &Shutdown,
    events: &Events,
    wake: &Wake,
) -> Result<Stop, RunError> {
    loop {
        if shutdown.requested() {
            return Ok(Stop::Shutdown);
        }
        events.step_begins();
        let step = pipeline.step();
        events.step_ends();
        // Taken after every step, so a deadline is never older than the step that set it.
        let next_look = wake::take_next_look();
        match step? {
            Step::Progress => {}
            Step::Idle => {
                wake.wait(next_look);
            }
            Step::Finished => return Ok(Stop::Finished),
        }
    }
}

/// Writes to stdout or stderr, ignoring failures: `print!` would panic on a closed pipe
/// (`pipeline --help | head -1`).
fn say(mut to: impl Write, text: &str) {
    let _ = to.write_all(text.as_bytes()).and_then(|()| to.flush());
}

fn usage_exit(info: &PipelineInfo, message: &str) -> ExitCode {
    say(
        std::io::stderr(),
        &format!("error: {message}\n\nRun `{} --help` for usage.\n", info.name),
    );
    ExitCode::from(2)
}

fn start_exit(message: &str) -> ExitCode {
    say(std::io::stderr(), &format!("error: {message}\n"));
    ExitCode::from(2)
}

/// Runs the pipeline with the process's command line. Generated `main` is just
/// `fn main() -> ExitCode { run(&INFO, build) }`.
pub fn run<P: Pipeline>(
    info: &'static PipelineInfo,
    build: impl FnOnce(&Context) -> Result<P, StartError>,
) -> ExitCode {
    let mut args = Vec::new();
    for arg in std::env::args_os().skip(1) {
        match arg.into_string() {
            Ok(a) => args.push(a),
            Err(bad) => {
                return usage_exit(
                    info,
                    &format!("argument `{}` is not valid UTF-8", bad.to_string_lossy()),
                )
            }
        }
    }
    run_with_args(info, args, build)
}

/// [`run`] with explicit arguments (everything after the program name); used by tests.
pub fn run_with_args<P: Pipeline>(
    info: &'static PipelineInfo,
    args: impl IntoIterator<Item = String>,
    build: impl FnOnce(&Context) -> Result<P, StartError>,
) -> ExitCode {
    let args = match cli::parse(args) {
        Ok(Command::Run(args)) => args,
        Ok(Command::Help) => {
            say(std::io::stdout(), &cli::help_text(info));
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            say(std::io::stdout(), &format!("{}\n", cli::version_text(info)));
            return ExitCode::SUCCESS;
        }
        Err(e) => return usage_exit(info, &e.0),
    };
    let level = match args.log_level {
        Some(level) => level,
        None => match std::env::var("RILL_LOG") {
            Ok(v) if !v.trim().is_empty() => match Level::parse(&v) {
                Some(level) => level,
                None => {
                    return start_exit(&format!(
                        "RILL_LOG=`{v}` is not a log level; use error, warn, info or debug"
                    ))
                }
            },
            _ => Level::Info,
        },
    };
    log::set_level(level);
    let settings = match Settings::resolve(info.settings, &args.sets) {
        Ok(s) => s,
        Err(e) => return start_exit(e.message()),
    };
    let shutdown = match Shutdown::install() {
        Ok(s) => s,
        Err(e) => return start_exit(e.message()),
    };
    let ctx = Context::new(settings, args.batch_size);
    // Before the pipeline is built: a port in use fails the start before any broker
    // is contacted.
    let metrics_addr = match args.metrics_addr {
        Some(addr) => Some(addr),
        None => std::env::var("RILL_METRICS_ADDR")
            .ok()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty()),
    };
    if let Some(addr) = metrics_addr {
        if let Err(e) = crate::metrics::serve(&addr, &ctx.events, info) {
            return start_exit(e.message());
        }
    }
    // Started only once every source and sink is open: a configuration error is the
    // one thing a failed start says.
    let mut pipeline = match build(&ctx) {
        Ok(p) => p,
        Err(e) => return start_exit(e.message()),
    };
    log::info(
        "pipeline started",
        &[
            ("pipeline", info.name.into()),
            ("spec_hash", info.spec_hash.into()),
            ("rill_version", env!("CARGO_PKG_VERSION").into()),
            ("batch_size", ctx.batch_size.into()),
        ],
    );
    let started = Instant::now();
    let outcome = run_loop(&mut pipeline, &shutdown, &ctx.events, wake::global());
    let closed = pipeline.close();
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut code = ExitCode::SUCCESS;
    let reason = match &outcome {
        Ok(stop) => stop.as_str(),
        Err(e) => {
            log::error("pipeline failed", &[("error", e.message().into())]);
            code = ExitCode::FAILURE;
            "error"
        }
    };
    if let Err(e) = &closed {
        log::error("closing outputs failed", &[("error", e.message().into())]);
        code = ExitCode::FAILURE;
    }
    log::info(
        "pipeline stopped",
        &[
            ("pipeline", info.name.into()),
            ("reason", reason.into()),
            ("elapsed_ms", elapsed_ms.into()),
            ("components", ctx.events.summary()),
        ],
    );
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_combination() {
        use Step::*;
        let all = [Progress, Idle, Finished];
        for a in all {
            for b in all {
                let expected = if a == Progress || b == Progress {
                    Progress
                } else if a == Idle || b == Idle {
                    Idle
                } else {
                    Finished
                };
                assert_eq!(a.and(b), expected, "{a:?}.and({b:?})");
            }
        }
        assert_eq!(Step::from(Poll::Ready), Progress);
        assert_eq!(Step::from(Poll::Finished).and(Step::from(Poll::Idle)), Idle);
    }

    /// Counts down, idling on odd counts; fails at `fail_at` if set.
    struct Countdown {
        left: u32,
        fail_at: Option<u32>,
        shutdown_at: Option<(u32, Shutdown)>,
    }

    impl Pipeline for Countdown {
        fn step(&mut self) -> Result<Step, RunError> {
            if self.fail_at == Some(self.left) {
                return Err(RunError::new("boom"));
            }
            if let Some((at, s)) = &self.shutdown_at {
                if *at == self.left {
                    s.request();
                }
            }
            if self.left == 0 {
                return Ok(Step::Finished);
            }
            self.left -= 1;
            if self.left % 2 == 1 {
                // Nothing notifies this pipeline: without a deadline it would sleep forever.
                wake::look_again_within(std::time::Duration::from_millis(1));
                return Ok(Step::Idle);
            }
            Ok(Step::Progress)
        }
        fn close(&mut self) -> Result<(), RunError> {
            Ok(())
        }
    }

    #[test]
    fn loop_ends_on_finished_error_or_shutdown() {
        let s = Shutdown::new();
        let w = Wake::new();
        let mut p = Countdown {
            left: 4,
            fail_at: None,
            shutdown_at: None,
        };
        assert_eq!(run_loop(&mut p, &s, &Events::new(), &w), Ok(Stop::Finished));
        assert_eq!(p.left, 0);
        let mut p = Countdown {
            left: 4,
            fail_at: Some(2),
            shutdown_at: None,
        };
        assert_eq!(run_loop(&mut p, &s, &Events::new(), &w), Err(RunError::new("boom")));
        let mut p = Countdown {
            left: 10,
            fail_at: None,
            shutdown_at: Some((7, s.clone())),
        };
        assert_eq!(run_loop(&mut p, &s, &Events::new(), &w), Ok(Stop::Shutdown));
        assert_eq!(p.left, 6, "stopped right after the step that saw the signal");
    }

    #[test]
    fn context_batch_size_is_at_least_one() {
        assert_eq!(Context::new(Settings::from_values(vec![]), 0).batch_size, 1);
    }
}

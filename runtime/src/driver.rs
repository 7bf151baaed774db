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
use crate::state::{Checkpointed, StateStore};
use crate::wake::{self, Wake};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Default longest wait for a clean stop after SIGTERM.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// What the compiler knows about the pipeline, baked into the binary.
#[derive(Debug)]
pub struct PipelineInfo {
    pub name: &'static str,
    /// Hash of the spec the binary was built from, shown by `--version`.
    pub spec_hash: &'static str,
    pub settings: &'static [SettingDef],
    /// A window fires every key at once when time passes its end (a fixed or a session
    /// window): the pipeline's thread reads nothing meanwhile, so sources read further
    /// ahead ([`crate::sources::READ_AHEAD_WHILE_FIRING`]) to keep the workers decoding.
    pub fires: bool,
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
    /// Flush every output and apply the delivery outcomes that arrived, without reading
    /// any source (a checkpoint waits so for messages in flight).
    fn flush(&mut self) -> Result<(), RunError>;
    /// Flush and close every output (called once at the end, also after a shutdown
    /// signal or a failed step). With `fire`, windows and tables first emit what they
    /// hold; without it (a shutdown with checkpoints) their state waits in the final
    /// checkpoint for the next start.
    fn close(&mut self, fire: bool) -> Result<(), RunError>;
    /// Close the sources, after the outputs (and the final checkpoint): committing
    /// sources commit what is confirmed and leave their broker.
    fn close_sources(&mut self) -> Result<(), RunError>;
    /// Every component with state to checkpoint, in a fixed order.
    fn checkpointed(&mut self) -> Vec<&mut dyn Checkpointed>;
}

/// What `build` gets to construct the pipeline.
pub struct Context {
    pub settings: Settings,
    /// Maximum records per source poll.
    pub batch_size: usize,
    pub events: Events,
    /// What sinks have accepted, for sources that commit positions.
    pub acks: Acks,
    /// `--state-dir`: checkpoints and disk buffers live here.
    pub state_dir: Option<PathBuf>,
    /// A checkpoint will be restored: file sinks keep their contents (the restore cuts
    /// them back to the checkpointed length) instead of starting empty.
    pub resuming: bool,
    /// Batches a source reads ahead per worker thread (see
    /// [`crate::sources::READ_AHEAD_PER_WORKER`]).
    pub read_ahead_per_worker: usize,
    /// Threads besides the pipeline's that sources hand decoding to (`--threads`);
    /// `None` with one thread.
    pub workers: Option<crate::workers::Workers>,
    /// Windows and tables may be split by key across the workers (`--split-windows`).
    pub split_windows: bool,
}

impl Context {
    pub fn new(settings: Settings, batch_size: usize) -> Self {
        Context {
            settings,
            batch_size: batch_size.max(1),
            events: Events::new(),
            acks: Acks::new(),
            state_dir: None,
            resuming: false,
            read_ahead_per_worker: crate::sources::READ_AHEAD_PER_WORKER,
            workers: None,
            split_windows: true,
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
    mut state: Option<(&mut StateStore, &Acks)>,
) -> Result<Stop, RunError> {
    loop {
        if shutdown.requested() {
            return Ok(Stop::Shutdown);
        }
        events.step_begins();
        let step = pipeline.step();
        if let (Ok(_), Some((store, acks))) = (&step, state.as_mut()) {
            if store.due() {
                store.checkpoint(pipeline, acks)?;
            }
        }
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

/// An option given on the command line, else read from `var` (blank counts as unset).
fn option_or_env(given: Option<String>, var: &str) -> Option<String> {
    given.or_else(|| {
        std::env::var(var)
            .ok()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    })
}

/// A duration option given on the command line, else read from `var`, else `default`.
fn duration_or_env(given: Option<u64>, var: &str, default: Duration) -> Result<Duration, String> {
    if let Some(ms) = given {
        return Ok(Duration::from_millis(ms));
    }
    match option_or_env(None, var) {
        None => Ok(default),
        Some(v) => cli::parse_duration(&v)
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis)
            .ok_or_else(|| format!("{var}=`{v}` is not a duration such as 10s or 500ms")),
    }
}

/// After a stop was requested: if closing, the final checkpoint and leaving the brokers
/// take longer than `timeout`, exit anyway. Nothing is corrupted: checkpoints are
/// written whole or not at all, and the previous one stays.
fn exit_after(timeout: Duration) {
    let spawned = std::thread::Builder::new()
        .name("shutdown-timeout".into())
        .spawn(move || {
            std::thread::sleep(timeout);
            log::error(
                "shutdown timed out; exiting without the final checkpoint",
                &[("shutdown_timeout_ms", (timeout.as_millis() as u64).into())],
            );
            std::process::exit(1);
        });
    if spawned.is_err() {
        log::warn("cannot start the shutdown timer", &[]);
    }
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
        Ok(Command::StateCheck { dir, repair }) => {
            return crate::state::check::run(std::path::Path::new(&dir), repair, info);
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
    let mut ctx = Context::new(settings, args.batch_size);
    if info.fires {
        ctx.read_ahead_per_worker = crate::sources::READ_AHEAD_WHILE_FIRING;
    }
    let threads = match (args.threads, option_or_env(None, "RILL_THREADS")) {
        (Some(n), _) => n,
        (None, None) => crate::workers::available(),
        (None, Some(v)) => match cli::parse_threads(&v) {
            Some(n) => n,
            None => return start_exit(&format!("RILL_THREADS=`{v}` must be a positive integer")),
        },
    };
    ctx.split_windows = match (args.split_windows, option_or_env(None, "RILL_SPLIT_WINDOWS")) {
        (Some(on), _) => on,
        (None, None) => true,
        (None, Some(v)) => match cli::parse_on_off(&v) {
            Some(on) => on,
            None => return start_exit(&format!("RILL_SPLIT_WINDOWS=`{v}` must be on or off")),
        },
    };
    if let Some(count) = crate::workers::for_threads(threads) {
        match crate::workers::Workers::start(count) {
            Ok(workers) => ctx.workers = Some(workers),
            Err(e) => return start_exit(&format!("cannot start {count} worker threads: {e}")),
        }
    }
    let timing = duration_or_env(
        args.checkpoint_interval_ms,
        "RILL_CHECKPOINT_INTERVAL",
        crate::state::DEFAULT_INTERVAL,
    )
    .and_then(|interval| {
        let timeout = duration_or_env(
            args.shutdown_timeout_ms,
            "RILL_SHUTDOWN_TIMEOUT",
            DEFAULT_SHUTDOWN_TIMEOUT,
        )?;
        Ok((interval, timeout))
    });
    let (interval, shutdown_timeout) = match timing {
        Ok(t) => t,
        Err(e) => return start_exit(&e),
    };
    let mut store = match option_or_env(args.state_dir, "RILL_STATE_DIR") {
        None if args.reset_state => return start_exit("--reset-state needs a state directory (--state-dir)"),
        None => None,
        Some(dir) => match StateStore::open(
            std::path::Path::new(&dir),
            interval,
            args.reset_state,
            info,
            &ctx.events,
        ) {
            Ok(store) => Some(store),
            Err(e) => return start_exit(e.message()),
        },
    };
    if let Some(store) = &store {
        ctx.state_dir = Some(store.dir().to_owned());
        ctx.resuming = store.restored().is_some();
        ctx.acks.use_checkpoints();
    }
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
    if let Some(store) = &mut store {
        if let Err(e) = store.restore(&mut pipeline) {
            return start_exit(e.message());
        }
    }
    log::info(
        "pipeline started",
        &[
            ("pipeline", info.name.into()),
            ("spec_hash", info.spec_hash.into()),
            ("rill_version", env!("CARGO_PKG_VERSION").into()),
            ("batch_size", ctx.batch_size.into()),
            ("threads", threads.into()),
        ],
    );
    let started = Instant::now();
    let outcome = run_loop(
        &mut pipeline,
        &shutdown,
        &ctx.events,
        wake::global(),
        store.as_mut().map(|s| (s, &ctx.acks)),
    );
    if shutdown.requested() {
        exit_after(shutdown_timeout);
    }
    // With checkpoints, a stop that is not the end of the input keeps what windows
    // hold for the next start; without, they emit it now rather than lose it.
    let fire = store.is_none() || outcome == Ok(Stop::Finished);
    let mut closed = pipeline.close(fire);
    if let (Some(store), Ok(_), Ok(())) = (&mut store, &outcome, &closed) {
        closed = store.final_checkpoint(&mut pipeline, &ctx.acks);
    }
    let closed = RunError::all([closed, pipeline.close_sources()]);
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
        fn flush(&mut self) -> Result<(), RunError> {
            Ok(())
        }
        fn close(&mut self, _fire: bool) -> Result<(), RunError> {
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
    fn loop_ends_on_finished_error_or_shutdown() {
        let s = Shutdown::new();
        let w = Wake::new();
        let mut p = Countdown {
            left: 4,
            fail_at: None,
            shutdown_at: None,
        };
        assert_eq!(run_loop(&mut p, &s, &Events::new(), &w, None), Ok(Stop::Finished));
        assert_eq!(p.left, 0);
        let mut p = Countdown {
            left: 4,
            fail_at: Some(2),
            shutdown_at: None,
        };
        assert_eq!(
            run_loop(&mut p, &s, &Events::new(), &w, None),
            Err(RunError::new("boom"))
        );
        let mut p = Countdown {
            left: 10,
            fail_at: None,
            shutdown_at: Some((7, s.clone())),
        };
        assert_eq!(run_loop(&mut p, &s, &Events::new(), &w, None), Ok(Stop::Shutdown));
        assert_eq!(p.left, 6, "stopped right after the step that saw the signal");
    }

    #[test]
    fn context_batch_size_is_at_least_one() {
        assert_eq!(Context::new(Settings::from_values(vec![]), 0).batch_size, 1);
    }
}

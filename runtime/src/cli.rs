//! Command-line arguments of a generated pipeline binary.
//!
//! Hand-written rather than clap: the options are few and fixed, and every generated
//! binary would otherwise carry clap's size and build time.

use crate::driver::PipelineInfo;
use crate::log::Level;

/// Default records per source poll.
pub const DEFAULT_BATCH_SIZE: usize = 1024;

/// Options for a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// `--set key=value`, in command-line order.
    pub sets: Vec<(String, String)>,
    pub log_level: Option<Level>,
    pub batch_size: usize,
    /// `--metrics-addr`: where to serve `/metrics` and `/health` (checked when bound).
    pub metrics_addr: Option<String>,
    /// `--state-dir`: where checkpoints and disk buffers live (else `$RILL_STATE_DIR`).
    pub state_dir: Option<String>,
    /// `--checkpoint-interval`, in ms (else `$RILL_CHECKPOINT_INTERVAL`, else 10 s).
    pub checkpoint_interval_ms: Option<u64>,
    /// `--shutdown-timeout`, in ms (else `$RILL_SHUTDOWN_TIMEOUT`, else 30 s).
    pub shutdown_timeout_ms: Option<u64>,
    /// `--reset-state`: discard the checkpoints in the state directory and start afresh.
    pub reset_state: bool,
    /// `--threads`: threads in all, the pipeline's own included (else `$RILL_THREADS`,
    /// else the cores available).
    pub threads: Option<usize>,
    /// `--split-windows off`: no window or table is split by key across the workers (else
    /// `$RILL_SPLIT_WINDOWS`, else on).
    pub split_windows: Option<bool>,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            sets: Vec::new(),
            log_level: None,
            batch_size: DEFAULT_BATCH_SIZE,
            metrics_addr: None,
            state_dir: None,
            checkpoint_interval_ms: None,
            shutdown_timeout_ms: None,
            reset_state: false,
            threads: None,
            split_windows: None,
        }
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Run(Args),
    /// `state check DIR [--repair]`: verify (and repair) checkpoints and disk buffers.
    StateCheck {
        dir: String,
        repair: bool,
    },
    Help,
    Version,
}

/// A command-line mistake; the driver prints it and exits with 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Splits `--name=value` into its parts; `--name` alone gives `None` as value.
fn split_option(arg: &str) -> (&str, Option<&str>) {
    match arg.split_once('=') {
        Some((name, value)) if name.starts_with("--") => (name, Some(value)),
        _ => (arg, None),
    }
}

/// Parses a duration such as `10s`, `250ms`, `1m` or `1h` (a bare number is seconds)
/// into milliseconds.
pub fn parse_duration(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let n: u64 = text[..digits].parse().ok()?;
    let unit = match text[digits..].trim() {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    n.checked_mul(unit)
}

/// `state check DIR [--repair]`.
fn parse_state_command<I: Iterator<Item = String>>(mut args: I) -> Result<Command, UsageError> {
    let usage = || UsageError("usage: `state check DIR [--repair]`".into());
    if args.next().as_deref() != Some("check") {
        return Err(usage());
    }
    let (mut dir, mut repair) = (None, false);
    for arg in args {
        match arg.as_str() {
            "--repair" => repair = true,
            _ if dir.is_none() && !arg.starts_with("--") => dir = Some(arg),
            _ => return Err(usage()),
        }
    }
    Ok(Command::StateCheck {
        dir: dir.ok_or_else(usage)?,
        repair,
    })
}

/// Parses the arguments after the program name.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, UsageError> {
    let mut args = args.into_iter().peekable();
    if args.peek().is_some_and(|a| a == "state") {
        args.next();
        return parse_state_command(args);
    }
    let mut parsed = Args::default();
    while let Some(arg) = args.next() {
        let (name, inline) = split_option(&arg);
        let mut value = |what: &str| -> Result<String, UsageError> {
            match inline {
                Some(v) => Ok(v.to_owned()),
                None => args
                    .next()
                    .ok_or_else(|| UsageError(format!("`{name}` needs a value ({what})"))),
            }
        };
        match name {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--set" => {
                let kv = value("KEY=VALUE")?;
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| UsageError(format!("`--set {kv}` is not KEY=VALUE")))?;
                parsed.sets.push((k.trim().to_owned(), v.to_owned()));
            }
            "--log-level" => {
                let v = value("error, warn, info or debug")?;
                let level = Level::parse(&v)
                    .ok_or_else(|| UsageError(format!("unknown log level `{v}`; use error, warn, info or debug")))?;
                parsed.log_level = Some(level);
            }
            "--batch-size" => {
                let v = value("a number of records")?;
                parsed.batch_size = v
                    .trim()
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| UsageError(format!("`--batch-size {v}` must be a positive integer")))?;
            }
            "--threads" => {
                let v = value("a number of threads")?;
                parsed.threads = Some(
                    parse_threads(&v)
                        .ok_or_else(|| UsageError(format!("`--threads {v}` must be a positive integer")))?,
                );
            }
            "--split-windows" => {
                let v = value("on or off")?;
                parsed.split_windows = Some(
                    parse_on_off(&v).ok_or_else(|| UsageError(format!("`--split-windows {v}` must be on or off")))?,
                );
            }
            "--metrics-addr" => {
                let v = value("HOST:PORT, such as 127.0.0.1:9464")?;
                if v.trim().is_empty() {
                    return Err(UsageError(
                        "`--metrics-addr` needs HOST:PORT, such as 127.0.0.1:9464".into(),
                    ));
                }
                parsed.metrics_addr = Some(v.trim().to_owned());
            }
            "--state-dir" => {
                let v = value("a directory")?;
                if v.trim().is_empty() {
                    return Err(UsageError("`--state-dir` needs a directory".into()));
                }
                parsed.state_dir = Some(v);
            }
            "--checkpoint-interval" | "--shutdown-timeout" => {
                let v = value("a duration such as 10s or 500ms")?;
                let ms = parse_duration(&v)
                    .filter(|ms| *ms > 0)
                    .ok_or_else(|| UsageError(format!("`{name} {v}` is not a duration such as 10s or 500ms")))?;
                match name {
                    "--checkpoint-interval" => parsed.checkpoint_interval_ms = Some(ms),
                    _ => parsed.shutdown_timeout_ms = Some(ms),
                }
            }
            "--reset-state" => parsed.reset_state = true,
            _ => return Err(UsageError(format!("unknown argument `{arg}`"))),
        }
    }
    Ok(Command::Run(parsed))
}

/// `on` or `off`.
pub fn parse_on_off(v: &str) -> Option<bool> {
    match v.trim() {
        "on" => Some(true),
        "off" => Some(false),
        _ => None,
    }
}

/// A thread count: a positive integer.
pub fn parse_threads(v: &str) -> Option<usize> {
    v.trim().parse().ok().filter(|n| *n > 0)
}

/// `--version` text: `<name> <spec_hash> (rill <runtime version>)`.
pub fn version_text(info: &PipelineInfo) -> String {
    format!("{} {} (rill {})", info.name, info.spec_hash, env!("CARGO_PKG_VERSION"))
}

/// `--help` text: usage, options, and every setting with its default and help. A
/// secret shows the variables it comes from, never a value.
pub fn help_text(info: &PipelineInfo) -> String {
    let mut s = format!(
        "{name} — a rill pipeline (spec {hash})\n\n\
         Usage: {name} [OPTIONS]\n\n\
         Options:\n  \
           --set KEY=VALUE      override a setting (repeatable); the value may use ${{VAR}} and ${{VAR:-default}}\n  \
           --log-level LEVEL    error, warn, info or debug (default: $RILL_LOG, else info)\n  \
           --batch-size N       records read per source poll (default: {batch})\n  \
           --threads N          threads in all; sources decode on the others (default:\n                       \
           $RILL_THREADS, else the cores available; 1: one thread)\n  \
           --split-windows on|off\n                       \
           with 3 threads or more, split windows and tables by key across the\n                       \
           others where their output allows it (default:\n                       \
           $RILL_SPLIT_WINDOWS, else on)\n  \
           --metrics-addr ADDR  serve Prometheus /metrics and /health on HOST:PORT\n                       \
           (default: $RILL_METRICS_ADDR, else nothing listens)\n  \
           --state-dir DIR      keep checkpoints and disk buffers in DIR, and resume from\n                       \
           them (default: $RILL_STATE_DIR, else no checkpoints)\n  \
           --checkpoint-interval DURATION\n                       \
           time between checkpoints (default: $RILL_CHECKPOINT_INTERVAL, else 10s)\n  \
           --shutdown-timeout DURATION\n                       \
           longest wait for a clean stop after SIGTERM (default:\n                       \
           $RILL_SHUTDOWN_TIMEOUT, else 30s)\n  \
           --reset-state        discard the checkpoints in the state directory first\n  \
           -h, --help           print this help\n  \
           -V, --version        print the version\n\n\
         Commands:\n  \
           state check DIR [--repair]\n                       \
           verify the checkpoints and disk buffers in DIR; --repair cuts off\n                       \
           a damaged tail and says what was lost\n",
        name = info.name,
        hash = info.spec_hash,
        batch = DEFAULT_BATCH_SIZE,
    );
    if info.settings.is_empty() {
        s.push_str("\nThis pipeline has no settings.\n");
    } else {
        s.push_str("\nSettings (resolved at start from the environment; change with --set):\n");
        for def in info.settings {
            if def.secret {
                let vars: Vec<String> = def.variables().iter().map(|v| format!("${v}")).collect();
                s.push_str(&format!("  {}\n      (secret, from {})\n", def.key, vars.join(", ")));
            } else {
                s.push_str(&format!("  {}\n      default: {}\n", def.key, def.default));
            }
            if !def.help.is_empty() {
                s.push_str(&format!("      {}\n", def.help));
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::SettingDef;

    fn p(args: &[&str]) -> Result<Command, UsageError> {
        parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_every_option_in_both_forms() {
        let cmd = p(&[
            "--set",
            "a.b=1",
            "--set=c=x=y",
            "--log-level",
            "debug",
            "--batch-size=10",
            "--metrics-addr",
            "127.0.0.1:9464",
            "--threads",
            " 3",
            "--split-windows",
            "off",
        ]);
        assert_eq!(
            cmd,
            Ok(Command::Run(Args {
                sets: vec![("a.b".into(), "1".into()), ("c".into(), "x=y".into())],
                log_level: Some(Level::Debug),
                batch_size: 10,
                metrics_addr: Some("127.0.0.1:9464".into()),
                threads: Some(3),
                split_windows: Some(false),
                ..Args::default()
            }))
        );
        assert_eq!(p(&[]), Ok(Command::Run(Args::default())));
        assert_eq!(p(&["--batch-size", "5", "--help"]), Ok(Command::Help));
        assert_eq!(p(&["-V"]), Ok(Command::Version));
    }

    #[test]
    fn rejects_mistakes() {
        let err = |args: &[&str]| p(args).err().map(|e| e.0).unwrap_or_default();
        assert_eq!(err(&["--verbose"]), "unknown argument `--verbose`");
        assert_eq!(err(&["input.json"]), "unknown argument `input.json`");
        assert!(err(&["--set"]).contains("needs a value"));
        assert!(err(&["--set", "novalue"]).contains("is not KEY=VALUE"));
        assert!(err(&["--log-level", "loud"]).contains("unknown log level"));
        assert!(err(&["--batch-size", "0"]).contains("positive integer"));
        assert_eq!(err(&["--threads", "0"]), "`--threads 0` must be a positive integer");
        assert_eq!(
            err(&["--split-windows", "no"]),
            "`--split-windows no` must be on or off"
        );
        assert!(err(&["--threads=two"]).contains("positive integer"));
        assert!(err(&["--threads"]).contains("needs a value"));
        assert!(err(&["--batch-size=-3"]).contains("positive integer"));
        assert!(err(&["--metrics-addr"]).contains("needs a value"));
        assert!(err(&["--metrics-addr="]).contains("needs HOST:PORT"));
        assert!(err(&["--checkpoint-interval", "soon"]).contains("not a duration"));
        assert!(err(&["--shutdown-timeout=0s"]).contains("not a duration"));
        assert!(err(&["state", "verify", "d"]).contains("usage: `state check"));
        assert!(err(&["state", "check"]).contains("usage: `state check"));
    }

    #[test]
    fn parses_state_options_and_the_state_command() {
        let cmd = p(&[
            "--state-dir",
            "/var/lib/x",
            "--checkpoint-interval=250ms",
            "--shutdown-timeout",
            "1m",
            "--reset-state",
        ]);
        assert_eq!(
            cmd,
            Ok(Command::Run(Args {
                state_dir: Some("/var/lib/x".into()),
                checkpoint_interval_ms: Some(250),
                shutdown_timeout_ms: Some(60_000),
                reset_state: true,
                ..Args::default()
            }))
        );
        assert_eq!(
            p(&["state", "check", "d", "--repair"]),
            Ok(Command::StateCheck {
                dir: "d".into(),
                repair: true
            })
        );
        assert_eq!(parse_duration("10"), Some(10_000));
        assert_eq!(parse_duration("2h"), Some(7_200_000));
        assert_eq!(parse_duration("1.5s"), None);
    }

    static SETTINGS: &[SettingDef] = &[
        SettingDef {
            key: "sources.in.path",
            default: "${IN:-in.jsonl}",
            help: "input file",
            secret: false,
        },
        SettingDef {
            key: "sources.in.sasl.password",
            default: "${BROKER_PASSWORD}",
            help: "SASL password",
            secret: true,
        },
    ];
    static INFO: PipelineInfo = PipelineInfo {
        name: "hot_devices",
        spec_hash: "abc123",
        settings: SETTINGS,
        fires: false,
    };

    #[test]
    fn help_and_version_name_the_pipeline_and_settings() {
        assert_eq!(
            version_text(&INFO),
            format!("hot_devices abc123 (rill {})", env!("CARGO_PKG_VERSION"))
        );
        let help = help_text(&INFO);
        assert!(help.contains("Usage: hot_devices [OPTIONS]"));
        assert!(
            help.contains("sources.in.path\n      default: ${IN:-in.jsonl}\n      input file\n"),
            "{help}"
        );
        assert!(help.contains("--batch-size N"));
        assert!(help.contains("--threads N"));
        assert!(help.contains("--metrics-addr ADDR"), "{help}");
        let column = help
            .lines()
            .find_map(|l| l.find("serve Prometheus"))
            .unwrap_or_default();
        let continued = help.lines().find_map(|l| l.find("(default: $RILL_METRICS_ADDR"));
        assert_eq!(
            continued,
            Some(column),
            "the continuation lines up with the text:\n{help}"
        );
        assert!(
            help.contains("sources.in.sasl.password\n      (secret, from $BROKER_PASSWORD)\n      SASL password\n"),
            "{help}"
        );
        assert!(!help.contains("default: ${BROKER_PASSWORD}"), "{help}");
    }
}

//! The error types of the runtime, one per kind of failure.
//!
//! The split matters more than the names: an [`EvalError`] or a [`DecodeError`] is about
//! one record and becomes a dead letter (never a crash); a [`RunError`] stops the pipeline
//! (exit code 1); a [`StartError`] is a configuration mistake found before any data moves
//! (exit code 2).

use std::fmt;

/// Why evaluating an expression on one record failed.
///
/// Generated code returns these from `fns::*` calls; they are wrapped into a
/// [`RecordError`] naming the component, then routed per the source's `on_error`.
#[derive(Debug, Clone, PartialEq)]
pub enum EvalError {
    /// Integer arithmetic overflowed (`op` is the operator, e.g. `"+"`).
    Overflow { op: &'static str },
    /// Division or remainder by zero (integers and floats alike).
    DivisionByZero,
    /// A value could not be converted to the target type.
    Conversion { to: &'static str, value: String },
    /// A list index outside the list.
    IndexOutOfRange { index: i64, len: usize },
    /// A timestamp could not be parsed or formatted with the given format.
    Timestamp { value: String, format: String },
    /// A function was called with an argument it cannot accept.
    InvalidArgument { function: &'static str, reason: String },
    /// The record's event-time field is null.
    NoEventTime { field: &'static str },
    /// A window or table holds `max_keys` entries and its policy is to reject new ones.
    StateFull { max_keys: usize },
    /// A sink refused the record outright (a message too large for the broker, say).
    Refused { reason: String },
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalError::Overflow { op } => write!(f, "integer overflow in `{op}`"),
            EvalError::DivisionByZero => f.write_str("division by zero"),
            EvalError::Conversion { to, value } => {
                write!(f, "cannot convert `{value}` to {to}")
            }
            EvalError::IndexOutOfRange { index, len } => {
                write!(f, "index {index} is out of range for a list of length {len}")
            }
            EvalError::Timestamp { value, format } => {
                write!(f, "cannot handle timestamp `{value}` with format `{format}`")
            }
            EvalError::InvalidArgument { function, reason } => {
                write!(f, "invalid argument to `{function}`: {reason}")
            }
            EvalError::NoEventTime { field } => write!(f, "the event-time field `{field}` is null"),
            EvalError::StateFull { max_keys } => {
                write!(f, "state is full (max_keys {max_keys}, on_full: dead_letter)")
            }
            EvalError::Refused { reason } => write!(f, "refused: {reason}"),
        }
    }
}

impl std::error::Error for EvalError {}

/// An [`EvalError`] attributed to the component (`"transforms.hot"`, `"sinks.alerts"`)
/// whose expression or encoder failed, so dead letters and counters name the culprit.
///
/// Where the graph fans out, every branch gets the record even when one fails (a
/// failure belongs to its branch); the failures of the other branches (and of an
/// explode's other elements) ride along in `also`, and each becomes its own dead letter.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordError {
    pub component: &'static str,
    pub error: EvalError,
    pub also: Vec<(&'static str, EvalError)>,
}

impl RecordError {
    pub fn new(component: &'static str, error: EvalError) -> Self {
        RecordError {
            component,
            error,
            also: Vec::new(),
        }
    }

    /// Every failure: this one first, then the other branches'.
    pub fn failures(&self) -> impl Iterator<Item = (&'static str, &EvalError)> {
        std::iter::once((self.component, &self.error)).chain(self.also.iter().map(|(c, e)| (*c, e)))
    }

    /// Adds another branch's failures. Each is kept, even for a component already
    /// named (two exploded elements failing in the same place): every record a
    /// component received and failed on is one dead letter, so its counters add up.
    fn absorb(&mut self, other: RecordError) {
        self.also.push((other.component, other.error));
        self.also.extend(other.also);
    }
}

/// The outcome of handing one record to several branches: every branch ran, and the
/// failures (if any) are combined. Generated fan-outs are `branches([a(..), b(..)])`.
#[inline]
pub fn branches<const N: usize>(results: [Result<(), RecordError>; N]) -> Result<(), RecordError> {
    let mut failed: Option<RecordError> = None;
    for result in results {
        if let Err(e) = result {
            match &mut failed {
                Some(first) => first.absorb(e),
                None => failed = Some(e),
            }
        }
    }
    failed.map_or(Ok(()), Err)
}

/// Combines the outcome of one more record into a running one (an explode's elements).
#[inline]
pub fn also(done: Result<(), RecordError>, next: Result<(), RecordError>) -> Result<(), RecordError> {
    branches([done, next])
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.component, self.error)?;
        for (component, error) in &self.also {
            write!(f, "; {component}: {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RecordError {}

/// Why one raw record could not be decoded into the source's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub reason: String,
    /// The bytes are not in the format at all (not JSON), as opposed to a value that
    /// does not fit the schema: an HTTP body with such a record is refused whole.
    pub malformed: bool,
}

impl DecodeError {
    pub fn new(reason: impl Into<String>) -> Self {
        DecodeError {
            reason: reason.into(),
            malformed: false,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for DecodeError {}

impl From<serde_json::Error> for DecodeError {
    fn from(e: serde_json::Error) -> Self {
        use serde_json::error::Category;
        DecodeError {
            malformed: matches!(e.classify(), Category::Syntax | Category::Eof),
            reason: e.to_string(),
        }
    }
}

/// A fatal error while the pipeline runs (I/O failure, a bad record with
/// `on_error: fail`). The driver logs it, still closes the outputs, and exits with 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunError(String);

impl RunError {
    pub fn new(message: impl Into<String>) -> Self {
        RunError(message.into())
    }

    pub fn message(&self) -> &str {
        &self.0
    }

    /// Every one of several steps was attempted (each output flushed, say); the
    /// failures, if any, are reported together, so one failing output neither stops the
    /// others nor hides their failures. Generated code: `RunError::all([a.flush(), ..])`.
    pub fn all<const N: usize>(results: [Result<(), RunError>; N]) -> Result<(), RunError> {
        let failures: Vec<String> = results.into_iter().filter_map(Result::err).map(|e| e.0).collect();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(RunError(failures.join("; ")))
        }
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RunError {}

impl From<std::io::Error> for RunError {
    fn from(e: std::io::Error) -> Self {
        RunError(format!("I/O error: {e}"))
    }
}

/// A configuration mistake found at start (bad setting, missing variable, file that
/// cannot be opened). The driver prints it and exits with 2 before any data moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartError(String);

impl StartError {
    pub fn new(message: impl Into<String>) -> Self {
        StartError(message.into())
    }

    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_errors_read_as_sentences() {
        assert_eq!(EvalError::Overflow { op: "*" }.to_string(), "integer overflow in `*`");
        assert_eq!(
            EvalError::IndexOutOfRange { index: -4, len: 3 }.to_string(),
            "index -4 is out of range for a list of length 3"
        );
        let e = RecordError::new("transforms.hot", EvalError::DivisionByZero);
        assert_eq!(e.to_string(), "transforms.hot: division by zero");
    }

    #[test]
    fn every_branch_failure_is_kept_once_per_component() {
        let hot = || Err(RecordError::new("transforms.hot", EvalError::DivisionByZero));
        let full = || Err(RecordError::new("windows.w", EvalError::StateFull { max_keys: 1 }));
        assert_eq!(branches([Ok(()), Ok(())]), Ok(()));
        let e = branches([Ok(()), hot(), Ok(()), full()]).unwrap_err();
        let names: Vec<&str> = e.failures().map(|(c, _)| c).collect();
        assert_eq!(names, ["transforms.hot", "windows.w"]);
        assert_eq!(
            e.to_string(),
            "transforms.hot: division by zero; windows.w: state is full (max_keys 1, on_full: dead_letter)"
        );
        // Two exploded elements failing in the same place are two failures.
        let twice = also(also(Ok(()), full()), branches([full(), hot()])).unwrap_err();
        let names: Vec<&str> = twice.failures().map(|(c, _)| c).collect();
        assert_eq!(names, ["windows.w", "windows.w", "transforms.hot"]);
    }

    #[test]
    fn json_errors_become_decode_errors_with_position() {
        let err = serde_json::from_str::<u32>("\"x\"").map(|_| ()).unwrap_err();
        let d = DecodeError::from(err);
        assert!(d.reason.contains("line 1"), "{}", d.reason);
    }

    #[test]
    fn all_failures_are_reported_together() {
        assert_eq!(RunError::all([Ok(()), Ok(())]), Ok(()));
        let e = RunError::all([
            Err(RunError::new("sinks.a: disk full")),
            Ok(()),
            Err(RunError::new("dead letters: gone")),
        ]);
        assert_eq!(e, Err(RunError::new("sinks.a: disk full; dead letters: gone")));
    }

    #[test]
    fn io_errors_become_run_errors() {
        let e = RunError::from(std::io::Error::other("disk full"));
        assert_eq!(e.message(), "I/O error: disk full");
    }
}

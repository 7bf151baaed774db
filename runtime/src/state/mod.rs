//! Checkpoints: the pipeline's state on disk, so a crash or a power cut loses nothing.
//!
//! With a state directory (`--state-dir`), the driver takes a checkpoint every
//! `checkpoint_interval` and at shutdown, at a step boundary where every output is
//! flushed and no message is in flight: each source's position, each window's and
//! table's state, each sink's committed length and the clocks, all in one file (see
//! [`file`]). On start the newest valid checkpoint is restored (the previous one when
//! the newest is damaged) and each source resumes from its position; file sinks are cut
//! back to their committed length, so what the replay writes again replaces what was
//! written after the checkpoint: the output equals an uninterrupted run's.
//!
//! Committing sources (Kafka offsets, MQTT acknowledgements) commit only what the last
//! written checkpoint covers ([`crate::acks::Acks::checkpointed`]): state held in a
//! window no longer holds commits back, because the checkpoint holds the state.

pub mod check;
pub mod file;

use crate::driver::{Pipeline, PipelineInfo};
use crate::errors::{RunError, StartError};
use crate::internal_events::Events;
use file::Checkpoint;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Default time between checkpoints.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// Longest wait, when a checkpoint is due, for messages in flight to be confirmed; the
/// checkpoint is put off to the next interval when they are not (a broker away).
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// A component whose state goes into checkpoints: sources (positions), windows and
/// tables (their state), sinks (committed lengths), the clocks (watermarks).
pub trait Checkpointed {
    /// The component's name, under which its state is stored (`sources.in`, `clocks`).
    fn section(&self) -> &'static str;
    /// Appends the component's state at a step boundary: every output flushed, nothing
    /// in flight. Sinks make what they wrote durable here (fsync).
    fn save(&mut self, out: &mut Vec<u8>) -> Result<(), RunError>;
    /// Restores what [`Self::save`] wrote, before the first step.
    fn restore(&mut self, saved: &[u8]) -> Result<(), StartError>;
}

/// Encodes a component's state with postcard, into `out`.
pub fn save_value<T: serde::Serialize>(section: &str, value: &T, out: &mut Vec<u8>) -> Result<(), RunError> {
    let bytes =
        postcard::to_allocvec(value).map_err(|e| RunError::new(format!("{section}: cannot save state: {e}")))?;
    out.extend_from_slice(&bytes);
    Ok(())
}

/// Decodes what [`save_value`] wrote.
pub fn restore_value<T: serde::de::DeserializeOwned>(section: &str, saved: &[u8]) -> Result<T, StartError> {
    postcard::from_bytes(saved).map_err(|e| {
        StartError::new(format!(
            "{section}: the checkpoint's state does not fit this binary: {e}"
        ))
    })
}

/// The state directory of a run: locked against a second process, with the checkpoint
/// restored from it (if any) and the next one to write.
pub struct StateStore {
    dir: PathBuf,
    checkpoints: PathBuf,
    /// Held for the life of the run: two processes on one state directory would write
    /// over each other's checkpoints and outputs.
    _lock: File,
    restored: Option<Checkpoint>,
    next_seq: u64,
    interval: Duration,
    last: Instant,
    /// The sections last written, so an idle pipeline does not rewrite the same
    /// checkpoint every interval (flash storage wears).
    last_sections: Vec<(String, Vec<u8>)>,
    info: &'static PipelineInfo,
    /// Where `/metrics` and `/health` read what the checkpoints did.
    events: Events,
}

impl StateStore {
    /// Opens (creating) `dir`, locks it, and loads the newest valid checkpoint; with
    /// `reset`, removes the checkpoints first. Refuses state written by another spec.
    pub fn open(
        dir: &Path,
        interval: Duration,
        reset: bool,
        info: &'static PipelineInfo,
        events: &Events,
    ) -> Result<Self, StartError> {
        let shown = dir.display();
        let fail =
            |what: &str, e: std::io::Error| StartError::new(format!("state directory `{shown}`: cannot {what}: {e}"));
        fs::create_dir_all(dir).map_err(|e| fail("create it", e))?;
        let lock = File::create(dir.join("LOCK")).map_err(|e| fail("create its LOCK file", e))?;
        if lock.try_lock().is_err() {
            return Err(StartError::new(format!(
                "state directory `{shown}` is in use by another process; each running pipeline needs its own"
            )));
        }
        let checkpoints = file::checkpoint_dir(dir);
        file::remove_unfinished(&checkpoints);
        if reset {
            let removed = file::list(&checkpoints);
            for (_, path) in &removed {
                fs::remove_file(path).map_err(|e| fail("remove an old checkpoint", e))?;
            }
            crate::log::warn(
                "state reset: checkpoints removed, starting afresh",
                &[
                    ("state_dir", shown.to_string().into()),
                    ("removed", removed.len().into()),
                ],
            );
        }
        let restored = load_newest(&checkpoints)?;
        if let Some(cp) = &restored {
            if cp.spec_hash != info.spec_hash || cp.pipeline != info.name {
                return Err(StartError::new(format!(
                    "state directory `{shown}` holds the state of pipeline `{}` with spec {}, but this is `{}` with spec {}: \
                     state from another spec is never mixed in. Run with --reset-state to discard it, \
                     or give this pipeline a state directory of its own",
                    cp.pipeline, cp.spec_hash, info.name, info.spec_hash
                )));
            }
        }
        let next_seq = restored.as_ref().map_or(1, |cp| cp.seq + 1);
        Ok(StateStore {
            dir: dir.to_owned(),
            checkpoints,
            _lock: lock,
            last_sections: restored.as_ref().map(|cp| cp.sections.clone()).unwrap_or_default(),
            restored,
            next_seq,
            interval,
            last: Instant::now(),
            info,
            events: {
                events.checkpoints().enable();
                events.clone()
            },
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn restored(&self) -> Option<&Checkpoint> {
        self.restored.as_ref()
    }

    /// Hands each component its saved state. A component without a section, or a
    /// section without its component, means the checkpoint is not this pipeline's.
    pub fn restore<P: Pipeline>(&mut self, pipeline: &mut P) -> Result<(), StartError> {
        let Some(cp) = self.restored.take() else {
            return Ok(());
        };
        let mut parts = pipeline.checkpointed();
        for (name, _) in &cp.sections {
            if !parts.iter().any(|p| p.section() == name) {
                return Err(StartError::new(format!(
                    "checkpoint {} has state for `{name}`, which this pipeline does not have; run with --reset-state to discard it",
                    cp.seq
                )));
            }
        }
        for part in parts.iter_mut() {
            let Some(saved) = cp.section(part.section()) else {
                return Err(StartError::new(format!(
                    "checkpoint {} has no state for `{}`; run with --reset-state to discard it",
                    cp.seq,
                    part.section()
                )));
            };
            part.restore(saved)?;
        }
        drop(parts);
        let age_ms = crate::fns::now_ms().saturating_sub(cp.written_ms);
        crate::log::info(
            "state restored",
            &[
                ("checkpoint", cp.seq.into()),
                ("age_ms", age_ms.into()),
                ("state_bytes", cp.state_bytes().into()),
            ],
        );
        Ok(())
    }

    /// True when the interval since the last checkpoint has passed; otherwise asks
    /// [`crate::wake`] to look again then, so a sleeping pipeline still checkpoints.
    pub fn due(&self) -> bool {
        let at = self.last + self.interval;
        if Instant::now() >= at {
            return true;
        }
        crate::wake::look_again_at(at);
        false
    }

    /// Takes a checkpoint: waits (briefly) for messages in flight, saves every
    /// component and writes the file. A checkpoint that cannot be taken or written is
    /// logged and tried again at the next interval; the previous one stays valid.
    /// `Err` only when flushing the outputs fails, which stops the run anyway.
    pub fn checkpoint<P: Pipeline>(&mut self, pipeline: &mut P, acks: &crate::acks::Acks) -> Result<(), RunError> {
        self.last = Instant::now();
        let waited = Instant::now();
        acks.set_draining(true);
        let drained = drain(pipeline, acks, waited);
        acks.set_draining(false);
        if !drained? {
            self.events.checkpoints().put_off();
            crate::log::warn(
                "checkpoint put off: messages still unconfirmed",
                &[("in_flight", acks.in_flight().into())],
            );
            return Ok(());
        }
        self.write_now(pipeline, acks).map(|_| ())
    }

    /// The checkpoint at the end of a run, after every output was closed (so nothing is
    /// in flight): a failure to write it is the run's failure, so the exit says so.
    pub fn final_checkpoint<P: Pipeline>(
        &mut self,
        pipeline: &mut P,
        acks: &crate::acks::Acks,
    ) -> Result<(), RunError> {
        match self.write_now(pipeline, acks)? {
            true => Ok(()),
            false => Err(RunError::new(format!(
                "the final checkpoint could not be written in `{}`; the next start resumes from the previous one",
                self.dir.display()
            ))),
        }
    }

    /// Saves every component and writes the checkpoint. False when it could not be
    /// written (logged; the previous one stays valid).
    fn write_now<P: Pipeline>(&mut self, pipeline: &mut P, acks: &crate::acks::Acks) -> Result<bool, RunError> {
        let started = Instant::now();
        let mut sections = Vec::new();
        for part in pipeline.checkpointed() {
            let mut bytes = Vec::new();
            part.save(&mut bytes)?;
            sections.push((part.section().to_owned(), bytes));
        }
        if sections == self.last_sections {
            // Nothing changed since the last one: it still holds.
            acks.checkpointed(acks.epoch());
            self.events.checkpoints().written(0, 0);
            return Ok(true);
        }
        let cp = Checkpoint {
            seq: self.next_seq,
            pipeline: self.info.name.to_owned(),
            spec_hash: self.info.spec_hash.to_owned(),
            written_ms: crate::fns::now_ms(),
            sections,
        };
        match file::write(&self.checkpoints, &cp) {
            Ok(bytes) => {
                self.next_seq += 1;
                acks.checkpointed(acks.epoch());
                self.events
                    .checkpoints()
                    .written(bytes, started.elapsed().as_micros() as u64);
                crate::log::debug(
                    "checkpoint written",
                    &[
                        ("checkpoint", cp.seq.into()),
                        ("bytes", bytes.into()),
                        ("micros", (started.elapsed().as_micros() as u64).into()),
                    ],
                );
                self.last_sections = cp.sections;
                Ok(true)
            }
            Err(e) => {
                self.events.checkpoints().failed();
                crate::log::error("checkpoint not written; the previous one stays", &[("error", e.into())]);
                Ok(false)
            }
        }
    }
}

/// Flushes the outputs until nothing is in flight; false when that did not happen
/// within [`DRAIN_LIMIT`] (or a stop is being waited for).
fn drain<P: Pipeline>(pipeline: &mut P, acks: &crate::acks::Acks, waited: Instant) -> Result<bool, RunError> {
    loop {
        pipeline.flush()?;
        if acks.in_flight() == 0 {
            return Ok(true);
        }
        if waited.elapsed() >= DRAIN_LIMIT || crate::shutdown::give_up_waiting() {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The newest checkpoint in `dir` that verifies; a damaged newer one is reported and
/// skipped. `None` when there is none at all; an error when every one is damaged.
fn load_newest(dir: &Path) -> Result<Option<Checkpoint>, StartError> {
    let found = file::list(dir);
    let mut damaged = Vec::new();
    for (seq, path) in &found {
        match file::read(path) {
            Ok(cp) => {
                for (bad, why) in &damaged {
                    crate::log::warn(
                        "damaged checkpoint skipped, using an older one",
                        &[
                            ("damaged", format!("{bad}").into()),
                            ("why", format!("{why}").into()),
                            ("using", (*seq).into()),
                        ],
                    );
                }
                return Ok(Some(cp));
            }
            Err(why) => damaged.push((*seq, why)),
        }
    }
    match damaged.first() {
        None => Ok(None),
        Some(_) => {
            let list: Vec<String> = damaged
                .iter()
                .map(|(s, why)| format!("checkpoint {s}: {why}"))
                .collect();
            Err(StartError::new(format!(
                "no usable checkpoint in `{}` ({}). Run `state check` on the state directory for details, \
                 or start with --reset-state to discard them",
                dir.display(),
                list.join("; ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acks::Acks;
    use crate::driver::{Pipeline, PipelineInfo, Step};
    use crate::test_util::TempDir;

    static INFO: PipelineInfo = PipelineInfo {
        name: "p",
        spec_hash: "hash-1",
        settings: &[],
        fires: false,
    };
    static OTHER: PipelineInfo = PipelineInfo {
        name: "p",
        spec_hash: "hash-2",
        settings: &[],
        fires: false,
    };

    /// One component whose state is a number.
    struct Counter(u64);

    impl Checkpointed for Counter {
        fn section(&self) -> &'static str {
            "sources.n"
        }
        fn save(&mut self, out: &mut Vec<u8>) -> Result<(), RunError> {
            save_value("n", &self.0, out)
        }
        fn restore(&mut self, saved: &[u8]) -> Result<(), StartError> {
            self.0 = restore_value("n", saved)?;
            Ok(())
        }
    }

    impl Pipeline for Counter {
        fn step(&mut self) -> Result<Step, RunError> {
            Ok(Step::Idle)
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
            vec![self]
        }
    }

    fn open(dir: &Path, info: &'static PipelineInfo, reset: bool) -> Result<StateStore, StartError> {
        StateStore::open(dir, Duration::ZERO, reset, info, &Events::new())
    }

    #[test]
    fn restores_the_newest_good_checkpoint_and_falls_back_past_a_damaged_one() {
        let tmp = TempDir::new("state_store");
        let dir = Path::new(&tmp.path("s")).to_owned();
        let acks = Acks::new();
        {
            let mut store = open(&dir, &INFO, false).unwrap_or_else(|e| panic!("{e}"));
            assert!(store.restored().is_none());
            for n in [5, 5, 6, 7] {
                let mut p = Counter(n);
                assert_eq!(store.final_checkpoint(&mut p, &acks), Ok(()));
            }
        }
        let files = file::list(&file::checkpoint_dir(&dir));
        assert_eq!(
            files.iter().map(|f| f.0).collect::<Vec<_>>(),
            [3, 2],
            "an unchanged state is not written again"
        );
        let mut p = Counter(0);
        let mut store = open(&dir, &INFO, false).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.restore(&mut p), Ok(()));
        assert_eq!(p.0, 7);
        drop(store);
        std::fs::write(&files[0].1, b"RILLCKPT\x01\x00").unwrap_or_else(|e| panic!("{e}"));
        let mut store = open(&dir, &INFO, false).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.restored().map(|c| c.seq), Some(2));
        assert_eq!(store.restore(&mut p), Ok(()));
        assert_eq!(p.0, 6);
        drop(store);
        std::fs::write(&files[1].1, b"").unwrap_or_else(|e| panic!("{e}"));
        let none = open(&dir, &INFO, false)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            none.contains("no usable checkpoint") && none.contains("--reset-state"),
            "{none}"
        );
        let reset = open(&dir, &INFO, true).unwrap_or_else(|e| panic!("{e}"));
        assert!(reset.restored().is_none());
    }

    #[test]
    fn refuses_another_specs_state_and_a_second_process() {
        let tmp = TempDir::new("state_refuse");
        let dir = Path::new(&tmp.path("s")).to_owned();
        let mut store = open(&dir, &INFO, false).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.final_checkpoint(&mut Counter(1), &Acks::new()), Ok(()));
        let busy = open(&dir, &INFO, false)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(busy.contains("in use by another process"), "{busy}");
        drop(store);
        let other = open(&dir, &OTHER, false)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            other.contains("spec hash-1, but this is `p` with spec hash-2") && other.contains("--reset-state"),
            "{other}"
        );
        // A leftover temporary file of an interrupted write is cleared away.
        let tmp_file = file::checkpoint_dir(&dir).join("checkpoint-00000000000000000009.bin.tmp");
        std::fs::write(&tmp_file, b"half").unwrap_or_else(|e| panic!("{e}"));
        assert!(open(&dir, &INFO, false).is_ok());
        assert!(!tmp_file.exists());
    }
}

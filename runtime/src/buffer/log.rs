//! The on-disk log of one buffer: segment files of framed records, and the position up
//! to which everything was delivered.
//!
//! Positions are global byte offsets: a segment is named after the position of its first
//! byte (`segment-<position:020>.log`), so a record's position never changes, across
//! segments and restarts, and the delivered position (`delivered`, written to a
//! temporary file, fsynced and renamed) says exactly where delivery resumes. Records are
//! appended with one positioned write per batch (a step's records), so a failed write (a
//! full disk) is cut off at once and never leaves half a record before the next one. A segment is deleted only
//! when every record in it is delivered (or dropped by `when_full: drop_oldest`).
//!
//! Opening walks every segment: a damaged record in the middle is logged and skipped
//! when read; a damaged tail of the newest segment (a crash in the middle of a write) is
//! logged with what it held and cut off. Nothing here ever refuses to open.

use super::frame::{self, Step, HEADER};
use crate::log;
use serde_json::json;
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

/// Segments never grow past this.
const MAX_SEGMENT: u64 = 64 << 20;
/// Segments are at least this large (unless one record is larger).
const MIN_SEGMENT: u64 = 4 << 10;
/// The file holding the delivered position.
const DELIVERED: &str = "delivered";

/// The name of the segment starting at `base`.
pub fn segment_name(base: u64) -> String {
    format!("segment-{base:020}.log")
}

/// The start position in a segment's file name.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("segment-")?.strip_suffix(".log")?;
    (digits.len() == 20).then(|| digits.parse().ok()).flatten()
}

/// The segment files in `dir`, oldest first.
pub fn list_segments(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut found: Vec<(u64, PathBuf)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((parse_segment_name(e.file_name().to_str()?)?, e.path())))
        .collect();
    found.sort();
    found
}

/// Reads the delivered position saved in `dir`: `Ok(None)` when there is none,
/// `Err` when the file is damaged.
pub fn read_delivered(dir: &Path) -> Result<Option<u64>, String> {
    let bytes = match fs::read(dir.join(DELIVERED)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read it: {e}")),
    };
    let (Some(pos), Some(crc)) = (bytes.get(0..8), bytes.get(8..12)) else {
        return Err(format!("{} bytes, not 12", bytes.len()));
    };
    if bytes.len() != 12 || crc32fast::hash(pos) != u32::from_le_bytes(crc.try_into().unwrap_or_default()) {
        return Err("its checksum does not match".into());
    }
    Ok(Some(u64::from_le_bytes(pos.try_into().unwrap_or_default())))
}

/// Why a record was not appended.
#[derive(Debug)]
pub enum AppendError {
    /// The log holds `max_size` (or the disk is full): `when_full` decides.
    Full {
        disk: bool,
    },
    /// The record alone is larger than the whole buffer.
    TooLarge,
    /// A batch of records larger than a segment: append them one by one.
    Split,
    Io(io::Error),
}

/// What [`Log::read`] found at a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// A record (its bytes are in the buffer given); the next one is at `next`.
    Record { next: u64 },
    /// Damaged bytes to skip: the next frame is at `next`.
    Damaged { next: u64, bytes: u64, why: &'static str },
    /// Nothing more has been appended.
    End,
}

/// How much of a segment one read takes ahead.
const READ_AHEAD: u64 = 256 << 10;

/// Bytes of a segment read ahead of delivery (never changed on disk once written).
#[derive(Default)]
struct ReadAhead {
    /// The position of its first byte.
    start: u64,
    bytes: Vec<u8>,
}

impl ReadAhead {
    /// The good record at `pos`, if it lies wholly in the chunk; its next position.
    fn record(&self, pos: u64, into: &mut Vec<u8>) -> Option<u64> {
        let at = usize::try_from(pos.checked_sub(self.start)?).ok()?;
        let rest = self.bytes.get(at..).filter(|r| !r.is_empty())?;
        let frame::Frame::Record { len } = frame::parse(rest) else {
            return None;
        };
        into.clear();
        into.extend_from_slice(&rest[HEADER as usize..HEADER as usize + len as usize]);
        Some(pos + HEADER + u64::from(len))
    }
}

struct Segment {
    base: u64,
    /// Bytes written (and kept: a failed write is cut back to this).
    len: u64,
    /// Records in it not yet delivered.
    undelivered: u64,
    path: PathBuf,
    file: File,
}

impl Segment {
    fn end(&self) -> u64 {
        self.base + self.len
    }
}

pub struct Log {
    dir: PathBuf,
    component: &'static str,
    segments: VecDeque<Segment>,
    max_bytes: u64,
    segment_bytes: u64,
    /// Everything before it is delivered.
    delivered: u64,
    /// The delivered position last written to disk.
    saved_delivered: Option<u64>,
    /// The position after the last record.
    end: u64,
    /// Records not yet delivered.
    records: u64,
    /// Records appended since the last sync.
    unsynced: bool,
    frame: Vec<u8>,
    ahead: ReadAhead,
    /// Tests: writes fail with a full disk once the log holds this many bytes.
    #[cfg(test)]
    pub disk_space: Option<u64>,
}

impl Log {
    /// Opens (or creates) the log in `dir`, repairing a torn tail; logs what it found.
    pub fn open(dir: &Path, max_bytes: u64, component: &'static str) -> io::Result<Log> {
        fs::create_dir_all(dir)?;
        let _ = fs::remove_file(dir.join(format!("{DELIVERED}.tmp")));
        let saved = match read_delivered(dir) {
            Ok(saved) => saved,
            Err(why) => {
                log::warn(
                    "buffer: the delivered position is damaged; delivering the whole log again (at least once)",
                    &[("component", json!(component)), ("why", json!(why))],
                );
                None
            }
        };
        let found = list_segments(dir);
        let mut log = Log {
            dir: dir.to_path_buf(),
            component,
            segments: VecDeque::new(),
            max_bytes,
            segment_bytes: (max_bytes / 8).clamp(MIN_SEGMENT, MAX_SEGMENT),
            delivered: 0,
            saved_delivered: saved,
            end: 0,
            records: 0,
            unsynced: false,
            frame: Vec::new(),
            ahead: ReadAhead::default(),
            #[cfg(test)]
            disk_space: None,
        };
        let first = found.first().map(|(base, _)| *base);
        let delivered = match (saved, first) {
            (Some(saved), Some(first)) => saved.max(first),
            (Some(saved), None) => saved,
            (None, first) => first.unwrap_or(0),
        };
        log.delivered = delivered;
        let newest = found.len().saturating_sub(1);
        for (i, (base, path)) in found.into_iter().enumerate() {
            if let Some(prev) = log.segments.back() {
                if prev.end() != base {
                    log::warn(
                        "buffer: segments do not follow each other (a segment file is missing or damaged)",
                        &[
                            ("component", json!(component)),
                            ("segment", json!(segment_name(base))),
                            ("expected_start", json!(prev.end())),
                        ],
                    );
                }
            }
            let segment = log.open_segment(base, path, i == newest)?;
            log.records += segment.undelivered;
            log.segments.push_back(segment);
        }
        log.end = log.segments.back().map_or(delivered, Segment::end).max(delivered);
        log.delivered = log.delivered.min(log.end);
        log.delete_delivered(true)?;
        if log.records > 0 {
            log::info(
                "buffer: undelivered records from the last run are delivered first",
                &[
                    ("component", json!(component)),
                    ("records", json!(log.records)),
                    ("bytes", json!(log.end - log.delivered)),
                ],
            );
        }
        Ok(log)
    }

    /// Reads and verifies one segment: counts its undelivered records, logs damage, and
    /// cuts a damaged tail off the newest segment (where the next record goes).
    fn open_segment(&mut self, base: u64, path: PathBuf, newest: bool) -> io::Result<Segment> {
        let bytes = fs::read(&path)?;
        let mut undelivered = 0;
        let mut len = bytes.len() as u64;
        let name = segment_name(base);
        for step in frame::scan(&bytes) {
            match step {
                Step::Record { offset, .. } => {
                    if base + offset as u64 >= self.delivered {
                        undelivered += 1;
                    }
                }
                Step::Damaged(d) if base + d.offset + d.bytes <= self.delivered => {}
                Step::Damaged(d) if d.tail && newest => {
                    log::warn(
                        "buffer: the last record was cut short (a crash while writing); cut off",
                        &[
                            ("component", json!(self.component)),
                            ("segment", json!(name)),
                            ("offset", json!(d.offset)),
                            ("bytes_lost", json!(d.bytes)),
                            ("records_lost", json!(lost_records(&bytes, &d))),
                            ("why", json!(d.why)),
                        ],
                    );
                    len = d.offset;
                }
                Step::Damaged(d) => log::warn(
                    "buffer: a damaged record is skipped",
                    &[
                        ("component", json!(self.component)),
                        ("segment", json!(name)),
                        ("offset", json!(d.offset)),
                        ("bytes_skipped", json!(d.bytes)),
                        ("why", json!(d.why)),
                    ],
                ),
            }
        }
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        if len < bytes.len() as u64 {
            file.set_len(len)?;
            file.sync_all()?;
        }
        Ok(Segment {
            base,
            len,
            undelivered,
            path,
            file,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Everything before this position is delivered.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// The position after the last record.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Records not yet delivered.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Bytes the log's segments take on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.segments.front().map_or(0, |s| self.end - s.base)
    }

    /// Segment files on disk.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Whether a record of `len` bytes can ever be appended (it is not larger than the
    /// whole buffer).
    pub fn fits(&self, len: usize) -> bool {
        HEADER + len as u64 <= self.max_bytes && len <= frame::MAX_RECORD as usize
    }

    /// Appends one record; returns its position. A failed write leaves the log as it was.
    pub fn append(&mut self, record: &[u8]) -> Result<u64, AppendError> {
        if !self.fits(record.len()) {
            return Err(AppendError::TooLarge);
        }
        let mut framed = std::mem::take(&mut self.frame);
        framed.clear();
        frame::frame(record, &mut framed);
        let appended = self.append_frames(&framed, 1);
        self.frame = framed;
        appended
    }

    /// Appends records already framed (by [`frame::frame`]), `count` of them, with one
    /// write into one segment; returns the first one's position. A failed write leaves
    /// the log as it was.
    pub fn append_frames(&mut self, frames: &[u8], count: u64) -> Result<u64, AppendError> {
        let len = frames.len() as u64;
        if count > 1 && len > self.segment_bytes {
            return Err(AppendError::Split);
        }
        if self.disk_bytes() + len > self.max_bytes {
            return Err(AppendError::Full { disk: false });
        }
        let roll = self
            .segments
            .back()
            .is_none_or(|s| s.len > 0 && s.len + len > self.segment_bytes);
        if roll {
            self.roll().map_err(classify)?;
        }
        let pos = self.end;
        let Some(active) = self.segments.back_mut() else {
            return Err(AppendError::Io(io::Error::other("no active segment")));
        };
        #[cfg(test)]
        let written = match self.disk_space {
            // A disk that fills up in the middle of the write.
            Some(space) if active.end() + len > space => {
                let room = space.saturating_sub(active.end()) as usize;
                active
                    .file
                    .write_all_at(&frames[..room], active.len)
                    .and(Err(io::Error::from(io::ErrorKind::StorageFull)))
            }
            _ => active.file.write_all_at(frames, active.len),
        };
        #[cfg(not(test))]
        let written = active.file.write_all_at(frames, active.len);
        if let Err(e) = written {
            // Never leave part of a record behind: the next one would follow garbage.
            let _ = active.file.set_len(active.len);
            return Err(classify(e));
        }
        active.len += len;
        active.undelivered += count;
        self.end += len;
        self.records += count;
        self.unsynced = true;
        Ok(pos)
    }

    /// Starts a new segment at the end (syncing the one it replaces).
    fn roll(&mut self) -> io::Result<()> {
        if let Some(active) = self.segments.back() {
            if self.unsynced {
                active.file.sync_data()?;
            }
        }
        let path = self.dir.join(segment_name(self.end));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        crate::state::file::sync_dir(&self.dir)?;
        self.segments.push_back(Segment {
            base: self.end,
            len: 0,
            undelivered: 0,
            path,
            file,
        });
        Ok(())
    }

    /// Whether records were appended since the last [`Self::sync`].
    pub fn unsynced(&self) -> bool {
        self.unsynced
    }

    /// Makes every appended record durable.
    pub fn sync(&mut self) -> io::Result<()> {
        if self.unsynced {
            if let Some(active) = self.segments.back() {
                active.file.sync_data()?;
            }
            self.unsynced = false;
        }
        Ok(())
    }

    /// Reads the record at `pos` into `into`.
    pub fn read(&mut self, pos: u64, into: &mut Vec<u8>) -> io::Result<Read> {
        let Some(segment) = self.segments.iter().find(|s| s.base <= pos && pos < s.end()) else {
            return Ok(match self.segments.iter().find(|s| s.base > pos) {
                // A gap (a missing segment): go on with the next one.
                Some(next) => Read::Damaged {
                    next: next.base,
                    bytes: next.base - pos,
                    why: "a missing segment",
                },
                None => Read::End,
            });
        };
        let offset = pos - segment.base;
        let rest = segment.len - offset;
        // Records are read from a chunk read ahead: one read for many records.
        if let Some(next) = self.ahead.record(pos, into) {
            return Ok(Read::Record { next });
        }
        let chunk = rest.min(READ_AHEAD) as usize;
        self.ahead.bytes.resize(chunk, 0);
        segment.file.read_exact_at(&mut self.ahead.bytes, offset)?;
        self.ahead.start = pos;
        if let Some(next) = self.ahead.record(pos, into) {
            return Ok(Read::Record { next });
        }
        let mut header = [0u8; HEADER as usize];
        if rest >= HEADER {
            segment.file.read_exact_at(&mut header, offset)?;
            if let Some((len, _)) = frame::header(&header) {
                let whole = HEADER + u64::from(len);
                if len > 0 && len <= frame::MAX_RECORD && whole <= rest {
                    into.clear();
                    into.resize(whole as usize, 0);
                    segment.file.read_exact_at(into, offset)?;
                    if let frame::Frame::Record { .. } = frame::parse(into) {
                        into.drain(..HEADER as usize);
                        return Ok(Read::Record { next: pos + whole });
                    }
                }
            }
        }
        // Damaged: find the next good frame in the rest of the segment.
        into.clear();
        into.resize(rest as usize, 0);
        segment.file.read_exact_at(into, offset)?;
        Ok(match frame::step(into, 0) {
            Some(Step::Damaged(d)) => Read::Damaged {
                next: pos + d.bytes,
                bytes: d.bytes,
                why: d.why,
            },
            // Read again, and whole this time (it changed under us: never expected).
            Some(Step::Record { next, .. }) => {
                into.truncate(next);
                into.drain(..HEADER as usize);
                Read::Record {
                    next: pos + next as u64,
                }
            }
            None => Read::End,
        })
    }

    /// Everything from `pos` to `next` is delivered (one record, or damaged bytes when
    /// `record` is false). Called in order of position.
    pub fn delivered_through(&mut self, pos: u64, next: u64, record: bool) -> io::Result<()> {
        if next <= self.delivered {
            return Ok(());
        }
        if record && pos >= self.delivered {
            if let Some(segment) = self.segments.iter_mut().find(|s| s.base <= pos && pos < s.end()) {
                segment.undelivered = segment.undelivered.saturating_sub(1);
            }
            self.records = self.records.saturating_sub(1);
        }
        self.delivered = next;
        self.delete_delivered(false)
    }

    /// Deletes the segments whose records are all delivered; the newest only when
    /// `also_active` (at open and close: the next record starts a new one).
    fn delete_delivered(&mut self, also_active: bool) -> io::Result<()> {
        let mut deleted = false;
        while let Some(first) = self.segments.front() {
            let last = self.segments.len() == 1;
            if first.end() > self.delivered || (last && !also_active) {
                break;
            }
            if let Some(first) = self.segments.pop_front() {
                fs::remove_file(&first.path)?;
                deleted = true;
            }
        }
        if deleted {
            crate::state::file::sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// `when_full: drop_oldest`: gives up the oldest segment's undelivered records.
    /// Returns how many were dropped; `None` when there is nothing to drop.
    pub fn drop_oldest(&mut self) -> io::Result<Option<u64>> {
        let Some(first) = self.segments.front() else {
            return Ok(None);
        };
        let dropped = first.undelivered;
        let through = first.end();
        if self.segments.len() == 1 {
            // The next record goes to a new segment.
            self.sync()?;
        }
        self.records = self.records.saturating_sub(dropped);
        self.delivered = self.delivered.max(through);
        if let Some(first) = self.segments.pop_front() {
            fs::remove_file(&first.path)?;
            crate::state::file::sync_dir(&self.dir)?;
        }
        // The drop must survive a restart: the delivered position moved past it.
        self.save_delivered()?;
        Ok(Some(dropped))
    }

    /// Writes the delivered position if it moved: temporary file, fsync, rename, fsync.
    pub fn save_delivered(&mut self) -> io::Result<()> {
        if self.saved_delivered == Some(self.delivered) {
            return Ok(());
        }
        let mut bytes = self.delivered.to_le_bytes().to_vec();
        bytes.extend_from_slice(&crc32fast::hash(&bytes).to_le_bytes());
        let tmp = self.dir.join(format!("{DELIVERED}.tmp"));
        let written = File::create(&tmp)
            .and_then(|mut f| f.write_all(&bytes).and_then(|()| f.sync_all()))
            .and_then(|()| fs::rename(&tmp, self.dir.join(DELIVERED)))
            .and_then(|()| crate::state::file::sync_dir(&self.dir));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        self.saved_delivered = Some(self.delivered);
        Ok(())
    }

    /// Syncs everything and saves the delivered position; a log wholly delivered keeps
    /// no segment file.
    pub fn close(&mut self) -> io::Result<()> {
        self.sync()?;
        self.save_delivered()?;
        self.delete_delivered(true)
    }
}

/// How many records a damaged tail held: one when its first frame is a record cut short
/// or with a bad CRC; unknown (`null`) when its length is impossible.
fn lost_records(bytes: &[u8], d: &frame::Damage) -> Option<u64> {
    match frame::parse(bytes.get(d.offset as usize..)?) {
        frame::Frame::Short | frame::Frame::BadCrc { .. } => Some(1),
        frame::Frame::BadLength | frame::Frame::Record { .. } => None,
    }
}

/// A full disk (or quota) is a full buffer; anything else is an I/O error.
fn classify(e: io::Error) -> AppendError {
    match e.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => AppendError::Full { disk: true },
        _ => AppendError::Io(e),
    }
}

#[cfg(test)]
mod tests;

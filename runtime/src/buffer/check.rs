//! `state check` for disk buffers: every segment of every buffer, in order, record by
//! record, every CRC.
//!
//! Damage is reported with its segment file, offset and size. A damaged tail (a write
//! cut short) is what `--repair` cuts off, saying what that loses; a damaged stretch in
//! the middle is left in place, since a start skips exactly those bytes and delivers
//! the good records after it.

use super::frame::{self, Damage, Step};
use super::log::{list_segments, read_delivered};
use crate::state::check::Findings;
use std::fs::{self, OpenOptions};
use std::path::Path;

/// Verifies every buffer under `state_dir`.
pub fn check_all(state_dir: &Path, repair: bool, findings: &mut Findings) {
    let root = super::buffers_dir(state_dir);
    let mut buffers: Vec<_> = fs::read_dir(&root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    if buffers.is_empty() {
        findings.say(format!("buffers: none in `{}`", root.display()));
        return;
    }
    buffers.sort();
    for (name, dir) in buffers {
        check_buffer(&name, &dir, repair, findings);
    }
}

/// What one segment holds.
#[derive(Debug, Default)]
struct Counted {
    records: u64,
    undelivered: u64,
    damage: Vec<Damage>,
}

fn count(bytes: &[u8], base: u64, delivered: u64) -> Counted {
    let mut c = Counted::default();
    for step in frame::scan(bytes) {
        match step {
            Step::Record { offset, .. } => {
                c.records += 1;
                if base + offset as u64 >= delivered {
                    c.undelivered += 1;
                }
            }
            Step::Damaged(d) => c.damage.push(d),
        }
    }
    c
}

fn check_buffer(name: &str, dir: &Path, repair: bool, findings: &mut Findings) {
    let delivered = match read_delivered(dir) {
        Ok(Some(pos)) => pos,
        Ok(None) => 0,
        Err(why) => {
            let mut line = format!(
                "buffer {name}: the delivered position is DAMAGED ({why}): a start delivers the whole log again"
            );
            if repair {
                match fs::remove_file(dir.join("delivered")) {
                    Ok(()) => line.push_str("; repaired: removed (delivery restarts at the oldest record)"),
                    Err(e) => {
                        findings.damaged = true;
                        line.push_str(&format!("; cannot remove it: {e}"));
                    }
                }
            } else {
                findings.damaged = true;
            }
            findings.say(line);
            0
        }
    };
    let segments = list_segments(dir);
    if segments.is_empty() {
        findings.say(format!("buffer {name}: empty (delivered up to position {delivered})"));
        return;
    }
    findings.say(format!("buffer {name}: delivered up to position {delivered}"));
    let (mut undelivered, mut bytes_left, mut expected) = (0u64, 0u64, None::<u64>);
    let newest = segments.len() - 1;
    for (i, (base, path)) in segments.iter().enumerate() {
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(end) = expected.filter(|end| end != base) {
            findings.damaged = true;
            findings.say(format!(
                "  {file}: DAMAGED order: starts at position {base}, the previous segment ends at {end}"
            ));
        }
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) => {
                findings.damaged = true;
                findings.say(format!("  {file}: cannot read it: {e}"));
                continue;
            }
        };
        expected = Some(base + bytes.len() as u64);
        let c = count(&bytes, *base, delivered);
        undelivered += c.undelivered;
        bytes_left += (base + bytes.len() as u64).saturating_sub(delivered.max(*base));
        let crcs = if c.damage.is_empty() { "every CRC ok" } else { "DAMAGED" };
        findings.say(format!(
            "  {file}: {} records ({} undelivered), {} bytes, {crcs}",
            c.records,
            c.undelivered,
            bytes.len()
        ));
        for d in &c.damage {
            let at = format!(
                "  {file}: DAMAGED at offset {}: {} bytes ({})",
                d.offset, d.bytes, d.why
            );
            if d.tail {
                let lost = match frame::parse(&bytes[d.offset as usize..]) {
                    frame::Frame::BadLength => "an unknown number of records".to_string(),
                    _ => "1 record".to_string(),
                };
                if repair {
                    let cut = OpenOptions::new()
                        .write(true)
                        .open(path)
                        .and_then(|f| f.set_len(d.offset).and_then(|()| f.sync_all()));
                    match cut {
                        Ok(()) => findings.say(format!(
                            "{at}, the tail; repaired: cut off, lost {lost} ({} bytes)",
                            d.bytes
                        )),
                        Err(e) => {
                            findings.damaged = true;
                            findings.say(format!("{at}, the tail; cannot cut it off: {e}"));
                        }
                    }
                } else {
                    findings.damaged = true;
                    let start = if i == newest {
                        "a start cuts it off"
                    } else {
                        "a start skips it"
                    };
                    findings.say(format!("{at}, the tail: {lost} lost; {start}"));
                }
            } else {
                if !repair {
                    findings.damaged = true;
                }
                findings.say(format!(
                    "{at}, in the middle: a start skips these bytes and delivers the records after them"
                ));
            }
        }
    }
    findings.say(format!(
        "buffer {name}: {undelivered} records undelivered, {bytes_left} bytes"
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::log::Log;
    use crate::test_util::TempDir;

    fn fill(state: &Path, n: usize) -> std::path::PathBuf {
        let dir = crate::buffer::buffer_dir(state, "sinks.out");
        let mut log = Log::open(&dir, 1 << 20, "sinks.out").unwrap_or_else(|e| panic!("{e}"));
        for i in 0..n {
            assert!(log.append(format!("record {i:03}").as_bytes()).is_ok());
        }
        assert!(log.close().is_ok());
        list_segments(&dir).pop().map(|(_, p)| p).unwrap_or_default()
    }

    fn check(state: &Path, repair: bool) -> Findings {
        let mut findings = Findings::default();
        check_all(state, repair, &mut findings);
        findings
    }

    #[test]
    fn a_sound_buffer_is_reported_record_by_record() {
        let tmp = TempDir::new("check-sound");
        let state = Path::new(&tmp.path("state")).to_path_buf();
        fill(&state, 3);
        let f = check(&state, false);
        assert!(!f.damaged, "{:?}", f.lines);
        assert_eq!(
            f.lines,
            vec![
                "buffer sinks.out: delivered up to position 0".to_string(),
                "  segment-00000000000000000000.log: 3 records (3 undelivered), 54 bytes, every CRC ok".to_string(),
                "buffer sinks.out: 3 records undelivered, 54 bytes".to_string(),
            ]
        );
    }

    #[test]
    fn a_torn_tail_and_a_flipped_byte_are_reported_and_the_tail_repaired() {
        let tmp = TempDir::new("check-damage");
        let state = Path::new(&tmp.path("state")).to_path_buf();
        let segment = fill(&state, 4);
        let mut bytes = fs::read(&segment).unwrap_or_default();
        bytes[18 + 10] ^= 0x01;
        bytes.truncate(4 * 18 - 4);
        assert!(fs::write(&segment, &bytes).is_ok());
        let f = check(&state, false);
        assert!(f.damaged);
        let file = "segment-00000000000000000000.log";
        assert!(f.lines.contains(&format!(
            "  {file}: DAMAGED at offset 18: 18 bytes (a CRC mismatch), in the middle: a start skips these bytes and delivers the records after them"
        )), "{:#?}", f.lines);
        assert!(f.lines.contains(&format!(
            "  {file}: DAMAGED at offset 54: 14 bytes (a record cut short), the tail: 1 record lost; a start cuts it off"
        )), "{:#?}", f.lines);
        let f = check(&state, true);
        assert!(!f.damaged, "{:#?}", f.lines);
        assert!(f.lines.contains(&format!(
            "  {file}: DAMAGED at offset 54: 14 bytes (a record cut short), the tail; repaired: cut off, lost 1 record (14 bytes)"
        )), "{:#?}", f.lines);
        assert_eq!(fs::metadata(&segment).map_or(0, |m| m.len()), 54);
        let f = check(&state, false);
        assert!(
            f.lines
                .contains(&format!("  {file}: 2 records (2 undelivered), 54 bytes, DAMAGED")),
            "{:#?}",
            f.lines
        );
    }
}

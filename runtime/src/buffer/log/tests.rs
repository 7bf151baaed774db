use super::*;
use crate::test_util::TempDir;

const C: &str = "sinks.out";
/// The bytes a test record takes framed.
const FRAME: u64 = HEADER + 19;

fn open(dir: &Path, max: u64) -> Log {
    Log::open(dir, max, C).unwrap_or_else(|e| panic!("open: {e}"))
}

fn record(n: usize) -> Vec<u8> {
    format!("record number {n:05}").into_bytes()
}

/// Every record from the delivered position, in order, with damaged stretches skipped.
fn read_all(log: &mut Log) -> (Vec<Vec<u8>>, Vec<u64>) {
    let (mut records, mut skipped) = (Vec::new(), Vec::new());
    let mut pos = log.delivered();
    let mut buf = Vec::new();
    loop {
        match log.read(pos, &mut buf) {
            Ok(Read::Record { next }) => {
                records.push(buf.clone());
                pos = next;
            }
            Ok(Read::Damaged { next, bytes, .. }) => {
                skipped.push(bytes);
                pos = next;
            }
            Ok(Read::End) => return (records, skipped),
            Err(e) => panic!("read: {e}"),
        }
    }
}

fn append(log: &mut Log, n: usize) -> u64 {
    match log.append(&record(n)) {
        Ok(pos) => pos,
        Err(e) => panic!("append {n}: {e:?}"),
    }
}

/// Delivers the first `n` records from the delivered position.
fn deliver(log: &mut Log, n: usize) {
    let mut buf = Vec::new();
    for _ in 0..n {
        let pos = log.delivered();
        match log.read(pos, &mut buf) {
            Ok(Read::Record { next }) => assert!(log.delivered_through(pos, next, true).is_ok()),
            other => panic!("expected a record at {pos}: {other:?}"),
        }
    }
}

fn segment_files(dir: &Path) -> usize {
    list_segments(dir).len()
}

#[test]
fn records_are_read_back_in_order_after_a_reopen() {
    let tmp = TempDir::new("buffer-reopen");
    let dir = Path::new(&tmp.path("b")).to_path_buf();
    let mut log = open(&dir, 1 << 20);
    let positions: Vec<u64> = (0..10).map(|n| append(&mut log, n)).collect();
    assert_eq!(
        positions[1],
        HEADER + record(0).len() as u64,
        "positions are byte offsets"
    );
    assert!(log.close().is_ok());
    let mut log = open(&dir, 1 << 20);
    assert_eq!(log.records(), 10);
    let (records, skipped) = read_all(&mut log);
    assert_eq!(records, (0..10).map(record).collect::<Vec<_>>());
    assert!(skipped.is_empty());
}

#[test]
fn the_delivered_position_survives_a_reopen_and_segments_go_once_delivered() {
    let tmp = TempDir::new("buffer-delivered");
    let dir = Path::new(&tmp.path("b")).to_path_buf();
    // 4 KiB segments: 151 records of 27 bytes each.
    let mut log = open(&dir, 32 << 10);
    for n in 0..400 {
        append(&mut log, n);
    }
    assert_eq!(segment_files(&dir), 3);
    deliver(&mut log, 200);
    assert_eq!(segment_files(&dir), 2, "the first segment is wholly delivered: deleted");
    assert!(log.sync().is_ok() && log.save_delivered().is_ok());
    drop(log);
    let mut log = open(&dir, 32 << 10);
    assert_eq!(log.records(), 200);
    let (records, _) = read_all(&mut log);
    assert_eq!(
        records.first(),
        Some(&record(200)),
        "delivery resumes after the last delivered"
    );
    assert_eq!(records.len(), 200);
    deliver(&mut log, 200);
    assert!(log.close().is_ok());
    assert_eq!(segment_files(&dir), 0, "a log wholly delivered keeps no segment");
    let mut log = open(&dir, 32 << 10);
    assert_eq!(log.records(), 0);
    let pos = append(&mut log, 400);
    assert!(pos > 0, "positions go on after a wholly delivered log");
    assert_eq!(read_all(&mut log).0, vec![record(400)]);
}

#[test]
fn a_torn_last_record_is_cut_off_at_open() {
    let tmp = TempDir::new("buffer-torn");
    let dir = Path::new(&tmp.path("b")).to_path_buf();
    let mut log = open(&dir, 1 << 20);
    for n in 0..5 {
        append(&mut log, n);
    }
    assert!(log.close().is_ok());
    let (_, path) = list_segments(&dir).pop().unwrap_or_default();
    let len = fs::metadata(&path).map_or(0, |m| m.len());
    // A crash in the middle of the fifth record's write.
    assert!(OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_len(len - 5))
        .is_ok());
    let mut log = open(&dir, 1 << 20);
    assert_eq!(log.records(), 4);
    assert_eq!(
        fs::metadata(&path).map_or(0, |m| m.len()),
        4 * FRAME,
        "the torn record is cut off"
    );
    append(&mut log, 5);
    let (records, skipped) = read_all(&mut log);
    assert_eq!(records, vec![record(0), record(1), record(2), record(3), record(5)]);
    assert!(skipped.is_empty());
}

#[test]
fn a_flipped_byte_in_the_middle_costs_only_its_record() {
    let tmp = TempDir::new("buffer-flip");
    let dir = Path::new(&tmp.path("b")).to_path_buf();
    let mut log = open(&dir, 1 << 20);
    for n in 0..5 {
        append(&mut log, n);
    }
    assert!(log.close().is_ok());
    let (_, path) = list_segments(&dir).pop().unwrap_or_default();
    let mut bytes = fs::read(&path).unwrap_or_default();
    bytes[2 * FRAME as usize + 12] ^= 0x20;
    assert!(fs::write(&path, &bytes).is_ok());
    let mut log = open(&dir, 1 << 20);
    assert_eq!(log.records(), 4, "the damaged record is not counted");
    let (records, skipped) = read_all(&mut log);
    assert_eq!(records, vec![record(0), record(1), record(3), record(4)]);
    assert_eq!(skipped, vec![FRAME], "its bytes are skipped");
}

#[test]
fn drop_oldest_gives_up_the_oldest_segment_and_says_how_many() {
    let tmp = TempDir::new("buffer-drop");
    let dir = Path::new(&tmp.path("b")).to_path_buf();
    let mut log = open(&dir, 8 << 10);
    let mut n = 0;
    let full = loop {
        match log.append(&record(n)) {
            Ok(_) => n += 1,
            Err(e) => break e,
        }
    };
    assert!(matches!(full, AppendError::Full { disk: false }), "{full:?}");
    assert!(log.disk_bytes() <= 8 << 10);
    let before = log.records();
    let dropped = log.drop_oldest().ok().flatten().unwrap_or(0);
    assert!(dropped > 0);
    assert_eq!(log.records(), before - dropped);
    append(&mut log, n);
    drop(log);
    // The drop is remembered: a reopen does not bring the records back.
    let mut log = open(&dir, 8 << 10);
    let (records, _) = read_all(&mut log);
    assert_eq!(records.first(), Some(&record(dropped as usize)));
    assert_eq!(records.last(), Some(&record(n)));
}

#[test]
fn a_full_disk_in_the_middle_of_a_record_leaves_no_part_of_it() {
    let tmp = TempDir::new("buffer-enospc");
    let dir = Path::new(&tmp.path("b")).to_path_buf();
    let mut log = open(&dir, 1 << 20);
    append(&mut log, 0);
    append(&mut log, 1);
    log.disk_space = Some(log.end() + 10);
    let full = log.append(&record(2));
    assert!(matches!(full, Err(AppendError::Full { disk: true })), "{full:?}");
    assert_eq!(log.records(), 2);
    log.disk_space = None;
    append(&mut log, 3);
    assert!(log.close().is_ok());
    let mut log = open(&dir, 1 << 20);
    let (records, skipped) = read_all(&mut log);
    assert_eq!(records, vec![record(0), record(1), record(3)]);
    assert!(skipped.is_empty(), "no partial record was left behind");
}

#[test]
fn a_damaged_delivered_file_means_delivering_again_not_failing() {
    let tmp = TempDir::new("buffer-damaged-delivered");
    let dir = Path::new(&tmp.path("b")).to_path_buf();
    let mut log = open(&dir, 1 << 20);
    for n in 0..3 {
        append(&mut log, n);
    }
    deliver(&mut log, 1);
    assert!(log.close().is_ok());
    assert_eq!(read_delivered(&dir), Ok(Some(FRAME)));
    assert!(fs::write(dir.join(DELIVERED), b"garbage").is_ok());
    let log = open(&dir, 1 << 20);
    assert_eq!(log.records(), 3, "at least once: from the start");
}

fn framed(range: std::ops::Range<usize>) -> Vec<u8> {
    let mut frames = Vec::new();
    for n in range {
        frame::frame(&record(n), &mut frames);
    }
    frames
}

#[test]
fn a_batch_is_one_write_and_a_failed_one_leaves_the_log_as_it_was() {
    let tmp = TempDir::new("buffer-batch");
    let dir = Path::new(&tmp.path("b")).to_path_buf();
    let mut log = open(&dir, 1 << 20);
    assert_eq!(log.append_frames(&framed(0..3), 3).ok(), Some(0));
    assert_eq!(log.records(), 3);
    // The disk fills up in the middle of the second batch: none of it is kept.
    log.disk_space = Some(log.end() + FRAME + 5);
    let full = log.append_frames(&framed(3..6), 3);
    assert!(matches!(full, Err(AppendError::Full { disk: true })), "{full:?}");
    assert_eq!((log.records(), log.end()), (3, 3 * FRAME));
    log.disk_space = None;
    assert_eq!(log.append_frames(&framed(6..8), 2).ok(), Some(3 * FRAME));
    assert!(log.close().is_ok());
    let mut log = open(&dir, 1 << 20);
    let (records, skipped) = read_all(&mut log);
    let want: Vec<Vec<u8>> = [0, 1, 2, 6, 7].into_iter().map(record).collect();
    assert_eq!(records, want);
    assert!(skipped.is_empty(), "no partial batch was left behind");
}

#[test]
fn a_batch_larger_than_a_segment_or_the_buffer_is_refused_whole() {
    let tmp = TempDir::new("buffer-batch-split");
    let dir = Path::new(&tmp.path("b")).to_path_buf();
    // 32 KiB: segments of 4 KiB.
    let mut log = open(&dir, 32 << 10);
    let segment = (4 << 10) / FRAME as usize + 1;
    let split = log.append_frames(&framed(0..segment), segment as u64);
    assert!(matches!(split, Err(AppendError::Split)), "{split:?}");
    // Batches of ten until the buffer is full: the last one is refused whole.
    let mut n = 0;
    let full = loop {
        match log.append_frames(&framed(n..n + 10), 10) {
            Ok(_) => n += 10,
            Err(e) => break e,
        }
    };
    assert!(matches!(full, AppendError::Full { disk: false }), "{full:?}");
    assert_eq!(log.records(), n as u64);
    assert!(log.disk_bytes() <= 32 << 10);
}

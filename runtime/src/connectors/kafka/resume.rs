//! Resuming a Kafka source from a checkpoint's offsets.
//!
//! The group's committed offsets are never ahead of the newest checkpoint (with
//! checkpoints on, only what a written checkpoint covers is committed), but they may be
//! behind it (commits are asynchronous, and a crash may come first) or ahead of an older
//! checkpoint the start fell back to. So the checkpoint's offsets win: until the first
//! message at exactly a partition's checkpoint offset arrives, messages before it are
//! skipped (handled before the crash), and a message after it makes the source seek
//! back to it, once. (Seeking every partition as soon as it is assigned stalled the
//! fetcher against tansu; skipping costs at most what the commits lagged.)

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::topic_partition_list::Offset;
use std::time::Duration;

/// How long one seek may wait for librdkafka.
const SEEK_WAIT: Duration = Duration::from_millis(100);

/// The checkpoint's next offset per partition, until each partition reached it.
#[derive(Debug, Default)]
pub(super) struct Resume {
    /// `(topic, partition, next offset, sought since assigned)`.
    waiting: Vec<(String, i32, i64, bool)>,
}

impl Resume {
    pub(super) fn new(positions: Vec<(String, i32, i64)>) -> Self {
        Resume {
            waiting: positions.into_iter().map(|(t, p, o)| (t, p, o, false)).collect(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// A rebalance happened: a partition assigned again may need a seek again.
    pub(super) fn reassigned(&mut self) {
        for entry in &mut self.waiting {
            entry.3 = false;
        }
    }

    /// True when a message at `offset` may be handled: its partition has no checkpoint
    /// offset left to reach, or this is exactly it. Otherwise the message came from
    /// before the seek: it is discarded and the partition sought again.
    pub(super) fn admit<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> bool {
        let Some(i) = self.waiting.iter().position(|e| e.1 == partition && e.0 == topic) else {
            return true;
        };
        let (want, sought) = (self.waiting[i].2, self.waiting[i].3);
        if offset == want {
            self.waiting.swap_remove(i);
            return true;
        }
        // Behind the checkpoint (the group's commits lag it): handled before the crash,
        // skipped. Ahead of it (the start fell back to an older checkpoint): go back, once.
        if offset > want && !sought {
            let back = consumer.seek(topic, partition, Offset::Offset(want), SEEK_WAIT);
            self.waiting[i].3 = back.is_ok();
            crate::log::info(
                "kafka partition sought back to the checkpoint's offset",
                &[
                    ("partition", format!("{topic}/{partition}@{want}").into()),
                    ("ok", back.is_ok().into()),
                ],
            );
        }
        false
    }
}

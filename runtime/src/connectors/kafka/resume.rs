//! Resuming a Kafka source from a checkpoint's offsets.
//!
//! The group's committed offsets are never ahead of the newest checkpoint (with
//! checkpoints on, only what a written checkpoint covers is committed), but they may be
//! behind it (commits are asynchronous, and a crash may come first) or ahead of an older
//! checkpoint the start fell back to. So the checkpoint's offsets win: once a partition
//! is assigned, the source seeks it to the checkpoint's offset, and until the first
//! message at exactly that offset arrives, messages from elsewhere in the partition are
//! discarded (fetched before the seek) and the seek is repeated.

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

    /// A rebalance happened: partitions assigned again must be sought again.
    pub(super) fn reassigned(&mut self) {
        for entry in &mut self.waiting {
            entry.3 = false;
        }
    }

    /// Seeks each waiting partition that is now assigned to this consumer.
    pub(super) fn seek_assigned<C: ConsumerContext>(&mut self, component: &str, consumer: &BaseConsumer<C>) {
        if self.waiting.iter().all(|e| e.3) {
            return;
        }
        let Ok(assigned) = consumer.assignment() else {
            return;
        };
        for (topic, partition, offset, sought) in &mut self.waiting {
            if *sought || assigned.find_partition(topic, *partition).is_none() {
                continue;
            }
            match consumer.seek(topic, *partition, Offset::Offset(*offset), SEEK_WAIT) {
                Ok(()) => {
                    *sought = true;
                    crate::log::info(
                        "kafka partition resumed from the checkpoint",
                        &[
                            ("component", component.into()),
                            ("partition", format!("{topic}/{partition}@{offset}").into()),
                        ],
                    );
                }
                // Not fetching yet: tried again at the next poll.
                Err(e) => crate::log::debug(
                    "kafka seek to the checkpoint's offset failed; trying again",
                    &[("component", component.into()), ("error", e.to_string().into())],
                ),
            }
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
        let want = self.waiting[i].2;
        if offset == want {
            self.waiting.swap_remove(i);
            return true;
        }
        let sought = consumer.seek(topic, partition, Offset::Offset(want), SEEK_WAIT).is_ok();
        self.waiting[i].3 = sought;
        false
    }
}

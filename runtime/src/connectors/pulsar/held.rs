//! The ids of messages read and not yet acknowledged, and of the last ones acknowledged,
//! to drop a second delivery of one.
//!
//! A broker may send a message again while its first delivery is still in the pipeline,
//! or after its acknowledgement: pulsar-lite does under load (the same message twice to
//! one consumer), and a broker does after a reconnect or a lost acknowledgement. Passed
//! on, the second delivery would be a duplicate downstream. Apache's Java client drops a
//! message its acknowledgements already name; this source drops one it holds or
//! acknowledged lately, and acknowledges the latter again (the broker did not keep the
//! first acknowledgement, or it would not have sent the message).

use pulsar::proto::MessageIdData;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};

/// Acknowledged ids remembered, the latest: a few receiver queues' worth.
const REMEMBERED: usize = 16_384;

/// A message id with its topic's place in `Held::topics` (ids are only unique within a
/// topic: pulsar-lite numbers every topic's messages from `0:0`).
type Key = (usize, u64, u64, i32, i32);

/// What a message read is to the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Seen {
    /// Not met before (or too long ago): hand it on.
    New,
    /// Its first delivery is still held: drop this one.
    Held,
    /// Acknowledged lately: drop this one and acknowledge it again.
    Acknowledged,
}

#[derive(Debug, Default)]
pub(super) struct Held {
    /// The topics met so far: few (those subscribed, or their partitions).
    topics: Vec<String>,
    /// Held or acknowledged (`true`) lately.
    ids: HashMap<Key, bool>,
    /// The acknowledged ones remembered, oldest first.
    acknowledged: VecDeque<Key>,
    /// Second deliveries dropped.
    pub(super) dropped: u64,
}

impl Held {
    /// Takes a message read: what it is.
    pub(super) fn read(&mut self, topic: &str, id: &MessageIdData) -> Seen {
        let key = self.key(topic, id);
        let seen = match self.ids.entry(key) {
            Entry::Vacant(entry) => {
                entry.insert(false);
                return Seen::New;
            }
            Entry::Occupied(entry) if *entry.get() => Seen::Acknowledged,
            Entry::Occupied(_) => Seen::Held,
        };
        self.dropped += 1;
        seen
    }

    /// The message is being acknowledged.
    pub(super) fn acknowledged(&mut self, topic: &str, id: &MessageIdData) {
        let key = self.key(topic, id);
        if let Some(acknowledged) = self.ids.get_mut(&key) {
            if !*acknowledged {
                *acknowledged = true;
                self.acknowledged.push_back(key);
            }
        }
        if self.acknowledged.len() > REMEMBERED {
            if let Some(oldest) = self.acknowledged.pop_front() {
                self.ids.remove(&oldest);
            }
        }
    }

    fn key(&mut self, topic: &str, id: &MessageIdData) -> Key {
        let place = match self.topics.iter().position(|t| t == topic) {
            Some(place) => place,
            None => {
                self.topics.push(topic.to_owned());
                self.topics.len() - 1
            }
        };
        (
            place,
            id.ledger_id,
            id.entry_id,
            id.partition.unwrap_or(-1),
            id.batch_index.unwrap_or(-1),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(entry_id: u64) -> MessageIdData {
        MessageIdData {
            ledger_id: 0,
            entry_id,
            ..MessageIdData::default()
        }
    }

    #[test]
    fn a_second_delivery_is_dropped_while_held_and_after_its_acknowledgement() {
        let mut held = Held::default();
        assert_eq!(held.read("t", &id(1)), Seen::New);
        assert_eq!(held.read("t", &id(2)), Seen::New);
        assert_eq!(held.read("t", &id(1)), Seen::Held);
        assert_eq!(held.read("u", &id(1)), Seen::New, "the same id on another topic");
        held.acknowledged("t", &id(1));
        assert_eq!(held.read("t", &id(1)), Seen::Acknowledged);
        assert_eq!(held.dropped, 2);
    }

    #[test]
    fn only_the_latest_acknowledgements_are_remembered() {
        let mut held = Held::default();
        for n in 0..=REMEMBERED as u64 {
            assert_eq!(held.read("t", &id(n)), Seen::New);
            held.acknowledged("t", &id(n));
        }
        assert_eq!(held.ids.len(), REMEMBERED);
        assert_eq!(held.read("t", &id(0)), Seen::New, "forgotten");
        assert_eq!(held.read("t", &id(1)), Seen::Acknowledged);
    }
}

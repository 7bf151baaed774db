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
//!
//! The ids are kept in the order they were read, which is the order the source
//! acknowledges them in (oldest first), so the first `acknowledged` of them are the
//! acknowledged ones. A broker sends a topic's new messages in id order: a message whose
//! id is above the last one read is new without a search (every message, normally); only
//! one at or below it (sent again, or another consumer's, redelivered here) is looked for.

use pulsar::proto::MessageIdData;
use std::collections::VecDeque;

/// Acknowledged ids remembered, the latest: a few receiver queues' worth.
const REMEMBERED: usize = 16_384;

/// A message id within its topic, ordered as the broker writes them.
type Id = (u64, u64, i32);

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
    /// The topics met so far (those subscribed, or their partitions; ids are only unique
    /// within one), each with the highest id read from it.
    topics: Vec<(String, Id)>,
    /// Read, oldest first, with their topic's place in `topics`.
    ids: VecDeque<(usize, Id)>,
    /// How many of `ids`, from the front, are acknowledged.
    acknowledged: usize,
    /// Second deliveries dropped.
    pub(super) dropped: u64,
}

impl Held {
    /// Takes a message read: what it is.
    pub(super) fn read(&mut self, topic: &str, id: &MessageIdData) -> Seen {
        let id: Id = (id.ledger_id, id.entry_id, id.batch_index.unwrap_or(-1));
        let place = match self.topics.iter().position(|(t, _)| t == topic) {
            Some(place) => place,
            None => {
                self.topics.push((topic.to_owned(), id));
                self.ids.push_back((self.topics.len() - 1, id));
                return Seen::New;
            }
        };
        let highest = &mut self.topics[place].1;
        if id > *highest {
            *highest = id;
        } else if let Some(at) = self.ids.iter().rposition(|entry| *entry == (place, id)) {
            self.dropped += 1;
            return if at < self.acknowledged {
                Seen::Acknowledged
            } else {
                Seen::Held
            };
        }
        self.ids.push_back((place, id));
        Seen::New
    }

    /// The oldest `count` messages held are being acknowledged.
    pub(super) fn acknowledged(&mut self, count: usize) {
        self.acknowledged = (self.acknowledged + count).min(self.ids.len());
        let forget = self.acknowledged.saturating_sub(REMEMBERED);
        self.ids.drain(..forget);
        self.acknowledged -= forget;
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
        held.acknowledged(1);
        assert_eq!(held.read("t", &id(1)), Seen::Acknowledged);
        assert_eq!(held.read("t", &id(2)), Seen::Held);
        assert_eq!(held.dropped, 3);
    }

    #[test]
    fn an_older_message_not_read_before_is_new() {
        // Another consumer's, sent here after it left a shared subscription.
        let mut held = Held::default();
        assert_eq!(held.read("t", &id(5)), Seen::New);
        assert_eq!(held.read("t", &id(3)), Seen::New);
        assert_eq!(held.read("t", &id(3)), Seen::Held);
        assert_eq!(held.read("t", &id(6)), Seen::New);
    }

    #[test]
    fn only_the_latest_acknowledgements_are_remembered() {
        let mut held = Held::default();
        for n in 0..=REMEMBERED as u64 {
            assert_eq!(held.read("t", &id(n)), Seen::New);
        }
        held.acknowledged(REMEMBERED + 1);
        assert_eq!(held.ids.len(), REMEMBERED);
        assert_eq!(held.read("t", &id(0)), Seen::New, "forgotten");
        assert_eq!(held.read("t", &id(1)), Seen::Acknowledged);
    }
}

//! [`StreamJoin`]: two streams joined by key, within an interval of each other's time
//! or in the same window, on event time.
//!
//! - A record comes in from one side with its key and time `t`. It is paired at once
//!   with every held record of the other side that it joins, and each pair is emitted.
//!   An interval join pairs `left` and `right` when `left.t + from <= right.t <= left.t + to`;
//!   a window join, when both are in one window (a hopping window's pair is emitted once
//!   per window they share).
//! - The record is then held as long as a record of the other side that it would join
//!   can still come in time: until the watermark passes `t + to` (a left record), `t - from`
//!   (a right one), or the end of its window. Then it is let go; a record of an outer
//!   side that was never paired is emitted alone.
//! - Late: an interval join's record behind the watermark (records it would have joined
//!   may be gone already); a window join's record whose every window has ended.
//! - Times of results: a pair, the later of its two times (a window join: the window's
//!   end − 1); a record alone, the latest time a partner could have had, or its own when
//!   later. So a result is never behind the watermark that a downstream window saw.
//! - Order: pairs as records arrive (each new record with the other side's records in
//!   arrival order), records alone as the watermark lets them go, in order of the time
//!   they were let go at, then arrival. Results depend only on the records, their order
//!   and the watermarks.
//! - A checkpoint holds every held record and the watermark.

use crate::errors::EvalError;
use crate::windows::{Admit, Assigned, Keyed, KeyedOperator, StateSize, Window};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::Hash;

/// What one join of two streams builds, generated per spec component. Its `Input` is
/// [`Sided`]`<Left, Right>`.
pub trait JoinPair: Keyed {
    type Left: Clone + Serialize + DeserializeOwned;
    type Right: Clone + Serialize + DeserializeOwned;
    /// The joined record: both sides, or one side of an outer join alone; `window` in a
    /// window join.
    fn pair(&self, left: Option<&Self::Left>, right: Option<&Self::Right>, window: Option<Window>) -> Self::Output;
}

/// A record of either side.
#[derive(Debug, Clone)]
pub enum Sided<L, R> {
    Left(L),
    Right(R),
}

/// When a left and a right record join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinBounds {
    /// `left.t + from <= right.t <= left.t + to` (ms; `from <= to`).
    Interval { from: i64, to: i64 },
    /// Both in one window of `size` ms starting every `slide` ms, shifted by `offset`
    /// (as [`crate::windows::FixedWindows`]).
    Windows { size: i64, slide: i64, offset: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinShape {
    pub bounds: JoinBounds,
    /// A left record never paired is emitted alone (a left or full outer join).
    pub outer_left: bool,
    pub outer_right: bool,
}

/// A record held, with its time and arrival number.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Held<R> {
    t: i64,
    seq: u64,
    /// Paired at least once (in this bucket).
    paired: bool,
    rec: R,
    /// Not saved: a restored record holds the epoch of the restore.
    #[serde(skip)]
    epoch: u64,
}

/// The records of one key (and one window, in a window join).
#[derive(Debug, Serialize, Deserialize)]
struct Bucket<L, R> {
    lefts: Vec<Held<L>>,
    rights: Vec<Held<R>>,
}

impl<L, R> Default for Bucket<L, R> {
    fn default() -> Self {
        Bucket {
            lefts: Vec::new(),
            rights: Vec::new(),
        }
    }
}

impl<L, R> Bucket<L, R> {
    fn is_empty(&self) -> bool {
        self.lefts.is_empty() && self.rights.is_empty()
    }
}

/// A key's buckets by window start (an interval join's one bucket is at [`NO_WINDOW`]).
type Buckets<L, R> = BTreeMap<i64, Bucket<L, R>>;

const NO_WINDOW: i64 = i64::MIN;

/// What a checkpoint holds. `B` is a sorted view when saving, a `Vec` when restoring.
#[derive(Serialize, Deserialize)]
struct Saved<B, E> {
    wm: i64,
    seq: u64,
    keys: B,
    expiries: E,
}

pub struct StreamJoin<J: JoinPair> {
    join: J,
    shape: JoinShape,
    wm: i64,
    /// Numbers records in arrival order (and the buckets of a window join).
    seq: u64,
    keys: HashMap<J::Key, Buckets<J::Left, J::Right>>,
    /// When held records are let go: `(expiry, seq)` → key and window start. An
    /// interval join has one entry per record (its `seq`), a window join one per bucket.
    expiries: BTreeMap<(i64, u64), (J::Key, i64)>,
    /// Records held.
    held: usize,
    epoch: u64,
    out: VecDeque<(J::Output, i64)>,
}

impl<J: JoinPair> StreamJoin<J> {
    pub fn new(join: J, shape: JoinShape) -> Self {
        match shape.bounds {
            JoinBounds::Interval { from, to } => assert!(from <= to, "an empty interval: {from}..={to}"),
            JoinBounds::Windows { size, slide, offset } => assert!(
                0 < slide && slide <= size && (0..slide).contains(&offset),
                "invalid join window: size {size}, slide {slide}, offset {offset}"
            ),
        }
        StreamJoin {
            join,
            shape,
            wm: i64::MIN,
            seq: 0,
            keys: HashMap::new(),
            expiries: BTreeMap::new(),
            held: 0,
            epoch: 0,
            out: VecDeque::new(),
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// The buckets a record at `t` goes to, as `(start, window, expiry)`, none when it
    /// is late. An interval join's record has one, which it leaves at `expiry`.
    fn buckets_of(&self, left: bool, t: i64) -> Vec<(i64, Option<Window>, i64)> {
        match self.shape.bounds {
            JoinBounds::Interval { from, to } => {
                if t < self.wm {
                    return Vec::new();
                }
                let expiry = if left {
                    t.saturating_add(to)
                } else {
                    t.saturating_sub(from)
                };
                vec![(NO_WINDOW, None, expiry)]
            }
            JoinBounds::Windows { size, slide, offset } => Assigned::new(t, size, slide, offset)
                .filter(|(end, _)| *end > self.wm)
                .map(|(end, start)| (start, Some(Window { start, end }), end - 1))
                .collect(),
        }
    }

    /// Adds a record to each of its buckets, pairing it there with the other side.
    fn add<Q>(&mut self, key: &Q, rec: Sided<J::Left, J::Right>, t: i64) -> Admit
    where
        J::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized + ToOwned<Owned = J::Key>,
    {
        let left = matches!(rec, Sided::Left(_));
        let buckets = self.buckets_of(left, t);
        if buckets.is_empty() {
            return Admit::Late { watermark: self.wm };
        }
        let seq = self.next_seq();
        let interval = match self.shape.bounds {
            JoinBounds::Interval { from, to } => Some((from, to)),
            JoinBounds::Windows { .. } => None,
        };
        let mut rec = Some(rec);
        let count = buckets.len();
        for (i, (start, window, expiry)) in buckets.into_iter().enumerate() {
            // The last bucket takes the record, the others a copy.
            let this = if i + 1 == count { rec.take() } else { rec.clone() };
            let Some(this) = this else { break };
            if !self.keys.contains_key(key) {
                self.keys.insert(key.to_owned(), Buckets::new());
            }
            let Some(key_buckets) = self.keys.get_mut(key) else {
                break;
            };
            let bucket = key_buckets.entry(start).or_insert_with(|| {
                if window.is_some() {
                    self.expiries.insert((expiry, seq), (key.to_owned(), start));
                }
                Bucket::default()
            });
            let (join, out) = (&self.join, &mut self.out);
            let stamp = |a: i64, b: i64| match window {
                Some(w) => w.end - 1,
                None => a.max(b),
            };
            let mut paired = false;
            match &this {
                Sided::Left(l) => {
                    for r in &mut bucket.rights {
                        if interval
                            .is_none_or(|(from, to)| (t.saturating_add(from)..=t.saturating_add(to)).contains(&r.t))
                        {
                            out.push_back((join.pair(Some(l), Some(&r.rec), window), stamp(t, r.t)));
                            r.paired = true;
                            paired = true;
                        }
                    }
                }
                Sided::Right(r) => {
                    for l in &mut bucket.lefts {
                        if interval
                            .is_none_or(|(from, to)| (l.t.saturating_add(from)..=l.t.saturating_add(to)).contains(&t))
                        {
                            out.push_back((join.pair(Some(&l.rec), Some(r), window), stamp(l.t, t)));
                            l.paired = true;
                            paired = true;
                        }
                    }
                }
            }
            let epoch = self.epoch;
            match this {
                Sided::Left(rec) => bucket.lefts.push(Held {
                    t,
                    seq,
                    paired,
                    rec,
                    epoch,
                }),
                Sided::Right(rec) => bucket.rights.push(Held {
                    t,
                    seq,
                    paired,
                    rec,
                    epoch,
                }),
            }
            self.held += 1;
            if window.is_none() {
                self.expiries.insert((expiry, seq), (key.to_owned(), start));
            }
        }
        Admit::Added
    }

    /// Lets go of what expired at `expiry` (entry `seq`), emitting outer records never
    /// paired.
    fn let_go(&mut self, expiry: i64, seq: u64, key: J::Key, start: i64) {
        let Some(key_buckets) = self.keys.get_mut(&key) else {
            return;
        };
        let (lefts, rights) = match self.shape.bounds {
            JoinBounds::Interval { .. } => {
                let Some(bucket) = key_buckets.get_mut(&start) else {
                    return;
                };
                let left = bucket
                    .lefts
                    .iter()
                    .position(|h| h.seq == seq)
                    .map(|i| bucket.lefts.remove(i));
                let right = bucket
                    .rights
                    .iter()
                    .position(|h| h.seq == seq)
                    .map(|i| bucket.rights.remove(i));
                if bucket.is_empty() {
                    key_buckets.remove(&start);
                }
                (Vec::from_iter(left), Vec::from_iter(right))
            }
            JoinBounds::Windows { .. } => match key_buckets.remove(&start) {
                Some(bucket) => (bucket.lefts, bucket.rights),
                None => (Vec::new(), Vec::new()),
            },
        };
        if key_buckets.is_empty() {
            self.keys.remove(&key);
        }
        self.held -= lefts.len() + rights.len();
        let window = (start != NO_WINDOW).then(|| Window { start, end: expiry + 1 });
        let mut alone: Vec<(u64, i64, J::Output)> = Vec::new();
        if self.shape.outer_left {
            for l in lefts.iter().filter(|h| !h.paired) {
                alone.push((l.seq, l.t.max(expiry), self.join.pair(Some(&l.rec), None, window)));
            }
        }
        if self.shape.outer_right {
            for r in rights.iter().filter(|h| !h.paired) {
                alone.push((r.seq, r.t.max(expiry), self.join.pair(None, Some(&r.rec), window)));
            }
        }
        alone.sort_by_key(|(seq, _, _)| *seq);
        self.out.extend(alone.into_iter().map(|(_, t, rec)| (rec, t)));
    }

    /// The epochs of the records held.
    fn epochs(&self) -> impl Iterator<Item = u64> + '_ {
        let buckets = self.keys.values().flat_map(|b| b.values());
        buckets.flat_map(|b| b.lefts.iter().map(|h| h.epoch).chain(b.rights.iter().map(|h| h.epoch)))
    }
}

impl<J> KeyedOperator<J> for StreamJoin<J>
where
    J: JoinPair<Input = Sided<<J as JoinPair>::Left, <J as JoinPair>::Right>>,
{
    fn process<Q>(&mut self, key: &Q, rec: &J::Input, t: i64) -> Result<Admit, EvalError>
    where
        J::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized + ToOwned<Owned = J::Key>,
    {
        self.process_owned(key, rec.clone(), t)
    }

    fn process_owned<Q>(&mut self, key: &Q, rec: J::Input, t: i64) -> Result<Admit, EvalError>
    where
        J::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized + ToOwned<Owned = J::Key>,
    {
        Ok(self.add(key, rec, t))
    }

    fn set_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
    }

    fn pending_epoch(&self) -> Option<u64> {
        // A held record may still be paired: its source's offset waits.
        self.epochs().min()
    }

    fn on_watermark(&mut self, wm: i64) -> bool {
        let before = self.out.len();
        self.wm = self.wm.max(wm);
        while let Some(entry) = self.expiries.first_entry() {
            let (expiry, seq) = *entry.key();
            if expiry >= self.wm {
                break;
            }
            let (key, start) = entry.remove();
            self.let_go(expiry, seq, key, start);
        }
        self.out.len() > before
    }

    fn late_reason(&self) -> &'static str {
        match self.shape.bounds {
            JoinBounds::Interval { .. } => "records of the other side it would join may have been let go",
            JoinBounds::Windows { .. } => "every window it belongs to has closed",
        }
    }

    fn next_due(&self) -> Option<i64> {
        self.expiries.keys().next().map(|(expiry, _)| expiry.saturating_add(1))
    }

    fn emitted(&mut self) -> &mut VecDeque<(J::Output, i64)> {
        &mut self.out
    }

    fn state_size(&self) -> StateSize {
        let per_record = std::mem::size_of::<Held<J::Left>>().max(std::mem::size_of::<Held<J::Right>>());
        StateSize {
            entries: self.held,
            bytes: self.held * per_record
                + self.keys.len() * std::mem::size_of::<(J::Key, Buckets<J::Left, J::Right>)>(),
        }
    }

    fn entries(&self) -> usize {
        self.held
    }

    fn save_state(&self, out: &mut Vec<u8>) -> Result<(), String> {
        if !self.out.is_empty() {
            return Err(format!(
                "{} results are still waiting to be handed downstream",
                self.out.len()
            ));
        }
        let mut keys: Vec<_> = self.keys.iter().collect();
        keys.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let saved = Saved {
            wm: self.wm,
            seq: self.seq,
            keys,
            expiries: &self.expiries,
        };
        let bytes = postcard::to_allocvec(&saved).map_err(|e| e.to_string())?;
        out.extend_from_slice(&bytes);
        Ok(())
    }

    /// The restored records hold the current epoch: what they held before is in the
    /// checkpoint, which confirms its sources' positions by itself.
    fn restore_state(&mut self, saved: &[u8]) -> Result<(), String> {
        type Restored<K, L, R> = Saved<Vec<(K, Buckets<L, R>)>, BTreeMap<(i64, u64), (K, i64)>>;
        let saved: Restored<J::Key, J::Left, J::Right> = match postcard::take_from_bytes(saved) {
            Ok((state, [])) => state,
            Ok((_, rest)) => return Err(format!("{} bytes left over after the state", rest.len())),
            Err(e) => return Err(e.to_string()),
        };
        let epoch = self.epoch;
        self.keys.clear();
        self.held = 0;
        for (key, mut buckets) in saved.keys {
            for bucket in buckets.values_mut() {
                for h in &mut bucket.lefts {
                    h.epoch = epoch;
                }
                for h in &mut bucket.rights {
                    h.epoch = epoch;
                }
                self.held += bucket.lefts.len() + bucket.rights.len();
            }
            self.keys.insert(key, buckets);
        }
        self.expiries = saved.expiries;
        self.wm = saved.wm;
        self.seq = saved.seq;
        self.out.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Left and right records are labels; a result is `(left, right, window start)`.
    struct Labels;

    type Out = (Option<String>, Option<String>, Option<i64>);

    impl Keyed for Labels {
        type Input = Sided<String, String>;
        type Key = String;
        type Output = Out;
    }

    impl JoinPair for Labels {
        type Left = String;
        type Right = String;
        fn pair(&self, left: Option<&String>, right: Option<&String>, window: Option<Window>) -> Out {
            (left.cloned(), right.cloned(), window.map(|w| w.start))
        }
    }

    fn join(bounds: JoinBounds, outer_left: bool, outer_right: bool) -> StreamJoin<Labels> {
        StreamJoin::new(
            Labels,
            JoinShape {
                bounds,
                outer_left,
                outer_right,
            },
        )
    }

    fn interval(from: i64, to: i64) -> JoinBounds {
        JoinBounds::Interval { from, to }
    }

    fn left(op: &mut StreamJoin<Labels>, key: &str, label: &str, t: i64) -> Admit {
        op.process_owned(key, Sided::Left(label.to_string()), t).unwrap()
    }

    fn right(op: &mut StreamJoin<Labels>, key: &str, label: &str, t: i64) -> Admit {
        op.process_owned(key, Sided::Right(label.to_string()), t).unwrap()
    }

    fn drain(op: &mut StreamJoin<Labels>) -> Vec<(Option<&'static str>, Option<&'static str>, i64)> {
        // Labels are leaked to compare against literals: a test's handful of bytes.
        let leak = |s: Option<String>| s.map(|s| &*Box::leak(s.into_boxed_str()));
        op.emitted()
            .drain(..)
            .map(|((l, r, _), t)| (leak(l), leak(r), t))
            .collect()
    }

    #[test]
    fn an_interval_join_pairs_records_whose_times_are_within_both_bounds_inclusive() {
        let mut op = join(interval(-5, 10), false, false);
        left(&mut op, "k", "l", 100);
        right(&mut op, "k", "r94", 94);
        right(&mut op, "k", "r95", 95);
        right(&mut op, "k", "r110", 110);
        right(&mut op, "k", "r111", 111);
        right(&mut op, "other", "x", 100);
        assert_eq!(
            drain(&mut op),
            vec![(Some("l"), Some("r95"), 100), (Some("l"), Some("r110"), 110)]
        );
        // A later left record pairs with the rights already held.
        left(&mut op, "k", "l2", 101);
        assert_eq!(
            drain(&mut op),
            vec![(Some("l2"), Some("r110"), 110), (Some("l2"), Some("r111"), 111)]
        );
    }

    #[test]
    fn records_are_let_go_once_no_partner_can_come_in_time() {
        let mut op = join(interval(-5, 10), false, false);
        left(&mut op, "k", "l", 100);
        right(&mut op, "k", "r", 200);
        // The left record waits for rights up to 110, the right for lefts from 205.
        assert_eq!(op.next_due(), Some(111));
        assert!(!op.on_watermark(110));
        assert_eq!(op.entries(), 2);
        op.on_watermark(111);
        assert_eq!(op.entries(), 1);
        op.on_watermark(206);
        assert_eq!(op.entries(), 0);
        assert!(op.keys.is_empty() && op.expiries.is_empty());
        assert_eq!(left(&mut op, "k", "late", 205), Admit::Late { watermark: 206 });
    }

    #[test]
    fn outer_records_never_paired_come_alone_when_let_go() {
        let mut op = join(interval(0, 10), true, true);
        left(&mut op, "a", "la", 100);
        left(&mut op, "b", "lb", 101);
        right(&mut op, "b", "rb", 105);
        right(&mut op, "c", "rc", 50);
        assert_eq!(drain(&mut op), vec![(Some("lb"), Some("rb"), 105)]);
        op.on_watermark(i64::MAX);
        // rc could pair with lefts up to 50 (let go first); la waited for rights to 110.
        assert_eq!(drain(&mut op), vec![(None, Some("rc"), 50), (Some("la"), None, 110)]);
        assert_eq!(op.entries(), 0);
    }

    #[test]
    fn a_window_join_pairs_records_of_one_window_and_lets_the_window_go_at_its_end() {
        let mut op = join(
            JoinBounds::Windows {
                size: 10,
                slide: 10,
                offset: 0,
            },
            true,
            false,
        );
        left(&mut op, "k", "l1", 1);
        left(&mut op, "k", "l2", 12);
        right(&mut op, "k", "r1", 9);
        right(&mut op, "k", "r2", 10);
        assert_eq!(
            drain(&mut op),
            vec![(Some("l1"), Some("r1"), 9), (Some("l2"), Some("r2"), 19)]
        );
        left(&mut op, "k", "l3", 15);
        assert_eq!(drain(&mut op), vec![(Some("l3"), Some("r2"), 19)]);
        left(&mut op, "j", "alone", 3);
        assert!(op.on_watermark(10));
        assert_eq!(drain(&mut op), vec![(Some("alone"), None, 9)]);
        assert_eq!(left(&mut op, "k", "late", 9), Admit::Late { watermark: 10 });
        assert_eq!(left(&mut op, "k", "open", 10), Admit::Added);
    }

    #[test]
    fn a_hopping_window_join_pairs_once_per_window_the_two_share() {
        let mut op = join(
            JoinBounds::Windows {
                size: 10,
                slide: 5,
                offset: 0,
            },
            false,
            false,
        );
        left(&mut op, "k", "l", 7);
        right(&mut op, "k", "r", 8);
        let starts: Vec<Option<i64>> = op.emitted().drain(..).map(|((_, _, w), _)| w).collect();
        assert_eq!(starts, vec![Some(0), Some(5)]);
        // A record partly late joins the windows still open.
        op.on_watermark(11);
        right(&mut op, "k", "r2", 9);
        let starts: Vec<Option<i64>> = op.emitted().drain(..).map(|((_, _, w), _)| w).collect();
        assert_eq!(starts, vec![Some(5)]);
    }

    #[test]
    fn a_checkpoint_restores_every_held_record() {
        let mut op = join(interval(0, 100), true, true);
        left(&mut op, "a", "la", 10);
        op.set_epoch(3);
        right(&mut op, "b", "rb", 20);
        left(&mut op, "b", "lb", 15);
        drain(&mut op);
        op.on_watermark(12);
        assert_eq!(op.pending_epoch(), Some(0));
        let mut bytes = Vec::new();
        op.save_state(&mut bytes).unwrap();
        let mut back = join(interval(0, 100), true, true);
        back.restore_state(&bytes).unwrap();
        let mut again = Vec::new();
        back.save_state(&mut again).unwrap();
        assert_eq!(bytes, again, "the same state saves to the same bytes");
        for o in [&mut op, &mut back] {
            right(o, "a", "ra", 50);
            o.on_watermark(i64::MAX);
        }
        let (a, b) = (drain(&mut op), drain(&mut back));
        assert_eq!(a, b);
        assert_eq!(a, vec![(Some("la"), Some("ra"), 50)]);
        assert!(back.restore_state(&bytes[..bytes.len() - 1]).is_err());
    }
}

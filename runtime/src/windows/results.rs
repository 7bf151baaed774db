//! `Results`: the buffer a window's or table's results are handed downstream in, a
//! chunk at a time, whose rows outlive the chunk so the next one can be written over
//! them.
//!
//! A hopping window of a minute sliding every second fires every key every second: a
//! result per record or more, each with its key as a `String`. Building each row anew
//! allocated that string and freed it once the row was handed on (about 200 of the 2,570
//! instructions a row cost). An operator that writes over a kept row
//! ([`super::Aggregation::output_into`]) reuses the string's buffer instead. The cost:
//! the last chunk's rows (at most `EMIT_CHUNK`, 256) stay in memory between steps.

use super::{Aggregation, Window};
use std::collections::VecDeque;

/// Rows `(result, event time)`; [`Self::clear`] keeps them to be written over.
pub struct Results<O> {
    rows: Vec<(O, i64)>,
    /// The rows in use: those after are kept from earlier chunks.
    len: usize,
}

impl<O> Default for Results<O> {
    fn default() -> Self {
        Results {
            rows: Vec::new(),
            len: 0,
        }
    }
}

impl<O> Results<O> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The rows in use.
    pub fn as_slice(&self) -> &[(O, i64)] {
        &self.rows[..self.len]
    }

    /// Empties the buffer; its rows stay, to be written over.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Moves the rows in use out.
    pub fn drain(&mut self) -> std::vec::Drain<'_, (O, i64)> {
        let len = std::mem::take(&mut self.len);
        self.rows.drain(..len)
    }

    /// Adds `row`, dropping the kept row in its place.
    pub fn push(&mut self, row: (O, i64)) {
        match self.rows.get_mut(self.len) {
            Some(kept) => *kept = row,
            None => self.rows.push(row),
        }
        self.len += 1;
    }

    /// Adds `row`, handing back the kept row in its place, if there was one, to be
    /// written over by whoever builds the next.
    pub(crate) fn push_keeping(&mut self, row: (O, i64)) -> Option<(O, i64)> {
        let kept = match self.rows.get_mut(self.len) {
            Some(kept) => Some(std::mem::replace(kept, row)),
            None => {
                self.rows.push(row);
                None
            }
        };
        self.len += 1;
        kept
    }

    /// Row `at` (one in use), to be swapped out by [`Self::push_swapped`].
    pub(crate) fn row_mut(&mut self, at: usize) -> &mut (O, i64) {
        &mut self.rows[..self.len][at]
    }

    /// Adds `row`'s contents, leaving the kept row in its place (or an empty one): rows
    /// are exchanged between buffers, never freed where they were not allocated.
    pub(crate) fn push_swapped(&mut self, row: &mut (O, i64))
    where
        O: Default,
    {
        match self.rows.get_mut(self.len) {
            Some(kept) => std::mem::swap(kept, row),
            None => self.rows.push(std::mem::take(row)),
        }
        self.len += 1;
    }
}

impl<O> Extend<(O, i64)> for Results<O> {
    fn extend<I: IntoIterator<Item = (O, i64)>>(&mut self, rows: I) {
        for row in rows {
            self.push(row);
        }
    }
}

/// Where an operator builds results: written over a kept row where there is one.
pub(crate) trait BuildRows<O> {
    /// Adds a row at time `t`: `fill` writes over a kept one, else `make` builds it.
    fn build(&mut self, t: i64, make: impl FnOnce() -> O, fill: impl FnOnce(&mut O));
}

impl<O> BuildRows<O> for Results<O> {
    #[inline]
    fn build(&mut self, t: i64, make: impl FnOnce() -> O, fill: impl FnOnce(&mut O)) {
        match self.rows.get_mut(self.len) {
            Some(kept) => {
                fill(&mut kept.0);
                kept.1 = t;
            }
            None => self.rows.push((make(), t)),
        }
        self.len += 1;
    }
}

impl<O> BuildRows<O> for VecDeque<(O, i64)> {
    fn build(&mut self, t: i64, make: impl FnOnce() -> O, _: impl FnOnce(&mut O)) {
        self.push_back((make(), t));
    }
}

/// Rows [`Emitted`] keeps to be written over, at most: an operator emitting at the
/// record hands its rows downstream a few at a time, so a few are enough there.
const SPARE: usize = 4096;

/// Results built eagerly (a table's, a count or session window's), waiting to be
/// handed downstream, and the rows handed back from the buffer they were drained into,
/// which the next results are written over: an operator emitting a row per record (a
/// table's every change) would otherwise build a row, its key's string, for each and
/// free the one before.
pub(crate) struct Emitted<O> {
    pub(crate) queue: VecDeque<(O, i64)>,
    spare: Vec<O>,
}

impl<O> Default for Emitted<O> {
    fn default() -> Self {
        Emitted {
            queue: VecDeque::new(),
            spare: Vec::new(),
        }
    }
}

impl<O> Emitted<O> {
    /// Moves up to `max` waiting results to `buf`, taking back the rows it held.
    pub(crate) fn drain_into(&mut self, buf: &mut Results<O>, max: usize) {
        while buf.len() < max {
            let Some(row) = self.queue.pop_front() else { return };
            if let Some((kept, _)) = buf.push_keeping(row) {
                if self.spare.len() < SPARE {
                    self.spare.push(kept);
                }
            }
        }
    }

    /// Queues what `agg` gives for `key` in `window` at time `t`, written over a kept
    /// row if there is one.
    pub(crate) fn push_result<A: Aggregation<Output = O>>(
        &mut self,
        agg: &A,
        (key, window, acc, update): (&A::Key, Window, &A::Acc, bool),
        t: i64,
    ) {
        self.build(
            t,
            || agg.output(key, window, acc, update),
            |kept| agg.output_into(key, window, acc, update, kept),
        );
    }

    #[cfg(test)]
    pub(crate) fn spare(&self) -> usize {
        self.spare.len()
    }
}

impl<O> BuildRows<O> for Emitted<O> {
    #[inline]
    fn build(&mut self, t: i64, make: impl FnOnce() -> O, fill: impl FnOnce(&mut O)) {
        let row = match self.spare.pop() {
            Some(mut kept) => {
                fill(&mut kept);
                kept
            }
            None => make(),
        };
        self.queue.push_back((row, t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emitted_rows_handed_back_by_the_buffer_are_written_over() {
        let mut emitted: Emitted<String> = Emitted::default();
        let mut buf = Results::default();
        emitted.build(1, || "a".to_owned(), |_| panic!("nothing is kept yet"));
        emitted.drain_into(&mut buf, 10);
        assert_eq!(emitted.spare(), 0, "the buffer held nothing before");
        buf.clear();
        emitted.build(2, || "b".to_owned(), |_| panic!("nothing is kept yet"));
        emitted.drain_into(&mut buf, 10);
        assert_eq!((emitted.spare(), buf.as_slice()), (1, &[("b".to_owned(), 2)][..]));
        emitted.build(
            3,
            || panic!("the kept row is written over"),
            |row| {
                assert_eq!(row, "a");
                row.replace_range(.., "c");
            },
        );
        buf.clear();
        emitted.drain_into(&mut buf, 10);
        assert_eq!((emitted.spare(), buf.as_slice()), (1, &[("c".to_owned(), 3)][..]));
    }

    #[test]
    fn rows_are_kept_when_cleared_and_written_over_in_order() {
        let mut results: Results<String> = Results::default();
        results.build(1, || "a".to_owned(), |_| panic!("nothing is kept yet"));
        results.push(("b".to_owned(), 2));
        results.build(3, || "c".to_owned(), |_| panic!("nothing is kept yet"));
        assert_eq!(results.as_slice(), [("a".into(), 1), ("b".into(), 2), ("c".into(), 3)]);
        let kept = results.as_slice()[0].0.as_ptr();
        results.clear();
        assert!(results.is_empty());
        results.build(4, || panic!("a kept row is written over"), |row| "d".clone_into(row));
        assert_eq!(results.as_slice(), [("d".into(), 4)]);
        assert_eq!(results.as_slice()[0].0.as_ptr(), kept, "the string's buffer was reused");
        results.extend([("e".to_owned(), 5), ("f".to_owned(), 6), ("g".to_owned(), 7)]);
        assert_eq!(results.len(), 4);
        let drained: Vec<_> = results.drain().collect();
        assert_eq!(drained.iter().map(|r| r.1).collect::<Vec<_>>(), [4, 5, 6, 7]);
        assert!(results.is_empty());
    }
}

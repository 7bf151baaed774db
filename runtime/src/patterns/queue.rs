//! [`TimeQueue`]: records waiting for the watermark, taken out in `(t, arrival)` order.
//!
//! A binary heap of small `(t, seq, slot)` entries over a slab of the records: pushing
//! and popping move 24 bytes, never a record (a `BTreeMap` of the records themselves
//! moved them around its nodes, and was a fifth of a pattern's time).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

pub struct TimeQueue<T> {
    heap: BinaryHeap<Reverse<(i64, u64, u32)>>,
    slots: Vec<Option<T>>,
    free: Vec<u32>,
}

impl<T> Default for TimeQueue<T> {
    fn default() -> Self {
        TimeQueue {
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> TimeQueue<T> {
    /// Adds `value` at time `t`; `seq` orders values of one time (unique, rising).
    pub fn push(&mut self, t: i64, seq: u64, value: T) {
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(value);
                slot
            }
            None => {
                self.slots.push(Some(value));
                (self.slots.len() - 1) as u32
            }
        };
        self.heap.push(Reverse((t, seq, slot)));
    }

    /// The time of the first value.
    pub fn first_time(&self) -> Option<i64> {
        self.heap.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Takes out the first value if its time is before `before`.
    pub fn pop_before(&mut self, before: i64) -> Option<(i64, T)> {
        let &Reverse((t, _, slot)) = self.heap.peek().filter(|Reverse((t, _, _))| *t < before)?;
        self.heap.pop();
        self.free.push(slot);
        let value = self.slots[slot as usize].take()?;
        Some((t, value))
    }

    /// How many values wait.
    pub fn waiting(&self) -> usize {
        self.heap.len()
    }

    /// Every value, in no order.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().flatten()
    }

    /// Every value with its `(t, seq)`, in order.
    pub fn sorted(&self) -> Vec<((i64, u64), &T)> {
        let mut all: Vec<((i64, u64), &T)> = self
            .heap
            .iter()
            .filter_map(|Reverse((t, seq, slot))| Some(((*t, *seq), self.slots[*slot as usize].as_ref()?)))
            .collect();
        all.sort_unstable_by_key(|(at, _)| *at);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_leave_in_time_then_arrival_order_and_slots_are_reused() {
        let mut q = TimeQueue::default();
        for (seq, t) in [5, 3, 5, 1, 3].into_iter().enumerate() {
            q.push(t, seq as u64, seq);
        }
        assert_eq!(q.first_time(), Some(1));
        assert_eq!(q.pop_before(1), None, "nothing before 1");
        assert_eq!(q.pop_before(4), Some((1, 3)));
        assert_eq!(q.pop_before(4), Some((3, 1)));
        q.push(2, 9, 9);
        let order: Vec<usize> = q.sorted().into_iter().map(|(_, v)| *v).collect();
        assert_eq!(order, [9, 4, 0, 2]);
        assert_eq!(q.pop_before(4), Some((2, 9)));
        assert_eq!(q.pop_before(4), Some((3, 4)));
        assert_eq!(q.pop_before(i64::MAX), Some((5, 0)));
        assert_eq!(q.pop_before(i64::MAX), Some((5, 2)));
        assert_eq!(q.waiting(), 0);
        assert!(q.slots.len() <= 5, "freed slots are used again");
    }
}

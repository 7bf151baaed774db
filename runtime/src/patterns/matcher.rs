//! One key's pattern matching: partial matches advanced by the key's events, in event
//! time order.
//!
//! The rules (docs/language.md, "Patterns", says the same for users):
//!
//! - Every event that satisfies the first step starts a partial match.
//! - A partial match at step `i` with `c` events taken there, given the next event `e`:
//!   - may take `e` into step `i` again, if `c < max(i)` and `e` satisfies step `i`
//!     (repetitions of one step have relaxed contiguity: other events may come between);
//!   - may take `e` as the first event of a later step `j`, if `c >= min(i)`, every step
//!     between `i` and `j` is optional, `e` satisfies `j`, and, when `j` is strict
//!     (`next`), no event of the key came between the partial match's last event and `e`;
//!   - each of those is a branch of its own (a repeated step followed by a step that `e`
//!     also satisfies gives two partial matches);
//!   - when it takes `e` in no way it stays as it was, as long as something relaxed could
//!     still come (more of step `i`, or a later relaxed step); else it ends. A relaxed
//!     step never skips an event that satisfies it (Flink's `followedBy`, not `followedByAny`).
//! - `within`: every event of a match is strictly less than `within` after its first.
//! - A match is complete when its last step has its minimum. The first partial match
//!   (oldest first event, then the one made first) to complete with an event is the
//!   match, and every partial match of the key ends with it: one match never shares an
//!   event with the next (Flink's `SKIP_PAST_LAST_EVENT`).
//! - With an absence (`not_followed_by: x within d`), a completed match waits until
//!   `d` after its last event: an event satisfying `x` strictly before that ends it, else
//!   it is emitted at its deadline.
//! - At most `max_partial` partial matches per key: beyond, the oldest are dropped
//!   (counted).

use serde::{Deserialize, Serialize};

/// One step of a pattern, as the matcher needs it (its condition is evaluated by the
/// caller, see [`Event::satisfies`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Events it takes at least (0: optional) ...
    pub min: u32,
    /// ... and at most (`min.max(1)` or more).
    pub max: u32,
    /// `next`: its first event must come right after the previous step's last event.
    pub strict: bool,
}

/// The shape of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub steps: Vec<Step>,
    /// ms from a match's first event within which all its events are.
    pub within: Option<i64>,
    /// ms after a match's last event during which no event may satisfy the absence step.
    pub absence: Option<i64>,
    /// Partial matches kept per key.
    pub max_partial: usize,
}

impl Shape {
    /// The bit of [`Event::satisfies`] for the absence step.
    pub fn absence_bit(&self) -> u64 {
        1 << self.steps.len()
    }
}

/// An event as the matcher sees it.
#[derive(Debug, Clone, Copy)]
pub struct Event {
    pub t: i64,
    /// Bit `i`: the event satisfies step `i`; bit `steps.len()`: the absence step.
    pub satisfies: u64,
}

/// A partial match.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Partial<E> {
    step: usize,
    count: u32,
    /// No event of the key came after its last event (a strict step may follow).
    gap_free: bool,
    first: i64,
    last: i64,
    /// The last event taken by each step (`None`: an optional step skipped, or a step
    /// not reached yet).
    taken: Vec<Option<E>>,
}

/// A complete match waiting for its absence deadline.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Waiting<E> {
    pub deadline: i64,
    /// Its number, unique in the operator: the order of matches with one deadline.
    pub seq: u64,
    pub taken: Vec<Option<E>>,
}

/// A match: the last event of each step, and its time (its last event's, or its
/// absence deadline).
#[derive(Debug, Clone, PartialEq)]
pub struct Found<E> {
    pub taken: Vec<Option<E>>,
    pub t: i64,
}

/// What one event did to a key.
#[derive(Debug, PartialEq)]
pub struct Effect<E> {
    /// A match complete (emitted at once when the pattern has no absence).
    pub found: Option<Found<E>>,
    /// Waiting matches the event ended (their `(deadline, seq)`).
    pub cancelled: Vec<(i64, u64)>,
    /// Partial matches dropped for `max_partial`.
    pub evicted: u64,
}

/// One key's partial matches and waiting matches.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeyState<E> {
    partials: Vec<Partial<E>>,
    pub waiting: Vec<Waiting<E>>,
}

impl<E> Default for KeyState<E> {
    fn default() -> Self {
        KeyState {
            partials: Vec::new(),
            waiting: Vec::new(),
        }
    }
}

impl<E: Clone> KeyState<E> {
    pub fn is_empty(&self) -> bool {
        self.partials.is_empty() && self.waiting.is_empty()
    }

    pub fn partial_count(&self) -> usize {
        self.partials.len()
    }

    /// Every event held, for the epoch they came in.
    pub fn events(&self) -> impl Iterator<Item = &E> {
        let partials = self.partials.iter().flat_map(|p| p.taken.iter().flatten());
        partials.chain(self.waiting.iter().flat_map(|w| w.taken.iter().flatten()))
    }

    /// Every event held, to change.
    pub fn events_mut(&mut self) -> impl Iterator<Item = &mut E> {
        let partials = self.partials.iter_mut().flat_map(|p| p.taken.iter_mut().flatten());
        partials.chain(self.waiting.iter_mut().flat_map(|w| w.taken.iter_mut().flatten()))
    }

    /// The earliest time at which a partial match can no more complete (`first + within`).
    pub fn next_expiry(&self, shape: &Shape) -> Option<i64> {
        let within = shape.within?;
        self.partials.iter().map(|p| p.first.saturating_add(within)).min()
    }

    /// Ends the partial matches that can no more complete at `now` or later.
    pub fn expire(&mut self, shape: &Shape, now: i64) {
        if let Some(within) = shape.within {
            self.partials.retain(|p| now < p.first.saturating_add(within));
        }
    }

    /// Takes the key's next event (in event time order). A match that waits for its
    /// absence deadline is pushed to `waiting` with number `seq`. `spare` is an empty
    /// list the caller keeps between calls (for any key), so that stepping the partial
    /// matches allocates nothing.
    pub fn on_event(&mut self, shape: &Shape, e: Event, item: E, seq: u64, spare: &mut Vec<Partial<E>>) -> Effect<E> {
        let mut effect = Effect {
            found: None,
            cancelled: Vec::new(),
            evicted: 0,
        };
        if e.satisfies & shape.absence_bit() != 0 {
            self.waiting.retain(|w| {
                let ends = e.t < w.deadline;
                if ends {
                    effect.cancelled.push((w.deadline, w.seq));
                }
                !ends
            });
        }
        self.expire(shape, e.t);
        let n = shape.steps.len();
        let mut next = std::mem::take(spare);
        next.clear();
        for p in self.partials.drain(..) {
            advance(shape, p, e, &item, &mut next);
        }
        if e.satisfies & 1 != 0 {
            let mut taken = vec![None; n];
            taken[0] = Some(item);
            next.push(Partial {
                step: 0,
                count: 1,
                gap_free: true,
                first: e.t,
                last: e.t,
                taken,
            });
        }
        let complete = next
            .iter()
            .enumerate()
            .filter(|(_, p)| p.step == n - 1 && p.count >= shape.steps[n - 1].min.max(1))
            .min_by_key(|(i, p)| (p.first, *i))
            .map(|(i, _)| i);
        if let Some(i) = complete {
            let done = next.swap_remove(i);
            next.clear();
            match shape.absence {
                Some(d) => self.waiting.push(Waiting {
                    deadline: done.last.saturating_add(d),
                    seq,
                    taken: done.taken,
                }),
                None => {
                    effect.found = Some(Found {
                        taken: done.taken,
                        t: done.last,
                    })
                }
            }
        }
        if next.len() > shape.max_partial {
            // Oldest first: by first event, then by the order they were made.
            let mut order: Vec<usize> = (0..next.len()).collect();
            order.sort_by_key(|&i| (next[i].first, i));
            let drop = next.len() - shape.max_partial;
            let mut gone = vec![false; next.len()];
            for &i in &order[..drop] {
                gone[i] = true;
            }
            let mut i = 0;
            next.retain(|_| {
                i += 1;
                !gone[i - 1]
            });
            effect.evicted = drop as u64;
        }
        *spare = std::mem::replace(&mut self.partials, next);
        effect
    }

    /// Takes out the waiting match numbered `seq`.
    pub fn take_waiting(&mut self, seq: u64) -> Option<Waiting<E>> {
        let at = self.waiting.iter().position(|w| w.seq == seq)?;
        Some(self.waiting.remove(at))
    }
}

/// The branches of `p` given `e`, pushed to `out` (none: `p` ends). The last branch
/// takes `p` itself, the others a copy.
fn advance<E: Clone>(shape: &Shape, p: Partial<E>, e: Event, item: &E, out: &mut Vec<Partial<E>>) {
    let steps = &shape.steps;
    let step = steps[p.step];
    // The steps `e` is taken into: `p`'s own again, or a later one reachable past
    // optional steps (a strict one only right after `p`'s last event).
    let mut into: [usize; 64] = [0; 64];
    let mut n = 0;
    if p.count < step.max && e.satisfies & (1 << p.step) != 0 {
        into[n] = p.step;
        n += 1;
    }
    let mut relaxed_ahead = false;
    if p.count >= step.min {
        for (j, later) in steps.iter().enumerate().skip(p.step + 1) {
            relaxed_ahead |= !later.strict;
            if e.satisfies & (1 << j) != 0 && (!later.strict || p.gap_free) {
                into[n] = j;
                n += 1;
            }
            if later.min > 0 {
                break;
            }
        }
    }
    if n == 0 {
        if p.count < step.max || relaxed_ahead {
            out.push(Partial { gap_free: false, ..p });
        }
        return;
    }
    let take = |mut q: Partial<E>, j: usize| {
        q.count = if j == q.step { q.count + 1 } else { 1 };
        q.step = j;
        q.gap_free = true;
        q.last = e.t;
        q.taken[j] = Some(item.clone());
        q
    };
    for &j in &into[..n - 1] {
        out.push(take(p.clone(), j));
    }
    out.push(take(p, into[n - 1]));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn once(strict: bool) -> Step {
        Step { min: 1, max: 1, strict }
    }

    fn shape(steps: Vec<Step>) -> Shape {
        Shape {
            steps,
            within: None,
            absence: None,
            max_partial: 1000,
        }
    }

    /// The waiting matches due at `now`, by deadline (the operator takes them out one at
    /// a time by number, over all keys).
    fn due(key: &mut KeyState<usize>, now: i64) -> Vec<Waiting<usize>> {
        let mut due: Vec<Waiting<usize>> = key.waiting.iter().filter(|w| w.deadline <= now).cloned().collect();
        due.sort_by_key(|w| (w.deadline, w.seq));
        for w in &due {
            key.take_waiting(w.seq);
        }
        due
    }

    /// The labels' indices taken per step, and the match's time.
    type Match = (Vec<Option<usize>>, i64);

    /// Runs events `(t, label)` through one key; a label's letters name the steps it
    /// satisfies (`a` = step 0, `b` = 1, ...; `x` = the absence step). Returns each match
    /// as the labels' indices taken per step, with its time, and the evictions.
    fn run(shape: &Shape, events: &[(i64, &str)], end: i64) -> (Vec<Match>, u64) {
        let mut key = KeyState::<usize>::default();
        let mut spare = Vec::new();
        let mut found = Vec::new();
        let mut evicted = 0;
        for (i, (t, label)) in events.iter().enumerate() {
            for w in due(&mut key, *t) {
                found.push((w.taken, w.deadline));
            }
            let mut satisfies = 0u64;
            for c in label.chars() {
                satisfies |= match c {
                    'x' => shape.absence_bit(),
                    c => 1 << (c as u64 - 'a' as u64),
                };
            }
            let effect = key.on_event(shape, Event { t: *t, satisfies }, i, i as u64, &mut spare);
            evicted += effect.evicted;
            if let Some(f) = effect.found {
                found.push((f.taken, f.t));
            }
        }
        for w in due(&mut key, end) {
            found.push((w.taken, w.deadline));
        }
        (found, evicted)
    }

    #[test]
    fn followed_by_skips_what_does_not_match_and_next_does_not() {
        let relaxed = shape(vec![once(false), once(false)]);
        let (found, _) = run(&relaxed, &[(1, "a"), (2, ""), (3, "b")], 10);
        assert_eq!(found, vec![(vec![Some(0), Some(2)], 3)]);
        let strict = shape(vec![once(false), once(true)]);
        let (found, _) = run(&strict, &[(1, "a"), (2, ""), (3, "b")], 10);
        assert!(found.is_empty(), "an event came between: {found:?}");
        let (found, _) = run(&strict, &[(1, "a"), (2, "b")], 10);
        assert_eq!(found, vec![(vec![Some(0), Some(1)], 2)]);
    }

    #[test]
    fn a_match_takes_its_events_and_the_next_one_starts_after_it() {
        let s = shape(vec![once(false), once(false)]);
        // Two `a`s then one `b`: the older `a` wins, the other partial ends with it.
        let (found, _) = run(&s, &[(1, "a"), (2, "a"), (3, "b"), (4, "b"), (5, "a"), (6, "b")], 10);
        assert_eq!(found, vec![(vec![Some(0), Some(2)], 3), (vec![Some(4), Some(5)], 6)]);
    }

    #[test]
    fn within_is_strict_at_its_bound() {
        let mut s = shape(vec![once(false), once(false)]);
        s.within = Some(10);
        let (found, _) = run(&s, &[(0, "a"), (10, "b")], 100);
        assert!(found.is_empty(), "10 ms after the first is not within 10 ms");
        let (found, _) = run(&s, &[(0, "a"), (9, "b")], 100);
        assert_eq!(found, vec![(vec![Some(0), Some(1)], 9)]);
        // The expired partial is gone; a later `a` starts afresh.
        let (found, _) = run(&s, &[(0, "a"), (12, "a"), (15, "b")], 100);
        assert_eq!(found, vec![(vec![Some(1), Some(2)], 15)]);
    }

    #[test]
    fn times_takes_exactly_that_many_with_gaps_allowed() {
        let s = shape(vec![
            once(false),
            Step {
                min: 3,
                max: 3,
                strict: false,
            },
            once(false),
        ]);
        let (found, _) = run(&s, &[(1, "a"), (2, "b"), (3, ""), (4, "b"), (5, "bc"), (6, "c")], 10);
        // The third `b` (5) also satisfies `c`, but `c` needs three `b`s first.
        assert_eq!(found, vec![(vec![Some(0), Some(4), Some(5)], 6)]);
    }

    #[test]
    fn one_or_more_branches_and_the_earliest_completion_wins() {
        let s = shape(vec![
            once(false),
            Step {
                min: 1,
                max: 3,
                strict: false,
            },
            once(false),
        ]);
        let (found, _) = run(&s, &[(1, "a"), (2, "b"), (3, "bc")], 10);
        // At 3, the event is another `b` (one branch) and the `c` (another): complete.
        assert_eq!(found, vec![(vec![Some(0), Some(1), Some(2)], 3)]);
        // At most 3 `b`s: the fourth cannot be taken, the partial still waits for `c`.
        let (found, _) = run(&s, &[(1, "a"), (2, "b"), (3, "b"), (4, "b"), (5, "b"), (6, "c")], 10);
        assert_eq!(found, vec![(vec![Some(0), Some(3), Some(5)], 6)]);
    }

    #[test]
    fn an_optional_step_may_be_skipped_or_taken() {
        let s = shape(vec![
            once(false),
            Step {
                min: 0,
                max: 1,
                strict: false,
            },
            once(false),
        ]);
        let (found, _) = run(&s, &[(1, "a"), (2, "c")], 10);
        assert_eq!(found, vec![(vec![Some(0), None, Some(1)], 2)]);
        let (found, _) = run(&s, &[(1, "a"), (2, "b"), (3, "c")], 10);
        assert_eq!(found, vec![(vec![Some(0), Some(1), Some(2)], 3)]);
    }

    #[test]
    fn a_strict_step_after_an_optional_one_needs_no_gap() {
        let s = shape(vec![
            once(false),
            Step {
                min: 0,
                max: 1,
                strict: false,
            },
            once(true),
        ]);
        let (found, _) = run(&s, &[(1, "a"), (2, ""), (3, "c")], 10);
        assert!(found.is_empty(), "{found:?}");
        let (found, _) = run(&s, &[(1, "a"), (2, ""), (3, "b"), (4, "c")], 10);
        assert_eq!(found, vec![(vec![Some(0), Some(2), Some(3)], 4)]);
    }

    #[test]
    fn absence_fires_at_its_deadline_unless_the_event_comes_first() {
        let mut s = shape(vec![once(false)]);
        s.absence = Some(5);
        // Confirmed at 4 (< 1 + 5): no match. Confirmed at 16 = 10 + 6: too late, a match at 15.
        let (found, _) = run(&s, &[(1, "a"), (4, "x"), (10, "a"), (16, "x")], 100);
        assert_eq!(found, vec![(vec![Some(2)], 15)]);
        // Exactly at the deadline is not before it: the match stands.
        let (found, _) = run(&s, &[(1, "a"), (6, "x")], 100);
        assert_eq!(found, vec![(vec![Some(0)], 6)]);
    }

    #[test]
    fn partial_matches_beyond_the_bound_drop_the_oldest() {
        let mut s = shape(vec![once(false), once(false)]);
        s.max_partial = 2;
        let (found, evicted) = run(&s, &[(1, "a"), (2, "a"), (3, "a"), (4, "b")], 10);
        assert_eq!(evicted, 1);
        assert_eq!(found, vec![(vec![Some(1), Some(3)], 4)], "the oldest `a` was dropped");
    }
}

use super::*;
use crate::aggregates::SplitMix64;
use crate::errors::EvalError;
use crate::windows::state::testing::Step::{Rec, Wm};
use crate::windows::state::testing::{
    assert_garbage_never_panics, assert_resumes, drain, feed, opts, out, run, w, CountSum, Seen, Step,
};
use crate::windows::FixedWindows;
use crate::windows::{Aggregation, Keyed, KeyedOperator, Window};

fn paned(size: i64, slide: i64, offset: i64, lateness: i64) -> PanedWindows<CountSum> {
    PanedWindows::new(CountSum, size, slide, offset, opts(lateness))
}

/// What `steps` give, then closing, with a window kept per window ([`FixedWindows`])
/// and with panes: the same, since a count and an integer sum do not depend on the
/// order they are merged in.
fn both(size: i64, slide: i64, offset: i64, lateness: i64, steps: &[Step]) -> (Vec<Seen>, Vec<Seen>) {
    let close = |mut seen: Vec<Seen>, op: &mut dyn FnMut() -> Vec<(crate::windows::state::testing::Out, i64)>| {
        seen.extend(op().into_iter().map(|(out, t)| Seen::Result(out, t)));
        seen
    };
    let mut fixed = FixedWindows::new(CountSum, size, slide, offset, opts(lateness));
    let seen = run(&mut fixed, steps);
    let fixed_seen = close(seen, &mut || {
        fixed.on_close();
        drain(&mut fixed)
    });
    let mut panes = paned(size, slide, offset, lateness);
    let seen = run(&mut panes, steps);
    let panes_seen = close(seen, &mut || {
        panes.on_close();
        drain(&mut panes)
    });
    (fixed_seen, panes_seen)
}

#[test]
fn a_window_is_the_merge_of_its_panes() {
    // 10 s every 4 s: panes of 2 s, windows [-8, 2), [-4, 6), [0, 10), [4, 14), [8, 18)
    let mut op = paned(10_000, 4_000, 0, 0);
    feed(&mut op, "a", 1, 1_000);
    feed(&mut op, "a", 10, 5_000);
    feed(&mut op, "b", 100, 9_000);
    assert_eq!(op.entries(), 3, "one accumulator per key and pane, not per window");
    op.on_watermark(10_000);
    assert_eq!(
        drain(&mut op),
        [
            out("a", w(-8_000, 2_000), 1, 1, false, 1_999),
            out("a", w(-4_000, 6_000), 2, 11, false, 5_999),
            out("a", w(0, 10_000), 2, 11, false, 9_999),
            out("b", w(0, 10_000), 1, 100, false, 9_999),
        ]
    );
    op.on_close();
    assert_eq!(
        drain(&mut op),
        [
            out("a", w(4_000, 14_000), 1, 10, false, 13_999),
            out("b", w(4_000, 14_000), 1, 100, false, 13_999),
            out("b", w(8_000, 18_000), 1, 100, false, 17_999),
        ]
    );
    assert_eq!(op.entries(), 0, "every pane dropped once its windows closed");
}

/// A random hopping window `(size, slide, offset, lateness)` and records for it, up to
/// 30 s out of order, with watermarks 2 s behind between them: 5 keys, and in one
/// round of six a crowd of keys that comes and goes (its panes hold most of the keys of
/// the moment, so their cells become arrays, and the slots of keys gone are reused).
fn random_scenario(rng: &mut SplitMix64, round: usize) -> ((i64, i64, i64, i64), &'static [Step]) {
    let crowd = round % 6 == 5;
    let (records, tick) = if crowd { (1_000, 8) } else { (120, 700) };
    let shapes = [
        (10_000, 5_000, 0),
        (10_000, 4_000, 1_000),
        (6_000, 1_000, 0),
        (7_000, 3_000, 2_000),
        (60_000, 1_000, 0),
        (5_000, 5_000, 0),
    ];
    let (size, slide, offset) = shapes[round % shapes.len()];
    let lateness = [0, 0, 3_000, 12_000][(rng.next_u64() % 4) as usize];
    let mut clock = (rng.next_u64() % 100_000) as i64 - 50_000;
    let mut steps = Vec::new();
    for _ in 0..(rng.next_u64() % records) {
        clock += (rng.next_u64() % tick) as i64;
        let behind = match rng.next_u64() % 20 {
            0 => (rng.next_u64() % 30_000) as i64,
            _ => (rng.next_u64() % 1_500) as i64,
        };
        let key = match crowd {
            // 120 keys of the moment, the crowd moving on by one every 200 ms.
            true => &*Box::leak(format!("k{}", clock.div_euclid(200) + (rng.next_u64() % 120) as i64).into_boxed_str()),
            false => ["a", "b", "c", "d", "e"][(rng.next_u64() % 5) as usize],
        };
        steps.push(Rec(key, (rng.next_u64() % 100) as i64, clock - behind));
        if rng.next_u64().is_multiple_of(6) {
            steps.push(Wm(clock - 2_000));
        }
    }
    ((size, slide, offset, lateness), Box::leak(steps.into_boxed_slice()))
}

#[test]
fn hopping_windows_over_panes_give_what_a_window_per_window_gives() {
    let mut rng = SplitMix64::new(5);
    for round in 0..300 {
        let ((size, slide, offset, lateness), steps) = random_scenario(&mut rng, round);
        let (fixed, panes) = both(size, slide, offset, lateness, steps);
        assert_eq!(
            panes, fixed,
            "round {round}: size {size}, slide {slide}, offset {offset}, lateness {lateness}\n{steps:?}"
        );
    }
}

/// Values joined in the order an accumulator saw them and merges written out with their
/// grouping, `(a+b)`: a result shows exactly how it was folded, as a float sum's last
/// digits would.
struct Grouping;

impl Keyed for Grouping {
    type Input = i64;
    type Key = String;
    type Output = (String, Window, String, bool);
}

impl Aggregation for Grouping {
    type Acc = String;

    fn new_acc(&self) -> String {
        String::new()
    }

    fn add(&self, acc: &mut String, value: &i64, _t: i64) -> Result<(), EvalError> {
        if !acc.is_empty() {
            acc.push(',');
        }
        acc.push_str(&value.to_string());
        Ok(())
    }

    fn merge(&self, acc: &mut String, other: String) -> Result<(), EvalError> {
        *acc = format!("({acc}+{other})");
        Ok(())
    }

    fn output(&self, key: &String, window: Window, acc: &String, update: bool) -> Self::Output {
        (key.clone(), window, acc.clone(), update)
    }

    fn acc_heap_bytes(&self, acc: &String) -> usize {
        acc.capacity()
    }
}

/// Runs `steps` through hopping windows over panes and closes them, taking the results
/// after each step; with `resume`, through a fresh operator restored from a checkpoint
/// after each step, which builds every fold again.
fn grouped(shape: (i64, i64, i64, i64), steps: &[Step], resume: bool) -> Vec<((String, Window, String, bool), i64)> {
    let (size, slide, offset, lateness) = shape;
    let make = || PanedWindows::new(Grouping, size, slide, offset, opts(lateness));
    let mut op = make();
    let mut seen = Vec::new();
    for step in steps.iter().map(Some).chain([None]) {
        match step {
            Some(Rec(key, value, t)) => {
                op.process(*key, value, *t).expect("added");
            }
            Some(Wm(wm)) => {
                op.on_watermark(*wm);
            }
            None => op.on_close(),
        }
        let mut results = Results::default();
        op.drain_emitted(&mut results, usize::MAX);
        seen.extend(results.drain());
        if resume {
            let mut saved = Vec::new();
            op.save_state(&mut saved).expect("saved");
            op = make();
            op.restore_state(&saved).expect("restored");
        }
    }
    seen
}

#[test]
fn how_a_result_is_grouped_depends_on_its_panes_alone() {
    let mut rng = SplitMix64::new(9);
    let mut merged = 0;
    for round in 0..300 {
        let (shape, steps) = random_scenario(&mut rng, round);
        let whole = grouped(shape, steps, false);
        assert_eq!(
            whole,
            grouped(shape, steps, true),
            "round {round}: {shape:?}\n{steps:?}"
        );
        merged += whole.iter().filter(|((_, _, acc, _), _)| acc.contains(")+")).count();
    }
    assert!(merged > 100, "results that merged folds of merges: {merged}");
}

#[test]
fn times_at_the_ends_of_the_range_neither_panic_nor_differ() {
    for (size, slide, offset) in [(10_000, 3_000, 1_000), (4, 2, 1), (i64::MAX / 2, i64::MAX / 4, 0)] {
        let steps = [
            Rec("a", 1, i64::MIN),
            Rec("b", 2, i64::MIN + 1),
            Rec("a", 3, i64::MAX),
            Rec("c", 4, i64::MAX - 1),
            Wm(i64::MIN + 5),
            Rec("a", 5, 0),
            Wm(i64::MAX - 10),
            Rec("b", 6, i64::MAX),
        ];
        for lateness in [0, 5, i64::MAX] {
            let (fixed, panes) = both(size, slide, offset, lateness, &steps);
            assert_eq!(
                panes, fixed,
                "size {size}, slide {slide}, offset {offset}, lateness {lateness}"
            );
        }
    }
}

#[test]
fn a_record_pins_its_epoch_until_its_last_window_fires() {
    let mut op = paned(10_000, 5_000, 0, 0);
    op.set_epoch(3);
    feed(&mut op, "a", 1, 7_000);
    op.set_epoch(4);
    feed(&mut op, "b", 1, 12_000);
    assert_eq!(op.pending_epoch(), Some(3));
    op.on_watermark(10_000);
    assert_eq!(op.pending_epoch(), Some(3), "[5 s, 15 s) has not fired");
    op.on_watermark(15_000);
    assert_eq!(op.pending_epoch(), Some(4));
    op.on_watermark(20_000);
    assert_eq!(op.pending_epoch(), None);
}

#[test]
fn late_records_update_the_windows_kept_for_them() {
    let steps = [
        Rec("a", 1, 1_000),
        Wm(10_000),
        // [0, 10 s) fired and is kept until 13 s; [5 s, 15 s) is open.
        Rec("a", 2, 6_000),
        Rec("b", 4, 7_000),
        Wm(13_000),
        Rec("a", 8, 8_000),
    ];
    let (fixed, panes) = both(10_000, 5_000, 0, 3_000, &steps);
    assert_eq!(panes, fixed);
    let updates: Vec<_> = panes
        .iter()
        .filter_map(|seen| match seen {
            Seen::Result((key, window, count, sum, update), _) if window.end == 10_000 => {
                Some((key.as_str(), *count, *sum, *update))
            }
            _ => None,
        })
        .collect();
    assert_eq!(updates, [("a", 1, 1, false), ("a", 2, 3, true), ("b", 1, 4, false)]);
}

#[test]
fn hopping_windows_over_panes_resume_from_a_checkpoint() {
    let a = [Rec("a", 1, 1_000), Rec("b", 2, 4_000), Wm(5_000), Rec("a", 4, 6_000)];
    let b = [Rec("a", 8, 3_000), Wm(12_000), Rec("b", 16, 14_000), Wm(21_000)];
    let seen = assert_resumes(|| paned(10_000, 5_000, 0, 2_000), &a, &b);
    assert!(
        seen.iter().filter(|s| matches!(s, Seen::Result(..))).count() > 4,
        "{seen:?}"
    );
    assert_resumes(|| paned(10_000, 5_000, 0, 2_000), &[], &b);
}

#[test]
fn a_checkpoint_that_is_not_one_is_refused_never_a_panic() {
    assert_garbage_never_panics(|| paned(10_000, 5_000, 0, 2_000));
    let mut saved = Vec::new();
    let mut op = paned(10_000, 5_000, 0, 0);
    feed(&mut op, "a", 1, 1_000);
    op.save_state(&mut saved).unwrap();
    // Read by windows shifted by an offset, its pane does not start on a pane boundary.
    assert!(paned(10_000, 5_000, 1_000, 0).restore_state(&saved).is_err());
    assert!(paned(10_000, 5_000, 0, 0).restore_state(&saved).is_ok());
}

#[test]
fn a_record_before_the_fired_windows_are_drained_comes_after_their_results() {
    fn steps<O: KeyedOperator<CountSum>>(op: &mut O) -> Vec<(crate::windows::state::testing::Out, i64)> {
        feed(op, "a", 1, 1_000);
        feed(op, "b", 4, 3_000);
        op.on_watermark(10_000);
        // [0, 10 s) fired and is kept for 3 s: the record updates it.
        feed(op, "a", 2, 2_000);
        drain(op)
    }
    let fixed = steps(&mut FixedWindows::new(CountSum, 10_000, 5_000, 0, opts(3_000)));
    let panes = steps(&mut paned(10_000, 5_000, 0, 3_000));
    assert_eq!(panes, fixed);
    assert_eq!(
        panes,
        [
            out("a", w(-5_000, 5_000), 1, 1, false, 4_999),
            out("b", w(-5_000, 5_000), 1, 4, false, 4_999),
            out("a", w(0, 10_000), 1, 1, false, 9_999),
            out("b", w(0, 10_000), 1, 4, false, 9_999),
            out("a", w(0, 10_000), 2, 3, true, 9_999),
        ]
    );
}

#[test]
fn a_checkpoint_taken_after_the_watermark_reached_the_end_restores() {
    for (size, slide, offset) in [(10, 5, 0), (1, 1, 0), (4, 2, 1)] {
        let mut op = paned(size, slide, offset, 0);
        feed(&mut op, "a", 1, i64::MAX);
        op.on_watermark(i64::MAX);
        assert_eq!(
            drain(&mut op).len(),
            (size / slide) as usize,
            "every window of the record fired"
        );
        let mut saved = Vec::new();
        op.save_state(&mut saved).unwrap();
        let mut restored = paned(size, slide, offset, 0);
        assert_eq!(
            restored.restore_state(&saved),
            Ok(()),
            "size {size}, slide {slide}, offset {offset}"
        );
        assert_eq!(
            feed(&mut restored, "a", 1, i64::MAX),
            Admit::Late { watermark: i64::MAX }
        );
    }
}

#[test]
fn expired_panes_are_neither_saved_nor_measured_while_firing_has_yet_to_drop_their_keys() {
    // 4 s every 2 s: panes of 2 s. The watermark at 6 s fires the windows up to [2, 6)
    // and expires the pane at 0 (its last window is [0, 4)); b, left with no pane, is
    // dropped when firing next visits it.
    let mut op = paned(4_000, 2_000, 0, 0);
    feed(&mut op, "a", 1, 1_000);
    feed(&mut op, "b", 2, 1_000);
    feed(&mut op, "a", 3, 9_000);
    op.on_watermark(6_000);
    assert_eq!(drain(&mut op).len(), 4, "a and b in [-2, 2) and [0, 4)");
    // Each key and the starts of its panes.
    let held = |op: &PanedWindows<CountSum>| {
        let mut held: Vec<(String, Vec<i64>)> = op
            .keys
            .iter()
            .map(|(key, slot)| {
                let starts = op.columns.iter().filter(|column| column.cells.get(*slot).is_some());
                (key.clone(), starts.map(|column| column.start).collect())
            })
            .collect();
        held.sort();
        held
    };
    assert_eq!(held(&op), [("a".into(), vec![8_000]), ("b".into(), vec![])]);
    assert_eq!(op.entries(), 1);

    let mut saved = Vec::new();
    op.save_state(&mut saved).unwrap();
    let keys = restore::<Saved<String, Vec<(i64, <CountSum as Aggregation>::Acc)>>>(&saved)
        .unwrap()
        .keys;
    let starts: Vec<_> = keys
        .iter()
        .map(|(key, panes)| (key.as_str(), panes[0].0, panes.len()))
        .collect();
    assert_eq!(starts, [("a", 8_000, 1)]);
    let mut restored = paned(4_000, 2_000, 0, 0);
    restored.restore_state(&saved).unwrap();
    assert_eq!(restored.entries(), 1);
    assert_eq!(restored.state_size().bytes, op.state_size().bytes);

    // The next firing visits every key: b goes, and a keeps its live pane.
    op.on_watermark(10_000);
    assert_eq!(drain(&mut op).len(), 1, "a in [6, 10)");
    assert_eq!(held(&op), [("a".into(), vec![8_000])]);
}

#[test]
fn a_record_behind_the_watermark_changes_the_head_of_the_windows_after_it() {
    // 10 s every 1 s: blocks of 10 s. At the watermark 12.5 s the window [2, 12) has
    // fired, its head holding the pane [11, 12). A record at 11.5 s is behind the
    // watermark yet in open windows: it changes that pane, and [3, 13) must count it
    // (as a new pane before the head's end must).
    for (second, t) in [(11_000, 11_500), (11_000, 10_500), (10_000, 11_200)] {
        let steps = [
            Rec("a", 1, 1_000),
            Rec("a", 2, second),
            Wm(12_500),
            Rec("a", 4, t),
            Wm(13_500),
            Wm(25_000),
        ];
        let (fixed, panes) = both(10_000, 1_000, 0, 0, &steps);
        assert_eq!(panes, fixed, "a second record at {second}, then one at {t}");
        assert!(fixed
            .iter()
            .any(|seen| matches!(seen, Seen::Result((_, w, 2, 6, _), _) if w.start == 3_000)));
    }
}

#[test]
fn a_pane_of_many_keys_holds_the_tails_of_those_without_a_record_in_it() {
    // 100 keys with a record in nearly every pane of 1 s, each skipping one pane in
    // seven: the panes' cells are arrays, and a window starting at a pane a key skipped
    // finds the key's tail in that pane's folds, as the fold of its next pane. Two
    // records before all the others make panes of one key each, maps, before the
    // arrays: a window starting before them finds those keys' tails there.
    let keys: Vec<&'static str> = (0..100).map(|i| &*format!("k{i:03}").leak()).collect();
    let mut steps = vec![Rec("k005", 1_000, 1_000), Rec("k042", 2_000, 2_000)];
    for second in 3..40 {
        for (i, key) in keys.iter().enumerate() {
            if (i + second) % 7 != 0 {
                steps.push(Rec(key, (i + second) as i64, second as i64 * 1_000 + i as i64));
            }
        }
        steps.push(Wm(second as i64 * 1_000 - 1_500));
    }
    for (size, slide) in [(10_000, 1_000), (7_000, 1_000), (6_000, 2_000)] {
        let mut op = paned(size, slide, 0, 0);
        run(&mut op, &steps[..steps.len() / 2]);
        assert!(
            op.columns.iter().any(|column| column.cells.is_dense()),
            "the panes' cells are arrays"
        );
        let (fixed, panes) = both(size, slide, 0, 0, &steps);
        assert!(fixed.len() > 2_000);
        assert_eq!(panes, fixed, "size {size}, slide {slide}");
    }
}

/// The keys' slots, in key order.
fn slots_in_key_order(op: &mut PanedWindows<CountSum>) -> Vec<u32> {
    op.keys.in_order().iter().map(|&(_, slot)| slot).collect()
}

#[test]
fn firing_hands_out_slots_in_key_order_once_many_keys_came_out_of_order() {
    // 200 keys arriving in reverse key order take slots in arrival order; the first
    // window fired hands them out again in key order (so it reads its arrays front to
    // back), and the results are the same.
    let keys: Vec<&'static str> = (0..200).map(|i| &*format!("k{i:03}").leak()).collect();
    let mut op = paned(4_000, 1_000, 0, 0);
    for (i, key) in keys.iter().rev().enumerate() {
        feed(&mut op, key, i as i64, 100 + i as i64);
    }
    assert_eq!(slots_in_key_order(&mut op), (0..200).rev().collect::<Vec<_>>());
    op.on_watermark(1_000);
    let fired = drain(&mut op);
    assert_eq!(fired.len(), 200);
    assert!(fired.iter().all(|((key, ..), _)| keys.contains(&key.as_str())));
    assert_eq!(
        slots_in_key_order(&mut op),
        (0..200).collect::<Vec<_>>(),
        "slots in key order"
    );

    // Twenty new keys (one in ten) take the next slots, and keep them while fewer windows
    // have fired since than a window has panes (4): each reordering moves every pane.
    for (i, key) in (200..220).rev().map(|i| format!("j{i:03}")).enumerate() {
        feed(&mut op, &key, 1, 1_100 + i as i64);
    }
    let moved = |op: &mut PanedWindows<CountSum>| slots_in_key_order(op) != (0..220).collect::<Vec<_>>();
    for second in 2..5 {
        op.on_watermark(second * 1_000);
        assert_eq!(drain(&mut op).len(), 220);
        assert!(moved(&mut op), "reordered only {second} windows after the last time");
    }
    // The fifth reorders (the 200 keys whose pane expired too, then dropped).
    op.on_watermark(5_000);
    assert_eq!(drain(&mut op).len(), 20);
    assert_eq!(slots_in_key_order(&mut op), (0..20).collect::<Vec<_>>(), "reordered");

    // One new key in 221 is too few to move every pane for.
    let mut op = paned(4_000, 1_000, 0, 0);
    let mut before = None;
    for second in 0..12 {
        for key in &keys {
            feed(&mut op, key, 1, second * 1_000 + 500);
        }
        if second >= 1 {
            feed(&mut op, "a", 1, second * 1_000 + 600);
        }
        if second == 1 {
            before = Some(slots_in_key_order(&mut op));
        }
        op.on_watermark((second + 1) * 1_000);
        drain(&mut op);
    }
    let after = slots_in_key_order(&mut op);
    assert_eq!(Some(&after), before.as_ref(), "the slots stay as they were");
    assert_eq!(after[0], 200, "\"a\", first in key order, kept the slot it took");
}

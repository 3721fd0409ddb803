// SPDX-License-Identifier: GPL-2.0

//! loom models of the concurrent parts: lock-free lookups against inserts, removals and resizes
//! (which never make a lookup retry or wait), and racing get-or-alloc calls (ctor exactly
//! once). loom runs each model under every interleaving (up to its preemption bound) and every
//! outcome the C11 memory model allows for the atomics, so an ordering that is too weak fails
//! here.
//!
//! `RUSTFLAGS="--cfg loom" cargo test --release loom` (`scripts/host-test` runs it).

use super::same_shard_objs;
use crate::platform::{Dtor, GFP_KERNEL};
use crate::table::{Mode, Retire, Table};
use core::ptr::NonNull;
use loom::thread;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn table(objs: &[usize], id: usize) -> Arc<Table> {
    let t = Arc::new(Table::new());
    t.init(1, GFP_KERNEL).unwrap();
    for &o in objs {
        t.get_or_alloc(o, id, 8, GFP_KERNEL, Mode::Alloc, |_| Ok(()))
            .unwrap();
    }
    t
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
    b.max_branches = 100_000;
    b.check(f);
}

/// A variable that exists throughout is found while an insert into its shard grows the array
/// (copying its slots and publishing the new one); a variable that never exists is not.
#[test]
fn loom_lookup_during_grow() {
    model(|| {
        // Four fill the shard's one line up to the load it grows at; the fifth grows it.
        let objs = same_shard_objs(1, 5);
        let t = table(&objs[..4], 1);
        let reader = {
            let (t, a) = (t.clone(), objs[0]);
            thread::spawn(move || {
                let g = t.env().read_lock();
                assert!(t.get(a, 1, &g).is_some(), "missed a live variable");
                assert!(t.get(a, 2, &g).is_none());
            })
        };
        t.get_or_alloc(objs[4], 1, 8, GFP_KERNEL, Mode::Alloc, |_| Ok(()))
            .unwrap();
        reader.join().unwrap();
        assert!(t.stats().sum.grows >= 1);
    });
}

/// The same while a free that may sleep shrinks the array (allocating it, migrating the lines
/// and publishing it, all inside the free).
#[test]
fn loom_lookup_during_shrink() {
    model(|| {
        let objs = same_shard_objs(1, 9);
        let t = table(&objs, 1);
        assert!(t.stats().max_lines > 1);
        crate::platform::set_may_sleep(false);
        for &o in &objs[2..] {
            t.free(o, 1, Retire::DtorNow(None)).unwrap();
        }
        crate::platform::set_may_sleep(true);
        let reader = {
            let (t, a) = (t.clone(), objs[0]);
            thread::spawn(move || {
                let g = t.env().read_lock();
                assert!(t.get(a, 1, &g).is_some(), "missed a live variable");
                assert!(t.get(a, 2, &g).is_none());
            })
        };
        t.free(objs[1], 1, Retire::DtorNow(None)).unwrap();
        reader.join().unwrap();
        assert_eq!(t.stats().max_lines, 1);
    });
}

/// A lookup from an "NMI" that interrupts a writer in the middle of a migration: the writer's
/// state is frozen (here: a reader thread runs while the writer is preempted anywhere), and the
/// lookup must neither wait nor miss.
#[test]
fn loom_lookup_never_waits_for_a_writer() {
    model(|| {
        let objs = same_shard_objs(1, 6);
        let t = table(&objs[..4], 1);
        let writer = {
            let (t, o4, o5) = (t.clone(), objs[4], objs[5]);
            thread::spawn(move || {
                // The fifth variable grows the array; the sixth migrates and publishes.
                t.get_or_alloc(o4, 1, 8, GFP_KERNEL, Mode::Alloc, |_| Ok(()))
                    .unwrap();
                t.free(o5, 1, Retire::DtorNow(None)).unwrap();
            })
        };
        let g = t.env().read_lock();
        for &o in &objs[..4] {
            assert!(t.get(o, 1, &g).is_some(), "missed a live variable");
        }
        assert!(t.get(objs[5], 1, &g).is_none());
        drop(g);
        writer.join().unwrap();
    });
}

/// A lookup racing with the removal of another variable of its chain still finds its own; the
/// removed one's memory outlives the reader (freed at the barrier only).
#[test]
fn loom_lookup_during_free() {
    model(|| {
        let objs = same_shard_objs(1, 2);
        let t = table(&objs, 1);
        let reader = {
            let (t, a, b) = (t.clone(), objs[0], objs[1]);
            thread::spawn(move || {
                let g = t.env().read_lock();
                assert!(t.get(a, 1, &g).is_some());
                if let Some(p) = t.get(b, 1, &g) {
                    // Valid until the read side ends, even if freed meanwhile.
                    // SAFETY: 8 bytes of data, kept by RCU.
                    assert_eq!(unsafe { p.cast::<u64>().as_ptr().read() }, 0);
                }
            })
        };
        static DTORS: AtomicUsize = AtomicUsize::new(0);
        DTORS.store(0, Ordering::SeqCst);
        fn dtor(_: usize, _: NonNull<u8>) {
            DTORS.fetch_add(1, Ordering::SeqCst);
        }
        assert!(t
            .free(objs[1], 1, Retire::DtorAfterGp(Some(Dtor(dtor))))
            .unwrap());
        reader.join().unwrap();
        t.env().barrier();
        assert_eq!(DTORS.load(Ordering::SeqCst), 1);
    });
}

/// Two racing get-or-alloc calls for one `<obj, id>` get the same variable; the constructor
/// runs exactly once, before anyone can see the variable.
#[test]
fn loom_get_or_alloc_race() {
    model(|| {
        let objs = same_shard_objs(1, 1);
        let t = table(&[], 1);
        let ctors = Arc::new(AtomicUsize::new(0));
        let racer = |t: Arc<Table>, ctors: Arc<AtomicUsize>, o: usize| {
            t.get_or_alloc(o, 1, 8, GFP_KERNEL, Mode::GetOrAlloc, |d| {
                ctors.fetch_add(1, Ordering::SeqCst);
                // SAFETY: 8 bytes of data, not visible yet.
                unsafe { d.cast::<u64>().as_ptr().write(7) };
                Ok(())
            })
            .unwrap()
            .as_ptr() as usize
        };
        let other = {
            let (t, ctors, o) = (t.clone(), ctors.clone(), objs[0]);
            thread::spawn(move || racer(t, ctors, o))
        };
        let mine = racer(t.clone(), ctors.clone(), objs[0]);
        let theirs = other.join().unwrap();
        assert_eq!(mine, theirs);
        assert_eq!(ctors.load(Ordering::SeqCst), 1);
        // SAFETY: the variable is live.
        assert_eq!(unsafe { (mine as *const u64).read() }, 7);
    });
}

/// An allocation admitted by a check that an unbinding makes fail (the typed ids of the kernel
/// module: `types.rs`), racing that unbinding and the sweep after it: whatever the interleaving,
/// no variable is left. The insert either happens under the shard lock before the sweep takes
/// it, or its check under that lock sees the unbinding.
#[test]
fn loom_alloc_if_races_unbind() {
    model(|| {
        let objs = same_shard_objs(1, 1);
        let t = table(&[], 1);
        let bound = Arc::new(crate::sync::AtomicBool::new(true));
        let alloc = {
            let (t, bound, o) = (t.clone(), bound.clone(), objs[0]);
            thread::spawn(move || {
                let admit = || bound.load(crate::sync::Ordering::Acquire);
                t.get_or_alloc_if(o, 1, 8, GFP_KERNEL, Mode::Alloc, admit, |_| Ok(()))
                    .is_ok()
            })
        };
        bound.store(false, crate::sync::Ordering::Release);
        t.free_all(1, Retire::DtorAfterGp(None)).unwrap();
        alloc.join().unwrap();
        assert_eq!(t.count_id(1).0, 0, "a variable of an unbound id was left");
    });
}

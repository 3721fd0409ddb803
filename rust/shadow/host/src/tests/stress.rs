// SPDX-License-Identifier: GPL-2.0

//! Thread stress: writers on overlapping objects, each with an exact model of its own id, while
//! a reader thread looks everything up and a maintenance thread resizes and runs grace periods.

use super::{live_allocations, obj, read_u64, serial, write_u64};
use crate::platform::{Dtor, GFP_ATOMIC, GFP_KERNEL};
use crate::table::{AllocError, Mode, Retire, Table};
use core::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

static DTOR_CALLS: AtomicUsize = AtomicUsize::new(0);

fn count_dtor(_obj: usize, _data: NonNull<u8>) {
    DTOR_CALLS.fetch_add(1, Ordering::SeqCst);
}

/// A xorshift generator: deterministic per thread.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const OBJS: usize = 2048;
const OPS: usize = 60_000;
const WRITERS: usize = 4;

fn writer(t: &Table, id: usize, seed: u64) -> usize {
    let mut rng = Rng(seed);
    let mut model: Vec<Option<u64>> = vec![None; OBJS];
    let mut dtors = 0;
    for step in 0..OPS {
        let i = rng.below(OBJS);
        let o = obj(i);
        let tag = (id as u64) << 32 | step as u64;
        let gfp = if rng.below(4) == 0 {
            GFP_ATOMIC
        } else {
            GFP_KERNEL
        };
        match rng.below(10) {
            0..=2 => {
                let g = t.env().read_lock();
                let got = t.get(o, id, &g).map(read_u64);
                assert_eq!(got, model[i], "get obj {i} id {id}");
            }
            3..=4 => {
                let r = t.get_or_alloc(o, id, 8, gfp, Mode::Alloc, |d| {
                    write_u64(d, tag);
                    Ok(())
                });
                match (model[i], r) {
                    (None, Ok(p)) => {
                        assert_eq!(read_u64(p), tag);
                        model[i] = Some(tag);
                    }
                    (Some(_), Err(AllocError::Duplicate)) => {}
                    (m, r) => panic!("alloc obj {i} id {id}: model {m:?}, got {r:?}"),
                }
            }
            5..=6 => {
                let p = t
                    .get_or_alloc(o, id, 8, gfp, Mode::GetOrAlloc, |d| {
                        write_u64(d, tag);
                        Ok(())
                    })
                    .unwrap();
                let v = *model[i].get_or_insert(tag);
                assert_eq!(read_u64(p), v);
            }
            7..=8 => {
                let how = if rng.below(2) == 0 {
                    Retire::DtorNow(Some(Dtor(count_dtor)))
                } else {
                    Retire::DtorAfterGp(Some(Dtor(count_dtor)))
                };
                let found = t.free(o, id, how).unwrap();
                assert_eq!(found, model[i].take().is_some());
                dtors += usize::from(found);
            }
            _ => {
                if rng.below(50) == 0 {
                    let n = t
                        .free_all(id, Retire::DtorNow(Some(Dtor(count_dtor))))
                        .unwrap();
                    assert_eq!(n, model.iter().filter(|m| m.is_some()).count());
                    model.iter_mut().for_each(|m| *m = None);
                    dtors += n;
                }
            }
        }
    }
    let n = t
        .free_all(id, Retire::DtorAfterGp(Some(Dtor(count_dtor))))
        .unwrap();
    assert_eq!(n, model.iter().filter(|m| m.is_some()).count());
    dtors + n
}

#[test]
fn concurrent_writers_readers_resizes_and_grace_periods() {
    let _serial = serial();
    let live = live_allocations();
    DTOR_CALLS.store(0, Ordering::SeqCst);
    let t = Arc::new(Table::new());
    t.init(1, GFP_KERNEL).unwrap();
    let stop = Arc::new(AtomicBool::new(false));

    let maintenance = {
        let (t, stop) = (t.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                t.settle_all(GFP_KERNEL);
                t.env().barrier();
                std::thread::yield_now();
            }
        })
    };
    let reader = {
        let (t, stop) = (t.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut hits = 0usize;
            while !stop.load(Ordering::SeqCst) {
                for i in 0..OBJS {
                    for id in 1..=WRITERS {
                        hits += usize::from(t.get(obj(i), id, &t.env().read_lock()).is_some());
                    }
                }
            }
            hits
        })
    };
    let writers: Vec<_> = (1..=WRITERS)
        .map(|id| {
            let t = t.clone();
            std::thread::spawn(move || writer(&t, id, 0x9e37_79b9 * id as u64))
        })
        .collect();
    let dtors: usize = writers.into_iter().map(|w| w.join().unwrap()).sum();
    stop.store(true, Ordering::SeqCst);
    maintenance.join().unwrap();
    assert!(reader.join().unwrap() > 0);

    assert_eq!(t.len(), 0);
    t.env().barrier();
    assert_eq!(
        DTOR_CALLS.load(Ordering::SeqCst),
        dtors,
        "every dtor exactly once"
    );
    let st = t.stats();
    assert!(st.sum.grows > 0 && st.sum.shrinks > 0, "{st:?}");
    drop(t);
    assert_eq!(live_allocations(), live);
}

/// Lookups of variables that exist throughout never miss while their shard is resized over and
/// over (entries never move: a lookup reads one array, old or new), and never find variables
/// that do not exist.
#[test]
fn lookups_never_miss_during_resizes() {
    let _serial = serial();
    let live = live_allocations();
    let t = Arc::new(Table::new());
    t.init(1, GFP_KERNEL).unwrap();
    // Everything in one shard: the stable keys (id 1) and the churn (id 2).
    let stable = super::same_shard_objs(1, 64);
    let shard = crate::table::hash(stable[0], 1) >> 58;
    let churn: Vec<_> = (0..)
        .map(obj)
        .filter(|&o| crate::table::hash(o, 2) >> 58 == shard)
        .take(3000)
        .collect();
    for &o in &stable {
        t.get_or_alloc(o, 1, 8, GFP_KERNEL, Mode::Alloc, |_| Ok(()))
            .unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (t, stop, stable) = (t.clone(), stop.clone(), stable.clone());
            std::thread::spawn(move || {
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let g = t.env().read_lock();
                    for &o in &stable {
                        assert!(
                            t.get(o, 1, &g).is_some(),
                            "reader {r} missed a live variable"
                        );
                        assert!(t.get(o, 3, &g).is_none());
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();
    for _ in 0..30 {
        for &o in &churn {
            t.get_or_alloc(o, 2, 0, GFP_KERNEL, Mode::Alloc, |_| Ok(()))
                .unwrap();
        }
        t.free_all(2, Retire::DtorNow(None)).unwrap();
        t.env().barrier();
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    let st = t.stats();
    assert!(st.sum.grows >= 30 && st.sum.shrinks >= 30, "{st:?}");
    eprintln!("resize hammer: {st:?}");
    drop(t);
    assert_eq!(live_allocations(), live);
}

// SPDX-License-Identifier: GPL-2.0

//! Unit tests: each `klp_shadow_*` rule and each edge case, one at a time.

use super::{obj, read_u64, same_shard_objs, write_u64, Fixture};
use crate::platform::{Dtor, Gfp, GFP_ATOMIC, GFP_KERNEL};
use crate::shard;
use crate::shard::{wanted_lines, GROW_LOAD, MAX_LINES, SLOTS};
use crate::table::{
    check_type, hash, AllocError, FreeError, Mode, Refusal, Retire, Table, TypeError, TypeInfo,
    DATA_ALIGN, MIN_LINES,
};
use core::ptr::NonNull;
use std::cell::{Cell, RefCell};

thread_local! {
    static DTORS: RefCell<Vec<(usize, usize)>> = const { RefCell::new(Vec::new()) };
}

fn record(obj: usize, data: NonNull<u8>) {
    DTORS.with(|d| d.borrow_mut().push((obj, data.as_ptr() as usize)));
}

fn dtor_calls() -> Vec<(usize, usize)> {
    DTORS.with(|d| std::mem::take(&mut *d.borrow_mut()))
}

const REC: Option<Dtor> = Some(Dtor(record));

fn no_ctor(_: NonNull<u8>) -> Result<(), i32> {
    Ok(())
}

#[test]
fn get_of_empty_table_is_none() {
    let f = Fixture::new(16);
    assert!(f
        .table
        .get(obj(1), 0x1234, &f.table.env().read_lock())
        .is_none());
    f.finish();
}

#[test]
fn alloc_get_free() {
    let f = Fixture::new(16);
    let t = &f.table;
    let p = t
        .get_or_alloc(obj(1), 7, 8, GFP_KERNEL, Mode::Alloc, no_ctor)
        .unwrap();
    assert_eq!(read_u64(p), 0, "data is zeroed");
    write_u64(p, 42);
    assert_eq!(t.get(obj(1), 7, &t.env().read_lock()), Some(p));
    assert_eq!(t.get(obj(1), 8, &t.env().read_lock()), None, "other id");
    assert_eq!(t.get(obj(2), 7, &t.env().read_lock()), None, "other object");
    assert_eq!(t.count_id(7), (1, 8));
    assert!(t.free(obj(1), 7, Retire::DtorNow(REC)).unwrap());
    assert_eq!(
        dtor_calls(),
        vec![(obj(1), p.as_ptr() as usize)],
        "dtor(obj, data), at once"
    );
    assert_eq!(t.get(obj(1), 7, &t.env().read_lock()), None);
    assert_eq!(t.len(), 0);
    f.finish();
}

#[test]
fn data_is_aligned_and_zeroed_for_every_size() {
    let f = Fixture::new(16);
    let t = &f.table;
    for size in 0..=300 {
        let p = t
            .get_or_alloc(obj(size), 1, size, GFP_KERNEL, Mode::Alloc, no_ctor)
            .unwrap();
        assert_eq!(p.as_ptr() as usize % DATA_ALIGN, 0, "size {size}");
        // SAFETY: `size` bytes of data.
        let data = unsafe { std::slice::from_raw_parts(p.as_ptr(), size) };
        assert!(data.iter().all(|&b| b == 0), "size {size} zeroed");
        // SAFETY: as above; writing every byte finds overflows into the next allocation's prefix
        // (checked by the allocator's bookkeeping when freed).
        unsafe { p.as_ptr().write_bytes(0xa5, size) };
    }
    assert_eq!(t.count_id(1), (301, 300 * 301 / 2));
    assert_eq!(t.free_all(1, Retire::DtorNow(None)).unwrap(), 301);
    f.finish();
}

#[test]
fn size_zero_is_a_unique_non_null_flag() {
    let f = Fixture::new(16);
    let t = &f.table;
    let ptrs: Vec<_> = (0..100)
        .map(|i| {
            t.get_or_alloc(obj(i), 3, 0, GFP_KERNEL, Mode::Alloc, no_ctor)
                .unwrap()
        })
        .collect();
    let mut sorted: Vec<_> = ptrs.iter().map(|p| p.as_ptr() as usize).collect();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 100, "unique");
    for (i, p) in ptrs.iter().enumerate() {
        assert_eq!(t.get(obj(i), 3, &t.env().read_lock()), Some(*p));
    }
    assert_eq!(t.count_id(3), (100, 0));
    f.finish();
}

#[test]
fn too_large_is_refused_without_side_effects() {
    let f = Fixture::new(16);
    let t = &f.table;
    let max = shard::max_size();
    for size in [max + 1, usize::MAX, usize::MAX - 40] {
        let r = t.get_or_alloc(obj(1), 1, size, GFP_KERNEL, Mode::GetOrAlloc, |_| {
            panic!("ctor")
        });
        assert_eq!(r, Err(AllocError::TooLarge(max)));
    }
    assert_eq!(t.len(), 0);
    // The largest size works.
    let p = t
        .get_or_alloc(obj(1), 1, max, GFP_KERNEL, Mode::Alloc, no_ctor)
        .unwrap();
    // SAFETY: `max` bytes of data.
    unsafe { p.as_ptr().add(max - 1).write(1) };
    f.finish();
}

#[test]
fn null_object_is_a_valid_key() {
    let f = Fixture::new(16);
    let t = &f.table;
    let p = t
        .get_or_alloc(0, 5, 8, GFP_KERNEL, Mode::Alloc, no_ctor)
        .unwrap();
    assert_eq!(t.get(0, 5, &t.env().read_lock()), Some(p));
    assert_eq!(t.get(0, 6, &t.env().read_lock()), None);
    assert!(t.free(0, 5, Retire::DtorNow(REC)).unwrap());
    assert_eq!(dtor_calls(), vec![(0, p.as_ptr() as usize)]);
    f.finish();
}

#[test]
fn duplicate_alloc_fails_and_keeps_the_existing_variable() {
    let f = Fixture::new(16);
    let t = &f.table;
    let p = t
        .get_or_alloc(obj(1), 9, 8, GFP_KERNEL, Mode::Alloc, no_ctor)
        .unwrap();
    write_u64(p, 0x1234);
    let r = t.get_or_alloc(obj(1), 9, 8, GFP_KERNEL, Mode::Alloc, |_| {
        panic!("ctor of a duplicate")
    });
    assert_eq!(r, Err(AllocError::Duplicate));
    assert_eq!(t.get(obj(1), 9, &t.env().read_lock()), Some(p));
    assert_eq!(read_u64(p), 0x1234);
    assert_eq!(t.len(), 1);
    f.finish();
}

#[test]
fn get_or_alloc_returns_the_existing_variable_without_ctor() {
    let f = Fixture::new(16);
    let t = &f.table;
    let mut calls = 0;
    let p = t
        .get_or_alloc(obj(1), 9, 8, GFP_KERNEL, Mode::GetOrAlloc, |d| {
            calls += 1;
            write_u64(d, 77);
            Ok(())
        })
        .unwrap();
    let q = t
        .get_or_alloc(obj(1), 9, 8, GFP_KERNEL, Mode::GetOrAlloc, |_| {
            panic!("ctor")
        })
        .unwrap();
    assert_eq!((p, calls, read_u64(q)), (q, 1, 77));
    f.finish();
}

#[test]
fn ctor_runs_once_on_zeroed_data_before_the_variable_is_visible() {
    let f = Fixture::new(16);
    let t = &f.table;
    let mut calls = 0;
    let p = t
        .get_or_alloc(obj(4), 2, 64, GFP_KERNEL, Mode::Alloc, |d| {
            calls += 1;
            // SAFETY: 64 bytes of data.
            let data = unsafe { std::slice::from_raw_parts(d.as_ptr(), 64) };
            assert!(data.iter().all(|&b| b == 0));
            assert_eq!(
                t.get(obj(4), 2, &t.env().read_lock()),
                None,
                "not visible yet"
            );
            write_u64(d, 5);
            Ok(())
        })
        .unwrap();
    assert_eq!((calls, read_u64(p)), (1, 5));
    f.finish();
}

#[test]
fn ctor_failure_inserts_nothing_and_leaks_nothing() {
    let f = Fixture::new(16);
    let t = &f.table;
    let mut calls = 0;
    let r = t.get_or_alloc(obj(1), 1, 32, GFP_KERNEL, Mode::GetOrAlloc, |_| {
        calls += 1;
        Err(-28)
    });
    assert_eq!((r, calls), (Err(AllocError::Ctor(-28)), 1));
    assert_eq!(t.get(obj(1), 1, &t.env().read_lock()), None);
    assert_eq!(t.len(), 0);
    // A later alloc of the same key works.
    t.get_or_alloc(obj(1), 1, 32, GFP_KERNEL, Mode::Alloc, no_ctor)
        .unwrap();
    f.finish();
}

#[test]
fn allocation_failure_is_nomem() {
    let f = Fixture::new(16);
    let t = &f.table;
    let gfp = Gfp {
        fail_entry: true,
        ..GFP_KERNEL
    };
    let r = t.get_or_alloc(obj(1), 1, 8, gfp, Mode::Alloc, |_| panic!("ctor"));
    assert_eq!(r, Err(AllocError::NoMem));
    assert_eq!(t.len(), 0);
    f.finish();
}

#[test]
fn free_of_a_missing_variable_is_a_no_op() {
    let f = Fixture::new(16);
    let t = &f.table;
    assert!(!t.free(obj(1), 1, Retire::DtorNow(REC)).unwrap());
    t.get_or_alloc(obj(1), 1, 8, GFP_KERNEL, Mode::Alloc, no_ctor)
        .unwrap();
    assert!(!t.free(obj(1), 2, Retire::DtorNow(REC)).unwrap());
    assert!(!t.free(obj(2), 1, Retire::DtorNow(REC)).unwrap());
    assert!(t.free(obj(1), 1, Retire::DtorNow(REC)).unwrap());
    assert!(
        !t.free(obj(1), 1, Retire::DtorNow(REC)).unwrap(),
        "second free"
    );
    assert_eq!(dtor_calls().len(), 1);
    f.finish();
}

#[test]
fn free_rcu_runs_the_dtor_after_the_grace_period() {
    let f = Fixture::new(16);
    let t = &f.table;
    let p = t
        .get_or_alloc(obj(1), 1, 8, GFP_KERNEL, Mode::Alloc, no_ctor)
        .unwrap();
    write_u64(p, 99);
    let reader = t.env().read_lock();
    assert!(t.free(obj(1), 1, Retire::DtorAfterGp(REC)).unwrap());
    assert_eq!(t.get(obj(1), 1, &reader), None, "unlinked at once");
    assert_eq!(read_u64(p), 99, "still valid for a reader");
    assert!(dtor_calls().is_empty(), "dtor deferred");
    drop(reader);
    t.env().barrier();
    assert_eq!(dtor_calls(), vec![(obj(1), p.as_ptr() as usize)]);
    f.finish();
}

#[test]
fn free_all_frees_only_that_id() {
    let f = Fixture::new(16);
    let t = &f.table;
    assert_eq!(
        t.free_all(1, Retire::DtorNow(REC)).unwrap(),
        0,
        "nothing to free"
    );
    for i in 0..50 {
        t.get_or_alloc(obj(i), 1, 8, GFP_KERNEL, Mode::Alloc, no_ctor)
            .unwrap();
        t.get_or_alloc(obj(i), 2, 16, GFP_KERNEL, Mode::Alloc, no_ctor)
            .unwrap();
    }
    assert_eq!(t.free_all(1, Retire::DtorNow(REC)).unwrap(), 50);
    assert_eq!(dtor_calls().len(), 50);
    assert_eq!(t.count_id(1), (0, 0));
    assert_eq!(t.count_id(2), (50, 800));
    assert_eq!(t.free_all(2, Retire::DtorAfterGp(REC)).unwrap(), 50);
    assert!(dtor_calls().is_empty());
    t.env().barrier();
    assert_eq!(dtor_calls().len(), 50);
    f.finish();
}

#[test]
fn grows_and_shrinks_keep_probes_short() {
    let f = Fixture::new(1);
    let t = &f.table;
    for i in 0..20_000 {
        t.get_or_alloc(obj(i), 1, 8, GFP_KERNEL, Mode::Alloc, no_ctor)
            .unwrap();
    }
    let st = t.stats();
    assert_eq!(st.sum.count, 20_000);
    assert!(st.sum.lines * GROW_LOAD >= 20_000, "load <= 4: {st:?}");
    assert!(st.sum.max_probe <= 4, "{st:?}");
    assert!(st.sum.grows > 0);
    for i in 0..20_000 {
        assert!(t.get(obj(i), 1, &t.env().read_lock()).is_some());
    }
    // free_all where the caller may sleep shrinks every shard before it returns.
    assert_eq!(t.free_all(1, Retire::DtorNow(None)).unwrap(), 20_000);
    let st = t.stats();
    assert_eq!((st.sum.count, st.sum.lines), (0, 64), "{st:?}");
    assert_eq!(st.sum.migrating, 0, "{st:?}");
    assert!(st.sum.shrinks > 0);
    t.env().barrier();
    f.finish();
}

#[test]
fn atomic_frees_leave_the_shrink_to_the_next_writer() {
    let f = Fixture::new(1);
    let t = &f.table;
    let objs = same_shard_objs(1, 200);
    for &o in &objs {
        t.get_or_alloc(o, 1, 8, GFP_KERNEL, Mode::Alloc, no_ctor)
            .unwrap();
    }
    let grown = t.stats().max_lines;
    assert!(grown >= 32, "{grown}");
    crate::platform::set_may_sleep(false);
    for &o in &objs[1..] {
        t.free(o, 1, Retire::DtorNow(None)).unwrap();
    }
    crate::platform::set_may_sleep(true);
    assert_eq!(
        t.stats().max_lines,
        grown,
        "no allocation from an atomic free"
    );
    // The next insert allocates the smaller array; writers then migrate it.
    t.get_or_alloc(obj(1_000_000), 1, 8, GFP_ATOMIC, Mode::Alloc, no_ctor)
        .unwrap();
    t.settle_all(GFP_KERNEL);
    assert_eq!(t.stats().max_lines, 1);
    assert!(t.get(objs[0], 1, &t.env().read_lock()).is_some());
    f.finish();
}

#[test]
fn atomic_inserts_grow_the_table_themselves() {
    let f = Fixture::new(1);
    let t = &f.table;
    let objs = same_shard_objs(1, 5000);
    for &o in &objs {
        t.get_or_alloc(o, 1, 8, GFP_ATOMIC, Mode::Alloc, no_ctor)
            .unwrap();
    }
    let st = t.stats();
    assert!(st.max_lines >= 1024, "{st:?}");
    for &o in &objs {
        assert!(t.get(o, 1, &t.env().read_lock()).is_some());
    }
    f.finish();
}

#[test]
fn failed_array_allocation_fills_then_fails_cleanly() {
    let f = Fixture::new(1);
    let t = &f.table;
    let gfp = Gfp {
        fail_table: true,
        ..GFP_KERNEL
    };
    let objs = same_shard_objs(1, 100);
    // One line of SLOTS: full after SLOTS variables, which cannot grow it.
    for &o in &objs[..SLOTS] {
        t.get_or_alloc(o, 1, 8, gfp, Mode::Alloc, no_ctor).unwrap();
    }
    assert_eq!(t.stats().max_lines, 1, "could not grow");
    let ctor_ran = core::cell::Cell::new(false);
    let r = t.get_or_alloc(objs[SLOTS], 1, 8, gfp, Mode::Alloc, |_| {
        ctor_ran.set(true);
        Ok(())
    });
    assert_eq!(r, Err(AllocError::NoMem));
    assert!(
        !ctor_ran.get(),
        "no constructor for a variable that is not inserted"
    );
    // The next insert that can allocate grows the shard.
    for &o in &objs[SLOTS..] {
        t.get_or_alloc(o, 1, 8, GFP_KERNEL, Mode::Alloc, no_ctor)
            .unwrap();
    }
    t.settle_all(GFP_KERNEL);
    assert!(t.stats().max_lines >= 32);
    for &o in &objs {
        assert!(t.get(o, 1, &t.env().read_lock()).is_some());
    }
    f.finish();
}

#[test]
fn writers_refused_under_a_shard_lock_and_in_nmi() {
    let f = Fixture::new(1);
    let t = &f.table;
    // A constructor that allocates another variable, and one that frees one.
    let inner = t.get_or_alloc(obj(1), 1, 8, GFP_KERNEL, Mode::Alloc, |_| {
        let r = t.get_or_alloc(obj(2), 1, 8, GFP_ATOMIC, Mode::Alloc, no_ctor);
        assert_eq!(r, Err(AllocError::Context(Refusal::Nested)));
        assert_eq!(
            t.free(obj(3), 1, Retire::DtorNow(None)),
            Err(Refusal::Nested)
        );
        assert_eq!(t.free_all(1, Retire::DtorNow(None)), Err(Refusal::Nested));
        // Lookups are fine.
        assert!(t.get(obj(2), 1, &t.env().read_lock()).is_none());
        Ok(())
    });
    assert!(inner.is_ok(), "the outer call completes");
    assert!(t.get(obj(2), 1, &t.env().read_lock()).is_none());
    crate::platform::set_in_nmi(true);
    let r = t.get_or_alloc(obj(4), 1, 8, GFP_ATOMIC, Mode::Alloc, no_ctor);
    assert_eq!(r, Err(AllocError::Context(Refusal::Nmi)));
    assert_eq!(t.free(obj(1), 1, Retire::DtorNow(None)), Err(Refusal::Nmi));
    assert!(
        t.get(obj(1), 1, &t.env().read_lock()).is_some(),
        "NMI lookups work"
    );
    crate::platform::set_in_nmi(false);
    assert_eq!(t.free(obj(1), 1, Retire::DtorNow(None)), Ok(true));
    f.finish();
}

#[test]
fn free_all_frees_every_variable_allocated_before_it() {
    let f = Fixture::new(1);
    let t = &f.table;
    for i in 0..3000 {
        t.get_or_alloc(obj(i), 9, 8, GFP_KERNEL, Mode::Alloc, no_ctor)
            .unwrap();
        t.get_or_alloc(obj(i), 10, 8, GFP_KERNEL, Mode::Alloc, no_ctor)
            .unwrap();
    }
    // In atomic context too: swept a few lines per lock hold, whatever resizes run.
    crate::platform::set_may_sleep(false);
    assert_eq!(t.free_all(9, Retire::DtorNow(None)).unwrap(), 3000);
    crate::platform::set_may_sleep(true);
    assert_eq!(t.count_id(9).0, 0);
    assert_eq!(t.count_id(10).0, 3000);
    f.finish();
}

#[test]
fn teardown_reports_and_frees_leftovers() {
    let f = Fixture::new(16);
    let t = &f.table;
    for i in 0..10 {
        t.get_or_alloc(obj(i), 0x55, 24, GFP_KERNEL, Mode::Alloc, no_ctor)
            .unwrap();
    }
    let mut seen = Vec::new();
    t.teardown(|o, id, size| seen.push((o, id, size)));
    seen.sort();
    assert_eq!(
        seen,
        (0..10).map(|i| (obj(i), 0x55, 24)).collect::<Vec<_>>()
    );
    assert_eq!(t.len(), 0);
    assert!(
        t.get(obj(1), 0x55, &t.env().read_lock()).is_none(),
        "no buckets: miss"
    );
    f.finish();
}

#[test]
fn hash_spreads_aligned_pointers_over_shards_and_buckets() {
    let f = Fixture::new(16);
    let t = &f.table;
    let n = 200_000;
    for i in 0..n {
        t.get_or_alloc(obj(i), (i % 4) + 1, 0, GFP_KERNEL, Mode::Alloc, no_ctor)
            .unwrap();
    }
    let st = t.stats();
    // About 2-4 variables per line of 6: lines rarely overflow, never far.
    assert!(st.sum.max_probe <= 4, "{st:?}");
    // All shards grew alike.
    assert_eq!(st.min_lines, st.max_lines, "{st:?}");
    let mut per_shard = [0usize; 64];
    for i in 0..n {
        per_shard[(hash(obj(i), (i % 4) + 1) >> 58) as usize] += 1;
    }
    let mean = n / 64;
    assert!(
        per_shard.iter().all(|&c| c.abs_diff(mean) < mean / 10),
        "{per_shard:?}"
    );
    f.finish();
}

#[test]
fn resize_policy() {
    assert_eq!(wanted_lines(5, 1, 1), Some(2));
    assert_eq!(wanted_lines(4, 1, 1), None);
    assert_eq!(wanted_lines(1000, 16, 1), Some(512));
    assert_eq!(wanted_lines(0, 1024, 1), Some(1));
    assert_eq!(wanted_lines(511, 1024, 1), Some(256));
    assert_eq!(wanted_lines(512, 1024, 1), None);
    assert_eq!(wanted_lines(0, 16, 16), None);
    assert_eq!(wanted_lines(usize::MAX, MAX_LINES, 1), None, "capped");
}

#[test]
fn type_registration_rules() {
    let a = TypeInfo {
        name: b"a::Foo",
        size: 8,
        align: 8,
        layout: 1,
    };
    let b = TypeInfo {
        name: b"b::Bar",
        size: 8,
        align: 8,
        layout: 2,
    };
    let a2 = TypeInfo {
        name: b"a::Foo",
        size: 16,
        align: 8,
        layout: 1,
    };
    assert_eq!(check_type(None, &a), Ok(()));
    assert_eq!(check_type(Some(&a), &a), Ok(()));
    assert_eq!(check_type(Some(&a), &b), Err(TypeError::Conflict));
    assert_eq!(check_type(Some(&a), &a2), Err(TypeError::Conflict));
    // The declared layout, not the name, tells types apart.
    let renamed = TypeInfo {
        name: b"c::Foo",
        ..a
    };
    assert_eq!(check_type(Some(&a), &renamed), Ok(()));
    let relaid = TypeInfo { layout: 9, ..a };
    assert_eq!(check_type(Some(&a), &relaid), Err(TypeError::Conflict));
    let over = TypeInfo {
        name: b"x",
        size: 32,
        align: 32,
        layout: 3,
    };
    assert_eq!(check_type(None, &over), Err(TypeError::BadAlign));
    let odd = TypeInfo {
        name: b"x",
        size: 3,
        align: 3,
        layout: 4,
    };
    assert_eq!(check_type(None, &odd), Err(TypeError::BadAlign));
    let zst = TypeInfo {
        name: b"()",
        size: 0,
        align: 1,
        layout: 5,
    };
    assert_eq!(check_type(None, &zst), Ok(()));
}

/// `get_or_alloc_if` inserts nothing, and `free_if`/`free_all_if` remove nothing, once the
/// admission check fails; while it holds they behave as the unconditional calls.
#[test]
fn admission_checks() {
    // Its table's allocations count in the process-wide total that other tests check.
    let _serial = super::serial();
    let t = Table::new();
    t.init(MIN_LINES, GFP_KERNEL).unwrap();
    let open = Cell::new(true);
    let admit = || open.get();
    let r = t.get_or_alloc_if(0x1000, 7, 8, GFP_KERNEL, Mode::Alloc, admit, |_| Ok(()));
    assert!(r.is_ok());
    open.set(false);
    let r = t.get_or_alloc_if(0x2000, 7, 8, GFP_KERNEL, Mode::Alloc, admit, |_| Ok(()));
    assert_eq!(r, Err(AllocError::Refused));
    let r = t.get_or_alloc_if(
        0x1000,
        7,
        8,
        GFP_KERNEL,
        Mode::GetOrAlloc,
        admit,
        |_| Ok(()),
    );
    assert_eq!(
        r,
        Err(AllocError::Refused),
        "an existing variable is not returned either"
    );
    let retire = || open.get().then_some(Retire::DtorAfterGp(None));
    assert_eq!(t.free_if(0x1000, 7, retire), Err(FreeError::Refused));
    assert_eq!(t.free_all_if(7, retire), Err(FreeError::Refused));
    assert_eq!(t.count_id(7).0, 1);
    open.set(true);
    assert_eq!(t.free_all_if(7, retire), Ok(1));
    assert_eq!(t.count_id(7).0, 0);
}

// SPDX-License-Identifier: GPL-2.0

//! Model-based property test: random sequences of every table operation, checked after each
//! step against a `BTreeMap` model of what `kernel/livepatch/shadow.c` would hold.
//!
//! Small key domains make duplicates, misses and ctor races on the same key common; a table
//! initialised with one bucket per shard makes resizes (synchronous, deferred, and refused by a
//! failing allocator) happen all the time.

use super::{live_allocations, obj, read_u64, serial, write_u64};
use crate::platform::{Dtor, Gfp, GFP_ATOMIC, GFP_KERNEL};
use crate::table::{AllocError, Mode, Retire, Table, DATA_ALIGN};
use core::ptr::NonNull;
use proptest::prelude::*;
use std::cell::RefCell;
use std::collections::BTreeMap;

thread_local! {
    static DTORS: RefCell<Vec<(usize, usize)>> = const { RefCell::new(Vec::new()) };
}

fn record(obj: usize, data: NonNull<u8>) {
    DTORS.with(|d| d.borrow_mut().push((obj, data.as_ptr() as usize)));
}

fn take_dtors() -> Vec<(usize, usize)> {
    let mut v = DTORS.with(|d| std::mem::take(&mut *d.borrow_mut()));
    v.sort();
    v
}

#[derive(Clone, Copy, Debug)]
enum GfpKind {
    Kernel,
    Atomic,
    FailEntry,
    FailTable,
}

impl GfpKind {
    fn gfp(self) -> Gfp {
        match self {
            GfpKind::Kernel => GFP_KERNEL,
            GfpKind::Atomic => GFP_ATOMIC,
            GfpKind::FailEntry => Gfp {
                fail_entry: true,
                ..GFP_KERNEL
            },
            GfpKind::FailTable => Gfp {
                fail_table: true,
                ..GFP_ATOMIC
            },
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Get(usize, usize),
    Alloc {
        o: usize,
        id: usize,
        size: usize,
        gfp: GfpKind,
        ctor_err: bool,
        get_or: bool,
    },
    Free {
        o: usize,
        id: usize,
        dtor: bool,
        rcu: bool,
    },
    FreeAll {
        id: usize,
        dtor: bool,
        rcu: bool,
    },
    Worker,
    Barrier,
}

const OBJS: usize = 24;
const IDS: usize = 3;

fn key_obj(o: usize) -> usize {
    // Object 0 is the NULL pointer, a valid key.
    if o == 0 {
        0
    } else {
        obj(o)
    }
}

fn op() -> impl Strategy<Value = Op> {
    let o = 0..OBJS;
    let id = 0..IDS;
    let gfp = prop_oneof![
        6 => Just(GfpKind::Kernel),
        3 => Just(GfpKind::Atomic),
        1 => Just(GfpKind::FailEntry),
        1 => Just(GfpKind::FailTable),
    ];
    let size = prop_oneof![Just(0usize), Just(1), Just(8), Just(24), Just(100)];
    prop_oneof![
        3 => (o.clone(), id.clone()).prop_map(|(o, id)| Op::Get(o, id)),
        8 => (o.clone(), id.clone(), size, gfp, proptest::bool::weighted(0.1), any::<bool>())
            .prop_map(|(o, id, size, gfp, ctor_err, get_or)| Op::Alloc { o, id, size, gfp, ctor_err, get_or }),
        4 => (o, id.clone(), any::<bool>(), any::<bool>())
            .prop_map(|(o, id, dtor, rcu)| Op::Free { o, id, dtor, rcu }),
        1 => (id, any::<bool>(), any::<bool>()).prop_map(|(id, dtor, rcu)| Op::FreeAll { id, dtor, rcu }),
        1 => Just(Op::Worker),
        1 => Just(Op::Barrier),
    ]
}

/// One live variable of the model.
#[derive(Clone, Copy, Debug)]
struct Var {
    data: usize,
    size: usize,
    tag: u64,
}

struct Model {
    vars: BTreeMap<(usize, usize), Var>,
    /// Destructors that must have run by now (sorted at comparison).
    dtors_now: Vec<(usize, usize)>,
    /// Destructors that run at the next barrier.
    dtors_after_gp: Vec<(usize, usize)>,
    next_tag: u64,
}

fn retire(dtor: bool, rcu: bool) -> Retire {
    let d = dtor.then_some(Dtor(record));
    if rcu {
        Retire::DtorAfterGp(d)
    } else {
        Retire::DtorNow(d)
    }
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let table = Box::new(Table::new());
    table.init(1, GFP_KERNEL).unwrap();
    let t = &*table;
    let mut m = Model {
        vars: BTreeMap::new(),
        dtors_now: vec![],
        dtors_after_gp: vec![],
        next_tag: 1,
    };
    take_dtors();

    for op in ops {
        match *op {
            Op::Get(o, id) => {
                let got = t
                    .get(key_obj(o), id, &t.env().read_lock())
                    .map(|p| p.as_ptr() as usize);
                prop_assert_eq!(
                    got,
                    m.vars.get(&(key_obj(o), id)).map(|v| v.data),
                    "{:?}",
                    op
                );
            }
            Op::Alloc {
                o,
                id,
                size,
                gfp,
                ctor_err,
                get_or,
            } => {
                let key = (key_obj(o), id);
                let mode = if get_or {
                    Mode::GetOrAlloc
                } else {
                    Mode::Alloc
                };
                let tag = m.next_tag;
                m.next_tag += 1;
                let mut ctor_calls = 0;
                let r = t.get_or_alloc(key.0, id, size, gfp.gfp(), mode, |d| {
                    ctor_calls += 1;
                    // Zeroed, aligned, and not visible yet.
                    // SAFETY: `size` bytes of data.
                    let bytes = unsafe { std::slice::from_raw_parts(d.as_ptr(), size) };
                    assert!(bytes.iter().all(|&b| b == 0));
                    assert_eq!(d.as_ptr() as usize % DATA_ALIGN, 0);
                    assert!(t.get(key.0, id, &t.env().read_lock()).is_none());
                    if ctor_err {
                        return Err(-22);
                    }
                    if size >= 8 {
                        write_u64(d, tag);
                    }
                    Ok(())
                });
                match (m.vars.get(&key).copied(), r) {
                    (Some(v), Ok(p)) => {
                        prop_assert!(get_or, "alloc of an existing variable succeeded");
                        prop_assert_eq!(p.as_ptr() as usize, v.data);
                        prop_assert_eq!(ctor_calls, 0);
                    }
                    (Some(_), Err(e)) => {
                        prop_assert!(!get_or && e == AllocError::Duplicate, "{:?}", e);
                        prop_assert_eq!(ctor_calls, 0);
                    }
                    (None, Ok(p)) => {
                        prop_assert!(!ctor_err && !matches!(gfp, GfpKind::FailEntry));
                        prop_assert_eq!(ctor_calls, 1);
                        m.vars.insert(
                            key,
                            Var {
                                data: p.as_ptr() as usize,
                                size,
                                tag,
                            },
                        );
                    }
                    (None, Err(AllocError::NoMem)) => {
                        prop_assert!(matches!(gfp, GfpKind::FailEntry));
                        prop_assert_eq!(ctor_calls, 0);
                    }
                    (None, Err(AllocError::Ctor(e))) => {
                        prop_assert!(ctor_err && e == -22);
                        prop_assert_eq!(ctor_calls, 1);
                    }
                    (None, Err(e)) => prop_assert!(false, "unexpected {:?}", e),
                }
            }
            Op::Free { o, id, dtor, rcu } => {
                let key = (key_obj(o), id);
                let found = t.free(key.0, id, retire(dtor, rcu)).unwrap();
                let v = m.vars.remove(&key);
                prop_assert_eq!(found, v.is_some());
                if let (Some(v), true) = (v, dtor) {
                    if rcu {
                        m.dtors_after_gp.push((key.0, v.data))
                    } else {
                        m.dtors_now.push((key.0, v.data))
                    }
                }
            }
            Op::FreeAll { id, dtor, rcu } => {
                let n = t.free_all(id, retire(dtor, rcu)).unwrap();
                let gone: Vec<_> = m.vars.keys().filter(|k| k.1 == id).copied().collect();
                prop_assert_eq!(n, gone.len());
                for k in gone {
                    let v = m.vars.remove(&k).unwrap();
                    if dtor {
                        if rcu {
                            m.dtors_after_gp.push((k.0, v.data))
                        } else {
                            m.dtors_now.push((k.0, v.data))
                        }
                    }
                }
            }
            Op::Worker => t.settle_all(GFP_KERNEL),
            Op::Barrier => {
                t.env().barrier();
                m.dtors_now.append(&mut m.dtors_after_gp);
            }
        }

        // After every step: destructors, contents and counts agree with the model.
        m.dtors_now.sort();
        prop_assert_eq!(
            take_dtors(),
            std::mem::take(&mut m.dtors_now),
            "dtors after {:?}",
            op
        );
        prop_assert_eq!(t.len(), m.vars.len());
        for (&(o, id), v) in &m.vars {
            let got = t
                .get(o, id, &t.env().read_lock())
                .map(|p| p.as_ptr() as usize);
            prop_assert_eq!(got, Some(v.data));
            if v.size >= 8 {
                prop_assert_eq!(read_u64(NonNull::new(v.data as *mut u8).unwrap()), v.tag);
            }
        }
        for id in 0..IDS {
            let want = m
                .vars
                .iter()
                .filter(|(k, _)| k.1 == id)
                .fold((0, 0), |a, (_, v)| (a.0 + 1, a.1 + v.size));
            prop_assert_eq!(t.count_id(id), want);
        }
        let st = t.stats();
        prop_assert_eq!(st.sum.count, m.vars.len());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn table_behaves_like_the_model(ops in proptest::collection::vec(op(), 1..300)) {
        let _serial = serial();
        let live = live_allocations();
        let r = run(&ops);
        // The table (dropped in `run`) freed everything, whatever the ops did.
        prop_assert_eq!(live_allocations(), live);
        r?;
    }
}

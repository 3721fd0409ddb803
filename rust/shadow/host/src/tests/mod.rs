// SPDX-License-Identifier: GPL-2.0

//! Host tests of the table logic. Run with `cargo test`; the loom tests with
//! `RUSTFLAGS="--cfg loom" cargo test --release loom` (see `scripts/host-test`).

#[cfg(not(loom))]
mod model;
#[cfg(not(loom))]
mod stress;
#[cfg(not(loom))]
mod unit;

#[cfg(loom)]
mod loom_models;

use crate::platform::live_allocations;
use crate::table::{hash, Table, NR_SHARDS, SHARD_BITS};
use core::ptr::NonNull;
use std::sync::{Mutex, MutexGuard};

/// Tests count live allocations process-wide, so they run one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A test fixture: an initialised table and the allocation count to come back to.
struct Fixture {
    table: Box<Table>,
    live_before: usize,
    _serial: MutexGuard<'static, ()>,
}

impl Fixture {
    fn new(min: usize) -> Self {
        let serial = serial();
        let live_before = live_allocations();
        let table = Box::new(Table::new());
        table.init(min, crate::platform::GFP_KERNEL).unwrap();
        Self {
            table,
            live_before,
            _serial: serial,
        }
    }

    /// Tears the table down and checks that nothing leaked.
    fn finish(self) {
        let Fixture {
            table,
            live_before,
            _serial,
        } = self;
        drop(table);
        assert_eq!(live_allocations(), live_before, "leaked allocations");
    }
}

/// An object address like a kmalloc'd one: aligned, in a kernel-looking range.
fn obj(i: usize) -> usize {
    0xffff_8880_0000_0000_u64 as usize + i * 64
}

/// `n` objects whose `<obj, id>` land in the same shard.
fn same_shard_objs(id: usize, n: usize) -> Vec<usize> {
    let want = (hash(obj(0), id) >> (64 - SHARD_BITS)) as usize;
    (0..)
        .map(obj)
        .filter(|&o| (hash(o, id) >> (64 - SHARD_BITS)) as usize == want)
        .take(n)
        .collect()
}

fn read_u64(p: NonNull<u8>) -> u64 {
    // SAFETY: tests only read variables of at least 8 bytes that they own.
    unsafe { p.cast::<u64>().as_ptr().read() }
}

fn write_u64(p: NonNull<u8>, v: u64) {
    // SAFETY: as in `read_u64`.
    unsafe { p.cast::<u64>().as_ptr().write(v) }
}

const _: () = assert!(NR_SHARDS == 64 || cfg!(loom));

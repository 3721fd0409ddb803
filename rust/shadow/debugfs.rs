// SPDX-License-Identifier: GPL-2.0

//! `/sys/kernel/debug/rust_klp_shadow/`: the `ids` and `stats` files.
//!
//! C header: [include/linux/seq_file.h](srctree/include/linux/seq_file.h)
//!
//! The files and their `seq_file` plumbing are in `shadow_glue.c`; their show callbacks are here.
//! Neither takes a shard lock for longer than it takes to copy a shard's counters: the variables
//! are walked under RCU only.

use crate::glue;
use crate::table;
use crate::TABLE;
use kernel::alloc::flags::{GFP_ATOMIC, GFP_KERNEL};
use kernel::alloc::KVec;
use kernel::bindings::seq_file;
use kernel::c_str;
use kernel::ffi::c_int;
use kernel::prelude::*;
use kernel::str::CStr;

/// Live variables and bytes of one id.
pub(crate) struct IdCount {
    pub(crate) id: usize,
    pub(crate) count: usize,
    pub(crate) bytes: usize,
}

/// Per-id counts, sorted by id; filled in atomic context (under RCU, or the shard locks).
pub(crate) struct IdCounts {
    pub(crate) ids: KVec<IdCount>,
    pub(crate) total: IdCount,
    /// An id could not be recorded (no memory).
    pub(crate) incomplete: bool,
}

impl IdCounts {
    pub(crate) fn new() -> Self {
        Self {
            ids: KVec::with_capacity(16, GFP_KERNEL).unwrap_or_default(),
            total: IdCount {
                id: 0,
                count: 0,
                bytes: 0,
            },
            incomplete: false,
        }
    }

    pub(crate) fn add(&mut self, id: usize, size: usize) {
        self.total.count += 1;
        self.total.bytes += size;
        match self.ids.binary_search_by_key(&id, |c| c.id) {
            Ok(i) => {
                self.ids[i].count += 1;
                self.ids[i].bytes += size;
            }
            Err(i) => {
                let new = IdCount {
                    id,
                    count: 1,
                    bytes: size,
                };
                if self.ids.push(new, GFP_ATOMIC).is_ok() {
                    self.ids[i..].rotate_right(1);
                } else {
                    self.incomplete = true;
                }
            }
        }
    }
}

/// Shows `/sys/kernel/debug/rust_klp_shadow/ids`.
///
/// # Safety
///
/// `m` is the `seq_file` of a show callback (process context).
#[no_mangle]
pub(crate) unsafe extern "C" fn rks_show_ids(m: *mut seq_file) -> c_int {
    let mut counts = IdCounts::new();
    TABLE.visit(|_, id, size| counts.add(id, size));
    if counts.incomplete {
        return ENOMEM.to_errno();
    }
    crate::types::with_bound_names(|name_of| {
        for c in counts.ids.iter() {
            // SAFETY: `m` is valid (contract); the name is NULL or a C string that stays valid
            // while the registry mutex is held.
            unsafe { glue::rks_seq_id(m, c.id, c.count, c.bytes, name_of(c.id)) };
        }
    });
    // SAFETY: `m` is valid (contract).
    unsafe { glue::rks_seq_total(m, counts.total.count, counts.total.bytes) };
    0
}

/// Shows `/sys/kernel/debug/rust_klp_shadow/stats`.
///
/// # Safety
///
/// `m` is the `seq_file` of a show callback (process context).
#[no_mangle]
pub(crate) unsafe extern "C" fn rks_show_stats(m: *mut seq_file) -> c_int {
    let st = TABLE.stats();
    let lines: [(&CStr, usize); 15] = [
        (c_str!("shards"), table::NR_SHARDS),
        (c_str!("count"), st.sum.count),
        (c_str!("bytes"), st.sum.bytes),
        (c_str!("lines"), st.sum.lines),
        (c_str!("slots_per_line"), crate::shard::SLOTS),
        (c_str!("shard_lines_min"), st.min_lines),
        (c_str!("shard_lines_max"), st.max_lines),
        (c_str!("array_bytes"), st.sum.array_bytes),
        (c_str!("max_probe"), st.sum.max_probe),
        (c_str!("grows"), st.sum.grows),
        (c_str!("shrinks"), st.sum.shrinks),
        (c_str!("resize_aborts"), st.sum.aborts),
        (c_str!("resizes_migrating"), st.sum.migrating),
        (c_str!("data_align"), table::DATA_ALIGN),
        (c_str!("max_size"), crate::shard::max_size()),
    ];
    for (name, value) in lines {
        // SAFETY: `m` is valid (contract), `name` a C string.
        unsafe { glue::rks_seq_stat(m, name.as_char_ptr(), value) };
    }
    0
}

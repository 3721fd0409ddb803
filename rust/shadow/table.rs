// SPDX-License-Identifier: GPL-2.0

//! The shadow-variable table: `klp_shadow_*()` semantics over independently locked shards.
//!
//! C header: [include/linux/livepatch.h](srctree/include/linux/livepatch.h); the kernel's own
//! table is `kernel/livepatch/shadow.c`, whose behaviour this one reproduces call for call.
//!
//! `<obj, id>` is hashed with a 64-bit mixer; the top bits pick one of [`NR_SHARDS`] shards,
//! the low bits a bucket of that shard's array. Each shard has its own lock and resizes its own
//! array (doubling when it has more variables than buckets, shrinking when under one eighth), so
//! lookups stay O(1) at any size and writers to different shards never contend.
//!
//! This file has no `unsafe` code and no kernel dependency: it is compiled both into the kernel
//! module and into the host test crate (`rust/shadow/host`), which runs it against a model and
//! under loom. The memory-level mechanism is in `shard.rs`; the kernel edge in `ffi.rs`.

#![forbid(unsafe_code)]

use crate::platform::{self, Env, Gfp, RcuGuard};
use crate::shard::{self, AllocFail, NewBuckets, NewEntry, Shard, ShardStats};
use core::ptr::NonNull;

pub(crate) use crate::shard::{Retire, DATA_ALIGN};

/// log2 of the number of shards (two shards under loom, to keep its state space small).
pub(crate) const SHARD_BITS: u32 = if cfg!(loom) { 1 } else { 6 };

/// The number of shards: each has its own lock and bucket array.
pub(crate) const NR_SHARDS: usize = 1 << SHARD_BITS;

/// The smallest bucket array of a shard (the kernel's; tests may use less).
pub(crate) const MIN_BUCKETS: usize = 16;

/// The largest bucket array of a shard (2^24 buckets: 2^30 variables at load 1).
const MAX_BUCKETS: usize = 1 << 24;

/// The largest bucket array that an insert in atomic context allocates itself (one page of
/// heads); bigger ones are left to the deferred worker.
const ATOMIC_RESIZE_MAX: usize = 512;

/// Hashes `<obj, id>` to 64 well-mixed bits.
///
/// Object pointers are aligned (their low bits are zero) and ids are small integers, so both are
/// spread over all bits: the id is multiplied by an odd constant and xored in, then two
/// xorshift-multiply rounds mix high bits into low ones and back. The top bits select the shard,
/// the low bits the bucket.
pub(crate) fn hash(obj: usize, id: usize) -> u64 {
    const K1: u64 = 0x9e37_79b9_7f4a_7c15;
    const K2: u64 = 0xd6e8_feb8_6659_fd93;
    let mut x = (obj as u64) ^ (id as u64).wrapping_mul(K1);
    x = (x ^ (x >> 32)).wrapping_mul(K2);
    x = (x ^ (x >> 32)).wrapping_mul(K2);
    x ^ (x >> 32)
}

fn shard_index(hash: u64) -> usize {
    (hash >> (64 - SHARD_BITS)) as usize
}

/// The bucket count a shard with `count` variables and `nbuckets` buckets should resize to, if
/// any: double when the load exceeds 1, shrink to a load of at most 1/2 when it falls under 1/8.
pub(crate) fn wanted_buckets(count: usize, nbuckets: usize, min: usize) -> Option<usize> {
    let want = if count > nbuckets {
        count.checked_next_power_of_two()?.min(MAX_BUCKETS)
    } else if nbuckets > min && count < nbuckets / 8 {
        count.saturating_mul(2).next_power_of_two().max(min)
    } else {
        return None;
    };
    (want != nbuckets).then_some(want)
}

/// Whether `get_or_alloc` behaves like `klp_shadow_alloc()` or `klp_shadow_get_or_alloc()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// An existing `<obj, id>` is an error.
    Alloc,
    /// An existing `<obj, id>` is returned.
    GetOrAlloc,
}

/// Why `get_or_alloc` returned no variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AllocError {
    /// [`Mode::Alloc`] and `<obj, id>` exists; it is left untouched.
    Duplicate,
    /// The allocator failed.
    NoMem,
    /// The size is more than the maximum (the value).
    TooLarge(usize),
    /// The constructor failed with this error; nothing was inserted.
    Ctor(i32),
    /// The caller's admission check failed (see [`Table::get_or_alloc_if`]); nothing was
    /// inserted.
    Refused,
}

/// The table's counters, summed over the shards.
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct Stats {
    /// The sums; `max_chain` is the maximum.
    pub(crate) sum: ShardStats,
    /// The biggest bucket array of a shard.
    pub(crate) max_buckets: usize,
    /// The smallest bucket array of a shard.
    pub(crate) min_buckets: usize,
}

/// What a registered shadow id holds (`struct rust_klp_shadow_type`, minus the destructor).
#[derive(Clone, Copy, Debug)]
pub(crate) struct TypeInfo<'a> {
    /// The type's name (without the NUL), for reports only.
    pub(crate) name: &'a [u8],
    /// Its size in bytes.
    pub(crate) size: usize,
    /// Its alignment in bytes.
    pub(crate) align: usize,
    /// The identity the type declares (`ShadowData::LAYOUT` in Rust).
    pub(crate) layout: u64,
}

impl TypeInfo<'_> {
    /// Equal types: same size, alignment and declared layout. The name is not compared: it is
    /// only what the type is called where it was registered.
    pub(crate) fn same(&self, other: &TypeInfo<'_>) -> bool {
        self.size == other.size && self.align == other.align && self.layout == other.layout
    }
}

/// Why a type registration is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TypeError {
    /// The alignment is not a power of two or more than [`DATA_ALIGN`].
    BadAlign,
    /// The id is registered with a different type.
    Conflict,
}

/// Checks a new registration of a type against one existing registration of the same id (all
/// registrations of an id are equal, so one is enough).
pub(crate) fn check_type(
    existing: Option<&TypeInfo<'_>>,
    new: &TypeInfo<'_>,
) -> Result<(), TypeError> {
    if !new.align.is_power_of_two() || new.align > DATA_ALIGN {
        return Err(TypeError::BadAlign);
    }
    match existing {
        Some(old) if !old.same(new) => Err(TypeError::Conflict),
        _ => Ok(()),
    }
}

/// The table of shadow variables.
pub(crate) struct Table {
    env: Env,
    shards: [Shard; NR_SHARDS],
}

impl Table {
    /// An empty table; [`Table::init`] must run before it is used.
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        Self {
            env: Env::new(),
            shards: [const { Shard::new() }; NR_SHARDS],
        }
    }

    /// An empty table (loom's atomics have no `const` constructor).
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        Self {
            env: Env::new(),
            shards: core::array::from_fn(|_| Shard::new()),
        }
    }

    /// Initialises the locks and gives each shard `min` (a power of two) buckets. On error the
    /// table is still safe to tear down.
    pub(crate) fn init(&self, min: usize, gfp: Gfp) -> Result<(), AllocError> {
        for s in &self.shards {
            s.init_lock();
        }
        for s in &self.shards {
            s.init_buckets(min, gfp).map_err(|_| AllocError::NoMem)?;
        }
        Ok(())
    }

    /// The platform environment (RCU, deferred work).
    #[allow(dead_code)] // Used by the host tests.
    pub(crate) fn env(&self) -> &Env {
        &self.env
    }

    fn shard(&self, hash: u64) -> &Shard {
        &self.shards[shard_index(hash)]
    }

    /// `klp_shadow_get()`: the data of `<obj, id>`, if it exists. Never blocks, never locks.
    #[inline]
    pub(crate) fn get(&self, obj: usize, id: usize, rcu: &RcuGuard<'_>) -> Option<NonNull<u8>> {
        let h = hash(obj, id);
        self.shard(h).lookup(h, obj, id, rcu)
    }

    /// `klp_shadow_alloc()` and `klp_shadow_get_or_alloc()`.
    ///
    /// Allocates outside the lock with `gfp`, zeroed; under the shard's lock, checks again that
    /// `<obj, id>` does not exist, runs `ctor` on the data (exactly once, before the variable is
    /// visible) and links the variable. On any error nothing is inserted and nothing leaks.
    pub(crate) fn get_or_alloc(
        &self,
        obj: usize,
        id: usize,
        size: usize,
        gfp: Gfp,
        mode: Mode,
        ctor: impl FnOnce(NonNull<u8>) -> Result<(), i32>,
    ) -> Result<NonNull<u8>, AllocError> {
        self.get_or_alloc_if(obj, id, size, gfp, mode, || true, ctor)
    }

    /// [`Table::get_or_alloc`], only while `admit()` holds: it is called inside the RCU
    /// read-side critical section of the first lookup, and again under the shard's lock before
    /// anything is inserted; when it fails, nothing is returned or inserted
    /// ([`AllocError::Refused`]).
    ///
    /// A caller that makes `admit()` fail and then runs [`Table::free_all`] for `id` is sure that
    /// no variable of `id` is left: an insert either happened under a shard lock before the
    /// sweep of that shard took it, or it sees `admit()` fail.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn get_or_alloc_if(
        &self,
        obj: usize,
        id: usize,
        size: usize,
        gfp: Gfp,
        mode: Mode,
        admit: impl Fn() -> bool,
        ctor: impl FnOnce(NonNull<u8>) -> Result<(), i32>,
    ) -> Result<NonNull<u8>, AllocError> {
        let h = hash(obj, id);
        let shard = self.shard(h);
        let existing = |data| match mode {
            Mode::Alloc => Err(AllocError::Duplicate),
            Mode::GetOrAlloc => Ok(data),
        };
        {
            let rcu = self.env.read_lock();
            if !admit() {
                return Err(AllocError::Refused);
            }
            if let Some(data) = shard.lookup(h, obj, id, &rcu) {
                return existing(data);
            }
        }
        let new = NewEntry::new(obj, id, size, gfp).map_err(|e| match e {
            AllocFail::NoMem => AllocError::NoMem,
            AllocFail::TooLarge => AllocError::TooLarge(shard::max_size()),
        })?;
        let mut locked = shard.lock();
        if !admit() {
            return Err(AllocError::Refused);
        }
        if let Some(data) = locked.find(h, obj, id) {
            drop(locked);
            return existing(data);
        }
        if let Err(e) = ctor(new.data()) {
            drop(locked);
            return Err(AllocError::Ctor(e));
        }
        let data = locked.insert(h, new).map_err(|_| AllocError::NoMem)?;
        let grow = wanted_buckets(locked.count(), locked.nbuckets(), shard.min_buckets());
        drop(locked);
        if let Some(want) = grow {
            self.resize(shard, want, gfp);
        }
        Ok(data)
    }

    /// `klp_shadow_free()` (with [`Retire::DtorNow`]) or `rust_klp_shadow_free_rcu()` (with
    /// [`Retire::DtorAfterGp`]). A missing `<obj, id>` is not an error.
    pub(crate) fn free(&self, obj: usize, id: usize, how: Retire) -> bool {
        self.free_if(obj, id, || Some(how)).unwrap_or(false)
    }

    /// [`Table::free`], with the way to retire the variable given by `how()`, called under the
    /// shard's lock; `None` there refuses: nothing is removed (`Err(())`).
    pub(crate) fn free_if(
        &self,
        obj: usize,
        id: usize,
        how: impl FnOnce() -> Option<Retire>,
    ) -> Result<bool, ()> {
        let h = hash(obj, id);
        let shard = self.shard(h);
        let mut locked = shard.lock();
        let how = how().ok_or(())?;
        let found = locked.remove(&self.env, h, obj, id, how);
        let shrink = wanted_buckets(locked.count(), locked.nbuckets(), shard.min_buckets());
        drop(locked);
        if shrink.is_some() {
            self.defer_resize(shard);
        }
        Ok(found)
    }

    /// `klp_shadow_free_all()` or `rust_klp_shadow_free_all_rcu()`: frees every variable of
    /// `id`, shard by shard; returns how many.
    pub(crate) fn free_all(&self, id: usize, how: Retire) -> usize {
        self.free_all_if(id, || Some(how)).unwrap_or(0)
    }

    /// [`Table::free_all`], with `how()` called under each shard's lock as for
    /// [`Table::free_if`]; stops at the first refusal (`Err(())`, with the variables of the
    /// shards before it freed).
    pub(crate) fn free_all_if(
        &self,
        id: usize,
        how: impl Fn() -> Option<Retire>,
    ) -> Result<usize, ()> {
        let mut freed = 0;
        for shard in &self.shards {
            let mut locked = shard.lock();
            let how = how().ok_or(())?;
            freed += locked.remove_if(&self.env, |_, i| i == id, how);
            let shrink = wanted_buckets(locked.count(), locked.nbuckets(), shard.min_buckets());
            drop(locked);
            if shrink.is_some() {
                self.defer_resize(shard);
            }
            // A million variables take minutes to free under emulation: let the CPU reschedule
            // between shards where the caller may sleep.
            self.env.resched_point();
        }
        Ok(freed)
    }

    /// Takes and releases every shard's lock: what ran under a shard lock before the call (an
    /// unlink and its `call_rcu`) has completed when it returns.
    pub(crate) fn sync_writers(&self) {
        for shard in &self.shards {
            drop(shard.lock());
        }
    }

    /// Asks the deferred worker to resize `shard`.
    fn defer_resize(&self, shard: &Shard) {
        if shard.set_resize_pending() {
            self.env.request_resize();
        }
    }

    /// Resizes `shard` to `want` buckets, allocating with `gfp` outside the lock. In atomic
    /// context (a `gfp` that cannot block) only small arrays are allocated here; bigger ones, and
    /// failed allocations, are left to the deferred worker.
    fn resize(&self, shard: &Shard, want: usize, gfp: Gfp) {
        if !platform::gfp_can_block(gfp) && want > ATOMIC_RESIZE_MAX {
            self.defer_resize(shard);
            return;
        }
        let Some(new) = NewBuckets::new(want, gfp) else {
            self.defer_resize(shard);
            return;
        };
        let mut locked = shard.lock();
        // Another writer may have resized or changed the count meanwhile.
        if wanted_buckets(locked.count(), locked.nbuckets(), shard.min_buckets()) == Some(want) {
            locked.rehash(&self.env, new, hash);
        }
    }

    /// The deferred worker: resizes every shard that asked for it, allocating with `gfp`
    /// (`GFP_KERNEL` in the kernel's workqueue).
    pub(crate) fn run_deferred_resizes(&self, gfp: Gfp) {
        for shard in &self.shards {
            if !shard.take_resize_pending() {
                continue;
            }
            if let Some(want) = wanted_buckets(shard.count(), shard.nbuckets(), shard.min_buckets())
            {
                if let Some(new) = NewBuckets::new(want, gfp) {
                    let mut locked = shard.lock();
                    if wanted_buckets(locked.count(), locked.nbuckets(), shard.min_buckets())
                        == Some(want)
                    {
                        locked.rehash(&self.env, new, hash);
                    }
                }
            }
        }
    }

    /// Calls `f(obj, id, size)` for every live variable, one shard at a time under its lock
    /// (so `f` runs in atomic context).
    pub(crate) fn visit(&self, mut f: impl FnMut(usize, usize, usize)) {
        for shard in &self.shards {
            shard.lock().visit(&mut f);
        }
    }

    /// The number of live variables of `id` and their data bytes.
    #[allow(dead_code)] // Used by the host tests.
    pub(crate) fn count_id(&self, id: usize) -> (usize, usize) {
        let (mut count, mut bytes) = (0, 0);
        self.visit(|_, i, size| {
            if i == id {
                count += 1;
                bytes += size;
            }
        });
        (count, bytes)
    }

    /// The number of live variables.
    #[allow(dead_code)] // Used by the host tests.
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(Shard::count).sum()
    }

    /// The counters of all shards.
    pub(crate) fn stats(&self) -> Stats {
        let mut st = Stats {
            min_buckets: usize::MAX,
            ..Stats::default()
        };
        for shard in &self.shards {
            let s = shard.lock().stats();
            st.sum.count += s.count;
            st.sum.bytes += s.bytes;
            st.sum.buckets += s.buckets;
            st.sum.grows += s.grows;
            st.sum.shrinks += s.shrinks;
            st.sum.retries += s.retries;
            st.sum.max_chain = st.sum.max_chain.max(s.max_chain);
            st.max_buckets = st.max_buckets.max(s.buckets);
            st.min_buckets = st.min_buckets.min(s.buckets);
        }
        st
    }

    /// Frees every variable without a destructor, after calling `f(obj, id, size)` for each,
    /// and retires the bucket arrays; the table is then empty and unusable until `init`.
    /// Memory is reclaimed after a grace period: the caller waits with an RCU barrier.
    pub(crate) fn teardown(&self, mut f: impl FnMut(usize, usize, usize)) {
        for shard in &self.shards {
            shard.lock().teardown(&self.env, &mut f);
        }
    }
}

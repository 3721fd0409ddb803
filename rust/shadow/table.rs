// SPDX-License-Identifier: GPL-2.0

//! The shadow-variable table: `klp_shadow_*()` semantics over independently locked shards.
//!
//! C header: [include/linux/livepatch.h](srctree/include/linux/livepatch.h); the kernel's own
//! table is `kernel/livepatch/shadow.c`, whose behaviour this one reproduces call for call.
//!
//! `<obj, id>` is hashed with one multiply; the top bits pick one of [`NR_SHARDS`] shards, the
//! next ones a line of that shard's array. Each shard has its own lock and resizes its own array
//! (doubling, or more, when it has more than [`shard::GROW_LOAD`] variables per line, shrinking
//! when under one per two lines), so lookups stay O(1) at any size and writers to different
//! shards never contend.
//!
//! Nothing here waits for or wakes anything: a resize allocates its array with the gfp of the
//! insert that wants it, or inline in a free or `free_all` whose caller may sleep; the entries
//! are then copied a few lines per write. A free in atomic context leaves the shrink to the next
//! insert, or the next free that may sleep.
//!
//! This file has no `unsafe` code and no kernel dependency: it is compiled both into the kernel
//! module and into the host test crate (`rust/shadow/host`), which runs it against a model and
//! under loom. The memory-level mechanism is in `shard.rs`; the kernel edge in `ffi.rs`.

#![forbid(unsafe_code)]

use crate::platform::{self, Env, Gfp, RcuGuard};
use crate::shard::{self, AllocFail, NewArray, NewEntry, Shard, ShardStats, SweepPos};
use core::ptr::NonNull;

pub(crate) use crate::shard::{hash, Retire, DATA_ALIGN};

pub(crate) use crate::shard::SHARD_BITS;

/// The number of shards: each has its own lock and array.
pub(crate) const NR_SHARDS: usize = 1 << SHARD_BITS;

/// The smallest array of a shard, in lines of [`shard::SLOTS`] variables: 32 KiB in all, the
/// size of the kernel's static hash table, so that a small table is sparse and a miss usually
/// reads one empty line.
pub(crate) const MIN_LINES: usize = 8;

/// Lines swept, or migrated, per hold of a shard's lock by `free_all` and by a caller that may
/// sleep finishing a resize.
const SWEEP_LINES: usize = 64;

fn shard_index(hash: u64) -> usize {
    (hash >> (64 - SHARD_BITS)) as usize
}

/// Why a writer call is refused in the context it was made from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// From an NMI handler: the shard lock may be held by the code it interrupted.
    Nmi,
    /// From a constructor or destructor that runs under a shard's lock on this CPU: taking a
    /// lock of the table again could deadlock.
    Nested,
}

/// Whether writers may run here.
fn writer_context() -> Result<(), Refusal> {
    platform::writer_refusal().map_or(Ok(()), Err)
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
    /// Called from a context where writers are refused.
    Context(Refusal),
}

/// Why `free_if` or `free_all_if` did nothing (or stopped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FreeError {
    /// The caller's check refused.
    Refused,
    /// Called from a context where writers are refused.
    Context(Refusal),
}

impl From<Refusal> for FreeError {
    fn from(r: Refusal) -> Self {
        FreeError::Context(r)
    }
}

/// The table's counters, summed over the shards.
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct Stats {
    /// The sums; `max_chain` is the maximum.
    pub(crate) sum: ShardStats,
    /// The biggest array of a shard, in lines.
    pub(crate) max_lines: usize,
    /// The smallest array of a shard, in lines.
    pub(crate) min_lines: usize,
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

    /// Initialises the locks and gives each shard `min` (a power of two) lines. On error the
    /// table is still safe to tear down.
    pub(crate) fn init(&self, min: usize, gfp: Gfp) -> Result<(), AllocError> {
        for s in &self.shards {
            s.init_lock();
        }
        for s in &self.shards {
            s.init_lines(&self.env, min, gfp)
                .map_err(|_| AllocError::NoMem)?;
        }
        Ok(())
    }

    /// The platform environment (RCU).
    pub(crate) fn env(&self) -> &Env {
        &self.env
    }

    fn shard(&self, hash: u64) -> &Shard {
        &self.shards[shard_index(hash)]
    }

    /// `klp_shadow_get()`: the data of `<obj, id>`, if it exists. Never blocks, never locks,
    /// never retries: safe in any context, NMI included.
    #[inline(always)]
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
    /// sweep of its line took it, or it sees `admit()` fail.
    ///
    /// Refused from NMI context and from a constructor or destructor running under a shard's
    /// lock ([`AllocError::Context`]).
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
        writer_context().map_err(AllocError::Context)?;
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
        // The array a resize wants once this variable is in, allocated before the lock with the
        // caller's flags (`kmalloc` without `__GFP_NOWARN`'s warning where they cannot block).
        let array = shard.wanted_hint(1).and_then(|n| NewArray::new(n, gfp));
        let mut locked = shard.lock();
        if !admit() {
            return Err(AllocError::Refused);
        }
        // Started before the probe: a resize starting leaves the published array as it is.
        let mut unused = array.and_then(|a| locked.start_resize(a, 1));
        // One probe: the variable, or the free slot it will fill, found before the constructor
        // runs: once it ran, the insert cannot fail.
        let spot = match locked.find_or_spot(h, obj, id) {
            Ok(data) => {
                drop(locked);
                return existing(data);
            }
            Err(Some(spot)) => spot,
            Err(None) => {
                // Full: earlier allocations of a bigger array failed. If one is migrating now,
                // finish it under the lock (the one case of work proportional to the shard
                // there), and look again in the array it publishes.
                locked.migrate(&self.env, usize::MAX);
                match locked.spot(h) {
                    Some(spot) => spot,
                    None => {
                        drop(locked);
                        drop(unused.take());
                        return Err(AllocError::NoMem);
                    }
                }
            }
        };
        if let Err(e) = ctor(new.data()) {
            drop(locked);
            return Err(AllocError::Ctor(e));
        }
        let data = spot.insert(new);
        locked.migrate(&self.env, shard::MIGRATE_STEP);
        drop(locked);
        drop(unused);
        Ok(data)
    }

    /// `klp_shadow_free()` (with [`Retire::DtorNow`]) or `rust_klp_shadow_free_rcu()` (with
    /// [`Retire::DtorAfterGp`]). A missing `<obj, id>` is not an error.
    pub(crate) fn free(&self, obj: usize, id: usize, how: Retire) -> Result<bool, Refusal> {
        self.free_with(obj, id, || Ok(how))
    }

    /// [`Table::free`], with the way to retire the variable given by `how()`, called under the
    /// shard's lock; `None` there refuses: nothing is removed.
    pub(crate) fn free_if(
        &self,
        obj: usize,
        id: usize,
        how: impl FnOnce() -> Option<Retire>,
    ) -> Result<bool, FreeError> {
        self.free_with(obj, id, || how().ok_or(FreeError::Refused))
    }

    /// [`Table::free_if`] with the refusal `how()` returns as the error.
    fn free_with<E: From<Refusal>>(
        &self,
        obj: usize,
        id: usize,
        how: impl FnOnce() -> Result<Retire, E>,
    ) -> Result<bool, E> {
        writer_context()?;
        let h = hash(obj, id);
        let shard = self.shard(h);
        let mut locked = shard.lock();
        let how = how()?;
        let found = locked.remove(&self.env, h, obj, id, how);
        let settled = locked.migrate(&self.env, shard::MIGRATE_STEP);
        let shrink = locked.wanted(0).is_some();
        drop(locked);
        if (shrink || !settled) && platform::may_sleep() {
            self.settle(shard, platform::GFP_SLEEP);
        }
        Ok(found)
    }

    /// `klp_shadow_free_all()` or `rust_klp_shadow_free_all_rcu()`: frees every variable of
    /// `id`; returns how many.
    ///
    /// Every variable of `id` allocated before the call is freed. Unlike upstream, whose one
    /// lock makes the call atomic, the table is swept a shard (and a few lines) at a time, so a
    /// variable of `id` allocated *during* the call may survive it while another one allocated
    /// after it does not (see `rust-klp-shadow.rst`).
    pub(crate) fn free_all(&self, id: usize, how: Retire) -> Result<usize, Refusal> {
        self.free_all_with(id, || Ok(how))
    }

    /// [`Table::free_all`], with `how()` called under each lock hold as for
    /// [`Table::free_if`]; stops at the first refusal (with the variables swept before it
    /// freed).
    pub(crate) fn free_all_if(
        &self,
        id: usize,
        how: impl Fn() -> Option<Retire>,
    ) -> Result<usize, FreeError> {
        self.free_all_with(id, || how().ok_or(FreeError::Refused))
    }

    /// [`Table::free_all_if`] with the refusal `how()` returns as the error.
    fn free_all_with<E: From<Refusal>>(
        &self,
        id: usize,
        how: impl Fn() -> Result<Retire, E>,
    ) -> Result<usize, E> {
        writer_context()?;
        let may_sleep = platform::may_sleep();
        let mut freed = 0;
        for shard in &self.shards {
            let mut pos = SweepPos::default();
            loop {
                let mut locked = shard.lock();
                let how = how()?;
                let (n, done) = locked.remove_id(&self.env, id, how, &mut pos, SWEEP_LINES);
                freed += n;
                drop(locked);
                if done {
                    break;
                }
                self.env.resched_point();
            }
            if may_sleep {
                self.settle(shard, platform::GFP_SLEEP);
                // A million variables take minutes to free under emulation: let the CPU
                // reschedule between shards.
                self.env.resched_point();
            }
        }
        Ok(freed)
    }

    /// Takes and releases every shard's lock: what ran under a shard lock before the call (a
    /// removal and its `call_rcu`) has completed when it returns.
    pub(crate) fn sync_writers(&self) {
        for shard in &self.shards {
            drop(shard.lock());
        }
    }

    /// Starts the resize `shard` wants, if any, allocating with `gfp` outside the lock, and
    /// finishes the migration, [`SWEEP_LINES`] lines per lock hold. For callers that may sleep.
    pub(crate) fn settle(&self, shard: &Shard, gfp: Gfp) {
        let want = shard.lock().wanted(0);
        if let Some(new) = want.and_then(|n| NewArray::new(n, gfp)) {
            let unused = shard.lock().start_resize(new, 0);
            drop(unused);
        }
        while !shard.lock().migrate(&self.env, SWEEP_LINES) {
            self.env.resched_point();
        }
    }

    /// [`Table::settle`] for every shard.
    #[allow(dead_code)] // Used by the host tests.
    pub(crate) fn settle_all(&self, gfp: Gfp) {
        for shard in &self.shards {
            self.settle(shard, gfp);
        }
    }

    /// Calls `f(obj, id, size)` for every live variable, without locking (inside an RCU
    /// read-side critical section per shard, so `f` must not sleep): variables added or removed
    /// meanwhile may be seen or not.
    pub(crate) fn visit(&self, mut f: impl FnMut(usize, usize, usize)) {
        for shard in &self.shards {
            let rcu = self.env.read_lock();
            shard.visit_rcu(&rcu, &mut f);
            drop(rcu);
            self.env.resched_point();
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
            min_lines: usize::MAX,
            ..Stats::default()
        };
        for shard in &self.shards {
            let mut s = shard.lock().stats();
            let rcu = self.env.read_lock();
            s.max_probe = shard.max_probe(&rcu);
            drop(rcu);
            st.sum.count += s.count;
            st.sum.bytes += s.bytes;
            st.sum.lines += s.lines;
            st.sum.grows += s.grows;
            st.sum.shrinks += s.shrinks;
            st.sum.aborts += s.aborts;
            st.sum.array_bytes += s.array_bytes;
            st.sum.migrating += s.migrating;
            st.sum.max_probe = st.sum.max_probe.max(s.max_probe);
            st.max_lines = st.max_lines.max(s.lines);
            st.min_lines = st.min_lines.min(s.lines);
        }
        st
    }

    /// Frees every variable without a destructor, after calling `f(obj, id, size)` for each,
    /// and retires the arrays; the table is then empty and unusable until `init`. Memory is
    /// reclaimed after a grace period: the caller waits with an RCU barrier. Process context.
    pub(crate) fn teardown(&self, mut f: impl FnMut(usize, usize, usize)) {
        for shard in &self.shards {
            shard.lock().teardown(&self.env, &mut f);
        }
    }
}

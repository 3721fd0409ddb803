// SPDX-License-Identifier: GPL-2.0

//! One shard of the shadow-variable table: RCU-protected hash chains in a resizable bucket array.
//!
//! C header: [include/linux/livepatch.h](srctree/include/linux/livepatch.h) (the semantics);
//! the kernel's own table is `kernel/livepatch/shadow.c`.
//!
//! A shard is one lock, one bucket array and the singly linked chains hanging off it. Readers
//! never lock: they walk the chains inside an RCU read-side critical section. Writers take the
//! shard's lock (IRQ-safe in the kernel). Memory is reclaimed only after an RCU grace period.
//!
//! Resizing relinks the live entries into a new bucket array. A reader that walks a chain while
//! its entries are being relinked may be led astray and miss an entry that is there, so every
//! resize makes the shard's sequence counter odd while it runs and bumps it again when done; a
//! reader that *misses* checks the counter and retries if a resize overlapped its walk. A *hit* is
//! always valid: an entry's key never changes and its memory outlives every reader that saw it.
//!
//! This file and `table.rs` are compiled into the kernel module and into the host test crate
//! (`rust/shadow/host`). They reach the kernel only through `crate::platform` (allocation, RCU,
//! the lock) and `crate::sync` (atomics, loom's on the host), which each crate provides. All the
//! `unsafe` code of the table's logic is in this file; `table.rs` has none.

use crate::platform::{self, Dtor, Env, Gfp, RcuGuard, RcuHead, ShardGuard, ShardLock};
use crate::sync::{fence, spin_loop, AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use core::cell::UnsafeCell;
use core::mem::{align_of, needs_drop, offset_of, size_of};
use core::ptr::{self, NonNull};

/// The guaranteed alignment of the data of every shadow variable, in bytes.
pub(crate) const DATA_ALIGN: usize = 16;

/// Padding that makes room to align the data when the allocator only guarantees `MIN_ALIGN`.
const PAD: usize = DATA_ALIGN - platform::MIN_ALIGN;

const _: () = assert!(DATA_ALIGN.is_power_of_two() && platform::MIN_ALIGN <= DATA_ALIGN);
const _: () = assert!(align_of::<Entry>() <= platform::MIN_ALIGN);
const _: () = assert!(align_of::<Buckets>() <= platform::MIN_ALIGN);

/// The header of a shadow variable; its data follows, aligned to [`DATA_ALIGN`].
///
/// # Invariants
///
/// - `obj` and `id` never change after the entry is linked.
/// - The memory of an entry that was linked is freed only after an RCU grace period that started
///   after it was unlinked.
#[repr(C)]
pub(crate) struct Entry {
    /// The next entry of the chain; followed by readers under RCU.
    next: AtomicPtr<Entry>,
    obj: usize,
    id: usize,
    /// The data size while linked; after unlinking, the encoded destructor to run after the
    /// grace period (0 for none). Never read by readers.
    aux: AtomicUsize,
    /// Used by `call_rcu` once the entry is unlinked.
    rcu: UnsafeCell<RcuHead>,
}

/// Size of the header in front of the data.
const HDR: usize = size_of::<Entry>();

/// Offset of the data from an entry aligned to [`DATA_ALIGN`].
const DATA_OFF: usize = (HDR + DATA_ALIGN - 1) & !(DATA_ALIGN - 1);

impl Entry {
    /// The data of the shadow variable at `e`: the first [`DATA_ALIGN`]-aligned byte after the
    /// header. Computed from the pointer to the whole allocation, which the data is part of.
    fn data_of(e: NonNull<Entry>) -> NonNull<u8> {
        let base = e.as_ptr().cast::<u8>();
        let addr = base as usize + HDR;
        let off = ((addr + DATA_ALIGN - 1) & !(DATA_ALIGN - 1)) - base as usize;
        // `off` stays inside the allocation (see `NewEntry::new`), so the result is not null.
        NonNull::new(base.wrapping_add(off)).unwrap_or(e.cast())
    }

    fn matches(&self, obj: usize, id: usize) -> bool {
        self.obj == obj && self.id == id
    }
}

/// Why a new shadow variable could not be allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AllocFail {
    /// The allocator failed.
    NoMem,
    /// The size is more than [`max_size`] bytes.
    TooLarge,
}

/// The largest data size a shadow variable can have.
pub(crate) fn max_size() -> usize {
    platform::max_alloc().saturating_sub(HDR + PAD)
}

/// A shadow variable that is allocated but not (yet) in a table; it owns its memory.
///
/// # Invariants
///
/// `self.0` points to an initialised [`Entry`] at the start of an allocation of
/// `platform::alloc_zeroed` that is big enough for its data, and nothing else refers to it.
pub(crate) struct NewEntry(NonNull<Entry>);

// SAFETY: a `NewEntry` is an exclusively owned heap allocation of plain data; any thread may
// free it.
unsafe impl Send for NewEntry {}

impl NewEntry {
    /// Allocates a zeroed shadow variable for `<obj, id>` with `size` bytes of data.
    ///
    /// A `size` of 0 is valid: the data pointer is then unique but must not be dereferenced.
    pub(crate) fn new(obj: usize, id: usize, size: usize, gfp: Gfp) -> Result<Self, AllocFail> {
        if size > max_size() {
            return Err(AllocFail::TooLarge);
        }
        // One byte at least, so that the data pointer of a size-0 variable stays inside its
        // allocation and is unique.
        let body = size.max(1);
        let (bytes, aligned) = platform::alloc_size(DATA_OFF + body);
        // Data at `DATA_OFF` if the allocation is `DATA_ALIGN`-aligned; otherwise at most `PAD`
        // bytes further.
        let bytes = if aligned { bytes } else { HDR + PAD + body };
        let mem = platform::alloc_zeroed(bytes, gfp).ok_or(AllocFail::NoMem)?;
        let entry = mem.cast::<Entry>();
        // SAFETY: `mem` is a fresh allocation of at least `HDR` bytes, aligned to at least
        // `MIN_ALIGN`, which is enough for `Entry` (asserted above).
        unsafe {
            entry.as_ptr().write(Entry {
                next: AtomicPtr::new(ptr::null_mut()),
                obj,
                id,
                aux: AtomicUsize::new(size),
                rcu: UnsafeCell::new(platform::new_rcu_head()),
            })
        };
        // INVARIANT: initialised above, not shared.
        Ok(Self(entry))
    }

    fn entry(&self) -> &Entry {
        // SAFETY: by the type invariant the entry is initialised and owned by `self`.
        unsafe { self.0.as_ref() }
    }

    /// The data of the new variable (zeroed).
    pub(crate) fn data(&self) -> NonNull<u8> {
        Entry::data_of(self.0)
    }

    fn into_raw(self) -> *mut Entry {
        let p = self.0.as_ptr();
        core::mem::forget(self);
        p
    }
}

impl Drop for NewEntry {
    fn drop(&mut self) {
        // SAFETY: by the type invariant nobody else knows this entry, so it can be freed now.
        unsafe { free_entry(self.0) };
    }
}

/// Drops and frees an entry at once.
///
/// # Safety
///
/// `e` is an initialised entry from `NewEntry::new` that nothing refers to any more.
unsafe fn free_entry(e: NonNull<Entry>) {
    // SAFETY: per the function's contract.
    unsafe {
        ptr::drop_in_place(e.as_ptr());
        platform::free(e.cast());
    }
}

/// RCU callback: runs an unlinked entry's deferred destructor, then frees it.
///
/// # Safety
///
/// `head` is the `rcu` field of an unlinked entry, passed to `call_rcu` once, after whose grace
/// period no reader can still see the entry.
unsafe extern "C" fn reclaim_entry(head: *mut RcuHead) {
    // SAFETY: `head` is the `rcu` field of an `Entry` (contract), so this is the entry.
    let e =
        unsafe { NonNull::new_unchecked(head.byte_sub(offset_of!(Entry, rcu)).cast::<Entry>()) };
    // SAFETY: the entry is still allocated until `free_entry` below; readers are gone.
    let entry = unsafe { e.as_ref() };
    // SAFETY: `unlink` set `aux` to 0 or to `Dtor::into_word()` before `call_rcu`.
    if let Some(dtor) = unsafe { Dtor::from_word(entry.aux.load(Ordering::Relaxed)) } {
        dtor.call(entry.obj, Entry::data_of(e));
    }
    // SAFETY: the grace period is over, nothing refers to the entry any more.
    unsafe { free_entry(e) };
}

/// How a removed variable's destructor is run and its memory reclaimed.
#[derive(Clone, Copy)]
pub(crate) enum Retire {
    /// `klp_shadow_free()`: the destructor runs now, under the lock; the memory is freed after a
    /// grace period.
    DtorNow(Option<Dtor>),
    /// `rust_klp_shadow_free_rcu()`: destructor and freeing both after a grace period, so that
    /// readers inside an RCU read-side critical section never see a destroyed value.
    DtorAfterGp(Option<Dtor>),
}

/// A bucket array; `len` chain heads follow the header.
///
/// An array for `n` buckets (a power of two) is allocated as `n` words, header included, so that
/// it fills a power-of-two allocation exactly: `kmalloc()` rounds every other size up to the next
/// power of two (or to whole pages), which a header in front of `n` heads would double. It has
/// `n - HDR_WORDS` heads, or `n` when `n` is too small for that to be worth it. As `len` is not a
/// power of two, a hash is reduced to a head by multiply-shift instead of a mask.
///
/// # Invariants
///
/// Allocated by `NewBuckets::new` with `len >= 1` initialised heads; once published, freed only
/// after a grace period that started after it was replaced.
#[repr(C)]
struct Buckets {
    /// Used by `call_rcu` once the array is replaced.
    rcu: UnsafeCell<RcuHead>,
    len: usize,
}

/// The size of the header of a bucket array, in heads.
const HDR_WORDS: usize = size_of::<Buckets>().div_ceil(size_of::<AtomicPtr<Entry>>());

const _: () = assert!(size_of::<Buckets>() % align_of::<AtomicPtr<Entry>>() == 0);

impl Buckets {
    /// The number of heads of an array for `n` buckets (see the type's documentation).
    fn len_for(n: usize) -> usize {
        if n >= 4 * HDR_WORDS {
            n - HDR_WORDS
        } else {
            n
        }
    }

    fn bytes(len: usize) -> usize {
        size_of::<Buckets>() + len * size_of::<AtomicPtr<Entry>>()
    }

    fn heads(&self) -> &[AtomicPtr<Entry>] {
        // SAFETY: by the type invariant `len` initialised heads follow the header, which is a
        // multiple of the heads' alignment (asserted above).
        unsafe {
            core::slice::from_raw_parts(
                ptr::from_ref(self).add(1).cast::<AtomicPtr<Entry>>(),
                self.len,
            )
        }
    }

    /// The head of `hash`'s chain: the low 32 bits of the hash scaled to `[0, len)` (the top bits
    /// chose the shard).
    fn head(&self, hash: u64) -> &AtomicPtr<Entry> {
        let i = (((hash & 0xffff_ffff) * self.len as u64) >> 32) as usize;
        // SAFETY: `i < len` because `hash & 0xffff_ffff < 2^32`, and there are `len` heads (type
        // invariant).
        unsafe { &*ptr::from_ref(self).add(1).cast::<AtomicPtr<Entry>>().add(i) }
    }
}

/// A new, empty bucket array, not yet published; freed when dropped.
pub(crate) struct NewBuckets {
    b: NonNull<Buckets>,
    /// The bucket count it was made for (a power of two; the table's unit for resizing).
    n: usize,
}

impl NewBuckets {
    /// Allocates an empty array for `n` (a power of two, at most 2^32) buckets.
    pub(crate) fn new(n: usize, gfp: Gfp) -> Option<Self> {
        debug_assert!(n.is_power_of_two() && n as u64 <= 1 << 32);
        let len = Buckets::len_for(n);
        let mem = platform::alloc_table_zeroed(Buckets::bytes(len), gfp)?;
        let b = mem.cast::<Buckets>();
        // SAFETY: `mem` is a fresh allocation of `Buckets::bytes(len)` bytes aligned to at least
        // `MIN_ALIGN` (enough for `Buckets` and the heads, asserted above).
        unsafe {
            b.as_ptr().write(Buckets {
                rcu: UnsafeCell::new(platform::new_rcu_head()),
                len,
            });
            let heads = b.as_ptr().add(1).cast::<AtomicPtr<Entry>>();
            for i in 0..len {
                heads.add(i).write(AtomicPtr::new(ptr::null_mut()));
            }
        }
        Some(Self { b, n })
    }

    fn buckets(&self) -> &Buckets {
        // SAFETY: initialised in `new` and owned by `self`.
        unsafe { self.b.as_ref() }
    }

    fn into_raw(self) -> *mut Buckets {
        let p = self.b.as_ptr();
        core::mem::forget(self);
        p
    }
}

impl Drop for NewBuckets {
    fn drop(&mut self) {
        // SAFETY: never published, so nothing else refers to it.
        unsafe { free_buckets(self.b) };
    }
}

/// Drops and frees a bucket array at once.
///
/// # Safety
///
/// `b` comes from `NewBuckets::new` and nothing refers to it any more.
unsafe fn free_buckets(b: NonNull<Buckets>) {
    // SAFETY: per the function's contract; `heads()` covers exactly the initialised heads.
    unsafe {
        let heads = b.as_ref().heads();
        ptr::drop_in_place(ptr::from_ref(heads).cast_mut());
        ptr::drop_in_place(b.as_ptr());
        platform::free_table(b.cast());
    }
}

/// RCU callback: frees a replaced bucket array.
///
/// # Safety
///
/// `head` is the `rcu` field of a bucket array that was replaced, passed to `call_rcu` once.
unsafe extern "C" fn reclaim_buckets(head: *mut RcuHead) {
    // SAFETY: `head` is the first field of a `Buckets` (contract; `repr(C)`, and `UnsafeCell`
    // is `repr(transparent)`); the grace period after its replacement is over.
    unsafe { free_buckets(NonNull::new_unchecked(head.cast::<Buckets>())) };
}

/// The fields readers use, on a cache line of their own.
#[repr(C, align(64))]
struct ReadMostly {
    /// The current bucket array; null before `init` and after `teardown`.
    buckets: AtomicPtr<Buckets>,
    /// Odd while a resize relinks entries.
    seq: AtomicUsize,
}

/// Counters of a shard.
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct ShardStats {
    /// Live variables.
    pub(crate) count: usize,
    /// Their data bytes.
    pub(crate) bytes: usize,
    /// Buckets in the current array.
    pub(crate) buckets: usize,
    /// Resizes that made the array bigger.
    pub(crate) grows: usize,
    /// Resizes that made the array smaller.
    pub(crate) shrinks: usize,
    /// Lookups that missed while a resize ran and walked again.
    pub(crate) retries: usize,
    /// The longest chain.
    pub(crate) max_chain: usize,
}

/// One shard.
///
/// # Invariants
///
/// - `rd.buckets` is null or a published bucket array; it is replaced only under `lock`, with
///   `rd.seq` odd while entries are relinked.
/// - Every linked entry is in the chain of the bucket its hash selects in the current array.
/// - The chains, `count`, `bytes`, `nbuckets` and `min` change only under `lock`.
#[repr(C, align(64))]
pub(crate) struct Shard {
    rd: ReadMostly,
    lock: ShardLock,
    count: AtomicUsize,
    bytes: AtomicUsize,
    nbuckets: AtomicUsize,
    min: AtomicUsize,
    grows: AtomicUsize,
    shrinks: AtomicUsize,
    retries: AtomicUsize,
    /// A resize was asked of the deferred worker.
    resize_pending: AtomicBool,
}

macro_rules! new_shard {
    () => {
        Shard {
            rd: ReadMostly {
                buckets: AtomicPtr::new(ptr::null_mut()),
                seq: AtomicUsize::new(0),
            },
            lock: ShardLock::new(),
            count: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            nbuckets: AtomicUsize::new(0),
            min: AtomicUsize::new(1),
            grows: AtomicUsize::new(0),
            shrinks: AtomicUsize::new(0),
            retries: AtomicUsize::new(0),
            resize_pending: AtomicBool::new(false),
        }
    };
}

impl Shard {
    /// An empty shard without buckets; `init` must run before it is used.
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        new_shard!()
    }

    /// An empty shard without buckets (loom's atomics have no `const` constructor).
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        new_shard!()
    }

    /// Initialises the lock; before anything else.
    pub(crate) fn init_lock(&self) {
        self.lock.init();
    }

    /// Gives the shard its first `min` (a power of two) buckets.
    pub(crate) fn init_buckets(&self, min: usize, gfp: Gfp) -> Result<(), AllocFail> {
        let new = NewBuckets::new(min, gfp).ok_or(AllocFail::NoMem)?;
        let _guard = self.lock.lock();
        self.min.store(min, Ordering::Relaxed);
        self.nbuckets.store(min, Ordering::Relaxed);
        self.rd.buckets.store(new.into_raw(), Ordering::Release);
        Ok(())
    }

    /// Looks `<obj, id>` up without locking; returns its data.
    pub(crate) fn lookup(
        &self,
        hash: u64,
        obj: usize,
        id: usize,
        _rcu: &RcuGuard<'_>,
    ) -> Option<NonNull<u8>> {
        loop {
            let seq = self.rd.seq.load(Ordering::Acquire);
            let b = self.rd.buckets.load(Ordering::Acquire);
            // SAFETY: a published bucket array is freed only after a grace period that started
            // after it was replaced (type invariant), and `_rcu` proves that we are inside a
            // read-side critical section, which that grace period waits for.
            let b = unsafe { b.as_ref() }?;
            let mut cur = b.head(hash).load(Ordering::Acquire);
            // SAFETY: `cur` was read from a chain inside the read-side critical section, so the
            // entry is freed only after the critical section ends (`Entry` invariant).
            while let Some(e) = unsafe { cur.as_ref() } {
                if e.matches(obj, id) {
                    return NonNull::new(cur).map(Entry::data_of);
                }
                cur = e.next.load(Ordering::Acquire);
            }
            // A miss is valid only if no resize overlapped the walk (seqcount read side).
            fence(Ordering::Acquire);
            if seq & 1 == 0 && self.rd.seq.load(Ordering::Relaxed) == seq {
                return None;
            }
            self.retries.fetch_add(1, Ordering::Relaxed);
            spin_loop();
        }
    }

    /// Locks the shard for writing.
    pub(crate) fn lock(&self) -> Locked<'_> {
        let guard = self.lock.lock();
        Locked {
            shard: self,
            _guard: guard,
        }
    }

    /// The number of live variables (racy unless locked).
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// The number of buckets (racy unless locked).
    pub(crate) fn nbuckets(&self) -> usize {
        self.nbuckets.load(Ordering::Relaxed)
    }

    /// The smallest number of buckets.
    pub(crate) fn min_buckets(&self) -> usize {
        self.min.load(Ordering::Relaxed)
    }

    /// Marks a resize as asked of the deferred worker; true if it was not already.
    pub(crate) fn set_resize_pending(&self) -> bool {
        !self.resize_pending.swap(true, Ordering::AcqRel)
    }

    /// Takes the pending-resize mark.
    pub(crate) fn take_resize_pending(&self) -> bool {
        self.resize_pending.swap(false, Ordering::AcqRel)
    }
}

/// A locked shard.
///
/// While it exists no entry of the shard can be unlinked or freed by anyone else, and the bucket
/// array is not replaced, so the methods walk the chains with plain references.
pub(crate) struct Locked<'a> {
    shard: &'a Shard,
    _guard: ShardGuard<'a>,
}

/// Walks a chain under the lock: calls `f(link, entry)` for every entry, where `link` is the
/// link that points to it. `f` returns true if it unlinked the entry (so `link` now points past
/// it and is looked at again).
fn walk(head: &AtomicPtr<Entry>, mut f: impl FnMut(&AtomicPtr<Entry>, NonNull<Entry>) -> bool) {
    let mut link = head;
    while let Some(cur) = NonNull::new(link.load(Ordering::Relaxed)) {
        if !f(link, cur) {
            // SAFETY: linked entries are unlinked only under the shard's lock, which the caller
            // holds, so `cur` is still allocated; its `next` link lives as long as it does.
            link = unsafe { &(*cur.as_ptr()).next };
        }
    }
}

impl Locked<'_> {
    fn buckets(&self) -> Option<&Buckets> {
        let b = self.shard.rd.buckets.load(Ordering::Relaxed);
        // SAFETY: the array is replaced and retired only under the lock, which we hold while the
        // returned reference lives.
        unsafe { b.as_ref() }
    }

    /// Calls `f` on every entry of the shard, chain by chain.
    fn for_each(&self, mut f: impl FnMut(&Entry)) {
        let Some(b) = self.buckets() else { return };
        for head in b.heads() {
            walk(head, |_, e| {
                // SAFETY: as in `walk`; nothing unlinks `e` during `f`.
                f(unsafe { e.as_ref() });
                false
            });
        }
    }

    /// The data of `<obj, id>` if it is in the shard.
    pub(crate) fn find(&self, hash: u64, obj: usize, id: usize) -> Option<NonNull<u8>> {
        let mut found = None;
        walk(self.buckets()?.head(hash), |_, e| {
            // SAFETY: as in `walk`.
            if found.is_none() && unsafe { e.as_ref() }.matches(obj, id) {
                found = Some(Entry::data_of(e));
            }
            false
        });
        found
    }

    /// Makes `new` visible to readers; `<obj, id>` must not be in the shard yet.
    ///
    /// Returns its data, or gives `new` back if the shard has no buckets (not initialised).
    pub(crate) fn insert(&mut self, hash: u64, new: NewEntry) -> Result<NonNull<u8>, NewEntry> {
        let Some(b) = self.buckets() else {
            return Err(new);
        };
        let head = b.head(hash);
        let data = new.data();
        let size = new.entry().aux.load(Ordering::Relaxed);
        new.entry()
            .next
            .store(head.load(Ordering::Relaxed), Ordering::Relaxed);
        // Release: the header and the data (zeroed, then set by the constructor) are visible to
        // a reader that sees the entry.
        head.store(new.into_raw(), Ordering::Release);
        let shard = self.shard;
        shard.count.store(shard.count() + 1, Ordering::Relaxed);
        let bytes = shard.bytes.load(Ordering::Relaxed);
        shard.bytes.store(bytes + size, Ordering::Relaxed);
        Ok(data)
    }

    /// Unlinks the entry `e` that `link` points to and retires it.
    fn unlink(&self, env: &Env, link: &AtomicPtr<Entry>, e: NonNull<Entry>, how: Retire) {
        // SAFETY: as in `walk`: `e` is linked, we hold the lock.
        let entry = unsafe { e.as_ref() };
        link.store(entry.next.load(Ordering::Relaxed), Ordering::Release);
        let shard = self.shard;
        shard.count.store(shard.count() - 1, Ordering::Relaxed);
        let size = entry.aux.load(Ordering::Relaxed);
        let bytes = shard.bytes.load(Ordering::Relaxed);
        shard.bytes.store(bytes - size, Ordering::Relaxed);
        let dtor_later = match how {
            Retire::DtorNow(dtor) => {
                if let Some(dtor) = dtor {
                    dtor.call(entry.obj, Entry::data_of(e));
                }
                None
            }
            Retire::DtorAfterGp(dtor) => dtor,
        };
        let rcu = entry.rcu.get();
        // SAFETY: `e` is unlinked now, so no reader that starts from here on can find it, and it
        // is retired exactly once, here; the callback (or the allocator) frees it after a grace
        // period. `rcu` is not used by anyone else.
        unsafe {
            match dtor_later {
                Some(dtor) => {
                    entry.aux.store(dtor.into_word(), Ordering::Relaxed);
                    env.call_rcu(rcu, reclaim_entry);
                }
                None if needs_drop::<Entry>() => {
                    entry.aux.store(0, Ordering::Relaxed);
                    env.call_rcu(rcu, reclaim_entry);
                }
                None => env.kfree_rcu(rcu, e.as_ptr().cast()),
            }
        }
    }

    /// Removes `<obj, id>`; false if it is not there.
    pub(crate) fn remove(
        &mut self,
        env: &Env,
        hash: u64,
        obj: usize,
        id: usize,
        how: Retire,
    ) -> bool {
        let Some(b) = self.buckets() else {
            return false;
        };
        let mut done = false;
        walk(b.head(hash), |link, e| {
            // SAFETY: as in `walk`.
            if !done && unsafe { e.as_ref() }.matches(obj, id) {
                self.unlink(env, link, e, how);
                done = true;
                return true;
            }
            false
        });
        done
    }

    /// Removes every variable for which `pred(obj, id)` holds; returns how many.
    pub(crate) fn remove_if(
        &mut self,
        env: &Env,
        mut pred: impl FnMut(usize, usize) -> bool,
        how: Retire,
    ) -> usize {
        let Some(b) = self.buckets() else {
            return 0;
        };
        let mut removed = 0;
        for head in b.heads() {
            walk(head, |link, e| {
                // SAFETY: as in `walk`.
                let entry = unsafe { e.as_ref() };
                if pred(entry.obj, entry.id) {
                    self.unlink(env, link, e, how);
                    removed += 1;
                    return true;
                }
                false
            });
        }
        removed
    }

    /// Calls `f(obj, id, size)` for every live variable.
    pub(crate) fn visit(&self, mut f: impl FnMut(usize, usize, usize)) {
        self.for_each(|e| f(e.obj, e.id, e.aux.load(Ordering::Relaxed)));
    }

    /// The number of live variables.
    pub(crate) fn count(&self) -> usize {
        self.shard.count()
    }

    /// The number of buckets.
    pub(crate) fn nbuckets(&self) -> usize {
        self.shard.nbuckets()
    }

    /// Moves every entry into `new` (rehashed with `hash`) and retires the old array.
    pub(crate) fn rehash(
        &mut self,
        env: &Env,
        new: NewBuckets,
        hash: impl Fn(usize, usize) -> u64,
    ) {
        let shard = self.shard;
        let n = new.n;
        if n > shard.nbuckets() {
            shard.grows.fetch_add(1, Ordering::Relaxed);
        } else {
            shard.shrinks.fetch_add(1, Ordering::Relaxed);
        }
        let seq = shard.rd.seq.load(Ordering::Relaxed);
        // Seqcount write side: odd before any entry moves ...
        shard.rd.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        if let Some(b) = self.buckets() {
            for head in b.heads() {
                let mut cur = head.load(Ordering::Relaxed);
                // SAFETY: as in `walk`.
                while let Some(e) = unsafe { cur.as_ref() } {
                    let next = e.next.load(Ordering::Relaxed);
                    let to = new.buckets().head(hash(e.obj, e.id));
                    // Release: a reader that follows `e.next` into the new chain sees the chain,
                    // and (through the seqcount) that entries moved. The old heads are left as
                    // they are: readers that still hold the old array find moved entries.
                    e.next.store(to.load(Ordering::Relaxed), Ordering::Release);
                    to.store(cur, Ordering::Relaxed);
                    cur = next;
                }
            }
        }
        let old = shard.rd.buckets.swap(new.into_raw(), Ordering::AcqRel);
        shard.nbuckets.store(n, Ordering::Relaxed);
        // ... and even again once the new array is published.
        shard.rd.seq.store(seq.wrapping_add(2), Ordering::Release);
        if let Some(old) = NonNull::new(old) {
            // SAFETY: `old` was the published array; it is replaced now and retired once, here.
            unsafe { env.call_rcu((*old.as_ptr()).rcu.get(), reclaim_buckets) };
        }
    }

    /// Removes every variable, calling `f(obj, id, size)` for each first, and retires the bucket
    /// array; the shard is left without buckets.
    pub(crate) fn teardown(&mut self, env: &Env, mut f: impl FnMut(usize, usize, usize)) {
        self.visit(&mut f);
        self.remove_if(env, |_, _| true, Retire::DtorAfterGp(None));
        let shard = self.shard;
        let old = shard.rd.buckets.swap(ptr::null_mut(), Ordering::AcqRel);
        shard.nbuckets.store(0, Ordering::Relaxed);
        if let Some(old) = NonNull::new(old) {
            // SAFETY: `old` was the published array; it is unpublished now and retired once.
            unsafe { env.call_rcu((*old.as_ptr()).rcu.get(), reclaim_buckets) };
        }
    }

    /// The shard's counters, with the longest chain measured now.
    pub(crate) fn stats(&self) -> ShardStats {
        let mut max_chain = 0;
        if let Some(b) = self.buckets() {
            for head in b.heads() {
                let mut len = 0;
                walk(head, |_, _| {
                    len += 1;
                    false
                });
                max_chain = max_chain.max(len);
            }
        }
        let s = self.shard;
        ShardStats {
            count: s.count(),
            bytes: s.bytes.load(Ordering::Relaxed),
            buckets: s.nbuckets(),
            grows: s.grows.load(Ordering::Relaxed),
            shrinks: s.shrinks.load(Ordering::Relaxed),
            retries: s.retries.load(Ordering::Relaxed),
            max_chain,
        }
    }
}

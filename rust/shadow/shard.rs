// SPDX-License-Identifier: GPL-2.0

//! One shard of the shadow-variable table: cache-line buckets that readers never wait for.
//!
//! C header: [include/linux/livepatch.h](srctree/include/linux/livepatch.h) (the semantics);
//! the kernel's own table is `kernel/livepatch/shadow.c`.
//!
//! A shard is one lock and an *array* of 64-byte [`Line`]s. A line holds [`SLOTS`] pointers to
//! entries (a shadow variable's header, then its data), a 16-bit tag of each entry's hash, and
//! an overflow count. An entry lives in the first line with a free slot, probing forward from
//! its *home* line (open addressing by lines); a line's overflow count is the number of entries
//! whose probe passed it. A lookup reads the home line, compares the tags, follows the one
//! pointer whose tag matches to check the exact key, and goes on to the next line only while
//! the overflow count says that some entry lives further on.
//!
//! Entries never move. Writers change a slot with one atomic store under the shard's lock, and
//! a resize does not relink anything: it builds a second array beside the published one,
//! putting pointers to the same entries in it a few lines per write (*migration*), and publishes
//! it with one pointer store when every line was copied. Until then writers keep both arrays
//! exact; afterwards nobody writes the old array again, and it is freed after a grace period.
//! So a reader sees one array, every slot of which holds a live entry, null, or (until a grace
//! period ends) an entry just removed: a lookup never retries and never waits, which makes it
//! safe in any context, NMI included (see `Documentation/livepatch/rust-klp-shadow.rst`).
//!
//! This file and `table.rs` are compiled into the kernel module and into the host test crate
//! (`rust/shadow/host`). They reach the kernel only through `crate::platform` (allocation, RCU,
//! the lock) and `crate::sync` (atomics, loom's on the host), which each crate provides. All the
//! `unsafe` code of the table's logic is in this file; `table.rs` has none.

use crate::platform::{self, Dtor, Env, Gfp, RcuGuard, RcuHead, ShardGuard, ShardLock};
use crate::sync::{AtomicBool, AtomicPtr, AtomicU16, AtomicU32, AtomicUsize, Ordering};
use core::cell::UnsafeCell;
use core::mem::{align_of, needs_drop, offset_of, size_of};
use core::ptr::{self, NonNull};

/// The guaranteed alignment of the data of every shadow variable, in bytes.
pub(crate) const DATA_ALIGN: usize = 16;

/// Padding that makes room to align the data when the allocator only guarantees `MIN_ALIGN`.
const PAD: usize = DATA_ALIGN - platform::MIN_ALIGN;

const _: () = assert!(DATA_ALIGN.is_power_of_two() && platform::MIN_ALIGN <= DATA_ALIGN);
const _: () = assert!(align_of::<Entry>() <= platform::MIN_ALIGN);

/// The header of a shadow variable; its data follows right after it, aligned to [`DATA_ALIGN`].
///
/// The header is placed `pad` bytes into its allocation, so that the data starts at a fixed
/// offset from it ([`HDR`]) however the allocator aligned the allocation.
///
/// # Invariants
///
/// - `obj`, `id`, `size` and `pad` never change.
/// - The memory of an entry that was in a published array is freed only after an RCU grace
///   period that started after it was removed from every array.
#[repr(C)]
pub(crate) struct Entry {
    obj: usize,
    id: usize,
    /// The data size.
    size: u32,
    /// The bytes of the allocation in front of the header.
    pad: u32,
    /// After removal: the encoded destructor to run after the grace period (0 for none).
    dtor: AtomicUsize,
    /// Used by `call_rcu` once the entry is removed.
    rcu: UnsafeCell<RcuHead>,
}

/// Size of the header, and offset of the data from it.
const HDR: usize = size_of::<Entry>();

const _: () = assert!(HDR % DATA_ALIGN == 0);

impl Entry {
    /// The data of the shadow variable at `e`, right after its header.
    ///
    /// # Safety
    ///
    /// `e` points to an entry made by `NewEntry::new` that is not freed yet, with the provenance
    /// of its allocation (a pointer from the allocation or from a slot, not from a reference).
    #[inline(always)]
    unsafe fn data_of(e: NonNull<Entry>) -> NonNull<u8> {
        // SAFETY: the data is part of the entry's allocation (see `NewEntry::new`), which `e`
        // may reach (contract), so the result stays inside it and is not null.
        unsafe { NonNull::new_unchecked(e.as_ptr().cast::<u8>().add(HDR)) }
    }

    /// The start of the allocation of the entry at `e`.
    ///
    /// # Safety
    ///
    /// As for [`Entry::data_of`].
    unsafe fn alloc_of(e: NonNull<Entry>) -> NonNull<u8> {
        // SAFETY: `e` is an initialised entry `pad` bytes into its allocation, whose start is
        // not null and which `e` may reach (contract).
        unsafe { NonNull::new_unchecked(e.as_ptr().cast::<u8>().sub(e.as_ref().pad as usize)) }
    }

    /// The data size.
    fn size(&self) -> usize {
        self.size as usize
    }

    fn matches(&self, obj: usize, id: usize) -> bool {
        self.obj == obj && self.id == id
    }
}

/// log2 of the number of shards of a table (two shards under loom, to keep its state space
/// small).
pub(crate) const SHARD_BITS: u32 = if cfg!(loom) { 1 } else { 6 };

/// Hashes `<obj, id>` to 64 bits with one multiply (Fibonacci hashing).
///
/// Object pointers differ in their low bits and ids are small integers, so the id is rotated
/// into the high half before the multiply, where it does not cancel out against the object's
/// bits. The product's top bits depend on every bit of the key: they select the shard, then the
/// line. Bits 32-47 are the tag, which separates the keys that share a line: they depend on the
/// object's low 48 bits and the id's low 16.
#[inline(always)]
pub(crate) fn hash(obj: usize, id: usize) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    ((obj as u64) ^ (id as u64).rotate_left(32)).wrapping_mul(K)
}

fn tag_of(hash: u64) -> u16 {
    (hash >> 32) as u16
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
    platform::max_alloc()
        .saturating_sub(HDR + PAD)
        .min(u32::MAX as usize)
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
        let (bytes, aligned) = platform::alloc_size(HDR + body, DATA_ALIGN);
        // The header at the start if the allocation is `DATA_ALIGN`-aligned; otherwise at most
        // `PAD` bytes further.
        let bytes = if aligned { bytes } else { HDR + PAD + body };
        let mem = platform::alloc_zeroed(bytes, gfp).ok_or(AllocFail::NoMem)?;
        let pad = (mem.as_ptr() as usize).wrapping_neg() & (DATA_ALIGN - 1);
        if pad + HDR + body > bytes {
            // An allocator that promised `DATA_ALIGN` and did not keep it; never expected.
            // SAFETY: just allocated, nothing refers to it.
            unsafe { platform::free(mem) };
            return Err(AllocFail::NoMem);
        }
        // SAFETY: `pad + HDR <= bytes`: the header is inside the allocation.
        let entry = unsafe { NonNull::new_unchecked(mem.as_ptr().add(pad)) }.cast::<Entry>();
        // SAFETY: `entry` is inside a fresh allocation with `HDR` bytes after it, aligned to
        // `MIN_ALIGN` (the allocation and `pad` both are), which is enough for `Entry` (asserted
        // above). `size` fits in `u32` (`max_size`), `pad` is less than `DATA_ALIGN`.
        unsafe {
            entry.as_ptr().write(Entry {
                obj,
                id,
                size: size as u32,
                pad: pad as u32,
                dtor: AtomicUsize::new(0),
                rcu: UnsafeCell::new(platform::new_rcu_head()),
            })
        };
        // INVARIANT: initialised above, not shared.
        Ok(Self(entry))
    }

    /// The data of the new variable (zeroed).
    pub(crate) fn data(&self) -> NonNull<u8> {
        // SAFETY: `self.0` comes from the allocation and is alive (type invariant).
        unsafe { Entry::data_of(self.0) }
    }

    fn into_raw(self) -> NonNull<Entry> {
        let p = self.0;
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
    let mem = unsafe { Entry::alloc_of(e) };
    // SAFETY: per the function's contract.
    unsafe {
        ptr::drop_in_place(e.as_ptr());
        platform::free(mem);
    }
}

/// RCU callback: runs a removed entry's deferred destructor, then frees it.
///
/// # Safety
///
/// `head` is the `rcu` field of a removed entry, passed to `call_rcu` once, after whose grace
/// period no reader can still see the entry.
unsafe extern "C" fn reclaim_entry(head: *mut RcuHead) {
    // SAFETY: `head` is the `rcu` field of an `Entry` (contract), so this is the entry.
    let e =
        unsafe { NonNull::new_unchecked(head.byte_sub(offset_of!(Entry, rcu)).cast::<Entry>()) };
    // SAFETY: the entry is still allocated until `free_entry` below; readers are gone.
    let entry = unsafe { e.as_ref() };
    // SAFETY: `retire` set `dtor` to 0 or to `Dtor::into_word()` before `call_rcu`.
    if let Some(dtor) = unsafe { Dtor::from_word(entry.dtor.load(Ordering::Relaxed)) } {
        // SAFETY: `e` is alive, with its allocation's provenance (from `head`).
        dtor.call(entry.obj, unsafe { Entry::data_of(e) });
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

/// The slots of a line.
pub(crate) const SLOTS: usize = 6;

/// One bucket: a cache line of entry pointers, their tags, which of them are used, and an
/// overflow count.
///
/// A slot is free when its pointer is null; its tag is then meaningless. `meta` has one bit per
/// used slot (set after the slot is filled, cleared when it is emptied) and, above them, the
/// overflow count: the entries that live in a later line although their probe started here or
/// before. Readers load `meta` once, compare the tags of the used slots only and dereference
/// only the pointer of a matching tag, so a hit reads this line and the entry (header and data
/// share the entry's first line), a miss usually this line only, and a miss on an empty line
/// costs one load.
#[repr(C, align(64))]
pub(crate) struct Line {
    slots: [AtomicPtr<Entry>; SLOTS],
    tags: [AtomicU16; SLOTS],
    meta: AtomicU32,
}

/// The used-slot bits of [`Line::meta`].
const USED: u32 = (1 << SLOTS) - 1;

/// The overflow count's unit in [`Line::meta`]: it has 26 bits, more than the entries of the
/// largest shard ([`MAX_LINES`] times [`SLOTS`]).
const OVF_ONE: u32 = 1 << SLOTS;

const _: () = assert!((MAX_LINES * SLOTS) as u64 <= (u32::MAX / OVF_ONE) as u64);

#[cfg(not(loom))]
const _: () = assert!(size_of::<Line>() == 64);

impl Line {
    fn new() -> Self {
        Self {
            slots: core::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
            tags: core::array::from_fn(|_| AtomicU16::new(0)),
            meta: AtomicU32::new(0),
        }
    }

    /// Whether an entry lives in a later line although its probe passed this one (racy unless
    /// locked).
    fn overflows(&self) -> bool {
        self.meta.load(Ordering::Relaxed) >= OVF_ONE
    }

    /// Adds `d` (wrapping) to `meta`; under the shard's lock, the only writer. Release: a reader
    /// that sees a used bit sees the slot and tag written before it.
    fn meta_add(&self, d: u32) {
        self.meta.store(
            self.meta.load(Ordering::Relaxed).wrapping_add(d),
            Ordering::Release,
        );
    }
}

/// A free slot of an array where a new entry goes: slot `slot` of line `line`, `dist` lines
/// after the entry's home line.
#[derive(Clone, Copy, Debug)]
struct FreeSlot {
    line: usize,
    slot: usize,
    dist: usize,
}

/// Looks `<obj, id>`, tagged `tag`, up in the slots of `line` that `meta` (its `meta`, loaded
/// with `Acquire`) shows used; returns the entry (the pointer loaded from the slot, which
/// carries the provenance of the entry's whole allocation, data included) and its slot.
///
/// # Safety
///
/// The entries `line` points to are alive while the caller uses the result (as for
/// [`ArrayRef::find`]).
#[inline(always)]
unsafe fn scan(
    line: &Line,
    meta: u32,
    tag: u16,
    obj: usize,
    id: usize,
) -> Option<(NonNull<Entry>, usize)> {
    let mut used = meta & USED;
    while used != 0 {
        let s = used.trailing_zeros() as usize;
        used &= used - 1;
        let (Some(t), Some(slot)) = (line.tags.get(s), line.slots.get(s)) else {
            break;
        };
        if t.load(Ordering::Relaxed) != tag {
            continue;
        }
        // Acquire: the entry's header (and its data) as written before its publication.
        let p = slot.load(Ordering::Acquire);
        let Some(e) = NonNull::new(p) else {
            continue;
        };
        // SAFETY: a non-null slot points to an entry that is alive (contract).
        if unsafe { e.as_ref() }.matches(obj, id) {
            return Some((e, s));
        }
    }
    None
}

/// A published or retiring array of lines, as one word: the address of its first line (aligned
/// to 64 bytes) with 63 minus log2 of its line count in the low 6 bits (the shift that takes a
/// hash to its home line: see [`ArrayRef::home`]), so that readers load both with one atomic
/// load.
#[derive(Clone, Copy)]
struct ArrayRef {
    lines: NonNull<Line>,
    shift: u32,
}

/// The mask of the line-count bits of an encoded array pointer.
const SHIFT_MASK: usize = 63;

const _: () = assert!(align_of::<Line>() > SHIFT_MASK);

impl ArrayRef {
    fn encode(self) -> *mut Line {
        // `wrapping_byte_add` keeps the pointer's provenance; the low bits are free (aligned).
        self.lines
            .as_ptr()
            .wrapping_byte_add(SHIFT_MASK - self.shift as usize)
    }

    #[inline(always)]
    fn decode(p: *mut Line) -> Option<Self> {
        let low = (p as usize) & SHIFT_MASK;
        let lines = NonNull::new(p.wrapping_byte_sub(low))?;
        Some(Self {
            lines,
            shift: (SHIFT_MASK - low) as u32,
        })
    }

    fn len(self) -> usize {
        1 << self.shift
    }

    /// The home line of `hash`: the `shift` bits right below those that chose the shard. (Shifted
    /// by one first, so that the second shift, by the encoded `63 - shift`, is less than 64 even
    /// for an array of one line; the compiler folds `63 - shift` back into the encoded bits.)
    #[inline(always)]
    fn home(self, hash: u64) -> usize {
        (((hash << SHARD_BITS) >> 1) >> (SHIFT_MASK as u32 - self.shift)) as usize
    }

    /// Line `i` (taken modulo the length).
    ///
    /// # Safety
    ///
    /// The array is alive for `'a`: published and read inside an RCU read-side critical section
    /// that `'a` does not outlive, or owned or locked by the caller for `'a`.
    unsafe fn line<'a>(self, i: usize) -> &'a Line {
        // SAFETY: `i & (len - 1) < len` lines were initialised by `NewArray::new` in one
        // allocation whose provenance `lines` carries; alive per the contract.
        unsafe { &*self.lines.as_ptr().add(i & (self.len() - 1)) }
    }

    /// Line `i`, which is less than the length.
    ///
    /// # Safety
    ///
    /// As for [`ArrayRef::line`], and `i < self.len()`.
    #[inline(always)]
    unsafe fn line_at<'a>(self, i: usize) -> &'a Line {
        debug_assert!(i < self.len());
        // SAFETY: `i < len` lines were initialised by `NewArray::new` in one allocation whose
        // provenance `lines` carries; alive per the contract.
        unsafe { &*self.lines.as_ptr().add(i) }
    }

    /// Looks `<obj, id>` up; returns its entry and where it is (line, slot).
    ///
    /// # Safety
    ///
    /// As for [`ArrayRef::line`]; and the entries it points to are alive for `'a` (they are
    /// freed only after a grace period, or the caller holds the lock).
    #[inline(always)]
    unsafe fn find(
        self,
        hash: u64,
        obj: usize,
        id: usize,
    ) -> Option<(NonNull<Entry>, usize, usize)> {
        let (tag, home) = (tag_of(hash), self.home(hash));
        // SAFETY: `home < len`; per the function's contract.
        let line = unsafe { self.line_at(home) };
        let meta = line.meta.load(Ordering::Acquire);
        // SAFETY: per the function's contract.
        if let Some((e, s)) = unsafe { scan(line, meta, tag, obj, id) } {
            return Some((e, home, s));
        }
        if meta < OVF_ONE {
            return None;
        }
        // SAFETY: per the function's contract.
        unsafe { self.find_from(home, 1, tag, obj, id) }
    }

    /// [`ArrayRef::find`] for readers, who need the entry's data only, inlined into the lookup.
    ///
    /// An empty home line that nothing overflowed past returns before anything else is computed;
    /// the lines after the home line, which a lookup needs only when an entry overflowed past it,
    /// are read out of line ([`ArrayRef::get_after`]): the fast path fits in few registers.
    ///
    /// # Safety
    ///
    /// As for [`ArrayRef::find`].
    #[inline(always)]
    unsafe fn get(self, hash: u64, obj: usize, id: usize) -> Option<NonNull<u8>> {
        let home = self.home(hash);
        // SAFETY: `home < len`; per the function's contract.
        let line = unsafe { self.line_at(home) };
        // Acquire: the slots and tags of the used bits it shows.
        let meta = line.meta.load(Ordering::Acquire);
        if meta == 0 {
            return None;
        }
        // SAFETY: per the function's contract.
        if let Some((e, _)) = unsafe { scan(line, meta, tag_of(hash), obj, id) } {
            // SAFETY: `e` is alive (contract).
            return Some(unsafe { Entry::data_of(e) });
        }
        // Loaded again rather than kept in a register across the scan: an entry whose probe
        // passes the home line keeps its overflow count non-zero for as long as it lives.
        if !line.overflows() {
            return None;
        }
        // SAFETY: per the function's contract.
        unsafe { Self::get_after(self.encode(), hash, obj, id) }
    }

    /// [`ArrayRef::get`] in the lines after the home line, of the array encoded as `array` (passed
    /// as one word, so that the caller keeps few registers alive across its scan).
    ///
    /// # Safety
    ///
    /// As for [`ArrayRef::find`].
    #[inline(never)]
    unsafe fn get_after(array: *mut Line, hash: u64, obj: usize, id: usize) -> Option<NonNull<u8>> {
        let a = Self::decode(array)?;
        // SAFETY: per the function's contract.
        let (e, _, _) = unsafe { a.find_from(a.home(hash), 1, tag_of(hash), obj, id) }?;
        // SAFETY: `e` is alive (contract).
        Some(unsafe { Entry::data_of(e) })
    }

    /// [`ArrayRef::find`] from the `first`-th line after `home` on (0: the home line), with the
    /// hash's `tag`.
    ///
    /// # Safety
    ///
    /// As for [`ArrayRef::find`].
    unsafe fn find_from(
        self,
        home: usize,
        first: usize,
        tag: u16,
        obj: usize,
        id: usize,
    ) -> Option<(NonNull<Entry>, usize, usize)> {
        // At most every line once, even if writers keep every overflow count non-zero.
        for k in first..self.len() {
            let i = (home + k) & (self.len() - 1);
            // SAFETY: per the function's contract.
            let line = unsafe { self.line_at(i) };
            let meta = line.meta.load(Ordering::Acquire);
            // SAFETY: per the function's contract.
            if let Some((e, s)) = unsafe { scan(line, meta, tag, obj, id) } {
                return Some((e, i, s));
            }
            if meta < OVF_ONE {
                return None;
            }
        }
        None
    }

    /// The free slot a new entry hashed `hash` goes to: the first free slot of the first line,
    /// from the `first`-th line after the home line on, that has one.
    ///
    /// # Safety
    ///
    /// The caller holds the shard's lock (under which a slot's used bit says whether it holds an
    /// entry), and the array is the shard's (published, or being built).
    unsafe fn free_slot(self, hash: u64, first: usize) -> Option<FreeSlot> {
        let home = self.home(hash);
        (first..self.len()).find_map(|k| {
            let i = (home + k) & (self.len() - 1);
            // SAFETY: per the function's contract.
            let free = !unsafe { self.line_at(i) }.meta.load(Ordering::Relaxed) & USED;
            (free != 0).then(|| FreeSlot {
                line: i,
                slot: free.trailing_zeros() as usize,
                dist: k,
            })
        })
    }

    /// [`ArrayRef::find`], and where `<obj, id>` would go if it is not there: returns its entry,
    /// or the free slot for it (`None` if the array is full), which is usually on the home line
    /// the lookup has just read.
    ///
    /// # Safety
    ///
    /// As for [`ArrayRef::free_slot`], and the entries are alive.
    #[inline(always)]
    unsafe fn find_or_free(
        self,
        hash: u64,
        obj: usize,
        id: usize,
    ) -> Result<NonNull<Entry>, Option<FreeSlot>> {
        // SAFETY: per the function's contract.
        match unsafe { self.find(hash, obj, id) } {
            Some((e, _, _)) => Ok(e),
            // SAFETY: per the function's contract.
            None => Err(unsafe { self.free_slot(hash, 0) }),
        }
    }

    /// Puts `e` (hashed `hash`) in the free slot `spot` of this array, counting it in the
    /// overflow of the lines it passes.
    ///
    /// # Safety
    ///
    /// As for [`ArrayRef::free_slot`]; `spot` comes from this array (`free_slot` or
    /// `find_or_free` for `hash`) and its slot is still free; `e` is initialised and stays alive
    /// while it is in the array.
    unsafe fn place_at(self, spot: FreeSlot, hash: u64, e: NonNull<Entry>) {
        let home = self.home(hash);
        for j in 0..spot.dist {
            // SAFETY: per the function's contract.
            unsafe { self.line(home + j) }.meta_add(OVF_ONE);
        }
        // SAFETY: per the function's contract: `spot.line < len`.
        let line = unsafe { self.line_at(spot.line) };
        line.tags[spot.slot].store(tag_of(hash), Ordering::Relaxed);
        // Release: a reader that loads the pointer sees the initialised entry (and the data its
        // constructor wrote).
        line.slots[spot.slot].store(e.as_ptr(), Ordering::Release);
        line.meta_add(1 << spot.slot);
    }

    /// Puts `e` (hashed `hash`) in the first free slot from its home line on
    /// ([`ArrayRef::free_slot`], [`ArrayRef::place_at`]); returns the line, or `None` if the
    /// array is full.
    ///
    /// # Safety
    ///
    /// As for [`ArrayRef::place_at`], without a spot.
    unsafe fn place(self, hash: u64, e: NonNull<Entry>) -> Option<usize> {
        // SAFETY: per the function's contract.
        let spot = unsafe { self.free_slot(hash, 0) }?;
        // SAFETY: per the function's contract; `spot` was just found free in this array.
        unsafe { self.place_at(spot, hash, e) };
        Some(spot.line)
    }

    /// Empties slot `s` of line `at`, which holds an entry hashed `hash`, and uncounts it from the
    /// overflow of the lines before it.
    ///
    /// # Safety
    ///
    /// As for [`ArrayRef::place`]; the slot holds the entry of `hash`.
    unsafe fn unplace(self, hash: u64, at: usize, s: usize) {
        let home = self.home(hash);
        let dist = at.wrapping_sub(home) & (self.len() - 1);
        // SAFETY: per the function's contract.
        let line = unsafe { self.line(at) };
        line.meta_add((1u32 << s).wrapping_neg());
        line.slots[s].store(ptr::null_mut(), Ordering::Release);
        for j in 0..dist {
            // SAFETY: as above.
            unsafe { self.line(home + j) }.meta_add(OVF_ONE.wrapping_neg());
        }
    }

    /// Where the entry `e` (hashed `hash`) is, if in this array.
    ///
    /// # Safety
    ///
    /// As for [`ArrayRef::place`].
    unsafe fn position(self, hash: u64, e: NonNull<Entry>) -> Option<(usize, usize)> {
        let home = self.home(hash);
        for k in 0..self.len() {
            // SAFETY: per the function's contract.
            let line = unsafe { self.line(home + k) };
            if let Some(s) = line
                .slots
                .iter()
                .position(|p| p.load(Ordering::Relaxed) == e.as_ptr())
            {
                return Some(((home + k) & (self.len() - 1), s));
            }
            if !line.overflows() {
                break;
            }
        }
        None
    }
}

/// What retires an array once it is replaced: an RCU callback head and the array, allocated
/// with the array (so that retiring needs no allocation, and any number of replaced arrays can
/// wait for their grace periods at once).
#[repr(C)]
struct RetireRec {
    rcu: UnsafeCell<RcuHead>,
    /// The array ([`ArrayRef::encode`]).
    array: AtomicPtr<Line>,
}

/// An array of lines with its [`RetireRec`].
///
/// # Invariants
///
/// `rec` is an initialised `RetireRec` from `platform::alloc_zeroed` whose `array` is `a`.
#[derive(Clone, Copy)]
struct OwnedArray {
    a: ArrayRef,
    rec: NonNull<RetireRec>,
}

impl OwnedArray {
    /// Frees the array and its record at once.
    ///
    /// # Safety
    ///
    /// Nothing refers to the array any more.
    unsafe fn free(self) {
        // SAFETY: per the function's contract; the record is the array's (type invariant) and
        // is not queued for RCU.
        unsafe {
            free_array(self.a);
            ptr::drop_in_place(self.rec.as_ptr());
            platform::free(self.rec.cast());
        }
    }

    /// Frees the array and its record after a grace period.
    ///
    /// # Safety
    ///
    /// No reader that starts from now on can find the array, no writer uses it any more, and
    /// it is retired once.
    unsafe fn retire(self, env: &Env) {
        // SAFETY: per the function's contract; the record is the array's (type invariant).
        unsafe { env.call_rcu(self.rec.as_ref().rcu.get(), reclaim_array) };
    }
}

/// RCU callback: frees a replaced array and its record.
///
/// # Safety
///
/// `head` is the `rcu` field of the `RetireRec` of an array passed to `call_rcu` by
/// [`OwnedArray::retire`], after whose grace period no reader can still see the array.
unsafe extern "C" fn reclaim_array(head: *mut RcuHead) {
    // SAFETY: `head` is the first field of a `RetireRec` (contract; `repr(C)`, and `UnsafeCell`
    // is `repr(transparent)`).
    let rec = unsafe { NonNull::new_unchecked(head.cast::<RetireRec>()) };
    // SAFETY: the record stays allocated until freed below.
    let p = unsafe { rec.as_ref() }.array.load(Ordering::Relaxed);
    if let Some(a) = ArrayRef::decode(p) {
        // SAFETY: the grace period after its replacement is over (contract).
        unsafe { OwnedArray { a, rec }.free() };
    }
}

/// A new, empty array of lines, not yet published; freed when dropped.
pub(crate) struct NewArray(OwnedArray);

// SAFETY: an exclusively owned allocation of atomics.
unsafe impl Send for NewArray {}

impl NewArray {
    /// Allocates an empty array of `n` lines (a power of two, at most [`MAX_LINES`]), and its
    /// record.
    pub(crate) fn new(n: usize, gfp: Gfp) -> Option<Self> {
        debug_assert!(n.is_power_of_two() && n <= MAX_LINES);
        let rec = platform::alloc_zeroed(size_of::<RetireRec>(), gfp)?.cast::<RetireRec>();
        let Some(mem) = platform::alloc_table_zeroed(n * size_of::<Line>(), gfp) else {
            // SAFETY: just allocated, nothing refers to it.
            unsafe { platform::free(rec.cast()) };
            return None;
        };
        if mem.as_ptr() as usize & (align_of::<Line>() - 1) != 0 {
            // Power-of-two sizes are naturally aligned (kmalloc, vmalloc, the host's); this is
            // never expected, but a misaligned array would corrupt the encoding: refuse it.
            // SAFETY: just allocated, nothing refers to them.
            unsafe {
                platform::free_table(mem);
                platform::free(rec.cast());
            }
            return None;
        }
        let lines = mem.cast::<Line>();
        for i in 0..n {
            // SAFETY: `mem` has room for `n` lines and is aligned for them (checked above).
            unsafe { lines.as_ptr().add(i).write(Line::new()) };
        }
        let a = ArrayRef {
            lines,
            shift: n.trailing_zeros(),
        };
        // SAFETY: `rec` is a fresh allocation big enough for a `RetireRec` and aligned to
        // `MIN_ALIGN`, which is enough for it.
        unsafe {
            rec.as_ptr().write(RetireRec {
                rcu: UnsafeCell::new(platform::new_rcu_head()),
                array: AtomicPtr::new(a.encode()),
            })
        };
        // INVARIANT: the record holds the array.
        Some(Self(OwnedArray { a, rec }))
    }

    /// Its line count.
    pub(crate) fn len(&self) -> usize {
        self.0.a.len()
    }

    fn into_raw(self) -> OwnedArray {
        let a = self.0;
        core::mem::forget(self);
        a
    }
}

impl Drop for NewArray {
    fn drop(&mut self) {
        // SAFETY: never published, so nothing else refers to it.
        unsafe { self.0.free() };
    }
}

const _: () = assert!(align_of::<RetireRec>() <= platform::MIN_ALIGN);

/// Drops and frees the lines of an array.
///
/// # Safety
///
/// `a` comes from `NewArray::new` and nothing refers to it any more.
unsafe fn free_array(a: ArrayRef) {
    // SAFETY: per the function's contract; the array has `len` initialised lines.
    unsafe {
        ptr::drop_in_place(ptr::slice_from_raw_parts_mut(a.lines.as_ptr(), a.len()));
        platform::free_table(a.lines.cast());
    }
}

/// The largest array of a shard: 2^22 lines (256 MiB, up to 2^24 variables at the load a shard
/// grows at).
pub(crate) const MAX_LINES: usize = 1 << 22;

/// A shard grows when it has more than this many variables per line (of [`SLOTS`]).
pub(crate) const GROW_LOAD: usize = 4;

/// Lines copied per write while a resize migrates.
pub(crate) const MIGRATE_STEP: usize = 8;

/// The number of lines for `count` variables: a load of about 2 per line.
pub(crate) fn lines_for(count: usize, min: usize) -> usize {
    (count / 2)
        .checked_next_power_of_two()
        .unwrap_or(MAX_LINES)
        .clamp(min, MAX_LINES)
}

/// The fields readers use, on a cache line of their own.
#[repr(C, align(64))]
struct ReadMostly {
    /// The published array ([`ArrayRef::encode`]); null before `init` and after `teardown`.
    cur: AtomicPtr<Line>,
}

/// Counters of a shard.
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct ShardStats {
    /// Live variables.
    pub(crate) count: usize,
    /// Their data bytes.
    pub(crate) bytes: usize,
    /// Lines of the published array.
    pub(crate) lines: usize,
    /// Resizes that made the array bigger.
    pub(crate) grows: usize,
    /// Resizes that made the array smaller.
    pub(crate) shrinks: usize,
    /// Resizes given up because the new array filled up.
    pub(crate) aborts: usize,
    /// Bytes of arrays: the published one and one being built.
    pub(crate) array_bytes: usize,
    /// The longest probe, in lines.
    pub(crate) max_probe: usize,
    /// A resize is migrating.
    pub(crate) migrating: usize,
}

/// What only writers use, under the lock.
struct WriterState {
    /// The published array with its record (`rd.cur` is its encoding).
    cur: Option<OwnedArray>,
    /// The array being built by a resize, and the number of lines of the published array
    /// copied into it so far.
    next: Option<(OwnedArray, usize)>,
    bytes: usize,
    grows: usize,
    shrinks: usize,
    aborts: usize,
}

/// One shard.
///
/// # Invariants
///
/// - `rd.cur` is null or the encoding of `ws.cur`'s array, published; both change only under
///   `lock`.
/// - Every live variable of the shard is in exactly one slot of the published array; while a
///   resize migrates, also in one slot of the array being built if its line in the published
///   array was copied already. No other slot of either array is non-null.
/// - `ws` is accessed only under `lock`.
#[repr(C, align(64))]
pub(crate) struct Shard {
    rd: ReadMostly,
    lock: ShardLock,
    count: AtomicUsize,
    /// The smallest line count (set once, by `init_lines`).
    min: AtomicUsize,
    ws: UnsafeCell<WriterState>,
    /// A resize migrates (`ws.next` is set); read without the lock to decide whether to
    /// allocate an array before taking it.
    resizing: AtomicBool,
}

// SAFETY: `ws` is only used under the lock (type invariant); the rest is atomics and the lock.
unsafe impl Sync for Shard {}
// SAFETY: as above; nothing in it is tied to a thread.
unsafe impl Send for Shard {}

macro_rules! new_shard {
    () => {
        Shard {
            rd: ReadMostly {
                cur: AtomicPtr::new(ptr::null_mut()),
            },
            lock: ShardLock::new(),
            count: AtomicUsize::new(0),
            min: AtomicUsize::new(1),
            ws: UnsafeCell::new(WriterState {
                cur: None,
                next: None,
                bytes: 0,
                grows: 0,
                shrinks: 0,
                aborts: 0,
            }),
            resizing: AtomicBool::new(false),
        }
    };
}

impl Shard {
    /// An empty shard without an array; `init` must run before it is used.
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        new_shard!()
    }

    /// An empty shard without an array (loom's atomics have no `const` constructor).
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        new_shard!()
    }

    /// Initialises the lock; before anything else.
    pub(crate) fn init_lock(&self) {
        self.lock.init();
    }

    /// Gives the shard its first `min` (a power of two) lines.
    pub(crate) fn init_lines(&self, env: &Env, min: usize, gfp: Gfp) -> Result<(), AllocFail> {
        let new = NewArray::new(min, gfp).ok_or(AllocFail::NoMem)?;
        let mut locked = self.lock();
        self.min.store(min, Ordering::Relaxed);
        let new = new.into_raw();
        if let Some(old) = locked.ws().cur.replace(new) {
            // Initialised twice: the first array was never used.
            // SAFETY: locked; readers may have seen it, so it goes after a grace period.
            unsafe { old.retire(env) };
        }
        self.rd.cur.store(new.a.encode(), Ordering::Release);
        Ok(())
    }

    /// Looks `<obj, id>` up without locking, retrying or waiting; returns its data.
    #[inline(always)]
    pub(crate) fn lookup(
        &self,
        hash: u64,
        obj: usize,
        id: usize,
        _rcu: &RcuGuard<'_>,
    ) -> Option<NonNull<u8>> {
        let a = ArrayRef::decode(self.rd.cur.load(Ordering::Acquire))?;
        // SAFETY: a published array is freed only after a grace period that started after it was
        // replaced, and so is an entry after its removal (type invariants); `_rcu` proves that we
        // are inside a read-side critical section, which such a grace period waits for.
        unsafe { a.get(hash, obj, id) }
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

    /// The number of lines of the published array (racy unless locked).
    pub(crate) fn lines(&self) -> usize {
        ArrayRef::decode(self.rd.cur.load(Ordering::Relaxed)).map_or(0, ArrayRef::len)
    }

    /// Calls `f(obj, id, size)` for every variable of the published array, without the lock: a
    /// variable added or removed meanwhile may be seen or not.
    pub(crate) fn visit_rcu(&self, _rcu: &RcuGuard<'_>, mut f: impl FnMut(usize, usize, usize)) {
        let Some(a) = ArrayRef::decode(self.rd.cur.load(Ordering::Acquire)) else {
            return;
        };
        for i in 0..a.len() {
            // SAFETY: as in `lookup`.
            let line = unsafe { a.line(i) };
            for slot in &line.slots {
                // SAFETY: as in `lookup`.
                if let Some(e) = unsafe { slot.load(Ordering::Acquire).as_ref() } {
                    f(e.obj, e.id, e.size());
                }
            }
        }
    }

    /// The longest probe of the published array, in lines, without the lock.
    pub(crate) fn max_probe(&self, _rcu: &RcuGuard<'_>) -> usize {
        let Some(a) = ArrayRef::decode(self.rd.cur.load(Ordering::Acquire)) else {
            return 0;
        };
        let (mut run, mut max) = (0, 0);
        // A run of lines with overflow; walking twice covers the runs that wrap around.
        for i in 0..2 * a.len() {
            // SAFETY: as in `lookup`.
            if unsafe { a.line(i) }.overflows() {
                run += 1;
                max = max.max(run.min(a.len() - 1));
            } else {
                run = 0;
            }
        }
        max + 1
    }
}

/// A locked shard.
///
/// While it exists no entry of the shard can be removed or freed by anyone else, and no array is
/// published or replaced, so the methods use them with plain references.
pub(crate) struct Locked<'a> {
    shard: &'a Shard,
    _guard: ShardGuard<'a>,
}

/// A free slot of the published array of a locked shard, for a new entry hashed `hash`
/// ([`Locked::find_or_spot`], [`Locked::spot`]). It borrows the lock hold mutably: nothing can
/// write to the shard between the probe that found it and [`Spot::insert`].
pub(crate) struct Spot<'l, 'a> {
    locked: &'l mut Locked<'a>,
    a: ArrayRef,
    free: FreeSlot,
    hash: u64,
}

impl Spot<'_, '_> {
    /// Makes `new` visible to readers in this slot; `new` must have the hash the spot was found
    /// for, and its `<obj, id>` must not be in the shard. Returns its data.
    pub(crate) fn insert(self, new: NewEntry) -> NonNull<u8> {
        let Spot {
            locked,
            a,
            free,
            hash,
        } = self;
        let (e, at) = (new.into_raw(), free.line);
        // SAFETY: locked since the probe that found `free` in the published array `a`, and the
        // spot's borrow kept anyone else from writing since; `e` is initialised and, once placed,
        // owned by the table until it is removed and retired.
        unsafe { a.place_at(free, hash, e) };
        // INVARIANT: a line already copied gets the entry in the new array too.
        if let Some((next, moved)) = locked.ws().next {
            // SAFETY: as above; `next` is the shard's array being built.
            if at < moved && unsafe { next.a.place(hash, e) }.is_none() {
                locked.abort_resize();
            }
        }
        // SAFETY: `e` is alive (just placed).
        let size = unsafe { e.as_ref() }.size();
        locked
            .shard
            .count
            .store(locked.shard.count() + 1, Ordering::Relaxed);
        locked.ws().bytes += size;
        // SAFETY: `e` was just placed, alive, from its allocation.
        unsafe { Entry::data_of(e) }
    }
}

impl<'a> Locked<'a> {
    fn ws(&mut self) -> &mut WriterState {
        // SAFETY: `ws` is only accessed under the lock (type invariant), which `self` holds; the
        // `&mut self` receiver makes this the only reference.
        unsafe { &mut *self.shard.ws.get() }
    }

    fn cur(&self) -> Option<ArrayRef> {
        ArrayRef::decode(self.shard.rd.cur.load(Ordering::Relaxed))
    }

    /// The data of `<obj, id>` if it is in the shard, or else the free slot an insert of it would
    /// fill (`None` if there is no room), found on the same probe.
    pub(crate) fn find_or_spot(
        &mut self,
        hash: u64,
        obj: usize,
        id: usize,
    ) -> Result<NonNull<u8>, Option<Spot<'_, 'a>>> {
        let a = self.cur().ok_or(None)?;
        // SAFETY: locked: the published array and its entries stay, used bits are exact.
        match unsafe { a.find_or_free(hash, obj, id) } {
            // SAFETY: locked: `e` is alive.
            Ok(e) => Ok(unsafe { Entry::data_of(e) }),
            Err(free) => Err(free.map(|free| Spot {
                locked: self,
                a,
                free,
                hash,
            })),
        }
    }

    /// The free slot an insert of an entry hashed `hash` would fill (`None` if there is no room).
    pub(crate) fn spot(&mut self, hash: u64) -> Option<Spot<'_, 'a>> {
        let a = self.cur()?;
        // SAFETY: locked, and the published array is the shard's.
        let free = unsafe { a.free_slot(hash, 0) }?;
        Some(Spot {
            locked: self,
            a,
            free,
            hash,
        })
    }

    /// Drops the array being built (never published: freed now, by the caller's unlock at the
    /// latest; here, as nobody can see it).
    fn abort_resize(&mut self) {
        if let Some((next, _)) = self.ws().next.take() {
            self.ws().aborts += 1;
            self.shard.resizing.store(false, Ordering::Relaxed);
            // SAFETY: never published, only this writer used it.
            unsafe { next.free() };
        }
    }

    /// Removes the entry at (`at`, `s`) of the published array `a` (hashed `hash`) and retires
    /// it.
    fn remove_at(&mut self, env: &Env, a: ArrayRef, hash: u64, at: usize, s: usize, how: Retire) {
        // SAFETY: locked; the slot holds a live entry of the shard.
        let e = unsafe { NonNull::new_unchecked(a.line(at).slots[s].load(Ordering::Relaxed)) };
        // SAFETY: locked, the slot holds the entry of `hash`.
        unsafe { a.unplace(hash, at, s) };
        if let Some((next, moved)) = self.ws().next {
            if at < moved {
                // SAFETY: locked; a copied line's entries are in `next` too (type invariant).
                if let Some((nat, ns)) = unsafe { next.a.position(hash, e) } {
                    // SAFETY: as above.
                    unsafe { next.a.unplace(hash, nat, ns) };
                }
            }
        }
        // SAFETY: the entry stays allocated until it is retired below.
        let entry = unsafe { e.as_ref() };
        self.shard
            .count
            .store(self.shard.count() - 1, Ordering::Relaxed);
        self.ws().bytes -= entry.size();
        let dtor_later = match how {
            Retire::DtorNow(dtor) => {
                if let Some(dtor) = dtor {
                    // SAFETY: `e` is alive until retired below, from its slot.
                    dtor.call(entry.obj, unsafe { Entry::data_of(e) });
                }
                None
            }
            Retire::DtorAfterGp(dtor) => dtor,
        };
        let rcu = entry.rcu.get();
        // SAFETY: `e` is in no array now, so no reader that starts from here on can find it, and
        // it is retired exactly once, here; the callback (or the allocator) frees it after a
        // grace period. `rcu` is not used by anyone else.
        unsafe {
            match dtor_later {
                Some(dtor) => {
                    entry.dtor.store(dtor.into_word(), Ordering::Relaxed);
                    env.call_rcu(rcu, reclaim_entry);
                }
                None if needs_drop::<Entry>() => env.call_rcu(rcu, reclaim_entry),
                None => env.kfree_rcu(rcu, Entry::alloc_of(e).as_ptr()),
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
        let Some(a) = self.cur() else {
            return false;
        };
        // SAFETY: locked.
        let Some((_, at, s)) = (unsafe { a.find(hash, obj, id) }) else {
            return false;
        };
        self.remove_at(env, a, hash, at, s, how);
        true
    }

    /// Removes the variables of `id` in lines `from..from + n` of the published array; returns
    /// how many, and the line to go on from (`None` when the array is done). `from` refers to
    /// `array`, the published array of an earlier call (`None` at the start): if the array
    /// changed since, the walk starts over on the new one.
    pub(crate) fn remove_id(
        &mut self,
        env: &Env,
        id: usize,
        how: Retire,
        pos: &mut SweepPos,
        n: usize,
    ) -> (usize, bool) {
        let Some(a) = self.cur() else {
            return (0, true);
        };
        if pos.array != a.lines.as_ptr() as usize {
            *pos = SweepPos {
                array: a.lines.as_ptr() as usize,
                line: 0,
            };
        }
        let mut removed = 0;
        let end = (pos.line + n).min(a.len());
        for i in pos.line..end {
            // SAFETY: locked.
            let line = unsafe { a.line(i) };
            if line.meta.load(Ordering::Relaxed) & USED == 0 {
                continue;
            }
            for s in 0..SLOTS {
                let p = line.slots[s].load(Ordering::Relaxed);
                // SAFETY: locked: a non-null slot holds a live entry.
                let Some(e) = (unsafe { p.as_ref() }) else {
                    continue;
                };
                if e.id == id {
                    let h = hash(e.obj, e.id);
                    self.remove_at(env, a, h, i, s, how);
                    removed += 1;
                }
            }
        }
        pos.line = end;
        (removed, end == a.len())
    }

    /// The number of live variables.
    pub(crate) fn count(&self) -> usize {
        self.shard.count()
    }

    /// The line count a resize should go to, if one should start now with `extra` more
    /// variables than now: none migrates, and the load is out of bounds.
    #[inline(always)]
    pub(crate) fn wanted(&mut self, extra: usize) -> Option<usize> {
        let n = self.cur()?.len();
        let busy = self.ws().next.is_some();
        let min = self.shard.min.load(Ordering::Relaxed);
        let want = wanted_lines(self.count() + extra, n, min)?;
        (!busy).then_some(want)
    }

    /// Starts migrating into `new` if [`Locked::wanted`] (with `extra`) asks for its size; gives
    /// it back otherwise.
    pub(crate) fn start_resize(&mut self, new: NewArray, extra: usize) -> Option<NewArray> {
        if self.wanted(extra) != Some(new.len()) {
            return Some(new);
        }
        let n = self.cur().map_or(0, ArrayRef::len);
        if new.len() > n {
            self.ws().grows += 1;
        } else {
            self.ws().shrinks += 1;
        }
        self.shard.resizing.store(true, Ordering::Relaxed);
        self.ws().next = Some((new.into_raw(), 0));
        None
    }

    /// Copies up to `n` lines into the array being built, and publishes it once all are;
    /// returns whether no resize migrates any more. (Inline: every write calls it, and almost
    /// always no resize migrates.)
    #[inline(always)]
    pub(crate) fn migrate(&mut self, env: &Env, n: usize) -> bool {
        if self.ws().next.is_none() {
            return true;
        }
        self.migrate_some(env, n)
    }

    /// [`Locked::migrate`] while a resize migrates.
    #[inline(never)]
    fn migrate_some(&mut self, env: &Env, n: usize) -> bool {
        let Some((next, mut moved)) = self.ws().next else {
            return true;
        };
        let Some(cur) = self.cur() else {
            return true;
        };
        let end = (moved + n).min(cur.len());
        while moved < end {
            // SAFETY: locked; `cur` is the published array.
            let line = unsafe { cur.line(moved) };
            for slot in &line.slots {
                let Some(e) = NonNull::new(slot.load(Ordering::Relaxed)) else {
                    continue;
                };
                // SAFETY: locked: a non-null slot holds a live entry.
                let h = unsafe { hash(e.as_ref().obj, e.as_ref().id) };
                // SAFETY: locked; `next` is the array being built, `e` is live.
                if unsafe { next.a.place(h, e) }.is_none() {
                    self.abort_resize();
                    return true;
                }
            }
            moved += 1;
        }
        if moved < cur.len() {
            self.ws().next = Some((next, moved));
            return false;
        }
        self.ws().next = None;
        self.shard.resizing.store(false, Ordering::Relaxed);
        let old = self.ws().cur.replace(next);
        // Release: readers that load the new array see every slot copied into it.
        self.shard.rd.cur.store(next.a.encode(), Ordering::Release);
        if let Some(old) = old {
            // SAFETY: `old` is replaced: no reader that starts from here on can find it, and no
            // writer uses it any more; retired once, here.
            unsafe { old.retire(env) };
        }
        true
    }

    /// Calls `f(obj, id, size)` for every live variable.
    pub(crate) fn visit(&self, mut f: impl FnMut(usize, usize, usize)) {
        let Some(a) = self.cur() else { return };
        for i in 0..a.len() {
            // SAFETY: locked.
            for slot in &unsafe { a.line(i) }.slots {
                // SAFETY: locked: a non-null slot holds a live entry.
                if let Some(e) = unsafe { slot.load(Ordering::Relaxed).as_ref() } {
                    f(e.obj, e.id, e.size());
                }
            }
        }
    }

    /// Removes every variable, calling `f(obj, id, size)` for each first, and retires the
    /// arrays; the shard is left without an array.
    pub(crate) fn teardown(&mut self, env: &Env, mut f: impl FnMut(usize, usize, usize)) {
        self.abort_resize();
        self.visit(&mut f);
        let Some(a) = self.cur() else { return };
        for i in 0..a.len() {
            for s in 0..SLOTS {
                // SAFETY: locked.
                let p = unsafe { a.line(i) }.slots[s].load(Ordering::Relaxed);
                // SAFETY: locked: a non-null slot holds a live entry.
                if let Some(e) = unsafe { p.as_ref() } {
                    let h = hash(e.obj, e.id);
                    self.remove_at(env, a, h, i, s, Retire::DtorAfterGp(None));
                }
            }
        }
        self.shard.rd.cur.store(ptr::null_mut(), Ordering::Release);
        if let Some(old) = self.ws().cur.take() {
            // SAFETY: as in `migrate`: unpublished, retired once.
            unsafe { old.retire(env) };
        }
    }

    /// The shard's counters.
    pub(crate) fn stats(&mut self) -> ShardStats {
        let lines = self.cur().map_or(0, ArrayRef::len);
        let next = self.ws().next.map_or(0, |(a, _)| a.a.len());
        let count = self.shard.count();
        let ws = self.ws();
        ShardStats {
            count,
            bytes: ws.bytes,
            lines,
            grows: ws.grows,
            shrinks: ws.shrinks,
            aborts: ws.aborts,
            array_bytes: (lines + next) * size_of::<Line>(),
            max_probe: 0,
            migrating: usize::from(next != 0),
        }
    }
}

/// Where a sweep of a shard (`Locked::remove_id`) is.
#[derive(Clone, Copy, Default)]
pub(crate) struct SweepPos {
    array: usize,
    line: usize,
}

/// The line count a shard with `count` variables and `n` lines should resize to, if any: grow
/// when the load exceeds [`GROW_LOAD`] per line, shrink when it falls under one per two lines.
#[inline(always)]
pub(crate) fn wanted_lines(count: usize, n: usize, min: usize) -> Option<usize> {
    if count <= GROW_LOAD * n && (n <= min || count >= n / 2) {
        return None;
    }
    resize_to(count, n, min)
}

/// [`wanted_lines`] once the load is out of bounds (out of line: rare).
#[inline(never)]
fn resize_to(count: usize, n: usize, min: usize) -> Option<usize> {
    let want = lines_for(count, min);
    (want != n).then_some(want)
}

impl Shard {
    /// The line count a resize should go to if this shard had `extra` more variables, read
    /// without the lock: a hint for allocating the array before taking it.
    #[inline(always)]
    pub(crate) fn wanted_hint(&self, extra: usize) -> Option<usize> {
        if self.resizing.load(Ordering::Relaxed) {
            return None;
        }
        let min = self.min.load(Ordering::Relaxed);
        wanted_lines(self.count() + extra, self.lines(), min)
    }
}

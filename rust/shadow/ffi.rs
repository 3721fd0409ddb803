// SPDX-License-Identifier: GPL-2.0

//! The kernel edge of `rust_klp_shadow`: the C ABI, and the kernel services the table uses.
//!
//! C header: [rust/shadow/rust_klp_shadow.h](../rust_klp_shadow.h)
//!
//! This module is two things, and with `types.rs` the crate's only `unsafe` code besides the RCU
//! mechanism of `shard.rs`:
//!
//! - the crate's `platform`: what `shard.rs` and `table.rs` need from the kernel (kmalloc, RCU,
//!   the IRQ-safe shard lock, the resize work), wrapped so that their use is safe;
//! - the exported `extern "C"` functions: each converts its raw arguments once and calls the
//!   safe table. Reports that print pointers (`%p`) are made in `shadow_glue.c`, with the exact
//!   texts of `kernel/livepatch/shadow.c`.

use crate::klp_bindings as kb;
use crate::table::{self, AllocError, Mode, Retire, Table};
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ptr::{self, NonNull};
use kernel::alloc::flags::{GFP_ATOMIC, GFP_KERNEL};
use kernel::alloc::KVec;
use kernel::bindings;
use kernel::c_str;
use kernel::ffi::{c_int, c_ulong, c_void};
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::types::Opaque;

/// What `shadow_glue.c` provides to Rust (declared in `shadow_glue.h`). A `struct seq_file *`
/// is passed as `*mut c_void`.
mod glue {
    use kernel::bindings::{gfp_t, spinlock_t};
    use kernel::ffi::{c_char, c_int, c_ulong, c_void};

    extern "C" {
        pub(super) fn rks_lock_init(lock: *mut spinlock_t);
        pub(super) fn rks_lock(lock: *mut spinlock_t) -> c_ulong;
        pub(super) fn rks_unlock(lock: *mut spinlock_t, flags: c_ulong);
        pub(super) fn rks_kzalloc(size: usize, gfp: gfp_t) -> *mut c_void;
        pub(super) fn rks_table_alloc(size: usize, gfp: gfp_t) -> *mut c_void;
        pub(super) fn rks_alloc_size(size: usize, aligned: *mut bool) -> usize;
        pub(super) fn rks_kmalloc_max() -> usize;
        pub(super) fn rks_gfp_can_block(gfp: gfp_t) -> bool;
        pub(super) fn rks_schedule_resize();
        pub(super) fn rks_cancel_resize();
        pub(super) fn rks_resched_point();
        pub(super) fn rks_warn_duplicate(obj: *mut c_void, id: c_ulong);
        pub(super) fn rks_err_ctor(obj: *mut c_void, id: c_ulong, err: c_int);
        pub(super) fn rks_err_too_large(obj: *mut c_void, id: c_ulong, size: usize, max: usize);
        pub(super) fn rks_seq_id(
            m: *mut c_void,
            id: c_ulong,
            count: c_ulong,
            bytes: c_ulong,
            name: *const c_char,
        );
        pub(super) fn rks_seq_total(m: *mut c_void, count: c_ulong, bytes: c_ulong);
        pub(super) fn rks_seq_stat(m: *mut c_void, name: *const c_char, value: c_ulong);
        pub(super) fn rks_debugfs_init();
        pub(super) fn rks_debugfs_exit();
        pub(super) fn rks_module_notifier_init() -> c_int;
        pub(super) fn rks_module_notifier_exit();
    }
}

// ---------------------------------------------------------------------------------------------
// The platform of `shard.rs` and `table.rs`.
// ---------------------------------------------------------------------------------------------

/// Allocation flags (`gfp_t`), passed through from the caller.
pub(crate) type Gfp = bindings::gfp_t;

/// `gfpflags_allow_blocking()`.
pub(crate) fn gfp_can_block(gfp: Gfp) -> bool {
    // SAFETY: a pure function of its argument.
    unsafe { glue::rks_gfp_can_block(gfp) }
}

/// The alignment every `kmalloc()` allocation has (`ARCH_KMALLOC_MINALIGN`, checked at build
/// time in `shadow_glue.c`).
pub(crate) const MIN_ALIGN: usize = 8;

/// `KMALLOC_MAX_SIZE`.
pub(crate) fn max_alloc() -> usize {
    // SAFETY: returns a constant.
    unsafe { glue::rks_kmalloc_max() }
}

/// The size to `kmalloc()` for `bytes`, and whether that allocation is 16-byte aligned.
pub(crate) fn alloc_size(bytes: usize) -> (usize, bool) {
    let mut aligned = false;
    // SAFETY: `aligned` is a valid `bool` to write.
    let size = unsafe { glue::rks_alloc_size(bytes, &mut aligned) };
    (size, aligned)
}

/// `kzalloc()`.
pub(crate) fn alloc_zeroed(bytes: usize, gfp: Gfp) -> Option<NonNull<u8>> {
    // SAFETY: `kzalloc()` may be called with any size and flags.
    NonNull::new(unsafe { glue::rks_kzalloc(bytes, gfp) }.cast())
}

/// `kfree()`.
///
/// # Safety
///
/// `p` comes from [`alloc_zeroed`] and is not used any more.
pub(crate) unsafe fn free(p: NonNull<u8>) {
    // SAFETY: per the function's contract.
    unsafe { bindings::kfree(p.as_ptr().cast()) };
}

/// A zeroed bucket array: `kvzalloc()` where `gfp` may sleep, `kzalloc()` otherwise; never warns.
pub(crate) fn alloc_table_zeroed(bytes: usize, gfp: Gfp) -> Option<NonNull<u8>> {
    // SAFETY: allocation with any size and flags is allowed (`__GFP_NOWARN` is added).
    NonNull::new(unsafe { glue::rks_table_alloc(bytes, gfp) }.cast())
}

/// `kvfree()`.
///
/// # Safety
///
/// `p` comes from [`alloc_table_zeroed`] and is not used any more.
pub(crate) unsafe fn free_table(p: NonNull<u8>) {
    // SAFETY: per the function's contract.
    unsafe { bindings::kvfree(p.as_ptr().cast()) };
}

/// A destructor given by a caller of the C ABI (`klp_shadow_dtor_t`).
///
/// # Invariants
///
/// The function may be called with the `<obj, data>` of any variable it is used for.
#[derive(Clone, Copy)]
pub(crate) struct Dtor(unsafe extern "C" fn(*mut c_void, *mut c_void));

impl Dtor {
    /// Wraps a C destructor.
    ///
    /// # Safety
    ///
    /// `f` may be called with the `<obj, data>` of the variables it is used for (the contract of
    /// `klp_shadow_free()`).
    pub(crate) unsafe fn new(f: kb::klp_shadow_dtor_t) -> Option<Self> {
        // INVARIANT: per the function's contract.
        f.map(Dtor)
    }

    pub(crate) fn call(self, obj: usize, data: NonNull<u8>) {
        // SAFETY: by the type invariant.
        unsafe { (self.0)(obj as *mut c_void, data.as_ptr().cast()) }
    }

    pub(crate) fn into_word(self) -> usize {
        self.0 as usize
    }

    /// # Safety
    ///
    /// `w` is 0 or comes from [`Dtor::into_word`].
    pub(crate) unsafe fn from_word(w: usize) -> Option<Self> {
        if w == 0 {
            return None;
        }
        // SAFETY: per the function's contract `w` is such a function pointer (and the type
        // invariant held for it).
        let f = unsafe {
            core::mem::transmute::<usize, unsafe extern "C" fn(*mut c_void, *mut c_void)>(w)
        };
        Some(Dtor(f))
    }
}

/// `struct rcu_head`.
pub(crate) type RcuHead = bindings::callback_head;

/// An empty `struct rcu_head`.
pub(crate) fn new_rcu_head() -> RcuHead {
    RcuHead {
        next: ptr::null_mut(),
        func: None,
    }
}

/// `rcu_callback_t`, never NULL.
pub(crate) type RcuCallback = unsafe extern "C" fn(*mut RcuHead);

/// Proof that the current thread is inside an RCU read-side critical section.
pub(crate) struct RcuGuard<'a>(PhantomData<(&'a (), *mut ())>);

impl RcuGuard<'_> {
    /// A guard for a critical section the caller entered itself.
    ///
    /// # Safety
    ///
    /// The caller holds `rcu_read_lock()` for as long as the guard (and anything obtained with
    /// it) is used.
    pub(crate) unsafe fn assume_held() -> ManuallyDrop<RcuGuard<'static>> {
        ManuallyDrop::new(RcuGuard(PhantomData))
    }
}

impl Drop for RcuGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: the guard was made by `Env::read_lock`, whose lock this releases.
        unsafe { kb::rust_klp_rcu_read_unlock() };
    }
}

/// The table's environment in the kernel: RCU and the resize work. Stateless.
pub(crate) struct Env;

impl Env {
    pub(crate) const fn new() -> Self {
        Env
    }

    /// `rcu_read_lock()`.
    pub(crate) fn read_lock(&self) -> RcuGuard<'_> {
        // SAFETY: no precondition; the guard's drop unlocks.
        unsafe { kb::rust_klp_rcu_read_lock() };
        RcuGuard(PhantomData)
    }

    /// `call_rcu()`.
    ///
    /// # Safety
    ///
    /// `head` stays valid, and is not used by anyone else, until `f(head)` runs.
    pub(crate) unsafe fn call_rcu(&self, head: *mut RcuHead, f: RcuCallback) {
        // SAFETY: per the function's contract.
        unsafe { bindings::call_rcu(head, Some(f)) };
    }

    /// `kvfree_rcu()`: frees `p` after a grace period.
    ///
    /// # Safety
    ///
    /// `p` comes from [`alloc_zeroed`], `head` is inside it, and neither is used after the call.
    pub(crate) unsafe fn kfree_rcu(&self, head: *mut RcuHead, p: *mut u8) {
        // SAFETY: per the function's contract.
        unsafe { bindings::kvfree_call_rcu(head, p.cast()) };
    }

    /// Queues the resize work.
    pub(crate) fn request_resize(&self) {
        // SAFETY: `schedule_work()` may be called from any context.
        unsafe { glue::rks_schedule_resize() };
    }

    /// A point where a long operation lets the CPU reschedule, if the caller may sleep.
    pub(crate) fn resched_point(&self) {
        // SAFETY: no precondition: it checks the context before it may sleep.
        unsafe { glue::rks_resched_point() };
    }
}

/// A shard lock: a `spinlock_t` always taken with `spin_lock_irqsave()`.
pub(crate) struct ShardLock(Opaque<bindings::spinlock_t>);

// SAFETY: a spinlock is made to be shared between CPUs.
unsafe impl Sync for ShardLock {}
// SAFETY: it may be initialised on any CPU.
unsafe impl Send for ShardLock {}

impl ShardLock {
    pub(crate) const fn new() -> Self {
        Self(Opaque::uninit())
    }

    /// `spin_lock_init()`; before the first `lock`.
    pub(crate) fn init(&self) {
        // SAFETY: the lock is in a `static` (the table), not in use yet.
        unsafe { glue::rks_lock_init(self.0.get()) };
    }

    pub(crate) fn lock(&self) -> ShardGuard<'_> {
        // SAFETY: initialised by `init` (the table is initialised in module init, before any of
        // its functions can be called).
        let flags = unsafe { glue::rks_lock(self.0.get()) };
        ShardGuard {
            lock: self,
            flags,
            _not_send: PhantomData,
        }
    }
}

/// A held shard lock; unlocked, and interrupts restored, when dropped.
pub(crate) struct ShardGuard<'a> {
    lock: &'a ShardLock,
    flags: c_ulong,
    _not_send: PhantomData<*mut ()>,
}

impl Drop for ShardGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: locked by `ShardLock::lock` on this CPU, with these flags.
        unsafe { glue::rks_unlock(self.lock.0.get(), self.flags) };
    }
}

// ---------------------------------------------------------------------------------------------
// The table and its C ABI.
// ---------------------------------------------------------------------------------------------

/// The global table, shared by every module that uses this one.
pub(crate) static TABLE: Table = Table::new();

/// `klp_shadow_get()` under the caller's RCU read lock; `rust_klp_shadow_get()` in
/// `shadow_glue.c` takes the lock and calls this.
///
/// # Safety
///
/// The caller holds `rcu_read_lock()`.
#[no_mangle]
pub(crate) unsafe extern "C" fn rks_get_rcu(obj: *mut c_void, id: c_ulong) -> *mut c_void {
    // SAFETY: per the function's contract; the guard does not outlive the call.
    let rcu = unsafe { RcuGuard::assume_held() };
    match TABLE.get(obj as usize, id, &rcu) {
        Some(data) => data.as_ptr().cast(),
        None => ptr::null_mut(),
    }
}

/// `klp_shadow_alloc()` / `klp_shadow_get_or_alloc()`.
///
/// # Safety
///
/// `ctor`, if not NULL, may be called with `obj`, the new data and `ctor_data`.
unsafe fn alloc(
    obj: *mut c_void,
    id: c_ulong,
    size: usize,
    gfp: Gfp,
    ctor: kb::klp_shadow_ctor_t,
    ctor_data: *mut c_void,
    mode: Mode,
) -> *mut c_void {
    let r = TABLE.get_or_alloc(obj as usize, id, size, gfp, mode, |data| match ctor {
        None => Ok(()),
        // SAFETY: per the function's contract.
        Some(ctor) => match unsafe { ctor(obj, data.as_ptr().cast(), ctor_data) } {
            0 => Ok(()),
            err => Err(err),
        },
    });
    match r {
        Ok(data) => return data.as_ptr().cast(),
        // SAFETY: only prints its arguments (`obj` with `%p`).
        Err(AllocError::Duplicate) => unsafe { glue::rks_warn_duplicate(obj, id) },
        Err(AllocError::NoMem) => {}
        // SAFETY: as above.
        Err(AllocError::TooLarge(max)) => unsafe { glue::rks_err_too_large(obj, id, size, max) },
        // SAFETY: as above.
        Err(AllocError::Ctor(err)) => unsafe { glue::rks_err_ctor(obj, id, err) },
        // Only typed calls are refused (`types.rs`).
        Err(AllocError::Refused) => {}
    }
    ptr::null_mut()
}

/// `klp_shadow_alloc()`: a new zeroed variable, `ctor` run under the lock; NULL with a WARN if
/// `<obj, id>` exists.
///
/// # Safety
///
/// As `klp_shadow_alloc()`: `ctor`, if not NULL, may be called with `obj`, the new data and
/// `ctor_data`.
#[no_mangle]
pub(crate) unsafe extern "C" fn rust_klp_shadow_alloc(
    obj: *mut c_void,
    id: c_ulong,
    size: usize,
    gfp: Gfp,
    ctor: kb::klp_shadow_ctor_t,
    ctor_data: *mut c_void,
) -> *mut c_void {
    // SAFETY: per the function's contract.
    unsafe { alloc(obj, id, size, gfp, ctor, ctor_data, Mode::Alloc) }
}

/// `klp_shadow_get_or_alloc()`: the existing variable, or a new one like
/// [`rust_klp_shadow_alloc`].
///
/// # Safety
///
/// As [`rust_klp_shadow_alloc`].
#[no_mangle]
pub(crate) unsafe extern "C" fn rust_klp_shadow_get_or_alloc(
    obj: *mut c_void,
    id: c_ulong,
    size: usize,
    gfp: Gfp,
    ctor: kb::klp_shadow_ctor_t,
    ctor_data: *mut c_void,
) -> *mut c_void {
    // SAFETY: per the function's contract.
    unsafe { alloc(obj, id, size, gfp, ctor, ctor_data, Mode::GetOrAlloc) }
}

/// `klp_shadow_free()`: `dtor(obj, data)` now, under the lock; memory after a grace period.
///
/// # Safety
///
/// `dtor`, if not NULL, may be called with `obj` and the variable's data.
#[no_mangle]
pub(crate) unsafe extern "C" fn rust_klp_shadow_free(
    obj: *mut c_void,
    id: c_ulong,
    dtor: kb::klp_shadow_dtor_t,
) {
    // SAFETY: per the function's contract.
    let dtor = unsafe { Dtor::new(dtor) };
    TABLE.free(obj as usize, id, Retire::DtorNow(dtor));
}

/// `klp_shadow_free_all()`.
///
/// # Safety
///
/// `dtor`, if not NULL, may be called with the `<obj, data>` of every variable of `id`.
#[no_mangle]
pub(crate) unsafe extern "C" fn rust_klp_shadow_free_all(id: c_ulong, dtor: kb::klp_shadow_dtor_t) {
    // SAFETY: per the function's contract.
    let dtor = unsafe { Dtor::new(dtor) };
    TABLE.free_all(id, Retire::DtorNow(dtor));
}

/// Unlinks `<obj, id>` now; `dtor(obj, data)` and the freeing after a grace period.
///
/// # Safety
///
/// As [`rust_klp_shadow_free`], and `dtor` stays callable until an `rcu_barrier()`.
#[no_mangle]
pub(crate) unsafe extern "C" fn rust_klp_shadow_free_rcu(
    obj: *mut c_void,
    id: c_ulong,
    dtor: kb::klp_shadow_dtor_t,
) {
    // SAFETY: per the function's contract.
    let dtor = unsafe { Dtor::new(dtor) };
    TABLE.free(obj as usize, id, Retire::DtorAfterGp(dtor));
}

/// [`rust_klp_shadow_free_rcu`] of every variable of `id`.
///
/// # Safety
///
/// As [`rust_klp_shadow_free_all`], and `dtor` stays callable until an `rcu_barrier()`.
#[no_mangle]
pub(crate) unsafe extern "C" fn rust_klp_shadow_free_all_rcu(
    id: c_ulong,
    dtor: kb::klp_shadow_dtor_t,
) {
    // SAFETY: per the function's contract.
    let dtor = unsafe { Dtor::new(dtor) };
    TABLE.free_all(id, Retire::DtorAfterGp(dtor));
}

/// The resize work (process context, may sleep).
#[no_mangle]
pub(crate) extern "C" fn rks_resize_work() {
    TABLE.run_deferred_resizes(bindings::GFP_KERNEL);
}

// ---------------------------------------------------------------------------------------------
// Introspection and module lifetime.
// ---------------------------------------------------------------------------------------------

/// Live variables and bytes of one id.
struct IdCount {
    id: usize,
    count: usize,
    bytes: usize,
}

/// Per-id counts, sorted by id; filled in atomic context (under the shard locks).
struct IdCounts {
    ids: KVec<IdCount>,
    total: IdCount,
    /// An id could not be recorded (no memory).
    incomplete: bool,
}

impl IdCounts {
    fn new() -> Self {
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

    fn add(&mut self, id: usize, size: usize) {
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
pub(crate) unsafe extern "C" fn rks_show_ids(m: *mut c_void) -> c_int {
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
pub(crate) unsafe extern "C" fn rks_show_stats(m: *mut c_void) -> c_int {
    let st = TABLE.stats();
    let lines: [(&CStr, usize); 12] = [
        (c_str!("shards"), table::NR_SHARDS),
        (c_str!("count"), st.sum.count),
        (c_str!("bytes"), st.sum.bytes),
        (c_str!("buckets"), st.sum.buckets),
        (c_str!("shard_buckets_min"), st.min_buckets),
        (c_str!("shard_buckets_max"), st.max_buckets),
        (c_str!("max_chain"), st.sum.max_chain),
        (c_str!("grows"), st.sum.grows),
        (c_str!("shrinks"), st.sum.shrinks),
        (c_str!("lookup_retries"), st.sum.retries),
        (c_str!("data_align"), table::DATA_ALIGN),
        (c_str!("max_size"), crate::shard::max_size()),
    ];
    for (name, value) in lines {
        // SAFETY: `m` is valid (contract), `name` a C string.
        unsafe { glue::rks_seq_stat(m, name.as_char_ptr(), value) };
    }
    0
}

/// Module init: the table, then debugfs.
pub(crate) fn init() -> Result {
    if TABLE
        .init(table::MIN_BUCKETS, bindings::GFP_KERNEL)
        .is_err()
    {
        TABLE.teardown(|_, _, _| {});
        // SAFETY: process context.
        unsafe { bindings::rcu_barrier() };
        return Err(ENOMEM);
    }
    // SAFETY: process context, once; undone in `exit`.
    let err = unsafe { glue::rks_module_notifier_init() };
    if err != 0 {
        TABLE.teardown(|_, _, _| {});
        // SAFETY: process context.
        unsafe { bindings::rcu_barrier() };
        return Err(Error::from_errno(err));
    }
    // SAFETY: process context, once.
    unsafe { glue::rks_debugfs_init() };
    Ok(())
}

/// Module exit: reports and frees the variables left, then waits for every RCU callback of this
/// module. Nobody can call the table any more: its users are modules that depend on this one.
pub(crate) fn exit() {
    // SAFETY: process context; the module notifier first (it waits for a running callback), then
    // debugfs, so no reader of `ids` runs during teardown.
    unsafe {
        glue::rks_module_notifier_exit();
        glue::rks_debugfs_exit();
        glue::rks_cancel_resize();
    }
    let mut left = IdCounts::new();
    TABLE.teardown(|_, id, size| left.add(id, size));
    for c in left.ids.iter() {
        pr_warn!(
            "unloading with {} live shadow variables of id {:#x} ({} bytes): freed without their destructors, which the table does not know\n",
            c.count,
            c.id,
            c.bytes
        );
    }
    if left.incomplete {
        pr_warn!(
            "unloading with {} live shadow variables ({} bytes) in total: freed without their destructors\n",
            left.total.count,
            left.total.bytes
        );
    }
    // Teardown and the frees before it retire through RCU; the work may have been queued again.
    // SAFETY: process context.
    unsafe {
        glue::rks_cancel_resize();
        bindings::rcu_barrier();
    }
    crate::types::exit();
}

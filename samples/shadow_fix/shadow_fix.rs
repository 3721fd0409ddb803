// SPDX-License-Identifier: GPL-2.0

//! The fixes of upstream's `livepatch-shadow-fix1.c` and `livepatch-shadow-fix2.c`, in Rust, on
//! our table; each `rust_livepatch_shadow_fix*` module picks the replacements it applies.
//!
//! The target, `livepatch-shadow-mod.ko`, allocates a dummy every second and frees the expired
//! ones every 3 seconds, but its `dummy_alloc()` also allocates an `int` and forgets it: a leak
//! per dummy. Two shadow variables fix and instrument it:
//!
//! - [`SV_LEAK`] (fix1): the patched `dummy_alloc()` remembers the leaked allocation in a shadow
//!   variable of the dummy; the patched `dummy_free()` frees it with the dummy. Dummies allocated
//!   before the patch have none: their allocation stays leaked, and is reported as upstream does.
//! - [`SV_COUNTER`] (fix2): the patched `dummy_check()` counts the checks of each dummy, attaching
//!   the counter on first use to dummies already live (`get_or_alloc`, "in-flight" parents); the
//!   patched `dummy_free()` prints the final count.
//!
//! Log lines are those of upstream, with this module's name in front (`pr_info!` adds it, as
//! `pr_fmt` does for the C samples) and [`FIX`](crate::FIX) naming the functions, so that they
//! can be compared line by line. Pointers print as `%p` does.

use crate::dummy::{self, Dummy, Leak, OwnedDummy, RawDummy};
use crate::klp::{
    ffi::HashedPtr, replacement, shadow, shadow::Registration, shadow_data, Callbacks,
    PatchedObject, RcuGuard, ShadowKey,
};
use core::sync::atomic::{AtomicI32, Ordering};
use kernel::{ffi::c_ulong, prelude::*};

shadow_data! {
    /// The data of an `SV_LEAK` shadow variable: the allocation the target forgets.
    ///
    /// Dropping it is upstream's `livepatch_fix1_dummy_leak_dtor()`: it frees the allocation. (It
    /// also keeps the dummy's address for that log line, since a Rust destructor is not given the
    /// parent.) Declared here, shared by fix1, fix2 and the cumulative fix2: the same type in all
    /// three, so they share the id.
    pub struct SavedLeak {
        dummy: HashedPtr,
        leak: Leak,
    }
}

impl Drop for SavedLeak {
    fn drop(&mut self) {
        pr_info!(
            "{}_dummy_leak_dtor: dummy @ {}, prevented leak @ {}\n",
            crate::FIX,
            self.dummy,
            HashedPtr::new(&*self.leak)
        );
    }
}

/// Upstream's `SV_LEAK`: the leaked allocation of a dummy, as a shadow variable of the dummy.
pub static SV_LEAK: ShadowKey<SavedLeak> = ShadowKey::new(1);

/// Upstream's `SV_COUNTER`: how many times a dummy was checked.
pub static SV_COUNTER: ShadowKey<AtomicI32> = ShadowKey::new(2);

/// Registers [`SV_LEAK`] for the lifetime of the livepatch module.
pub fn register_leak() -> Result<Registration<SavedLeak>> {
    SV_LEAK.register()
}

/// Registers [`SV_COUNTER`] for the lifetime of the livepatch module.
pub fn register_counter() -> Result<Registration<AtomicI32>> {
    SV_COUNTER.register()
}

replacement! {
    /// fix1's `dummy_alloc()`: as the target's, but the second allocation is kept in `SV_LEAK`.
    // SAFETY: `static struct dummy *dummy_alloc(void)`, livepatch-shadow-mod.c.
    pub unsafe fn fix1_dummy_alloc() -> *mut RawDummy =
        "dummy_alloc", prototype = dummy::dummy_alloc
    {
        let Some(d) = OwnedDummy::new(GFP_KERNEL) else {
            return core::ptr::null_mut();
        };
        // Patch: save the extra memory location into a SV_LEAK shadow variable. A patched
        // dummy_free routine can later fetch this pointer to handle resource release.
        let Ok(leak) = Leak::new(0, GFP_KERNEL) else {
            return core::ptr::null_mut();
        };
        let leak_addr = HashedPtr::new(&*leak);
        let saved = SavedLeak { dummy: HashedPtr::new(d.addr()), leak };
        if let Err(e) = SV_LEAK.alloc(d.addr(), shadow::value(saved), GFP_KERNEL) {
            // The variable was not made: `saved` (and the leak) is dropped, `d` too.
            pr_err!(
                "{}_dummy_alloc: failed to allocate shadow variable for the leaking pointer: \
                 dummy @ {}, leak @ {} ({:?})\n",
                crate::FIX,
                HashedPtr::new(d.addr()),
                leak_addr,
                e
            );
            return core::ptr::null_mut();
        }
        pr_info!(
            "{}_dummy_alloc: dummy @ {}, expires @ {:x}\n",
            crate::FIX,
            HashedPtr::new(d.addr()),
            d.expires()
        );
        d.into_raw()
    }
}

/// The `SV_LEAK` part of the patched `dummy_free()`, fix1's and fix2's.
fn free_leak(d: &OwnedDummy) {
    // Patch: fetch the saved SV_LEAK shadow variable, detach and free it. Note: handle cases
    // where this shadow variable does not exist (ie, dummy structures allocated before this
    // livepatch was loaded.)
    if SV_LEAK.contains(d.addr()) {
        let _ = SV_LEAK.free(d.addr());
    } else {
        pr_info!(
            "{}_dummy_free: dummy @ {} leaked!\n",
            crate::FIX,
            HashedPtr::new(d.addr())
        );
    }
}

replacement! {
    /// fix1's `dummy_free()`: frees the dummy's saved allocation with it.
    // SAFETY: `static void dummy_free(struct dummy *d)`, livepatch-shadow-mod.c: `d` is off the
    // list and handed over to be freed.
    pub unsafe fn fix1_dummy_free(d: OwnedDummy) = "dummy_free", prototype = dummy::dummy_free {
        free_leak(&d);
        // `d` is freed here, with kfree() as the target does.
    }
}

replacement! {
    /// fix2's `dummy_check()`: counts the checks of each dummy in `SV_COUNTER`.
    // SAFETY: `static bool dummy_check(struct dummy *d, unsigned long jiffies)`,
    // livepatch-shadow-mod.c: `d` is valid under the target's list mutex for the call.
    pub unsafe fn fix2_dummy_check(d: &Dummy, jiffies: c_ulong) -> bool =
        "dummy_check", prototype = dummy::dummy_check
    {
        // Patch: handle in-flight dummy structures, if they do not already have a SV_COUNTER
        // shadow variable, then attach a new one.
        let rcu = RcuGuard::new();
        let zero = shadow::value(AtomicI32::new(0));
        if let Ok(count) = SV_COUNTER.get_or_alloc(d, zero, GFP_NOWAIT, &rcu) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        dummy::time_after(jiffies, d.expires())
    }
}

replacement! {
    /// fix2's `dummy_free()`: fix1's, and prints and frees the dummy's check counter.
    // SAFETY: As for `fix1_dummy_free`.
    pub unsafe fn fix2_dummy_free(d: OwnedDummy) = "dummy_free", prototype = dummy::dummy_free {
        // Patch: copy the memory leak patch from the fix1 module.
        free_leak(&d);
        // Patch: fetch the SV_COUNTER shadow variable and display the final count. Detach the
        // shadow variable.
        let count = SV_COUNTER.get(d.addr(), &RcuGuard::new()).map(|c| c.load(Ordering::Relaxed));
        if let Some(count) = count {
            pr_info!(
                "{}_dummy_free: dummy @ {}, check counter = {}\n",
                crate::FIX,
                HashedPtr::new(d.addr()),
                count
            );
            let _ = SV_COUNTER.free(d.addr());
        }
    }
}

/// Object callbacks of fix1: free every `SV_LEAK` variable, with its allocation, when the patch
/// is disabled (not at module exit: a disabled patch may stay loaded for a long time). Not run
/// when a cumulative patch replaces fix1, which then takes the variables over.
pub struct FreeLeaks;

impl Callbacks for FreeLeaks {
    fn post_unpatch(_obj: &PatchedObject) {
        let _ = SV_LEAK.free_all();
    }
}

/// Object callbacks of fix2 stacked on fix1, as upstream: only `SV_COUNTER` is fix2's; the
/// `SV_LEAK` variables stay for fix1.
pub struct FreeCounters;

impl Callbacks for FreeCounters {
    fn post_unpatch(_obj: &PatchedObject) {
        let _ = SV_COUNTER.free_all();
    }
}

/// Object callbacks of the cumulative fix2: once it is disabled nothing uses either variable.
pub struct FreeAll;

impl Callbacks for FreeAll {
    fn post_unpatch(_obj: &PatchedObject) {
        let _ = SV_COUNTER.free_all();
        let _ = SV_LEAK.free_all();
    }
}

// SPDX-License-Identifier: GPL-2.0

//! The fix every `ps_lock` livepatch applies; each sample differs only in how it finds the lock.
//!
//! Commit 1d147bfa6429 ("mac80211: fix AP powersave TX vs. wakeup race") added
//! `spinlock_t ps_lock` to `struct sta_info`: the TX path takes it and re-checks that the station
//! still sleeps before buffering a frame; the wakeup path splices the buffers and clears the
//! powersave flags under it. A livepatch cannot add the field, so the lock is a shadow variable
//! of the station, [`PS_LOCK`]. The three samples show the three use cases of
//! `Documentation/livepatch/shadow-vars.rst` for where it is allocated and freed.

use crate::klp::{shadow::Registration, RcuGuard, ShadowData, ShadowKey, SpinLockBh};
use crate::sta::{self, Frame, OwnedSta, Sta};
use kernel::{bindings::gfp_t, init::PinInit, prelude::*};

/// The type of the shadow `ps_lock`: a spinlock taken with `spin_lock_bh()`, guarding nothing
/// of its own (it orders the station's flags and queues, which live in C). Its lockdep class is
/// the table's class of [`PS_LOCK`]'s id, so a cumulative patch keeps using the locks of the
/// patch it replaced after that one is unloaded.
pub type PsLock = SpinLockBh<()>;

/// The shadow `ps_lock` of a station.
///
/// Same id and type in every `ps_lock` sample, so a cumulative patch takes over the variables of
/// the patch it replaces.
pub static PS_LOCK: ShadowKey<PsLock> = ShadowKey::new(0x5053);

/// Registers [`PS_LOCK`] for the lifetime of the livepatch module.
pub fn register() -> Result<Registration<PsLock>> {
    PS_LOCK.register()
}

/// An initialiser of a new, unlocked `ps_lock` (`spin_lock_init()`).
pub fn new_ps_lock() -> impl PinInit<PsLock, Error> {
    SpinLockBh::new((), &PS_LOCK)
}

/// The patched `sta_info_alloc()` of "matching parent's lifecycle": a new station gets its
/// `ps_lock` before TX or wakeup can see it. `None` if either allocation fails.
pub fn sta_alloc_with_lock(gfp: gfp_t) -> Option<OwnedSta> {
    let sta = OwnedSta::new(gfp)?;
    forget_leftover(&PS_LOCK, sta.sta());
    if let Err(e) = PS_LOCK.alloc(sta.sta(), new_ps_lock(), crate::klp::ffi::gfp_flags(gfp)) {
        pr_err!("no ps_lock for a new station: {:?}\n", e);
        sta.destroy();
        return None;
    }
    Some(sta)
}

/// Frees a variable left under the address of a brand-new station, before the station gets its
/// own.
///
/// No live station has that address, so such a variable is a leftover: during the patch
/// transition, patched TX or wakeup code (on a task already switched) may attach a `ps_lock` to a
/// station that the unpatched `sta_info_free()` (on a task not yet switched) then frees without
/// it. The allocator may hand the address out again; without this, `alloc` would fail with
/// `EEXIST`. Leftovers at addresses not reused stay until the patch is disabled
/// ([`FreeLocks`]).
pub fn forget_leftover<T: ShadowData>(key: &'static ShadowKey<T>, sta: &Sta) {
    // Freeing a variable that does not exist is a no-op.
    let _ = key.free(sta);
}

/// The patched `sta_info_free()`: the station's `ps_lock`, if it has one, goes with it.
pub fn sta_free_with_lock(sta: OwnedSta) {
    // Freeing a variable that does not exist (a station from before the patch) is a no-op.
    let _ = PS_LOCK.free(sta.sta());
    sta.destroy();
}

/// The fixed `ieee80211_tx_h_unicast_ps_buf()`: buffer a frame only under `ps_lock`, after
/// re-checking that the station still sleeps.
///
/// `find_lock` returns the station's `ps_lock`, or `None` for a station the fix does not cover,
/// which keeps the old, racy behaviour.
pub fn tx<F>(sta: &Sta, frame: Frame, find_lock: F)
where
    F: for<'r> FnOnce(&'r RcuGuard) -> Option<&'r PsLock>,
{
    if sta.ps_asleep() {
        sta::race_delay();
        let rcu = RcuGuard::new();
        let Some(ps_lock) = find_lock(&rcu) else {
            sta.buffer_frame(frame);
            return;
        };
        // Patch: `_bh` because wakeup takes the lock in softirq context and this runs in process
        // context with BH enabled (mainline's TX path runs with BH disabled already and uses a
        // plain spin_lock()).
        let _guard = ps_lock.lock();
        // Patch: wakeup may have spliced the buffers and cleared the flags meanwhile: then the
        // frame must go out now, not into a buffer nobody will look at until the next wakeup.
        if sta.ps_asleep() {
            sta.buffer_frame(frame);
            return;
        }
    }
    sta.transmit(frame);
}

/// The fixed `ieee80211_sta_ps_deliver_wakeup()`: splice the buffers and clear the flags under
/// `ps_lock`, then deliver.
///
/// `find_lock` as for [`tx`].
pub fn deliver_wakeup<F>(sta: &Sta, find_lock: F)
where
    F: for<'r> FnOnce(&'r RcuGuard) -> Option<&'r PsLock>,
{
    let rcu = RcuGuard::new();
    // Patch: `spin_lock_bh()`, as mainline since "wifi: mac80211: Fix deadlock in
    // ieee80211_sta_ps_deliver_wakeup()" (2024): the plain spin_lock() shown in shadow-vars.rst
    // deadlocks against the TX softirq on the same CPU. (This runs in softirq context here, where
    // `_bh` nests harmlessly.)
    let guard = find_lock(&rcu).map(|ps_lock| ps_lock.lock());
    sta.splice_ps_buffers();
    sta.clear_ps_flags();
    drop(guard);
    drop(rcu);
    sta.deliver_pending();
}

/// Object callbacks shared by the samples: free every `ps_lock` once the patch is disabled.
pub struct FreeLocks;

impl crate::klp::Callbacks for FreeLocks {
    /// Runs when the patch is disabled (not when a cumulative patch replaces it: then the
    /// replacement takes the variables over): no task runs the patched code any more.
    fn post_unpatch(_obj: &crate::klp::PatchedObject) {
        let _ = PS_LOCK.free_all();
    }
}

// SPDX-License-Identifier: GPL-2.0

//! rust_ps_lock_fix1 - the mac80211 `ps_lock` fix, use case 1: matching the parent's lifecycle.
//!
//! Purpose
//! -------
//!
//! Livepatches `sta_model.ko`, the model of mac80211 before commit 1d147bfa6429 ("mac80211: fix
//! AP powersave TX vs. wakeup race"), as `Documentation/livepatch/shadow-vars.rst` section
//! "Matching parent's lifecycle" does: the `ps_lock` shadow variable is allocated with its
//! station in `sta_info_alloc()` and freed with it in `sta_info_free()`; TX and wakeup take it
//! (`ps_lock.rs`).
//!
//! Stations allocated before the patch have no `ps_lock` and stay racy until the model replaces
//! them (the limit of this use case; `rust_ps_lock_fix2` covers in-flight stations).
//!
//! Usage
//! -----
//!
//! ```text
//! # insmod sta_model.ko; sleep 20; grep stranded /sys/kernel/debug/sta_model/stats
//! stranded 52
//! # insmod rust_ps_lock_fix1.ko
//! livepatch: enabling patch 'rust_ps_lock_fix1'
//! livepatch: 'rust_ps_lock_fix1': patching complete
//! # sleep 2; echo 1 > /sys/kernel/debug/sta_model/reset    # the older stations are gone
//! # sleep 10; grep stranded /sys/kernel/debug/sta_model/stats
//! stranded 0
//! # grep 0x5053 /sys/kernel/debug/rust_klp_shadow/ids      # one ps_lock per station
//! id 0x5053 count 16 ...
//! # echo 0 > /sys/kernel/livepatch/rust_ps_lock_fix1/enabled; rmmod rust_ps_lock_fix1
//! ```

use kernel::{bindings::gfp_t, c_str, prelude::*};

#[path = "../../rust/livepatch/mod.rs"]
pub mod klp;
pub mod ps_lock;
pub mod sta;

use klp::{shadow::Registration, Livepatch, Object};
use ps_lock::{PsLock, PS_LOCK};
use sta::{Frame, OwnedSta, RawSta, Sta};

klp::replacement! {
    /// `sta_info_alloc()`: Patch: every new station gets its `ps_lock`.
    // SAFETY: `struct sta_info *sta_info_alloc(gfp_t gfp)`, sta_model.h.
    unsafe fn fix1_sta_info_alloc(gfp: gfp_t) -> *mut RawSta =
        "sta_info_alloc", prototype = sta::bindings::sta_info_alloc
    {
        // Patch: the lock is born with its station, before TX or wakeup can see it.
        ps_lock::sta_alloc_with_lock(gfp).map_or(core::ptr::null_mut(), OwnedSta::into_raw)
    }
}

klp::replacement! {
    /// `sta_info_free()`: Patch: the station's `ps_lock` goes with it.
    // SAFETY: `void sta_info_free(struct sta_info *sta)`, sta_model.h: `sta` is unreachable and
    // handed over to be freed.
    unsafe fn fix1_sta_info_free(sta: OwnedSta) =
        "sta_info_free", prototype = sta::bindings::sta_info_free
    {
        ps_lock::sta_free_with_lock(sta);
    }
}

klp::replacement! {
    /// `ieee80211_tx_h_unicast_ps_buf()`, with the fix of `ps_lock::tx`.
    // SAFETY: `void ieee80211_tx_h_unicast_ps_buf(struct sta_info *sta, struct sta_frame
    // *frame)`, sta_model.h: `sta` is valid during the call, `frame` is handed over.
    unsafe fn fix1_tx_h_unicast_ps_buf(sta: &Sta, frame: Frame) =
        "ieee80211_tx_h_unicast_ps_buf", prototype = sta::bindings::ieee80211_tx_h_unicast_ps_buf
    {
        // Patch: only stations allocated by the patched sta_info_alloc() have a lock.
        ps_lock::tx(sta, frame, |rcu| PS_LOCK.get(sta, rcu));
    }
}

klp::replacement! {
    /// `ieee80211_sta_ps_deliver_wakeup()`, with the fix of `ps_lock::deliver_wakeup`.
    // SAFETY: `void ieee80211_sta_ps_deliver_wakeup(struct sta_info *sta)`, sta_model.h.
    unsafe fn fix1_sta_ps_deliver_wakeup(sta: &Sta) =
        "ieee80211_sta_ps_deliver_wakeup",
        prototype = sta::bindings::ieee80211_sta_ps_deliver_wakeup
    {
        ps_lock::deliver_wakeup(sta, |rcu| PS_LOCK.get(sta, rcu));
    }
}

/// The livepatch module: keeps the `ps_lock` id registered while it is loaded.
struct PsLockFix1 {
    _ps_lock: Registration<PsLock>,
}

impl Livepatch for PsLockFix1 {
    const OBJECTS: &'static [Object] = &[Object::module(
        c_str!("sta_model"),
        &[
            fix1_sta_info_alloc,
            fix1_sta_info_free,
            fix1_tx_h_unicast_ps_buf,
            fix1_sta_ps_deliver_wakeup,
        ],
    )
    .callbacks::<ps_lock::FreeLocks>()];

    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(PsLockFix1 {
            _ps_lock: ps_lock::register()?,
        })
    }
}

klp::livepatch! {
    type: PsLockFix1,
    name: "rust_ps_lock_fix1",
    author: "rust-klp-shadow developers",
    description: "mac80211 ps_lock fix, shadow lock with the station's lifecycle (use case 1)",
    license: "GPL",
}

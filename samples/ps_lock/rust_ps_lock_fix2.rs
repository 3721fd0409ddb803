// SPDX-License-Identifier: GPL-2.0

//! rust_ps_lock_fix2 - the mac80211 `ps_lock` fix, use case 2: in-flight parent objects.
//!
//! Purpose
//! -------
//!
//! As `rust_ps_lock_fix1`, and also covers the stations that were already live when the patch
//! was applied, as `Documentation/livepatch/shadow-vars.rst` section "In-flight parent objects"
//! does: TX and wakeup attach a `ps_lock` on first use with `get_or_alloc` (`GFP_ATOMIC`: TX
//! runs under `rcu_read_lock()`, wakeup in softirq context). The race is closed as soon as the
//! transition completes, without waiting for the stations to be replaced.
//!
//! It is a cumulative patch (`replace`): loaded over `rust_ps_lock_fix1`, it atomically replaces
//! it and takes over the `ps_lock` variables fix1 created (same id, same type).
//!
//! Usage
//! -----
//!
//! ```text
//! # insmod sta_model.ko
//! # insmod rust_ps_lock_fix1.ko                  # optional: fix2 replaces it
//! # insmod rust_ps_lock_fix2.ko
//! livepatch: enabling patch 'rust_ps_lock_fix2'
//! livepatch: 'rust_ps_lock_fix2': patching complete
//! # rmmod rust_ps_lock_fix1                      # replaced: disabled by fix2
//! # echo 1 > /sys/kernel/debug/sta_model/reset; sleep 10
//! # grep stranded /sys/kernel/debug/sta_model/stats
//! stranded 0
//! # echo 0 > /sys/kernel/livepatch/rust_ps_lock_fix2/enabled; rmmod rust_ps_lock_fix2
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
    /// `sta_info_alloc()`: every new station gets its `ps_lock` (kept from fix1: a cumulative
    /// patch carries every fix of the patches it replaces).
    // SAFETY: `struct sta_info *sta_info_alloc(gfp_t gfp)`, sta_model.h.
    unsafe fn fix2_sta_info_alloc(gfp: gfp_t) -> *mut RawSta =
        "sta_info_alloc", prototype = sta::bindings::sta_info_alloc
    {
        // Patch: the lock is born with its station, before TX or wakeup can see it.
        ps_lock::sta_alloc_with_lock(gfp).map_or(core::ptr::null_mut(), OwnedSta::into_raw)
    }
}

klp::replacement! {
    /// `sta_info_free()`: the station's `ps_lock` goes with it.
    // SAFETY: `void sta_info_free(struct sta_info *sta)`, sta_model.h: `sta` is unreachable and
    // handed over to be freed.
    unsafe fn fix2_sta_info_free(sta: OwnedSta) =
        "sta_info_free", prototype = sta::bindings::sta_info_free
    {
        ps_lock::sta_free_with_lock(sta);
    }
}

klp::replacement! {
    /// `ieee80211_tx_h_unicast_ps_buf()`: Patch: a station without a lock gets one now.
    // SAFETY: `void ieee80211_tx_h_unicast_ps_buf(struct sta_info *sta, struct sta_frame
    // *frame)`, sta_model.h: `sta` is valid during the call, `frame` is handed over.
    unsafe fn fix2_tx_h_unicast_ps_buf(sta: &Sta, frame: Frame) =
        "ieee80211_tx_h_unicast_ps_buf", prototype = sta::bindings::ieee80211_tx_h_unicast_ps_buf
    {
        // Patch: in-flight stations (allocated before any patch) get their lock on first use.
        // Only if the atomic allocation fails does the frame take the old path.
        ps_lock::tx(sta, frame, |rcu| {
            PS_LOCK.get_or_alloc(sta, ps_lock::new_ps_lock(), GFP_ATOMIC, rcu).ok()
        });
    }
}

klp::replacement! {
    /// `ieee80211_sta_ps_deliver_wakeup()`: Patch: as TX, attach the lock on first use.
    // SAFETY: `void ieee80211_sta_ps_deliver_wakeup(struct sta_info *sta)`, sta_model.h.
    unsafe fn fix2_sta_ps_deliver_wakeup(sta: &Sta) =
        "ieee80211_sta_ps_deliver_wakeup",
        prototype = sta::bindings::ieee80211_sta_ps_deliver_wakeup
    {
        ps_lock::deliver_wakeup(sta, |rcu| {
            PS_LOCK.get_or_alloc(sta, ps_lock::new_ps_lock(), GFP_ATOMIC, rcu).ok()
        });
    }
}

/// The livepatch module: keeps the `ps_lock` id registered while it is loaded.
struct PsLockFix2 {
    _ps_lock: Registration<PsLock>,
}

impl Livepatch for PsLockFix2 {
    const OBJECTS: &'static [Object] = &[Object::module(
        c_str!("sta_model"),
        &[
            fix2_sta_info_alloc,
            fix2_sta_info_free,
            fix2_tx_h_unicast_ps_buf,
            fix2_sta_ps_deliver_wakeup,
        ],
    )
    .callbacks::<ps_lock::FreeLocks>()];

    /// Atomic replace: loading fix2 disables any earlier `ps_lock` patch (its unpatch callbacks
    /// do not run, so the `ps_lock` variables stay for fix2).
    const REPLACE: bool = true;

    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(PsLockFix2 {
            _ps_lock: ps_lock::register()?,
        })
    }
}

klp::livepatch! {
    type: PsLockFix2,
    name: "rust_ps_lock_fix2",
    author: "rust-klp-shadow developers",
    description: "mac80211 ps_lock fix, shadow lock for in-flight stations (use case 2), cumulative",
    license: "GPL",
}

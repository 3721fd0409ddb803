/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sta_model.h - what a livepatch of sta_model.ko may patch and call
 *
 * sta_model.ko models mac80211's AP powersave buffering as it was before
 * commit 1d147bfa6429 ("mac80211: fix AP powersave TX vs. wakeup race",
 * CVE-2014-2706): struct sta_info has no ps_lock.  A livepatch fixes it the
 * way Documentation/livepatch/shadow-vars.rst describes, with a spinlock_t
 * attached to each struct sta_info as a shadow variable.
 *
 * Both types are opaque: a livepatch only passes their pointers around.
 * Every helper below is exported (EXPORT_SYMBOL_GPL), is not meant to be
 * patched, and may be called from any context (process or softirq, with BH
 * or IRQs disabled, under any spinlock): none of them sleeps, the frame
 * queues they lock use spin_lock_irqsave(), and only sta_model_sta_new()
 * allocates (with the caller's @gfp).
 */
#ifndef _SAMPLES_PS_LOCK_STA_MODEL_H
#define _SAMPLES_PS_LOCK_STA_MODEL_H

#include <linux/types.h>

struct sta_info;	/* a station (net/mac80211/sta_info.h) */
struct sta_frame;	/* a frame queued to a station (an skb in mac80211) */

/*
 * Functions a livepatch replaces (klp object "sta_model").  All are global,
 * noinline and not exported.  Calling context of each:
 *
 * struct sta_info *sta_info_alloc(gfp_t gfp);
 *	Process context, may sleep; @gfp is GFP_KERNEL.  The station returned
 *	is not yet visible to TX or to its timer.  Returns NULL on failure.
 *	Model of sta_info_alloc() in net/mac80211/sta_info.c.
 *
 * void sta_info_free(struct sta_info *sta);
 *	Process context, may sleep.  @sta is already unreachable: removed
 *	from the station table, its timer shut down, an RCU grace period
 *	elapsed.  Nothing else runs on @sta during or after the call.
 *	Model of sta_info_free() in net/mac80211/sta_info.c.
 *
 * void ieee80211_tx_h_unicast_ps_buf(struct sta_info *sta,
 *				      struct sta_frame *frame);
 *	Process context (one TX kthread per online CPU), inside
 *	rcu_read_lock(), BH and IRQs enabled.  Must not sleep: allocate with
 *	GFP_ATOMIC.  Runs concurrently with itself for the same @sta (other
 *	ACs) and with the softirq functions below (other CPUs, or this CPU
 *	interrupting it: hence spin_lock_bh).  The caller holds a per-AC
 *	mutex (a sleeping lock, no obstacle to spin_lock_bh; it only orders
 *	TX threads sharing an AC).  Consumes @frame: hands it to
 *	exactly one of sta_model_buffer_frame() or sta_model_transmit().
 *	Model of ieee80211_tx_h_unicast_ps_buf() in net/mac80211/tx.c.
 *
 * void ieee80211_sta_ps_deliver_wakeup(struct sta_info *sta);
 *	Softirq context (the station's timer), must not sleep: GFP_ATOMIC.
 *	Never runs concurrently with itself or sta_ps_start() for one @sta.
 *	Model of ieee80211_sta_ps_deliver_wakeup() in net/mac80211/sta_info.c.
 *
 * void sta_ps_start(struct sta_info *sta);
 *	Softirq context (the station's timer).  Not part of the fix.
 *	Model of sta_ps_start() in net/mac80211/rx.c.
 */
struct sta_info *sta_info_alloc(gfp_t gfp);
void sta_info_free(struct sta_info *sta);
void ieee80211_tx_h_unicast_ps_buf(struct sta_info *sta,
				   struct sta_frame *frame);
void ieee80211_sta_ps_deliver_wakeup(struct sta_info *sta);
void sta_ps_start(struct sta_info *sta);

/*
 * The fix, in terms of the helpers below ("ps_lock" is the shadow
 * spinlock_t of @sta; see the two use cases of shadow-vars.rst for where to
 * allocate and free it):
 *
 * ieee80211_tx_h_unicast_ps_buf(sta, frame):
 *	if (sta_model_ps_asleep(sta)) {
 *		sta_model_race_delay();
 *		spin_lock_bh(ps_lock);
 *		if (sta_model_ps_asleep(sta)) {		// Patch: re-check
 *			sta_model_buffer_frame(sta, frame);
 *			spin_unlock_bh(ps_lock);
 *			return;
 *		}
 *		spin_unlock_bh(ps_lock);		// woke up meanwhile
 *	}
 *	sta_model_transmit(sta, frame);
 *
 *   (Taking the lock before the first check and calling
 *    sta_model_transmit() under it is also correct, only slower.)
 *
 * ieee80211_sta_ps_deliver_wakeup(sta):
 *	spin_lock_bh(ps_lock);
 *	sta_model_splice_ps_buffers(sta);
 *	sta_model_clear_ps_flags(sta);
 *	spin_unlock_bh(ps_lock);
 *	sta_model_deliver_pending(sta);
 *
 * sta_info_alloc(gfp) / sta_info_free(sta):
 *	sta = sta_model_sta_new(gfp) ... sta_model_sta_destroy(sta), with the
 *	shadow variable attached after the first and freed before the second.
 *
 * The unpatched functions are exactly these calls without ps_lock.  With
 * the fix in place the debugfs counters "stranded" and "order_violations"
 * stay at 0, once (1) /sys/kernel/livepatch/<patch>/transition reads 0
 * (until then old and new code run side by side), (2) stations allocated
 * before the patch are gone if the patch only locks stations that have a
 * shadow ps_lock from sta_info_alloc() (one is replaced every
 * replace_interval_ms, all within nr_stations * replace_interval_ms,
 * 1.6 s by default), and (3) then /sys/kernel/debug/sta_model/reset was
 * written: a frame stranded earlier is counted when it is finally
 * delivered, up to 16 ms later.
 */

/* True if WLAN_STA_PS_STA or WLAN_STA_PS_DRIVER is set (acquire). */
bool sta_model_ps_asleep(struct sta_info *sta);
/* Queue @frame to @sta's ps_tx_buf of its AC; takes ownership of @frame. */
void sta_model_buffer_frame(struct sta_info *sta, struct sta_frame *frame);
/* Send @frame (behind the pending queue if that is not empty); takes it. */
void sta_model_transmit(struct sta_info *sta, struct sta_frame *frame);
/* Busy-wait race_delay_us microseconds: a test knob widening the window. */
void sta_model_race_delay(void);
/* Move every frame of tx_filtered[] and ps_tx_buf[] to the pending queue. */
void sta_model_splice_ps_buffers(struct sta_info *sta);
/* Clear WLAN_STA_PS_STA and WLAN_STA_PS_DRIVER: the station is awake. */
void sta_model_clear_ps_flags(struct sta_info *sta);
/* Send every frame of the pending queue, in order. */
void sta_model_deliver_pending(struct sta_info *sta);
/* Allocate and initialize a station (awake, empty queues); NULL on failure. */
struct sta_info *sta_model_sta_new(gfp_t gfp);
/* Free an unreachable station and every frame still queued to it. */
void sta_model_sta_destroy(struct sta_info *sta);

#endif /* _SAMPLES_PS_LOCK_STA_MODEL_H */

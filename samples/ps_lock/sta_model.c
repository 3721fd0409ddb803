// SPDX-License-Identifier: GPL-2.0
/*
 * sta_model.c - AP powersave TX vs. wakeup race, buggy module demo
 *
 * Purpose
 * -------
 *
 * A small model of mac80211's AP powersave buffering as it was before
 * commit 1d147bfa6429 ("mac80211: fix AP powersave TX vs. wakeup race",
 * CVE-2014-2706), the commit Documentation/livepatch/shadow-vars.rst builds
 * its use cases on.  It is the target of livepatches that add the missing
 * struct sta_info::ps_lock as a shadow variable; sta_model.h says what they
 * may patch, what they may call and what the fix must do.
 *
 * The race: ieee80211_tx_h_unicast_ps_buf() sees the station asleep and
 * decides to buffer the frame.  Meanwhile ieee80211_sta_ps_deliver_wakeup()
 * moves ps_tx_buf and tx_filtered to the pending queue, clears the PS flags
 * and sends the pending frames.  The TX path then appends its frame to
 * ps_tx_buf of a station that is awake: the frame is stranded there until
 * the next sleep/wake cycle, and then goes out after frames sent later.
 *
 * The module makes its own traffic from load to unload:
 *  - one TX kthread per online CPU sends frames to random stations
 *    (process context, under rcu_read_lock(): the model of dev_queue_xmit);
 *  - each station's timer puts it to sleep and wakes it up every
 *    1-8 ms (softirq context: the model of the RX path seeing the PM bit);
 *  - a kthread replaces the oldest station every replace_interval_ms, so
 *    stations allocated before and after a livepatch are both live.
 * It counts what the race does in /sys/kernel/debug/sta_model/.
 *
 *
 * Usage
 * -----
 *
 *   # insmod sta_model.ko
 *   # sleep 20; cat /sys/kernel/debug/sta_model/stats
 *   frames 14323
 *   sent 7304
 *   buffered 7019
 *   delivered 7001
 *   purged 17
 *   stranded 79
 *   order_violations 11
 *   wakeups 17095
 *   stations_allocated_total 168
 *   stations_alive 17
 *
 * (2 vCPUs under QEMU TCG.)  "stranded" and "order_violations" grow within
 * seconds.  Load a livepatch that fixes the race, wait until
 * /sys/kernel/livepatch/<patch>/transition reads 0 and every older station
 * was replaced (nr_stations * replace_interval_ms, 1.6 s by default), then:
 *
 *   # echo 1 > /sys/kernel/debug/sta_model/reset
 *   # sleep 20; grep -E 'stranded|order' /sys/kernel/debug/sta_model/stats
 *   stranded 0
 *   order_violations 0
 *
 * "echo 0 > /sys/module/sta_model/parameters/run" pauses the traffic and the
 * station replacement (timers keep running, so every buffered frame is
 * delivered within 20 ms); "rmmod sta_model" stops everything.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/bitops.h>
#include <linux/cpumask.h>
#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/err.h>
#include <linux/kthread.h>
#include <linux/list.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/random.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/timer.h>

#include "sta_model.h"

static unsigned int nr_stations = 16;
module_param(nr_stations, uint, 0444);
MODULE_PARM_DESC(nr_stations, "Number of live stations (1-1024, default 16)");

static unsigned int race_delay_us = 20;
module_param(race_delay_us, uint, 0644);
MODULE_PARM_DESC(race_delay_us,
		 "Test knob: busy-wait in TX between the PS check and the enqueue, widening the race window so that it shows within seconds under QEMU emulation (TCG); 0 disables, at most 1000 (default 20)");

static unsigned int tx_interval_us = 20;
module_param(tx_interval_us, uint, 0644);
MODULE_PARM_DESC(tx_interval_us,
		 "Sleep of each TX thread between two frames, 0 for none (default 20)");

static unsigned int replace_interval_ms = 100;
module_param(replace_interval_ms, uint, 0644);
MODULE_PARM_DESC(replace_interval_ms,
		 "Replace the oldest station every that many ms, 0 never (default 100)");

static bool run = true;
module_param(run, bool, 0644);
MODULE_PARM_DESC(run, "Run (1) or pause (0) the TX threads and station replacement");

#define IEEE80211_NUM_ACS	4	/* access categories: VO, VI, BE, BK */
#define MAX_STATIONS		1024
#define RACE_DELAY_MAX_US	1000U
#define TX_INTERVAL_MAX_US	100000U
#define REPLACE_INTERVAL_MAX_MS	10000U
#define PAUSE_MS		20
/* A station stays awake, then asleep, for a random 1-8 ms each time. */
#define PS_PERIOD_MIN_MS	1
#define PS_PERIOD_MAX_MS	8

/* Bits of sta_info::_flags, as enum ieee80211_sta_info_flags. */
enum sta_model_flags {
	WLAN_STA_PS_STA,	/* the station said it went to sleep */
	WLAN_STA_PS_DRIVER,	/* the driver holds the station asleep */
};

/*
 * A frame: what an skb is in mac80211, reduced to what the race needs.
 * @seq:	per station and AC, from 1 in the order the frames were made;
 *		frames must leave the AP with increasing @seq.
 * @ps_gen:	the station's sleep generation when the frame was queued (see
 *		struct sta_info); tells stranded frames from buffered ones.
 * @buffered:	the frame went through ps_tx_buf.
 */
struct sta_frame {
	struct list_head list;
	u64 seq;
	unsigned long ps_gen;
	u8 ac;
	bool buffered;
};

/* A frame queue with its own lock, like struct sk_buff_head. */
struct sta_queue {
	spinlock_t lock;		/* protects @frames */
	struct list_head frames;
};

/*
 * A station: struct sta_info of net/mac80211/sta_info.h, reduced.  Note the
 * missing ps_lock: that is the bug.
 * @_flags:	WLAN_STA_PS_* bits, atomic bitops only.
 * @ps_gen:	sleep generation, incremented by every sta_ps_start(); the
 *		wakeup ending sleep N releases the frames buffered in sleep N.
 *		Written in the station's timer only.
 * @ps_tx_buf:	frames buffered while the station sleeps, per AC.
 * @tx_filtered: frames the hardware gave back because the station fell
 *		asleep, per AC.  Kept so the wakeup splices the same queues as
 *		mainline; the model has no hardware, so nothing fills them.
 * @pending:	frames released by a wakeup and not yet sent (mainline's
 *		local->pending).  Its lock also serializes "the air": every
 *		frame leaves the AP under it (see sta_model_air()).
 * @tx_seq:	last @seq made per AC; written by that AC's TX thread.
 * @last_seq:	highest @seq sent per AC; under @pending.lock.
 * @ps_timer:	alternately puts the station to sleep and wakes it up.
 */
struct sta_info {
	unsigned long _flags;
	unsigned long ps_gen;
	struct sta_queue ps_tx_buf[IEEE80211_NUM_ACS];
	struct sta_queue tx_filtered[IEEE80211_NUM_ACS];
	struct sta_queue pending;
	u64 tx_seq[IEEE80211_NUM_ACS];
	u64 last_seq[IEEE80211_NUM_ACS];
	struct timer_list ps_timer;
};

/*
 * Counters, in debugfs one file each and all together in "stats".  At rest
 * (run=0 and 20 ms later) frames == sent + delivered + purged, exactly if
 * the counters were reset at rest too (frames queued at a reset are counted
 * when sent but were not counted when made).
 * @frames:	frames made by the TX threads
 * @sent:	frames sent directly (not through ps_tx_buf)
 * @buffered:	frames put into ps_tx_buf
 * @delivered:	buffered frames sent after a wakeup
 * @purged:	frames freed with their station, never sent
 * @stranded:	frames buffered into sleep generation N after the wakeup ending
 *		sleep N had already spliced the buffers: the race.  Counted
 *		when the frame is finally delivered or purged, so at most one
 *		sleep/wake cycle (or station lifetime) after the fact.
 * @order_violations: frames sent after a frame of the same station and AC
 *		with a higher @seq
 * @wakeups:	calls of ieee80211_sta_ps_deliver_wakeup()
 * @stations_allocated_total: sta_model_sta_new() successes
 * @stations_alive: stations allocated and not yet freed (not reset)
 */
enum sta_model_counter {
	CNT_FRAMES,
	CNT_SENT,
	CNT_BUFFERED,
	CNT_DELIVERED,
	CNT_PURGED,
	CNT_STRANDED,
	CNT_ORDER_VIOLATIONS,
	CNT_WAKEUPS,
	CNT_STATIONS_ALLOCATED_TOTAL,
	CNT_STATIONS_ALIVE,
	NR_COUNTERS
};

static const char * const counter_names[NR_COUNTERS] = {
	[CNT_FRAMES]			= "frames",
	[CNT_SENT]			= "sent",
	[CNT_BUFFERED]			= "buffered",
	[CNT_DELIVERED]			= "delivered",
	[CNT_PURGED]			= "purged",
	[CNT_STRANDED]			= "stranded",
	[CNT_ORDER_VIOLATIONS]		= "order_violations",
	[CNT_WAKEUPS]			= "wakeups",
	[CNT_STATIONS_ALLOCATED_TOTAL]	= "stations_allocated_total",
	[CNT_STATIONS_ALIVE]		= "stations_alive",
};

static atomic64_t counters[NR_COUNTERS];

static void sta_model_count(enum sta_model_counter c)
{
	atomic64_inc(&counters[c]);
}

static struct kmem_cache *frame_cache;

/*
 * The stations, RCU-protected: TX threads look them up under
 * rcu_read_lock(); only the replacement thread (or init/exit while it is
 * not running) changes the table, under sta_table_mutex.
 */
static struct sta_info __rcu **sta_table;
static DEFINE_MUTEX(sta_table_mutex);

static struct task_struct **tx_threads;
static unsigned int nr_tx_threads;
static struct task_struct *replace_thread;
/* TX of one AC is serialized, as on one hardware queue (tx_seq, order). */
static struct mutex tx_ac_mutex[IEEE80211_NUM_ACS];

static struct dentry *debugfs_dir;

/* ------------------------------------------------------------------ */
/* Helpers: exported, never patched; the livepatches call them too.   */
/* ------------------------------------------------------------------ */

static void sta_queue_init(struct sta_queue *q)
{
	spin_lock_init(&q->lock);
	INIT_LIST_HEAD(&q->frames);
}

/* Move all frames of @q to the tail of @to (skb_queue_splice_tail_init). */
static void sta_queue_splice(struct sta_queue *q, struct list_head *to)
{
	unsigned long flags;

	spin_lock_irqsave(&q->lock, flags);
	list_splice_tail_init(&q->frames, to);
	spin_unlock_irqrestore(&q->lock, flags);
}

/*
 * The frame leaves the AP: check its order, count it, free it.  Called
 * with sta->pending.lock held, so frames of one station leave one at a time
 * and a frame sent directly cannot overtake a wakeup's pending frames.
 */
static void sta_model_air(struct sta_info *sta, struct sta_frame *frame)
{
	u64 *last = &sta->last_seq[frame->ac];

	lockdep_assert_held(&sta->pending.lock);
	if (frame->seq < *last)
		sta_model_count(CNT_ORDER_VIOLATIONS);
	else
		*last = frame->seq;
	sta_model_count(frame->buffered ? CNT_DELIVERED : CNT_SENT);
	kmem_cache_free(frame_cache, frame);
}

/* test_sta_flag(sta, WLAN_STA_PS_STA) || ...(WLAN_STA_PS_DRIVER) */
bool sta_model_ps_asleep(struct sta_info *sta)
{
	/* Acquire: pairs with smp_mb__before_atomic() in sta_ps_start(). */
	return test_bit_acquire(WLAN_STA_PS_STA, &sta->_flags) ||
	       test_bit_acquire(WLAN_STA_PS_DRIVER, &sta->_flags);
}
EXPORT_SYMBOL_GPL(sta_model_ps_asleep);

/* skb_queue_tail(&sta->ps_tx_buf[ac], skb) in ieee80211_tx_h_unicast_ps_buf */
void sta_model_buffer_frame(struct sta_info *sta, struct sta_frame *frame)
{
	struct sta_queue *q = &sta->ps_tx_buf[frame->ac];
	unsigned long flags;

	frame->buffered = true;
	spin_lock_irqsave(&q->lock, flags);
	/*
	 * The generation is read under the queue lock, so "buffered into
	 * sleep N after the wakeup ending sleep N spliced this queue" is
	 * decided by the order of two critical sections: exact.
	 */
	frame->ps_gen = READ_ONCE(sta->ps_gen);
	list_add_tail(&frame->list, &q->frames);
	spin_unlock_irqrestore(&q->lock, flags);
	sta_model_count(CNT_BUFFERED);
}
EXPORT_SYMBOL_GPL(sta_model_buffer_frame);

/* TX_CONTINUE: the rest of the TX path, down to ieee80211_tx_frags() */
void sta_model_transmit(struct sta_info *sta, struct sta_frame *frame)
{
	unsigned long flags;

	spin_lock_irqsave(&sta->pending.lock, flags);
	if (list_empty(&sta->pending.frames)) {
		sta_model_air(sta, frame);
	} else {
		/*
		 * A wakeup is releasing buffered frames: queue behind them,
		 * as ieee80211_tx_frags() does when local->pending is not
		 * empty.  Not a buffered frame, so not stranded either.
		 */
		frame->ps_gen = READ_ONCE(sta->ps_gen);
		list_add_tail(&frame->list, &sta->pending.frames);
	}
	spin_unlock_irqrestore(&sta->pending.lock, flags);
}
EXPORT_SYMBOL_GPL(sta_model_transmit);

/* Not in mainline: a test knob widening the race window (race_delay_us). */
void sta_model_race_delay(void)
{
	unsigned int us = min(READ_ONCE(race_delay_us), RACE_DELAY_MAX_US);

	if (us)
		udelay(us);
}
EXPORT_SYMBOL_GPL(sta_model_race_delay);

/* The splice loop of ieee80211_sta_ps_deliver_wakeup() */
void sta_model_splice_ps_buffers(struct sta_info *sta)
{
	LIST_HEAD(frames);
	unsigned long flags;
	int ac;

	for (ac = 0; ac < IEEE80211_NUM_ACS; ac++) {
		sta_queue_splice(&sta->tx_filtered[ac], &frames);
		sta_queue_splice(&sta->ps_tx_buf[ac], &frames);
	}

	/* ieee80211_add_pending_skbs() */
	spin_lock_irqsave(&sta->pending.lock, flags);
	list_splice_tail_init(&frames, &sta->pending.frames);
	spin_unlock_irqrestore(&sta->pending.lock, flags);
}
EXPORT_SYMBOL_GPL(sta_model_splice_ps_buffers);

/* clear_sta_flag() of the PS flags (sta_ps_end() and the wakeup) */
void sta_model_clear_ps_flags(struct sta_info *sta)
{
	clear_bit(WLAN_STA_PS_DRIVER, &sta->_flags);
	clear_bit(WLAN_STA_PS_STA, &sta->_flags);
}
EXPORT_SYMBOL_GPL(sta_model_clear_ps_flags);

/* ieee80211_tx_pending(): send the frames the wakeup released */
void sta_model_deliver_pending(struct sta_info *sta)
{
	/* Stable: only this station's timer, which runs us, writes it. */
	unsigned long gen = READ_ONCE(sta->ps_gen);
	struct sta_frame *frame, *tmp;
	unsigned long flags;

	spin_lock_irqsave(&sta->pending.lock, flags);
	list_for_each_entry_safe(frame, tmp, &sta->pending.frames, list) {
		list_del(&frame->list);
		/* Missed the wakeup of its own sleep generation. */
		if (frame->buffered && frame->ps_gen < gen)
			sta_model_count(CNT_STRANDED);
		sta_model_air(sta, frame);
	}
	spin_unlock_irqrestore(&sta->pending.lock, flags);
}
EXPORT_SYMBOL_GPL(sta_model_deliver_pending);

static void sta_model_ps_timer(struct timer_list *t);

/* __sta_info_alloc() without the ps_lock */
struct sta_info *sta_model_sta_new(gfp_t gfp)
{
	struct sta_info *sta;
	int ac;

	sta = kzalloc(sizeof(*sta), gfp);
	if (!sta)
		return NULL;

	for (ac = 0; ac < IEEE80211_NUM_ACS; ac++) {
		sta_queue_init(&sta->ps_tx_buf[ac]);
		sta_queue_init(&sta->tx_filtered[ac]);
	}
	sta_queue_init(&sta->pending);
	timer_setup(&sta->ps_timer, sta_model_ps_timer, 0);

	sta_model_count(CNT_STATIONS_ALLOCATED_TOTAL);
	sta_model_count(CNT_STATIONS_ALIVE);
	return sta;
}
EXPORT_SYMBOL_GPL(sta_model_sta_new);

/*
 * Free the frames of @q.  A frame left in a PS queue is stranded if its
 * sleep generation already had its wakeup: it is older than the current
 * one, or the station is awake (the current generation's wakeup ran).
 */
static void sta_model_purge(struct sta_info *sta, struct sta_queue *q,
			    bool ps_queue, bool asleep)
{
	struct sta_frame *frame, *tmp;

	list_for_each_entry_safe(frame, tmp, &q->frames, list) {
		list_del(&frame->list);
		if (ps_queue && (!asleep || frame->ps_gen < sta->ps_gen))
			sta_model_count(CNT_STRANDED);
		sta_model_count(CNT_PURGED);
		kmem_cache_free(frame_cache, frame);
	}
}

/* The freeing half of sta_info_free() (ieee80211_sta_purge_queues etc.) */
void sta_model_sta_destroy(struct sta_info *sta)
{
	bool asleep = sta_model_ps_asleep(sta);
	int ac;

	/* The caller made @sta unreachable: no locking needed. */
	WARN_ON_ONCE(timer_pending(&sta->ps_timer));
	for (ac = 0; ac < IEEE80211_NUM_ACS; ac++) {
		sta_model_purge(sta, &sta->tx_filtered[ac], true, asleep);
		sta_model_purge(sta, &sta->ps_tx_buf[ac], true, asleep);
	}
	sta_model_purge(sta, &sta->pending, false, asleep);

	kfree(sta);
	atomic64_dec(&counters[CNT_STATIONS_ALIVE]);
}
EXPORT_SYMBOL_GPL(sta_model_sta_destroy);

/* ------------------------------------------------------------------ */
/* The functions a livepatch replaces (see sta_model.h)               */
/* ------------------------------------------------------------------ */

/* net/mac80211/sta_info.c: sta_info_alloc() */
noinline struct sta_info *sta_info_alloc(gfp_t gfp)
{
	return sta_model_sta_new(gfp);
}

/* net/mac80211/sta_info.c: sta_info_free() */
noinline void sta_info_free(struct sta_info *sta)
{
	sta_model_sta_destroy(sta);
}

/*
 * net/mac80211/tx.c: ieee80211_tx_h_unicast_ps_buf()
 *
 * Buffer the frame if the station sleeps, else send it.  The bug: nothing
 * keeps the station asleep between the check and the enqueue.  (In mac80211
 * this runs with BH disabled; here BH is enabled, so a fix takes ps_lock
 * with spin_lock_bh() where mainline has spin_lock().)
 */
noinline void ieee80211_tx_h_unicast_ps_buf(struct sta_info *sta,
					    struct sta_frame *frame)
{
	if (sta_model_ps_asleep(sta)) {
		/* The race window: the wakeup may run right here. */
		sta_model_race_delay();
		sta_model_buffer_frame(sta, frame);
		return;
	}

	sta_model_transmit(sta, frame);
}

/*
 * net/mac80211/sta_info.c: ieee80211_sta_ps_deliver_wakeup()
 *
 * Release everything buffered for the station and mark it awake.  The bug:
 * a TX path that saw the flags still set may buffer a frame after the
 * splice, into a queue nobody empties until the next wakeup.
 */
noinline void ieee80211_sta_ps_deliver_wakeup(struct sta_info *sta)
{
	sta_model_splice_ps_buffers(sta);
	sta_model_clear_ps_flags(sta);
	sta_model_deliver_pending(sta);
}

/* net/mac80211/rx.c: sta_ps_start() */
noinline void sta_ps_start(struct sta_info *sta)
{
	/* Frames buffered from now on belong to the new sleep generation. */
	WRITE_ONCE(sta->ps_gen, sta->ps_gen + 1);
	/* Whoever sees the flag set sees the new generation. */
	smp_mb__before_atomic();
	set_bit(WLAN_STA_PS_STA, &sta->_flags);
	/* Sometimes the driver holds the station asleep as well. */
	if (!get_random_u32_below(4))
		set_bit(WLAN_STA_PS_DRIVER, &sta->_flags);
}

/* ------------------------------------------------------------------ */
/* Traffic engine                                                     */
/* ------------------------------------------------------------------ */

static void sta_model_arm_ps_timer(struct sta_info *sta)
{
	unsigned int ms = get_random_u32_inclusive(PS_PERIOD_MIN_MS,
						   PS_PERIOD_MAX_MS);

	mod_timer(&sta->ps_timer, jiffies + msecs_to_jiffies(ms));
}

/* Softirq: the station toggles between asleep and awake. */
static void sta_model_ps_timer(struct timer_list *t)
{
	struct sta_info *sta = from_timer(sta, t, ps_timer);

	if (sta_model_ps_asleep(sta)) {
		ieee80211_sta_ps_deliver_wakeup(sta);
		sta_model_count(CNT_WAKEUPS);
	} else {
		sta_ps_start(sta);
	}
	/* A no-op once timer_shutdown_sync() ran. */
	sta_model_arm_ps_timer(sta);
}

/* Send one frame on @ac to a random station. */
static void sta_model_tx_one(unsigned int ac)
{
	struct sta_frame *frame;
	struct sta_info *sta;

	/* Allocate where we may sleep; the TX path itself may not. */
	frame = kmem_cache_zalloc(frame_cache, GFP_KERNEL);
	if (!frame)
		return;
	frame->ac = ac;

	mutex_lock(&tx_ac_mutex[ac]);
	rcu_read_lock();
	sta = rcu_dereference(sta_table[get_random_u32_below(nr_stations)]);
	if (sta) {
		frame->seq = ++sta->tx_seq[ac];
		sta_model_count(CNT_FRAMES);
		/* A normal call, so a livepatch takes effect. */
		ieee80211_tx_h_unicast_ps_buf(sta, frame);
		frame = NULL;
	}
	rcu_read_unlock();
	mutex_unlock(&tx_ac_mutex[ac]);

	if (frame)
		kmem_cache_free(frame_cache, frame);
}

static int sta_model_tx_thread(void *data)
{
	unsigned int ac = (unsigned long)data % IEEE80211_NUM_ACS;

	/*
	 * Lowest priority: under emulation the TX threads could otherwise
	 * starve the shell of a test and the kworker that completes a
	 * livepatch transition.
	 */
	set_user_nice(current, MAX_NICE);
	while (!kthread_should_stop()) {
		unsigned int us = min(READ_ONCE(tx_interval_us),
				      TX_INTERVAL_MAX_US);

		if (!READ_ONCE(run)) {
			schedule_timeout_interruptible(msecs_to_jiffies(PAUSE_MS));
			continue;
		}
		sta_model_tx_one(ac);
		if (us)
			usleep_range(us, 2 * us);
		else
			cond_resched();
	}
	return 0;
}

/*
 * Take @sta out of use: after this, no timer or TX path touches it.  The
 * order matters: unpublish, stop the timer (re-arming is refused from now
 * on), wait for TX paths that found @sta under rcu_read_lock().
 */
static void sta_model_retire(struct sta_info *sta)
{
	timer_shutdown_sync(&sta->ps_timer);
	synchronize_rcu();
	sta_info_free(sta);
}

/* Replace the station in @slot by a new one. */
static void sta_model_replace(unsigned int slot)
{
	struct sta_info *new, *old;

	new = sta_info_alloc(GFP_KERNEL);
	if (!new)
		return;

	mutex_lock(&sta_table_mutex);
	old = rcu_replace_pointer(sta_table[slot], new,
				  lockdep_is_held(&sta_table_mutex));
	mutex_unlock(&sta_table_mutex);
	sta_model_arm_ps_timer(new);

	if (old)
		sta_model_retire(old);
}

static int sta_model_replace_thread(void *unused)
{
	unsigned int slot = 0;

	while (!kthread_should_stop()) {
		unsigned int ms = min(READ_ONCE(replace_interval_ms),
				      REPLACE_INTERVAL_MAX_MS);

		schedule_timeout_interruptible(msecs_to_jiffies(ms ?: PAUSE_MS));
		if (!ms || !READ_ONCE(run) || kthread_should_stop())
			continue;
		/* Round robin: the oldest station goes. */
		sta_model_replace(slot);
		slot = (slot + 1) % nr_stations;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* debugfs                                                            */
/* ------------------------------------------------------------------ */

static int sta_model_counter_get(void *data, u64 *val)
{
	*val = atomic64_read(data);
	return 0;
}
DEFINE_DEBUGFS_ATTRIBUTE(sta_model_counter_fops, sta_model_counter_get,
			 NULL, "%llu\n");

/* Writing 1 zeroes every counter but stations_alive. */
static int sta_model_reset_set(void *data, u64 val)
{
	int i;

	if (val != 1)
		return -EINVAL;
	for (i = 0; i < NR_COUNTERS; i++)
		if (i != CNT_STATIONS_ALIVE)
			atomic64_set(&counters[i], 0);
	return 0;
}
DEFINE_DEBUGFS_ATTRIBUTE(sta_model_reset_fops, NULL, sta_model_reset_set,
			 "%llu\n");

static int sta_model_stats_show(struct seq_file *m, void *unused)
{
	int i;

	for (i = 0; i < NR_COUNTERS; i++)
		seq_printf(m, "%s %lld\n", counter_names[i],
			   atomic64_read(&counters[i]));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(sta_model_stats);

static void sta_model_debugfs_init(void)
{
	int i;

	debugfs_dir = debugfs_create_dir(KBUILD_MODNAME, NULL);
	for (i = 0; i < NR_COUNTERS; i++)
		debugfs_create_file_unsafe(counter_names[i], 0444, debugfs_dir,
					   &counters[i],
					   &sta_model_counter_fops);
	debugfs_create_file_unsafe("reset", 0200, debugfs_dir, NULL,
				   &sta_model_reset_fops);
	debugfs_create_file("stats", 0444, debugfs_dir, NULL,
			    &sta_model_stats_fops);
}

/* ------------------------------------------------------------------ */
/* Module load and unload                                             */
/* ------------------------------------------------------------------ */

/* Undo sta_model_init(), also when it stopped half-way. */
static void sta_model_teardown(void)
{
	struct sta_info *sta;
	unsigned int i;

	/* Nobody replaces or looks up stations after this. */
	if (replace_thread)
		kthread_stop(replace_thread);
	for (i = 0; tx_threads && i < nr_tx_threads; i++)
		if (tx_threads[i])
			kthread_stop(tx_threads[i]);
	kfree(tx_threads);

	/* Stop every timer first, then one grace period for all. */
	for (i = 0; sta_table && i < nr_stations; i++) {
		sta = rcu_dereference_protected(sta_table[i], 1);
		if (sta)
			timer_shutdown_sync(&sta->ps_timer);
	}
	synchronize_rcu();
	for (i = 0; sta_table && i < nr_stations; i++) {
		sta = rcu_dereference_protected(sta_table[i], 1);
		RCU_INIT_POINTER(sta_table[i], NULL);
		if (sta)
			sta_info_free(sta);
	}
	kfree(sta_table);
	kmem_cache_destroy(frame_cache);
}

static int __init sta_model_init(void)
{
	struct task_struct *t;
	struct sta_info *sta;
	unsigned int i;

	if (!nr_stations || nr_stations > MAX_STATIONS)
		return -EINVAL;
	for (i = 0; i < IEEE80211_NUM_ACS; i++)
		mutex_init(&tx_ac_mutex[i]);

	frame_cache = KMEM_CACHE(sta_frame, 0);
	sta_table = kcalloc(nr_stations, sizeof(*sta_table), GFP_KERNEL);
	nr_tx_threads = num_online_cpus();
	tx_threads = kcalloc(nr_tx_threads, sizeof(*tx_threads), GFP_KERNEL);
	if (!frame_cache || !sta_table || !tx_threads)
		goto nomem;

	for (i = 0; i < nr_stations; i++) {
		sta = sta_info_alloc(GFP_KERNEL);
		if (!sta)
			goto nomem;
		RCU_INIT_POINTER(sta_table[i], sta);
		sta_model_arm_ps_timer(sta);
	}

	sta_model_debugfs_init();

	for (i = 0; i < nr_tx_threads; i++) {
		t = kthread_run(sta_model_tx_thread, (void *)(unsigned long)i,
				"sta_model_tx/%u", i);
		if (IS_ERR(t))
			goto thread_err;
		tx_threads[i] = t;
	}
	t = kthread_run(sta_model_replace_thread, NULL, "sta_model_replace");
	if (IS_ERR(t))
		goto thread_err;
	replace_thread = t;

	pr_info("%u stations, %u TX threads, race_delay_us=%u\n",
		nr_stations, nr_tx_threads, race_delay_us);
	return 0;

thread_err:
	debugfs_remove_recursive(debugfs_dir);
	sta_model_teardown();
	return PTR_ERR(t);
nomem:
	sta_model_teardown();
	return -ENOMEM;
}

static void __exit sta_model_exit(void)
{
	debugfs_remove_recursive(debugfs_dir);
	sta_model_teardown();
	pr_info("unloaded: %lld frames, %lld stranded, %lld order violations\n",
		atomic64_read(&counters[CNT_FRAMES]),
		atomic64_read(&counters[CNT_STRANDED]),
		atomic64_read(&counters[CNT_ORDER_VIOLATIONS]));
}

module_init(sta_model_init);
module_exit(sta_model_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Model of mac80211 AP powersave before the ps_lock fix, a livepatch target");

// SPDX-License-Identifier: GPL-2.0
/*
 * shadow_glue.c - the C side of rust_klp_shadow.ko
 *
 * The table is Rust (shadow_main.rs and its modules).  This file only has
 * what Rust for Linux 6.12 offers no abstraction for, each a few lines:
 *
 *  - IRQ-safe spinlocks (spin_lock_irqsave), one lockdep class for all shards
 *    (writers never nest them: a writer called under one is refused), and
 *    the per-CPU owner that tells a writer it runs under one;
 *  - the RCU read side, for Rust callers (rust_klp_rcu_read_lock/unlock),
 *    where the kernel's rcu_read_lock() is more than a compiler barrier;
 *  - kzalloc/kvzalloc with the caller's gfp flags, kmalloc size rounding;
 *  - debugfs and seq_file;
 *  - the reports, with the texts of kernel/livepatch/shadow.c and %p;
 *  - for typed ids (types.rs): the registry mutex, the lockdep classes of
 *    locks in shadow data, and the module notifier that removes the
 *    registrations of a module going away;
 *  - rust_klp_may_sleep(), the may-sleep check of the Rust API;
 *  - the EXPORT_SYMBOL_GPL()s of the C ABI in rust_klp_shadow.h.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/debugfs.h>
#include <linux/lockdep.h>
#include <linux/gfp.h>
#include <linux/hardirq.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/percpu.h>
#include <linux/sched.h>
#include <linux/notifier.h>
#include <linux/preempt.h>
#include <linux/rcupdate.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/spinlock.h>

#include "shadow_glue.h"

/* The Rust side assumes kmalloc() aligns to at least 8 bytes (MIN_ALIGN). */
static_assert(ARCH_KMALLOC_MINALIGN >= 8);

/* --- The C ABI ----------------------------------------------------------- */

EXPORT_SYMBOL_GPL(rust_klp_shadow_get);
EXPORT_SYMBOL_GPL(rust_klp_shadow_alloc);
EXPORT_SYMBOL_GPL(rust_klp_shadow_get_or_alloc);
EXPORT_SYMBOL_GPL(rust_klp_shadow_free);
EXPORT_SYMBOL_GPL(rust_klp_shadow_free_all);
EXPORT_SYMBOL_GPL(rust_klp_shadow_free_rcu);
EXPORT_SYMBOL_GPL(rust_klp_shadow_free_all_rcu);
EXPORT_SYMBOL_GPL(rust_klp_shadow_type_register);
EXPORT_SYMBOL_GPL(rust_klp_shadow_type_unregister);
EXPORT_SYMBOL_GPL(rust_klp_shadow_alloc_bound);
EXPORT_SYMBOL_GPL(rust_klp_shadow_free_bound);
EXPORT_SYMBOL_GPL(rust_klp_shadow_free_all_bound);
EXPORT_SYMBOL_GPL(rust_klp_shadow_lock_class);

void *rust_klp_shadow_get_bound(const struct rust_klp_shadow_binding *binding,
				unsigned long gen, void *obj)
{
	void *data;

	rcu_read_lock();
	data = rks_get_bound_rcu(binding, gen, obj);
	rcu_read_unlock();

	return data;
}
EXPORT_SYMBOL_GPL(rust_klp_shadow_get_bound);

bool rust_klp_may_sleep(void)
{
	/*
	 * What __might_sleep() checks: preempt_count() counts hardirq, softirq
	 * and NMI always, preempt_disable() and spinlocks with PREEMPT_COUNT;
	 * rcu_preempt_depth() counts rcu_read_lock() with PREEMPT_RCU (without
	 * it, rcu_read_lock() disables preemption).
	 */
	return !in_atomic() && !irqs_disabled() && !rcu_preempt_depth();
}
EXPORT_SYMBOL_GPL(rust_klp_may_sleep);

void rust_klp_rcu_read_lock(void) __acquires(RCU)
{
	rcu_read_lock();
}
EXPORT_SYMBOL_GPL(rust_klp_rcu_read_lock);

void rust_klp_rcu_read_unlock(void) __releases(RCU)
{
	rcu_read_unlock();
}
EXPORT_SYMBOL_GPL(rust_klp_rcu_read_unlock);

/* --- Shard locks ---------------------------------------------------------- */

static struct lock_class_key rks_shard_key;

/*
 * The task that holds a shard lock on this CPU, NULL if none.  The lock is
 * taken with interrupts off, so only the holder (and an NMI) can run on this
 * CPU meanwhile: a writer that finds itself here was called by a constructor
 * or destructor that runs under the lock, and taking a shard lock again could
 * deadlock.  (The task, not a flag: on PREEMPT_RT a spinlock_t sleeps, its
 * holder stays on its CPU but can be preempted there, and another task must
 * not be refused.)
 */
static DEFINE_PER_CPU(struct task_struct *, rks_shard_owner);

void rks_lock_init(spinlock_t *lock)
{
	spin_lock_init(lock);
	lockdep_set_class_and_name(lock, &rks_shard_key, "rust_klp_shadow_shard");
}

unsigned long rks_lock(spinlock_t *lock) __acquires(lock)
{
	unsigned long flags;

	spin_lock_irqsave(lock, flags);
	this_cpu_write(rks_shard_owner, current);
	return flags;
}

void rks_unlock(spinlock_t *lock, unsigned long flags) __releases(lock)
{
	this_cpu_write(rks_shard_owner, NULL);
	spin_unlock_irqrestore(lock, flags);
}

/* One call per write: whether the caller is in NMI context or under a shard lock. */
int rks_writer_context(void)
{
	if (in_nmi())
		return RKS_CTX_NMI;
	if (this_cpu_read(rks_shard_owner) == current)
		return RKS_CTX_SHARD_LOCK;
	return RKS_CTX_TASK;
}

/* --- Memory ---------------------------------------------------------------- */

void *rks_kzalloc(size_t size, gfp_t gfp)
{
	return kzalloc(size, gfp);
}

/* Bucket arrays: vmalloc may back big ones where the caller may sleep. */
void *rks_table_alloc(size_t size, gfp_t gfp)
{
	gfp |= __GFP_ZERO | __GFP_NOWARN;
	if (gfpflags_allow_blocking(gfp))
		return kvmalloc(size, gfp);
	return kmalloc(size, gfp);
}

/*
 * Between the shards of a free_all(), which can be a million variables:
 * reschedule if the caller may sleep.  Without it, freeing 1,000,000
 * variables kept a CPU for 81 s under TCG with no scheduling point, and on
 * a kernel without preemptible RCU the RCU grace-period kthread starved on
 * it ("rcu_sched kthread starved for 26393 jiffies").  Only where the
 * kernel can tell (PREEMPT_COUNT, which every PREEMPT_DYNAMIC and debug
 * kernel has): elsewhere a spinlock the caller holds is invisible, and
 * free_all() may be called under one.
 */
void rks_resched_point(void)
{
	if (IS_ENABLED(CONFIG_PREEMPT_COUNT) && rust_klp_may_sleep())
		cond_resched();
}

/* --- Reports (the first two with the texts of kernel/livepatch/shadow.c) -- */

void rks_warn_duplicate(void *obj, unsigned long id)
{
	WARN(1, "Duplicate shadow variable <%p, %lx>\n", obj, id);
}

void rks_err_ctor(void *obj, unsigned long id, int err)
{
	pr_err("Failed to construct shadow variable <%p, %lx> (%d)\n", obj, id, err);
}

void rks_err_too_large(void *obj, unsigned long id, size_t size, size_t max)
{
	pr_err("Shadow variable <%p, %lx> of %zu bytes is too large (at most %zu)\n",
	       obj, id, size, max);
}

/*
 * A writer (@call: "alloc", "free"...) refused in the context it was called
 * from.  Ratelimited: a constructor that keeps doing it would flood the log.
 */
void rks_err_context(const char *call, void *obj, unsigned long id, bool nmi)
{
	if (nmi)
		pr_err_ratelimited("rust_klp_shadow_%s(<%p, %lx>) refused: called from NMI context\n",
				   call, obj, id);
	else
		pr_err_ratelimited("rust_klp_shadow_%s(<%p, %lx>) refused: called from a constructor or destructor that runs under the table's lock\n",
				   call, obj, id);
}

/* --- Typed ids (types.rs) ------------------------------------------------ */

static DEFINE_MUTEX(rks_types_mutex);

void rks_types_lock(void)
{
	mutex_lock(&rks_types_mutex);
}

void rks_types_unlock(void)
{
	mutex_unlock(&rks_types_mutex);
}

void rks_synchronize_rcu(void)
{
	synchronize_rcu();
}

const char *rks_module_name(struct module *mod)
{
	return mod ? module_name(mod) : "(built-in)";
}

/*
 * The lockdep class of the locks inside the shadow data of one id: a
 * dynamic key the table owns until it unloads, so that a lock initialised
 * by one livepatch module stays usable, and reportable, after that module
 * is gone (a static key and name of the module would be freed with it).
 */
struct rks_lock_class {
	struct lock_class_key key;
	char name[32];
};

void *rks_lock_class_new(unsigned long id)
{
	struct rks_lock_class *c = kzalloc(sizeof(*c), GFP_KERNEL);

	if (!c)
		return NULL;
	snprintf(c->name, sizeof(c->name), "rust_klp_shadow:%#lx", id);
	lockdep_register_key(&c->key);
	return c;
}

struct lock_class_key *rks_lock_class_key(void *class, const char **name)
{
	struct rks_lock_class *c = class;

	*name = c->name;
	return &c->key;
}

void rks_lock_class_free(void *class)
{
	struct rks_lock_class *c = class;

	lockdep_unregister_key(&c->key);
	kfree(c);
}

/* A module going away: its code is still there; drop what it left. */
static int rks_module_notify(struct notifier_block *nb, unsigned long action, void *data)
{
	if (action == MODULE_STATE_GOING)
		rks_module_going(data);
	return NOTIFY_OK;
}

static struct notifier_block rks_module_nb = {
	.notifier_call = rks_module_notify,
};

int rks_module_notifier_init(void)
{
	return register_module_notifier(&rks_module_nb);
}

void rks_module_notifier_exit(void)
{
	unregister_module_notifier(&rks_module_nb);
}

/* --- debugfs: /sys/kernel/debug/rust_klp_shadow/{ids,stats} -------------- */

void rks_seq_id(struct seq_file *m, unsigned long id, unsigned long count,
		unsigned long bytes, const char *name)
{
	seq_printf(m, "id %#lx count %lu bytes %lu type %s\n", id, count, bytes,
		   name ?: "-");
}

void rks_seq_total(struct seq_file *m, unsigned long count, unsigned long bytes)
{
	seq_printf(m, "total count %lu bytes %lu\n", count, bytes);
}

void rks_seq_stat(struct seq_file *m, const char *name, unsigned long value)
{
	seq_printf(m, "%s %lu\n", name, value);
}

static int ids_show(struct seq_file *m, void *v)
{
	return rks_show_ids(m);
}
DEFINE_SHOW_ATTRIBUTE(ids);

static int stats_show(struct seq_file *m, void *v)
{
	return rks_show_stats(m);
}
DEFINE_SHOW_ATTRIBUTE(stats);

static struct dentry *rks_debugfs;

void rks_debugfs_init(void)
{
	rks_debugfs = debugfs_create_dir(KBUILD_MODNAME, NULL);
	debugfs_create_file("ids", 0444, rks_debugfs, NULL, &ids_fops);
	debugfs_create_file("stats", 0444, rks_debugfs, NULL, &stats_fops);
}

void rks_debugfs_exit(void)
{
	debugfs_remove_recursive(rks_debugfs);
}

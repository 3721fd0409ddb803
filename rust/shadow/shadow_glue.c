// SPDX-License-Identifier: GPL-2.0
/*
 * shadow_glue.c - the C side of rust_klp_shadow.ko
 *
 * The table is Rust (shadow_main.rs and its modules).  This file only has
 * what Rust for Linux 6.12 offers no abstraction for, each a few lines:
 *
 *  - IRQ-safe spinlocks (spin_lock_irqsave), one lockdep class for all shards;
 *  - the RCU read side, for Rust callers (rust_klp_rcu_read_lock/unlock) and
 *    around the lock-free lookup (rust_klp_shadow_get, so a lookup costs a
 *    single call into Rust);
 *  - kzalloc/kvzalloc with the caller's gfp flags, kmalloc size rounding;
 *  - the resize work item, debugfs and seq_file;
 *  - the reports, with the texts of kernel/livepatch/shadow.c and %p;
 *  - the EXPORT_SYMBOL_GPL()s of the C ABI in rust_klp_shadow.h.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/debugfs.h>
#include <linux/gfp.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>

#include "shadow_glue.h"

/* The Rust side assumes kmalloc() aligns to at least 8 bytes (MIN_ALIGN). */
static_assert(ARCH_KMALLOC_MINALIGN >= 8);

/* --- The C ABI ----------------------------------------------------------- */

void *rust_klp_shadow_get(void *obj, unsigned long id)
{
	void *data;

	rcu_read_lock();
	data = rks_get_rcu(obj, id);
	rcu_read_unlock();

	return data;
}
EXPORT_SYMBOL_GPL(rust_klp_shadow_get);
EXPORT_SYMBOL_GPL(rust_klp_shadow_alloc);
EXPORT_SYMBOL_GPL(rust_klp_shadow_get_or_alloc);
EXPORT_SYMBOL_GPL(rust_klp_shadow_free);
EXPORT_SYMBOL_GPL(rust_klp_shadow_free_all);
EXPORT_SYMBOL_GPL(rust_klp_shadow_free_rcu);
EXPORT_SYMBOL_GPL(rust_klp_shadow_free_all_rcu);
EXPORT_SYMBOL_GPL(rust_klp_shadow_type_register);
EXPORT_SYMBOL_GPL(rust_klp_shadow_type_unregister);

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

void rks_lock_init(spinlock_t *lock)
{
	spin_lock_init(lock);
	lockdep_set_class_and_name(lock, &rks_shard_key, "rust_klp_shadow_shard");
}

unsigned long rks_lock(spinlock_t *lock) __acquires(lock)
{
	unsigned long flags;

	spin_lock_irqsave(lock, flags);
	return flags;
}

void rks_unlock(spinlock_t *lock, unsigned long flags) __releases(lock)
{
	spin_unlock_irqrestore(lock, flags);
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
 * The size to kmalloc() for @size bytes, and whether that allocation is
 * RUST_KLP_SHADOW_DATA_ALIGN-aligned: kmalloc() of a power of two is
 * naturally aligned (Documentation/core-api/memory-allocation.rst), so when
 * @size rounds up to one anyway, asking for the rounded size costs nothing.
 */
size_t rks_alloc_size(size_t size, bool *aligned)
{
	size_t r = kmalloc_size_roundup(size);

	if (is_power_of_2(r) && r >= RUST_KLP_SHADOW_DATA_ALIGN) {
		*aligned = true;
		return r;
	}
	*aligned = ARCH_KMALLOC_MINALIGN >= RUST_KLP_SHADOW_DATA_ALIGN;
	return size;
}

size_t rks_kmalloc_max(void)
{
	return KMALLOC_MAX_SIZE;
}

bool rks_gfp_can_block(gfp_t gfp)
{
	return gfpflags_allow_blocking(gfp);
}

/* --- Deferred resizes ---------------------------------------------------- */

static void rks_resize_workfn(struct work_struct *work)
{
	rks_resize_work();
}

static DECLARE_WORK(rks_resize, rks_resize_workfn);

void rks_schedule_resize(void)
{
	schedule_work(&rks_resize);
}

void rks_cancel_resize(void)
{
	cancel_work_sync(&rks_resize);
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

void rks_err_type_align(unsigned long id, const struct rust_klp_shadow_type *t)
{
	pr_err("Shadow id %#lx: type %s (size %zu, align %zu) refused: align must be a power of two <= %d\n",
	       id, t->name, t->size, t->align, RUST_KLP_SHADOW_DATA_ALIGN);
}

void rks_err_type_conflict(unsigned long id,
			   const struct rust_klp_shadow_type *old,
			   const struct rust_klp_shadow_type *new)
{
	pr_err("Shadow id %#lx is registered for type %s (size %zu, align %zu); type %s (size %zu, align %zu) refused\n",
	       id, old->name, old->size, old->align,
	       new->name, new->size, new->align);
}

void rks_warn_type_unknown(unsigned long id, const struct rust_klp_shadow_type *t)
{
	pr_warn("Shadow id %#lx: unregistering a type that is not registered (%p)\n", id, t);
}

void rks_warn_type_leftovers(unsigned long id, const struct rust_klp_shadow_type *t,
			     unsigned long count)
{
	pr_warn("Shadow id %#lx: last registration of type %s gone with %lu live shadow variables; freeing them with its destructor\n",
		id, t->name, count);
}

/* --- Registry lock ------------------------------------------------------- */

static DEFINE_MUTEX(rks_types_mutex);

void rks_types_lock(void)
{
	mutex_lock(&rks_types_mutex);
}

void rks_types_unlock(void)
{
	mutex_unlock(&rks_types_mutex);
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

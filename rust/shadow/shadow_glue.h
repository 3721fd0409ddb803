/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The private interface between shadow_glue.c and the Rust side of
 * rust_klp_shadow.ko (ffi.rs declares the same functions in its `glue`
 * module).  Not for users: they include rust_klp_shadow.h.
 */
#ifndef _RUST_KLP_SHADOW_GLUE_H
#define _RUST_KLP_SHADOW_GLUE_H

#include <linux/seq_file.h>
#include <linux/spinlock.h>
#include <linux/types.h>

#include "rust_klp_shadow.h"

/* Defined in Rust (ffi.rs). */
void *rks_get_bound_rcu(const struct rust_klp_shadow_binding *binding, unsigned long gen,
			void *obj);
void rks_module_going(struct module *mod);
int rks_show_ids(struct seq_file *m);
int rks_show_stats(struct seq_file *m);

/* Defined in shadow_glue.c, called from Rust. */
void rks_lock_init(spinlock_t *lock);
unsigned long rks_lock(spinlock_t *lock);
void rks_unlock(spinlock_t *lock, unsigned long flags);
void *rks_kzalloc(size_t size, gfp_t gfp);
void *rks_table_alloc(size_t size, gfp_t gfp);
/* What rks_writer_context() says of the caller. */
enum rks_context {
	RKS_CTX_TASK,		/* may write */
	RKS_CTX_NMI,		/* in_nmi() */
	RKS_CTX_SHARD_LOCK,	/* runs under a shard lock it holds */
};
int rks_writer_context(void);
void rks_resched_point(void);
void rks_warn_duplicate(void *obj, unsigned long id);
void rks_err_ctor(void *obj, unsigned long id, int err);
void rks_err_too_large(void *obj, unsigned long id, size_t size, size_t max);
void rks_err_context(const char *call, void *obj, unsigned long id, bool nmi);
void rks_types_lock(void);
void rks_types_unlock(void);
void rks_synchronize_rcu(void);
const char *rks_module_name(struct module *mod);
void *rks_lock_class_new(unsigned long id);
struct lock_class_key *rks_lock_class_key(void *class, const char **name);
void rks_lock_class_free(void *class);
int rks_module_notifier_init(void);
void rks_module_notifier_exit(void);
void rks_seq_id(struct seq_file *m, unsigned long id, unsigned long count,
		unsigned long bytes, const char *name);
void rks_seq_total(struct seq_file *m, unsigned long count, unsigned long bytes);
void rks_seq_stat(struct seq_file *m, const char *name, unsigned long value);
void rks_debugfs_init(void);
void rks_debugfs_exit(void);

#endif /* _RUST_KLP_SHADOW_GLUE_H */

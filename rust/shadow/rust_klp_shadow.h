/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rust_klp_shadow: shadow variables for livepatches, kept in a Rust table.
 *
 * The five functions below have exactly the signatures and semantics of the
 * kernel's klp_shadow_*() (kernel/livepatch/shadow.c,
 * Documentation/livepatch/shadow-vars.rst).  A C livepatch switches to this
 * table by including this header and renaming its calls; nothing else.
 * They may be called from process, softirq and hardirq context (with
 * GFP_ATOMIC where sleeping is not allowed).
 *
 * Differences a caller may notice, all documented in
 * Documentation/livepatch/rust-klp-shadow.rst:
 *  - lookups stay O(1) at any number of live variables (the table resizes);
 *  - shadow data is aligned to RUST_KLP_SHADOW_DATA_ALIGN (16) bytes;
 *  - a size too large for kmalloc returns NULL with a pr_err (no WARN);
 *  - /sys/kernel/debug/rust_klp_shadow/ shows the live variables per id;
 *  - variables still alive when the table module unloads are reported and
 *    freed (without their destructors, which the table does not know).
 */
#ifndef _RUST_KLP_SHADOW_H
#define _RUST_KLP_SHADOW_H

#include <linux/types.h>
#include <linux/livepatch.h>

/* The alignment of the data of every shadow variable, in bytes. */
#define RUST_KLP_SHADOW_DATA_ALIGN 16

void *rust_klp_shadow_get(void *obj, unsigned long id);
void *rust_klp_shadow_alloc(void *obj, unsigned long id, size_t size,
			    gfp_t gfp_flags, klp_shadow_ctor_t ctor,
			    void *ctor_data);
void *rust_klp_shadow_get_or_alloc(void *obj, unsigned long id, size_t size,
				   gfp_t gfp_flags, klp_shadow_ctor_t ctor,
				   void *ctor_data);
void rust_klp_shadow_free(void *obj, unsigned long id,
			  klp_shadow_dtor_t dtor);
void rust_klp_shadow_free_all(unsigned long id, klp_shadow_dtor_t dtor);

/*
 * Beyond upstream: RCU-deferred destruction and typed ids, for the safe
 * Rust API (rust/livepatch/shadow.rs) and any caller that reads shadow data
 * inside an RCU read-side critical section.
 */

/**
 * rust_klp_shadow_free_rcu() - detach <obj, id> now, destroy it later
 *
 * Like rust_klp_shadow_free(), but @dtor(obj, data) runs, and the memory is
 * freed, only after an RCU grace period (from the RCU callback, in softirq
 * context), so a reader inside rust_klp_rcu_read_lock() never sees a
 * destroyed value.  The caller's module must rcu_barrier() before it unloads
 * (rust_klp_shadow_type_unregister() does).
 */
void rust_klp_shadow_free_rcu(void *obj, unsigned long id,
			      klp_shadow_dtor_t dtor);

/**
 * rust_klp_shadow_free_all_rcu() - rust_klp_shadow_free_rcu() of every <_, id>
 */
void rust_klp_shadow_free_all_rcu(unsigned long id, klp_shadow_dtor_t dtor);

/* rcu_read_lock() / rcu_read_unlock(), with lockdep, for Rust callers. */
void rust_klp_rcu_read_lock(void);
void rust_klp_rcu_read_unlock(void);

/**
 * struct rust_klp_shadow_type - what a shadow id holds, for typed users
 * @name:   the type's name, NUL-terminated, for reports only (copied)
 * @size:   size of the type in bytes
 * @align:  alignment of the type in bytes, at most RUST_KLP_SHADOW_DATA_ALIGN
 * @layout: the type's identity, declared by it (Rust: ShadowData::LAYOUT);
 *          two types with equal size, align and layout must be the same type
 * @dtor:   the type's destructor, code of @owner
 * @owner:  the module whose code @dtor is (THIS_MODULE of the caller)
 *
 * Shadow ids are global across modules; the Rust API binds each id to one
 * type and registers that binding here, so two modules that use one id for
 * different types are refused instead of corrupting memory.  The table
 * copies what it needs: the struct may go once the call returned.
 */
struct rust_klp_shadow_type {
	const char *name;
	size_t size;
	size_t align;
	u64 layout;
	klp_shadow_dtor_t dtor;
	struct module *owner;
};

/*
 * The binding of an id to a type: one per id ever registered, kept by the
 * table until it unloads (so a pointer to it never dangles in a module that
 * depends on the table).  An id is bound from its first registration to its
 * last unregistration; each such period has its own generation number, and
 * the typed functions below act only for the generation their caller
 * registered in.
 */
struct rust_klp_shadow_binding;

/* One registration of a type for an id (opaque). */
struct rust_klp_shadow_reg;

/**
 * rust_klp_shadow_type_register() - bind @id to @type
 * @reg:     set to the new registration
 * @binding: set to the id's binding
 * @gen:     set to the generation the registration belongs to
 *
 * Return: 0 when @id is unbound or bound to an equal type (same size, align
 * and layout).  -EINVAL with a pr_err naming the id and both types and
 * modules when @id is bound to another type, or when @type->align is not a
 * power of two or is more than RUST_KLP_SHADOW_DATA_ALIGN.  -ENOMEM.
 * Process context only.
 */
int rust_klp_shadow_type_register(unsigned long id,
				  const struct rust_klp_shadow_type *type,
				  struct rust_klp_shadow_reg **reg,
				  struct rust_klp_shadow_binding **binding,
				  unsigned long *gen);

/**
 * rust_klp_shadow_type_unregister() - remove a registration
 *
 * When it was the last registration of its id, the id becomes unbound:
 * every typed call of its generation is refused from now on, every variable
 * of the id still alive is freed with the registration's destructor (after
 * a grace period, with a pr_warn of their number), and the call waits for
 * the readers of the generation (synchronize_rcu()).  In all cases it then
 * waits for pending RCU callbacks (rcu_barrier()), so no destructor of the
 * registration's module runs after the call.  Process context only.
 *
 * A registration its owner never unregisters (a forgotten one) is
 * unregistered by the table when the owner module unloads.
 */
void rust_klp_shadow_type_unregister(struct rust_klp_shadow_reg *reg);

/*
 * The typed calls: like their untyped counterparts, for the id of @binding,
 * but only while it is bound in generation @gen (else -ESTALE or NULL), so
 * that no variable of an unbound id, or of an id bound to another type, is
 * ever made or seen.  Destructors are those of a live registration of the
 * id, run after a grace period (as rust_klp_shadow_free_rcu()).
 */

/* rust_klp_shadow_get() of <obj, id>; the caller is in an RCU read-side
 * critical section, which the data outlives by at most a grace period. */
void *rust_klp_shadow_get_bound(const struct rust_klp_shadow_binding *binding,
				unsigned long gen, void *obj);

/*
 * Allocate <obj, id> with @size bytes (the bound type's size, else -EINVAL),
 * @ctor run once under the table's lock.  Return: 0 with *@data set; -EEXIST
 * if it exists (no WARN), unless @get_existing, then 0 with the existing
 * data; -ENOMEM; -E2BIG; the error of @ctor; -ESTALE.
 */
int rust_klp_shadow_alloc_bound(const struct rust_klp_shadow_binding *binding,
				unsigned long gen, void *obj, size_t size,
				gfp_t gfp_flags, klp_shadow_ctor_t ctor,
				void *ctor_data, bool get_existing, void **data);

/* Detach <obj, id> (no-op if missing); 0 or -ESTALE. */
int rust_klp_shadow_free_bound(const struct rust_klp_shadow_binding *binding,
			       unsigned long gen, void *obj);

/* Detach every <_, id>; 0 or -ESTALE. */
int rust_klp_shadow_free_all_bound(const struct rust_klp_shadow_binding *binding,
				   unsigned long gen);

/*
 * The lockdep class of locks inside the id's shadow data, and its name: owned
 * by the table, one per id, valid until the table unloads.  Locks that live
 * in shadow data are initialised with it, not with a class of the module
 * that initialised them, so they stay usable after that module unloaded.
 */
struct lock_class_key *
rust_klp_shadow_lock_class(const struct rust_klp_shadow_binding *binding,
			   const char **name);

/*
 * Whether the caller may sleep: false in hardirq, softirq, NMI, with
 * preemption or interrupts disabled, or inside rcu_read_lock() (when the
 * kernel can tell: CONFIG_PREEMPT_COUNT, CONFIG_PREEMPT_RCU).
 */
bool rust_klp_may_sleep(void);

#endif /* _RUST_KLP_SHADOW_H */

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
 * @name:  the type's name (Rust: core::any::type_name), NUL-terminated
 * @size:  size of the type in bytes
 * @align: alignment of the type in bytes, at most RUST_KLP_SHADOW_DATA_ALIGN
 * @dtor:  the type's destructor, for variables left at the last unregister
 *
 * Shadow ids are global across modules; the Rust API binds each id to one
 * type and registers that binding here, so two modules that use one id for
 * different types are refused instead of corrupting memory.  The struct
 * belongs to the caller and must stay valid until it is unregistered.
 */
struct rust_klp_shadow_type {
	const char *name;
	size_t size;
	size_t align;
	klp_shadow_dtor_t dtor;
};

/**
 * rust_klp_shadow_type_register() - bind @id to @type
 *
 * Return: 0 when @id has no registration or only registrations of an equal
 * type (same name, size and align): @type is added to them.  -EINVAL with a
 * pr_err naming the id and both types when @id is registered with another
 * type, or when @type->align is not a power of two or is more than
 * RUST_KLP_SHADOW_DATA_ALIGN.  -ENOMEM.  Process context only.
 */
int rust_klp_shadow_type_register(unsigned long id,
				  const struct rust_klp_shadow_type *type);

/**
 * rust_klp_shadow_type_unregister() - remove a registration of @type for @id
 *
 * When it was the last registration of @id, every variable of @id still
 * alive is freed with @type->dtor (after a grace period, with a pr_warn of
 * their number).  Then waits for pending RCU callbacks (rcu_barrier()), so
 * no destructor of the caller's module runs after the call.  Process
 * context only.
 */
void rust_klp_shadow_type_unregister(unsigned long id,
				     const struct rust_klp_shadow_type *type);

#endif /* _RUST_KLP_SHADOW_H */

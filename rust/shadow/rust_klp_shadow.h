/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rust_klp_shadow: shadow variables for livepatches, kept in a Rust table.
 *
 * The five functions below have exactly the signatures and semantics of the
 * kernel's klp_shadow_*() (kernel/livepatch/shadow.c,
 * Documentation/livepatch/shadow-vars.rst).  A C livepatch switches to this
 * table by including this header and renaming its calls; nothing else.
 *
 * Differences a caller may notice, all documented in
 * Documentation/livepatch/rust-klp-shadow.rst:
 *  - lookups stay O(1) at any number of live variables (the table resizes);
 *  - a size too large for kmalloc returns NULL with a pr_err (no WARN);
 *  - /sys/kernel/debug/rust_klp_shadow/ shows the live variables per id.
 */
#ifndef _RUST_KLP_SHADOW_H
#define _RUST_KLP_SHADOW_H

#include <linux/types.h>
#include <linux/livepatch.h>

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

/**
 * struct rust_klp_shadow_type - what a shadow id holds, for typed users
 * @name:  the type's name (Rust: core::any::type_name), NUL-terminated
 * @size:  size of the type in bytes
 * @align: alignment of the type in bytes
 *
 * Beyond upstream.  Shadow ids are global across modules; the Rust API binds
 * each id to one type and registers that binding here, so two modules that
 * use one id for different types are refused instead of corrupting memory.
 */
struct rust_klp_shadow_type {
	const char *name;
	size_t size;
	size_t align;
};

/**
 * rust_klp_shadow_type_get() - bind @id to @type, or check it is bound to it
 *
 * Return: 0 and a reference on the binding when @id is unbound or bound to
 * an equal type (same name, size and align); -EINVAL with a pr_err naming
 * both types otherwise.  Process context only.
 */
int rust_klp_shadow_type_get(unsigned long id,
			     const struct rust_klp_shadow_type *type);

/**
 * rust_klp_shadow_type_put() - drop a reference taken by rust_klp_shadow_type_get()
 *
 * The binding goes away with its last reference.
 */
void rust_klp_shadow_type_put(unsigned long id);

#endif /* _RUST_KLP_SHADOW_H */

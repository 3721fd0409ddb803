// SPDX-License-Identifier: GPL-2.0
/*
 * test_rust_klp_shadow_vars.c - the kernel's shadow variable selftest,
 * replayed against rust_klp_shadow.
 *
 * Purpose: show that a C user of klp_shadow_*() sees the same behaviour from
 * rust_klp_shadow_*().  The module makes the calls of the kernel's
 * tools/testing/selftests/livepatch/test_modules/test_klp_shadow_vars.c, in
 * the same order and with the same arguments, and logs each one the same
 * way: pointers are printed as PTRn, n counting distinct pointers in order
 * of first appearance (PTR0 is NULL), so the log does not depend on where
 * things were allocated.  test-shadow-vars.sh compares it with the upstream
 * transcript (function names prefixed with rust_).
 *
 * Usage: insmod rust_klp_shadow.ko; insmod test_rust_klp_shadow_vars.ko;
 * dmesg.  The module stays loaded until rmmod and leaves nothing behind.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/module.h>

#include "rust_klp_shadow.h"

/* Two shadow ids: a "char" field and an "int" field added to each object. */
#define ID_CHAR 0x1234
#define ID_INT 0x1235
#define NR_OBJS 3

/* --- Stable pointer labels --------------------------------------------- */

static const void *labels[64];
static int nr_labels;

/* The label of @p: its index among the pointers seen so far. */
static int label(const void *p)
{
	int i;

	for (i = 0; i < nr_labels; i++)
		if (labels[i] == p)
			return i;
	if (WARN_ON(nr_labels == ARRAY_SIZE(labels)))
		return -1;
	labels[nr_labels] = p;
	return nr_labels++;
}

/* --- Logged calls (labels are taken left to right, as printed) ---------- */

static void *get(void *obj, unsigned long id)
{
	void *sv = rust_klp_shadow_get(obj, id);
	int l_obj = label(obj), l_sv = label(sv);

	pr_info("rust_klp_shadow_get(obj=PTR%d, id=0x%lx) = PTR%d\n", l_obj, id, l_sv);
	return sv;
}

static void log_alloc(const char *fn, void *obj, unsigned long id, size_t size,
		      gfp_t gfp, klp_shadow_ctor_t ctor, void *ctor_data, void *sv)
{
	int l_obj = label(obj), l_ctor = label(ctor);
	int l_data = label(*(void **)ctor_data), l_sv = label(sv);

	pr_info("%s(obj=PTR%d, id=0x%lx, size=%zx, gfp_flags=%pGg), ctor=PTR%d, ctor_data=PTR%d = PTR%d\n",
		fn, l_obj, id, size, &gfp, l_ctor, l_data, l_sv);
}

static void *alloc(void *obj, unsigned long id, size_t size, gfp_t gfp,
		   klp_shadow_ctor_t ctor, void *ctor_data)
{
	void *sv = rust_klp_shadow_alloc(obj, id, size, gfp, ctor, ctor_data);

	log_alloc("rust_klp_shadow_alloc", obj, id, size, gfp, ctor, ctor_data, sv);
	return sv;
}

static void *get_or_alloc(void *obj, unsigned long id, size_t size, gfp_t gfp,
			  klp_shadow_ctor_t ctor, void *ctor_data)
{
	void *sv = rust_klp_shadow_get_or_alloc(obj, id, size, gfp, ctor, ctor_data);

	log_alloc("rust_klp_shadow_get_or_alloc", obj, id, size, gfp, ctor, ctor_data, sv);
	return sv;
}

static void free_one(void *obj, unsigned long id, klp_shadow_dtor_t dtor)
{
	int l_obj, l_dtor;

	rust_klp_shadow_free(obj, id, dtor);
	l_obj = label(obj);
	l_dtor = label(dtor);
	pr_info("rust_klp_shadow_free(obj=PTR%d, id=0x%lx, dtor=PTR%d)\n", l_obj, id, l_dtor);
}

static void free_all(unsigned long id, klp_shadow_dtor_t dtor)
{
	rust_klp_shadow_free_all(id, dtor);
	pr_info("rust_klp_shadow_free_all(id=0x%lx, dtor=PTR%d)\n", id, label(dtor));
}

/* The constructor stores the pointer that @ctor_data points to. */
static int ctor(void *obj, void *shadow_data, void *ctor_data)
{
	void **field = shadow_data, **value = ctor_data;
	int l_field, l_value;

	if (!value)
		return -EINVAL;
	*field = *value;
	l_field = label(field);
	l_value = label(*value);
	pr_info("shadow_ctor: PTR%d -> PTR%d\n", l_field, l_value);
	return 0;
}

static void dtor(void *obj, void *shadow_data)
{
	int l_obj = label(obj), l_data = label(shadow_data);

	pr_info("shadow_dtor(obj=PTR%d, shadow_data=PTR%d)\n", l_obj, l_data);
}

/* "got expected PTRa -> PTRb result" when @sv is @want and holds @value. */
static void expect(void **sv, void **want, void *value)
{
	if (sv == want && *sv == value) {
		int l_sv = label(sv), l_value = label(*sv);

		pr_info("  got expected PTR%d -> PTR%d result\n", l_sv, l_value);
	}
}

static void expect_null(void *sv)
{
	if (!sv)
		pr_info("  got expected NULL result\n");
}

/* --- The sequence --------------------------------------------------------- */

struct object {
	long payload;		/* the parent objects; never looked at */
};

static int __init test_rust_klp_shadow_vars_init(void)
{
	struct object objs[NR_OBJS];
	char chars[NR_OBJS], *char_ptr[NR_OBJS], **sv_char[NR_OBJS];
	int ints[NR_OBJS], *int_ptr[NR_OBJS], **sv_int[NR_OBJS];
	char *dup_ptr[NR_OBJS];
	void **sv;
	int i, err = 0;

	label(NULL);

	/* An empty table has nothing. */
	expect_null(get(&objs[0], ID_CHAR));

	/* 1: a "char" and an "int" variable for each object. */
	for (i = 0; i < NR_OBJS; i++) {
		char_ptr[i] = &chars[i];
		label(char_ptr[i]);
		if (i % 2)
			sv_char[i] = alloc(&objs[i], ID_CHAR, sizeof(char_ptr[i]),
					   GFP_KERNEL, ctor, &char_ptr[i]);
		else
			sv_char[i] = get_or_alloc(&objs[i], ID_CHAR, sizeof(char_ptr[i]),
						  GFP_KERNEL, ctor, &char_ptr[i]);
		if (!sv_char[i]) {
			err = -ENOMEM;
			goto out;
		}

		int_ptr[i] = &ints[i];
		label(int_ptr[i]);
		sv_int[i] = alloc(&objs[i], ID_INT, sizeof(int_ptr[i]), GFP_KERNEL,
				  ctor, &int_ptr[i]);
		if (!sv_int[i]) {
			err = -ENOMEM;
			goto out;
		}
	}

	/* 2: every variable is found, with its value. */
	for (i = 0; i < NR_OBJS; i++) {
		sv = get(&objs[i], ID_CHAR);
		if (!sv) {
			err = -EINVAL;
			goto out;
		}
		expect(sv, (void **)sv_char[i], char_ptr[i]);

		sv = get(&objs[i], ID_INT);
		if (!sv) {
			err = -EINVAL;
			goto out;
		}
		expect(sv, (void **)sv_int[i], int_ptr[i]);
	}

	/* 3: get_or_alloc of existing variables returns them. */
	for (i = 0; i < NR_OBJS; i++) {
		dup_ptr[i] = &chars[i];
		label(dup_ptr[i]);
		sv = get_or_alloc(&objs[i], ID_CHAR, sizeof(dup_ptr[i]), GFP_KERNEL,
				  ctor, &dup_ptr[i]);
		if (!sv) {
			err = -EINVAL;
			goto out;
		}
		expect(sv, (void **)sv_char[i], char_ptr[i]);
	}

	/* 4: free the "char" variables one by one. */
	for (i = 0; i < NR_OBJS; i++) {
		free_one(&objs[i], ID_CHAR, dtor);
		expect_null(get(&objs[i], ID_CHAR));
	}

	/* 5: the "int" variables are still there. */
	for (i = 0; i < NR_OBJS; i++) {
		sv = get(&objs[i], ID_INT);
		if (!sv) {
			err = -EINVAL;
			goto out;
		}
		expect(sv, (void **)sv_int[i], int_ptr[i]);
	}

	/* 6: free them all at once (no dtor: the order would not be stable). */
	free_all(ID_INT, NULL);
	for (i = 0; i < NR_OBJS; i++)
		expect_null(get(&objs[i], ID_INT));

	return 0;
out:
	rust_klp_shadow_free_all(ID_CHAR, NULL);
	rust_klp_shadow_free_all(ID_INT, NULL);
	return err;
}

static void __exit test_rust_klp_shadow_vars_exit(void)
{
}

module_init(test_rust_klp_shadow_vars_init);
module_exit(test_rust_klp_shadow_vars_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("rust_klp_shadow test: the upstream shadow variable selftest, replayed");

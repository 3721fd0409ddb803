// SPDX-License-Identifier: GPL-2.0
/*
 * test_rust_klp_shadow.c - test cases of the rust_klp_shadow table, through
 * its C ABI (rust/shadow/rust_klp_shadow.h).
 *
 * Purpose: one checkable case per behaviour the table promises beyond the
 * upstream selftest: edge cases, errors, contexts, scale, typed ids,
 * concurrency.  The test-shadow-*.sh scripts run each case as a KTAP subtest.
 *
 * Usage:
 *   insmod rust_klp_shadow.ko; insmod test_rust_klp_shadow.ko
 *   echo CASE > /sys/kernel/debug/test_rust_klp_shadow/run
 *
 * The write succeeds when the case passed and fails with EIO otherwise; the
 * log has "test_rust_klp_shadow: PASS CASE" or "... FAIL CASE: reason".
 * Each case frees what it allocated, except the ones named *_keep / _alloc /
 * _register, which leave variables for the script to inspect (or for the
 * table's unload to report).  `cat .../cases` lists the cases.
 *
 *   # echo size0 > /sys/kernel/debug/test_rust_klp_shadow/run
 *   # dmesg | tail -1
 *   test_rust_klp_shadow: PASS size0
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/completion.h>
#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/hrtimer.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/prandom.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/timer.h>
#include <linux/vmalloc.h>

#include "rust_klp_shadow.h"

static unsigned long million = 1000000;
module_param(million, ulong, 0644);
MODULE_PARM_DESC(million, "variables of the million_* cases (default 1000000)");

static unsigned int stress_threads = 3;
module_param(stress_threads, uint, 0644);
MODULE_PARM_DESC(stress_threads, "kthreads of the stress case (default 3)");

static unsigned int stress_ops = 60000;
module_param(stress_ops, uint, 0644);
MODULE_PARM_DESC(stress_ops, "operations per stress kthread (default 60000)");

/*
 * test-shadow-faults.sh fails the table's own allocations (failslab,
 * fail_page_alloc): then a GFP_KERNEL alloc may return NULL too.
 */
static bool stress_faults;
module_param(stress_faults, bool, 0644);
MODULE_PARM_DESC(stress_faults, "stress: accept NULL from GFP_KERNEL allocations too (default N)");

/* Shadow ids of the cases; each case uses its own. */
enum {
	ID_BASIC = 0x5000,
	ID_OTHER,
	ID_CTX,
	ID_HARD,
	ID_RCU,
	ID_TYPED = 0x5100,
	ID_MILLION = 0x3001,
	ID_KEEP = 0x4001,
	ID_STRESS = 0x6000,	/* + thread number; the timer uses ID_STRESS + 0xff */
};

static const char *cur_case;

#define CHECK(cond, fmt, ...)							\
	do {									\
		if (!(cond)) {							\
			pr_err("FAIL %s: " fmt " (line %d)\n", cur_case,	\
			       ##__VA_ARGS__, __LINE__);			\
			return -EIO;						\
		}								\
	} while (0)

/* Parent objects: real memory, so the pointers look like real ones. */
#define NR_OBJS 4096
static char (*objs)[64];
#define OBJ(i) ((void *)objs[i])

/* --- Constructors and destructors that count and record ------------------ */

static atomic_t ctor_calls, dtor_calls;
static void *last_dtor_obj, *last_dtor_data;

struct ctor_check {
	size_t size;
	unsigned long id;
	u64 value;
	bool saw_nonzero, saw_preemptible, saw_visible;
};

/* Checks what the table promises the ctor, then stores ->value. */
static int checking_ctor(void *obj, void *data, void *ctor_data)
{
	struct ctor_check *c = ctor_data;

	atomic_inc(&ctor_calls);
	if (memchr_inv(data, 0, c->size))
		c->saw_nonzero = true;
	if (!irqs_disabled())
		c->saw_preemptible = true;
	if (rust_klp_shadow_get(obj, c->id))
		c->saw_visible = true;
	if (c->size >= sizeof(u64))
		*(u64 *)data = c->value;
	return 0;
}

static int failing_ctor(void *obj, void *data, void *ctor_data)
{
	atomic_inc(&ctor_calls);
	return -ENOSPC;
}

static void counting_dtor(void *obj, void *data)
{
	atomic_inc(&dtor_calls);
	last_dtor_obj = obj;
	last_dtor_data = data;
}

static void reset_counts(void)
{
	atomic_set(&ctor_calls, 0);
	atomic_set(&dtor_calls, 0);
	last_dtor_obj = last_dtor_data = NULL;
}

/* The number of variables of @id on the first @n objects. */
static unsigned long live(unsigned long id, unsigned long n)
{
	unsigned long i, count = 0;

	for (i = 0; i < n; i++)
		count += !!rust_klp_shadow_get(OBJ(i), id);
	return count;
}

/* --- Edge cases ------------------------------------------------------------- */

/* NULL is a valid parent object, as upstream. */
static int case_null_obj(void)
{
	void *p = rust_klp_shadow_alloc(NULL, ID_BASIC, 8, GFP_KERNEL, NULL, NULL);

	CHECK(p, "alloc(NULL, id) failed");
	CHECK(rust_klp_shadow_get(NULL, ID_BASIC) == p, "get(NULL, id) != alloc");
	CHECK(!rust_klp_shadow_get(NULL, ID_OTHER), "get(NULL, other id) found something");
	CHECK(!rust_klp_shadow_get(OBJ(0), ID_BASIC), "get(obj, id) found NULL's variable");
	rust_klp_shadow_free(NULL, ID_BASIC, counting_dtor);
	CHECK(atomic_read(&dtor_calls) == 1 && !last_dtor_obj && last_dtor_data == p,
	      "dtor not called once with <NULL, data>");
	CHECK(!rust_klp_shadow_get(NULL, ID_BASIC), "still there after free");
	return 0;
}

/* Size 0 is a flag: a unique, non-NULL pointer. */
static int case_size0(void)
{
	void *p[16];
	int i, j;

	for (i = 0; i < ARRAY_SIZE(p); i++) {
		p[i] = rust_klp_shadow_alloc(OBJ(i), ID_BASIC, 0, GFP_KERNEL, NULL, NULL);
		CHECK(p[i], "alloc of size 0 returned NULL");
		for (j = 0; j < i; j++)
			CHECK(p[i] != p[j], "two size-0 variables share %px", p[i]);
	}
	for (i = 0; i < ARRAY_SIZE(p); i++)
		CHECK(rust_klp_shadow_get(OBJ(i), ID_BASIC) == p[i], "get != alloc");
	rust_klp_shadow_free_all(ID_BASIC, counting_dtor);
	CHECK(atomic_read(&dtor_calls) == ARRAY_SIZE(p), "dtor calls %d",
	      atomic_read(&dtor_calls));
	return 0;
}

/* Too large for kmalloc: NULL and a pr_err, no allocator WARN, no ctor. */
static int case_too_large(void)
{
	static const size_t sizes[] = { KMALLOC_MAX_SIZE, KMALLOC_MAX_SIZE - 16,
					SIZE_MAX, SIZE_MAX - 64 };
	struct ctor_check c = { .id = ID_BASIC };
	int i;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		CHECK(!rust_klp_shadow_alloc(OBJ(0), ID_BASIC, sizes[i], GFP_KERNEL,
					     checking_ctor, &c), "size %zu allocated", sizes[i]);
		CHECK(!rust_klp_shadow_get_or_alloc(OBJ(0), ID_BASIC, sizes[i], GFP_ATOMIC,
						    checking_ctor, &c), "size %zu allocated", sizes[i]);
	}
	CHECK(atomic_read(&ctor_calls) == 0, "ctor called");
	CHECK(!rust_klp_shadow_get(OBJ(0), ID_BASIC), "something was inserted");
	/* A big size that fits works. */
	CHECK(rust_klp_shadow_alloc(OBJ(0), ID_BASIC, 1 << 20, GFP_KERNEL, NULL, NULL),
	      "1 MiB variable failed");
	rust_klp_shadow_free(OBJ(0), ID_BASIC, NULL);
	return 0;
}

/* Data is zeroed and 16-byte aligned, for every size. */
static int case_zeroed_aligned(void)
{
	size_t size;
	u8 *p;

	for (size = 0; size <= 600; size++) {
		p = rust_klp_shadow_alloc(OBJ(size), ID_BASIC, size, GFP_KERNEL, NULL, NULL);
		CHECK(p, "size %zu failed", size);
		CHECK(IS_ALIGNED((unsigned long)p, RUST_KLP_SHADOW_DATA_ALIGN),
		      "size %zu: data %px not aligned", size, p);
		CHECK(!memchr_inv(p, 0, size), "size %zu: not zeroed", size);
		memset(p, 0xa5, size);	/* KASAN checks the bounds */
	}
	p = rust_klp_shadow_alloc(OBJ(0), ID_OTHER, 65536, GFP_KERNEL, NULL, NULL);
	CHECK(p && !memchr_inv(p, 0, 65536), "64 KiB variable not zeroed");
	memset(p, 0x5a, 65536);
	rust_klp_shadow_free_all(ID_BASIC, NULL);
	rust_klp_shadow_free_all(ID_OTHER, NULL);
	return 0;
}

/* NULL ctor and NULL dtor are allowed. */
static int case_null_ctor_dtor(void)
{
	u64 *p = rust_klp_shadow_get_or_alloc(OBJ(1), ID_BASIC, 8, GFP_KERNEL, NULL, NULL);

	CHECK(p && *p == 0, "no zeroed variable");
	rust_klp_shadow_free(OBJ(1), ID_BASIC, NULL);
	CHECK(!rust_klp_shadow_get(OBJ(1), ID_BASIC), "not freed");
	rust_klp_shadow_get_or_alloc(OBJ(1), ID_BASIC, 8, GFP_KERNEL, NULL, NULL);
	rust_klp_shadow_free_all(ID_BASIC, NULL);
	CHECK(!rust_klp_shadow_get(OBJ(1), ID_BASIC), "not freed by free_all");
	return 0;
}

/* alloc of an existing <obj, id>: WARN and NULL, the variable untouched. */
static int case_duplicate(void)
{
	struct ctor_check c = { .size = 8, .id = ID_BASIC, .value = 0x1234 };
	u64 *p = rust_klp_shadow_alloc(OBJ(2), ID_BASIC, 8, GFP_KERNEL, checking_ctor, &c);

	CHECK(p && *p == 0x1234, "first alloc");
	c.value = 0x5678;
	CHECK(!rust_klp_shadow_alloc(OBJ(2), ID_BASIC, 8, GFP_KERNEL, checking_ctor, &c),
	      "duplicate alloc succeeded");
	CHECK(atomic_read(&ctor_calls) == 1, "ctor called for the duplicate");
	CHECK(rust_klp_shadow_get(OBJ(2), ID_BASIC) == p && *p == 0x1234,
	      "existing variable changed");
	rust_klp_shadow_free(OBJ(2), ID_BASIC, NULL);
	return 0;
}

/* get_or_alloc of an existing variable returns it; the ctor is not called. */
static int case_get_or_alloc_existing(void)
{
	struct ctor_check c = { .size = 8, .id = ID_BASIC, .value = 7 };
	u64 *p = rust_klp_shadow_get_or_alloc(OBJ(3), ID_BASIC, 8, GFP_KERNEL, checking_ctor, &c);

	c.value = 8;
	CHECK(p && rust_klp_shadow_get_or_alloc(OBJ(3), ID_BASIC, 8, GFP_KERNEL,
						checking_ctor, &c) == p, "other pointer");
	CHECK(*p == 7 && atomic_read(&ctor_calls) == 1, "ctor ran again");
	rust_klp_shadow_free(OBJ(3), ID_BASIC, NULL);
	return 0;
}

/* A failing ctor: NULL, nothing inserted (kmemleak checks nothing leaked). */
static int case_ctor_fail(void)
{
	CHECK(!rust_klp_shadow_get_or_alloc(OBJ(4), ID_BASIC, 32, GFP_KERNEL, failing_ctor, NULL),
	      "get_or_alloc with a failing ctor succeeded");
	CHECK(!rust_klp_shadow_alloc(OBJ(4), ID_BASIC, 32, GFP_ATOMIC, failing_ctor, NULL),
	      "alloc with a failing ctor succeeded");
	CHECK(atomic_read(&ctor_calls) == 2, "ctor calls %d", atomic_read(&ctor_calls));
	CHECK(!rust_klp_shadow_get(OBJ(4), ID_BASIC), "inserted anyway");
	CHECK(rust_klp_shadow_alloc(OBJ(4), ID_BASIC, 32, GFP_KERNEL, NULL, NULL),
	      "the key is not usable afterwards");
	rust_klp_shadow_free(OBJ(4), ID_BASIC, NULL);
	return 0;
}

/* The ctor runs once, atomic, on zeroed data, before the variable is visible. */
static int case_ctor_once_atomic(void)
{
	struct ctor_check c = { .size = 256, .id = ID_BASIC, .value = 42 };
	u64 *p = rust_klp_shadow_alloc(OBJ(5), ID_BASIC, 256, GFP_KERNEL, checking_ctor, &c);

	CHECK(p && *p == 42, "ctor value not stored");
	CHECK(atomic_read(&ctor_calls) == 1, "ctor calls %d", atomic_read(&ctor_calls));
	CHECK(!c.saw_nonzero, "ctor saw data that was not zeroed");
	CHECK(!c.saw_preemptible, "ctor ran with interrupts on (not under the lock)");
	CHECK(!c.saw_visible, "variable visible to get() inside its ctor");
	rust_klp_shadow_free(OBJ(5), ID_BASIC, NULL);
	return 0;
}

/* dtor(obj, data): once per free, once per variable of free_all. */
static int case_dtor_args(void)
{
	void *p = rust_klp_shadow_alloc(OBJ(6), ID_BASIC, 16, GFP_KERNEL, NULL, NULL);
	int i;

	rust_klp_shadow_free(OBJ(6), ID_BASIC, counting_dtor);
	CHECK(atomic_read(&dtor_calls) == 1, "dtor calls %d", atomic_read(&dtor_calls));
	CHECK(last_dtor_obj == OBJ(6) && last_dtor_data == p, "dtor arguments");
	for (i = 0; i < 100; i++)
		rust_klp_shadow_alloc(OBJ(i), ID_BASIC, 16, GFP_KERNEL, NULL, NULL);
	rust_klp_shadow_free_all(ID_BASIC, counting_dtor);
	CHECK(atomic_read(&dtor_calls) == 101, "dtor calls %d", atomic_read(&dtor_calls));
	CHECK(live(ID_BASIC, 100) == 0, "left over");
	return 0;
}

/* Freeing what does not exist is a silent no-op. */
static int case_free_missing(void)
{
	rust_klp_shadow_free(OBJ(7), ID_BASIC, counting_dtor);
	rust_klp_shadow_alloc(OBJ(7), ID_BASIC, 8, GFP_KERNEL, NULL, NULL);
	rust_klp_shadow_free(OBJ(7), ID_OTHER, counting_dtor);
	rust_klp_shadow_free(OBJ(8), ID_BASIC, counting_dtor);
	CHECK(atomic_read(&dtor_calls) == 0, "dtor called for a missing variable");
	rust_klp_shadow_free(OBJ(7), ID_BASIC, counting_dtor);
	rust_klp_shadow_free(OBJ(7), ID_BASIC, counting_dtor);
	CHECK(atomic_read(&dtor_calls) == 1, "dtor calls %d", atomic_read(&dtor_calls));
	return 0;
}

/* free_all of an id with nothing; free_all leaves other ids alone. */
static int case_free_all(void)
{
	int i;

	rust_klp_shadow_free_all(ID_BASIC, counting_dtor);
	CHECK(atomic_read(&dtor_calls) == 0, "dtor called with nothing to free");
	for (i = 0; i < 200; i++) {
		rust_klp_shadow_alloc(OBJ(i), ID_BASIC, 8, GFP_KERNEL, NULL, NULL);
		rust_klp_shadow_alloc(OBJ(i), ID_OTHER, 8, GFP_KERNEL, NULL, NULL);
	}
	rust_klp_shadow_free_all(ID_BASIC, counting_dtor);
	CHECK(atomic_read(&dtor_calls) == 200, "dtor calls %d", atomic_read(&dtor_calls));
	CHECK(live(ID_BASIC, 200) == 0 && live(ID_OTHER, 200) == 200, "wrong ids freed");
	rust_klp_shadow_free_all(ID_OTHER, NULL);
	return 0;
}

/* --- Contexts: softirq (timer) and hardirq (hrtimer) -------------------- */

#define CTX_VARS 64

struct ctx_test {
	struct timer_list timer;
	struct hrtimer hrtimer;
	struct completion done;
	unsigned long id;
	int errors;
	bool in_softirq, in_hardirq;
};

/* In interrupt context: get_or_alloc with GFP_ATOMIC, get, free half. */
static void ctx_work(struct ctx_test *t)
{
	struct ctor_check c = { .size = 8, .id = t->id };
	u64 *p;
	int i;

	for (i = 0; i < CTX_VARS; i++) {
		c.value = i + 1;
		p = rust_klp_shadow_get_or_alloc(OBJ(i), t->id, 8, GFP_ATOMIC, checking_ctor, &c);
		if (!p || *p != i + 1 || rust_klp_shadow_get(OBJ(i), t->id) != p)
			t->errors++;
	}
	for (i = 0; i < CTX_VARS; i += 2)
		rust_klp_shadow_free(OBJ(i), t->id, counting_dtor);
	complete(&t->done);
}

static void ctx_timer(struct timer_list *timer)
{
	struct ctx_test *t = from_timer(t, timer, timer);

	t->in_softirq = in_serving_softirq();
	ctx_work(t);
}

static enum hrtimer_restart ctx_hrtimer(struct hrtimer *hrtimer)
{
	struct ctx_test *t = container_of(hrtimer, struct ctx_test, hrtimer);

	t->in_hardirq = in_hardirq();
	ctx_work(t);
	return HRTIMER_NORESTART;
}

static int ctx_check(struct ctx_test *t)
{
	int i;

	CHECK(t->errors == 0, "%d errors in interrupt context", t->errors);
	for (i = 0; i < CTX_VARS; i++) {
		u64 *p = rust_klp_shadow_get(OBJ(i), t->id);

		CHECK(i % 2 ? p && *p == i + 1 : !p, "variable %d after the timer", i);
	}
	CHECK(atomic_read(&dtor_calls) == CTX_VARS / 2, "dtor calls %d",
	      atomic_read(&dtor_calls));
	rust_klp_shadow_free_all(t->id, NULL);
	return 0;
}

static int case_softirq(void)
{
	struct ctx_test t = { .id = ID_CTX };
	int err;

	init_completion(&t.done);
	timer_setup_on_stack(&t.timer, ctx_timer, 0);
	mod_timer(&t.timer, jiffies + 1);
	wait_for_completion(&t.done);
	del_timer_sync(&t.timer);
	destroy_timer_on_stack(&t.timer);
	CHECK(t.in_softirq, "the timer did not run in softirq context");
	err = ctx_check(&t);
	return err;
}

static int case_hardirq(void)
{
	struct ctx_test t = { .id = ID_HARD };

	init_completion(&t.done);
	hrtimer_init_on_stack(&t.hrtimer, CLOCK_MONOTONIC, HRTIMER_MODE_REL_HARD);
	t.hrtimer.function = ctx_hrtimer;
	hrtimer_start(&t.hrtimer, ms_to_ktime(1), HRTIMER_MODE_REL_HARD);
	wait_for_completion(&t.done);
	hrtimer_cancel(&t.hrtimer);
	destroy_hrtimer_on_stack(&t.hrtimer);
	CHECK(t.in_hardirq, "the hrtimer did not run in hardirq context");
	return ctx_check(&t);
}

/* --- RCU-deferred frees -------------------------------------------------- */

static int case_free_rcu(void)
{
	u64 *p;
	int i;

	p = rust_klp_shadow_alloc(OBJ(9), ID_RCU, 8, GFP_KERNEL, NULL, NULL);
	CHECK(p, "alloc");
	*p = 0xfeed;
	rust_klp_rcu_read_lock();
	CHECK(rust_klp_shadow_get(OBJ(9), ID_RCU) == p, "get under RCU");
	rust_klp_shadow_free_rcu(OBJ(9), ID_RCU, counting_dtor);
	CHECK(!rust_klp_shadow_get(OBJ(9), ID_RCU), "still found after free_rcu");
	mdelay(20);	/* a grace period cannot end while we read */
	CHECK(*p == 0xfeed, "data changed under the reader");
	CHECK(atomic_read(&dtor_calls) == 0, "dtor ran during the read-side critical section");
	rust_klp_rcu_read_unlock();
	rcu_barrier();
	CHECK(atomic_read(&dtor_calls) == 1, "dtor calls %d after the grace period",
	      atomic_read(&dtor_calls));
	CHECK(last_dtor_obj == OBJ(9) && last_dtor_data == p, "dtor arguments");

	for (i = 0; i < 50; i++)
		rust_klp_shadow_alloc(OBJ(i), ID_RCU, 8, GFP_KERNEL, NULL, NULL);
	rust_klp_shadow_free_all_rcu(ID_RCU, counting_dtor);
	CHECK(live(ID_RCU, 50) == 0, "still found after free_all_rcu");
	rcu_barrier();
	CHECK(atomic_read(&dtor_calls) == 51, "dtor calls %d", atomic_read(&dtor_calls));
	return 0;
}

/* --- Typed ids ------------------------------------------------------------ */

/* Types are told apart by size, align and the layout they declare; names only label them. */
static const struct rust_klp_shadow_type type_a = {
	.name = "test_rust_klp_shadow::Typed", .size = 8, .align = 8, .layout = 1,
	.dtor = counting_dtor, .owner = THIS_MODULE,
};
/* An equal type in another struct, as a second module would register it. */
static const struct rust_klp_shadow_type type_a2 = {
	.name = "test_rust_klp_shadow::Typed", .size = 8, .align = 8, .layout = 1,
	.dtor = counting_dtor, .owner = THIS_MODULE,
};
static const struct rust_klp_shadow_type type_b = {
	.name = "test_rust_klp_shadow::Other", .size = 8, .align = 8, .layout = 2,
	.dtor = counting_dtor, .owner = THIS_MODULE,
};
static const struct rust_klp_shadow_type type_c = {
	.name = "test_rust_klp_shadow::Typed", .size = 16, .align = 8, .layout = 1,
	.dtor = counting_dtor, .owner = THIS_MODULE,
};
static const struct rust_klp_shadow_type type_overaligned = {
	.name = "test_rust_klp_shadow::Page", .size = 64, .align = 64, .layout = 3,
	.dtor = counting_dtor, .owner = THIS_MODULE,
};
/* Registrations of ID_TYPED this module holds (NULL: none), undone at exit. */
static struct rust_klp_shadow_reg *typed_registered, *reg_a, *reg_a2, *reg_b;

/* Registers @t for @id; 0 or the error. */
static int reg_id(unsigned long id, const struct rust_klp_shadow_type *t,
		  struct rust_klp_shadow_reg **r)
{
	struct rust_klp_shadow_binding *binding;
	unsigned long gen;
	int err = rust_klp_shadow_type_register(id, t, r, &binding, &gen);

	if (err)
		*r = NULL;
	return err;
}

/* Registers for ID_TYPED and remembers it, so that exit can undo it. */
static int reg(const struct rust_klp_shadow_type *t, struct rust_klp_shadow_reg **r)
{
	return reg_id(ID_TYPED, t, r);
}

static void unreg(struct rust_klp_shadow_reg **r)
{
	rust_klp_shadow_type_unregister(*r);
	*r = NULL;
}

/* Same type twice ok, other types refused, leftovers freed once at the last unregister. */
static int case_typed(void)
{
	int i, err;

	CHECK(!reg(&type_a, &reg_a), "first registration");
	CHECK(!reg(&type_a2, &reg_a2), "equal type refused");
	err = reg(&type_b, &reg_b);
	CHECK(err == -EINVAL, "other layout: %d", err);
	err = reg(&type_c, &reg_b);
	CHECK(err == -EINVAL, "other size: %d", err);
	err = reg_id(ID_TYPED + 1, &type_overaligned, &reg_b);
	CHECK(err == -EINVAL, "align 64: %d", err);
	for (i = 0; i < 5; i++)
		CHECK(rust_klp_shadow_alloc(OBJ(i), ID_TYPED, 8, GFP_KERNEL, NULL, NULL), "alloc");
	unreg(&reg_a2);
	CHECK(live(ID_TYPED, 5) == 5 && atomic_read(&dtor_calls) == 0,
	      "variables freed while a registration is left");
	unreg(&reg_a);
	/* unregister() waited for the deferred destructors. */
	CHECK(atomic_read(&dtor_calls) == 5, "dtor calls %d", atomic_read(&dtor_calls));
	CHECK(live(ID_TYPED, 5) == 0, "variables left");
	/* The id is free again: another type may take it now. */
	CHECK(!reg(&type_b, &reg_b), "id not released");
	unreg(&reg_b);
	return 0;
}

/* Leaves 3 typed variables for the script to see in debugfs. */
static int case_typed_register(void)
{
	int i;

	CHECK(!typed_registered && !reg_a, "already registered");
	CHECK(!reg(&type_a, &typed_registered), "register");
	for (i = 0; i < 3; i++)
		CHECK(rust_klp_shadow_alloc(OBJ(i), ID_TYPED, 8, GFP_KERNEL, NULL, NULL), "alloc");
	return 0;
}

static int case_typed_unregister(void)
{
	CHECK(typed_registered, "not registered");
	unreg(&typed_registered);
	CHECK(atomic_read(&dtor_calls) == 3, "dtor calls %d", atomic_read(&dtor_calls));
	return 0;
}

/* --- Scale -------------------------------------------------------------------- */

static void *million_obj(unsigned long i)
{
	/* Parent pointers are keys only: distinct, aligned, never dereferenced. */
	return (void *)((unsigned long)objs + i * 64);
}

static u64 ns_each(u64 t0, unsigned long n)
{
	return div64_u64(ktime_get_ns() - t0, n ?: 1);
}

static int case_million_alloc(void)
{
	unsigned long i;
	u64 t0 = ktime_get_ns();

	for (i = 0; i < million; i++) {
		CHECK(rust_klp_shadow_alloc(million_obj(i), ID_MILLION, 8, GFP_KERNEL, NULL, NULL),
		      "alloc %lu failed", i);
		if (!(i & 1023))
			cond_resched();
	}
	pr_info("million: alloc of %lu variables: %llu ms, %llu ns each\n", million,
		div64_u64(ktime_get_ns() - t0, NSEC_PER_MSEC), ns_each(t0, million));
	return 0;
}

/* Timed lookups: hits over all variables, then misses. */
static int case_million_get(void)
{
	unsigned long i, step = max(1UL, million / 100000), n = 0;
	u64 t0;

	t0 = ktime_get_ns();
	for (i = 0; i < million; i += step, n++)
		CHECK(rust_klp_shadow_get(million_obj(i), ID_MILLION), "variable %lu missing", i);
	pr_info("million: get (hit) at %lu variables: %llu ns each\n", million, ns_each(t0, n));
	t0 = ktime_get_ns();
	for (i = 0, n = 0; i < million; i += step, n++)
		CHECK(!rust_klp_shadow_get(million_obj(i), ID_MILLION + 1), "found a ghost");
	pr_info("million: get (miss) at %lu variables: %llu ns each\n", million, ns_each(t0, n));
	return 0;
}

static int case_million_free(void)
{
	u64 t0 = ktime_get_ns();

	rust_klp_shadow_free_all(ID_MILLION, NULL);
	pr_info("million: free_all of %lu variables: %llu ms\n", million,
		div64_u64(ktime_get_ns() - t0, NSEC_PER_MSEC));
	CHECK(!rust_klp_shadow_get(million_obj(0), ID_MILLION), "variable 0 left");
	CHECK(!rust_klp_shadow_get(million_obj(million - 1), ID_MILLION), "last variable left");
	/*
	 * The variables go back to the slab after a grace period: the table
	 * frees them with kfree_rcu() (no destructor), which batches them and
	 * frees them from a worker, and kmemleak's records of them follow
	 * through RCU callbacks.  Wait for both here, so that this case, not
	 * the next test, pays for them: rcu_barrier() alone does not wait for
	 * kfree_rcu()'s batches, and under TCG that backlog slowed whatever
	 * test came next for minutes (kmemleak scans 370 s instead of 55 s,
	 * ps_lock cycles 494 s instead of 190-266 s).
	 */
	t0 = ktime_get_ns();
	kvfree_rcu_barrier();
	rcu_barrier();
	pr_info("million: the frees' kfree_rcu() batches and RCU callbacks done %llu ms later\n",
		div64_u64(ktime_get_ns() - t0, NSEC_PER_MSEC));
	return 0;
}

/* Leaves 10 variables of 24 bytes behind, for the table's unload to report. */
static int case_leave_keep(void)
{
	int i;

	for (i = 0; i < 10; i++)
		CHECK(rust_klp_shadow_alloc(OBJ(i), ID_KEEP, 24, GFP_KERNEL, NULL, NULL), "alloc");
	return 0;
}

/* --- Stress: kthreads with exact models, plus a hardirq timer -------------- */

struct stress {
	struct task_struct *task;
	unsigned long id;
	u32 model[NR_OBJS];	/* 0: absent, else the variable's value */
	struct rnd_state rnd;
	int errors;
	unsigned long ops;
	unsigned long failed, failed_kernel;	/* allocations that returned NULL */
	atomic_t *dtors;
	struct completion done;
};

static atomic_t stress_dtors;

static void stress_dtor(void *obj, void *data)
{
	atomic_inc(&stress_dtors);
}

static int value_ctor(void *obj, void *data, void *ctor_data)
{
	*(u32 *)data = (u32)(unsigned long)ctor_data;
	return 0;
}

/*
 * An allocation of an absent <obj, id> returned NULL: whether that is
 * allowed (GFP_ATOMIC may fail; with stress_faults any allocation may) and
 * nothing was inserted.  Counts the failures.
 */
static bool stress_null_ok(struct stress *s, gfp_t gfp, void *obj)
{
	if (gfpflags_allow_blocking(gfp)) {
		if (!READ_ONCE(stress_faults))
			return false;
		s->failed_kernel++;
	}
	s->failed++;
	return !rust_klp_shadow_get(obj, s->id);
}

/* One random operation on this worker's id; checks the result against the model. */
static void stress_op(struct stress *s, gfp_t gfp, u32 nobjs)
{
	u32 i = prandom_u32_state(&s->rnd) % nobjs, v = (u32)s->ops | 1, *p;
	u32 *m = &s->model[i];
	void *obj = OBJ(i);

	switch (prandom_u32_state(&s->rnd) % 10) {
	case 0 ... 2:
		p = rust_klp_shadow_get(obj, s->id);
		if (*m ? !p || *p != *m : !!p)
			s->errors++;
		break;
	case 3 ... 4:
		if (*m)	/* a duplicate would WARN: covered by its own case */
			break;
		p = rust_klp_shadow_alloc(obj, s->id, 4, gfp, value_ctor, (void *)(unsigned long)v);
		if (p && *p == v)
			*m = v;
		else if (p || !stress_null_ok(s, gfp, obj))
			s->errors++;
		break;
	case 5 ... 6:
		p = rust_klp_shadow_get_or_alloc(obj, s->id, 4, gfp, value_ctor,
						 (void *)(unsigned long)v);
		if (!p && !*m) {
			s->errors += !stress_null_ok(s, gfp, obj);
			break;
		}
		if (!p || *p != (*m ?: v))
			s->errors++;
		else
			*m = *p;
		break;
	case 7:
		rust_klp_shadow_free(obj, s->id, *m ? stress_dtor : NULL);
		*m = 0;
		break;
	case 8:
		rust_klp_shadow_free_rcu(obj, s->id, *m ? stress_dtor : NULL);
		*m = 0;
		break;
	default:
		if (prandom_u32_state(&s->rnd) % 500)
			break;
		rust_klp_shadow_free_all(s->id, NULL);
		memset(s->model, 0, sizeof(s->model));
	}
	s->ops++;
}

static int stress_thread(void *arg)
{
	struct stress *s = arg;
	unsigned long n;

	for (n = 0; n < stress_ops; n++) {
		stress_op(s, n % 4 ? GFP_KERNEL : GFP_ATOMIC, NR_OBJS);
		if (!(n & 255))
			cond_resched();
	}
	rust_klp_shadow_free_all(s->id, NULL);
	complete(&s->done);
	return 0;
}

static struct stress *irq_stress;
static bool irq_stress_stop;

static enum hrtimer_restart stress_hrtimer(struct hrtimer *t)
{
	int k;

	for (k = 0; k < 8; k++)
		stress_op(irq_stress, GFP_ATOMIC, 256);
	if (READ_ONCE(irq_stress_stop))
		return HRTIMER_NORESTART;
	hrtimer_forward_now(t, ns_to_ktime(500 * NSEC_PER_USEC));
	return HRTIMER_RESTART;
}

static int case_stress(void)
{
	unsigned int n = clamp(stress_threads, 2U, 16U), i;
	struct stress *s;
	struct hrtimer timer;
	int errors = 0;
	unsigned long timer_ops, failed = 0, failed_kernel = 0;

	s = vcalloc(n + 1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	atomic_set(&stress_dtors, 0);
	for (i = 0; i <= n; i++) {
		s[i].id = i < n ? ID_STRESS + i : ID_STRESS + 0xff;
		prandom_seed_state(&s[i].rnd, 0x5eed + i);
		init_completion(&s[i].done);
	}
	irq_stress = &s[n];
	WRITE_ONCE(irq_stress_stop, false);
	hrtimer_init_on_stack(&timer, CLOCK_MONOTONIC, HRTIMER_MODE_REL_HARD);
	timer.function = stress_hrtimer;
	hrtimer_start(&timer, ns_to_ktime(500 * NSEC_PER_USEC), HRTIMER_MODE_REL_HARD);
	for (i = 0; i < n; i++)
		s[i].task = kthread_run(stress_thread, &s[i], "rks_stress/%u", i);
	for (i = 0; i < n; i++) {
		if (IS_ERR(s[i].task)) {
			errors++;
			continue;
		}
		wait_for_completion(&s[i].done);
		errors += s[i].errors;
		failed += s[i].failed;
		failed_kernel += s[i].failed_kernel;
	}
	WRITE_ONCE(irq_stress_stop, true);
	hrtimer_cancel(&timer);
	destroy_hrtimer_on_stack(&timer);
	timer_ops = irq_stress->ops;
	errors += irq_stress->errors;
	failed += irq_stress->failed;
	rust_klp_shadow_free_all(irq_stress->id, NULL);
	rcu_barrier();
	for (i = 0; i <= n; i++)
		errors += live(s[i].id, NR_OBJS);
	vfree(s);
	pr_info("stress: %u kthreads x %u ops, %lu ops in hardirq, %d dtors, %lu allocations failed (%lu with GFP_KERNEL)\n",
		n, stress_ops, timer_ops, atomic_read(&stress_dtors), failed, failed_kernel);
	CHECK(errors == 0, "%d results differ from the models (or variables left)", errors);
	CHECK(timer_ops > 0, "the hrtimer never ran");
	return 0;
}

/* --- The control file ---------------------------------------------------------- */

struct test_case {
	const char *name;
	int (*run)(void);
};

static const struct test_case cases[] = {
	{ "null_obj", case_null_obj },
	{ "size0", case_size0 },
	{ "too_large", case_too_large },
	{ "zeroed_aligned", case_zeroed_aligned },
	{ "null_ctor_dtor", case_null_ctor_dtor },
	{ "duplicate", case_duplicate },
	{ "get_or_alloc_existing", case_get_or_alloc_existing },
	{ "ctor_fail", case_ctor_fail },
	{ "ctor_once_atomic", case_ctor_once_atomic },
	{ "dtor_args", case_dtor_args },
	{ "free_missing", case_free_missing },
	{ "free_all", case_free_all },
	{ "softirq", case_softirq },
	{ "hardirq", case_hardirq },
	{ "free_rcu", case_free_rcu },
	{ "typed", case_typed },
	{ "typed_register", case_typed_register },
	{ "typed_unregister", case_typed_unregister },
	{ "million_alloc", case_million_alloc },
	{ "million_get", case_million_get },
	{ "million_free", case_million_free },
	{ "leave_keep", case_leave_keep },
	{ "stress", case_stress },
};

static DEFINE_MUTEX(run_lock);

static ssize_t run_write(struct file *file, const char __user *ubuf, size_t len, loff_t *off)
{
	char name[32];
	int i, err = -EINVAL;

	if (len >= sizeof(name) || copy_from_user(name, ubuf, len))
		return -EINVAL;
	name[len] = 0;
	strim(name);
	mutex_lock(&run_lock);
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		if (strcmp(name, cases[i].name))
			continue;
		cur_case = cases[i].name;
		reset_counts();
		err = cases[i].run();
		pr_info("%s %s\n", err ? "FAIL" : "PASS", cur_case);
		err = err ? -EIO : 0;
	}
	mutex_unlock(&run_lock);
	if (err == -EINVAL)
		pr_err("no case '%s'\n", name);
	return err ?: len;
}

static const struct file_operations run_fops = {
	.owner = THIS_MODULE,
	.write = run_write,
};

static int cases_show(struct seq_file *m, void *v)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(cases); i++)
		seq_printf(m, "%s\n", cases[i].name);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(cases);

static struct dentry *dir;

static int __init test_rust_klp_shadow_init(void)
{
	objs = kcalloc(NR_OBJS, sizeof(*objs), GFP_KERNEL);
	if (!objs)
		return -ENOMEM;
	dir = debugfs_create_dir(KBUILD_MODNAME, NULL);
	debugfs_create_file("run", 0200, dir, NULL, &run_fops);
	debugfs_create_file("cases", 0444, dir, NULL, &cases_fops);
	return 0;
}

static void __exit test_rust_klp_shadow_exit(void)
{
	debugfs_remove_recursive(dir);
	/* Registrations a failed case left (the table must not keep our pointers). */
	if (typed_registered || reg_a)
		unreg(&reg_a);
	if (reg_a2)
		unreg(&reg_a2);
	if (reg_b)
		unreg(&reg_b);
	/* Variables of the *_keep / million cases may stay: objs only supplied keys. */
	kfree(objs);
}

module_init(test_rust_klp_shadow_init);
module_exit(test_rust_klp_shadow_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("rust_klp_shadow test cases (edge cases, contexts, scale, typed ids, stress)");

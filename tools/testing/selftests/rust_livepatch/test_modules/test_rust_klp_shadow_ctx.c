// SPDX-License-Identifier: GPL-2.0
/*
 * test_rust_klp_shadow_ctx.c - rust_klp_shadow called from the contexts a
 * livepatch can find itself in that test_rust_klp_shadow.c does not reach:
 * NMIs, a raw spinlock held with interrupts off, and the table's own
 * constructors and destructors.
 *
 * Purpose: a livepatched function can run anywhere, so the table must never
 * wait in a lookup, never sleep, queue work or wake a task in a free, and
 * refuse (not deadlock on) a writer call it cannot serve:
 *
 *  - irqsoff: free and free_all of a few thousand variables, which shrink
 *    the shards, inside raw_spin_lock_irqsave(); everything is gone after,
 *    and the table still works.  The case logs its CPU and the section's
 *    trace_clock_local() window, so that the script can check in tracefs
 *    that nothing was queued or woken on that CPU inside it.
 *  - nested: a constructor that calls alloc/get_or_alloc and destructors
 *    that call free/free_all.  They run under the table's lock: the inner
 *    calls are refused (NULL, nothing done, a pr_err that says "constructor
 *    or destructor"), the outer calls complete.
 *  - nmi_writer: alloc, get_or_alloc and free from an NMI are refused too
 *    (NULL, nothing done, a pr_err that says "NMI").
 *  - nmi_ctor: a constructor, under the table's lock, sends an NMI to its own
 *    CPU and waits until the handler has looked up present and absent keys.
 *  - nmi_resize: a kthread on one CPU keeps filling one id with nmi_vars
 *    variables and freeing them (the shards grow and shrink all the time)
 *    while a kthread on another CPU sends it NMIs, one after the other, for
 *    nmi_ms and two whole rounds at least; each NMI looks up present and
 *    absent keys.  A lookup that
 *    waited for the resize it interrupted would never return: the NMI
 *    handler would spin on the CPU that has to finish the resize.
 *
 * Usage:
 *   insmod rust_klp_shadow.ko; insmod test_rust_klp_shadow_ctx.ko
 *   echo CASE > /sys/kernel/debug/test_rust_klp_shadow_ctx/run
 *
 * As test_rust_klp_shadow.c: the write fails with EIO when the case failed;
 * the log has "test_rust_klp_shadow_ctx: PASS CASE" or "... FAIL CASE:
 * reason", and `cat .../cases` lists the cases (the NMI cases only where
 * the module can send NMIs: x86 with a local APIC).  Whatever a case
 * allocated is freed after it, passed or failed.
 *
 *   # echo nmi_resize > /sys/kernel/debug/test_rust_klp_shadow_ctx/run
 *   # dmesg | tail -2
 *   test_rust_klp_shadow_ctx: nmi_resize: 7997 ms, 1343 NMIs handled (0 lost), 16116 lookups, 0 errors; 2 rounds of 1024 variables filled and freed under them (0 allocations failed)
 *   test_rust_klp_shadow_ctx: PASS nmi_resize
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/cpumask.h>
#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/sched/clock.h>
#include <linux/seq_file.h>
#include <linux/spinlock.h>
#include <linux/trace_clock.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>

#ifdef CONFIG_X86_LOCAL_APIC
#include <asm/apic.h>
#include <asm/nmi.h>
#define HAVE_NMI_IPI 1
#endif

#include "rust_klp_shadow.h"

/*
 * 4096 variables are 64 in each of the table's 64 shards: each grows from
 * its 8 lines (more than 4 variables per line) and shrinks back.
 */
static unsigned int ctx_vars = 4096;
module_param(ctx_vars, uint, 0644);
MODULE_PARM_DESC(ctx_vars, "variables of the irqsoff case (default 4096)");

/*
 * 3072 are 48 per shard, which grows from its 8 lines (of 6 slots) to 16
 * and shrinks back in each round; under TCG, with NMIs arriving, a round
 * takes one or two seconds.
 */
static unsigned int nmi_vars = 3072;
module_param(nmi_vars, uint, 0644);
MODULE_PARM_DESC(nmi_vars, "variables nmi_resize fills and frees per round (default 3072)");

static unsigned int nmi_ms = 4000;
module_param(nmi_ms, uint, 0644);
MODULE_PARM_DESC(nmi_ms, "how long nmi_resize sends NMIs at least, in ms (default 4000)");

static unsigned int nmi_ctor_allocs = 256;
module_param(nmi_ctor_allocs, uint, 0644);
MODULE_PARM_DESC(nmi_ctor_allocs, "allocations of nmi_ctor, one NMI each (default 256)");

/* Shadow ids of the cases; each case uses its own. */
enum {
	ID_IRQSOFF = 0x7000,
	ID_NEST_OUTER,
	ID_NEST_INNER,
	ID_NEST_VICTIM,
	ID_NMI_FILL,
	ID_NMI_PRESENT,
	ID_NMI_ABSENT,
	ID_NMI_WRITER,
	ID_NMI_CTOR,
	ID_END,
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
#define NR_OBJS 8192
static char (*objs)[64];
#define OBJ(i) ((void *)objs[i])

/* The number of variables of @id on the first @n objects. */
static unsigned int live(unsigned long id, unsigned int n)
{
	unsigned int i, count = 0;

	for (i = 0; i < n; i++)
		count += !!rust_klp_shadow_get(OBJ(i), id);
	return count;
}

static int value_ctor(void *obj, void *data, void *ctor_data)
{
	*(u64 *)data = (unsigned long)ctor_data;
	return 0;
}

static u64 value_of(unsigned int i)
{
	return 0x5eed00000000ULL + i;
}

/* --- Frees under a raw spinlock with interrupts off ------------------------- */

static DEFINE_RAW_SPINLOCK(ctx_raw_lock);
static atomic_t irqsoff_dtors;

static void irqsoff_dtor(void *obj, void *data)
{
	atomic_inc(&irqsoff_dtors);
}

/* Queued just before the section: the trace must show it (see the script). */
static void ctl_workfn(struct work_struct *work)
{
}
static DECLARE_WORK(ctl_work, ctl_workfn);

/*
 * Returns once trace_clock_local() has left the microsecond of @t: the
 * trace prints microseconds, and the script must be able to tell an event
 * of the section from one just before or just after it.
 */
static void next_us(u64 t)
{
	while (div_u64(trace_clock_local(), 1000) == div_u64(t, 1000))
		cpu_relax();
}

static int case_irqsoff(void)
{
	unsigned int n = clamp(ctx_vars, 16U, (unsigned int)NR_OBJS), i, cpu;
	unsigned long flags;
	u64 tctl, t0, t1;

	atomic_set(&irqsoff_dtors, 0);
	for (i = 0; i < n; i++)
		CHECK(rust_klp_shadow_alloc(OBJ(i), ID_IRQSOFF, 8, GFP_KERNEL, NULL, NULL),
		      "alloc %u", i);

	preempt_disable();
	cpu = smp_processor_id();
	queue_work_on(cpu, system_wq, &ctl_work);
	tctl = trace_clock_local();
	raw_spin_lock_irqsave(&ctx_raw_lock, flags);
	next_us(tctl);
	t0 = trace_clock_local();
	for (i = 0; i < n / 2; i++)
		rust_klp_shadow_free(OBJ(i), ID_IRQSOFF, irqsoff_dtor);
	rust_klp_shadow_free_all(ID_IRQSOFF, irqsoff_dtor);
	t1 = trace_clock_local();
	next_us(t1);
	raw_spin_unlock_irqrestore(&ctx_raw_lock, flags);
	preempt_enable();
	flush_work(&ctl_work);

	pr_info("irqsoff: cpu %u section %llu-%llu ns (trace_clock_local), %u variables freed in %llu us; control work queued at %llu ns\n",
		cpu, t0, t1, n, div_u64(t1 - t0, 1000), tctl);
	CHECK(atomic_read(&irqsoff_dtors) == n, "%d destructor calls for %u variables",
	      atomic_read(&irqsoff_dtors), n);
	CHECK(live(ID_IRQSOFF, n) == 0, "%u variables still found", live(ID_IRQSOFF, n));

	/* The table still works: the same keys again, with values. */
	for (i = 0; i < n; i++)
		CHECK(rust_klp_shadow_alloc(OBJ(i), ID_IRQSOFF, 8, GFP_KERNEL, value_ctor,
					    (void *)(unsigned long)value_of(i)),
		      "alloc %u after the section", i);
	for (i = 0; i < n; i++) {
		u64 *p = rust_klp_shadow_get(OBJ(i), ID_IRQSOFF);

		CHECK(p && *p == value_of(i), "variable %u after the section", i);
	}
	rust_klp_shadow_free_all(ID_IRQSOFF, NULL);
	CHECK(live(ID_IRQSOFF, n) == 0, "variables left after the last free_all");
	return 0;
}

/* --- Writer calls from inside a constructor or destructor -------------------- */

struct nest {
	void *inner_alloc, *inner_get_or_alloc;
	int ctor_calls, dtor_calls;
};

static struct nest nest;

/* Under the table's lock: both inner calls must be refused. */
static int nest_ctor(void *obj, void *data, void *ctor_data)
{
	struct nest *n = ctor_data;

	/* GFP_ATOMIC: the test is about the nesting, not about sleeping. */
	n->inner_alloc = rust_klp_shadow_alloc(OBJ(1), ID_NEST_INNER, 8, GFP_ATOMIC,
					       NULL, NULL);
	n->inner_get_or_alloc = rust_klp_shadow_get_or_alloc(OBJ(2), ID_NEST_INNER, 8,
							     GFP_ATOMIC, NULL, NULL);
	n->ctor_calls++;
	*(u64 *)data = 0xc7;
	return 0;
}

static void nest_dtor_free(void *obj, void *data)
{
	rust_klp_shadow_free(OBJ(3), ID_NEST_VICTIM, NULL);
	nest.dtor_calls++;
}

static void nest_dtor_free_all(void *obj, void *data)
{
	rust_klp_shadow_free_all(ID_NEST_VICTIM, NULL);
	nest.dtor_calls++;
}

/* Checks that @p is the outer variable, and that the ctor's inner calls were refused. */
static int nest_check_ctor(const u64 *p, const char *call)
{
	CHECK(p && *p == 0xc7, "outer %s: %p", call, p);
	CHECK(nest.ctor_calls == 1, "outer %s: %d ctor calls", call, nest.ctor_calls);
	CHECK(!nest.inner_alloc, "alloc inside the ctor of %s returned %p", call,
	      nest.inner_alloc);
	CHECK(!nest.inner_get_or_alloc, "get_or_alloc inside the ctor of %s returned %p",
	      call, nest.inner_get_or_alloc);
	CHECK(!rust_klp_shadow_get(OBJ(1), ID_NEST_INNER) &&
	      !rust_klp_shadow_get(OBJ(2), ID_NEST_INNER),
	      "a variable of the ctor of %s was inserted", call);
	return 0;
}

/* The victims of the destructors' inner frees are still there, intact. */
static int nest_check_victims(const char *call)
{
	u64 *p = rust_klp_shadow_get(OBJ(3), ID_NEST_VICTIM);
	u64 *q = rust_klp_shadow_get(OBJ(4), ID_NEST_VICTIM);

	CHECK(nest.dtor_calls == 1, "%s: %d dtor calls", call, nest.dtor_calls);
	CHECK(p && *p == 0x71 && q && *q == 0x72,
	      "the dtor of %s freed other variables (%p %p)", call, p, q);
	return 0;
}

static int case_nested(void)
{
	u64 *p;
	int err;

	memset(&nest, 0, sizeof(nest));
	CHECK(rust_klp_shadow_alloc(OBJ(3), ID_NEST_VICTIM, 8, GFP_KERNEL, value_ctor,
				    (void *)0x71UL) &&
	      rust_klp_shadow_alloc(OBJ(4), ID_NEST_VICTIM, 8, GFP_KERNEL, value_ctor,
				    (void *)0x72UL), "victims");

	p = rust_klp_shadow_alloc(OBJ(0), ID_NEST_OUTER, 8, GFP_KERNEL, nest_ctor, &nest);
	err = nest_check_ctor(p, "alloc");
	if (err)
		return err;
	memset(&nest, 0, sizeof(nest));
	p = rust_klp_shadow_get_or_alloc(OBJ(5), ID_NEST_OUTER, 8, GFP_KERNEL, nest_ctor,
					 &nest);
	err = nest_check_ctor(p, "get_or_alloc");
	if (err)
		return err;

	memset(&nest, 0, sizeof(nest));
	rust_klp_shadow_free(OBJ(0), ID_NEST_OUTER, nest_dtor_free);
	err = nest_check_victims("free");
	if (err)
		return err;
	CHECK(!rust_klp_shadow_get(OBJ(0), ID_NEST_OUTER), "outer free did not free");

	memset(&nest, 0, sizeof(nest));
	rust_klp_shadow_free_all(ID_NEST_OUTER, nest_dtor_free_all);
	err = nest_check_victims("free_all");
	if (err)
		return err;
	CHECK(!rust_klp_shadow_get(OBJ(5), ID_NEST_OUTER), "outer free_all did not free");

	/* The refusals left the table usable. */
	CHECK(rust_klp_shadow_alloc(OBJ(1), ID_NEST_INNER, 8, GFP_KERNEL, NULL, NULL),
	      "a plain alloc after the nested calls");
	return 0;
}

/* --- NMIs ---------------------------------------------------------------------- */

#ifdef HAVE_NMI_IPI

/*
 * One NMI of ours at a time: the sender moves nmi_state from IDLE to SENT
 * and sends it; the handler claims only an NMI on nmi_target while SENT
 * (any other NMI is someone else's), works, and sets IDLE again.  The
 * sender waits for IDLE: NMIs that arrive while one is being handled are
 * latched only once, so sending faster would lose some and miscount.
 */
enum { NMI_IDLE, NMI_SENT, NMI_RUNNING };
static atomic_t nmi_state = ATOMIC_INIT(NMI_IDLE);
static int nmi_target = -1;

/* What the handler does besides its lookups (nmi_writer). */
static bool nmi_writer_calls;
static void *nmi_writer_alloc, *nmi_writer_get_or_alloc;

static atomic_long_t nmi_handled, nmi_lookups, nmi_errors;
static unsigned int nmi_next;	/* rotates over the present keys */

#define NMI_PRESENT 64		/* variables of ID_NMI_PRESENT on OBJ(0..63) */
#define NMI_LOOKUPS 4		/* present keys looked up per NMI (and as many absent, twice) */

static int ctx_nmi_handler(unsigned int type, struct pt_regs *regs)
{
	unsigned int k, i;
	u64 *p;

	if (smp_processor_id() != READ_ONCE(nmi_target) ||
	    atomic_cmpxchg(&nmi_state, NMI_SENT, NMI_RUNNING) != NMI_SENT)
		return NMI_DONE;

	if (READ_ONCE(nmi_writer_calls)) {
		nmi_writer_alloc = rust_klp_shadow_alloc(OBJ(0), ID_NMI_WRITER, 8, GFP_ATOMIC,
							 NULL, NULL);
		nmi_writer_get_or_alloc = rust_klp_shadow_get_or_alloc(OBJ(2), ID_NMI_WRITER, 8,
								       GFP_ATOMIC, NULL, NULL);
		rust_klp_shadow_free(OBJ(1), ID_NMI_WRITER, NULL);
	}
	for (k = 0; k < NMI_LOOKUPS; k++) {
		i = nmi_next++ % NMI_PRESENT;
		p = rust_klp_shadow_get(OBJ(i), ID_NMI_PRESENT);
		if (!p || *p != value_of(i))
			atomic_long_inc(&nmi_errors);
		if (rust_klp_shadow_get(OBJ(i), ID_NMI_ABSENT))
			atomic_long_inc(&nmi_errors);
		/* Beyond the objects the filler of nmi_resize uses. */
		if (rust_klp_shadow_get(OBJ(NR_OBJS - 1 - i), ID_NMI_FILL))
			atomic_long_inc(&nmi_errors);
		atomic_long_add(3, &nmi_lookups);
	}
	atomic_long_inc(&nmi_handled);
	atomic_set_release(&nmi_state, NMI_IDLE);
	return NMI_HANDLED;
}

/*
 * Sends one NMI to @cpu and waits until its handler has run.  0; -ETIMEDOUT
 * when it did not arrive within @timeout_ns (it is then no longer expected);
 * -EDEADLK when the handler started but has not returned 2 s later: a
 * lookup that never returns, and the CPU with it.
 */
static int nmi_roundtrip(int cpu, bool may_sleep, u64 timeout_ns)
{
	u64 t0 = local_clock(), now;

	WRITE_ONCE(nmi_target, cpu);
	atomic_set(&nmi_state, NMI_SENT);
	__apic_send_IPI_mask(cpumask_of(cpu), NMI_VECTOR);
	while (atomic_read_acquire(&nmi_state) != NMI_IDLE) {
		now = local_clock();
		if (now - t0 > timeout_ns &&
		    atomic_cmpxchg(&nmi_state, NMI_SENT, NMI_IDLE) == NMI_SENT)
			return -ETIMEDOUT;
		if (now - t0 > timeout_ns + 2 * NSEC_PER_SEC)
			return -EDEADLK;
		/*
		 * Sleeping lets the target run at once under single-threaded
		 * TCG, where a spinning vCPU keeps the host thread for its
		 * whole time slice.
		 */
		if (may_sleep)
			usleep_range(10, 30);
		else
			cpu_relax();
	}
	return 0;
}

static void nmi_reset_counts(void)
{
	atomic_long_set(&nmi_handled, 0);
	atomic_long_set(&nmi_lookups, 0);
	atomic_long_set(&nmi_errors, 0);
}

/* The keys the handler must always find: allocated before, freed after each case. */
static int nmi_present_alloc(void)
{
	unsigned int i;

	for (i = 0; i < NMI_PRESENT; i++)
		CHECK(rust_klp_shadow_alloc(OBJ(i), ID_NMI_PRESENT, 8, GFP_KERNEL, value_ctor,
					    (void *)(unsigned long)value_of(i)),
		      "present variable %u", i);
	return 0;
}

static int nmi_present_check(void)
{
	unsigned int i, bad = 0;

	for (i = 0; i < NMI_PRESENT; i++) {
		u64 *p = rust_klp_shadow_get(OBJ(i), ID_NMI_PRESENT);

		bad += !p || *p != value_of(i);
	}
	CHECK(!bad, "%u present variables missing or changed after the NMIs", bad);
	return 0;
}

/* Writer calls from an NMI: refused, nothing inserted or freed. */
static int case_nmi_writer(void)
{
	int cpu, err;
	u64 *p;

	nmi_reset_counts();
	CHECK(!nmi_present_alloc(), "present variables");
	CHECK(rust_klp_shadow_alloc(OBJ(1), ID_NMI_WRITER, 8, GFP_KERNEL, value_ctor,
				    (void *)0x99UL), "the variable the NMI frees");
	nmi_writer_alloc = nmi_writer_get_or_alloc = NULL;
	WRITE_ONCE(nmi_writer_calls, true);
	cpu = get_cpu();
	err = nmi_roundtrip(cpu, false, NSEC_PER_SEC);
	put_cpu();
	WRITE_ONCE(nmi_writer_calls, false);

	p = rust_klp_shadow_get(OBJ(1), ID_NMI_WRITER);
	pr_info("nmi_writer: alloc %p, get_or_alloc %p, free %s in NMI\n", nmi_writer_alloc,
		nmi_writer_get_or_alloc, p ? "refused" : "done");
	CHECK(!err, "the NMI to CPU %d: %d", cpu, err);
	CHECK(!nmi_writer_alloc, "alloc in NMI returned %p", nmi_writer_alloc);
	CHECK(!nmi_writer_get_or_alloc, "get_or_alloc in NMI returned %p",
	      nmi_writer_get_or_alloc);
	CHECK(p && *p == 0x99, "free in NMI freed the variable");
	CHECK(!rust_klp_shadow_get(OBJ(0), ID_NMI_WRITER) &&
	      !rust_klp_shadow_get(OBJ(2), ID_NMI_WRITER), "a variable was inserted in NMI");
	CHECK(!nmi_present_check(), "present variables");
	CHECK(!atomic_long_read(&nmi_errors), "%ld lookup errors",
	      atomic_long_read(&nmi_errors));
	return 0;
}

/* A constructor, under the table's lock, that waits for an NMI's lookups. */
struct nmi_ctor_run {
	unsigned int timeouts, deadlocks;
};

static int nmi_ctor(void *obj, void *data, void *ctor_data)
{
	struct nmi_ctor_run *r = ctor_data;
	int err = nmi_roundtrip(get_cpu(), false, 100 * NSEC_PER_MSEC);

	put_cpu();
	r->timeouts += err == -ETIMEDOUT;
	r->deadlocks += err == -EDEADLK;
	*(u64 *)data = 0xc7;
	return 0;
}

static int case_nmi_ctor(void)
{
	struct nmi_ctor_run r = {};
	unsigned int i, n = min_t(unsigned int, nmi_ctor_allocs, NR_OBJS);
	u64 *p;
	int err = 0;

	nmi_reset_counts();
	CHECK(!nmi_present_alloc(), "present variables");
	for (i = 0; i < n && !err; i++) {
		p = i % 2 ? rust_klp_shadow_alloc(OBJ(i), ID_NMI_CTOR, 8, GFP_KERNEL, nmi_ctor, &r)
			  : rust_klp_shadow_get_or_alloc(OBJ(i), ID_NMI_CTOR, 8, GFP_KERNEL,
							 nmi_ctor, &r);
		if (!p || *p != 0xc7)
			err = -EIO;
	}
	pr_info("nmi_ctor: %u allocations, %ld NMIs handled inside their ctors (%u not arrived in 100 ms, %u handlers stuck), %ld lookups, %ld errors\n",
		i, atomic_long_read(&nmi_handled), r.timeouts, r.deadlocks,
		atomic_long_read(&nmi_lookups), atomic_long_read(&nmi_errors));
	CHECK(!err, "allocation %u failed", i - 1);
	CHECK(live(ID_NMI_CTOR, n) == n, "variables missing");
	CHECK(!nmi_present_check(), "present variables");
	CHECK(!r.deadlocks, "an NMI handler did not return");
	CHECK(!r.timeouts, "%u NMIs to the ctor's own CPU did not arrive", r.timeouts);
	CHECK(!atomic_long_read(&nmi_errors), "%ld lookup errors",
	      atomic_long_read(&nmi_errors));
	CHECK(atomic_long_read(&nmi_handled) == n, "%ld NMIs handled for %u ctors",
	      atomic_long_read(&nmi_handled), n);
	return 0;
}

/* nmi_resize: the filler on one CPU, the sender on another. */
struct nmi_run {
	int target;
	unsigned int vars;
	atomic_long_t rounds;	/* whole rounds: all variables allocated, then freed */
	unsigned long fill_errors, sent, lost;
	bool stuck;
};

static int nmi_filler(void *arg)
{
	struct nmi_run *r = arg;
	unsigned int i, n;
	bool whole;

	/* The case frees what a stop in the middle of a round left. */
	while (!kthread_should_stop()) {
		for (n = 0; n < r->vars && !kthread_should_stop(); n++) {
			if (!rust_klp_shadow_alloc(OBJ(n), ID_NMI_FILL, 8, GFP_KERNEL, NULL, NULL))
				r->fill_errors++;
			if (!(n & 63))
				cond_resched();
		}
		whole = n == r->vars;
		/* Shrink one variable at a time, or all at once. */
		if (atomic_long_read(&r->rounds) % 2) {
			rust_klp_shadow_free_all(ID_NMI_FILL, NULL);
		} else {
			for (i = 0; i < n && !kthread_should_stop(); i++) {
				rust_klp_shadow_free(OBJ(i), ID_NMI_FILL, NULL);
				if (!(i & 63))
					cond_resched();
			}
			whole &= i == n;
		}
		if (whole)
			atomic_long_inc(&r->rounds);
	}
	return 0;
}

static int nmi_sender(void *arg)
{
	struct nmi_run *r = arg;
	int err;

	while (!kthread_should_stop() && !r->stuck) {
		err = nmi_roundtrip(r->target, true, NSEC_PER_SEC);
		r->sent++;
		r->lost += err == -ETIMEDOUT;
		if (err == -EDEADLK) {
			/* The console shows this even if the guest never recovers. */
			pr_err("FAIL %s: the NMI handler on CPU %d has not returned for 2 s: a lookup waits for the resize it interrupted\n",
			       cur_case, r->target);
			WRITE_ONCE(r->stuck, true);
		}
	}
	while (!kthread_should_stop())
		schedule_timeout_interruptible(HZ / 10);
	return 0;
}

static int case_nmi_resize(void)
{
	struct nmi_run r = {};
	struct task_struct *filler, *sender;
	int cpu0 = cpumask_first(cpu_online_mask);
	int cpu1 = cpumask_next(cpu0, cpu_online_mask);
	u64 t0, cap = 4ULL * nmi_ms * NSEC_PER_MSEC;
	unsigned long ms, rounds;

	CHECK(cpu1 < nr_cpu_ids, "needs two online CPUs");
	r.target = cpu0;
	r.vars = clamp(nmi_vars, 16U, (unsigned int)(NR_OBJS - NMI_PRESENT));
	nmi_reset_counts();
	CHECK(!nmi_present_alloc(), "present variables");

	filler = kthread_create(nmi_filler, &r, "rks_ctx_fill");
	CHECK(!IS_ERR(filler), "filler kthread: %ld", PTR_ERR(filler));
	sender = kthread_create(nmi_sender, &r, "rks_ctx_nmi");
	if (IS_ERR(sender)) {
		kthread_stop(filler);
		CHECK(0, "sender kthread: %ld", PTR_ERR(sender));
	}
	kthread_bind(filler, cpu0);
	kthread_bind(sender, cpu1);
	t0 = local_clock();
	wake_up_process(filler);
	wake_up_process(sender);
	msleep(nmi_ms);
	/*
	 * Until two whole rounds (one freeing a variable at a time, one with
	 * free_all) ran under the NMIs, so that shards grew and shrank
	 * meanwhile; a slow host gets up to 4 x nmi_ms.
	 */
	while (atomic_long_read(&r.rounds) < 2 && !READ_ONCE(r.stuck) &&
	       local_clock() - t0 < cap)
		msleep(50);
	kthread_stop(sender);
	rounds = atomic_long_read(&r.rounds);
	/* If the handler is stuck, CPU cpu0 never comes back: this hangs. */
	kthread_stop(filler);
	ms = div_u64(local_clock() - t0, NSEC_PER_MSEC);
	rust_klp_shadow_free_all(ID_NMI_FILL, NULL);

	pr_info("nmi_resize: %lu ms, %ld NMIs handled (%lu lost), %ld lookups, %ld errors; %lu rounds of %u variables filled and freed under them (%lu allocations failed)\n",
		ms, atomic_long_read(&nmi_handled), r.lost, atomic_long_read(&nmi_lookups),
		atomic_long_read(&nmi_errors), rounds, r.vars, r.fill_errors);
	CHECK(!nmi_present_check(), "present variables");
	CHECK(!r.stuck, "an NMI handler did not return");
	CHECK(!atomic_long_read(&nmi_errors), "%ld lookup errors",
	      atomic_long_read(&nmi_errors));
	CHECK(atomic_long_read(&nmi_handled) > 0, "no NMI handled");
	CHECK(rounds > 0, "the filler completed no round while the NMIs came");
	CHECK(!r.fill_errors, "%lu allocations of the filler failed", r.fill_errors);
	CHECK(live(ID_NMI_FILL, r.vars) == 0, "filler variables left by free_all");
	/*
	 * Bounded: the sender's last round trip ends within 3 s of the cap,
	 * the filler stops between two calls; under TCG those take seconds.
	 */
	CHECK(ms < 4 * nmi_ms + 10 * MSEC_PER_SEC, "took %lu ms", ms);
	return 0;
}

#endif /* HAVE_NMI_IPI */

/* --- The control file ---------------------------------------------------------- */

struct test_case {
	const char *name;
	int (*run)(void);
};

static const struct test_case cases[] = {
	{ "irqsoff", case_irqsoff },
	{ "nested", case_nested },
#ifdef HAVE_NMI_IPI
	{ "nmi_writer", case_nmi_writer },
	{ "nmi_ctor", case_nmi_ctor },
	{ "nmi_resize", case_nmi_resize },
#endif
};

static DEFINE_MUTEX(run_lock);

/*
 * After every case, passed or failed: free what it left (a failed check
 * returns early), so that the next case starts from an empty table.
 */
static void free_ids(void)
{
	unsigned long id;

	for (id = ID_IRQSOFF; id < ID_END; id++)
		rust_klp_shadow_free_all(id, NULL);
}

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
		err = cases[i].run();
		free_ids();
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

static int __init test_rust_klp_shadow_ctx_init(void)
{
	int __maybe_unused err;

	objs = vzalloc(array_size(NR_OBJS, sizeof(*objs)));
	if (!objs)
		return -ENOMEM;
#ifdef HAVE_NMI_IPI
	/* NMI_LOCAL: the chain every NMI runs first; ours claims only its own. */
	err = register_nmi_handler(NMI_LOCAL, ctx_nmi_handler, 0, KBUILD_MODNAME);
	if (err) {
		vfree(objs);
		return err;
	}
#endif
	dir = debugfs_create_dir(KBUILD_MODNAME, NULL);
	debugfs_create_file("run", 0200, dir, NULL, &run_fops);
	debugfs_create_file("cases", 0444, dir, NULL, &cases_fops);
	return 0;
}

static void __exit test_rust_klp_shadow_ctx_exit(void)
{
	debugfs_remove_recursive(dir);
#ifdef HAVE_NMI_IPI
	/* Waits for a handler still running (synchronize_rcu()). */
	unregister_nmi_handler(NMI_LOCAL, KBUILD_MODNAME);
#endif
	vfree(objs);
}

module_init(test_rust_klp_shadow_ctx_init);
module_exit(test_rust_klp_shadow_ctx_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("rust_klp_shadow in NMIs, under raw spinlocks and from its own ctors/dtors");

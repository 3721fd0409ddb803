// SPDX-License-Identifier: GPL-2.0
/*
 * rust_klp_shadow_bench.c - our shadow-variable table against the kernel's
 *
 * Purpose: measure rust_klp_shadow_*() (rust/shadow/rust_klp_shadow.h) and
 * the kernel's own klp_shadow_*() (kernel/livepatch/shadow.c) in the same
 * boot, the same module, the same way: both are called directly through the
 * same C ABI from loops that differ only in the function they call.
 *
 * For each number of live variables (module parameter "live"), the module
 * allocates that many kmalloc'd parent objects of varied sizes, gives each
 * one shadow variable of one of "nids" ids (in both tables), and then times,
 * "reps" times and alternating which table goes first:
 *
 *   get_hit       klp_shadow_get() of a random live <obj, id>
 *   get_miss      klp_shadow_get() of an object that has no variable
 *   alloc_free    klp_shadow_alloc() then klp_shadow_free() (per pair)
 *   get_or_alloc  klp_shadow_get_or_alloc() of a live <obj, id>
 *   free_all      klp_shadow_free_all() of one id (1/nids of the variables),
 *                 per variable freed; the id is refilled (untimed) after
 *   ref_call      (reference) the same loop around a call of an empty function
 *   ref_load      (reference) the same loop around a load from the parent object
 *
 * on one CPU (a kthread bound to the first online CPU) and, for "cpus_read"
 * (every CPU does get_hit), "cpus_write" (every CPU does alloc_free on
 * objects of its own) and "cpus_mixed" (even CPUs read, odd CPUs write), on
 * every online CPU at once.  A sample runs for "sample_ms" (and at least
 * MIN_CHUNKS, at most MAX_CHUNKS chunks) and reports the operations done, the
 * nanoseconds taken (the TSC, see bench_clock()) and the median duration of
 * its chunks (CHUNK_GET gets or CHUNK_ALLOC alloc+free pairs, timed
 * together): the clock is never read around a single operation.  The
 * chunk median is what scripts/bench reports: it discards the chunks during
 * which the host took the vCPU away, which under TCG on a busy host is most
 * of the noise.  On all CPUs, the workers start together (each on its CPU)
 * and every worker keeps working until all have their sample, so no chunk is
 * measured without the others' load.
 *
 * Memory: the slab bytes (NR_SLAB_{UN,}RECLAIMABLE_B, per-CPU deltas
 * included, which also counts kmalloc_large) and the pages taken from the
 * page allocator (NR_FREE_PAGES; includes vmalloc) are read before and after
 * each table is filled, after an RCU barrier.  Divided by the number of
 * variables this is the incremental cost of a variable; fixed structures
 * allocated before the fill (the kernel's 32 KiB static hash table, our
 * table's initial shards) are not in it.  For the kernel's table the exact
 * per-variable size is also computed from its layout (model_bytes).
 *
 * Results are key=value lines in /sys/kernel/debug/rust_klp_shadow_bench/
 * results; scripts/bench turns them into a table, CSV, JSON and a plot.
 *
 * Usage (in the guest, after loading rust_klp_shadow.ko):
 *
 *   # insmod rust_klp_shadow_bench.ko live=100,10000 reps=5
 *   # cat /sys/kernel/debug/rust_klp_shadow_bench/results
 *   info kernel=6.12.117 cpus=2 kasan=0 lockdep=0 kmemleak=0 ...
 *   mem live=100 impl=c slab_bytes=... pages_bytes=... model_bytes=...
 *   result live=100 test=get_hit impl=c rep=0 cpus=1 cpu=0 role=read ops=... ns=...
 *          chunks=... chunk_ops=128 chunk_ns_med=... errors=0
 *   ...
 *   # rmmod rust_klp_shadow_bench
 *
 * Nothing else may use the shadow ids BENCH_ID_BASE... while it runs: the
 * module frees all their variables in both tables when it is done.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cpumask.h>
#include <linux/debugfs.h>
#include <linux/kthread.h>
#include <linux/livepatch.h>
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/module.h>
#include <linux/prandom.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/utsname.h>
#include <linux/vmalloc.h>
#include <linux/vmstat.h>
#ifdef CONFIG_X86
#include <asm/tsc.h>
#endif

#include "../../../../../rust/shadow/rust_klp_shadow.h"

/* Shadow ids used by the benchmark: BENCH_ID_BASE + 0 .. nids - 1. */
#define BENCH_ID_BASE	0xb5c0de00UL
#define MAX_IDS		8

/* Length of the pre-computed random <obj, id> streams (a power of 2). */
#define STREAM_LEN	(1U << 16)
/* Objects that never have a variable (misses, alloc_free targets). */
#define NR_SPARE	8192
/* Operations between two clock reads, per test. */
#define CHUNK_GET	128
#define CHUNK_ALLOC	16
/*
 * A sample has at least MIN_CHUNKS chunks, so that its median chunk is not
 * one the host stalled, and at most MAX_CHUNKS.
 */
#define MIN_CHUNKS	16
#define MAX_CHUNKS	4096

static unsigned long live[8] = { 100, 10000, 1000000 };
static int nr_live = 3;
module_param_array(live, ulong, &nr_live, 0444);
MODULE_PARM_DESC(live, "numbers of live variables to measure at (default 100,10000,1000000)");

static unsigned int reps = 9;
module_param(reps, uint, 0444);
MODULE_PARM_DESC(reps, "samples of every configuration (default 9)");

static unsigned int nids = 4;
module_param(nids, uint, 0444);
MODULE_PARM_DESC(nids, "shadow ids the live variables are spread over (default 4, at most 8)");

static unsigned int sample_ms = 20;
module_param(sample_ms, uint, 0444);
MODULE_PARM_DESC(sample_ms, "duration of one timed sample in ms (default 20)");

static char *tests = "get_hit,get_miss,alloc_free,get_or_alloc,free_all,cpus_read,cpus_write,cpus_mixed,ref_call,ref_load";
module_param(tests, charp, 0444);
MODULE_PARM_DESC(tests, "comma-separated tests to run (default: all)");

static unsigned int seed = 1;
module_param(seed, uint, 0444);
MODULE_PARM_DESC(seed, "seed of the object sizes and access streams");

/*
 * The clock: the TSC where there is one.  local_clock() is not usable for
 * short intervals under TCG: when the guest's clocksource watchdog marks the
 * TSC unstable (it does on a busy host), local_clock() is clamped to the tick
 * and returns the same value for up to a jiffy.  Under TCG the guest's TSC
 * is the host's (invariant) TSC, so it stays right whatever the watchdog says.
 */
static bool use_tsc;

static u64 bench_clock(void)
{
#ifdef CONFIG_X86
	if (use_tsc)
		return rdtsc_ordered();
#endif
	return ktime_get_ns();
}

static u64 bench_ns(u64 delta)
{
#ifdef CONFIG_X86
	if (use_tsc)
		return mul_u64_u32_div(delta, USEC_PER_SEC, tsc_khz);
#endif
	return delta;
}

/* Data size of the variables of each id: a flag, a pointer, a lock, a struct. */
static const size_t id_size[MAX_IDS] = { 4, 8, 16, 64, 4, 8, 16, 64 };

/* Parent object sizes, weighted roughly like kmalloc-* in a busy system's slabinfo. */
static const struct { unsigned int size, weight; } obj_sizes[] = {
	{ 24, 10 }, { 40, 10 }, { 64, 20 }, { 100, 15 }, { 192, 15 },
	{ 256, 10 }, { 512, 10 }, { 1000, 7 }, { 2000, 3 },
};

/* The five calls of the klp_shadow API, as both tables export them. */
struct shadow_api {
	const char *name;
	void *(*get)(void *obj, unsigned long id);
	void *(*alloc)(void *obj, unsigned long id, size_t size, gfp_t gfp,
		       klp_shadow_ctor_t ctor, void *ctor_data);
	void *(*get_or_alloc)(void *obj, unsigned long id, size_t size, gfp_t gfp,
			      klp_shadow_ctor_t ctor, void *ctor_data);
	void (*free)(void *obj, unsigned long id, klp_shadow_dtor_t dtor);
	void (*free_all)(unsigned long id, klp_shadow_dtor_t dtor);
};

static const struct shadow_api c_api = {
	.name = "c",
	.get = klp_shadow_get,
	.alloc = klp_shadow_alloc,
	.get_or_alloc = klp_shadow_get_or_alloc,
	.free = klp_shadow_free,
	.free_all = klp_shadow_free_all,
};

/* Not a table: the reference loops (ref_call, ref_load) are reported under this name. */
static const struct shadow_api ref_api = {
	.name = "ref",
};

static const struct shadow_api rust_api = {
	.name = "rust",
	.get = rust_klp_shadow_get,
	.alloc = rust_klp_shadow_alloc,
	.get_or_alloc = rust_klp_shadow_get_or_alloc,
	.free = rust_klp_shadow_free,
	.free_all = rust_klp_shadow_free_all,
};

/*
 * The kernel's struct klp_shadow (kernel/livepatch/shadow.c, private): only
 * its size is used, to compute what kzalloc() gives each of its variables.
 */
struct klp_shadow_layout {
	struct hlist_node node;
	struct rcu_head rcu_head;
	void *obj;
	unsigned long id;
	char data[];
};

struct pair {
	void *obj;
	unsigned long id;
};

/* Everything one number of live variables needs. */
struct bench_set {
	unsigned long nr;		/* live variables */
	void **objs;			/* nr parents; objs[i] has id i % nids */
	void **spare;			/* NR_SPARE parents without variables */
	struct pair *hit;		/* STREAM_LEN random live <obj, id> */
	struct pair *miss;		/* STREAM_LEN random spare <obj, id> */
};

enum role {
	ROLE_GET_HIT, ROLE_GET_MISS, ROLE_ALLOC_FREE, ROLE_GET_OR_ALLOC,
	ROLE_REF_CALL, ROLE_REF_LOAD,
};
static const char *const role_name[] = {
	"read", "miss", "write", "getalloc", "call", "load",
};

struct bench_worker {
	struct task_struct *task;
	struct bench_run *run;
	const struct shadow_api *api;
	enum role role;
	unsigned int cpu;
	unsigned int slot;		/* index among the workers */
	u64 ops, ns, errors;
	u32 *chunk_ns;			/* MAX_CHUNKS chunk durations */
	unsigned int chunks, chunk_ops;
	struct completion done;
};

struct bench_run {
	struct bench_set *set;
	atomic_t ready;
	atomic_t finished;
	unsigned int nr_workers;
	u64 dur_ns;
};

static struct dentry *bench_dir;
static char *out_buf;
static size_t out_len;
#define OUT_SIZE (2U << 20)

static __printf(1, 2) void emit(const char *fmt, ...)
{
	va_list ap;

	if (out_len >= OUT_SIZE - 1)
		return;
	va_start(ap, fmt);
	out_len += vscnprintf(out_buf + out_len, OUT_SIZE - out_len, fmt, ap);
	va_end(ap);
}

static bool test_enabled(const char *name)
{
	size_t n = strlen(name);
	const char *p = tests;

	while ((p = strstr(p, name))) {
		if ((p == tests || p[-1] == ',') && (p[n] == ',' || !p[n]))
			return true;
		p += n;
	}
	return false;
}

static unsigned long bench_id(unsigned long i)
{
	return BENCH_ID_BASE + i % nids;
}

static size_t bench_size(unsigned long id)
{
	return id_size[(id - BENCH_ID_BASE) % MAX_IDS];
}

/*
 * The timed loops.  __always_inline with a constant @api: each caller below
 * gets its own copy in which every table call is a direct call, exactly as a
 * livepatch would make it.
 */
static __always_inline u64 loop_get(const struct shadow_api *api,
				    const struct pair *s, u32 *cur, bool hit)
{
	u64 err = 0;
	u32 i, c = *cur;

	for (i = 0; i < CHUNK_GET; i++, c++) {
		const struct pair *p = &s[c & (STREAM_LEN - 1)];

		err += (api->get(p->obj, p->id) != NULL) != hit;
	}
	*cur = c;
	return err;
}

/*
 * References for reading the others: the same loop around a call that does
 * nothing (the cost of the loop, the call and the return), and around one
 * load from the parent object (the cost of touching a random object at this
 * number of live objects: what a lookup cannot do without).
 */
static noinline void *ref_nop(void *obj, unsigned long id)
{
	barrier();
	return obj;
}

static __always_inline u64 loop_ref(const struct pair *s, u32 *cur, bool load)
{
	unsigned long sink = 0;
	u32 i, c = *cur;

	for (i = 0; i < CHUNK_GET; i++, c++) {
		const struct pair *p = &s[c & (STREAM_LEN - 1)];

		if (load)
			sink += READ_ONCE(*(unsigned long *)p->obj) + p->id;
		else
			sink += (unsigned long)ref_nop(p->obj, p->id);
	}
	*cur = c;
	return sink == 1;	/* never; keeps the loads */
}

static __always_inline u64 loop_get_or_alloc(const struct shadow_api *api,
					     const struct pair *s, u32 *cur)
{
	u64 err = 0;
	u32 i, c = *cur;

	for (i = 0; i < CHUNK_GET; i++, c++) {
		const struct pair *p = &s[c & (STREAM_LEN - 1)];

		err += !api->get_or_alloc(p->obj, p->id, bench_size(p->id),
					  GFP_KERNEL, NULL, NULL);
	}
	*cur = c;
	return err;
}

/*
 * CHUNK_ALLOC allocations, then their frees: a writer's own spare objects
 * (slice [base, base + len)) so that concurrent writers never share one.
 */
static __always_inline u64 loop_alloc_free(const struct shadow_api *api,
					   void *const *spare, u32 base, u32 len,
					   u32 *cur)
{
	struct pair p[CHUNK_ALLOC];
	u64 err = 0;
	u32 i, c = *cur;

	for (i = 0; i < CHUNK_ALLOC; i++, c++) {
		p[i].obj = spare[base + c % len];
		p[i].id = bench_id(c / len);
		err += !api->alloc(p[i].obj, p[i].id, bench_size(p[i].id),
				   GFP_KERNEL, NULL, NULL);
	}
	for (i = 0; i < CHUNK_ALLOC; i++)
		api->free(p[i].obj, p[i].id, NULL);
	*cur = c;
	return err;
}

static __always_inline void run_worker(const struct shadow_api *api,
				       struct bench_worker *w)
{
	struct bench_set *set = w->run->set;
	u32 len = NR_SPARE / w->run->nr_workers, base = w->slot * len;
	u32 cur = w->slot * (STREAM_LEN / 8);
	u64 ns = 0, err = 0, t0, prev, now;
	unsigned int n = 0, chunk_ops = 0;
	bool finished = false;

	t0 = prev = bench_clock();
	for (;;) {
		switch (w->role) {
		case ROLE_GET_HIT:
			err += loop_get(api, set->hit, &cur, true);
			chunk_ops = CHUNK_GET;
			break;
		case ROLE_GET_MISS:
			err += loop_get(api, set->miss, &cur, false);
			chunk_ops = CHUNK_GET;
			break;
		case ROLE_GET_OR_ALLOC:
			err += loop_get_or_alloc(api, set->hit, &cur);
			chunk_ops = CHUNK_GET;
			break;
		case ROLE_ALLOC_FREE:
			err += loop_alloc_free(api, set->spare, base, len, &cur);
			chunk_ops = CHUNK_ALLOC;
			break;
		case ROLE_REF_CALL:
		case ROLE_REF_LOAD:
			err += loop_ref(set->hit, &cur, w->role == ROLE_REF_LOAD);
			chunk_ops = CHUNK_GET;
			break;
		}
		now = bench_clock();
		if (n < MAX_CHUNKS) {
			w->chunk_ns[n] = min_t(u64, bench_ns(now - prev), U32_MAX);
			ns += w->chunk_ns[n++];
		}
		prev = now;
		if (!finished && n >= MIN_CHUNKS &&
		    (bench_ns(now - t0) >= w->run->dur_ns || n == MAX_CHUNKS)) {
			finished = true;
			atomic_inc(&w->run->finished);
		}
		/*
		 * Keep the load on until every worker has its sample: the
		 * chunks of the others must all be measured under contention.
		 */
		if (finished && atomic_read(&w->run->finished) == w->run->nr_workers)
			break;
	}
	w->ops = (u64)n * chunk_ops;
	w->ns = ns;
	w->errors = err;
	w->chunks = n;
	w->chunk_ops = chunk_ops;
}

static noinline void run_worker_c(struct bench_worker *w)
{
	run_worker(&c_api, w);
}

static noinline void run_worker_rust(struct bench_worker *w)
{
	run_worker(&rust_api, w);
}

static int cmp_u32(const void *a, const void *b)
{
	u32 x = *(const u32 *)a, y = *(const u32 *)b;

	return x < y ? -1 : x > y;
}

/* The median chunk: robust against the chunks during which the host took the vCPU away. */
static u32 chunk_median(struct bench_worker *w)
{
	sort(w->chunk_ns, w->chunks, sizeof(u32), cmp_u32, NULL);
	return w->chunk_ns[w->chunks / 2];
}

static int worker_fn(void *arg)
{
	struct bench_worker *w = arg;

	/* Start together: every worker is on its CPU before any one starts. */
	atomic_inc(&w->run->ready);
	while (atomic_read(&w->run->ready) < w->run->nr_workers)
		cond_resched();

	if (w->api == &rust_api)
		run_worker_rust(w);
	else
		run_worker_c(w);
	complete(&w->done);

	while (!kthread_should_stop()) {
		set_current_state(TASK_INTERRUPTIBLE);
		if (!kthread_should_stop())
			schedule();
		__set_current_state(TASK_RUNNING);
	}
	return 0;
}

/* After writers: let the freed variables go, so no sample pays for another's RCU work. */
static void bench_quiesce(void)
{
	rcu_barrier();
	kvfree_rcu_barrier();
}

/*
 * One sample: a worker per CPU of @cpus, role from @role_of(cpu index), all
 * started together; one "result" line per worker.
 */
static int bench_sample(struct bench_set *set, const struct shadow_api *api,
			const char *test, unsigned int rep,
			const struct cpumask *cpus, enum role (*role_of)(unsigned int))
{
	struct bench_run run = {
		.set = set,
		.nr_workers = cpumask_weight(cpus),
		.dur_ns = (u64)sample_ms * NSEC_PER_MSEC,
	};
	struct bench_worker *w;
	unsigned int cpu, i = 0, n;
	int ret = 0;

	atomic_set(&run.ready, 0);
	atomic_set(&run.finished, 0);
	w = kcalloc(run.nr_workers, sizeof(*w), GFP_KERNEL);
	if (!w)
		return -ENOMEM;
	for_each_cpu(cpu, cpus) {
		w[i].run = &run;
		w[i].api = api;
		w[i].cpu = cpu;
		w[i].slot = i;
		w[i].role = role_of(i);
		init_completion(&w[i].done);
		w[i].chunk_ns = kvmalloc_array(MAX_CHUNKS, sizeof(u32), GFP_KERNEL);
		if (!w[i].chunk_ns) {
			ret = -ENOMEM;
			break;
		}
		w[i].task = kthread_create_on_cpu(worker_fn, &w[i], cpu, "rks_bench/%u");
		if (IS_ERR(w[i].task)) {
			ret = PTR_ERR(w[i].task);
			kvfree(w[i].chunk_ns);
			break;
		}
		i++;
	}
	n = i;
	if (ret) {
		/* Not started: they never ran worker_fn's body. */
		for (i = 0; i < n; i++)
			kthread_stop(w[i].task);
		goto out;
	}
	for (i = 0; i < n; i++)
		wake_up_process(w[i].task);
	for (i = 0; i < n; i++) {
		wait_for_completion(&w[i].done);
		kthread_stop(w[i].task);
	}
	for (i = 0; i < n; i++)
		emit("result live=%lu test=%s impl=%s rep=%u cpus=%u cpu=%u role=%s ops=%llu ns=%llu chunks=%u chunk_ops=%u chunk_ns_med=%u errors=%llu\n",
		     set->nr, test, api->name, rep, n, w[i].cpu, role_name[w[i].role],
		     w[i].ops, w[i].ns, w[i].chunks, w[i].chunk_ops, chunk_median(&w[i]),
		     w[i].errors);
	bench_quiesce();
out:
	for (i = 0; i < n; i++)
		kvfree(w[i].chunk_ns);
	kfree(w);
	return ret;
}

static enum role role_get_hit(unsigned int i) { return ROLE_GET_HIT; }
static enum role role_get_miss(unsigned int i) { return ROLE_GET_MISS; }
static enum role role_alloc_free(unsigned int i) { return ROLE_ALLOC_FREE; }
static enum role role_get_or_alloc(unsigned int i) { return ROLE_GET_OR_ALLOC; }
static enum role role_mixed(unsigned int i) { return i % 2 ? ROLE_ALLOC_FREE : ROLE_GET_HIT; }
static enum role role_ref_call(unsigned int i) { return ROLE_REF_CALL; }
static enum role role_ref_load(unsigned int i) { return ROLE_REF_LOAD; }

static const struct {
	const char *name;
	bool all_cpus;
	bool ref;		/* a reference loop, run once, not per table */
	enum role (*role_of)(unsigned int);
} sampled_tests[] = {
	{ "get_hit", false, false, role_get_hit },
	{ "get_miss", false, false, role_get_miss },
	{ "alloc_free", false, false, role_alloc_free },
	{ "get_or_alloc", false, false, role_get_or_alloc },
	{ "cpus_read", true, false, role_get_hit },
	{ "cpus_write", true, false, role_alloc_free },
	{ "cpus_mixed", true, false, role_mixed },
	{ "ref_call", false, true, role_ref_call },
	{ "ref_load", false, true, role_ref_load },
};

/* Slab bytes, per-CPU deltas included (global_node_page_state() lags by up to a threshold per CPU). */
static long slab_bytes(void)
{
	enum node_stat_item items[] = { NR_SLAB_UNRECLAIMABLE_B, NR_SLAB_RECLAIMABLE_B };
	long pages = 0;
	int i, nid, cpu;

	for (i = 0; i < ARRAY_SIZE(items); i++) {
		pages += global_node_page_state_pages(items[i]);
		for_each_online_node(nid)
			for_each_online_cpu(cpu)
				pages += per_cpu_ptr(NODE_DATA(nid)->per_cpu_nodestats,
						     cpu)->vm_node_stat_diff[items[i]];
	}
	return pages * PAGE_SIZE;
}

/* Bytes not free in the page allocator (per-CPU page lists count as used). */
static long used_bytes(void)
{
	long free = 0;
	int nid, z;

	for_each_online_node(nid) {
		for (z = 0; z < MAX_NR_ZONES; z++) {
			struct zone *zone = &NODE_DATA(nid)->node_zones[z];

			if (populated_zone(zone))
				free += zone_page_state_snapshot(zone, NR_FREE_PAGES);
		}
	}
	return -free * PAGE_SIZE;
}

static noinline u64 fill_range(const struct shadow_api *api, struct bench_set *set,
			       unsigned long first, unsigned long step, u64 *errors)
{
	unsigned long i;
	u64 t0 = bench_clock(), t = 0;

	for (i = first; i < set->nr; i += step) {
		if (!api->alloc(set->objs[i], bench_id(i), bench_size(bench_id(i)),
				GFP_KERNEL, NULL, NULL))
			(*errors)++;
		if (!(i & 1023)) {
			t += bench_clock() - t0;
			cond_resched();
			t0 = bench_clock();
		}
	}
	return bench_ns(t + bench_clock() - t0);
}

/* Fills @api's table with the set's variables; one "fill" and one "mem" line. */
static void bench_fill(struct bench_set *set, const struct shadow_api *api)
{
	long slab0, used0, slab1, used1, model = 0;
	u64 ns, errors = 0;
	unsigned long i;

	bench_quiesce();
	slab0 = slab_bytes();
	used0 = used_bytes();
	ns = fill_range(api, set, 0, 1, &errors);
	bench_quiesce();
	slab1 = slab_bytes();
	used1 = used_bytes();
	for (i = 0; i < nids; i++) {
		unsigned long count = set->nr / nids + (i < set->nr % nids);

		model += count * kmalloc_size_roundup(sizeof(struct klp_shadow_layout) +
						      bench_size(bench_id(i)));
	}
	emit("fill live=%lu impl=%s ops=%lu ns=%llu errors=%llu\n",
	     set->nr, api->name, set->nr, ns, errors);
	emit("mem live=%lu impl=%s slab_bytes=%ld pages_bytes=%ld model_bytes=%ld\n",
	     set->nr, api->name, slab1 - slab0, used1 - used0,
	     api == &c_api ? model : -1L);
}

/* free_all of id @k: timed; then the id's variables are put back (untimed). */
static void bench_free_all(struct bench_set *set, const struct shadow_api *api,
			   unsigned int rep)
{
	unsigned long id = bench_id(rep), freed = set->nr / nids + (rep % nids < set->nr % nids);
	u64 t0, ns, errors = 0;

	t0 = bench_clock();
	api->free_all(id, NULL);
	ns = bench_ns(bench_clock() - t0);
	/* Every variable of the id is gone. */
	if (freed && api->get(set->objs[rep % nids], id))
		errors++;
	bench_quiesce();
	fill_range(api, set, rep % nids, nids, &errors);
	emit("result live=%lu test=free_all impl=%s rep=%u cpus=1 cpu=%u role=freeall ops=%lu ns=%llu errors=%llu\n",
	     set->nr, api->name, rep, raw_smp_processor_id(), freed, ns, errors);
}

static void set_free(struct bench_set *set)
{
	unsigned long i;

	if (set->objs)
		for (i = 0; i < set->nr; i++)
			kfree(set->objs[i]);
	if (set->spare)
		for (i = 0; i < NR_SPARE; i++)
			kfree(set->spare[i]);
	kvfree(set->objs);
	kvfree(set->spare);
	kvfree(set->hit);
	kvfree(set->miss);
}

static void *random_object(struct rnd_state *rnd)
{
	unsigned int total = 0, r, i;

	for (i = 0; i < ARRAY_SIZE(obj_sizes); i++)
		total += obj_sizes[i].weight;
	r = prandom_u32_state(rnd) % total;
	for (i = 0; r >= obj_sizes[i].weight; i++)
		r -= obj_sizes[i].weight;
	return kmalloc(obj_sizes[i].size, GFP_KERNEL);
}

static int set_init(struct bench_set *set, unsigned long nr, struct rnd_state *rnd)
{
	unsigned long i;

	set->nr = nr;
	set->objs = kvcalloc(nr, sizeof(void *), GFP_KERNEL);
	set->spare = kvcalloc(NR_SPARE, sizeof(void *), GFP_KERNEL);
	set->hit = kvcalloc(STREAM_LEN, sizeof(struct pair), GFP_KERNEL);
	set->miss = kvcalloc(STREAM_LEN, sizeof(struct pair), GFP_KERNEL);
	if (!set->objs || !set->spare || !set->hit || !set->miss)
		return -ENOMEM;
	/* Parents and spares interleaved, as a running system would have them. */
	for (i = 0; i < nr || i < NR_SPARE; i++) {
		if (i < nr && !(set->objs[i] = random_object(rnd)))
			return -ENOMEM;
		if (i < NR_SPARE && !(set->spare[i] = random_object(rnd)))
			return -ENOMEM;
		if (!(i & 4095))
			cond_resched();
	}
	for (i = 0; i < STREAM_LEN; i++) {
		unsigned long k = prandom_u32_state(rnd) % nr;

		set->hit[i] = (struct pair){ set->objs[k], bench_id(k) };
		set->miss[i] = (struct pair){ set->spare[prandom_u32_state(rnd) % NR_SPARE],
					      bench_id(prandom_u32_state(rnd)) };
	}
	return 0;
}

static int bench_one(unsigned long nr, struct rnd_state *rnd)
{
	const struct shadow_api *apis[] = { &c_api, &rust_api };
	const struct cpumask *one = cpumask_of(cpumask_first(cpu_online_mask));
	struct bench_set set = {};
	unsigned int rep, t, k, id;
	int ret;

	pr_info("live=%lu: allocating objects\n", nr);
	ret = set_init(&set, nr, rnd);
	if (ret)
		goto out;
	for (k = 0; k < ARRAY_SIZE(apis); k++) {
		pr_info("live=%lu: filling %s\n", nr, apis[k]->name);
		bench_fill(&set, apis[k]);
	}

	for (rep = 0; rep < reps; rep++) {
		pr_info("live=%lu: rep %u\n", nr, rep);
		for (t = 0; t < ARRAY_SIZE(sampled_tests); t++) {
			if (!test_enabled(sampled_tests[t].name))
				continue;
			if (sampled_tests[t].all_cpus && num_online_cpus() < 2)
				continue;
			/* Alternate which table goes first. */
			for (k = 0; k < (sampled_tests[t].ref ? 1 : ARRAY_SIZE(apis)); k++) {
				ret = bench_sample(&set, sampled_tests[t].ref ? &ref_api :
						   apis[(k + rep) % 2], sampled_tests[t].name,
						   rep, sampled_tests[t].all_cpus ?
						   cpu_online_mask : one, sampled_tests[t].role_of);
				if (ret)
					goto out;
			}
		}
		if (test_enabled("free_all"))
			for (k = 0; k < ARRAY_SIZE(apis); k++)
				bench_free_all(&set, apis[(k + rep) % 2], rep);
	}
out:
	for (id = 0; id < nids; id++)
		for (k = 0; k < ARRAY_SIZE(apis); k++)
			apis[k]->free_all(bench_id(id), NULL);
	bench_quiesce();
	set_free(&set);
	return ret;
}

static ssize_t results_read(struct file *file, char __user *ubuf, size_t count, loff_t *ppos)
{
	return simple_read_from_buffer(ubuf, count, ppos, out_buf, out_len);
}

static const struct file_operations results_fops = {
	.owner = THIS_MODULE,
	.read = results_read,
	.llseek = default_llseek,
};

static int __init rust_klp_shadow_bench_init(void)
{
	struct rnd_state rnd;
	unsigned int i;
	int ret = 0;

	if (!nids || nids > MAX_IDS || !reps || !sample_ms)
		return -EINVAL;
	out_buf = kvmalloc(OUT_SIZE, GFP_KERNEL);
	if (!out_buf)
		return -ENOMEM;

#ifdef CONFIG_X86
	use_tsc = boot_cpu_has(X86_FEATURE_TSC) && tsc_khz;
#endif
	prandom_seed_state(&rnd, seed);
	emit("info kernel=%s cpus=%u kasan=%d lockdep=%d kmemleak=%d preempt=%s hz=%d clock=%s reps=%u nids=%u sample_ms=%u seed=%u\n",
	     init_utsname()->release, num_online_cpus(), IS_ENABLED(CONFIG_KASAN),
	     IS_ENABLED(CONFIG_PROVE_LOCKING), IS_ENABLED(CONFIG_DEBUG_KMEMLEAK),
	     IS_ENABLED(CONFIG_PREEMPT) ? "full" : IS_ENABLED(CONFIG_PREEMPT_VOLUNTARY) ?
	     "voluntary" : "none", HZ, use_tsc ? "tsc" : "ktime", reps, nids, sample_ms, seed);
	for (i = 0; i < nr_live && !ret; i++)
		ret = bench_one(live[i], &rnd);
	emit("done status=%d\n", ret);
	pr_info("done (%d): %zu bytes of results\n", ret, out_len);

	bench_dir = debugfs_create_dir(KBUILD_MODNAME, NULL);
	debugfs_create_file("results", 0444, bench_dir, NULL, &results_fops);
	return 0;
}

static void __exit rust_klp_shadow_bench_exit(void)
{
	debugfs_remove(bench_dir);
	kvfree(out_buf);
}

module_init(rust_klp_shadow_bench_init);
module_exit(rust_klp_shadow_bench_exit);
MODULE_DESCRIPTION("Benchmark of rust_klp_shadow against the kernel's klp_shadow");
MODULE_LICENSE("GPL");

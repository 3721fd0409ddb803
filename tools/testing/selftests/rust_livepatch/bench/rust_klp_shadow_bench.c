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
 * "reps" times and rotating which implementation goes first:
 *
 *   get_hit       klp_shadow_get() of a random live <obj, id>
 *   get_miss      klp_shadow_get() of an object that has no variable
 *   get_read      get_hit, then a read of the first word of the data returned
 *   alloc_free    klp_shadow_alloc() then klp_shadow_free() (per pair)
 *   get_or_alloc  klp_shadow_get_or_alloc() of a live <obj, id>
 *   free_all      klp_shadow_free_all() of one id (1/nids of the variables),
 *                 per variable freed; the id is refilled (untimed) after;
 *                 in the first "free_all_reps" repetitions only
 *
 * on one CPU (a kthread bound to the first online CPU) and, for "cpus_read"
 * (every CPU does get_hit), "cpus_write" (every CPU does alloc_free on
 * objects of its own) and "cpus_mixed" (even CPUs read, odd CPUs write), on
 * every online CPU at once.
 *
 * Loop overhead: every sampled test is also run as the *empty* loop (impl
 * "empty"): the same loop over the same access stream, reading the same
 * <obj, id> pairs and testing a result the same way, with no table call.
 * scripts/bench subtracts it, per repetition and per row, from both tables.
 *
 * References (impl "ref", with their own empty loop where they have one):
 *
 *   ref_call      get_hit's loop around a call of an empty function
 *   cold_load     get_hit's loop around one load from a random line of a
 *                 buffer with the table's footprint at this size
 *   cold_chase    a dependent pointer chase through that buffer: each load's
 *                 address is the value of the previous one, so one step is
 *                 exactly one load, never overlapped with the next
 *
 * The buffer is "cold_bytes" bytes per live variable (default 96: the 80
 * bytes of a variable's allocation, as both tables make it for this mix of
 * sizes, and 16 for our array of lines), in chunks of up to 2 MiB from the
 * page allocator (the direct map, where the tables' slabs live); the chase
 * visits its 64-byte lines in one random cycle (Sattolo's algorithm).  The
 * cost of one cold load at 1,000,000 variables, in units of which
 * scripts/bench states the flatness of a lookup, is the chase step there
 * minus the chase step at 100 (whose buffer, 9.6 KB, stays in the caches).
 *
 * A sample runs for "sample_ms" (and at least MIN_CHUNKS, at most
 * MAX_CHUNKS chunks) and reports the operations done, the nanoseconds taken
 * (the TSC, see bench_clock()) and the median duration of its chunks
 * (CHUNK_GET gets or CHUNK_ALLOC alloc+free pairs, timed together): the clock
 * is never read around a single operation, and the clock read of each chunk
 * is in the empty loop too, so the subtraction removes it.  The chunk median
 * is what scripts/bench reports: it discards the chunks during which the host
 * took the vCPU away, which under TCG on a busy host is most of the noise.
 * On all CPUs, the workers start together (each on its CPU) and every worker
 * keeps working until all have their sample, so no chunk is measured without
 * the others' load.
 *
 * Memory: the slab bytes (NR_SLAB_{UN,}RECLAIMABLE_B, per-CPU deltas
 * included, which also counts kmalloc_large) and the pages taken from the
 * page allocator (NR_FREE_PAGES; includes vmalloc) are read before and after
 * each table is filled, after an RCU barrier, and again when the table is
 * emptied at the end.  The live bytes are computed: each table's entries
 * (kmalloc_size_roundup() of header + data: 48 + size for both), and, for
 * ours, its arrays of lines and their retire records, from the table's
 * debugfs "stats" read after the fill (a "tablestats" line).
 *
 * Results are key=value lines in /sys/kernel/debug/rust_klp_shadow_bench/
 * results; scripts/bench turns them into tables, CSV, JSON and plots.
 *
 * Usage (in the guest, after loading rust_klp_shadow.ko):
 *
 *   # insmod rust_klp_shadow_bench.ko live=100,10000 reps=5
 *   # cat /sys/kernel/debug/rust_klp_shadow_bench/results
 *   info kernel=6.12.117 cpus=2 kasan=0 lockdep=0 kmemleak=0 preempt=voluntary
 *        preempt_dynamic=0 preempt_now=voluntary rcu=tree hz=1000 nohz=idle ...
 *   mem live=100 impl=c slab_bytes=... pages_bytes=... entry_bytes=... model_bytes=...
 *   tablestats live=100 shards=64 count=100 ... array_bytes=... ...
 *   result live=100 test=get_hit impl=c rep=0 cpus=1 cpu=0 role=read ops=... ns=...
 *          chunks=... chunk_ops=128 chunk_ns_med=... errors=0
 *   result live=100 test=get_hit impl=empty rep=0 ...
 *   ...
 *   # rmmod rust_klp_shadow_bench
 *
 * Nothing else may use the shadow ids BENCH_ID_BASE... while it runs: the
 * module frees all their variables in both tables when it is done.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cpumask.h>
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/gfp.h>
#include <linux/kthread.h>
#include <linux/livepatch.h>
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/module.h>
#include <linux/prandom.h>
#include <linux/preempt.h>
#include <linux/rcupdate.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/uio.h>
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

/*
 * Our table's layout (rust/shadow/shard.rs), for the live bytes: a variable
 * is a 48-byte header (obj, id, size, dtor, rcu_head) with its data at
 * offset 48; each array of lines has a retire record (an rcu_head and the
 * array's pointer) allocated with it.
 */
#define RKS_DATA_OFF	48
#define RKS_RECORD	(sizeof(struct rcu_head) + sizeof(void *))
#define RKS_STATS	"/sys/kernel/debug/rust_klp_shadow/stats"

/* Cold-load buffer: chunks of at most 2 MiB, lines of 64 bytes. */
#define COLD_ORDER	9
#define COLD_LINE	64

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

static char *tests = "get_hit,get_miss,get_read,alloc_free,get_or_alloc,free_all,cpus_read,cpus_write,cpus_mixed,ref_call,cold_load,cold_chase";
module_param(tests, charp, 0444);
MODULE_PARM_DESC(tests, "comma-separated tests to run (default: all)");

static unsigned int free_all_reps = 3;
module_param(free_all_reps, uint, 0444);
MODULE_PARM_DESC(free_all_reps, "repetitions that also time free_all (the first ones; default 3)");

static unsigned int cold_bytes = 96;
module_param(cold_bytes, uint, 0444);
MODULE_PARM_DESC(cold_bytes, "bytes of the cold-load buffer per live variable (default 96)");

static unsigned int seed = 1;
module_param(seed, uint, 0444);
MODULE_PARM_DESC(seed, "seed of the object sizes and access streams");

/*
 * The clock: the TSC where there is one.  local_clock() is not usable for
 * short intervals under TCG: when the guest's clocksource watchdog marks the
 * TSC unstable (it does on a busy host), local_clock() is clamped to the tick
 * and returns the same value for up to a jiffy.  Under TCG the guest's TSC
 * is the host's (invariant) TSC, so it stays right whatever the watchdog
 * says; with QEMU's -icount it counts the guest's instructions (shift=0: one
 * per ns), and so does every clock of the guest.
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

/*
 * The five calls of the klp_shadow API, as both tables export them.  An
 * implementation without them (get == NULL) is the empty loop.
 */
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

static const struct shadow_api rust_api = {
	.name = "rust",
	.get = rust_klp_shadow_get,
	.alloc = rust_klp_shadow_alloc,
	.get_or_alloc = rust_klp_shadow_get_or_alloc,
	.free = rust_klp_shadow_free,
	.free_all = rust_klp_shadow_free_all,
};

/* The loop of every test with no table call in it: the loop overhead. */
static const struct shadow_api empty_api = {
	.name = "empty",
};

/*
 * References for reading the others: a "get" that does nothing (the cost of
 * one call and return) and the cold loads.
 */
static noinline void *ref_nop(void *obj, unsigned long id)
{
	barrier();
	return obj;
}

static const struct shadow_api ref_api = {
	.name = "ref",
	.get = ref_nop,
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

/* The cold-load buffer: lines of COLD_LINE bytes in chunks from the page allocator. */
struct cold_buf {
	struct page **chunk;
	unsigned int *order;		/* of each chunk */
	unsigned int nr_chunks;
	unsigned long lines;
	void **line;			/* the address of every line */
	void **stream;			/* STREAM_LEN random lines (cold_load) */
	void *chase;			/* where the chase is (cold_chase) */
};

/* Everything one number of live variables needs. */
struct bench_set {
	unsigned long nr;		/* live variables */
	void **objs;			/* nr parents; objs[i] has id i % nids */
	void **spare;			/* NR_SPARE parents without variables */
	struct pair *hit;		/* STREAM_LEN random live <obj, id> */
	struct pair *miss;		/* STREAM_LEN random spare <obj, id> */
	struct cold_buf cold;
};

enum role {
	ROLE_GET_HIT, ROLE_GET_MISS, ROLE_GET_READ, ROLE_ALLOC_FREE, ROLE_GET_OR_ALLOC,
	ROLE_COLD_LOAD, ROLE_COLD_CHASE,
};
static const char *const role_name[] = {
	"read", "miss", "data", "write", "getalloc", "load", "chase",
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
#define OUT_SIZE (4U << 20)

/* Where the loops leave what they read, so that no read is optimised away. */
static unsigned long bench_sink;

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
 * The calls, or, in the empty loop (@api without functions), none: the
 * arguments go through an empty asm that needs them in registers, as the
 * call does, and the result is one the compiler cannot predict, so the loop
 * reads the same stream and tests the same result as the table's loop.
 */
#define bench_use(...)	asm volatile("" : : __VA_ARGS__)

static __always_inline void *op_get(const struct shadow_api *api, void *obj,
				    unsigned long id, bool hit)
{
	void *r;

	if (api->get)
		return api->get(obj, id);
	bench_use("r" (obj), "r" (id));
	r = hit ? obj : NULL;
	OPTIMIZER_HIDE_VAR(r);
	return r;
}

static __always_inline void *op_alloc(const struct shadow_api *api, void *obj,
				      unsigned long id, size_t size)
{
	if (api->alloc)
		return api->alloc(obj, id, size, GFP_KERNEL, NULL, NULL);
	bench_use("r" (obj), "r" (id), "r" (size));
	OPTIMIZER_HIDE_VAR(obj);
	return obj;
}

static __always_inline void *op_get_or_alloc(const struct shadow_api *api, void *obj,
					     unsigned long id, size_t size)
{
	if (api->get_or_alloc)
		return api->get_or_alloc(obj, id, size, GFP_KERNEL, NULL, NULL);
	bench_use("r" (obj), "r" (id), "r" (size));
	OPTIMIZER_HIDE_VAR(obj);
	return obj;
}

static __always_inline void op_free(const struct shadow_api *api, void *obj,
				    unsigned long id)
{
	if (api->free)
		api->free(obj, id, NULL);
	else
		bench_use("r" (obj), "r" (id));
}

/*
 * The timed loops.  __always_inline with a constant @api: each caller below
 * gets its own copy in which every table call is a direct call, exactly as a
 * livepatch would make it (and the empty loop's copy has no call at all).
 */
static __always_inline u64 loop_get(const struct shadow_api *api,
				    const struct pair *s, u32 *cur, bool hit)
{
	u64 err = 0;
	u32 i, c = *cur;

	for (i = 0; i < CHUNK_GET; i++, c++) {
		const struct pair *p = &s[c & (STREAM_LEN - 1)];

		err += (op_get(api, p->obj, p->id, hit) != NULL) != hit;
	}
	*cur = c;
	return err;
}

/* get_hit, then the first word of the data (every id's data is at least 4 bytes). */
static __always_inline u64 loop_get_read(const struct shadow_api *api,
					 const struct pair *s, u32 *cur)
{
	unsigned long sink = 0;
	u64 err = 0;
	u32 i, c = *cur;

	for (i = 0; i < CHUNK_GET; i++, c++) {
		const struct pair *p = &s[c & (STREAM_LEN - 1)];
		void *d = op_get(api, p->obj, p->id, true);

		err += !d;
		if (d)
			sink += api->get ? READ_ONCE(*(u32 *)d) : (u32)(unsigned long)d;
	}
	WRITE_ONCE(bench_sink, sink);
	*cur = c;
	return err;
}

static __always_inline u64 loop_get_or_alloc(const struct shadow_api *api,
					     const struct pair *s, u32 *cur)
{
	u64 err = 0;
	u32 i, c = *cur;

	for (i = 0; i < CHUNK_GET; i++, c++) {
		const struct pair *p = &s[c & (STREAM_LEN - 1)];

		err += !op_get_or_alloc(api, p->obj, p->id, bench_size(p->id));
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
		err += !op_alloc(api, p[i].obj, p[i].id, bench_size(p[i].id));
	}
	for (i = 0; i < CHUNK_ALLOC; i++)
		op_free(api, p[i].obj, p[i].id);
	*cur = c;
	return err;
}

/* get_hit's loop around one load from a random line of the cold buffer. */
static __always_inline u64 loop_cold_load(const struct shadow_api *api,
					  void *const *s, u32 *cur)
{
	unsigned long sink = 0;
	u32 i, c = *cur;

	for (i = 0; i < CHUNK_GET; i++, c++) {
		void *q = s[c & (STREAM_LEN - 1)];

		if (api->get)
			sink += READ_ONCE(*(unsigned long *)q);
		else
			bench_use("r" (q));
	}
	WRITE_ONCE(bench_sink, sink);
	*cur = c;
	return 0;
}

/* CHUNK_GET steps of the chase: each line holds the address of the next. */
static __always_inline u64 loop_cold_chase(struct cold_buf *cold)
{
	void *p = cold->chase;
	u32 i;

	for (i = 0; i < CHUNK_GET; i++)
		p = READ_ONCE(*(void **)p);
	cold->chase = p;
	return 0;
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
		case ROLE_GET_READ:
			err += loop_get_read(api, set->hit, &cur);
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
		case ROLE_COLD_LOAD:
			err += loop_cold_load(api, set->cold.stream, &cur);
			chunk_ops = CHUNK_GET;
			break;
		case ROLE_COLD_CHASE:
			err += loop_cold_chase(&set->cold);
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

static noinline void run_worker_empty(struct bench_worker *w)
{
	run_worker(&empty_api, w);
}

static noinline void run_worker_ref(struct bench_worker *w)
{
	run_worker(&ref_api, w);
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
	else if (w->api == &c_api)
		run_worker_c(w);
	else if (w->api == &ref_api)
		run_worker_ref(w);
	else
		run_worker_empty(w);
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
static enum role role_get_read(unsigned int i) { return ROLE_GET_READ; }
static enum role role_alloc_free(unsigned int i) { return ROLE_ALLOC_FREE; }
static enum role role_get_or_alloc(unsigned int i) { return ROLE_GET_OR_ALLOC; }
static enum role role_mixed(unsigned int i) { return i % 2 ? ROLE_ALLOC_FREE : ROLE_GET_HIT; }
static enum role role_cold_load(unsigned int i) { return ROLE_COLD_LOAD; }
static enum role role_cold_chase(unsigned int i) { return ROLE_COLD_CHASE; }

/* Who runs each test: both tables and the empty loop, a reference and its empty loop, ... */
static const struct shadow_api *const impls_tables[] = { &c_api, &rust_api, &empty_api };
static const struct shadow_api *const impls_ref[] = { &ref_api, &empty_api };
static const struct shadow_api *const impls_chase[] = { &ref_api };

static const struct {
	const char *name;
	bool all_cpus;
	const struct shadow_api *const *impls;
	unsigned int nr_impls;
	enum role (*role_of)(unsigned int);
} sampled_tests[] = {
#define TABLES impls_tables, ARRAY_SIZE(impls_tables)
	{ "get_hit", false, TABLES, role_get_hit },
	{ "get_miss", false, TABLES, role_get_miss },
	{ "get_read", false, TABLES, role_get_read },
	{ "alloc_free", false, TABLES, role_alloc_free },
	{ "get_or_alloc", false, TABLES, role_get_or_alloc },
	{ "cpus_read", true, TABLES, role_get_hit },
	{ "cpus_write", true, TABLES, role_alloc_free },
	{ "cpus_mixed", true, TABLES, role_mixed },
	{ "ref_call", false, impls_ref, ARRAY_SIZE(impls_ref), role_get_hit },
	{ "cold_load", false, impls_ref, ARRAY_SIZE(impls_ref), role_cold_load },
	{ "cold_chase", false, impls_chase, ARRAY_SIZE(impls_chase), role_cold_chase },
#undef TABLES
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

/* The bytes of the allocations of the set's variables, with a header of @hdr bytes. */
static long entry_bytes(struct bench_set *set, size_t hdr)
{
	long bytes = 0;
	unsigned long i;

	for (i = 0; i < nids; i++) {
		unsigned long count = set->nr / nids + (i < set->nr % nids);

		bytes += count * kmalloc_size_roundup(hdr + bench_size(bench_id(i)));
	}
	return bytes;
}

/* Fills @api's table with the set's variables; one "fill" and one "mem" line. */
static void bench_fill(struct bench_set *set, const struct shadow_api *api)
{
	long slab0, used0, slab1, used1;
	u64 ns, errors = 0;

	bench_quiesce();
	slab0 = slab_bytes();
	used0 = used_bytes();
	ns = fill_range(api, set, 0, 1, &errors);
	bench_quiesce();
	slab1 = slab_bytes();
	used1 = used_bytes();
	emit("fill live=%lu impl=%s ops=%lu ns=%llu errors=%llu\n",
	     set->nr, api->name, set->nr, ns, errors);
	/* model_bytes: the kernel's exact per-variable kzalloc(), as before. */
	emit("mem live=%lu impl=%s slab_bytes=%ld pages_bytes=%ld entry_bytes=%ld record_bytes=%zu model_bytes=%ld\n",
	     set->nr, api->name, slab1 - slab0, used1 - used0,
	     entry_bytes(set, api == &c_api ? sizeof(struct klp_shadow_layout) : RKS_DATA_OFF),
	     api == &c_api ? 0 : kmalloc_size_roundup(RKS_RECORD),
	     api == &c_api ? entry_bytes(set, sizeof(struct klp_shadow_layout)) : -1L);
}

/*
 * Our table's debugfs "stats" ("name value" lines) as one "tablestats" line.
 * The file is a seq_file: read it with seq_read_iter() into a kernel buffer
 * (kernel_read() refuses files with only ->read, as debugfs proxies them).
 */
static void emit_table_stats(unsigned long nr, const char *when)
{
	struct kvec kv;
	struct kiocb kiocb;
	struct iov_iter iter;
	struct file *f;
	ssize_t n;
	char *buf, *p;

	buf = kzalloc(PAGE_SIZE, GFP_KERNEL);
	if (!buf)
		return;
	f = filp_open(RKS_STATS, O_RDONLY, 0);
	if (IS_ERR(f)) {
		emit("tablestats live=%lu when=%s error=%ld\n", nr, when, PTR_ERR(f));
		kfree(buf);
		return;
	}
	kv = (struct kvec){ .iov_base = buf, .iov_len = PAGE_SIZE - 1 };
	init_sync_kiocb(&kiocb, f);
	iov_iter_kvec(&iter, ITER_DEST, &kv, 1, PAGE_SIZE - 1);
	n = seq_read_iter(&kiocb, &iter);
	filp_close(f, NULL);
	if (n < 0) {
		emit("tablestats live=%lu when=%s error=%zd\n", nr, when, n);
		kfree(buf);
		return;
	}
	buf[n] = 0;
	for (p = buf; *p; p++) {
		if (*p == ' ')
			*p = '=';
		else if (*p == '\n')
			*p = ' ';
	}
	emit("tablestats live=%lu when=%s %s\n", nr, when, strim(buf));
	kfree(buf);
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

/* Empties @api's table; one "memfree" line: the slab given back. */
static void bench_empty(struct bench_set *set, const struct shadow_api *api)
{
	long slab0, slab1;
	unsigned int id;

	bench_quiesce();
	slab0 = slab_bytes();
	for (id = 0; id < nids; id++)
		api->free_all(bench_id(id), NULL);
	bench_quiesce();
	slab1 = slab_bytes();
	emit("memfree live=%lu impl=%s slab_bytes=%ld\n", set->nr, api->name, slab1 - slab0);
}

static void cold_free(struct cold_buf *cold)
{
	unsigned int i;

	for (i = 0; cold->chunk && i < cold->nr_chunks; i++)
		__free_pages(cold->chunk[i], cold->order[i]);
	kvfree(cold->chunk);
	kvfree(cold->order);
	kvfree(cold->line);
	kvfree(cold->stream);
	memset(cold, 0, sizeof(*cold));
}

/*
 * The cold-load buffer of @bytes: chunks of up to 2 MiB (smaller ones if
 * the page allocator has no such block), a random single cycle through all
 * its lines for the chase, a random stream of its lines for cold_load.
 */
static int cold_init(struct cold_buf *cold, unsigned long bytes, struct rnd_state *rnd)
{
	unsigned long want = max(DIV_ROUND_UP(bytes, COLD_LINE), 2UL), i, j, got = 0;
	unsigned int max_chunks = DIV_ROUND_UP(want * COLD_LINE, PAGE_SIZE);
	unsigned int order = min_t(unsigned int, COLD_ORDER,
				   get_order(want * COLD_LINE));

	cold->chunk = kvcalloc(max_chunks, sizeof(*cold->chunk), GFP_KERNEL);
	cold->order = kvcalloc(max_chunks, sizeof(*cold->order), GFP_KERNEL);
	cold->line = kvmalloc_array(want, sizeof(void *), GFP_KERNEL);
	cold->stream = kvmalloc_array(STREAM_LEN, sizeof(void *), GFP_KERNEL);
	if (!cold->chunk || !cold->order || !cold->line || !cold->stream)
		return -ENOMEM;
	while (got < want) {
		struct page *pg;
		unsigned long n;

		while (order && (PAGE_SIZE << (order - 1)) >= (want - got) * COLD_LINE)
			order--;
		pg = alloc_pages(GFP_KERNEL | __GFP_NOWARN | (order ? __GFP_NORETRY : 0), order);
		if (!pg) {
			if (!order)
				return -ENOMEM;
			order--;
			continue;
		}
		cold->order[cold->nr_chunks] = order;
		cold->chunk[cold->nr_chunks++] = pg;
		n = min((PAGE_SIZE << order) / COLD_LINE, want - got);
		for (j = 0; j < n; j++)
			cold->line[got + j] = page_address(pg) + j * COLD_LINE;
		got += n;
	}
	cold->lines = want;
	/* Sattolo: a random permutation that is a single cycle through every line. */
	for (i = want - 1; i > 0; i--) {
		j = prandom_u32_state(rnd) % i;
		swap(cold->line[i], cold->line[j]);
	}
	for (i = 0; i < want; i++)
		*(void **)cold->line[i] = cold->line[(i + 1) % want];
	cold->chase = cold->line[0];
	for (i = 0; i < STREAM_LEN; i++)
		cold->stream[i] = cold->line[prandom_u32_state(rnd) % want] + sizeof(void *);
	return 0;
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
	cold_free(&set->cold);
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
	if (test_enabled("cold_load") || test_enabled("cold_chase")) {
		int ret = cold_init(&set->cold, nr * cold_bytes, rnd);

		if (ret)
			return ret;
		emit("cold live=%lu bytes=%lu lines=%lu chunks=%u\n", nr,
		     set->cold.lines * COLD_LINE, set->cold.lines, set->cold.nr_chunks);
	}
	return 0;
}

static int bench_one(unsigned long nr, struct rnd_state *rnd)
{
	const struct shadow_api *apis[] = { &c_api, &rust_api };
	const struct cpumask *one = cpumask_of(cpumask_first(cpu_online_mask));
	struct bench_set set = {};
	unsigned int rep, t, k;
	int ret;

	pr_info("live=%lu: allocating objects\n", nr);
	ret = set_init(&set, nr, rnd);
	if (ret)
		goto out;
	for (k = 0; k < ARRAY_SIZE(apis); k++) {
		pr_info("live=%lu: filling %s\n", nr, apis[k]->name);
		bench_fill(&set, apis[k]);
	}
	emit_table_stats(nr, "filled");

	for (rep = 0; rep < reps; rep++) {
		pr_info("live=%lu: rep %u\n", nr, rep);
		for (t = 0; t < ARRAY_SIZE(sampled_tests); t++) {
			unsigned int m = sampled_tests[t].nr_impls;

			if (!test_enabled(sampled_tests[t].name))
				continue;
			if (sampled_tests[t].all_cpus && num_online_cpus() < 2)
				continue;
			/* Rotate which implementation goes first. */
			for (k = 0; k < m; k++) {
				ret = bench_sample(&set, sampled_tests[t].impls[(k + rep) % m],
						   sampled_tests[t].name, rep,
						   sampled_tests[t].all_cpus ? cpu_online_mask : one,
						   sampled_tests[t].role_of);
				if (ret)
					goto out;
			}
		}
		/*
		 * Not every repetition: refilling an id of the kernel's table
		 * at 1,000,000 variables takes a minute under TCG (each
		 * klp_shadow_alloc() walks a chain of 244 entries, twice).
		 */
		if (test_enabled("free_all") && rep < free_all_reps)
			for (k = 0; k < ARRAY_SIZE(apis); k++)
				bench_free_all(&set, apis[(k + rep) % 2], rep);
	}
	emit_table_stats(nr, "end");
out:
	for (k = 0; k < ARRAY_SIZE(apis); k++)
		bench_empty(&set, apis[k]);
	emit_table_stats(nr, "emptied");
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

/* What the kernel was built with, and what it runs with (PREEMPT_DYNAMIC picks at boot). */
static const char *preempt_built(void)
{
	if (IS_ENABLED(CONFIG_PREEMPT_RT))
		return "rt";
	if (IS_ENABLED(CONFIG_PREEMPT))
		return "full";
	if (IS_ENABLED(CONFIG_PREEMPT_VOLUNTARY))
		return "voluntary";
	return "none";
}

static const char *preempt_now(void)
{
	if (preempt_model_rt())
		return "rt";
	if (preempt_model_full())
		return "full";
	if (preempt_model_voluntary())
		return "voluntary";
	if (preempt_model_none())
		return "none";
	return "unknown";
}

static int __init rust_klp_shadow_bench_init(void)
{
	struct rnd_state rnd;
	unsigned int i;
	int ret = 0;

	if (!nids || nids > MAX_IDS || !reps || !sample_ms || !cold_bytes)
		return -EINVAL;
	out_buf = kvmalloc(OUT_SIZE, GFP_KERNEL);
	if (!out_buf)
		return -ENOMEM;

#ifdef CONFIG_X86
	use_tsc = boot_cpu_has(X86_FEATURE_TSC) && tsc_khz;
#endif
	prandom_seed_state(&rnd, seed);
	emit("info kernel=%s cpus=%u kasan=%d lockdep=%d kmemleak=%d preempt=%s preempt_dynamic=%d preempt_now=%s rcu=%s hz=%d nohz=%s clock=%s tsc_khz=%u reps=%u free_all_reps=%u nids=%u sample_ms=%u cold_bytes=%u seed=%u\n",
	     init_utsname()->release, num_online_cpus(), IS_ENABLED(CONFIG_KASAN),
	     IS_ENABLED(CONFIG_PROVE_LOCKING), IS_ENABLED(CONFIG_DEBUG_KMEMLEAK),
	     preempt_built(), IS_ENABLED(CONFIG_PREEMPT_DYNAMIC), preempt_now(),
	     IS_ENABLED(CONFIG_PREEMPT_RCU) ? "preempt" : IS_ENABLED(CONFIG_TREE_RCU) ?
	     "tree" : "tiny", HZ, IS_ENABLED(CONFIG_NO_HZ_FULL) ? "full" :
	     IS_ENABLED(CONFIG_NO_HZ_IDLE) ? "idle" : "periodic",
	     use_tsc ? "tsc" : "ktime",
#ifdef CONFIG_X86
	     tsc_khz,
#else
	     0,
#endif
	     reps, free_all_reps, nids, sample_ms, cold_bytes, seed);
	emit_table_stats(0, "start");
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

// SPDX-License-Identifier: GPL-2.0
/*
 * wifi_traffic - unicast traffic from an access point to a station that
 * keeps entering and leaving power save, counting the frames the AP
 * delivered late: the mac80211 power-save TX vs. wakeup race (patches/).
 *
 *   wifi_traffic -a AP_IF -s STA_IF -p PS_KNOB [-b PS_BUF_FILE]
 *                [-t SECONDS] [-r RATE] [-S SLEEP_MS] [-W AWAKE_MS]
 *                [-q QUIET_MS] [-c TX_CPU,PS_CPU] [-e ETHERTYPE]
 *
 * One process, three threads (a process start costs seconds under TCG):
 *
 * - the sender sends raw Ethernet frames (AF_PACKET, ETHERTYPE, default
 *   0x88b5, an experimental one) from AP_IF to the station's MAC address
 *   (STA_IF's), RATE a second or as fast as it can (RATE 0, the default),
 *   each carrying a sequence number;
 * - the toggler writes 1 and 0 to the station radio's mac80211_hwsim `ps`
 *   debugfs knob (PS_KNOB), asleep for SLEEP_MS and awake for AWAKE_MS
 *   (default 50 each): hwsim then sends null-data frames with and without
 *   the PM bit to the AP, whose mac80211 buffers the station's frames while
 *   it sleeps and delivers them at its wakeup;
 * - the receiver receives them on STA_IF with the kernel's receive
 *   timestamps.
 *
 * After SECONDS (default 10; a fraction is fine) the sender stops, the
 * station stays awake and QUIET_MS (default 500) later the frames the AP
 * still buffers for it are read from PS_BUF_FILE (the AP's per-station
 * debugfs num_ps_buf_frames): frames stranded by the race while the station
 * is awake.  If there are any, the station sleeps and wakes once more so
 * that they are delivered (counted as "flushed").
 *
 * Half way through each awake period the toggler reads PS_BUF_FILE too:
 * frames the AP still buffers then were stranded by the race at that
 * wakeup ("stranded_wakes" counts such wakeups, "stranded_max" is the most
 * frames seen).
 *
 * A frame is "late" when a frame sent after it was received a whole
 * wakeup earlier: it was stranded, buffered while the station was awake
 * (queued on the sleep buffer after the wakeup moved that buffer out), and
 * delivered only at a later wakeup.  The wakeups are counted by the
 * receive timestamps (the kernel's) against the start times of the
 * toggler's writes of 0; frames are delivered after the write that wakes
 * the station started.  "max_late_wakes" is how many wakeups late the
 * latest was.  A frame is "out of order" when a frame with a higher
 * sequence number arrived before it; mac80211 reorders frames within a
 * wakeup too (the buffered ones go through its pending queue, the new ones
 * straight to the driver's queues), so only "late" shows the race.
 *
 * With two or more CPUs online the sender runs on CPU 0 and the toggler on
 * CPU 1 (the wakeup runs in the toggler's softirq): the race needs both at
 * once.  -c sets other CPUs, -1 for no pinning.
 *
 * The last line of stdout is the result, key=value pairs after the word
 * "wifi_traffic:":
 *   sent received lost dup out_of_order late max_late_wakes stranded_wakes
 *   stranded_max flushed buffered_end sleeps wakeups tx_errors tx_errno
 *   sock_drops duration_ms tx_rate
 * (tx_rate in frames per second; stranded_max and buffered_end -1 without
 * PS_BUF_FILE; wakeups counts the writes of 0, the final ones included; lost
 * frames are those the station's radio dropped in power save before the AP
 * knew it slept, and those the AP dropped from a full sleep buffer).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAGIC		0x726b6c70u	/* "rklp" */
#define FRAME_LEN	64

struct payload {
	uint32_t magic;
	uint32_t run;
	uint64_t seq;
} __attribute__((packed));

struct rx_rec {
	uint64_t seq;
	uint64_t recv_ns;	/* CLOCK_REALTIME, the kernel's timestamp */
};

static struct {
	const char *ap_if, *sta_if, *ps_knob, *buf_file;
	double seconds;
	unsigned long rate;
	unsigned int sleep_ms, awake_ms, quiet_ms;
	int tx_cpu, ps_cpu;
	uint16_t ethertype;
} opt = {
	.seconds = 10,
	.sleep_ms = 50,
	.awake_ms = 50,
	.quiet_ms = 500,
	.tx_cpu = -2,		/* -2: the default, by the CPUs online */
	.ps_cpu = -2,
	.ethertype = 0x88b5,
};

static uint32_t run_id;
static int ps_fd, tx_fd;
static struct sockaddr_ll dest;	/* the station, through AP_IF */
static atomic_bool stop_traffic, stop_rx;

/* The sender's */
static uint64_t sent, tx_errors;
static int tx_errno;

/* The toggler's; the main thread's after the join */
static uint64_t *wakes;		/* when each write of 0 started */
static size_t nr_wakes, max_wakes;
static uint64_t nr_sleeps, stranded_wakes;
static long stranded_max = -1;
static int ps_errno;

/* The receiver's */
static struct rx_rec *recs;
static size_t nr_recs, max_recs;
static int rx_errno;

static void die(const char *what)
{
	fprintf(stderr, "wifi_traffic: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void usage(const char *why)
{
	fprintf(stderr, "wifi_traffic: %s\n"
		"usage: wifi_traffic -a AP_IF -s STA_IF -p PS_KNOB [-b PS_BUF_FILE]\n"
		"       [-t SECONDS] [-r RATE] [-S SLEEP_MS] [-W AWAKE_MS]\n"
		"       [-q QUIET_MS] [-c TX_CPU,PS_CPU] [-e ETHERTYPE]\n", why);
	exit(2);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* A number option: the whole argument, in [min, max], else exit. */
static unsigned long parse_ulong(const char *s, int base, unsigned long min,
				 unsigned long max, const char *what)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, base);
	if (errno || end == s || *end || *s == '-' || v < min || v > max) {
		fprintf(stderr, "wifi_traffic: %s: '%s' is not a number in %lu..%lu%s%s\n",
			what, s, min, max, errno ? ": " : "",
			errno ? strerror(errno) : "");
		exit(2);
	}
	return v;
}

static int parse_cpu(const char *s, const char *what)
{
	if (!strcmp(s, "-1"))
		return -1;
	return parse_ulong(s, 10, 0, CPU_SETSIZE - 1, what);
}

static void parse_args(int argc, char **argv)
{
	char *end, *comma;
	int c;

	while ((c = getopt(argc, argv, "a:s:p:b:t:r:S:W:q:c:e:")) != -1) {
		switch (c) {
		case 'a': opt.ap_if = optarg; break;
		case 's': opt.sta_if = optarg; break;
		case 'p': opt.ps_knob = optarg; break;
		case 'b': opt.buf_file = optarg; break;
		case 't':
			errno = 0;
			opt.seconds = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(opt.seconds > 0) ||
			    opt.seconds > 3600) {
				fprintf(stderr, "wifi_traffic: -t: '%s' is not a duration in (0, 3600] seconds\n",
					optarg);
				exit(2);
			}
			break;
		case 'r':
			opt.rate = parse_ulong(optarg, 10, 0, 10000000, "-r (frames a second)");
			break;
		case 'S':
			opt.sleep_ms = parse_ulong(optarg, 10, 1, 60000, "-S (ms)");
			break;
		case 'W':
			opt.awake_ms = parse_ulong(optarg, 10, 1, 60000, "-W (ms)");
			break;
		case 'q':
			opt.quiet_ms = parse_ulong(optarg, 10, 0, 60000, "-q (ms)");
			break;
		case 'c':
			comma = strchr(optarg, ',');
			if (!comma)
				usage("-c: expected TX_CPU,PS_CPU");
			*comma = '\0';
			opt.tx_cpu = parse_cpu(optarg, "-c (TX CPU)");
			opt.ps_cpu = parse_cpu(comma + 1, "-c (PS CPU)");
			break;
		case 'e':
			opt.ethertype = parse_ulong(optarg, 0, 0x600, 0xffff, "-e (ethertype)");
			break;
		default:
			usage("unknown option");
		}
	}
	if (optind != argc)
		usage("unexpected argument");
	if (!opt.ap_if || !opt.sta_if || !opt.ps_knob)
		usage("-a, -s and -p are required");
}

static void pin(const char *who, int cpu)
{
	cpu_set_t set;
	int err;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	if (err)
		fprintf(stderr, "wifi_traffic: %s: cannot run on CPU %d: %s\n",
			who, cpu, strerror(err));
}

/*
 * Write the ps knob: "1" asleep, "0" awake; an errno on failure.  (A
 * debugfs attribute parses each write whole; it cannot seek, no pwrite.)
 */
static int set_ps(bool asleep)
{
	if (write(ps_fd, asleep ? "1\n" : "0\n", 2) != 2)
		return errno ? errno : EIO;
	return 0;
}

static void *sender(void *arg)
{
	unsigned char frame[FRAME_LEN] = { 0 };
	struct payload p = { .magic = MAGIC, .run = run_id };
	struct timespec ts;
	uint64_t seq;

	(void)arg;
	pin("sender", opt.tx_cpu);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	for (seq = 0; !atomic_load_explicit(&stop_traffic, memory_order_relaxed); seq++) {
		if (opt.rate) {
			uint64_t t = (uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec +
				     seq * 1000000000 / opt.rate;
			struct timespec next = { t / 1000000000, t % 1000000000 };

			while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
				;
		}
		p.seq = seq;
		memcpy(frame, &p, sizeof(p));
		if (sendto(tx_fd, frame, sizeof(frame), 0, (struct sockaddr *)&dest,
			   sizeof(dest)) != sizeof(frame)) {
			tx_errors++;
			tx_errno = errno;
			if (errno == ENOBUFS || errno == EAGAIN)
				sched_yield();
			else if (errno != ENETDOWN)
				break;
			continue;
		}
		sent++;
	}
	return NULL;
}

static long read_buffered(void);

/*
 * Half way through each awake period, the frames the AP still buffers for
 * the station: stranded (the wakeup delivered what was buffered before it).
 */
static void *toggler(void *arg)
{
	long n;

	(void)arg;
	pin("toggler", opt.ps_cpu);
	while (!atomic_load(&stop_traffic)) {
		if ((ps_errno = set_ps(true)))
			break;
		nr_sleeps++;
		sleep_ms(opt.sleep_ms);
		if (nr_wakes == max_wakes)
			break;
		wakes[nr_wakes++] = now_ns();
		if ((ps_errno = set_ps(false)))
			break;
		sleep_ms(opt.awake_ms / 2);
		n = read_buffered();
		if (n > stranded_max)
			stranded_max = n;
		if (n > 0)
			stranded_wakes++;
		sleep_ms(opt.awake_ms - opt.awake_ms / 2);
	}
	return NULL;
}

static void *receiver(void *arg)
{
	int fd = *(int *)arg;
	unsigned char frame[256];
	union {
		char buf[CMSG_SPACE(sizeof(struct timespec))];
		struct cmsghdr align;
	} control;

	while (!atomic_load(&stop_rx)) {
		struct iovec iov = { frame, sizeof(frame) };
		struct sockaddr_ll from;
		struct msghdr msg = {
			.msg_name = &from, .msg_namelen = sizeof(from),
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = &control, .msg_controllen = sizeof(control),
		};
		struct cmsghdr *cm;
		struct payload p;
		uint64_t recv_ns = 0;
		ssize_t n;

		n = recvmsg(fd, &msg, 0);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			rx_errno = errno;
			break;
		}
		if (n < (ssize_t)sizeof(p) || from.sll_pkttype == PACKET_OUTGOING)
			continue;
		memcpy(&p, frame, sizeof(p));
		if (p.magic != MAGIC || p.run != run_id)
			continue;
		for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
			if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
				struct timespec ts;

				memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
				recv_ns = (uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
			}
		}
		if (!recv_ns)
			recv_ns = now_ns();
		if (nr_recs == max_recs) {
			size_t max = max_recs ? 2 * max_recs : 65536;
			struct rx_rec *r = realloc(recs, max * sizeof(*r));

			if (!r) {
				rx_errno = ENOMEM;
				break;
			}
			recs = r;
			max_recs = max;
		}
		recs[nr_recs++] = (struct rx_rec){ p.seq, recv_ns };
	}
	return NULL;
}

/* The wakeups started before t: the epoch of a frame received at t. */
static size_t epoch_of(uint64_t t)
{
	size_t lo = 0, hi = nr_wakes;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (wakes[mid] < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The frames the AP buffers for the station: the sum of "ACn: count" lines. */
static long read_buffered(void)
{
	char line[64];
	long total = 0;
	FILE *f;
	int ac, n;

	if (!opt.buf_file)
		return -1;
	f = fopen(opt.buf_file, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "AC%d: %d", &ac, &n) == 2)
			total += n;
	fclose(f);
	return total;
}

static int packet_socket(const char *ifname, int ifindex)
{
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(opt.ethertype),
		.sll_ifindex = ifindex,
	};
	int fd;

	fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(opt.ethertype));
	if (fd < 0)
		die("socket(AF_PACKET)");
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)))
		die(ifname);
	return fd;
}

int main(int argc, char **argv)
{
	int rx_fd, ap_index, sta_index, one = 1, bufsize = 4 << 20;
	uint64_t t0, t1, flush_ns = UINT64_MAX, seen_max = 0, dup = 0, ooo = 0;
	uint64_t late = 0, max_late = 0, flushed = 0, received = 0;
	int64_t *epoch_max;	/* the highest sequence number received per epoch */
	pthread_t tx_thread, ps_thread, rx_thread;
	struct tpacket_stats stats = { 0 };
	socklen_t len = sizeof(stats);
	struct timeval tv = { 0, 100000 };
	unsigned char *seen;
	struct ifreq ifr;
	long buffered;
	size_t i;
	int err;

	parse_args(argc, argv);
	if (opt.tx_cpu == -2) {
		bool two = sysconf(_SC_NPROCESSORS_ONLN) >= 2;

		opt.tx_cpu = two ? 0 : -1;
		opt.ps_cpu = two ? 1 : -1;
	}
	run_id = getpid() ^ (uint32_t)now_ns();

	ap_index = if_nametoindex(opt.ap_if);
	if (!ap_index)
		die(opt.ap_if);
	sta_index = if_nametoindex(opt.sta_if);
	if (!sta_index)
		die(opt.sta_if);
	ps_fd = open(opt.ps_knob, O_WRONLY | O_CLOEXEC);
	if (ps_fd < 0)
		die(opt.ps_knob);
	if (opt.buf_file && read_buffered() < 0)
		die(opt.buf_file);

	rx_fd = packet_socket(opt.sta_if, sta_index);
	if (setsockopt(rx_fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one)) ||
	    setsockopt(rx_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)))
		die("setsockopt(receiver)");
	/* Best effort: more than rmem_max needs CAP_NET_ADMIN (we are root). */
	if (setsockopt(rx_fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufsize, sizeof(bufsize)))
		setsockopt(rx_fd, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(bufsize));

	/* The station's address: the destination of every frame. */
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", opt.sta_if);
	if (ioctl(rx_fd, SIOCGIFHWADDR, &ifr))
		die("SIOCGIFHWADDR");
	dest = (struct sockaddr_ll){
		.sll_family = AF_PACKET,
		.sll_protocol = htons(opt.ethertype),
		.sll_ifindex = ap_index,
		.sll_halen = ETH_ALEN,
	};
	memcpy(dest.sll_addr, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
	/* Protocol 0: a socket that sends only, receives nothing. */
	tx_fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (tx_fd < 0)
		die("socket(AF_PACKET)");

	/* One wakeup per period, a few spare; the final ones. */
	max_wakes = opt.seconds * 1000 / (opt.sleep_ms + opt.awake_ms) + 16;
	wakes = calloc(max_wakes, sizeof(*wakes));
	if (!wakes)
		die("calloc");

	err = set_ps(false);
	if (err) {
		errno = err;
		die(opt.ps_knob);
	}
	if ((err = pthread_create(&rx_thread, NULL, receiver, &rx_fd)) ||
	    (err = pthread_create(&tx_thread, NULL, sender, NULL)) ||
	    (err = pthread_create(&ps_thread, NULL, toggler, NULL))) {
		errno = err;
		die("pthread_create");
	}
	t0 = now_ns();
	sleep_ms(opt.seconds * 1000);
	atomic_store(&stop_traffic, true);
	pthread_join(tx_thread, NULL);
	t1 = now_ns();
	pthread_join(ps_thread, NULL);

	/* Awake and quiet: whatever the AP still buffers is stranded. */
	if (nr_wakes < max_wakes)
		wakes[nr_wakes++] = now_ns();
	err = set_ps(false);
	if (err)
		ps_errno = err;
	sleep_ms(opt.quiet_ms);
	buffered = read_buffered();
	if (buffered > 0 && nr_wakes < max_wakes) {
		/* Deliver them: one more sleep and wakeup. */
		flush_ns = now_ns();
		set_ps(true);
		nr_sleeps++;
		sleep_ms(opt.sleep_ms);
		wakes[nr_wakes++] = now_ns();
		set_ps(false);
		sleep_ms(opt.quiet_ms);
	}
	atomic_store(&stop_rx, true);
	pthread_join(rx_thread, NULL);
	if (getsockopt(rx_fd, SOL_PACKET, PACKET_STATISTICS, &stats, &len))
		stats.tp_drops = 0;

	seen = calloc(sent / 8 + 1, 1);
	epoch_max = malloc((nr_wakes + 1) * sizeof(*epoch_max));
	if (!seen || !epoch_max)
		die("calloc");
	for (i = 0; i <= nr_wakes; i++)
		epoch_max[i] = -1;
	for (i = 0; i < nr_recs; i++) {
		size_t e = epoch_of(recs[i].recv_ns);

		if (recs[i].seq < sent && (int64_t)recs[i].seq > epoch_max[e])
			epoch_max[e] = recs[i].seq;
	}
	for (i = 0; i < nr_recs; i++) {
		struct rx_rec *r = &recs[i];
		size_t e = epoch_of(r->recv_ns), first;

		if (r->seq >= sent)
			continue;	/* cannot be: not sent */
		if (seen[r->seq / 8] & (1 << (r->seq % 8))) {
			dup++;
			continue;
		}
		seen[r->seq / 8] |= 1 << (r->seq % 8);
		received++;
		if (received > 1 && r->seq < seen_max)
			ooo++;
		if (r->seq > seen_max)
			seen_max = r->seq;
		/* The first epoch that received a frame sent after this one */
		for (first = 0; first < e; first++)
			if (epoch_max[first] > (int64_t)r->seq)
				break;
		if (first < e) {
			late++;
			if (e - first > max_late)
				max_late = e - first;
		}
		if (r->recv_ns >= flush_ns)
			flushed++;
	}

	if (tx_errno && !sent)
		fprintf(stderr, "wifi_traffic: send: %s\n", strerror(tx_errno));
	if (ps_errno)
		fprintf(stderr, "wifi_traffic: %s: %s\n", opt.ps_knob, strerror(ps_errno));
	if (rx_errno)
		fprintf(stderr, "wifi_traffic: receive: %s\n", strerror(rx_errno));
	printf("wifi_traffic: sent=%llu received=%llu lost=%llu dup=%llu out_of_order=%llu late=%llu max_late_wakes=%llu stranded_wakes=%llu stranded_max=%ld flushed=%llu buffered_end=%ld sleeps=%llu wakeups=%zu tx_errors=%llu tx_errno=%d sock_drops=%u duration_ms=%llu tx_rate=%llu\n",
	       (unsigned long long)sent, (unsigned long long)received,
	       (unsigned long long)(sent - received), (unsigned long long)dup,
	       (unsigned long long)ooo, (unsigned long long)late,
	       (unsigned long long)max_late, (unsigned long long)stranded_wakes,
	       stranded_max, (unsigned long long)flushed,
	       buffered, (unsigned long long)nr_sleeps, nr_wakes,
	       (unsigned long long)tx_errors, tx_errno, stats.tp_drops,
	       (unsigned long long)((t1 - t0) / 1000000),
	       (unsigned long long)(t1 > t0 ? sent * 1000000000 / (t1 - t0) : 0));
	return ps_errno || rx_errno || (tx_errno && !sent) ? 1 : 0;
}

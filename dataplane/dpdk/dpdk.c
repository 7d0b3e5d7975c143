/* dataplane/dpdk/dpdk.c: the DPDK transport (dpdk.h). Three parts, as DPDK's skeleton example has them:
 * EAL and port set-up (once per process), the lcore's poll loop (packet I/O and the stack), and the
 * transport ops the node calls (send side: encode into mbufs; receive side: the shared pipeline). */
#include "dpdk.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_pause.h>
#include <rte_ring.h>

#include "stack.h"
#include "transport_core.h"

#define MBUFS 16383u          /* 2^n - 1, as the mempool likes it: ~37 MB with 2 KiB buffers */
#define MBUF_CACHE 256u
#define RING_SIZE 4096u       /* each of the rx and tx rings */
#define BURST 32u
#define PORT_DESCRIPTORS 1024u
#define TX_HOLD 2048u         /* frames the lcore keeps while the port's tx queue is full */
#define RECEIVE_ROUNDS 16     /* ring bursts per transport_poll before it returns */
#define FLUSH_WAIT_NS (10u * 1000u * 1000u)
#define TIMER_NS (10u * 1000u * 1000u)
#define RECEIVE_SPIN_NS (20u * 1000u)

/* ---- process-wide: EAL, the port, the mempool and the rings ---- */

struct dpdk_runtime {
	pthread_mutex_t lock;
	bool eal_tried;
	bool ready;                  /* EAL and port are up */
	char error[512];             /* why not, for every later open */
	uint16_t port;
	struct rte_mempool *pool;
	struct rte_ring *rx_ring;    /* lcore -> receive side: UDP payloads (frames) */
	struct rte_ring *tx_ring;    /* send side -> lcore: IPv4/UDP packets without Ethernet header */
	struct rte_ether_addr mac;
	char driver[64];
	uint16_t mtu;
	bool tx_ip_checksum;         /* the port fills IPv4 header checksums */
	bool rx_ip_checksum;         /* the port checks them */
	unsigned worker;             /* a worker lcore for the poll loop, or RTE_MAX_LCORE: our own thread */
	rte_cpuset_t lcore_cpus;     /* where our own poll thread runs: the main lcore's CPUs */
	bool busy;                   /* a transport is open */
	int wake_fds[8];             /* af_packet: the PMD's sockets, readable when a frame waits in their ring */
	unsigned wake_fd_count;
	char **argv;                 /* EAL's arguments, kept for the process (EAL may point into them) */
	char *args;
};

static struct dpdk_runtime runtime = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* ---- one transport ---- */

struct dpdk_peer {
	uint64_t id;
	uint32_t ip;
	uint16_t port;
};

struct dpdk_send_side {
	struct dpdk_peer *peers;     /* unsorted; a cluster has a handful of members */
	size_t peer_count;
	size_t peer_capacity;
	struct rte_mbuf **queue;     /* send_queue encoded frames waiting for flush */
	size_t queued;
	uint16_t ip_id;
};

struct dpdk_receive_side {
	struct rte_mbuf *burst[BURST * 2];
};

/* Owned by the lcore. */
struct dpdk_lcore {
	struct stack_neighbours neighbours;
	struct rte_mbuf *hold[TX_HOLD];
	unsigned held;
	uint64_t next_timer_ns;
};

struct dpdk_transport {
	struct transport base;
	struct stack_local local;
	char host[16];
	enum dpdk_idle idle;
	struct dpdk_send_side tx;
	struct dpdk_receive_side rx;
	struct dpdk_lcore *lcore;
	atomic_bool stop;
	atomic_int lcore_sleeping;   /* the lcore waits on lcore_event */
	int lcore_event;
	atomic_int receiver_waiting; /* the receive side waits on receive_event */
	int receive_event;
	bool own_thread;
	pthread_t thread;
	unsigned worker;
};

static const struct transport_ops dpdk_ops;

static struct dpdk_transport *dpdk_of(struct transport *t)
{
	return (struct dpdk_transport *)t;
}

static const struct dpdk_transport *dpdk_of_const(const struct transport *t)
{
	return (const struct dpdk_transport *)t;
}

/* Counters with two writers (lcore and send side) take a locked add; the rest are single-writer. */
static void count_shared(struct transport_core *core, enum transport_counter_index i, uint64_t n)
{
	atomic_fetch_add_explicit(&core->counters[i], n, memory_order_relaxed);
}

void dpdk_options_init(struct dpdk_options *options)
{
	memset(options, 0, sizeof *options);
	options->eal_args = "";
	options->idle = DPDK_IDLE_ADAPTIVE;
}

int dpdk_idle_parse(const char *text, enum dpdk_idle *idle)
{
	if (strcmp(text, "adaptive") == 0)
		*idle = DPDK_IDLE_ADAPTIVE;
	else if (strcmp(text, "poll") == 0)
		*idle = DPDK_IDLE_POLL;
	else
		return -EINVAL;
	return 0;
}

/* Splits args at blanks ('...' and "..." group); the strings live for the process (EAL may keep them). */
static int split_args(const char *args, char ***argv_out, int *argc_out)
{
	size_t n = strlen(args);
	char *copy = malloc(n + 1);
	char **argv = calloc(n / 2 + 3, sizeof *argv);
	if (!copy || !argv) {
		free(copy);
		free(argv);
		return -ENOMEM;
	}
	int argc = 0;
	argv[argc++] = "quorumd";
	char *out = copy;
	const char *p = args;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		if (!*p)
			break;
		argv[argc++] = out;
		char quote = 0;
		while (*p && (quote || (*p != ' ' && *p != '\t' && *p != '\n'))) {
			if (!quote && (*p == '\'' || *p == '"'))
				quote = *p;
			else if (quote && *p == quote)
				quote = 0;
			else
				*out++ = *p;
			p++;
		}
		*out++ = '\0';
	}
	argv[argc] = NULL;
	runtime.argv = argv;
	runtime.args = copy;
	*argv_out = argv;
	*argc_out = argc;
	return 0;
}

static bool has_arg(int argc, char **argv, const char *prefix)
{
	for (int i = 1; i < argc; i++)
		if (strncmp(argv[i], prefix, strlen(prefix)) == 0)
			return true;
	return false;
}

static long meminfo(const char *field)
{
	FILE *f = fopen("/proc/meminfo", "r");
	if (!f)
		return -1;
	char line[256];
	long value = -1;
	size_t n = strlen(field);
	while (fgets(line, sizeof line, f))
		if (strncmp(line, field, n) == 0 && line[n] == ':') {
			value = strtol(line + n + 1, NULL, 10);
			break;
		}
	fclose(f);
	return value;
}

static int eal_init(const char *args, char *err, size_t errlen)
{
	char **argv;
	int argc;
	if (split_args(args ? args : "", &argv, &argc) < 0)
		return transport_error(err, errlen, -ENOMEM, "dpdk: out of memory");
	if (!has_arg(argc, argv, "--no-huge") && meminfo("HugePages_Free") == 0)
		return transport_error(err, errlen, -ENOMEM,
			"dpdk: no hugepages (HugePages_Free is 0 in /proc/meminfo): add --no-huge -m 256 to "
			"--dpdk-args, or reserve some (echo 512 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)");
	/* EAL pins the calling thread to the main lcore; the node's other threads must not inherit that. */
	cpu_set_t saved;
	bool have_saved = pthread_getaffinity_np(pthread_self(), sizeof saved, &saved) == 0;
	int rv = rte_eal_init(argc, argv);
	int e = rte_errno;
	if (have_saved)
		(void)pthread_setaffinity_np(pthread_self(), sizeof saved, &saved);
	if (rv < 0) {
		const char *hint = "";
		if (e == EALREADY || e == EBUSY)
			hint = " (another DPDK process uses the same runtime directory: give each process "
			       "--file-prefix=NAME, or --no-shconf)";
		else if (e == EACCES)
			hint = " (run as root, or with the capabilities DPDK needs)";
		else if (e == ENOMEM)
			hint = " (not enough memory: with --no-huge, -m gives the megabytes)";
		return transport_error(err, errlen, -(e ? e : EINVAL),
			"dpdk: EAL init failed with --dpdk-args \"%s\": %s%s (EAL's own messages above say more)", args,
			rte_strerror(e), hint);
	}
	runtime.lcore_cpus = rte_lcore_cpuset(rte_get_main_lcore());
	runtime.worker = rte_get_next_lcore((unsigned)-1, 1, 0);
	return 0;
}

/* An af_packet port has no rx interrupt in DPDK, but its PACKET_MMAP sockets are readable while a frame
 * waits in their rx ring: an idle lcore can sleep in ppoll on them (and its eventfd) instead of waking up
 * every DPDK_IDLE_MAX_SLEEP_US to look. They are the process's only AF_PACKET sockets. */
static void find_packet_sockets(void)
{
	DIR *dir = opendir("/proc/self/fd");
	if (!dir)
		return;
	struct dirent *entry;
	while ((entry = readdir(dir)) && runtime.wake_fd_count < sizeof runtime.wake_fds / sizeof runtime.wake_fds[0]) {
		int fd = atoi(entry->d_name);
		if (entry->d_name[0] < '0' || entry->d_name[0] > '9' || fd == dirfd(dir))
			continue;
		int domain = 0;
		socklen_t length = sizeof domain;
		if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &length) == 0 && domain == AF_PACKET)
			runtime.wake_fds[runtime.wake_fd_count++] = fd;
	}
	closedir(dir);
}

static int port_init(unsigned wanted, char *err, size_t errlen)
{
	if (rte_eth_dev_count_avail() == 0)
		return transport_error(err, errlen, -ENODEV,
			"dpdk: no Ethernet port: EAL found none (give one in --dpdk-args: "
			"--vdev=net_af_packet0,iface=IFACE for a kernel interface, or -a PCI_ADDRESS for a NIC bound "
			"to vfio-pci)");
	uint16_t port = RTE_MAX_ETHPORTS, p;
	RTE_ETH_FOREACH_DEV(p) {
		if (port == RTE_MAX_ETHPORTS)
			port = p;
		if (p == wanted)
			port = p;
	}
	struct rte_eth_dev_info info;
	int rv = rte_eth_dev_info_get(port, &info);
	if (rv != 0)
		return transport_error(err, errlen, rv, "dpdk: port %u: device info: %s", port, rte_strerror(-rv));
	snprintf(runtime.driver, sizeof runtime.driver, "%s", info.driver_name ? info.driver_name : "?");
	struct rte_eth_conf conf;
	memset(&conf, 0, sizeof conf);
	runtime.tx_ip_checksum = (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) != 0;
	runtime.rx_ip_checksum = (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM) != 0;
	if (runtime.tx_ip_checksum)
		conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
	if (runtime.rx_ip_checksum)
		conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
	rv = rte_eth_dev_configure(port, 1, 1, &conf);
	if (rv != 0)
		return transport_error(err, errlen, rv, "dpdk: port %u (%s): configure: %s", port, runtime.driver,
			rte_strerror(-rv));
	uint16_t rx_descriptors = PORT_DESCRIPTORS, tx_descriptors = PORT_DESCRIPTORS;
	rv = rte_eth_dev_adjust_nb_rx_tx_desc(port, &rx_descriptors, &tx_descriptors);
	if (rv != 0)
		return transport_error(err, errlen, rv, "dpdk: port %u: descriptors: %s", port, rte_strerror(-rv));
	int socket = rte_eth_dev_socket_id(port);
	if (socket < 0)
		socket = (int)rte_socket_id();
	runtime.pool = rte_pktmbuf_pool_create("quorumd_mbufs", MBUFS, MBUF_CACHE, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
		socket);
	if (!runtime.pool)
		return transport_error(err, errlen, -ENOMEM,
			"dpdk: mbuf pool of %u buffers: %s (give EAL more memory: -m 256)", MBUFS, rte_strerror(rte_errno));
	struct rte_eth_rxconf rxconf = info.default_rxconf;
	rxconf.offloads = conf.rxmode.offloads;
	rv = rte_eth_rx_queue_setup(port, 0, rx_descriptors, (unsigned)socket, &rxconf, runtime.pool);
	if (rv != 0)
		return transport_error(err, errlen, rv, "dpdk: port %u: rx queue: %s", port, rte_strerror(-rv));
	struct rte_eth_txconf txconf = info.default_txconf;
	txconf.offloads = conf.txmode.offloads;
	rv = rte_eth_tx_queue_setup(port, 0, tx_descriptors, (unsigned)socket, &txconf);
	if (rv != 0)
		return transport_error(err, errlen, rv, "dpdk: port %u: tx queue: %s", port, rte_strerror(-rv));
	rv = rte_eth_dev_start(port);
	if (rv != 0)
		return transport_error(err, errlen, rv, "dpdk: port %u (%s): start: %s", port, runtime.driver,
			rte_strerror(-rv));
	rv = rte_eth_macaddr_get(port, &runtime.mac);
	if (rv != 0)
		return transport_error(err, errlen, rv, "dpdk: port %u: MAC address: %s", port, rte_strerror(-rv));
	if (rte_eth_dev_get_mtu(port, &runtime.mtu) != 0)
		runtime.mtu = 1500;
	runtime.rx_ring = rte_ring_create("quorumd_rx", RING_SIZE, socket, RING_F_SP_ENQ | RING_F_SC_DEQ);
	runtime.tx_ring = rte_ring_create("quorumd_tx", RING_SIZE, socket, RING_F_SP_ENQ | RING_F_SC_DEQ);
	if (!runtime.rx_ring || !runtime.tx_ring)
		return transport_error(err, errlen, -ENOMEM, "dpdk: rings: %s", rte_strerror(rte_errno));
	runtime.port = port;
	if (strstr(runtime.driver, "af_packet"))
		find_packet_sockets();
	return 0;
}

static int runtime_start(const struct dpdk_options *options, char *err, size_t errlen)
{
	if (runtime.ready)
		return 0;
	if (runtime.eal_tried)
		return transport_error(err, errlen, -EINVAL, "%s", runtime.error);
	runtime.eal_tried = true;
	int rv = eal_init(options->eal_args, runtime.error, sizeof runtime.error);
	if (rv == 0)
		rv = port_init(options->port, runtime.error, sizeof runtime.error);
	if (rv < 0)
		return transport_error(err, errlen, rv, "%s", runtime.error);
	runtime.ready = true;
	return 0;
}

/* ---- the lcore: packet I/O and the stack ---- */

static void wake(atomic_int *sleeping, int event)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(sleeping, memory_order_relaxed)) {
		uint64_t one = 1;
		ssize_t w = write(event, &one, sizeof one);
		(void)w;
	}
}

static void drain_event(int event)
{
	uint64_t value;
	ssize_t r = read(event, &value, sizeof value);
	(void)r;
}

static void hold(struct dpdk_transport *t, struct rte_mbuf *m)
{
	struct dpdk_lcore *s = t->lcore;
	if (s->held == TX_HOLD) {
		rte_pktmbuf_free(m);
		transport_core_count(t->base.core, TRANSPORT_COUNTER_drop_send_error, 1);
		return;
	}
	s->hold[s->held++] = m;
}

/* An IPv4/UDP packet from the tx ring (or a pending queue) gets its Ethernet header. */
static void hold_frame(struct dpdk_transport *t, struct rte_mbuf *m, const uint8_t mac[6])
{
	uint8_t *eth = (uint8_t *)rte_pktmbuf_prepend(m, STACK_ETH_HEADER);
	if (!eth) {
		rte_pktmbuf_free(m);
		transport_core_count(t->base.core, TRANSPORT_COUNTER_drop_send_error, 1);
		return;
	}
	stack_write_ethernet(eth, mac, t->local.mac, STACK_ETHERTYPE_IPV4);
	hold(t, m);
}

static void send_arp(struct dpdk_transport *t, bool reply, const uint8_t mac[6], uint32_t ip)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(runtime.pool);
	if (!m) {
		count_shared(t->base.core, TRANSPORT_COUNTER_drop_no_mbuf, 1);
		return;
	}
	uint8_t *p = (uint8_t *)rte_pktmbuf_append(m, STACK_MIN_FRAME);
	memset(p, 0, STACK_MIN_FRAME);
	stack_write_arp(p, reply, &t->local, mac, ip);
	hold(t, m);
}

static void push(struct dpdk_transport *t)
{
	struct dpdk_lcore *s = t->lcore;
	if (s->held == 0)
		return;
	uint16_t n = s->held > UINT16_MAX ? UINT16_MAX : (uint16_t)s->held;
	uint16_t sent = rte_eth_tx_burst(runtime.port, 0, s->hold, n);
	if (sent == 0)
		return;
	memmove(s->hold, s->hold + sent, (s->held - sent) * sizeof s->hold[0]);
	s->held -= sent;
}

static void learn(struct dpdk_transport *t, uint32_t ip, const uint8_t mac[6], uint64_t now_ns)
{
	void *released[BURST];
	unsigned n;
	do {
		n = stack_neighbour_learn(&t->lcore->neighbours, ip, mac, now_ns, released, BURST);
		for (unsigned i = 0; i < n; i++)
			hold_frame(t, released[i], mac);
	} while (n == BURST);
}

static unsigned lcore_receive(struct dpdk_transport *t)
{
	struct transport_core *core = t->base.core;
	struct rte_mbuf *packets[BURST], *frames[BURST];
	uint16_t n = rte_eth_rx_burst(runtime.port, 0, packets, BURST);
	if (n == 0)
		return 0;
	unsigned frame_count = 0;
	uint64_t now_ns = 0;
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = packets[i];
		if (m->nb_segs != 1) { /* never with 2 KiB buffers and a 1500-byte MTU */
			rte_pktmbuf_free(m);
			continue;
		}
		uint8_t *data = rte_pktmbuf_mtod(m, uint8_t *);
		bool checked = (m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_GOOD;
		struct stack_packet p;
		stack_classify(data, m->data_len, &t->local, checked, &p);
		switch (p.kind) {
		case STACK_FRAME:
			rte_pktmbuf_adj(m, (uint16_t)p.payload_offset);
			rte_pktmbuf_trim(m, (uint16_t)(m->data_len - p.payload_length));
			frames[frame_count++] = m;
			break;
		case STACK_ARP_REQUEST:
			if (!now_ns)
				now_ns = transport_monotonic_ns(NULL);
			learn(t, p.sender_ip, p.sender_mac, now_ns);
			/* The request's mbuf becomes the reply. */
			rte_pktmbuf_reset(m);
			data = (uint8_t *)rte_pktmbuf_append(m, STACK_MIN_FRAME);
			memset(data, 0, STACK_MIN_FRAME);
			stack_write_arp(data, true, &t->local, p.sender_mac, p.sender_ip);
			hold(t, m);
			break;
		case STACK_ARP_REPLY:
			if (!now_ns)
				now_ns = transport_monotonic_ns(NULL);
			learn(t, p.sender_ip, p.sender_mac, now_ns);
			rte_pktmbuf_free(m);
			break;
		case STACK_ICMP_ECHO: {
			size_t length = stack_icmp_echo_reply(data, &p, &t->local);
			if (length < m->data_len)
				rte_pktmbuf_trim(m, (uint16_t)(m->data_len - length));
			m->ol_flags = 0;
			hold(t, m);
			break;
		}
		default:
			rte_pktmbuf_free(m);
			break;
		}
	}
	if (frame_count) {
		unsigned queued = rte_ring_enqueue_burst(runtime.rx_ring, (void **)frames, frame_count, NULL);
		for (unsigned i = queued; i < frame_count; i++)
			rte_pktmbuf_free(frames[i]);
		if (queued < frame_count)
			count_shared(core, TRANSPORT_COUNTER_drop_ring_full, frame_count - queued);
		if (queued)
			wake(&t->receiver_waiting, t->receive_event);
	}
	return n;
}

static unsigned lcore_transmit(struct dpdk_transport *t)
{
	struct dpdk_lcore *s = t->lcore;
	struct transport_core *core = t->base.core;
	push(t);
	if (s->held + BURST > TX_HOLD)
		return 1; /* the port is busy: leave the ring alone for now */
	struct rte_mbuf *out[BURST];
	unsigned n = rte_ring_dequeue_burst(runtime.tx_ring, (void **)out, BURST, NULL);
	if (n == 0)
		return s->held ? 1 : 0;
	uint64_t now_ns = transport_monotonic_ns(NULL);
	uint64_t bytes = 0;
	for (unsigned i = 0; i < n; i++) {
		struct rte_mbuf *m = out[i];
		bytes += m->pkt_len - STACK_IPV4_HEADER - STACK_UDP_HEADER;
		uint32_t ip = stack_ipv4_destination(rte_pktmbuf_mtod(m, const uint8_t *));
		uint8_t mac[6];
		bool ask;
		switch (stack_neighbour_output(&s->neighbours, ip, m, now_ns, mac, &ask)) {
		case STACK_ROUTE_SEND:
			hold_frame(t, m, mac);
			break;
		case STACK_ROUTE_SEND_ASK:
			hold_frame(t, m, mac);
			send_arp(t, false, NULL, ip);
			break;
		case STACK_ROUTE_QUEUED:
			if (ask)
				send_arp(t, false, NULL, ip);
			break;
		case STACK_ROUTE_DROP:
			rte_pktmbuf_free(m);
			transport_core_count(core, TRANSPORT_COUNTER_drop_no_neighbour, 1);
			break;
		}
	}
	transport_core_count(core, TRANSPORT_COUNTER_packets_out, n);
	transport_core_count(core, TRANSPORT_COUNTER_bytes_out, bytes);
	push(t);
	return n;
}

static void lcore_timers(struct dpdk_transport *t, uint64_t now_ns)
{
	uint32_t ask[16];
	unsigned ask_count;
	void *dropped[64];
	unsigned n;
	do {
		n = stack_neighbours_tick(&t->lcore->neighbours, now_ns, ask, 16, &ask_count, dropped, 64);
		for (unsigned i = 0; i < n; i++)
			rte_pktmbuf_free(dropped[i]);
		transport_core_count(t->base.core, TRANSPORT_COUNTER_drop_no_neighbour, n);
		for (unsigned i = 0; i < ask_count; i++)
			send_arp(t, false, NULL, ask[i]);
	} while (n == 64);
}

/* Sleeps until a send wakes us (eventfd), a frame arrives (af_packet sockets, when known; then up to the
 * next timer tick), or microseconds pass. */
static void lcore_sleep(struct dpdk_transport *t, unsigned microseconds, uint64_t timer_in_ns)
{
	atomic_store_explicit(&t->lcore_sleeping, 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	if (rte_ring_count(runtime.tx_ring) == 0 && !atomic_load_explicit(&t->stop, memory_order_relaxed)) {
		struct pollfd p[1 + sizeof runtime.wake_fds / sizeof runtime.wake_fds[0]];
		p[0] = (struct pollfd){.fd = t->lcore_event, .events = POLLIN};
		for (unsigned i = 0; i < runtime.wake_fd_count; i++)
			p[1 + i] = (struct pollfd){.fd = runtime.wake_fds[i], .events = POLLIN};
		uint64_t ns = runtime.wake_fd_count ? timer_in_ns : (uint64_t)microseconds * 1000u;
		struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u)};
		if (ppoll(p, 1 + runtime.wake_fd_count, &ts, NULL) > 0 && (p[0].revents & POLLIN))
			drain_event(t->lcore_event);
	}
	atomic_store_explicit(&t->lcore_sleeping, 0, memory_order_relaxed);
}

static int lcore_main(void *arg)
{
	struct dpdk_transport *t = arg;
	struct dpdk_lcore *s = t->lcore;
	uint64_t hz = rte_get_tsc_hz();
	uint64_t spin_cycles = hz / 1000000u * DPDK_IDLE_SPIN_US;
	uint64_t timer_cycles = hz / (1000000000u / TIMER_NS);
	uint64_t last_work = rte_get_tsc_cycles(), next_timer = 0;
	unsigned sleep_us = 1;
	while (!atomic_load_explicit(&t->stop, memory_order_relaxed)) {
		unsigned work = lcore_receive(t);
		work += lcore_transmit(t);
		uint64_t now = rte_get_tsc_cycles();
		if (now >= next_timer) {
			lcore_timers(t, transport_monotonic_ns(NULL));
			next_timer = now + timer_cycles;
		}
		if (work || s->held) {
			last_work = now;
			sleep_us = 1;
			continue;
		}
		if (t->idle == DPDK_IDLE_POLL) {
			rte_pause();
			continue;
		}
		if (now - last_work < spin_cycles) {
			sched_yield();
			continue;
		}
		uint64_t timer_in = next_timer > now ? (next_timer - now) * 1000u / (hz / 1000000u) : 0;
		lcore_sleep(t, sleep_us, timer_in + 1000u);
		sleep_us = sleep_us * 2 > DPDK_IDLE_MAX_SLEEP_US ? DPDK_IDLE_MAX_SLEEP_US : sleep_us * 2;
	}
	return 0;
}

static void *lcore_thread(void *arg)
{
	struct dpdk_transport *t = arg;
	/* A registered non-EAL thread gets an lcore id, so the mempool gives it a cache. */
	(void)rte_thread_register();
	(void)pthread_setaffinity_np(pthread_self(), sizeof runtime.lcore_cpus, &runtime.lcore_cpus);
	lcore_main(t);
	rte_thread_unregister();
	return NULL;
}

/* ---- open and close ---- */

static void free_ring(struct rte_ring *ring)
{
	void *m;
	while (rte_ring_dequeue(ring, &m) == 0)
		rte_pktmbuf_free(m);
}

static void release(struct dpdk_transport *t)
{
	if (t->lcore) {
		for (unsigned i = 0; i < t->lcore->held; i++)
			rte_pktmbuf_free(t->lcore->hold[i]);
		for (unsigned i = 0; i < STACK_NEIGHBOURS; i++) {
			struct stack_neighbour *e = &t->lcore->neighbours.entries[i];
			for (unsigned k = 0; k < e->pending_count; k++)
				rte_pktmbuf_free(e->pending[k]);
		}
	}
	for (size_t i = 0; i < t->tx.queued; i++)
		rte_pktmbuf_free(t->tx.queue[i]);
	if (runtime.ready) {
		free_ring(runtime.rx_ring);
		free_ring(runtime.tx_ring);
	}
	if (t->lcore_event >= 0)
		close(t->lcore_event);
	if (t->receive_event >= 0)
		close(t->receive_event);
	transport_core_destroy(t->base.core);
	free(t->lcore);
	free(t->tx.queue);
	free(t->tx.peers);
	free(t);
}

static int load_neighbours(struct dpdk_transport *t, const char *list, char *err, size_t errlen)
{
	if (!list || !*list)
		return 0;
	char *copy = strdup(list);
	if (!copy)
		return transport_error(err, errlen, -ENOMEM, "dpdk: out of memory");
	int rv = 0;
	char *save = NULL;
	for (char *item = strtok_r(copy, ",", &save); item && rv == 0; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		uint32_t ip;
		uint8_t mac[6];
		if (eq)
			*eq = '\0';
		if (!eq || !stack_parse_ipv4(item, &ip) || !stack_parse_mac(eq + 1, mac))
			rv = transport_error(err, errlen, -EINVAL,
				"dpdk: static neighbour \"%s%s%s\": expected IPV4=MAC (10.0.0.2=02:00:00:00:00:02)", item,
				eq ? "=" : "", eq ? eq + 1 : "");
		else if (!stack_neighbour_static(&t->lcore->neighbours, ip, mac))
			rv = transport_error(err, errlen, -ENOSPC, "dpdk: more than %u static neighbours", STACK_NEIGHBOURS);
	}
	free(copy);
	return rv;
}

int dpdk_transport_open(const struct transport_config *config, const struct dpdk_options *options, const char *host,
	uint16_t port, struct transport **out, char *err, size_t errlen)
{
	uint32_t ip;
	if (!stack_parse_ipv4(host, &ip))
		return transport_error(err, errlen, -EINVAL,
			"dpdk: listen address \"%s\" is not an IPv4 address: the dpdk transport answers ARP for this "
			"member's own IPv4 address, so --listen-peer-urls must name it (no IPv6, no host names)", host);
	if (ip == 0 || (ip >> 24) == 127 || (ip >> 28) >= 14)
		return transport_error(err, errlen, -EINVAL,
			"dpdk: listen address %s is not usable: the port needs this member's own unicast IPv4 address "
			"on its L2 segment in --listen-peer-urls (not a wildcard, loopback, multicast or broadcast)", host);
	if (port == 0)
		return transport_error(err, errlen, -EINVAL, "dpdk: listen port 0: give the peer port in --listen-peer-urls");
	pthread_mutex_lock(&runtime.lock);
	int rv = runtime_start(options, err, errlen);
	if (rv == 0 && runtime.busy)
		rv = transport_error(err, errlen, -EBUSY, "dpdk: a dpdk transport is already open in this process");
	if (rv == 0 && config->max_datagram + STACK_IPV4_HEADER + STACK_UDP_HEADER > runtime.mtu)
		rv = transport_error(err, errlen, -EMSGSIZE,
			"dpdk: frames of %zu bytes do not fit the port's MTU of %u", config->max_datagram, runtime.mtu);
	if (rv < 0) {
		pthread_mutex_unlock(&runtime.lock);
		return rv;
	}
	struct dpdk_transport *t = calloc(1, sizeof *t);
	if (!t) {
		pthread_mutex_unlock(&runtime.lock);
		return transport_error(err, errlen, -ENOMEM, "dpdk: out of memory");
	}
	t->base.ops = &dpdk_ops;
	t->lcore_event = t->receive_event = -1;
	t->idle = options->idle;
	memcpy(t->local.mac, runtime.mac.addr_bytes, 6);
	t->local.ip = ip;
	t->local.port = port;
	stack_format_ipv4(ip, t->host, sizeof t->host);
	rv = transport_core_create(config, NULL, NULL, &t->base.core, err, errlen);
	if (rv == 0) {
		t->tx.queue = calloc(config->send_queue, sizeof *t->tx.queue);
		t->lcore = calloc(1, sizeof *t->lcore);
		t->lcore_event = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		t->receive_event = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (!t->tx.queue || !t->lcore || t->lcore_event < 0 || t->receive_event < 0)
			rv = transport_error(err, errlen, -ENOMEM, "dpdk: out of memory or file descriptors");
	}
	if (rv == 0) {
		stack_neighbours_init(&t->lcore->neighbours);
		rv = load_neighbours(t, options->neighbours, err, errlen);
	}
	/* Peer TLS handshakes go over the kernel's TCP on the same address and port number (peer_tls.h):
	 * the address must be reachable through the kernel too. */
	if (rv == 0)
		rv = transport_core_start_peer_tls(t->base.core, &t->base, t->host, port, err, errlen);
	if (rv == 0) {
		/* Earlier opens may have left frames behind. */
		free_ring(runtime.rx_ring);
		free_ring(runtime.tx_ring);
		if (runtime.worker < RTE_MAX_LCORE) {
			t->worker = runtime.worker;
			rv = rte_eal_remote_launch(lcore_main, t, t->worker);
			if (rv != 0)
				rv = transport_error(err, errlen, rv, "dpdk: launch on lcore %u: %s", t->worker,
					rte_strerror(-rv));
		} else {
			int e = pthread_create(&t->thread, NULL, lcore_thread, t);
			if (e != 0)
				rv = transport_error(err, errlen, -e, "dpdk: poll thread: %s", strerror(e));
			else
				t->own_thread = true;
		}
	}
	if (rv < 0) {
		release(t);
		pthread_mutex_unlock(&runtime.lock);
		return rv;
	}
	runtime.busy = true;
	pthread_mutex_unlock(&runtime.lock);
	*out = &t->base;
	return 0;
}

static void dpdk_close(struct transport *base)
{
	struct dpdk_transport *t = dpdk_of(base);
	atomic_store(&t->stop, true);
	uint64_t one = 1;
	ssize_t w = write(t->lcore_event, &one, sizeof one);
	(void)w;
	if (t->own_thread)
		pthread_join(t->thread, NULL);
	else
		rte_eal_wait_lcore(t->worker);
	pthread_mutex_lock(&runtime.lock);
	release(t);
	runtime.busy = false;
	pthread_mutex_unlock(&runtime.lock);
}

int dpdk_transport_port_info(const struct transport *t, char *mac, size_t maclen, char *driver, size_t driverlen)
{
	if (t->ops != &dpdk_ops)
		return -EINVAL;
	const uint8_t *a = runtime.mac.addr_bytes;
	if (mac && maclen)
		snprintf(mac, maclen, "%02x:%02x:%02x:%02x:%02x:%02x", a[0], a[1], a[2], a[3], a[4], a[5]);
	if (driver && driverlen)
		snprintf(driver, driverlen, "%s", runtime.driver);
	return 0;
}

/* Rung by the lcore only while the receiver sleeps (dpdk_sleep_begin .. dpdk_sleep_end). */
static int dpdk_fd(const struct transport *base)
{
	return dpdk_of_const(base)->receive_event;
}

static int dpdk_local_address(const struct transport *base, char *host, size_t hostlen, uint16_t *port)
{
	const struct dpdk_transport *t = dpdk_of_const(base);
	if (host && hostlen)
		snprintf(host, hostlen, "%s", t->host);
	if (port)
		*port = t->local.port;
	return 0;
}

/* ---- send side ---- */

static struct dpdk_peer *find_peer(struct dpdk_transport *t, uint64_t id)
{
	for (size_t i = 0; i < t->tx.peer_count; i++)
		if (t->tx.peers[i].id == id)
			return &t->tx.peers[i];
	return NULL;
}

static int dpdk_add_peer(struct transport *base, uint64_t id, const char *host, uint16_t port, char *err,
	size_t errlen)
{
	struct dpdk_transport *t = dpdk_of(base);
	uint32_t ip;
	if (!stack_parse_ipv4(host, &ip)) {
		struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_DGRAM}, *list = NULL;
		int rv = getaddrinfo(host, NULL, &hints, &list);
		if (rv != 0 || !list)
			return transport_error(err, errlen, -EADDRNOTAVAIL,
				"peer %llx %s:%u: no IPv4 address (the dpdk transport speaks IPv4 only): %s",
				(unsigned long long)id, host, port, rv ? gai_strerror(rv) : "no answer");
		const uint8_t *a = (const uint8_t *)&((const struct sockaddr_in *)list->ai_addr)->sin_addr;
		ip = ((uint32_t)a[0] << 24) | ((uint32_t)a[1] << 16) | ((uint32_t)a[2] << 8) | a[3];
		freeaddrinfo(list);
	}
	struct dpdk_peer *peer = find_peer(t, id);
	if (!peer) {
		if (t->tx.peer_count == t->tx.peer_capacity) {
			size_t capacity = t->tx.peer_capacity ? t->tx.peer_capacity * 2 : 8;
			struct dpdk_peer *grown = realloc(t->tx.peers, capacity * sizeof *grown);
			if (!grown)
				return transport_error(err, errlen, -ENOMEM, "peer %llx: out of memory", (unsigned long long)id);
			t->tx.peers = grown;
			t->tx.peer_capacity = capacity;
		}
		peer = &t->tx.peers[t->tx.peer_count++];
	}
	peer->id = id;
	peer->ip = ip;
	peer->port = port;
	transport_core_peer_address(t->base.core, id, host, port);
	return 0;
}

static int dpdk_remove_peer(struct transport *base, uint64_t id)
{
	struct dpdk_transport *t = dpdk_of(base);
	struct dpdk_peer *peer = find_peer(t, id);
	if (!peer)
		return -ENOENT;
	*peer = t->tx.peers[--t->tx.peer_count];
	transport_core_peer_removed(t->base.core, id);
	return 0;
}

static int dpdk_flush(struct transport *base, char *err, size_t errlen)
{
	struct dpdk_transport *t = dpdk_of(base);
	struct transport_core *core = t->base.core;
	size_t n = t->tx.queued, sent = 0;
	uint64_t deadline = 0;
	while (sent < n) {
		unsigned k = rte_ring_enqueue_burst(runtime.tx_ring, (void **)(t->tx.queue + sent),
			(unsigned)(n - sent), NULL);
		sent += k;
		if (k)
			wake(&t->lcore_sleeping, t->lcore_event);
		if (sent == n)
			break;
		/* Ring full: the lcore is behind; give it a short while, as the udp transport gives a full socket
		 * buffer one wait. */
		uint64_t now = transport_monotonic_ns(NULL);
		if (!deadline)
			deadline = now + FLUSH_WAIT_NS;
		if (now >= deadline)
			break;
		sched_yield();
	}
	t->tx.queued = 0;
	if (sent < n) {
		for (size_t i = sent; i < n; i++)
			rte_pktmbuf_free(t->tx.queue[i]);
		count_shared(core, TRANSPORT_COUNTER_drop_ring_full, n - sent);
		return transport_error(err, errlen, -ENOBUFS, "dpdk: tx ring full: %zu frames dropped", n - sent);
	}
	return 0;
}

static int dpdk_send(struct transport *base, uint64_t to, const uint8_t *data, size_t length, char *err,
	size_t errlen)
{
	struct dpdk_transport *t = dpdk_of(base);
	struct transport_core *core = t->base.core;
	const struct dpdk_peer *peer = find_peer(t, to);
	struct frame_address address;
	uint16_t count;
	int rv = transport_core_prepare(core, to, peer != NULL, length, &address, &count, err, errlen);
	if (rv < 0)
		return rv;
	int first_error = 0;
	for (uint16_t i = 0; i < count; i++) {
		if (t->tx.queued == core->config.send_queue) {
			rv = dpdk_flush(base, err, errlen);
			if (rv < 0 && !first_error)
				first_error = rv;
		}
		size_t offset, fragment;
		if (frame_fragment_span((uint32_t)length, count, i, &offset, &fragment) != FRAME_OK)
			return transport_error(err, errlen, -EINVAL, "dpdk: fragment %u of %u", i, count);
		size_t frame_size = FRAME_HEADER_SIZE + fragment;
		struct rte_mbuf *m = rte_pktmbuf_alloc(runtime.pool);
		if (!m) {
			count_shared(core, TRANSPORT_COUNTER_drop_no_mbuf, (uint64_t)(count - i));
			return transport_error(err, errlen, -ENOBUFS,
				"send to member %llx: the dpdk mbuf pool is empty (%u frames dropped)",
				(unsigned long long)to, count - i);
		}
		uint8_t *p = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)(STACK_IPV4_HEADER + STACK_UDP_HEADER + frame_size));
		if (!p) {
			rte_pktmbuf_free(m);
			return transport_error(err, errlen, -EMSGSIZE, "dpdk: frame of %zu bytes does not fit an mbuf",
				frame_size);
		}
		if (transport_core_encode(core, to, &address, data, length, count, i, p + STACK_IPV4_HEADER + STACK_UDP_HEADER,
			frame_size) != frame_size) {
			/* The span was checked above: only the MAC (libcrypto) can fail here. */
			rte_pktmbuf_free(m);
			transport_core_count(core, TRANSPORT_COUNTER_drop_send_error, (uint64_t)(count - i));
			return transport_error(err, errlen, -EIO, "send to member %llx: the frame's MAC could not be "
				"computed", (unsigned long long)to);
		}
		stack_write_ipv4_udp(p, t->local.ip, t->local.port, peer->ip, peer->port, frame_size, t->tx.ip_id++,
			runtime.tx_ip_checksum);
		m->l2_len = STACK_ETH_HEADER;
		m->l3_len = STACK_IPV4_HEADER;
		if (runtime.tx_ip_checksum)
			m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM;
		t->tx.queue[t->tx.queued++] = m;
	}
	return first_error;
}

/* ---- receive side ---- */

/* Waits until the rx ring has something or timeout_ms passes (-1: no limit). */
static void receive_wait(struct dpdk_transport *t, int timeout_ms)
{
	uint64_t start = transport_monotonic_ns(NULL);
	uint64_t limit = timeout_ms < 0 ? UINT64_MAX : (uint64_t)timeout_ms * 1000000u;
	uint64_t spin = t->idle == DPDK_IDLE_POLL ? limit : RECEIVE_SPIN_NS;
	for (;;) {
		if (rte_ring_count(runtime.rx_ring) > 0)
			return;
		uint64_t elapsed = transport_monotonic_ns(NULL) - start;
		if (elapsed >= limit)
			return;
		if (elapsed < spin) {
			if (t->idle == DPDK_IDLE_POLL)
				rte_pause();
			else
				sched_yield();
			continue;
		}
		break;
	}
	atomic_store_explicit(&t->receiver_waiting, 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	if (rte_ring_count(runtime.rx_ring) == 0) {
		struct pollfd p = {.fd = t->receive_event, .events = POLLIN};
		(void)poll(&p, 1, timeout_ms);
	}
	atomic_store_explicit(&t->receiver_waiting, 0, memory_order_relaxed);
	drain_event(t->receive_event);
}

/* The receiver (an epoll loop) is about to sleep on receive_event: the lcore rings it from now on. With
 * --dataplane-idle=poll it never sleeps (the receiving thread polls as the lcore does); adaptive, it first
 * yields for RECEIVE_SPIN_NS, as the reply to a frame just sent usually comes within that. */
static bool dpdk_sleep_begin(struct transport *base)
{
	struct dpdk_transport *t = dpdk_of(base);
	if (t->idle == DPDK_IDLE_POLL)
		return false;
	uint64_t start = transport_monotonic_ns(NULL);
	while (rte_ring_count(runtime.rx_ring) == 0 && transport_monotonic_ns(NULL) - start < RECEIVE_SPIN_NS)
		sched_yield();
	atomic_store_explicit(&t->receiver_waiting, 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	if (rte_ring_count(runtime.rx_ring) == 0)
		return true;
	atomic_store_explicit(&t->receiver_waiting, 0, memory_order_relaxed);
	return false;
}

static void dpdk_sleep_end(struct transport *base)
{
	struct dpdk_transport *t = dpdk_of(base);
	atomic_store_explicit(&t->receiver_waiting, 0, memory_order_relaxed);
	drain_event(t->receive_event);
}

static int dpdk_poll(struct transport *base, int timeout_ms, transport_deliver_fn deliver, void *arg, char *err,
	size_t errlen)
{
	(void)err;
	(void)errlen;
	struct dpdk_transport *t = dpdk_of(base);
	struct transport_core *core = t->base.core;
	transport_core_begin(core, deliver, arg);
	uint64_t now = transport_core_now(core);
	transport_core_tick(core, now);
	bool waited = false;
	for (int round = 0; round < RECEIVE_ROUNDS; round++) {
		unsigned n = rte_ring_dequeue_burst(runtime.rx_ring, (void **)t->rx.burst, BURST * 2, NULL);
		if (n == 0) {
			if (waited || round > 0 || timeout_ms == 0 || core->delivered > 0)
				break;
			int wait = timeout_ms;
			uint64_t deadline = transport_core_deadline(core);
			if (deadline != UINT64_MAX) {
				uint64_t ms = deadline > now ? (deadline - now + 999999) / 1000000 : 0;
				if (wait < 0 || ms < (uint64_t)wait)
					wait = (int)ms;
			}
			receive_wait(t, wait);
			waited = true;
			now = transport_core_now(core);
			round--;
			continue;
		}
		now = transport_core_now(core);
		for (unsigned i = 0; i < n; i++) {
			struct rte_mbuf *m = t->rx.burst[i];
			transport_core_receive(core, rte_pktmbuf_mtod(m, const uint8_t *), m->data_len, now);
			rte_pktmbuf_free(m);
		}
		transport_core_tick(core, now);
		if (n < BURST * 2)
			break;
	}
	transport_core_tick(core, now);
	return transport_core_end(core);
}

static const struct transport_ops dpdk_ops = {
	.name = "dpdk",
	.add_peer = dpdk_add_peer,
	.remove_peer = dpdk_remove_peer,
	.send = dpdk_send,
	.flush = dpdk_flush,
	.poll = dpdk_poll,
	.sleep_begin = dpdk_sleep_begin,
	.sleep_end = dpdk_sleep_end,
	.fd = dpdk_fd,
	.local_address = dpdk_local_address,
	.close = dpdk_close,
};

/*
 * DPDK's rte_mempool measured like apps/mempool-perf measures pmd-mempool (and like DPDK's
 * mempool_perf_autotest): each lcore loops for the test time taking n_keep objects in bulks of
 * n_get_bulk and putting them back in bulks of n_put_bulk, through its default per-lcore cache;
 * rate_persec = objects cycled per second, summed over the lcores. Pool of 2048-byte objects,
 * sized lcores * (max(n_keep, 128) + 512) - 1 as in DPDK 22.11's test.
 *
 * Written for this project; it calls DPDK's public API only. dpdk-test's own
 * mempool_perf_autotest runs its whole matrix at 5 s a point (about an hour in 22.11); this
 * program measures only the points asked for.
 *
 * Usage: mempool_bench <EAL args> -- CACHE CORES GET PUT KEEP SECONDS
 * Build: cc -O3 mempool_bench.c $(pkg-config --cflags --libs libdpdk) -o mempool_bench
 */
#include <stdio.h>
#include <stdlib.h>

#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mempool.h>

#define ELT_SIZE 2048
#define N 65536
#define MAX_KEEP 8192

static struct rte_mempool *mp;
static unsigned int n_get, n_put, n_keep;
static double seconds;
static volatile int go;
static double rate[RTE_MAX_LCORE];

static int per_lcore(void *arg)
{
	void *objs[MAX_KEEP];
	unsigned int lcore = rte_lcore_id();
	struct rte_mempool_cache *cache = rte_mempool_default_cache(mp, lcore);
	const uint64_t hz = rte_get_timer_hz();
	uint64_t count = 0, start, now;

	(void)arg;
	while (!go)
		rte_pause();
	start = rte_get_timer_cycles();
	do {
		for (unsigned int i = 0; i < N / n_keep; i++) {
			for (unsigned int idx = 0; idx < n_keep; idx += n_get)
				if (rte_mempool_generic_get(mp, &objs[idx], n_get, cache) < 0) {
					fprintf(stderr, "mempool_bench: pool exhausted\n");
					exit(1);
				}
			for (unsigned int idx = 0; idx < n_keep; idx += n_put)
				rte_mempool_generic_put(mp, &objs[idx], n_put, cache);
		}
		count += (N / n_keep) * n_keep;
		now = rte_get_timer_cycles();
	} while ((double)(now - start) / (double)hz < seconds);
	rate[lcore] = (double)count * (double)hz / (double)(now - start);
	return 0;
}

int main(int argc, char **argv)
{
	int used = rte_eal_init(argc, argv);
	unsigned int cache_size, cores, lcore, started = 0;
	double total = 0;

	if (used < 0)
		rte_exit(EXIT_FAILURE, "EAL init failed\n");
	argc -= used;
	argv += used;
	if (argc != 7)
		rte_exit(EXIT_FAILURE, "usage: mempool_bench <EAL args> -- CACHE CORES GET PUT KEEP SECONDS\n");
	cache_size = atoi(argv[1]);
	cores = atoi(argv[2]);
	n_get = atoi(argv[3]);
	n_put = atoi(argv[4]);
	n_keep = atoi(argv[5]);
	seconds = atof(argv[6]);
	if (cores < 1 || cores > rte_lcore_count() || n_keep > MAX_KEEP || n_keep % n_get || n_keep % n_put)
		rte_exit(EXIT_FAILURE, "bad arguments\n");

	unsigned int n = rte_lcore_count() * (RTE_MAX(n_keep, 128u) + 512) - 1;
	mp = rte_mempool_create("bench", n, ELT_SIZE, cache_size, 0, NULL, NULL, NULL, NULL,
				SOCKET_ID_ANY, 0);
	if (mp == NULL)
		rte_exit(EXIT_FAILURE, "cannot create the mempool\n");

	RTE_LCORE_FOREACH_WORKER(lcore) {
		if (started + 1 >= cores)
			break;
		rte_eal_remote_launch(per_lcore, NULL, lcore);
		started++;
	}
	go = 1;
	per_lcore(NULL);
	rte_eal_mp_wait_lcore();
	for (unsigned int i = 0; i < RTE_MAX_LCORE; i++)
		total += rate[i];
	printf("mempool_autotest cache=%u cores=%u n_get_bulk=%u n_put_bulk=%u n_keep=%u "
	       "constant_n=0 rate_persec=%.0f\n",
	       cache_size, cores, n_get, n_put, n_keep, total);
	rte_mempool_free(mp);
	rte_eal_cleanup();
	return 0;
}

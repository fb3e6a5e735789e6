/*
 * Per-element cycle counts of DPDK's rte_ring, measured the same way apps/ring-perf measures
 * pmd-ring: one core, enqueue then dequeue a bulk of N pointers, TSC cycles divided by the number
 * of elements. DPDK 22.11's own ring_perf_autotest divides its single-core burst/bulk figures by
 * the number of iterations, not elements, so its lines are per bulk; this program gives the
 * per-element figures directly. Written for this project; it calls DPDK's public API only.
 *
 * Build: cc -O3 -march=native ring_bench.c $(pkg-config --cflags --libs libdpdk) -o ring_bench
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_ring.h>

#define RING_SIZE 4096
#define SHIFT 26

static struct rte_ring *make(unsigned int flags)
{
	ssize_t size = rte_ring_get_memsize(RING_SIZE);
	struct rte_ring *r;

	if (size < 0 || posix_memalign((void **)&r, 128, (size_t)size) != 0)
		exit(1);
	memset(r, 0, (size_t)size);
	if (rte_ring_init(r, "bench", RING_SIZE, flags) != 0)
		exit(1);
	return r;
}

static void run(const char *label, unsigned int flags, int single)
{
	static void *burst[32];
	static const volatile unsigned int sizes[] = { 8, 32 };
	struct rte_ring *r = make(flags);

	for (unsigned int s = 0; s < 2; s++) {
		const unsigned int n = sizes[s];
		const uint64_t iters = (1ULL << SHIFT) / n;
		uint64_t start = rte_rdtsc();

		for (uint64_t i = 0; i < iters; i++) {
			if (single) {
				rte_ring_sp_enqueue_bulk(r, burst, n, NULL);
				rte_ring_sc_dequeue_bulk(r, burst, n, NULL);
			} else {
				rte_ring_mp_enqueue_bulk(r, burst, n, NULL);
				rte_ring_mc_dequeue_bulk(r, burst, n, NULL);
			}
		}
		uint64_t cycles = rte_rdtsc() - start;
		printf("%s: bulk (size: %u): %.2f\n", label, n, (double)cycles / (double)(iters * n));
	}
	free(r);
}

int main(void)
{
	printf("### Testing bulk enq/deq (cycles per element) ###\n");
	run("SP/SC", RING_F_SP_ENQ | RING_F_SC_DEQ, 1);
	run("MP/MC", 0, 0);
	return 0;
}

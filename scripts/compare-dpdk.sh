#!/usr/bin/env bash
# Our ring and mempool figures next to DPDK's, measured in one run on this machine.
#
#   scripts/compare-dpdk.sh [--rounds N] [--skip-mempool] [--mempool-time SECONDS]
#
# Needs Debian's DPDK (apt-get install dpdk dpdk-dev: dpdk-test and libdpdk's headers); exits with
# a message when it is missing. Reserves 256 hugepages if run as root and none are reserved.
#
# Ring: apps/ring-perf, DPDK's own ring_perf_autotest (dpdk-test), and scripts/dpdk/ring_bench.c,
# a small program that times DPDK's rte_ring API exactly as ring-perf times pmd-ring. The runs are
# interleaved and each figure is the median over the rounds, so a noisy neighbour on the VM hits
# both sides alike. DPDK 22.11's ring_perf_autotest prints its single-core burst/bulk figures per
# bulk operation (cycles of one enqueue plus one dequeue of the whole bulk, divided by the number
# of iterations, not of elements); the table divides them by the bulk size, and the C program
# cross-checks that reading.
#
# Mempool: apps/mempool-perf and scripts/dpdk/mempool_bench.c (DPDK's mempool_perf_autotest loop
# over rte_mempool, for the chosen points only: dpdk-test's own run covers 576 points at 5 s each,
# about an hour), interleaved, median over the rounds.
set -euo pipefail

ROUNDS=3
SKIP_MEMPOOL=0
MP_TIME=2
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS="$2"; shift 2 ;;
        --skip-mempool) SKIP_MEMPOOL=1; shift ;;
        --mempool-time) MP_TIME="$2"; shift 2 ;;
        *) echo "usage: $0 [--rounds N] [--skip-mempool] [--mempool-time SECONDS]" >&2; exit 2 ;;
    esac
done

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
if ! command -v dpdk-test > /dev/null || ! pkg-config --exists libdpdk 2> /dev/null; then
    echo "compare-dpdk.sh: DPDK is not installed (apt-get install dpdk dpdk-dev); nothing to compare"
    exit 0
fi
if [ "$(id -u)" = 0 ] && [ "$(cat /proc/sys/vm/nr_hugepages)" -lt 256 ]; then
    scripts/hugepages.sh reserve 256 > /dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== building (release) =="
cargo build --release -q -p ring-perf -p mempool-perf
cc -O3 scripts/dpdk/ring_bench.c $(pkg-config --cflags --libs libdpdk) -o "$work/ring_bench"
EAL="-l 0-1 --no-pci --in-memory --log-level=lib.eal:error"
echo "DPDK $(pkg-config --modversion libdpdk), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
echo "hugepages: $(cat /proc/sys/vm/nr_hugepages) reserved"

for r in $(seq 1 "$ROUNDS"); do
    echo "== ring round $r of $ROUNDS =="
    target/release/ring-perf --elem16 false > "$work/ours.$r"
    echo ring_perf_autotest | dpdk-test $EAL > "$work/dpdk.$r" 2>&1
    taskset -c 0 "$work/ring_bench" > "$work/harness.$r"
done

# Reduce each file to "section|line label|value" rows.
rows() {
    awk '
        /^###/ { sec = $0; gsub(/#/, "", sec); gsub(/^ +| +$/, "", sec); next }
        /elem APIs/ { next }
        /: [0-9.]+$/ {
            line = $0; sub(/^legacy APIs: /, "", line)
            v = line; sub(/.*: /, "", v)
            l = line; sub(/: [0-9.]+$/, "", l)
            print sec "|" l "|" v
        }' "$1"
}

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "-" }'; }

pick() { # file-prefix section label
    for r in $(seq 1 "$ROUNDS"); do rows "$work/$1.$r"; done |
        awk -F'|' -v s="$2" -v l="$3" '$1 == s && $2 == l { print $3 }' | median
}

echo
echo "== ring: cycles per element (lower is better), median of $ROUNDS rounds =="
printf '%-36s %10s %12s %12s %10s\n' "measurement" "pmd-ring" "dpdk-test" "DPDK (C)" "ours/DPDK"
line() { # section label divisor harness-label
    local ours dpdk harness ref
    ours=$(pick ours "$1" "$2")
    dpdk=$(pick dpdk "$1" "$2")
    if [ "$dpdk" != "-" ] && [ "$3" != 1 ]; then dpdk=$(awk -v v="$dpdk" -v d="$3" 'BEGIN { printf "%.2f", v / d }'); fi
    harness="-"
    if [ -n "${4:-}" ]; then harness=$(pick harness "Testing bulk enq/deq (cycles per element)" "$4"); fi
    ref="$dpdk"
    if [ "$harness" != "-" ]; then ref="$harness"; fi
    printf '%-36s %10s %12s %12s %10s\n' "$2" "$ours" "$dpdk" "$harness" \
        "$(awk -v a="$ours" -v b="$ref" 'BEGIN { if (b + 0 > 0 && a != "-") printf "%.2f", a / b; else print "-" }')"
}
echo "-- single element enq+deq, one core"
line "Testing single element enq/deq" "SP/SC: single" 1
line "Testing single element enq/deq" "MP/MC: single" 1
echo "-- burst, one core (dpdk-test figure divided by the bulk size)"
line "Testing burst enq/deq" "SP/SC: burst (size: 8)" 8
line "Testing burst enq/deq" "SP/SC: burst (size: 32)" 32
line "Testing burst enq/deq" "MP/MC: burst (size: 8)" 8
line "Testing burst enq/deq" "MP/MC: burst (size: 32)" 32
echo "-- bulk, one core (dpdk-test figure divided by the bulk size)"
line "Testing bulk enq/deq" "SP/SC: bulk (size: 8)" 8 "SP/SC: bulk (size: 8)"
line "Testing bulk enq/deq" "SP/SC: bulk (size: 32)" 32 "SP/SC: bulk (size: 32)"
line "Testing bulk enq/deq" "MP/MC: bulk (size: 8)" 8 "MP/MC: bulk (size: 8)"
line "Testing bulk enq/deq" "MP/MC: bulk (size: 32)" 32 "MP/MC: bulk (size: 32)"
echo "-- empty bulk dequeue of 8 (cycles per call)"
line "Testing empty bulk deq" "SP/SC: bulk (size: 8)" 1
line "Testing empty bulk deq" "MP/MC: bulk (size: 8)" 1
echo "-- two cores, producer and consumer (enq + deq cycles per element)"
line "Testing using two physical cores" "SP/SC: bulk (size: 8)" 1
line "Testing using two physical cores" "MP/MC: bulk (size: 8)" 1
line "Testing using two physical cores" "SP/SC: bulk (size: 32)" 1
line "Testing using two physical cores" "MP/MC: bulk (size: 32)" 1
echo "(ratio: against the C program where it has the line, else against dpdk-test)"

if [ "$SKIP_MEMPOOL" = 1 ]; then
    exit 0
fi

echo
echo "== mempool: rate_persec (objects got and put per second, higher is better), median of $ROUNDS rounds =="
echo "(DPDK measured by scripts/dpdk/mempool_bench.c, the loop of its mempool_perf_autotest through"
echo " rte_mempool_generic_get/put and the default lcore cache; $MP_TIME s a point)"
cc -O3 scripts/dpdk/mempool_bench.c $(pkg-config --cflags --libs libdpdk) -o "$work/mempool_bench"
printf '%-72s %14s %14s %9s\n' "point" "pmd-mempool" "DPDK" "ours/DPDK"
for cache in 0 512; do
    for cores in 1 2; do
        for gpk in "1 1 32" "4 4 128" "32 32 32" "32 32 128"; do
            set -- $gpk
            : > "$work/o"
            : > "$work/d"
            for r in $(seq 1 "$ROUNDS"); do
                target/release/mempool-perf --time "$MP_TIME" --cache "$cache" --cores "$cores" \
                    --get-bulk "$1" --put-bulk "$2" --keep "$3" | sed 's/.*rate_persec=//' >> "$work/o"
                "$work/mempool_bench" $EAL -- "$cache" "$cores" "$1" "$2" "$3" "$MP_TIME" 2> /dev/null |
                    grep rate_persec | sed 's/.*rate_persec=//' >> "$work/d"
            done
            o=$(median < "$work/o")
            d=$(median < "$work/d")
            printf '%-72s %14s %14s %9s\n' \
                "cache=$cache cores=$cores n_get_bulk=$1 n_put_bulk=$2 n_keep=$3" "$o" "$d" \
                "$(awk -v a="$o" -v b="$d" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')"
        done
    done
done

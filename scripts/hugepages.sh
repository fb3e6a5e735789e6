#!/usr/bin/env bash
# Reserve, release or show 2 MiB hugepages, and mount hugetlbfs at /dev/hugepages.
#
#   scripts/hugepages.sh reserve [N]   reserve N pages (default 256 = 512 MiB) and mount hugetlbfs
#   scripts/hugepages.sh release       give every free page back to the kernel
#   scripts/hugepages.sh status        show reserved / free pages and the mount
#
# Needs root for reserve and release. Nothing else in the project requires hugepages: without
# them, segments fall back to 4 KiB pages with one warning line.
set -euo pipefail

NR=/proc/sys/vm/nr_hugepages
FREE=/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages
MNT=/dev/hugepages

status() {
    echo "2 MiB hugepages: reserved $(cat "$NR"), free $(cat "$FREE")"
    if grep -qs " $MNT hugetlbfs " /proc/mounts; then
        echo "hugetlbfs mounted at $MNT"
    else
        echo "hugetlbfs not mounted (named segments need it: scripts/hugepages.sh reserve)"
    fi
}

need_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "hugepages.sh: $1 needs root" >&2
        exit 1
    fi
}

case "${1:-status}" in
    reserve)
        need_root reserve
        n="${2:-256}"
        case "$n" in '' | *[!0-9]*) echo "hugepages.sh: N must be a number, got '$n'" >&2; exit 2 ;; esac
        echo "$n" > "$NR"
        got=$(cat "$NR")
        if [ "$got" -lt "$n" ]; then
            echo "hugepages.sh: asked for $n pages, the kernel reserved $got (memory is fragmented or short)" >&2
        fi
        if ! grep -qs " $MNT hugetlbfs " /proc/mounts; then
            mkdir -p "$MNT"
            mount -t hugetlbfs -o pagesize=2M nodev "$MNT"
        fi
        status
        ;;
    release)
        need_root release
        echo 0 > "$NR"
        status
        ;;
    status)
        status
        ;;
    *)
        echo "usage: $0 reserve [N] | release | status" >&2
        exit 2
        ;;
esac

#!/usr/bin/env bash
# e2e-netns.sh: real traffic (ping, iperf3 TCP and UDP) through testpmd and the software MANA
# device, between two network namespaces.
#
#   ns A: eth 10.77.0.1 ==veth== root: end A --AF_PACKET-- mana-emu vport 0 == testpmd port 0
#                                                                              | io forwarding
#   ns B: eth 10.77.0.2 ==veth== root: end B --AF_PACKET-- mana-emu vport 1 == testpmd port 1
#
# With --wire tap (what scripts/e2e-tap.sh runs) the device makes two TAP interfaces instead,
# which are moved into the namespaces: the kernel side of each TAP is the namespace's interface.
#
# Usage: scripts/e2e-netns.sh [options]
#   --wire afpacket|tap   how the device reaches the namespaces (default afpacket)
#   --fwd io|mac          testpmd's mode (default io; io keeps the hosts' source MACs, so the
#                         device runs with --allow-any-source-mac; mac rewrites them to the
#                         ports' own, with the device enforcing source MACs as Azure does)
#   --time S              seconds of each iperf3 run (default 5)
#   --udp-rate R          iperf3 UDP bitrate (default 200M)
#   --reset-period S      inject a reset request into the device every S seconds during the TCP
#                         run and report whether the TCP stream survived
#   --dpdk                run dpdk-testpmd with net_af_packet on the same veths instead of our
#                         testpmd and device (for comparison; afpacket wire only)
#   --debug               use debug builds (default: release)
#
# Exits 0 when ping and both iperf3 runs got through and testpmd ended cleanly, non-zero
# otherwise; prints a SKIPPED line and exits 0 when not root or the kernel lacks namespaces.
# Everything it creates (namespaces, veths, TAPs, processes, files) is removed on exit, also when
# interrupted. Installs iperf3, ethtool and iputils-ping through apt-get when they are missing.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
me=${E2E_NAME:-$(basename "$0")}

wire=afpacket
fwd=io
secs=5
udp_rate=200M
reset_period=""
use_dpdk=0
profile=release
while [ $# -gt 0 ]; do
    case "$1" in
        --wire) wire=${2:-}; shift 2 ;;
        --wire=*) wire=${1#*=}; shift ;;
        --fwd) fwd=${2:-}; shift 2 ;;
        --fwd=*) fwd=${1#*=}; shift ;;
        --time) secs=${2:-}; shift 2 ;;
        --time=*) secs=${1#*=}; shift ;;
        --udp-rate) udp_rate=${2:-}; shift 2 ;;
        --udp-rate=*) udp_rate=${1#*=}; shift ;;
        --reset-period) reset_period=${2:-}; shift 2 ;;
        --reset-period=*) reset_period=${1#*=}; shift ;;
        --dpdk) use_dpdk=1; shift ;;
        --debug) profile=debug; shift ;;
        --release) profile=release; shift ;;
        -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "$me: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
case "$wire" in afpacket|tap) ;; *) echo "$me: --wire: expected afpacket or tap, got '$wire'" >&2; exit 2 ;; esac
case "$fwd" in io|mac) ;; *) echo "$me: --fwd: expected io or mac, got '$fwd'" >&2; exit 2 ;; esac
[[ "$secs" =~ ^[0-9]+$ && "$secs" -ge 1 ]] || { echo "$me: --time: expected whole seconds >= 1, got '$secs'" >&2; exit 2; }
if [ -n "$reset_period" ] && ! [[ "$reset_period" =~ ^[0-9]+([.][0-9]+)?$ ]]; then
    echo "$me: --reset-period: expected seconds, got '$reset_period'" >&2; exit 2
fi
if [ "$use_dpdk" = 1 ] && [ "$wire" != afpacket ]; then
    echo "$me: --dpdk runs on the afpacket wire only" >&2; exit 2
fi
if [ "$use_dpdk" = 1 ] && [ -n "$reset_period" ]; then
    echo "$me: --reset-period needs our device (not --dpdk)" >&2; exit 2
fi

say() { printf '%s: %s\n' "$me" "$*"; }
skip() { printf 'SKIPPED: %s: %s\n' "$me" "$*"; exit 0; }
fail() { printf 'FAILED: %s: %s\n' "$me" "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, veth/TAP interfaces, AF_PACKET)"

# ---------------------------------------------------------------------------------------------
# Tools.
need=()
command -v ip >/dev/null || need+=(iproute2)
command -v ethtool >/dev/null || need+=(ethtool)
command -v ping >/dev/null || need+=(iputils-ping)
command -v iperf3 >/dev/null || need+=(iperf3)
if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    # iperf3's package asks whether to start a daemon: no.
    echo "iperf3 iperf3/start_daemon boolean false" | debconf-set-selections 2>/dev/null || true
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"; } >/dev/null 2>&1 \
        || skip "could not install ${need[*]} with apt-get"
fi
if [ "$use_dpdk" = 1 ]; then
    command -v dpdk-testpmd >/dev/null || skip "--dpdk needs dpdk-testpmd (apt-get install dpdk)"
fi

# ---------------------------------------------------------------------------------------------
# Names (short: interface names have 15 bytes at most) and cleanup.
id=$(( $$ % 100000 ))
ns_a="tpmd${id}a"
ns_b="tpmd${id}b"
if_a="tpv${id}a"       # the namespace side
if_b="tpv${id}b"
end_a="tpr${id}a"      # the root side (afpacket wire)
end_b="tpr${id}b"
net=10.77.0
work=$(mktemp -d "/tmp/e2e-netns.XXXXXX")
sock="$work/mana.sock"
emu_log="$work/mana-emu.log"
pmd_log="$work/testpmd.log"
pids=()
emu_pid=""
pmd_pid=""
resetter_pid=""
fg_pid=""

cleanup() {
    trap - EXIT INT TERM
    [ -n "$fg_pid" ] && kill "$fg_pid" 2>/dev/null
    [ -n "$resetter_pid" ] && kill "$resetter_pid" 2>/dev/null
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    if [ -n "$pmd_pid" ] && kill -0 "$pmd_pid" 2>/dev/null; then
        kill -INT "$pmd_pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$pmd_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pmd_pid" 2>/dev/null
    fi
    if [ -n "$emu_pid" ] && kill -0 "$emu_pid" 2>/dev/null; then
        kill -TERM "$emu_pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$emu_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$emu_pid" 2>/dev/null
    fi
    for p in "$fg_pid" "$resetter_pid" "${pids[@]}"; do [ -n "$p" ] && wait "$p" 2>/dev/null; done
    ip netns del "$ns_a" 2>/dev/null
    ip netns del "$ns_b" 2>/dev/null
    for i in "$end_a" "$end_b" "$if_a" "$if_b"; do ip link del "$i" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'echo; say "interrupted: cleaning up"; exit 130' INT TERM

ip netns add "$ns_a" 2>/dev/null || skip "cannot create network namespaces here"
ip netns add "$ns_b" || fail "cannot create namespace $ns_b"

# ---------------------------------------------------------------------------------------------
# Programs.
if [ "$use_dpdk" = 0 ]; then
    testpmd=${TESTPMD:-$top/target/$profile/testpmd}
    mana_emu=${MANA_EMU:-$top/target/$profile/mana-emu}
    if [ -z "${TESTPMD:-}" ] || [ -z "${MANA_EMU:-}" ]; then
        say "building testpmd and mana-emu ($profile)"
        flag=(); [ "$profile" = release ] && flag=(--release)
        (cd "$top" && cargo build -q "${flag[@]}" -p testpmd -p mana-emu-app) || fail "cargo build failed"
    fi
    [ -x "$testpmd" ] && [ -x "$mana_emu" ] || fail "missing $testpmd or $mana_emu"
fi

# Offloads off, as DPDK's af_packet needs too: no TSO/GSO/GRO (frames stay at the MTU), no
# checksum offload (checksums are complete in the frames the device forwards), no VLAN offload.
no_offloads() { # [netns] interface
    local ns=() dev
    if [ $# -eq 2 ]; then ns=(ip netns exec "$1"); dev=$2; else dev=$1; fi
    for f in tso gso gro lro tx rx sg rxvlan txvlan; do
        "${ns[@]}" ethtool -K "$dev" "$f" off >/dev/null 2>&1 || true
    done
}

# Runs a command in the background and waits for it, so a signal interrupts the wait at once
# (bash runs traps only between commands; `wait` is one). Output goes to the file.
run() { # output-file command...
    local out=$1; shift
    "$@" >"$out" 2>&1 &
    fg_pid=$!
    wait "$fg_pid"
    local rc=$?
    fg_pid=""
    return "$rc"
}

wait_for() { # seconds description command...
    local t=$1 what=$2; shift 2
    for _ in $(seq $(( t * 10 ))); do "$@" && return 0; sleep 0.1; done
    fail "timed out after ${t}s waiting for $what"
}

# ---------------------------------------------------------------------------------------------
# Wires and the device.
if [ "$wire" = afpacket ]; then
    ip link add "$if_a" type veth peer name "$end_a" || fail "cannot create veth pair"
    ip link add "$if_b" type veth peer name "$end_b" || fail "cannot create veth pair"
    ip link set "$if_a" netns "$ns_a"
    ip link set "$if_b" netns "$ns_b"
    for e in "$end_a" "$end_b"; do ip link set "$e" up; no_offloads "$e"; done
    device_wire="afpacket:$end_a,$end_b"
fi

start_device() {
    local any=()
    [ "$fwd" = io ] && any=(--allow-any-source-mac)
    # The device stands for hardware: keep it off testpmd's forwarding core (CPU 1 of -l 0,1).
    local pin=()
    if command -v taskset >/dev/null && [ "$(nproc)" -gt 1 ]; then pin=(taskset -c 0); fi
    "${pin[@]}" "$mana_emu" --socket "$sock" --vports 2 --wire "$device_wire" "${any[@]}" >"$emu_log" 2>&1 &
    emu_pid=$!
    wait_for 20 "the mana-emu socket" test -S "$sock"
    kill -0 "$emu_pid" 2>/dev/null || { cat "$emu_log"; fail "mana-emu exited"; }
}

if [ "$wire" = tap ]; then
    # The device makes the TAPs (in this namespace); once attached they move into the
    # namespaces, where their kernel side becomes each namespace's interface.
    device_wire="tap:$if_a,$if_b"
    start_device
    wait_for 10 "TAP $if_a" ip link show "$if_a" >/dev/null 2>&1
    wait_for 10 "TAP $if_b" ip link show "$if_b" >/dev/null 2>&1
    ip link set "$if_a" netns "$ns_a" || fail "cannot move $if_a into $ns_a"
    ip link set "$if_b" netns "$ns_b" || fail "cannot move $if_b into $ns_b"
elif [ "$use_dpdk" = 0 ]; then
    start_device
fi

ip -n "$ns_a" link set lo up
ip -n "$ns_b" link set lo up
ip -n "$ns_a" addr add "$net.1/24" dev "$if_a"
ip -n "$ns_b" addr add "$net.2/24" dev "$if_b"
ip -n "$ns_a" link set "$if_a" up
ip -n "$ns_b" link set "$if_b" up
no_offloads "$ns_a" "$if_a"
no_offloads "$ns_b" "$if_b"
mac_a=$(ip -n "$ns_a" -br link show "$if_a" | awk '{print $3}')
mac_b=$(ip -n "$ns_b" -br link show "$if_b" | awk '{print $3}')

# ---------------------------------------------------------------------------------------------
# testpmd: port 0 faces namespace A, port 1 namespace B; io forwarding between them.
peers=()
[ "$fwd" = mac ] && peers=(--eth-peer "0,$mac_a" --eth-peer "1,$mac_b")
if [ "$use_dpdk" = 1 ]; then
    dpdk-testpmd --no-huge --no-pci -m 512 --file-prefix "e2e$id" \
        --vdev="net_af_packet0,iface=$end_a" --vdev="net_af_packet1,iface=$end_b" -l 0,1 -- \
        --forward-mode="$fwd" "${peers[@]}" --stats-period 5 --total-num-mbufs=16384 \
        >"$pmd_log" 2>&1 &
    pmd_pid=$!
    started="Port statistics"
else
    "$testpmd" -l 0,1 --vdev "mana:sock=$sock" -- --forward-mode="$fwd" "${peers[@]}" \
        --stats-period 5 >"$pmd_log" 2>&1 &
    pmd_pid=$!
    started="start packet forwarding"
fi
pmd_up() {
    kill -0 "$pmd_pid" 2>/dev/null || { cat "$pmd_log"; fail "testpmd exited"; }
    grep -q "$started" "$pmd_log"
}
wait_for 30 "testpmd to start forwarding" pmd_up
say "testpmd forwards ($fwd) between $if_a ($mac_a, $net.1, ns $ns_a) and $if_b ($mac_b, $net.2, ns $ns_b) over the $wire wire"

# ---------------------------------------------------------------------------------------------
# Traffic.
ok=1
in_a() { ip netns exec "$ns_a" "$@"; }

say "ping"
run "$work/ping.out" in_a ping -c 10 -i 0.2 -W 2 "$net.2"
ping_out=$(cat "$work/ping.out")
echo "$ping_out" | tail -n 3
ping_rx=$(echo "$ping_out" | sed -n 's/.* \([0-9]*\) received.*/\1/p')
ping_rtt=$(echo "$ping_out" | sed -n 's|^rtt min/avg/max/mdev = \(.*\)|\1|p')
[ "${ping_rx:-0}" -ge 1 ] || ok=0

ip netns exec "$ns_b" iperf3 -s -p 5201 >"$work/iperf3-server.log" 2>&1 &
pids+=($!)
sleep 0.5

resets=0
if [ -n "$reset_period" ]; then
    (
        n=0
        while sleep "$reset_period"; do
            "$mana_emu" ctl --socket "$sock" inject reset-request >/dev/null 2>&1 && n=$((n + 1))
            echo "$n" >"$work/resets"
        done
    ) &
    resetter_pid=$!
fi

say "iperf3 TCP, ${secs}s"
run "$work/tcp.out" timeout $(( secs + 30 )) ip netns exec "$ns_a" iperf3 -c "$net.2" -p 5201 -t "$secs" -f m
tcp_rc=$?
tcp_out=$(cat "$work/tcp.out")
if [ -n "$resetter_pid" ]; then
    kill "$resetter_pid" 2>/dev/null; wait "$resetter_pid" 2>/dev/null; resetter_pid=""
    resets=$(cat "$work/resets" 2>/dev/null || echo 0)
fi
echo "$tcp_out" | grep -E "sender|receiver|error" || echo "$tcp_out" | tail -n 5
tcp_mbps=$(echo "$tcp_out" | awk '/receiver/ {for (i = 1; i < NF; i++) if ($(i + 1) == "Mbits/sec") print $i}' | tail -n 1)
[ "$tcp_rc" = 0 ] && [ -n "$tcp_mbps" ] || ok=0

say "iperf3 UDP, ${secs}s at $udp_rate"
run "$work/udp.out" timeout $(( secs + 30 )) ip netns exec "$ns_a" iperf3 -c "$net.2" -p 5201 -u -b "$udp_rate" -t "$secs" -f m
udp_rc=$?
udp_out=$(cat "$work/udp.out")
echo "$udp_out" | grep -E "sender|receiver|error" || echo "$udp_out" | tail -n 5
udp_line=$(echo "$udp_out" | grep receiver | tail -n 1)
udp_mbps=$(echo "$udp_line" | awk '{for (i = 1; i < NF; i++) if ($(i + 1) == "Mbits/sec") print $i}')
udp_loss=$(echo "$udp_line" | grep -o '[0-9]*/[0-9]* ([0-9.e+-]*%)')
[ "$udp_rc" = 0 ] && [ -n "$udp_mbps" ] || ok=0

# ---------------------------------------------------------------------------------------------
# testpmd's end: SIGINT, then the final statistics.
kill -INT "$pmd_pid" 2>/dev/null
for _ in $(seq 100); do kill -0 "$pmd_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pmd_pid" 2>/dev/null; then
    say "testpmd did not stop within 10 s of SIGINT"; ok=0
    kill -KILL "$pmd_pid" 2>/dev/null
fi
wait "$pmd_pid" 2>/dev/null
pmd_rc=$?
pmd_pid=""
echo
grep -E "event|Accumulated|RX-packets: .*RX-total|TX-packets: .*TX-total|CPU cycles" "$pmd_log" | tail -n 12
if [ "$use_dpdk" = 0 ]; then
    grep -q "back in the pool" "$pmd_log" || { say "testpmd did not get every mbuf back"; ok=0; }
    [ "$pmd_rc" = 0 ] || { say "testpmd exited with $pmd_rc"; tail -n 20 "$pmd_log"; ok=0; }
fi

echo
echo "=== $me results ($([ "$use_dpdk" = 1 ] && echo dpdk-testpmd net_af_packet || echo "testpmd + mana-emu, $wire wire"), $fwd) ==="
echo "ping:        ${ping_rx:-0}/10 replies, rtt min/avg/max/mdev ${ping_rtt:-n/a}"
echo "iperf3 TCP:  ${tcp_mbps:-failed} Mbits/sec (receiver, ${secs}s)"
echo "iperf3 UDP:  ${udp_mbps:-failed} Mbits/sec (receiver), loss ${udp_loss:-n/a}, offered $udp_rate"
if [ -n "$reset_period" ]; then
    if [ "$tcp_rc" = 0 ] && [ -n "$tcp_mbps" ]; then survived=yes; else survived=no; fi
    echo "resets:      $resets reset requests injected every ${reset_period}s during TCP; TCP stream survived: $survived"
fi
if [ "$ok" = 1 ]; then
    echo "PASSED"
    exit 0
fi
echo "FAILED (logs: testpmd and device output above)"
exit 1

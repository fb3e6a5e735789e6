#!/usr/bin/env bash
# e2e-tap.sh: the same real traffic as e2e-netns.sh (ping, iperf3 TCP and UDP between two network
# namespaces through testpmd and the software MANA device), over a TAP wire: the device makes two
# TAP interfaces, which are moved into the namespaces.
#
# Usage: scripts/e2e-tap.sh [e2e-netns.sh options: --fwd io|mac, --time S, --udp-rate R,
#                            --reset-period S, --debug]
# Exits 0 on success, non-zero on failure; prints a SKIPPED line and exits 0 when not root.
E2E_NAME=e2e-tap.sh exec "$(dirname "$0")/e2e-netns.sh" --wire tap "$@"

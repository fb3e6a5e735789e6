//! testpmd as a user runs it: the binary on null, ring and emulated MANA ports, every forwarding
//! mode, the statistics formats, signals, and bad options. Every run must end with every mbuf
//! back in its pool.

use std::io::Write;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_testpmd");

/// One testpmd at a time: each runs a busy-polling core (and the emulated device its own), and
/// the exact counts below assume a run is not starved by the others.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Kills the child if it has not finished after `secs` (a hung run fails instead of hanging).
fn watchdog(child: &Child, secs: u64) -> Arc<AtomicBool> {
    let done = Arc::new(AtomicBool::new(false));
    let (d, pid) = (done.clone(), child.id());
    std::thread::spawn(move || {
        for _ in 0..secs * 10 {
            std::thread::sleep(Duration::from_millis(100));
            if d.load(Ordering::Relaxed) {
                return;
            }
        }
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    });
    done
}

fn spawn(args: &[&str], stdin: Stdio) -> Child {
    Command::new(BIN)
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("testpmd starts")
}

fn finish(child: Child) -> Output {
    let done = watchdog(&child, 60);
    let out = child.wait_with_output().unwrap();
    done.store(true, Ordering::Relaxed);
    out
}

fn run(args: &[&str]) -> Output {
    finish(spawn(args, Stdio::null()))
}

/// Runs testpmd -i, feeding `script` (a line, then a pause in ms) to its stdin, then end of
/// input (which quits).
fn interactive(args: &[&str], script: &[(&str, u64)]) -> Output {
    let mut all = vec!["-i"];
    all.extend_from_slice(args);
    let mut child = spawn(&all, Stdio::piped());
    let mut stdin = child.stdin.take().unwrap();
    let done = watchdog(&child, 60);
    let waiter = std::thread::spawn(move || child.wait_with_output().unwrap());
    for (line, ms) in script {
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        std::thread::sleep(Duration::from_millis(*ms));
    }
    drop(stdin);
    let out = waiter.join().unwrap();
    done.store(true, Ordering::Relaxed);
    out
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err_text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The number after `key` at the start of a line (after spaces).
fn field(line: &str, key: &str) -> Option<u64> {
    let at = line.find(key)? + key.len();
    let rest = line[at..].trim_start();
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// (RX-packets, TX-packets, TX-dropped) of every accumulated block, in order.
fn accumulated(out: &str) -> Vec<(u64, u64, u64)> {
    let lines: Vec<&str> = out.lines().collect();
    let mut v = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if l.contains("Accumulated forward statistics for all ports") {
            let rx = field(lines[i + 1], "RX-packets:").unwrap();
            let tx = field(lines[i + 2], "TX-packets:").unwrap();
            let txd = field(lines[i + 2], "TX-dropped:").unwrap();
            v.push((rx, tx, txd));
        }
    }
    v
}

/// Checks a clean end: exit 0, ports closed, every mbuf back.
fn assert_clean_end(o: &Output, what: &str) {
    let out = text(o);
    assert!(o.status.success(), "{what}: exit {:?}\n{out}\n{}", o.status, err_text(o));
    assert!(out.contains("mbufs of mb_pool_0 are back in the pool"), "{what}:\n{out}");
    assert!(out.contains("Port 0 is closed"), "{what}:\n{out}");
    assert!(out.trim_end().ends_with("Bye..."), "{what}:\n{out}");
}

/// Runs every mode in one interactive session (start, a pause, stop) and returns the totals
/// per mode.
fn every_mode(args: &[&str], start: &str) -> (Vec<(u64, u64, u64)>, String) {
    const MODES: [&str; 8] =
        ["io", "mac", "macswap", "flowgen", "rxonly", "txonly", "icmpecho", "5tswap"];
    let mut script = Vec::new();
    let lines: Vec<String> = MODES.iter().map(|m| format!("set fwd {m}")).collect();
    for l in &lines {
        script.push((l.as_str(), 0));
        script.push((start, 300));
        script.push(("stop", 0));
        // A clean slate for the next mode: stopping frees what is still in flight.
        script.push(("port stop all", 0));
        script.push(("port start all", 0));
    }
    script.push(("quit", 0));
    let o = interactive(args, &script);
    assert_clean_end(&o, &format!("{args:?}"));
    let out = text(&o);
    for m in MODES {
        assert!(out.contains(&format!("Set {m} packet forwarding mode")), "{m}:\n{out}");
        assert!(out.contains(&format!("{m} packet forwarding - ports=")), "{m}:\n{out}");
    }
    let acc = accumulated(&out);
    assert_eq!(acc.len(), 8, "{out}");
    (acc, out)
}

#[test]
fn every_mode_runs_on_null_ports() {
    let _one = serial();
    let (acc, out) = every_mode(&["--vdev", "null", "--vdev", "net_null1"], "start");
    let [io, mac, macswap, flowgen, rxonly, txonly, icmpecho, tswap] = acc[..] else {
        panic!("{acc:?}")
    };
    for (name, (rx, tx, _)) in [("io", io), ("mac", mac), ("macswap", macswap), ("5tswap", tswap)] {
        assert!(rx > 0 && tx > 0, "{name}: {rx} {tx}\n{out}");
    }
    assert!(rxonly.0 > 0 && rxonly.1 == 0, "rxonly {rxonly:?}");
    assert!(txonly.0 == 0 && txonly.1 > 0, "txonly {txonly:?}");
    assert!(flowgen.0 > 0 && flowgen.1 > 0, "flowgen {flowgen:?}");
    // Null frames are not echo requests: all received, none answered.
    assert!(icmpecho.0 > 0 && icmpecho.1 == 0, "icmpecho {icmpecho:?}");
}

#[test]
fn every_mode_runs_on_ring_ports() {
    let _one = serial();
    // Two ports on one ring set are cabled to each other: nothing moves until tx_first.
    let (acc, out) = every_mode(&["--vdev", "ring:r0", "--vdev", "ring:r0"], "start tx_first");
    let [io, mac, macswap, flowgen, rxonly, txonly, icmpecho, tswap] = acc[..] else {
        panic!("{acc:?}")
    };
    for (name, (rx, tx, d)) in [("io", io), ("mac", mac), ("macswap", macswap), ("5tswap", tswap)] {
        // The primed packets keep circulating: far more than the 64 sent first.
        assert!(rx > 64 && tx > 64 && d == 0, "{name}: {rx} {tx} {d}\n{out}");
    }
    assert_eq!(rxonly, (64, 64, 0), "rxonly receives the 2 x 32 primed packets");
    assert!(txonly.1 > 64, "txonly {txonly:?}");
    assert!(flowgen.0 > 0 && flowgen.1 > 64, "flowgen {flowgen:?}");
    assert_eq!(icmpecho, (64, 64, 0), "UDP is not answered");
}

#[test]
fn every_mode_runs_on_emulated_mana_ports() {
    let _one = serial();
    // any_source_mac: macswap and 5tswap send with the other port's MAC, which Azure (and the
    // device, by default) drops.
    let (acc, out) = every_mode(&["--vdev", "mana:emu,any_source_mac=1"], "start tx_first");
    let [io, mac, macswap, flowgen, rxonly, txonly, icmpecho, tswap] = acc[..] else {
        panic!("{acc:?}")
    };
    for (name, (rx, tx, _)) in [("io", io), ("mac", mac), ("macswap", macswap), ("5tswap", tswap)] {
        assert!(rx > 64 && tx > 64, "{name}: {rx} {tx}\n{out}");
    }
    assert_eq!((rxonly.0, rxonly.1), (64, 64), "rxonly {rxonly:?}");
    assert!(txonly.1 > 64, "txonly {txonly:?}");
    assert!(flowgen.0 > 0 && flowgen.1 > 64, "flowgen {flowgen:?}");
    assert_eq!((icmpecho.0, icmpecho.1), (64, 64), "icmpecho {icmpecho:?}");
}

#[test]
fn main_job_runs_with_no_options_until_sigint() {
    let _one = serial();
    let child = spawn(&[], Stdio::null());
    let pid = child.id().to_string();
    std::thread::sleep(Duration::from_millis(2500));
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let o = finish(child);
    assert_clean_end(&o, "main job");
    let out = text(&o);
    assert!(out.contains("Signal 2 received, preparing to exit..."), "{out}");
    assert!(out.contains("io packet forwarding - ports=2 - cores=1 - streams=2"), "{out}");
    // Statistics every second, in DPDK's format.
    assert!(out.matches("Port statistics ====").count() >= 2, "{out}");
    let pps: Vec<u64> = out.lines().filter_map(|l| field(l, "Rx-pps:")).collect();
    assert!(pps.iter().any(|&p| p > 0), "some Rx-pps above 0: {pps:?}\n{out}");
    assert!(out.contains("Forward statistics for port 0"), "{out}");
    assert!(out.contains("Forward statistics for port 1"), "{out}");
    let acc = accumulated(&out);
    assert_eq!(acc.len(), 1);
    let (rx, tx, dropped) = acc[0];
    // Primed with one burst per stream, the packets keep going round; the device enforces
    // source MACs and io forwarding keeps them right, so nothing is dropped.
    assert!(rx > 10_000, "{rx}");
    assert!(tx >= rx && dropped == 0, "{rx} {tx} {dropped}");
}

#[test]
fn mac_mode_on_mana_passes_source_mac_enforcement() {
    let _one = serial();
    let o = run(&["--forward-mode=mac", "--tx-first", "--duration", "0.7"]);
    assert_clean_end(&o, "mac");
    let (rx, tx, dropped) = accumulated(&text(&o))[0];
    assert!(rx > 64 && tx > 64 && dropped == 0, "{rx} {tx} {dropped}");
    // TX errors (frames the device dropped) would show in the port's TX-dropped.
    assert!(!text(&o).contains("TX-errors: 1"), "{}", text(&o));
}

#[test]
fn null_ports_with_stats_period_record_core_cycles_and_sigterm() {
    let _one = serial();
    let child = spawn(
        &[
            "-l",
            "0,1",
            "--no-huge",
            "--vdev=net_null0",
            "--vdev=net_null1",
            "--",
            "--forward-mode=io",
            "--record-core-cycles",
            "--stats-period",
            "0.3",
            "--total-num-mbufs=8192",
        ],
        Stdio::null(),
    );
    let pid = child.id().to_string();
    std::thread::sleep(Duration::from_millis(1200));
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let o = finish(child);
    assert_clean_end(&o, "null");
    let out = text(&o);
    assert!(out.contains("Signal 15 received"), "{out}");
    assert!(out.matches("NIC statistics for port 1").count() >= 2, "{out}");
    let line = out.lines().find(|l| l.contains("CPU cycles/packet=")).expect("cycles line");
    // "  CPU cycles/packet=X.XX (total cycles=N / total io packets=N) at N MHz Clock"
    let cpp: f64 = line
        .split("CPU cycles/packet=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    let total = field(line, "(total cycles=").unwrap();
    let pkts = field(line, "total io packets=").unwrap();
    assert!(line.ends_with("MHz Clock"), "{line}");
    assert!(pkts > 0 && total > 0, "{line}");
    assert!((cpp - total as f64 / pkts as f64).abs() < 0.01, "{line}");
    let (rx, _, _) = accumulated(&out)[0];
    assert_eq!(rx, pkts, "cycles are per received packet in io mode");
}

#[test]
fn verbose_rxonly_prints_one_line_per_packet_with_rss_hash_and_queue() {
    let _one = serial();
    let o = run(&[
        "--forward-mode",
        "rxonly",
        "--tx-first",
        "--verbose",
        "--rxq",
        "2",
        "--txq",
        "2",
        "--rss-udp",
        "--txonly-multi-flow",
        "--duration",
        "0.8",
    ]);
    assert_clean_end(&o, "verbose");
    let out = text(&o);
    let pkt_lines: Vec<&str> = out.lines().filter(|l| l.starts_with("  src=")).collect();
    let (rx, _, _) = accumulated(&out)[0];
    assert_eq!(rx, 4 * 32, "two ports x two streams x one primed burst");
    assert_eq!(pkt_lines.len() as u64, rx, "{out}");
    for l in &pkt_lines {
        assert!(l.contains(" - length=64 - "), "{l}");
        assert!(l.contains(" - type=0x0800 - "), "{l}");
        assert!(l.contains(" - RSS hash=0x"), "{l}");
        assert!(l.contains(" - RSS queue=0x"), "{l}");
        assert!(l.contains(" - Receive queue=0x"), "{l}");
    }
    // Multi-flow source ports spread the packets over both RX queues.
    assert!(pkt_lines.iter().any(|l| l.ends_with("Receive queue=0x0")), "{out}");
    assert!(pkt_lines.iter().any(|l| l.ends_with("Receive queue=0x1")), "{out}");
    assert!(out.contains("port 0/queue 1: received"), "{out}");
    // More streams than ports: one block per stream.
    assert!(out.contains("Forward Stats for RX Port= 0/Queue= 1 -> TX Port= 1/Queue= 1"), "{out}");
}

#[test]
fn interactive_commands_answer_as_dpdk() {
    let _one = serial();
    let key = "6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa";
    let rss_key = format!("port config 0 rss-hash-key ipv4-udp {key}");
    let o = interactive(
        &["--vdev", "mana:emu", "--rxq", "2", "--txq", "2"],
        &[
            ("show port info 0", 0),
            ("show port xstats 1", 0),
            ("stop", 0),
            ("set verbose 0", 0),
            ("port config all rss udp", 0),
            (&rss_key, 0),
            ("port config 0 rss-hash-key ipv4 00ff", 0),
            ("port stop all", 0),
            ("start", 0),
            ("port start all", 0),
            ("start tx_first", 300),
            ("start", 0),
            ("set fwd rxonly", 0),
            ("port stop 0", 0),
            ("show port stats all", 0),
            ("show port stats 7", 0),
            ("show config fwd", 0),
            ("stop", 0),
            ("clear port stats all", 0),
            ("bogus command", 0),
            ("set fwd warp", 0),
            ("quit", 0),
        ],
    );
    assert_clean_end(&o, "interactive");
    let out = text(&o);
    for want in [
        "testpmd> show port info 0",
        "********************* Infos for port 0  *********************",
        "Driver name: mana",
        "Current number of RX queues: 2",
        "###### NIC extended statistics for port 1 ",
        "rx_good_packets: ",
        "Packet forwarding not started",
        "Change verbose level from 0 to 0",
        "port 0: the key is 2 bytes; the port's RSS key is 40 bytes",
        "Not all ports were started",
        "Port 1: 00:15:5D",
        "Packet forwarding already started",
        "Please stop forwarding first",
        "Rx-pps: ",
        "Invalid port 7",
        "Logical Core 1 (socket 0) forwards packets on 4 streams:",
        "NIC statistics for port 1 cleared",
        "Command not found",
        "Bad arguments: expected one of io, mac",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    let acc = accumulated(&out);
    assert_eq!(acc.len(), 1);
    assert!(acc[0].0 > 128, "{acc:?}");
}

#[test]
fn bad_options_and_ports_exit_1_with_the_reason() {
    let _one = serial();
    let cases: &[(&[&str], &str)] = &[
        (&["--rxq=abc"], "option --rxq: expected a number of RX queues from 1 to 1024, got 'abc'"),
        (&["--forward-mode", "warp"], "option --forward-mode: expected one of io, mac"),
        (&["--bogus"], "option --bogus: unknown option"),
        (&["--vdev", "nope"], "no driver 'nope'"),
        (&["-l", "0,1", "--nb-cores", "2", "--vdev", "null"], "--nb-cores 2: only 1 forwarding"),
        (&["--rxd", "100"], "nb_rx_desc: 100"),
        (&["--vdev", "null", "--rxq", "17"], "at most 16 RX"),
        (&["--vdev", "null", "--eth-peer", "3,02:00:00:00:00:01"], "--eth-peer: port 3"),
    ];
    for (args, want) in cases {
        let o = run(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", err_text(&o));
        assert!(err_text(&o).contains(want), "{args:?}: {}", err_text(&o));
    }
    let o = run(&["--help"]);
    assert!(o.status.success());
    assert!(text(&o).contains("--forward-mode MODE"));
}

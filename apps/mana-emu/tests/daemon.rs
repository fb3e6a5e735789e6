//! The `mana-emu` binary: a daemon in the background, `ctl` against it, SIGTERM, cleanup.
//! Every wait is bounded, so a broken daemon fails the test instead of hanging it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mana-emu");
/// Bound on every wait (start-up, a ctl command, shutdown): against hangs, not a speed limit.
const BOUND: Duration = Duration::from_secs(20);

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("mana-emu-app-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A daemon process, killed on drop if the test did not stop it.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Waits for `child` to exit, at most `BOUND`; kills it and panics past that.
fn wait_bounded(child: &mut Child, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + BOUND;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {BOUND:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs the binary with `args` to completion (bounded) and returns its output.
fn run(args: &[&str]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_bounded(&mut child, &format!("mana-emu {}", args.join(" ")));
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn start_daemon(sock: &Path, extra: &[&str]) -> Daemon {
    let mut args = vec!["--socket", sock.to_str().unwrap(), "--vports", "2"];
    args.extend_from_slice(extra);
    let child = Command::new(BIN)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut d = Daemon(child);
    let deadline = Instant::now() + BOUND;
    while !sock.exists() {
        if let Some(st) = d.0.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = d.0.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!("daemon exited early ({st}): {err}");
        }
        assert!(Instant::now() < deadline, "no socket after {BOUND:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    d
}

#[test]
fn daemon_serves_ctl_and_stops_on_sigterm() {
    let dir = TempDir::new("main");
    let sock = dir.0.join("emu.sock");
    let s = sock.to_str().unwrap();
    let mut daemon = start_daemon(&sock, &["--wire", "pair", "--queues", "8"]);

    let out = run(&["ctl", "--socket", s, "stats"]);
    assert!(out.status.success(), "ctl stats: {}", text(&out.stderr));
    let json = text(&out.stdout);
    let json = json.trim();
    assert!(json.starts_with("{\"device\":{") && json.ends_with('}'), "{json}");
    assert!(json.contains("\"loops\":") && json.contains("\"hwc_requests\":{"), "{json}");
    assert_eq!(json.matches("\"rx_packets\":").count(), 2, "one entry per vport: {json}");
    assert_eq!(json.matches('{').count(), json.matches('}').count(), "{json}");

    let out = run(&["ctl", "--socket", s, "present"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "present");
    let out = run(&["ctl", "--socket", s, "inject", "remove"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&run(&["ctl", "--socket", s, "present"]).stdout).trim(), "removed");
    let out = run(&["ctl", "--socket", s, "inject", "readd"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&run(&["ctl", "--socket", s, "present"]).stdout).trim(), "present");
    let out = run(&["ctl", "--socket", s, "inject", "sq-error", "30"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // Bad fault words: refused with the reason, and the daemon carries on.
    let out = run(&["ctl", "--socket", s, "inject", "explode"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("unknown fault"), "{}", text(&out.stderr));
    let out = run(&["ctl", "--socket", s, "inject", "sq-error", "x"]);
    assert!(text(&out.stderr).contains("'x' is not a queue id"), "{}", text(&out.stderr));

    // A second daemon on the same socket is refused.
    let out = run(&["--socket", s, "--vports", "1", "--wire", "pair"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("another daemon"), "{}", text(&out.stderr));

    // SIGTERM: a clean exit and no socket file left.
    let pid = daemon.0.id().to_string();
    let st = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(st.success());
    let st = wait_bounded(&mut daemon.0, "daemon after SIGTERM");
    assert!(st.success(), "daemon exit: {st}");
    assert!(!sock.exists(), "socket file removed");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut daemon.0.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("serving 2 vports, 8 queues each"), "{err}");

    let out = run(&["ctl", "--socket", s, "stats"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("connect to the mana-emu daemon"), "{}", text(&out.stderr));
}

#[test]
fn bad_arguments_say_which_and_why() {
    let dir = TempDir::new("args");
    let sock = dir.0.join("emu.sock");
    let s = sock.to_str().unwrap();
    let cases: &[(&[&str], &[&str])] = &[
        (&["--socket", s, "--vports", "2", "--wire", "wifi"], &["--wire", "unknown wire 'wifi'"]),
        (&["--socket", s, "--vports", "2", "--wire", "gen:size=10"], &["--wire", "60..=9018"]),
        (&["--socket", s, "--vports", "0", "--wire", "pair"], &["--vports", "0"]),
        (&["--socket", s, "--vports", "2", "--wire", "pair", "--queues", "99"], &["--queues"]),
        (&["--vports", "2", "--wire", "pair"], &["--socket"]),
        (&["--socket", s, "--vports", "2"], &["--wire"]),
        (&["ctl", "--socket", s, "fly"], &["fly"]),
        (&["ctl", "--socket", s, "inject"], &["KIND"]),
    ];
    for (args, want) in cases {
        let out = run(args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        for w in *want {
            assert!(err.contains(w), "{args:?}: '{w}' not in: {err}");
        }
    }
    // Wire and vport count that do not match: the device says so.
    let out = run(&["--socket", s, "--vports", "2", "--wire", "tap:one"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("1 interfaces for 2 vports"), "{}", text(&out.stderr));
    assert!(!sock.exists());
}

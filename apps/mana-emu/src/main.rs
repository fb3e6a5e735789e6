//! mana-emu: runs a software MANA device and serves it on a unix socket, or talks to a running
//! one.
//!
//! ```text
//! mana-emu --socket PATH --vports N --wire pair|gen[:size=N,flows=N]|tap:IF0,IF1|afpacket:IF0,IF1 [--queues N]
//!          [--allow-any-source-mac]
//! mana-emu ctl --socket PATH stats
//! mana-emu ctl --socket PATH inject KIND [ARGS...]
//! mana-emu ctl --socket PATH present
//! ```
//!
//! The daemon runs until SIGINT or SIGTERM (a second one ends it at once) and removes its socket
//! file on the way out. The protocol is `mana_emu::link`'s.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::{Parser, Subcommand};
use mana_emu::link::{Client, Server};
use mana_emu::{Device, DeviceConfig, Fault, WireSpec};

#[derive(Parser, Debug)]
#[command(
    name = "mana-emu",
    about = "A software MANA device served on a unix socket, and its control client",
    subcommand_negates_reqs = true,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    /// Unix socket to serve the device on (a stale one is replaced).
    #[arg(long, value_name = "PATH", required = true)]
    socket: Option<PathBuf>,
    /// Number of vports (1 to 16).
    #[arg(long, value_name = "N", required = true,
          value_parser = clap::value_parser!(u16).range(1..=16))]
    vports: Option<u16>,
    /// Where frames go: pair, gen[:size=N,flows=N], tap:IF0,IF1,... or afpacket:IF0,IF1,...
    /// (one interface per vport).
    #[arg(long, value_name = "WIRE", required = true,
          value_parser = |s: &str| s.parse::<WireSpec>())]
    wire: Option<WireSpec>,
    /// Queues (SQs and RQs each) per vport the device offers (1 to 64).
    #[arg(long, value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    queues: u32,
    /// Turn off source-MAC enforcement (on by default, as in Azure: a frame whose source MAC is
    /// not its vport's is dropped with CQE_TX_SA_DROP). For forwarders that keep the sender's
    /// MAC, such as testpmd's io mode.
    #[arg(long)]
    allow_any_source_mac: bool,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Talk to a running daemon.
    Ctl {
        /// The daemon's socket.
        #[arg(long, value_name = "PATH")]
        socket: PathBuf,
        #[command(subcommand)]
        op: CtlOp,
    },
}

#[derive(Subcommand, Debug)]
enum CtlOp {
    /// Print the device counters as JSON.
    Stats,
    /// Commit a fault: reset-request, fatal [MS], remove, readd, sq-error Q, hwc-delay MS,
    /// fail-cmd NAME, hostile PER_MILLION, clear.
    Inject {
        /// The fault and its argument, e.g. `sq-error 30`.
        #[arg(value_name = "KIND [ARGS]", required = true, num_args = 1..)]
        fault: Vec<String>,
    },
    /// Print `present`, or `removed` while the device is hot-removed.
    Present,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Some(Cmd::Ctl { socket, op }) => ctl(socket, op),
        None => match (cli.socket, cli.vports, cli.wire) {
            (Some(socket), Some(vports), Some(wire)) => {
                daemon(socket, vports, wire, cli.queues, !cli.allow_any_source_mac)
            }
            // clap requires all three without a subcommand.
            _ => Err("--socket, --vports and --wire are required".to_owned()),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mana-emu: {e}");
            ExitCode::FAILURE
        }
    }
}

fn daemon(
    socket: PathBuf,
    vports: u16,
    wire: WireSpec,
    queues: u32,
    source_mac_check: bool,
) -> Result<(), String> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // The first signal sets `stop`; a second one, with `stop` already set, exits at once.
        signal_hook::flag::register_conditional_shutdown(sig, 1, stop.clone())
            .and_then(|_| signal_hook::flag::register(sig, stop.clone()))
            .map_err(|e| format!("cannot handle signal {sig}: {e}"))?;
    }
    let mut cfg = DeviceConfig::new(vports, wire);
    cfg.max_queues = queues;
    cfg.source_mac_check = source_mac_check;
    let described = format!("{} vports, {} queues each, wire {:?}", vports, queues, cfg.wire);
    let device = Arc::new(Device::start(cfg).map_err(|e| format!("cannot start the device: {e}"))?);
    let mut server = Server::bind(device, &socket).map_err(|e| e.to_string())?;
    eprintln!("mana-emu: serving {described} on {}", socket.display());
    let served = server.run(&stop).map_err(|e| e.to_string());
    drop(server);
    eprintln!("mana-emu: stopped");
    served
}

fn ctl(socket: PathBuf, op: CtlOp) -> Result<(), String> {
    // Check the fault words before connecting: the error names what is wrong.
    if let CtlOp::Inject { fault } = &op {
        fault.join(" ").parse::<Fault>().map_err(|e| format!("inject: {e}"))?;
    }
    let client = Client::connect(&socket).map_err(|e| e.to_string())?;
    match op {
        CtlOp::Stats => println!("{}", client.stats_json().map_err(|e| e.to_string())?),
        CtlOp::Inject { fault } => client.inject(&fault.join(" ")).map_err(|e| e.to_string())?,
        CtlOp::Present => {
            let p = client.present().map_err(|e| e.to_string())?;
            println!("{}", if p { "present" } else { "removed" });
        }
    }
    Ok(())
}

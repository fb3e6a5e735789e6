//! testpmd: see the library ([`testpmd`]) and `testpmd --help`.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use testpmd::app::{App, Control, run_batch, run_interactive};
use testpmd::opts::{Parsed, parse_args, usage};

fn main() -> ExitCode {
    let cfg = match parse_args(std::env::args().skip(1)) {
        Ok(Parsed::Run(c)) => *c,
        Ok(Parsed::Help) => {
            print!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("testpmd: {e}\nTry 'testpmd --help'.");
            return ExitCode::FAILURE;
        }
    };
    let ctl = Control {
        sigint: Arc::new(AtomicBool::new(false)),
        sigterm: Arc::new(AtomicBool::new(false)),
        deadline: cfg.duration.map(|d| Instant::now() + d),
    };
    for (sig, flag) in
        [(signal_hook::consts::SIGINT, &ctl.sigint), (signal_hook::consts::SIGTERM, &ctl.sigterm)]
    {
        // The first signal sets the flag (a clean stop); a second one, with the flag set, exits
        // at once.
        let r = signal_hook::flag::register_conditional_shutdown(sig, 130, flag.clone())
            .and_then(|_| signal_hook::flag::register(sig, flag.clone()));
        if let Err(e) = r {
            eprintln!("testpmd: cannot handle signal {sig}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let interactive = cfg.interactive;
    let mut app = match App::setup(cfg) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("testpmd: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ran = if interactive { run_interactive(&mut app, &ctl) } else { run_batch(&mut app, &ctl) };
    let closed = app.shutdown();
    match ran.and(closed) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("testpmd: error: {e}");
            ExitCode::FAILURE
        }
    }
}

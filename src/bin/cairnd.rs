//! `cairnd`: the Cairn storage daemon. With no arguments it serves
//! ./cairn-data on 127.0.0.1:7878 with durability `batch`, creating the
//! directory and an admin token on first start.
//!
//! Settings come from, in order of precedence: flags, `CAIRN_*` environment
//! variables, the `--config` TOML file, the defaults (`cairn_server::daemon::config`).

#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cairn_server::daemon::config::{resolve, Args};
use cairn_server::daemon::start;
use clap::Parser;

fn main() -> ExitCode {
    let a = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: log files and journald get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).with_ansi(ansi).init();
    let run = || -> anyhow::Result<()> {
        let cfg = resolve(&a)?;
        let shutdown = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(sig, shutdown.clone())?;
        }
        let running = start(cfg, shutdown.clone())?;
        println!("cairnd listening on {}", running.addr);
        if let Some(a) = running.http_addr {
            println!("cairnd HTTP API (CloudTrail) listening on {a}");
        }
        while !shutdown.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
        }
        running.stop()
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("cairnd: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

//! `cairnd`: the Cairn storage daemon. With no arguments it serves
//! ./cairn-data on 127.0.0.1:7878 with durability `batch`, creating the
//! directory and an admin token on first start.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cairn_server::server::{start, Config};
use clap::Parser;

/// Cairn's storage daemon: agents append audit events over TCP, people query with `cairn --server`.
#[derive(Parser)]
#[command(
    name = "cairnd",
    version,
    after_help = "Stops gracefully on SIGINT or SIGTERM: in-flight appends finish, the store is fsynced and closed."
)]
struct Args {
    /// The data directory (created if missing).
    #[arg(long, env = "CAIRN_DATA_DIR", default_value = "./cairn-data")]
    data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, env = "CAIRN_LISTEN", default_value = "127.0.0.1:7878")]
    listen: String,
    /// When appends are acknowledged: always, batch (group commit), never.
    #[arg(long, env = "CAIRN_DURABILITY", default_value = "batch", value_parser = ["always", "batch", "never"])]
    durability: String,
    /// Accept plaintext connections on a non-loopback address (no TLS yet).
    #[arg(long, env = "CAIRN_INSECURE")]
    insecure: bool,
    /// Most simultaneous connections.
    #[arg(long, env = "CAIRN_CONNECTIONS_MAX", default_value_t = 256)]
    connections_max: usize,
    /// Close connections idle this many seconds.
    #[arg(long, env = "CAIRN_IDLE_TIMEOUT_SECS", default_value_t = 300)]
    idle_timeout_secs: u64,
    /// Largest frame accepted, in bytes.
    #[arg(long, env = "CAIRN_FRAME_BYTES_MAX", default_value_t = cairn_server::protocol::FRAME_BYTES_DEFAULT)]
    frame_bytes_max: u32,
}

fn main() -> ExitCode {
    let a = Args::parse();
    let run = || -> anyhow::Result<()> {
        let shutdown = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(sig, shutdown.clone())?;
        }
        let cfg = Config {
            data_dir: a.data_dir.clone(),
            listen: a.listen.clone(),
            durability: a.durability.parse()?,
            frame_bytes_max: a.frame_bytes_max,
            connections_max: a.connections_max,
            idle_timeout: Duration::from_secs(a.idle_timeout_secs),
            insecure: a.insecure,
        };
        let running = start(cfg, shutdown.clone())?;
        println!("cairnd listening on {}", running.addr);
        while !shutdown.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
        }
        running.stop()
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cairnd: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

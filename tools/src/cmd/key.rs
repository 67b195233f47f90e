//! `cairn key`: the store's signing keys (export the public key, rotate).

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use super::Global;

/// The store's signing keys: export the public key, rotate.
#[derive(clap::Args)]
pub struct KeyArgs {
    #[command(subcommand)]
    pub cmd: KeyCmd,
}

impl KeyArgs {
    pub fn run(&self, g: &Global) -> Result<ExitCode> {
        let mut backend = g.open_backend()?;
        let keys = match &self.cmd {
            KeyCmd::Export { all } => {
                let keys = backend.public_keys()?;
                if *all {
                    keys
                } else {
                    keys.last().cloned().into_iter().collect()
                }
            }
            KeyCmd::Rotate => {
                let keys = backend.rotate_key()?;
                eprintln!(
                    "cairn: the store now signs with a new key; older checkpoints verify with the earlier keys (cairn key export --all)"
                );
                keys.last().cloned().into_iter().collect()
            }
        };
        backend.close()?;
        for k in keys {
            println!("{k}");
        }
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(Subcommand)]
pub enum KeyCmd {
    /// Print the store's public key (NAME+KEYID+BASE64, the signed-note
    /// verifier format): give it to auditors for verify-proof and verify.
    Export {
        /// Every key the store has signed with, oldest first (after rotations).
        #[arg(long)]
        all: bool,
    },
    /// Switch to a new signing key. Checkpoints signed before stay
    /// verifiable with the old public key (export --all lists both); a
    /// checkpoint is signed with the new key at once.
    Rotate,
}

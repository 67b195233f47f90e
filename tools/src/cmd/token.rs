//! `cairn token`: access tokens of a cairnd server.

use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Subcommand;

use super::Global;
use crate::backend::Backend;

/// Manage access tokens of a cairnd server (admin token required).
#[derive(clap::Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub cmd: TokenCmd,
}

impl TokenArgs {
    pub fn run(&self, g: &Global) -> Result<ExitCode> {
        let TokenCmd::Create { role, name } = &self.cmd;
        let role = cairn_server::protocol::Role::parse(role).ok_or_else(|| anyhow::anyhow!("unknown role {role}"))?;
        let Backend::Remote { mut client, .. } = g.open_backend()? else {
            bail!("tokens belong to a cairnd server: give --server ADDR");
        };
        println!("{}", client.create_token(role, name)?);
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(Subcommand)]
pub enum TokenCmd {
    /// Issue a token: `ingest` can only append, `read` can only query, `admin` can do both and manage tokens.
    Create {
        #[arg(long, value_parser = ["ingest", "read", "admin"])]
        role: String,
        /// A label kept with the token's hash.
        #[arg(long, default_value = "")]
        name: String,
    },
}

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
        let TokenCmd::Create { role, name, aws } = &self.cmd;
        let role = cairn_server::protocol::Role::parse(role).ok_or_else(|| anyhow::anyhow!("unknown role {role}"))?;
        let Backend::Remote { mut client, .. } = g.open_backend()? else {
            bail!("tokens belong to a cairnd server: give --server ADDR");
        };
        if *aws {
            let (id, secret) = client.create_aws_key(role, name)?;
            // The shape of `aws iam create-access-key`'s answer, and the
            // lines an AWS credentials file takes.
            println!("aws_access_key_id = {id}");
            println!("aws_secret_access_key = {secret}");
            eprintln!("The secret is shown only now: the server keeps key material derived from it. Put both lines under a profile in ~/.aws/credentials, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.");
        } else {
            println!("{}", client.create_token(role, name)?);
        }
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(Subcommand)]
pub enum TokenCmd {
    /// Issue a token: `ingest` can only append, `read` can only query, `admin` can do both and manage tokens.
    ///
    /// With --aws, an AWS access key pair for cairnd's CloudTrail-compatible
    /// HTTP API (cairnd --http-listen) instead: point the AWS CLI or an SDK
    /// at it with --endpoint-url and these credentials, e.g.
    ///
    ///   cairn --server 127.0.0.1:7878 token create --role read --aws --name analyst
    ///   aws cloudtrail lookup-events --endpoint-url http://127.0.0.1:7879 --region us-east-1
    Create {
        #[arg(long, value_parser = ["ingest", "read", "admin"])]
        role: String,
        /// A label kept with the token's hash.
        #[arg(long, default_value = "")]
        name: String,
        /// Issue an AWS access key id and secret (SigV4) instead of a token.
        #[arg(long)]
        aws: bool,
    },
}

//! `cairn channel`: the channels PutAuditEvents sends to (a cairnd server's
//! CloudTrail-compatible HTTP API).

use std::process::ExitCode;

use anyhow::{bail, Result};
use cairn_server::protocol::WireChannel;
use clap::Subcommand;

use super::Global;
use crate::backend::Backend;

/// Manage the channels of a cairnd server's PutAuditEvents (cairnd --http-listen).
///
/// A channel receives events from outside AWS sent with cloudtrail-data's
/// PutAuditEvents (boto3 `put_audit_events`, `aws cloudtrail-data
/// put-audit-events`), stored as CloudTrail Lake stores them.
#[derive(clap::Args)]
pub struct ChannelArgs {
    #[command(subcommand)]
    pub cmd: ChannelCmd,
}

#[derive(Subcommand)]
pub enum ChannelCmd {
    /// Make a channel (admin token); prints its ARN, which senders pass as channelArn.
    ///
    /// Example:
    ///   cairn --server 127.0.0.1:7878 channel create door-logs --external-id site-7 --allow CAIRNK6Q...
    Create {
        /// 3 to 128 of a-z, A-Z, 0-9, '.', '_', '-'.
        name: String,
        /// Senders must pass this as PutAuditEvents' externalId.
        #[arg(long)]
        external_id: Option<String>,
        /// An AWS access key id (from `cairn token create --aws`) allowed to
        /// send; repeat it. None: any ingest or admin key.
        #[arg(long = "allow", value_name = "ACCESS_KEY_ID")]
        allow: Vec<String>,
        /// Accept only events whose recipientAccountId is this 12-digit account (and name it in the ARN).
        #[arg(long)]
        account_id: Option<String>,
        /// The region in the ARN and in stored events' awsRegion [default: the server's --http-region, or us-east-1].
        #[arg(long)]
        region: Option<String>,
    },
    /// List the channels.
    List {
        /// json prints every field.
        #[arg(long, default_value = "table", value_parser = ["table", "json"])]
        output: String,
    },
}

fn json(c: &WireChannel) -> serde_json::Value {
    serde_json::json!({
        "ChannelArn": c.arn, "Name": c.name, "Source": c.source, "ExternalId": c.external_id,
        "AllowedAccessKeyIds": c.allowed_keys, "AccountId": c.account_id, "Region": c.region,
        "Created": cairn_engine::event::format_event_time(c.created_ms),
    })
}

impl ChannelArgs {
    pub fn run(&self, g: &Global) -> Result<ExitCode> {
        let Backend::Remote { mut client, .. } = g.open_backend()? else {
            bail!("channels belong to a cairnd server: give --server ADDR");
        };
        match &self.cmd {
            ChannelCmd::Create { name, external_id, allow, account_id, region } => {
                let c = client.create_channel(name, external_id.clone(), allow.clone(), account_id.clone(), region.clone())?;
                println!("{}", c.arn);
            }
            ChannelCmd::List { output } => {
                let list = client.list_channels()?;
                if output == "json" {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&serde_json::json!({"Channels": list.iter().map(json).collect::<Vec<_>>()}))?
                    );
                } else {
                    for c in &list {
                        let who = if c.allowed_keys.is_empty() { "any ingest key".to_string() } else { c.allowed_keys.join(",") };
                        println!(
                            "{:<24} {} (senders: {who}{})",
                            c.name,
                            c.arn,
                            if c.external_id.is_some() { "; external ID required" } else { "" }
                        );
                    }
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

//! `cairn get`: every stored record with an eventID, byte-exact.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Result;

use super::Global;

/// Print every stored record with this eventID (or UID), byte-exact, one per line.
///
/// Exit status 1 if there is none. CloudTrail may deliver the same
/// eventID more than once, and a correction shares the original's id,
/// so several records can be printed, in the order they were stored.
#[derive(clap::Args)]
pub struct GetArgs {
    pub event_id: String,
}

impl GetArgs {
    pub fn run(&self, g: &Global) -> Result<ExitCode> {
        let Self { event_id } = self;
        let found = g.open_backend()?.get(event_id)?;
        let mut out = io::stdout().lock();
        for e in &found {
            out.write_all(&e.record)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        if found.is_empty() {
            eprintln!("cairn: no event with eventID {event_id:?}");
            return Ok(ExitCode::from(1));
        }
        Ok(ExitCode::SUCCESS)
    }
}

//! `cairn checkpoint`, `proof`, `verify-proof`, `consistency` and
//! `verify`: signed checkpoints, per-event proofs checked offline, and the
//! whole-store check (the signing keys: `key.rs`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use cairn_engine::checkpoint::bundle::{ConsistencyBundle, ProofBundle};
use cairn_engine::verify::{verify_dir_locked, Report, VerifyOptions};
use cairn_engine::{SignedCheckpoint, Verifier};

use super::{Global, Output};
use crate::backend::Backend;
use crate::progress::Progress;

/// Public keys from `--public-key` values: each is a key
/// (`NAME+KEYID+BASE64`) or a file holding one key per line.
pub fn read_public_keys(args: &[String]) -> Result<Vec<Verifier>> {
    let mut out = Vec::new();
    for a in args {
        let text = if Path::new(a).is_file() {
            std::fs::read_to_string(a).with_context(|| format!("reading public key file {a}"))?
        } else {
            a.clone()
        };
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            out.push(Verifier::parse(line).with_context(|| format!("--public-key {a}"))?);
        }
    }
    if out.is_empty() && !args.is_empty() {
        bail!("--public-key names no key");
    }
    Ok(out)
}

/// A signed checkpoint from a file.
pub fn read_checkpoint(path: &Path) -> Result<SignedCheckpoint> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading checkpoint {}", path.display()))?;
    SignedCheckpoint::parse(&text).with_context(|| format!("{} is not a signed checkpoint", path.display()))
}

/// Writes `text` to `out`, or stdout.
pub fn write_out(out: Option<&Path>, text: &str) -> Result<()> {
    match out {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display())),
        None => {
            let mut o = std::io::stdout().lock();
            o.write_all(text.as_bytes())?;
            o.flush()?;
            Ok(())
        }
    }
}

/// `cairn proof`: one bundle per matching event. Several events share an
/// eventID only when their records differ; with `--out` each gets its own
/// file (`FILE`, `FILE.2`, ...).
pub fn proof(
    backend: &mut Backend,
    event_id: Option<&str>,
    seq: Option<u64>,
    checkpoint: Option<&Path>,
    out: Option<&Path>,
) -> Result<usize> {
    let against = checkpoint.map(std::fs::read_to_string).transpose().context("reading --checkpoint")?;
    let bundles = backend.prove(seq, event_id, against.as_deref())?;
    for (i, b) in bundles.iter().enumerate() {
        let path: Option<PathBuf> = out.map(|p| if i == 0 { p.to_path_buf() } else { PathBuf::from(format!("{}.{}", p.display(), i + 1)) });
        write_out(path.as_deref(), &format!("{b}\n"))?;
    }
    Ok(bundles.len())
}

/// `cairn verify-proof`: true when the bundle checks out.
pub fn verify_proof(bundle: &Path, keys: &[Verifier]) -> Result<std::result::Result<String, String>> {
    let text = std::fs::read_to_string(bundle).with_context(|| format!("reading {}", bundle.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", bundle.display()))?;
    let format = v.get("format").and_then(|f| f.as_str()).unwrap_or_default().to_string();
    if format.starts_with("cairn-consistency-proof/") {
        let b: ConsistencyBundle =
            serde_json::from_value(v).with_context(|| format!("{} is not a consistency bundle", bundle.display()))?;
        return Ok(b.verify(keys).map(|ok| {
            format!("consistent: log {} at size {} is a prefix of size {} (signed by {})", ok.origin, b.old_size, b.new_size, ok.key)
        }));
    }
    let b: ProofBundle = serde_json::from_value(v).with_context(|| format!("{} is not a proof bundle", bundle.display()))?;
    Ok(b.verify(keys).map(|ok| {
        let id = cairn_engine::parse_event(b.record.as_bytes(), cairn_engine::limits::RECORD_BYTES_MAX)
            .ok()
            .and_then(|e| e.event_id.map(|c| c.into_owned()))
            .unwrap_or_else(|| "(no eventID)".into());
        format!("valid: event {id} (seq {}) is in log {} at tree size {} (checkpoint signed by {})", b.seq, ok.origin, ok.tree_size, ok.key)
    }))
}

/// `cairn verify` on a local data directory: takes its lock (a running
/// cairnd holds it: verify through the server then), reads every file.
pub fn verify_local(dir: &Path, opts: &VerifyOptions, quiet: bool) -> Result<(Report, f64)> {
    if !dir.join("MANIFEST").exists() && !dir.join("wal").exists() {
        bail!("{} is not a cairn data directory (no MANIFEST or wal/)", dir.display());
    }
    let started = std::time::Instant::now();
    // The bar appears with the first progress, after the lock is taken: a
    // directory a server holds gets its error alone.
    let mut bar: Option<Progress> = None;
    let report = verify_dir_locked(dir, opts, &mut |done, total| {
        bar.get_or_insert_with(|| Progress::bytes("verifying", total, quiet)).set_position(done);
    })
    .map_err(|e| match e {
        cairn_engine::Error::Locked { pid, .. } => {
            anyhow::anyhow!("{} is in use by pid {pid} (a running cairnd?): verify it through the server with --server ADDR", dir.display())
        }
        other => other.into(),
    })?;
    if let Some(bar) = bar {
        bar.finish();
    }
    Ok((report, started.elapsed().as_secs_f64()))
}

/// Prints a verification report; returns whether the store verified.
pub fn print_report(r: &Report, seconds: f64, json: bool) -> Result<bool> {
    let mut out = std::io::stdout().lock();
    if json {
        let v = serde_json::json!({
            "ok": r.ok(),
            "events": r.events,
            "segments": r.segments,
            "record_bytes": r.record_bytes,
            "tree_size": r.tree_size,
            "root": r.root.map(hex::encode),
            "history_checkpoints": r.history_checkpoints,
            "given_checkpoints": r.external_checkpoints,
            "trusted_keys": r.trusted_keys,
            "pruned_below": r.pruned_below,
            "pruned_checkpoints": r.pruned_checkpoints,
            "seconds": seconds,
            "problems": r.problems.iter().map(|p| serde_json::json!({"kind": p.kind.name(), "what": p.what})).collect::<Vec<_>>(),
            "problems_omitted": r.problems_omitted,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(r.ok());
    }
    for p in &r.problems {
        writeln!(out, "{:<10}  {}", p.kind.name().to_uppercase(), p.what)?;
    }
    let rate = r.record_bytes as f64 / seconds.max(1e-9) / 1e6;
    let keys = if r.trusted_keys {
        "the given public keys"
    } else {
        "the store's own key list (give --public-key to check against a key you trust)"
    };
    if r.pruned_below > 0 {
        writeln!(
            out,
            "pruned: seqs 0..{} were removed by retention (recorded in the manifest and the log; not damage){}",
            r.pruned_below,
            if r.pruned_checkpoints > 0 {
                format!("; {} checkpoints inside that range could not be recomputed", r.pruned_checkpoints)
            } else {
                String::new()
            }
        )?;
    }
    if r.ok() {
        writeln!(
            out,
            "ok: {} events in {} segments verified, root {} at size {}; {} history and {} given checkpoints match, signatures checked with {keys} ({:.1} s, {rate:.0} MB/s)",
            r.events,
            r.segments,
            r.root.map(hex::encode).unwrap_or_default(),
            r.tree_size,
            r.history_checkpoints,
            r.external_checkpoints,
            seconds
        )?;
    } else {
        let omitted = if r.problems_omitted > 0 { format!(" (the first {} listed)", r.problems.len()) } else { String::new() };
        writeln!(
            out,
            "FAILED: {} problem(s) found in {} events and {} segments{omitted}",
            r.problems.len() as u64 + r.problems_omitted,
            r.events,
            r.segments
        )?;
    }
    Ok(r.ok())
}

/// Sign a checkpoint of everything stored and print the newest one.
///
/// A checkpoint is the tree head (origin, tree size, root hash) in the
/// C2SP tlog-checkpoint format, signed with the store's Ed25519 key as a
/// C2SP signed note. Save it somewhere the store cannot reach: later,
/// `cairn verify --checkpoint FILE` and `cairn consistency FILE` prove
/// that the store still holds exactly what it held then.
#[derive(clap::Args)]
pub struct CheckpointArgs {
    /// Write it to this file instead of stdout.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

impl CheckpointArgs {
    pub fn run(&self, g: &Global) -> Result<ExitCode> {
        let Self { output } = self;
        let mut backend = g.open_backend()?;
        let note = backend.checkpoint()?;
        backend.close()?;
        let Some(note) = note else {
            eprintln!("cairn: the store is empty: there is no checkpoint yet");
            return Ok(ExitCode::from(1));
        };
        write_out(output.as_deref(), &note)?;
        Ok(ExitCode::SUCCESS)
    }
}

/// Write a self-contained inclusion proof of an event (JSON).
///
/// The bundle holds the stored record, its seq and ingest time, its
/// Merkle inclusion path and the signed checkpoint it leads to:
/// `cairn verify-proof BUNDLE --public-key KEY` checks it with nothing
/// else. Example: cairn proof 3f1e...-eventid --out proof.json
#[derive(clap::Args)]
pub struct ProofArgs {
    /// The eventID (every stored record with it gets a bundle).
    #[arg(required_unless_present = "seq", conflicts_with = "seq")]
    pub event_id: Option<String>,
    /// Prove the event at this seq instead.
    #[arg(long)]
    pub seq: Option<u64>,
    /// Prove against this saved checkpoint (default: a fresh one).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Write the bundle here (more bundles: FILE.2, FILE.3, ...).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl ProofArgs {
    pub fn run(&self, g: &Global) -> Result<ExitCode> {
        let Self { event_id, seq, checkpoint, out } = self;
        let mut backend = g.open_backend()?;
        let n = proof(&mut backend, event_id.as_deref(), *seq, checkpoint.as_deref(), out.as_deref())?;
        backend.close()?;
        if n > 1 && !g.quiet {
            eprintln!("cairn: {n} stored records have this eventID: one bundle each");
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Check a proof bundle (from `proof` or `consistency`) offline.
///
/// Needs only the bundle and the store's public key: recomputes the
/// record's leaf hash, walks the inclusion (or consistency) path to the
/// checkpoint's root, and checks the checkpoint's signature. Exit 0
/// valid, 1 invalid (with the reason).
#[derive(clap::Args)]
pub struct VerifyProofArgs {
    pub bundle: PathBuf,
    /// The store's public key (NAME+KEYID+BASE64) or a file of keys; repeatable.
    #[arg(long = "public-key", required = true)]
    pub public_key: Vec<String>,
}

impl VerifyProofArgs {
    pub fn run(&self) -> Result<ExitCode> {
        let Self { bundle, public_key } = self;
        let keys = read_public_keys(public_key)?;
        match verify_proof(bundle, &keys)? {
            Ok(msg) => {
                println!("{msg}");
                Ok(ExitCode::SUCCESS)
            }
            Err(why) => {
                println!("INVALID: {why}");
                Ok(ExitCode::from(1))
            }
        }
    }
}

/// Prove that an older checkpoint is a prefix of a newer one.
///
/// Asks the store for the RFC 9162 consistency proof from OLD to NEW
/// (default: a fresh checkpoint) and checks it: exit 0 if the store
/// only appended since OLD, 1 if it was rewritten. Writes the proof
/// bundle with --out (check it later with verify-proof).
#[derive(clap::Args)]
pub struct ConsistencyArgs {
    pub old: PathBuf,
    pub new: Option<PathBuf>,
    /// Check signatures with this key (default: the store's own keys).
    #[arg(long = "public-key")]
    pub public_key: Vec<String>,
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl ConsistencyArgs {
    pub fn run(&self, g: &Global) -> Result<ExitCode> {
        let Self { old, new, public_key, out } = self;
        let old_text = std::fs::read_to_string(old).with_context(|| format!("reading {}", old.display()))?;
        let new_text = new.as_ref().map(|n| std::fs::read_to_string(n).with_context(|| format!("reading {}", n.display()))).transpose()?;
        let mut backend = g.open_backend()?;
        let mut keys = read_public_keys(public_key)?;
        if keys.is_empty() {
            keys = backend.public_keys()?.iter().map(|k| Verifier::parse(k)).collect::<Result<_, _>>()?;
        }
        let bundle = match backend.consistency(&old_text, new_text.as_deref()) {
            Ok(b) => b,
            Err(e) => {
                println!("INCONSISTENT: {e:#}");
                return Ok(ExitCode::from(1));
            }
        };
        backend.close()?;
        if let Some(p) = out {
            write_out(Some(p), &format!("{bundle}\n"))?;
        }
        let b: ConsistencyBundle = serde_json::from_str(&bundle)?;
        match b.verify(&keys) {
            Ok(v) => {
                println!("consistent: log {} at size {} is a prefix of size {} (signed by {})", v.origin, b.old_size, b.new_size, v.key);
                Ok(ExitCode::SUCCESS)
            }
            Err(why) => {
                println!("INCONSISTENT: {why}");
                Ok(ExitCode::from(1))
            }
        }
    }
}

/// Recompute and check the whole store; name anything wrong.
///
/// Recomputes every leaf from the stored records, the tree, every tile,
/// each segment's roots and its link in the hash chain, checks every
/// signed checkpoint in the history and every --checkpoint you saved,
/// and prints each problem (which seqs, segment, checkpoint, and what
/// kind of damage) with exit 1, or one line with exit 0. With --data-dir
/// the store must not be open elsewhere; with --server the daemon
/// verifies its store while it keeps serving.
#[derive(clap::Args)]
pub struct VerifyArgs {
    /// A checkpoint saved earlier (e.g. by `cairn checkpoint`); repeatable.
    #[arg(long)]
    pub checkpoint: Vec<PathBuf>,
    /// Check every signature against this key (or file of keys) instead
    /// of the store's own list; repeatable.
    #[arg(long = "public-key")]
    pub public_key: Vec<String>,
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

impl VerifyArgs {
    pub fn run(&self, g: &Global) -> Result<ExitCode> {
        let Self { checkpoint, public_key, output } = self;
        let checkpoints = checkpoint.iter().map(|p| read_checkpoint(p)).collect::<Result<Vec<_>>>()?;
        let keys = read_public_keys(public_key)?;
        let quiet = g.quiet || matches!(output, Output::Json);
        let (report, seconds) = match &g.server {
            None => {
                let opts = VerifyOptions { checkpoints, public_keys: keys };
                verify_local(&g.data_dir(), &opts, quiet)?
            }
            Some(_) => {
                let mut backend = g.open_backend()?;
                let started = std::time::Instant::now();
                let bar = Progress::bytes("verifying", 0, quiet);
                let mut sized = false;
                let opts = VerifyOptions { checkpoints, public_keys: keys };
                let report = backend.verify(&opts, &mut |done, total| {
                    if !sized {
                        bar.set_length(total);
                        sized = true;
                    }
                    bar.set_position(done);
                })?;
                bar.finish();
                (report, started.elapsed().as_secs_f64())
            }
        };
        let ok = print_report(&report, seconds, matches!(output, Output::Json))?;
        Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
    }
}

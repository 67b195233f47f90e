//! A fuzzer that runs on stable Rust inside `cargo test`: every decoder of
//! bytes from disk or the network gets a target (targets.rs) that mutates
//! real inputs (golden fixtures, real CloudTrail records, protocol frames)
//! and checks that the decoder never panics and never asks for more
//! memory than a bound, whatever the bytes.
//!
//! - A run is deterministic: CAIRN_FUZZ_SEED (default fixed; `random` picks
//!   one and prints it) seeds every target; CAIRN_FUZZ_ITERS sets every
//!   target's iteration count (CI runs each target's default, a few
//!   seconds). A long local run:
//!   `CAIRN_FUZZ_ITERS=200000 CAIRN_FUZZ_SEED=random cargo test --release --test it fuzz_`
//! - Every input in `tests/fuzz-corpus/<target>/` is replayed first, on
//!   every run: the regression corpus. A panicking input is saved there
//!   (commit it with the fix).
//! - Memory: while a target runs, the test binary's allocator refuses any
//!   single allocation larger than the target's cap, which aborts the
//!   process ("memory allocation of N bytes failed"); the input being run
//!   is always in `target/fuzz-current/<target>` for that case.

pub mod fixup;
pub mod targets;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// One input to mutate: `label` tells the check what it is (a file's
/// name, a message type).
#[derive(Clone)]
pub struct Seed {
    pub label: String,
    pub bytes: Vec<u8>,
}

impl Seed {
    pub fn new(label: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Seed {
        Seed { label: label.into(), bytes: bytes.into() }
    }
}

/// A fuzz target: its seeds, its default iteration count, and the largest
/// single allocation its decoder may make for one input.
pub struct Target {
    pub name: &'static str,
    pub seeds: Vec<Seed>,
    pub iterations: u64,
    pub alloc_max: usize,
    /// Recomputes the checksums of a mutated input (applied to every other
    /// mutation), so the fuzzer reaches past them.
    pub reseal: Option<fn(&str, &mut [u8])>,
}

/// Runs the corpus, the seeds and then mutations of the seeds through
/// `check`, failing on the first panic with the input saved.
pub fn run(t: Target, check: impl Fn(&str, &[u8])) {
    assert!(!t.seeds.is_empty(), "fuzz target {} has no seeds", t.name);
    let corpus = corpus_dir(t.name);
    let mut replayed = 0;
    if let Ok(dir) = std::fs::read_dir(&corpus) {
        let mut files: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for f in files {
            let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            let label = name.split("--").next().unwrap_or_default().replace('~', "/");
            let bytes = std::fs::read(&f).unwrap();
            run_one(&t, &label, &bytes, &format!("corpus file {}", f.display()), &check);
            replayed += 1;
        }
    }
    for s in &t.seeds {
        run_one(&t, &s.label, &s.bytes, &format!("seed {}", s.label), &check);
    }
    let iterations = std::env::var("CAIRN_FUZZ_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(t.iterations);
    let seed = run_seed() ^ fnv(t.name.as_bytes());
    let mut rng = Rng(seed | 1);
    for i in 0..iterations {
        let s = &t.seeds[rng.below(t.seeds.len() as u64) as usize];
        let mut input = mutate(&mut rng, &s.bytes, &t.seeds);
        if let Some(reseal) = t.reseal {
            if rng.below(2) == 0 {
                reseal(&s.label, &mut input);
            }
        }
        run_one(&t, &s.label, &input, &format!("iteration {i} (CAIRN_FUZZ_SEED={})", run_seed()), &check);
    }
    let _ = replayed;
}

fn run_one(t: &Target, label: &str, input: &[u8], origin: &str, check: &impl Fn(&str, &[u8])) {
    let current = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-current");
    let _ = std::fs::create_dir_all(&current);
    let _ = std::fs::write(current.join(t.name), [label.as_bytes(), b"\n", input].concat());
    let result = {
        let _cap = AllocCap::set(t.alloc_max);
        catch_unwind(AssertUnwindSafe(|| check(label, input)))
    };
    if let Err(panic) = result {
        let msg =
            panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
        let dir = corpus_dir(t.name);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{}--{:016x}", label.replace('/', "~"), fnv(input)));
        std::fs::write(&path, input).unwrap();
        panic!("fuzz target {}: {origin} panicked: {msg}\n  the input is saved as {} and is replayed by every run", t.name, path.display());
    }
}

fn corpus_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus").join(name)
}

/// This run's seed: CAIRN_FUZZ_SEED, `random`, or a fixed default.
fn run_seed() -> u64 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SEED.get_or_init(|| match std::env::var("CAIRN_FUZZ_SEED").ok().as_deref() {
        Some("random") => {
            let s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
            eprintln!("cairn fuzz: CAIRN_FUZZ_SEED={s}");
            s
        }
        Some(v) => v.parse().unwrap_or_else(|_| panic!("CAIRN_FUZZ_SEED must be a number or `random`, not {v:?}")),
        None => 0x5eed_ca12_0000_0013,
    })
}

pub fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| (h ^ u64::from(x)).wrapping_mul(0x100_0000_01b3))
}

/// xorshift64: small, fast, reproducible.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Integers that break length and count fields.
const INTERESTING: [u64; 14] =
    [0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x1_0000, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, u64::MAX, i64::MIN as u64];
/// Tokens that break text formats.
const TOKENS: [&[u8]; 16] = [
    b"\n",
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b"\\",
    b"\\u0000",
    b"99999999999999999999",
    b"-1",
    b"1e999",
    b"null",
    b"\xff",
    b"\0",
];

/// One to eight random edits of `base`: bit flips, bytes, interesting
/// integers (fixed width and LEB128), deletions, insertions, duplicated
/// ranges, truncation, splices with another seed, text tokens.
pub fn mutate(rng: &mut Rng, base: &[u8], seeds: &[Seed]) -> Vec<u8> {
    let mut b = base.to_vec();
    let edits = 1 + rng.below(8).min(rng.below(8));
    for _ in 0..edits {
        let len = b.len() as u64;
        let at = |rng: &mut Rng| rng.below(len.max(1)) as usize;
        match rng.below(11) {
            0 if len > 0 => {
                let i = at(rng);
                b[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = at(rng);
                b[i] = rng.next() as u8;
            }
            2 if len > 0 => {
                let i = at(rng);
                b[i] = [0, 1, 0x7f, 0x80, 0xff][rng.below(5) as usize];
            }
            3 if len > 0 => {
                let v = INTERESTING[rng.below(INTERESTING.len() as u64) as usize];
                let width = [1usize, 2, 4, 8][rng.below(4) as usize];
                let i = at(rng);
                let bytes = v.to_le_bytes();
                let n = width.min(b.len() - i);
                b[i..i + n].copy_from_slice(&bytes[..n]);
            }
            4 if len > 0 => {
                let i = at(rng);
                let n = 1 + rng.below(64.min(len - i as u64).max(1)) as usize;
                b.drain(i..(i + n).min(b.len()));
            }
            5 => {
                let i = at(rng).min(b.len());
                let n = 1 + rng.below(16) as usize;
                let extra: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                b.splice(i..i, extra);
            }
            6 if len > 1 => {
                let (i, j) = (at(rng), at(rng));
                let n = 1 + rng.below(256.min(len - i as u64)) as usize;
                let chunk = b[i..(i + n).min(b.len())].to_vec();
                b.splice(j..j, chunk);
            }
            7 if len > 0 => {
                let i = at(rng);
                b.truncate(i);
            }
            8 => {
                let other = &seeds[rng.below(seeds.len() as u64) as usize].bytes;
                if !other.is_empty() {
                    let i = at(rng).min(b.len());
                    let j = rng.below(other.len() as u64) as usize;
                    b.truncate(i);
                    b.extend_from_slice(&other[j..]);
                }
            }
            9 => {
                let mut v = INTERESTING[rng.below(INTERESTING.len() as u64) as usize];
                let mut leb = Vec::new();
                loop {
                    let byte = (v & 0x7f) as u8;
                    v >>= 7;
                    if v == 0 {
                        leb.push(byte);
                        break;
                    }
                    leb.push(byte | 0x80);
                }
                let i = at(rng).min(b.len());
                let end = (i + leb.len()).min(b.len());
                b.splice(i..end, leb);
            }
            _ => {
                let t = TOKENS[rng.below(TOKENS.len() as u64) as usize];
                let i = at(rng).min(b.len());
                b.splice(i..i, t.iter().copied());
            }
        }
    }
    b
}

thread_local! {
    /// The largest single allocation this thread may make (fuzzing only).
    static CAP: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Sets this thread's allocation cap until dropped.
struct AllocCap(usize);

impl AllocCap {
    fn set(max: usize) -> AllocCap {
        AllocCap(CAP.with(|c| c.replace(max)))
    }
}

impl Drop for AllocCap {
    fn drop(&mut self) {
        CAP.with(|c| c.set(self.0));
    }
}

fn allowed(size: usize) -> bool {
    CAP.try_with(|c| size <= c.get()).unwrap_or(true)
}

fn refuse() -> *mut u8 {
    // No allocation here: a static message straight to the real stderr.
    let _ = std::io::stderr()
        .write_all(b"\ncairn fuzz: a decoder asked for more memory than the target's cap; the input is in target/fuzz-current/\n");
    std::ptr::null_mut()
}

/// The test binary's allocator: the system's, with the fuzzing thread's
/// cap on single allocations. (A refused allocation aborts, unless the code
/// asked fallibly with `try_reserve`, which then gets an error.)
pub struct CappedAlloc;

// SAFETY: every call is forwarded to `System` with the same arguments, or
// answered with null (an allocation failure, which callers must handle).
unsafe impl GlobalAlloc for CappedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if allowed(layout.size()) {
            System.alloc(layout)
        } else {
            refuse()
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if allowed(layout.size()) {
            System.alloc_zeroed(layout)
        } else {
            refuse()
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if allowed(new_size) {
            System.realloc(ptr, layout, new_size)
        } else {
            refuse()
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

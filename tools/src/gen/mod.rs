//! Deterministic, realistic synthetic CloudTrail records, for `cairn gen`,
//! `cairn bench`, the benchmarks and the tests.
//!
//! Records follow real CloudTrail closely: the same key order; some 135
//! real (eventSource, eventName) pairs across 18 services with a
//! skewed mix (Describe/Get/List, `AssumeRole` and `Decrypt` dominate, writes
//! are rare); five accounts; IAM users, assumed roles, root and AWS-service
//! principals, a few of them very active, each with its own user agents and
//! source addresses; access keys that stay stable for a user or a one-hour
//! role session (as real ones do, which matters to index sizes); ~3% errors;
//! ~0.5% console sign-ins; ~2.5% S3 object data events; sizes of mostly 1-2 KB
//! with a long tail to ~20 KB; and ~2% of event times 1-300 s late, because
//! CloudTrail delivers slightly out of order. [`GenOptions::record_bytes`]
//! pads records to a fixed size for throughput benchmarks.
//!
//! The output is a pure function of [`GenOptions`]: the PRNG is a
//! hand-written SplitMix64 and everything downstream of it is integer
//! arithmetic (no `ln`/`exp`/`powf`, whose last bits differ between libm
//! implementations), so a seed yields the same bytes on every platform and
//! with every version of every dependency.
//!
//! Records are written straight into the caller's buffer from static
//! templates (`$x` placeholders, see `Generator::placeholder`); a record
//! costs well under 2 µs and no heap allocation besides the buffer's growth.
//!
//! This is the `standard` profile. [`Profile::Diverse`] (`diverse.rs`) has
//! the character of a large organisation's trail instead: many more APIs,
//! short-lived sessions, varied parameter values; figures should be
//! measured on both.

pub mod diverse;

/// Which kind of trail to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Profile {
    /// 135 APIs over 18 services, a few dozen principals with stable keys,
    /// ~1.3 KB records (the profile Cairn's first figures were measured on).
    #[default]
    Standard,
    /// 293 APIs over 40 services (Zipf), short-lived sessions (~1,600 access
    /// keys, 900 addresses, 400 user agents per 50,000 events), varied
    /// parameter values, ~1.5 KB median records, 8% up to 10 minutes late.
    Diverse,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Standard => "standard",
            Profile::Diverse => "diverse",
        }
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenOptions {
    pub seed: u64,
    /// eventTime of the first event, unix milliseconds UTC.
    pub start_ms: i64,
    /// Mean events per second of eventTime progression (e.g. 50.0). Times
    /// advance by the mean interval with jitter. Not a positive finite
    /// number: 50.0.
    pub rate_per_sec: f64,
    /// When Some(n): pad records so their length is about n bytes (±10%),
    /// for benchmarks (`--record-bytes`); records never shrink below their
    /// natural size, and the natural long tail of 4-20 KB records is turned
    /// off so that sizes stay close to n. None: natural sizes. (Standard
    /// profile only.)
    pub record_bytes: Option<usize>,
    pub profile: Profile,
}

impl Default for GenOptions {
    fn default() -> Self {
        // 2026-01-01T00:00:00Z
        Self { seed: 1, start_ms: 1_767_225_600_000, rate_per_sec: 50.0, record_bytes: None, profile: Profile::Standard }
    }
}

// ---------------------------------------------------------------------------
// Randomness

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: a bijective 64-bit mixer, also used to
/// derive stable identifiers (access keys, resource ids) from names.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// SplitMix64 (Steele, Lea and Flood, 2014), written here rather than taken
/// from `rand`: `StdRng` explicitly may change its algorithm between
/// versions, and this generator's output must never change for a seed
/// (benchmarks, tests and demos compare runs).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix(self.0)
    }

    /// Uniform in `0..n` (multiply-shift; the bias is below n / 2^64).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `ppm` / 1,000,000.
    fn chance(&mut self, ppm: u64) -> bool {
        self.below(1_000_000) < ppm
    }

    /// An index below `n` skewed towards 0 (P(i) ~ ln(n / i) / n): pools of
    /// resources where a few are much busier than the rest.
    fn skew(&mut self, n: usize) -> usize {
        let m = self.below(n as u64) + 1;
        self.below(m) as usize
    }
}

/// A weighted choice among items, by binary search over cumulative weights.
struct Weighted {
    cum: Vec<u32>,
    items: Vec<u16>,
}

impl Weighted {
    fn new(pairs: impl IntoIterator<Item = (usize, u32)>) -> Self {
        let (mut cum, mut items, mut total) = (Vec::new(), Vec::new(), 0u32);
        for (i, w) in pairs {
            if w > 0 {
                total = total.checked_add(w).expect("generator weights sum past u32::MAX (a table's weights are too large)");
                cum.push(total);
                items.push(i as u16);
            }
        }
        Self { cum, items }
    }

    fn pick(&self, rng: &mut Rng) -> usize {
        let total = self.cum.last().copied().unwrap_or(0);
        let r = rng.below(u64::from(total)) as u32;
        let i = self.cum.partition_point(|&c| c <= r);
        self.items.get(i).copied().unwrap_or(0) as usize
    }
}

/// A stable 64-bit hash of (account, name): the seed of a principal's ids.
fn ident_hash(acct: usize, name: &str) -> u64 {
    // FNV-1a, then the mixer for avalanche.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ acct as u64;
    for &b in name.as_bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}

/// A stable resource id seed for (kind, account, index).
fn id64(kind: u8, acct: usize, idx: u64) -> u64 {
    mix((u64::from(kind) << 56 ^ (acct as u64) << 48 ^ idx).wrapping_mul(GOLDEN))
}

// ---------------------------------------------------------------------------
// Small writers (no formatting machinery: they run a few hundred times per
// record)

fn put(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
}

fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn put_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    put_u64(out, v.unsigned_abs());
}

/// Two decimal digits.
fn put2(out: &mut Vec<u8>, v: u32) {
    out.push(b'0' + (v / 10 % 10) as u8);
    out.push(b'0' + (v % 10) as u8);
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Two hex digits for each byte value.
const HEX_PAIRS: [[u8; 2]; 256] = {
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [HEX[i >> 4], HEX[i & 15]];
        i += 1;
    }
    t
};

/// Appends `N` bytes to fill in place. Writing into the vector directly
/// (one capacity check) rather than into a stack buffer that is then copied
/// avoids store-forwarding stalls, which made that copy the hot spot.
fn grow<const N: usize>(out: &mut Vec<u8>) -> &mut [u8; N] {
    let len = out.len();
    out.extend_from_slice(&[0u8; N]);
    let tail: &mut [u8] = &mut out[len..];
    tail.try_into().unwrap_or_else(|_| unreachable!("just appended {N} bytes"))
}

/// The 16 hex digits of `v` (the hot path of ids and padding).
fn put_hex16(out: &mut Vec<u8>, v: u64) {
    let buf = grow::<16>(out);
    for (pair, byte) in buf.chunks_exact_mut(2).zip(v.to_be_bytes()) {
        pair.copy_from_slice(&HEX_PAIRS[usize::from(byte)]);
    }
}

/// The low `digits` (at most 16) hex digits of `v`, most significant first.
fn put_hex(out: &mut Vec<u8>, v: u64, digits: usize) {
    let digits = digits.min(16);
    put_hex16(out, v << (4 * (16 - digits)));
    out.truncate(out.len() - (16 - digits));
}

/// `n` characters of `alphabet` derived from `seed`.
fn put_chars(out: &mut Vec<u8>, seed: u64, n: usize, alphabet: &[u8]) {
    let len = alphabet.len() as u64;
    // 64 bits give 12 base-32 or base-36 characters, 10 base-62 or base-64 ones.
    let per = if len > 36 { 10 } else { 12 };
    let mut i = 0;
    while i < n {
        let mut h = mix(seed.wrapping_add(i as u64).wrapping_mul(GOLDEN));
        let k = per.min(n - i);
        let start = out.len();
        for b in &mut grow::<12>(out)[..k] {
            // Digits of h read as a fraction in base `len`: a multiply per
            // character instead of a division.
            let x = u128::from(h) * u128::from(len);
            *b = alphabet[(x >> 64) as usize];
            h = x as u64;
        }
        out.truncate(start + k);
        i += k;
    }
}

/// AWS key and principal ids use base32 (A-Z, 2-7).
const B32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Version-4 UUID text (`xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`) from 128
/// random bits.
fn put_uuid(out: &mut Vec<u8>, a: u64, b: u64) {
    let buf = grow::<36>(out);
    let (a, b) = (a.to_be_bytes(), b.to_be_bytes());
    // (output offset, byte): 8-4-4-4-12 hex digits.
    let pairs = [(0, a[0]), (2, a[1]), (4, a[2]), (6, a[3]), (9, a[4]), (11, a[5]), (14, a[6]), (16, a[7])];
    for (at, byte) in pairs.into_iter().chain([(19, b[0]), (21, b[1]), (24, b[2]), (26, b[3])]) {
        buf[at..at + 2].copy_from_slice(&HEX_PAIRS[usize::from(byte)]);
    }
    for (i, byte) in b[4..].iter().enumerate() {
        buf[28 + 2 * i..30 + 2 * i].copy_from_slice(&HEX_PAIRS[usize::from(*byte)]);
    }
    for at in [8, 13, 18, 23] {
        buf[at] = b'-';
    }
    buf[14] = b'4';
    buf[19] = HEX[usize::from(8 | b[0] >> 6)];
}

// ---------------------------------------------------------------------------
// Time

/// (year, month, day) of a count of days since 1970-01-01, proleptic
/// Gregorian (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = (z - era * 146_097) as u32; // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let d = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    (i64::from(yoe) + era * 400 + i64::from(m <= 2), m, d)
}

/// Calendar fields of unix milliseconds: (y, mo, d, h, mi, s, ms).
fn fields(ms: i64) -> (i64, u32, u32, u32, u32, u32, u32) {
    let secs = ms.div_euclid(1_000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400) as u32;
    (y, mo, d, sod / 3_600, sod / 60 % 60, sod % 60, ms.rem_euclid(1_000) as u32)
}

fn put_year(out: &mut Vec<u8>, y: i64) {
    if (0..10_000).contains(&y) {
        put2(out, (y / 100) as u32);
        put2(out, (y % 100) as u32);
    } else {
        put_i64(out, y);
    }
}

/// `2026-01-01T00:00:00Z`: eventTime, creationDate.
fn put_iso(out: &mut Vec<u8>, ms: i64) {
    put_date_time(out, ms);
    out.push(b'Z');
}

/// `2026-01-01T00:00:00`, the part the ISO spellings share.
fn put_date_time(out: &mut Vec<u8>, ms: i64) {
    let (y, mo, d, h, mi, s, _) = fields(ms);
    put_year(out, y);
    out.push(b'-');
    put2(out, mo);
    out.push(b'-');
    put2(out, d);
    out.push(b'T');
    put2(out, h);
    out.push(b':');
    put2(out, mi);
    out.push(b':');
    put2(out, s);
}

/// `Jan 1, 2026, 1:00:00 AM`: how STS and IAM responses spell dates.
fn put_human(out: &mut Vec<u8>, ms: i64) {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (y, mo, d, h, mi, s, _) = fields(ms);
    put(out, MONTHS[(mo - 1) as usize]);
    out.push(b' ');
    put_u64(out, u64::from(d));
    put(out, ", ");
    put_i64(out, y);
    put(out, ", ");
    put_u64(out, u64::from(if h % 12 == 0 { 12 } else { h % 12 }));
    out.push(b':');
    put2(out, mi);
    out.push(b':');
    put2(out, s);
    put(out, if h < 12 { " AM" } else { " PM" });
}

/// `2026-01-01T00:00:00.000+0000`: Lambda's lastModified.
fn put_lambda_time(out: &mut Vec<u8>, ms: i64) {
    let frac = fields(ms).6;
    put_date_time(out, ms);
    out.push(b'.');
    out.push(b'0' + (frac / 100) as u8);
    put2(out, frac % 100);
    put(out, "+0000");
}

/// `2026/01/01`: S3 key prefixes and log stream names.
fn put_date_path(out: &mut Vec<u8>, ms: i64) {
    let (y, mo, d, ..) = fields(ms);
    put_year(out, y);
    out.push(b'/');
    put2(out, mo);
    out.push(b'/');
    put2(out, d);
}

// ---------------------------------------------------------------------------
// The world: accounts, principals, addresses, agents

struct Account {
    id: &'static str,
    home: &'static str,
    weight: u32,
}

/// prod, staging, dev, security, management.
const ACCOUNTS: [Account; 5] = [
    Account { id: "482910573316", home: "us-east-1", weight: 50 },
    Account { id: "735102984467", home: "us-west-2", weight: 20 },
    Account { id: "219384756021", home: "eu-west-1", weight: 15 },
    Account { id: "604917283350", home: "us-east-1", weight: 8 },
    Account { id: "918273645501", home: "us-east-1", weight: 7 },
];

const REGIONS: [&str; 6] = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2", "us-east-2"];

/// Public and private source addresses; principals use slices of it
/// (offices, CI runners, NAT gateways, VPC endpoints, vendors, strangers).
const IPS: [&str; 50] = [
    // 0: offices and homes
    "81.2.69.142",
    "86.14.211.40",
    "98.207.254.77",
    "73.162.91.14",
    "24.5.190.201",
    "176.58.123.9",
    // 6: CI runners
    "20.172.29.116",
    "4.227.185.49",
    "52.234.41.91",
    "172.176.210.4",
    "20.57.68.102",
    "40.76.3.157",
    "13.90.140.100",
    "20.232.34.7",
    // 14: NAT gateways
    "3.216.48.17",
    "34.199.210.6",
    "52.44.121.95",
    "54.164.33.208",
    "18.207.110.52",
    "44.206.71.130",
    "35.160.23.8",
    "52.36.88.201",
    "34.245.117.48",
    "54.75.211.96",
    "18.133.5.90",
    "3.125.62.11",
    // 26: VPC endpoints
    "10.0.12.34",
    "10.0.45.19",
    "10.0.78.201",
    "10.1.3.77",
    "10.1.22.150",
    "172.31.40.6",
    "172.31.9.88",
    "10.2.0.15",
    // 34: vendors
    "3.233.144.12",
    "3.233.146.54",
    "44.192.28.40",
    "3.233.147.199",
    "54.81.99.113",
    "52.20.134.8",
    "35.173.84.90",
    "3.93.71.22",
    // 42: elsewhere
    "185.220.101.34",
    "45.148.10.81",
    "103.251.167.10",
    "2a02:c7c:1f3a:1200:5d1e:9b2f:7c4a:11e0",
    "2600:1700:3ec1:b80:8d2e:14f1:a6c3:77b2",
    "91.198.174.192",
    "139.162.171.5",
    "64.227.12.88",
];

const AGENTS: [&str; 16] = [
    "aws-cli/2.15.30 md/awscrt#0.19.19 ua/2.0 os/linux#6.1.0 md/arch#x86_64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#amzn.2023 md/prompt#off",
    "aws-cli/2.17.12 md/awscrt#0.20.11 ua/2.0 os/macos#23.5.0 md/arch#arm64 lang/python#3.11.9 md/pyimpl#CPython cfg/retry-mode#standard md/installer#source md/prompt#off",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.10.213-201.855.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.2 md/pyimpl#CPython exec-env#AWS_Lambda_python3.12 cfg/retry-mode#legacy Botocore/1.34.69",
    "Boto3/1.35.10 md/Botocore#1.35.10 ua/2.0 os/linux#6.5.0-1022-aws md/arch#x86_64 lang/python#3.10.12 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.35.10",
    "console.amazonaws.com",
    "AWS Internal",
    "APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.42.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.26.0 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64",
    "aws-sdk-go-v2/1.30.3 os/linux lang/go#go1.22.5 md/GOOS#linux md/GOARCH#amd64",
    "aws-sdk-go/1.50.8 (go1.21.6; linux; amd64)",
    "aws-sdk-java/2.25.14 Linux/5.10.210-201.852.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS Java/17.0.10 vendor/Amazon.com_Inc. exec-env/AWS_ECS_FARGATE io/sync http/Apache cfg/retry-mode/legacy",
    "aws-sdk-js/3.609.0 ua/2.1 os/linux#5.10.219-229.866.amzn2.x86_64 lang/js md/nodejs#20.15.0 exec-env/AWS_Lambda_nodejs20.x",
    "aws-sdk-go/1.44.260 (go1.20.7; linux; amd64) amazon-ssm-agent/3.3.418.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "config.amazonaws.com",
    "aws-cli/1.32.101 Python/3.9.18 Linux/5.10.215-203.850.amzn2.x86_64 exec-env/CloudShell botocore/1.34.101",
];
const BROWSERS: [usize; 2] = [12, 13];

const USERS: [&str; 10] = ["alice", "deploy-bot", "grafana", "bob", "terraform", "carol", "dave", "erin", "frank", "ci-legacy"];

/// (role name, session name).
const ROLES: [(&str, &str); 12] = [
    ("eks-node-role", "i-0a1b2c3d4e5f60718"),
    ("lambda-process-orders-role", "process-orders"),
    ("DatadogIntegrationRole", "DatadogAWSIntegration"),
    ("AWSServiceRoleForConfig", "AWSConfig-Describe"),
    ("github-actions-deploy", "GitHubActions"),
    ("OrganizationAccountAccessRole", "terraform"),
    ("AWSReservedSSO_AdministratorAccess_1a2b3c4d5e6f7a8b", "alice@example.com"),
    ("AWSReservedSSO_ReadOnlyAccess_9f8e7d6c5b4a3210", "carol@example.com"),
    ("SecurityAuditRole", "prowler-scan"),
    ("ecsTaskExecutionRole", "8d3f0a3c1b2e4f5a9c7d6e5f4a3b2c1d"),
    ("AmazonSSMRoleForInstances", "i-0f1e2d3c4b5a69788"),
    ("lambda-resize-images-role", "resize-images"),
];

/// Services acting as themselves (userIdentity type AWSService).
const INVOKERS: [&str; 8] = [
    "lambda.amazonaws.com",
    "ec2.amazonaws.com",
    "ecs-tasks.amazonaws.com",
    "config.amazonaws.com",
    "cloudtrail.amazonaws.com",
    "s3.amazonaws.com",
    "cloudformation.amazonaws.com",
    "autoscaling.amazonaws.com",
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    User,
    Role,
    Root,
    Service,
}

/// Which APIs a principal calls.
enum Apis {
    All,
    /// Read-only management events (scanners, monitoring).
    Reads,
    /// These event names only (all variants of each).
    Only(&'static [&'static str]),
}

/// Any account: chosen per event.
const ANY: usize = usize::MAX;

struct Principal {
    kind: Kind,
    /// Index into USERS, ROLES or INVOKERS (unused for Root).
    idx: usize,
    /// Index into ACCOUNTS, or ANY.
    acct: usize,
    /// Relative activity.
    weight: u32,
    /// User agents (indexes into AGENTS), the first the most used.
    agents: &'static [usize],
    /// Source addresses: IPS[base .. base + width].
    ips: (usize, usize),
    apis: Apis,
    /// Uses the console (sign-ins, console sessions).
    human: bool,
    /// Calls arrive through this service (`invokedBy`, as the address and
    /// the agent), e.g. AWS Config's service-linked role.
    via: &'static str,
}

/// A `Principal` without `via` (a positional constructor keeps the table
/// below readable).
#[allow(clippy::too_many_arguments)]
const fn pr(
    kind: Kind,
    idx: usize,
    acct: usize,
    weight: u32,
    agents: &'static [usize],
    ips: (usize, usize),
    apis: Apis,
    human: bool,
) -> Principal {
    Principal { kind, idx, acct, weight, agents, ips, apis, human, via: "" }
}

use Kind::{Role, Root, Service, User};

/// Root works in the console, mostly on account-level settings.
const ROOT_APIS: Apis = Apis::Only(&[
    "ListBuckets",
    "GetBucketPolicy",
    "ListUsers",
    "GetUser",
    "ListMFADevices",
    "ListAccessKeys",
    "CreateAccessKey",
    "DeleteAccessKey",
    "DescribeTrails",
    "DescribeOrganization",
    "ListAccounts",
    "DescribeRegions",
    "GetCallerIdentity",
]);

/// Everyone who calls AWS, by activity (AWS services and automation first,
/// as in real trails).
static PRINCIPALS: [Principal; 34] = [
    pr(Service, 0, ANY, 80, &[], (0, 0), Apis::Only(&["AssumeRole"]), false),
    pr(Service, 1, ANY, 40, &[], (0, 0), Apis::Only(&["AssumeRole"]), false),
    pr(Service, 2, ANY, 30, &[], (0, 0), Apis::Only(&["AssumeRole"]), false),
    pr(Service, 3, ANY, 15, &[], (0, 0), Apis::Only(&["AssumeRole"]), false),
    pr(Service, 4, ANY, 60, &[], (0, 0), Apis::Only(&["GetBucketAcl"]), false),
    pr(Service, 5, ANY, 100, &[], (0, 0), Apis::Only(&["Decrypt", "GenerateDataKey"]), false),
    pr(Service, 6, ANY, 5, &[], (0, 0), Apis::Only(&["AssumeRole"]), false),
    pr(Service, 7, ANY, 5, &[], (0, 0), Apis::Only(&["AssumeRole"]), false),
    pr(
        Role,
        0,
        0,
        60,
        &[8],
        (14, 4),
        Apis::Only(&[
            "DescribeInstances",
            "DescribeVolumes",
            "DescribeNetworkInterfaces",
            "GetAuthorizationToken",
            "BatchGetImage",
            "GetDownloadUrlForLayer",
            "DescribeCluster",
            "AssumeRoleWithWebIdentity",
            "Decrypt",
        ]),
        false,
    ),
    pr(
        Role,
        1,
        0,
        70,
        &[2],
        (14, 4),
        Apis::Only(&[
            "Decrypt",
            "GetParameter",
            "GetSecretValue",
            "GetObject",
            "PutObject",
            "DescribeTable",
            "GenerateDataKey",
            "GetParameters",
            "CreateLogStream",
        ]),
        false,
    ),
    pr(Role, 2, ANY, 45, &[8], (34, 8), Apis::Reads, false),
    Principal { via: "config.amazonaws.com", ..pr(Role, 3, ANY, 30, &[14], (0, 0), Apis::Reads, false) },
    pr(Role, 4, 0, 35, &[6, 0], (6, 8), Apis::All, false),
    pr(Role, 5, ANY, 25, &[6], (0, 2), Apis::All, false),
    pr(Role, 6, 0, 30, &[0, 1, 4, 12], (0, 3), Apis::All, true),
    pr(Role, 7, 1, 15, &[1, 4, 12], (3, 3), Apis::Reads, true),
    pr(Role, 8, ANY, 30, &[3], (17, 2), Apis::Reads, false),
    pr(
        Role,
        9,
        1,
        35,
        &[9],
        (18, 4),
        Apis::Only(&[
            "GetAuthorizationToken",
            "BatchGetImage",
            "GetDownloadUrlForLayer",
            "GetSecretValue",
            "GetParameters",
            "Decrypt",
            "CreateLogStream",
        ]),
        false,
    ),
    pr(Role, 10, 2, 40, &[11], (26, 8), Apis::Only(&["UpdateInstanceInformation", "GetParameter", "DescribeInstanceInformation"]), false),
    pr(Role, 11, 0, 30, &[10], (14, 4), Apis::Only(&["GetObject", "PutObject", "Decrypt", "GenerateDataKey", "CreateLogStream"]), false),
    pr(User, 0, 0, 80, &[0, 1, 3, 4, 15], (0, 3), Apis::All, true),
    pr(User, 1, 0, 60, &[6, 7], (6, 8), Apis::All, false),
    pr(
        User,
        2,
        0,
        60,
        &[7],
        (26, 3),
        Apis::Only(&[
            "GetMetricData",
            "ListMetrics",
            "DescribeAlarms",
            "GetMetricStatistics",
            "DescribeInstances",
            "DescribeLogGroups",
            "FilterLogEvents",
            "DescribeRegions",
        ]),
        false,
    ),
    pr(User, 3, 1, 30, &[0, 4, 12], (3, 3), Apis::All, true),
    pr(User, 4, 4, 20, &[6], (6, 8), Apis::All, false),
    pr(User, 5, 2, 12, &[1, 4, 13], (1, 3), Apis::All, true),
    pr(User, 6, 0, 10, &[0, 3], (2, 2), Apis::All, true),
    pr(User, 7, 3, 8, &[15, 4, 12], (4, 2), Apis::Reads, true),
    pr(User, 8, 2, 5, &[0, 13], (42, 8), Apis::All, true),
    pr(User, 9, 1, 15, &[3], (44, 3), Apis::All, false),
    pr(Root, 0, 0, 1, &[12, 4], (0, 2), ROOT_APIS, true),
    pr(Root, 0, 4, 1, &[12], (0, 2), ROOT_APIS, true),
    // Rarely active humans in the other accounts.
    pr(User, 0, 4, 3, &[0, 4], (0, 3), Apis::Reads, true),
    pr(User, 3, 2, 3, &[0, 12], (3, 3), Apis::All, true),
];

// ---------------------------------------------------------------------------
// Services and APIs

enum RequestId {
    Uuid,
    /// S3: 16 upper-case alphanumerics.
    S3,
    /// DynamoDB: 52 upper-case alphanumerics.
    Dynamo,
}

struct Svc {
    source: &'static str,
    /// IAM action prefix (`cloudwatch` for monitoring).
    prefix: &'static str,
    /// tlsDetails.clientProvidedHostHeader template.
    host: &'static str,
    request_id: RequestId,
    /// Global service: awsRegion is always us-east-1.
    global: bool,
    /// (errorCode, errorMessage template, weight).
    errors: &'static [(&'static str, &'static str, u32)],
}

const ACCESS_DENIED: (&str, &str, u32) =
    ("AccessDenied", "User: $% is not authorized to perform: $& because no identity-based policy allows the $& action", 2);
const THROTTLED: (&str, &str, u32) = ("ThrottlingException", "Rate exceeded", 1);

const EC2: usize = 0;
const S3: usize = 1;
const IAM: usize = 2;
const STS: usize = 3;
const KMS: usize = 4;
const LAMBDA: usize = 5;
const TRAIL: usize = 6;
const SSM: usize = 7;
const SECRETS: usize = 8;
const RDS: usize = 9;
const DDB: usize = 10;
const LOGS: usize = 11;
const CW: usize = 12;
const ECR: usize = 13;
const EKS: usize = 14;
const CFN: usize = 15;
const ORGS: usize = 16;

const fn svc(source: &'static str, prefix: &'static str, host: &'static str, errors: &'static [(&'static str, &'static str, u32)]) -> Svc {
    Svc { source, prefix, host, request_id: RequestId::Uuid, global: false, errors }
}

static SERVICES: [Svc; 17] = [
    svc(
        "ec2.amazonaws.com",
        "ec2",
        "ec2.$r.amazonaws.com",
        &[
            (
                "Client.UnauthorizedOperation",
                "You are not authorized to perform this operation. User: $% is not authorized to perform: $& because no identity-based policy allows the $& action",
                3,
            ),
            ("Client.RequestLimitExceeded", "Request limit exceeded.", 1),
        ],
    ),
    Svc { request_id: RequestId::S3, ..svc("s3.amazonaws.com", "s3", "$b.s3.$r.amazonaws.com", &[("AccessDenied", "Access Denied", 1)]) },
    Svc {
        global: true,
        ..svc("iam.amazonaws.com", "iam", "iam.amazonaws.com", &[ACCESS_DENIED, ("NoSuchEntity", "The $^ cannot be found.", 2)])
    },
    svc(
        "sts.amazonaws.com",
        "sts",
        "sts.$r.amazonaws.com",
        &[("AccessDenied", "User: $% is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::$a:role/$R", 1)],
    ),
    svc("kms.amazonaws.com", "kms", "kms.$r.amazonaws.com", &[ACCESS_DENIED, THROTTLED]),
    svc(
        "lambda.amazonaws.com",
        "lambda",
        "lambda.$r.amazonaws.com",
        &[("ResourceNotFoundException", "Function not found: arn:aws:lambda:$r:$a:function:$f", 2), ACCESS_DENIED],
    ),
    svc("cloudtrail.amazonaws.com", "cloudtrail", "cloudtrail.$r.amazonaws.com", &[ACCESS_DENIED]),
    svc("ssm.amazonaws.com", "ssm", "ssm.$r.amazonaws.com", &[ACCESS_DENIED, THROTTLED, THROTTLED]),
    svc(
        "secretsmanager.amazonaws.com",
        "secretsmanager",
        "secretsmanager.$r.amazonaws.com",
        &[("ResourceNotFoundException", "Secrets Manager can't find the specified secret.", 3), ACCESS_DENIED],
    ),
    svc("rds.amazonaws.com", "rds", "rds.$r.amazonaws.com", &[ACCESS_DENIED, THROTTLED]),
    Svc {
        request_id: RequestId::Dynamo,
        ..svc(
            "dynamodb.amazonaws.com",
            "dynamodb",
            "dynamodb.$r.amazonaws.com",
            &[("ResourceNotFoundException", "Requested resource not found: Table: $t not found", 2), ACCESS_DENIED],
        )
    },
    svc(
        "logs.amazonaws.com",
        "logs",
        "logs.$r.amazonaws.com",
        &[("ResourceNotFoundException", "The specified log group does not exist.", 2), THROTTLED],
    ),
    svc("monitoring.amazonaws.com", "cloudwatch", "monitoring.$r.amazonaws.com", &[THROTTLED, ACCESS_DENIED]),
    svc("ecr.amazonaws.com", "ecr", "api.ecr.$r.amazonaws.com", &[ACCESS_DENIED]),
    svc(
        "eks.amazonaws.com",
        "eks",
        "eks.$r.amazonaws.com",
        &[("ResourceNotFoundException", "No cluster found for name: $c.", 1), ACCESS_DENIED],
    ),
    svc("cloudformation.amazonaws.com", "cloudformation", "cloudformation.$r.amazonaws.com", &[ACCESS_DENIED]),
    Svc { global: true, ..svc("organizations.amazonaws.com", "organizations", "organizations.us-east-1.amazonaws.com", &[ACCESS_DENIED]) },
];

/// One API as CloudTrail records it. Templates are JSON with `$x`
/// placeholders (see [`Generator::placeholder`]); `N` is JSON null, "" is
/// "absent".
struct Api {
    svc: usize,
    name: &'static str,
    weight: u32,
    read_only: bool,
    req: &'static str,
    resp: &'static str,
    /// The contents of the resources array.
    res: &'static str,
    /// additionalEventData.
    extra: &'static str,
}

const fn api(
    svc: usize,
    name: &'static str,
    weight: u32,
    read_only: bool,
    req: &'static str,
    resp: &'static str,
    res: &'static str,
) -> Api {
    Api { svc, name, weight, read_only, req, resp, res, extra: "" }
}

const fn s3(name: &'static str, weight: u32, read_only: bool, req: &'static str, resp: &'static str, res: &'static str) -> Api {
    Api { extra: S3_EXTRA, ..api(S3, name, weight, read_only, req, resp, res) }
}

impl Api {
    /// S3 object operations are data events, everything else management.
    fn is_data(&self) -> bool {
        self.svc == S3 && self.name.ends_with("Object")
    }
}

const R: bool = true;
const W: bool = false;
const N: &str = "null";

const S3_EXTRA: &str = r#"{"SignatureVersion":"SigV4","CipherSuite":"TLS_AES_128_GCM_SHA256","bytesTransferredIn":0,"AuthenticationMethod":"AuthHeader","x-amz-id-2":"$j","bytesTransferredOut":$N}"#;
const GET_OBJECT_EXTRA: &str = r#"{"SignatureVersion":"SigV4","CipherSuite":"TLS_AES_128_GCM_SHA256","bytesTransferredIn":0,"AuthenticationMethod":"AuthHeader","x-amz-id-2":"$j","bytesTransferredOut":$B}"#;
const PUT_OBJECT_EXTRA: &str = r#"{"SignatureVersion":"SigV4","CipherSuite":"TLS_AES_128_GCM_SHA256","bytesTransferredIn":$B,"SSEApplied":"Default_SSE_S3","AuthenticationMethod":"AuthHeader","x-amz-id-2":"$j","bytesTransferredOut":0}"#;

const RES_BUCKET: &str = r#"{"accountId":"$a","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::$b"}"#;
const RES_OBJECT: &str =
    r#"{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::$b/$o"},{"accountId":"$a","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::$b"}"#;
const RES_KEY: &str = r#"{"accountId":"$a","type":"AWS::KMS::Key","ARN":"arn:aws:kms:$r:$a:key/$k"}"#;
const RES_ROLE: &str = r#"{"accountId":"$a","type":"AWS::IAM::Role","ARN":"arn:aws:iam::$a:role/$R"}"#;
const RES_USER: &str = r#"{"accountId":"$a","type":"AWS::IAM::User","ARN":"arn:aws:iam::$a:user/$U"}"#;
const RES_TABLE: &str = r#"{"accountId":"$a","type":"AWS::DynamoDB::Table","ARN":"arn:aws:dynamodb:$r:$a:table/$t"}"#;
const RES_FUNCTION: &str = r#"{"accountId":"$a","type":"AWS::Lambda::Function","ARN":"arn:aws:lambda:$r:$a:function:$f"}"#;
const RES_TRAIL: &str = r#"{"accountId":"$a","type":"AWS::CloudTrail::Trail","ARN":"arn:aws:cloudtrail:us-east-1:$a:trail/$0"}"#;
const RES_REPO: &str = r#"{"accountId":"$a","type":"AWS::ECR::Repository","ARN":"arn:aws:ecr:$r:$a:repository/$e"}"#;
const RES_INSTANCE: &str = r#"{"accountId":"$a","type":"AWS::EC2::Instance","ARN":"arn:aws:ec2:$r:$a:instance/$i"}"#;
const RES_SECRET: &str = r#"{"accountId":"$a","type":"AWS::SecretsManager::Secret","ARN":"arn:aws:secretsmanager:$r:$a:secret:$x-$X"}"#;

const CREDENTIALS: &str = r#"{"credentials":{"accessKeyId":"$K","sessionToken":"$z","expiration":"$E"},"assumedRoleUser":{"assumedRoleId":"$O:$S","arn":"arn:aws:sts::$a:assumed-role/$R/$S"}}"#;
const INSTANCE_STATE: &str = concat!(
    r#"{"requestId":"$u","instancesSet":{"items":[{"instanceId":"$i","currentState":{"code":64,"name":"stopping"},"#,
    r#""previousState":{"code":16,"name":"running"}}]}}"#
);
const OK_RETURN: &str = r#"{"requestId":"$u","_return":true}"#;
const LAMBDA_CONFIG: &str = concat!(
    r#"{"functionName":"$f","functionArn":"arn:aws:lambda:$r:$a:function:$f","runtime":"python3.12","role":"arn:aws:iam::$a:role/$R","#,
    r#""handler":"app.handler","codeSize":$B,"description":"","timeout":30,"memorySize":512,"lastModified":"$1","codeSha256":"$j","#,
    r#""version":"$N","tracingConfig":{"mode":"PassThrough"},"revisionId":"$u","state":"Active","lastUpdateStatus":"InProgress","#,
    r#""lastUpdateStatusReason":"The function is being created.","lastUpdateStatusReasonCode":"Creating","packageType":"Zip","#,
    r#""architectures":["arm64"],"ephemeralStorage":{"size":512},"snapStart":{"applyOn":"None","optimizationStatus":"Off"},"#,
    r#""loggingConfig":{"logFormat":"Text","logGroup":"/aws/lambda/$f"}}"#
);
const RUN_INSTANCES_REQ: &str = concat!(
    r#"{"instancesSet":{"items":[{"imageId":"$m","minCount":1,"maxCount":1}]},"instanceType":"m6i.large","#,
    r#""blockDeviceMapping":{"items":[{"deviceName":"/dev/xvda","ebs":{"volumeSize":50,"deleteOnTermination":true,"volumeType":"gp3","encrypted":true}}]},"#,
    r#""availabilityZone":"$Z","monitoring":{"enabled":false},"disableApiTermination":false,"#,
    r#""clientToken":"$u","networkInterfaceSet":{"items":[{"deviceIndex":0,"subnetId":"$s","associatePublicIpAddress":false,"#,
    r#""groupSet":{"items":[{"groupId":"$g"}]}}]},"iamInstanceProfile":{"arn":"arn:aws:iam::$a:instance-profile/$R"},"ebsOptimized":true,"#,
    r#""tagSpecificationSet":{"items":[{"resourceType":"instance","tags":[$A]}]},"metadataOptions":{"httpTokens":"required","httpPutResponseHopLimit":2}}"#
);
const RUN_INSTANCES_RESP: &str = concat!(
    r#"{"requestId":"$u","reservationId":"r-0$q","ownerId":"$a","groupSet":{},"instancesSet":{"items":[{"instanceId":"$i","imageId":"$m","#,
    r#""instanceState":{"code":0,"name":"pending"},"privateDnsName":"ip-10-0-$2-17.ec2.internal","amiLaunchIndex":0,"productCodes":{},"#,
    r#""instanceType":"m6i.large","launchTime":$M,"placement":{"availabilityZone":"$Z","tenancy":"default"},"#,
    r#""monitoring":{"state":"disabled"},"subnetId":"$s","vpcId":"$v","privateIpAddress":"10.0.$2.17","#,
    r#""architecture":"x86_64","rootDeviceType":"ebs","rootDeviceName":"/dev/xvda","tagSet":{"items":[$A]},"clientToken":"$u","#,
    r#""groupSet":{"items":[{"groupId":"$g","groupName":"app-servers"}]},"sourceDestCheck":true,"networkInterfaceSet":{"items":["#,
    r#"{"networkInterfaceId":"eni-0$q","subnetId":"$s","vpcId":"$v","ownerId":"$a","status":"in-use","privateIpAddress":"10.0.$2.17","#,
    r#""interfaceType":"interface","attachment":{"attachmentId":"eni-attach-0$q","deviceIndex":0,"status":"attaching"}}]},"#,
    r#""iamInstanceProfile":{"arn":"arn:aws:iam::$a:instance-profile/$R","id":"AIPA$y"},"ebsOptimized":true,"enaSupport":true,"#,
    r#""cpuOptions":{"coreCount":1,"threadsPerCore":2},"metadataOptions":{"state":"pending","httpTokens":"required","#,
    r#""httpPutResponseHopLimit":2,"httpEndpoint":"enabled"}}]}}"#
);
const SEND_COMMAND_RESP: &str = concat!(
    r#"{"command":{"commandId":"$u","documentName":"AWS-RunShellScript","documentVersion":"$$DEFAULT","comment":"","expiresAfter":"$E","#,
    r#""parameters":"HIDDEN_DUE_TO_SECURITY_REASONS","instanceIds":["$i"],"targets":[],"requestedDateTime":"$T","status":"Pending","#,
    r#""statusDetails":"Pending","outputS3Region":"$r","outputS3BucketName":"","outputS3KeyPrefix":"","maxConcurrency":"50","#,
    r#""maxErrors":"0","targetCount":1,"completedCount":0,"errorCount":0,"deliveryTimedOutCount":0,"serviceRole":"","#,
    r#""notificationConfig":{"notificationArn":"","notificationEvents":[],"notificationType":""},"#,
    r#""cloudWatchOutputConfig":{"cloudWatchLogGroupName":"","cloudWatchOutputEnabled":false},"timeoutSeconds":3600,"#,
    r#""alarmConfiguration":{"ignorePollAlarmFailure":false,"alarms":[]},"triggeredAlarms":[]}}"#
);
const TABLE_DESCRIPTION: &str = concat!(
    r#"{"tableDescription":{"tableName":"$t","tableStatus":"UPDATING","tableArn":"arn:aws:dynamodb:$r:$a:table/$t","tableId":"$u","#,
    r#""billingModeSummary":{"billingMode":"PAY_PER_REQUEST"},"attributeDefinitions":[{"attributeName":"pk","attributeType":"S"},"#,
    r#"{"attributeName":"sk","attributeType":"S"}],"keySchema":[{"attributeName":"pk","keyType":"HASH"},"#,
    r#"{"attributeName":"sk","keyType":"RANGE"}],"itemCount":0,"tableSizeBytes":0,"deletionProtectionEnabled":false}}"#
);

/// The APIs with their weights in the overall mix (per ~10,000 calls).
/// Variants of one API (same source and name) differ in parameters.
static APIS: [Api; 138] = [
    // EC2
    api(EC2, "DescribeInstances", 380, R, r#"{"instancesSet":{"items":[$I]},"filterSet":{"items":[$F]}}"#, N, ""),
    api(
        EC2,
        "DescribeSecurityGroups",
        150,
        R,
        r#"{"securityGroupSet":{},"securityGroupIdSet":{"items":[{"groupId":"$g"}]},"filterSet":{"items":[$F]}}"#,
        N,
        "",
    ),
    api(EC2, "DescribeVolumes", 100, R, r#"{"volumeSet":{},"filterSet":{"items":[$F]},"maxResults":500}"#, N, ""),
    api(
        EC2,
        "DescribeSubnets",
        80,
        R,
        r#"{"subnetSet":{},"filterSet":{"items":[{"name":"vpc-id","valueSet":{"items":[{"value":"$v"}]}}]}}"#,
        N,
        "",
    ),
    api(EC2, "DescribeVpcs", 60, R, r#"{"vpcSet":{},"filterSet":{}}"#, N, ""),
    api(EC2, "DescribeNetworkInterfaces", 80, R, r#"{"networkInterfaceIdSet":{},"filterSet":{"items":[$F]}}"#, N, ""),
    api(
        EC2,
        "DescribeSnapshots",
        35,
        R,
        r#"{"snapshotSet":{},"ownersSet":{"items":[{"owner":"self"}]},"sharedUsersSet":{},"filterSet":{"items":[$F]}}"#,
        N,
        "",
    ),
    api(
        EC2,
        "DescribeImages",
        35,
        R,
        r#"{"executableBySet":{},"imagesSet":{"items":[{"imageId":"$m"}]},"ownersSet":{},"filterSet":{},"includeDeprecated":false}"#,
        N,
        "",
    ),
    api(EC2, "DescribeRegions", 30, R, r#"{"regionSet":{}}"#, N, ""),
    api(EC2, "DescribeAvailabilityZones", 20, R, r#"{"availabilityZoneSet":{},"availabilityZoneIdSet":{}}"#, N, ""),
    api(EC2, "DescribeInstanceStatus", 40, R, r#"{"instancesSet":{"items":[$I]},"filterSet":{},"includeAllInstances":false}"#, N, ""),
    api(EC2, "RunInstances", 4, W, RUN_INSTANCES_REQ, RUN_INSTANCES_RESP, ""),
    api(
        EC2,
        "TerminateInstances",
        4,
        W,
        r#"{"instancesSet":{"items":[{"instanceId":"$i"}]}}"#,
        concat!(
            r#"{"requestId":"$u","instancesSet":{"items":[{"instanceId":"$i","currentState":{"code":32,"name":"shutting-down"},"#,
            r#""previousState":{"code":16,"name":"running"}}]}}"#
        ),
        RES_INSTANCE,
    ),
    api(EC2, "StopInstances", 4, W, r#"{"instancesSet":{"items":[{"instanceId":"$i"}]},"force":false}"#, INSTANCE_STATE, RES_INSTANCE),
    api(
        EC2,
        "StartInstances",
        4,
        W,
        r#"{"instancesSet":{"items":[{"instanceId":"$i"}]}}"#,
        concat!(
            r#"{"requestId":"$u","instancesSet":{"items":[{"instanceId":"$i","currentState":{"code":0,"name":"pending"},"#,
            r#""previousState":{"code":80,"name":"stopped"}}]}}"#
        ),
        RES_INSTANCE,
    ),
    api(EC2, "CreateTags", 25, W, r#"{"resourcesSet":{"items":[{"resourceId":"$i"}]},"tagSet":{"items":[$A]}}"#, OK_RETURN, ""),
    api(
        EC2,
        "AuthorizeSecurityGroupIngress",
        3,
        W,
        concat!(
            r#"{"groupId":"$g","ipPermissions":{"items":[{"ipProtocol":"tcp","fromPort":443,"toPort":443,"groups":{},"#,
            r#""ipRanges":{"items":[{"cidrIp":"0.0.0.0/0","description":"https"}]},"ipv6Ranges":{},"prefixListIds":{}}]}}"#
        ),
        concat!(
            r#"{"requestId":"$u","_return":true,"securityGroupRuleSet":{"items":[{"groupOwnerId":"$a","groupId":"$g","#,
            r#""securityGroupRuleId":"sgr-0$q","isEgress":false,"ipProtocol":"tcp","fromPort":443,"toPort":443,"#,
            r#""cidrIpv4":"0.0.0.0/0","description":"https"}]}}"#
        ),
        "",
    ),
    api(
        EC2,
        "CreateSecurityGroup",
        2,
        W,
        r#"{"groupName":"launch-wizard-$N","groupDescription":"launch-wizard-$N created $1","vpcId":"$v"}"#,
        r#"{"requestId":"$u","_return":true,"groupId":"$g"}"#,
        "",
    ),
    api(
        EC2,
        "CreateSnapshot",
        5,
        W,
        r#"{"volumeId":"$l","description":"Created by AWS Backup"}"#,
        concat!(
            r#"{"requestId":"$u","snapshotId":"$n","volumeId":"$l","status":"pending","startTime":$M,"progress":"","#,
            r#""ownerId":"$a","volumeSize":50,"encrypted":true,"kmsKeyId":"arn:aws:kms:$r:$a:key/$k"}"#
        ),
        "",
    ),
    // S3 (object operations are data events)
    s3("GetBucketLocation", 110, R, r#"{"bucketName":"$b","Host":"$b.s3.amazonaws.com","location":""}"#, N, RES_BUCKET),
    s3("GetBucketAcl", 70, R, r#"{"bucketName":"$b","Host":"$b.s3.amazonaws.com","acl":""}"#, N, RES_BUCKET),
    s3("ListBuckets", 50, R, r#"{"Host":"s3.$r.amazonaws.com"}"#, N, ""),
    s3("GetBucketPolicy", 35, R, r#"{"bucketName":"$b","Host":"$b.s3.amazonaws.com","policy":""}"#, N, RES_BUCKET),
    s3("GetBucketVersioning", 25, R, r#"{"bucketName":"$b","Host":"$b.s3.amazonaws.com","versioning":""}"#, N, RES_BUCKET),
    s3("GetBucketEncryption", 25, R, r#"{"bucketName":"$b","Host":"$b.s3.amazonaws.com","encryption":""}"#, N, RES_BUCKET),
    s3("GetBucketPublicAccessBlock", 20, R, r#"{"publicAccessBlock":"","bucketName":"$b","Host":"$b.s3.amazonaws.com"}"#, N, RES_BUCKET),
    s3(
        "PutBucketPolicy",
        2,
        W,
        r#"{"bucketPolicy":{"Version":"2012-10-17","Statement":[$W]},"bucketName":"$b","Host":"$b.s3.amazonaws.com","policy":""}"#,
        N,
        RES_BUCKET,
    ),
    s3(
        "PutBucketPublicAccessBlock",
        1,
        W,
        concat!(
            r#"{"PublicAccessBlockConfiguration":{"xmlns":"http://s3.amazonaws.com/doc/2006-03-01/","RestrictPublicBuckets":true,"#,
            r#""BlockPublicPolicy":true,"BlockPublicAcls":true,"IgnorePublicAcls":true},"bucketName":"$b","#,
            r#""Host":"$b.s3.amazonaws.com","publicAccessBlock":""}"#
        ),
        N,
        RES_BUCKET,
    ),
    s3(
        "CreateBucket",
        1,
        W,
        concat!(
            r#"{"CreateBucketConfiguration":{"LocationConstraint":"$r","xmlns":"http://s3.amazonaws.com/doc/2006-03-01/"},"#,
            r#""bucketName":"$b","Host":"s3.$r.amazonaws.com"}"#
        ),
        N,
        RES_BUCKET,
    ),
    s3("DeleteBucket", 1, W, r#"{"bucketName":"$b","Host":"$b.s3.amazonaws.com"}"#, N, RES_BUCKET),
    Api {
        extra: GET_OBJECT_EXTRA,
        ..s3("GetObject", 90, R, r#"{"bucketName":"$b","Host":"$b.s3.$r.amazonaws.com","key":"$o"}"#, N, RES_OBJECT)
    },
    Api {
        extra: PUT_OBJECT_EXTRA,
        ..s3(
            "PutObject",
            40,
            W,
            r#"{"bucketName":"$b","Host":"$b.s3.$r.amazonaws.com","key":"$o"}"#,
            r#"{"x-amz-server-side-encryption":"AES256","x-amz-version-id":"$J"}"#,
            RES_OBJECT,
        )
    },
    s3("DeleteObject", 6, W, r#"{"bucketName":"$b","Host":"$b.s3.$r.amazonaws.com","key":"$o"}"#, N, RES_OBJECT),
    // IAM
    api(IAM, "GetRole", 90, R, r#"{"roleName":"$R"}"#, N, ""),
    api(IAM, "ListRoles", 35, R, r#"{"maxItems":100}"#, N, ""),
    api(IAM, "GetUser", 30, R, r#"{"userName":"$U"}"#, N, ""),
    api(IAM, "ListUsers", 20, R, N, N, ""),
    api(IAM, "ListAttachedRolePolicies", 45, R, r#"{"roleName":"$R"}"#, N, ""),
    api(IAM, "ListRolePolicies", 30, R, r#"{"roleName":"$R"}"#, N, ""),
    api(IAM, "GetPolicy", 25, R, r#"{"policyArn":"arn:aws:iam::aws:policy/$P"}"#, N, ""),
    api(IAM, "GetPolicyVersion", 25, R, r#"{"policyArn":"arn:aws:iam::aws:policy/$P","versionId":"v3"}"#, N, ""),
    api(IAM, "ListAccessKeys", 15, R, r#"{"userName":"$U"}"#, N, ""),
    api(IAM, "ListMFADevices", 10, R, r#"{"userName":"$U"}"#, N, ""),
    api(
        IAM,
        "CreateUser",
        1,
        W,
        r#"{"userName":"$U","tags":[]}"#,
        r#"{"user":{"path":"/","userName":"$U","userId":"$V","arn":"arn:aws:iam::$a:user/$U","createDate":"$T"}}"#,
        RES_USER,
    ),
    api(
        IAM,
        "CreateAccessKey",
        2,
        W,
        r#"{"userName":"$U"}"#,
        r#"{"accessKey":{"userName":"$U","accessKeyId":"AKIA$y","status":"Active","createDate":"$T"}}"#,
        RES_USER,
    ),
    api(IAM, "DeleteAccessKey", 1, W, r#"{"userName":"$U","accessKeyId":"AKIA$y"}"#, N, RES_USER),
    api(IAM, "AttachRolePolicy", 3, W, r#"{"roleName":"$R","policyArn":"arn:aws:iam::aws:policy/$P"}"#, N, RES_ROLE),
    api(
        IAM,
        "PutRolePolicy",
        3,
        W,
        concat!(
            r#"{"roleName":"$R","policyName":"inline-s3-access","policyDocument":"{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n"#,
            r#"    {\n      \"Effect\": \"Allow\",\n      \"Action\": [\n        \"s3:GetObject\",\n        \"s3:PutObject\"\n      ],\n"#,
            r#"      \"Resource\": \"arn:aws:s3:::$b/*\"\n    }\n  ]\n}"}"#
        ),
        N,
        RES_ROLE,
    ),
    api(
        IAM,
        "CreateRole",
        2,
        W,
        concat!(
            r#"{"roleName":"$R","assumeRolePolicyDocument":"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","#,
            r#"\"Principal\":{\"Service\":\"lambda.amazonaws.com\"},\"Action\":\"sts:AssumeRole\"}]}","#,
            r#""description":"Managed by Terraform","maxSessionDuration":3600}"#
        ),
        concat!(
            r#"{"role":{"path":"/","roleName":"$R","roleId":"$O","arn":"arn:aws:iam::$a:role/$R","createDate":"$T","#,
            r#""assumeRolePolicyDocument":"%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C"#,
            r#"%22Principal%22%3A%7B%22Service%22%3A%22lambda.amazonaws.com%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D"}}"#
        ),
        RES_ROLE,
    ),
    api(IAM, "DeleteRole", 1, W, r#"{"roleName":"$R"}"#, N, RES_ROLE),
    api(
        IAM,
        "UpdateAssumeRolePolicy",
        1,
        W,
        concat!(
            r#"{"roleName":"$R","policyDocument":"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","#,
            r#"\"Principal\":{\"AWS\":\"arn:aws:iam::$a:root\"},\"Action\":\"sts:AssumeRole\",\"Condition\":{}}]}"}"#
        ),
        N,
        RES_ROLE,
    ),
    // STS
    api(
        STS,
        "AssumeRole",
        250,
        R,
        r#"{"roleArn":"arn:aws:iam::$a:role/$R","roleSessionName":"$S","durationSeconds":3600}"#,
        CREDENTIALS,
        RES_ROLE,
    ),
    api(STS, "GetCallerIdentity", 110, R, N, N, ""),
    api(
        STS,
        "AssumeRoleWithWebIdentity",
        40,
        R,
        r#"{"roleArn":"arn:aws:iam::$a:role/$R","roleSessionName":"$S","durationSeconds":3600}"#,
        concat!(
            r#"{"credentials":{"accessKeyId":"$K","sessionToken":"$z","expiration":"$E"},"#,
            r#""subjectFromWebIdentityToken":"system:serviceaccount:kube-system:aws-node","#,
            r#""assumedRoleUser":{"assumedRoleId":"$O:$S","arn":"arn:aws:sts::$a:assumed-role/$R/$S"},"#,
            r#""provider":"arn:aws:iam::$a:oidc-provider/oidc.eks.$r.amazonaws.com/id/5C9E2B8A4D1F7E3B6A0C9D8E7F6A5B4C","#,
            r#""audience":"sts.amazonaws.com"}"#
        ),
        RES_ROLE,
    ),
    api(
        STS,
        "GetSessionToken",
        5,
        R,
        r#"{"durationSeconds":43200}"#,
        r#"{"credentials":{"accessKeyId":"$K","sessionToken":"$z","expiration":"$E"}}"#,
        "",
    ),
    // KMS
    api(
        KMS,
        "Decrypt",
        120,
        R,
        r#"{"encryptionContext":{"aws:s3:arn":"arn:aws:s3:::$b/$o"},"encryptionAlgorithm":"SYMMETRIC_DEFAULT"}"#,
        N,
        RES_KEY,
    ),
    api(
        KMS,
        "Decrypt",
        90,
        R,
        r#"{"encryptionContext":{"aws:lambda:FunctionArn":"arn:aws:lambda:$r:$a:function:$f"},"encryptionAlgorithm":"SYMMETRIC_DEFAULT"}"#,
        N,
        RES_KEY,
    ),
    api(
        KMS,
        "Decrypt",
        70,
        R,
        concat!(
            r#"{"encryptionContext":{"SecretARN":"arn:aws:secretsmanager:$r:$a:secret:$x-$X","SecretVersionId":"$u"},"#,
            r#""encryptionAlgorithm":"SYMMETRIC_DEFAULT"}"#
        ),
        N,
        RES_KEY,
    ),
    api(
        KMS,
        "GenerateDataKey",
        120,
        R,
        r#"{"keyId":"arn:aws:kms:$r:$a:key/$k","encryptionContext":{"aws:s3:arn":"arn:aws:s3:::$b"},"numberOfBytes":32}"#,
        N,
        RES_KEY,
    ),
    api(KMS, "Encrypt", 20, R, r#"{"keyId":"alias/app-secrets","encryptionAlgorithm":"SYMMETRIC_DEFAULT"}"#, N, RES_KEY),
    api(KMS, "DescribeKey", 35, R, r#"{"keyId":"$k"}"#, N, RES_KEY),
    api(KMS, "ListAliases", 15, R, N, N, ""),
    api(
        KMS,
        "CreateGrant",
        4,
        W,
        concat!(
            r#"{"keyId":"arn:aws:kms:$r:$a:key/$k","granteePrincipal":"arn:aws:iam::$a:role/$R","#,
            r#""operations":["Decrypt","GenerateDataKeyWithoutPlaintext","ReEncryptFrom","ReEncryptTo","CreateGrant","DescribeKey"],"#,
            r#""constraints":{"encryptionContextSubset":{"aws:ebs:id":"$l"}}}"#
        ),
        r#"{"grantId":"$h","keyId":"arn:aws:kms:$r:$a:key/$k"}"#,
        RES_KEY,
    ),
    api(
        KMS,
        "ScheduleKeyDeletion",
        1,
        W,
        r#"{"keyId":"$k","pendingWindowInDays":30}"#,
        r#"{"keyId":"arn:aws:kms:$r:$a:key/$k","deletionDate":"$E","keyState":"PendingDeletion","pendingWindowInDays":30}"#,
        RES_KEY,
    ),
    api(KMS, "DisableKey", 1, W, r#"{"keyId":"$k"}"#, N, RES_KEY),
    // Lambda
    api(LAMBDA, "ListFunctions20150331", 30, R, N, N, ""),
    api(LAMBDA, "GetFunction20150331v2", 25, R, r#"{"functionName":"$f"}"#, N, ""),
    api(LAMBDA, "GetFunctionConfiguration20150331v2", 20, R, r#"{"functionName":"$f"}"#, N, ""),
    api(
        LAMBDA,
        "UpdateFunctionCode20150331v2",
        4,
        W,
        r#"{"functionName":"$f","s3Bucket":"$b","s3Key":"lambda/$f/$h.zip","publish":true,"dryRun":false}"#,
        LAMBDA_CONFIG,
        RES_FUNCTION,
    ),
    api(
        LAMBDA,
        "UpdateFunctionConfiguration20150331v2",
        3,
        W,
        r#"{"functionName":"$f","memorySize":1024,"timeout":60}"#,
        LAMBDA_CONFIG,
        RES_FUNCTION,
    ),
    api(
        LAMBDA,
        "AddPermission20150331v2",
        2,
        W,
        concat!(
            r#"{"functionName":"$f","statementId":"AllowExecutionFromS3","action":"lambda:InvokeFunction","principal":"s3.amazonaws.com","#,
            r#""sourceArn":"arn:aws:s3:::$b","sourceAccount":"$a"}"#
        ),
        concat!(
            r#"{"statement":"{\"Sid\":\"AllowExecutionFromS3\",\"Effect\":\"Allow\",\"Principal\":{\"Service\":\"s3.amazonaws.com\"},"#,
            r#"\"Action\":\"lambda:InvokeFunction\",\"Resource\":\"arn:aws:lambda:$r:$a:function:$f\",\"Condition\":"#,
            r#"{\"StringEquals\":{\"AWS:SourceAccount\":\"$a\"},\"ArnLike\":{\"AWS:SourceArn\":\"arn:aws:s3:::$b\"}}}"}"#
        ),
        RES_FUNCTION,
    ),
    api(
        LAMBDA,
        "CreateFunction20150331",
        1,
        W,
        concat!(
            r#"{"functionName":"$f","runtime":"python3.12","role":"arn:aws:iam::$a:role/$R","handler":"app.handler","#,
            r#""code":{"s3Bucket":"$b","s3Key":"lambda/$f.zip"},"timeout":30,"memorySize":512,"publish":true,"packageType":"Zip","#,
            r#""architectures":["arm64"]}"#
        ),
        LAMBDA_CONFIG,
        RES_FUNCTION,
    ),
    // CloudTrail
    api(TRAIL, "DescribeTrails", 20, R, r#"{"trailNameList":[],"includeShadowTrails":true}"#, N, ""),
    api(TRAIL, "GetTrailStatus", 20, R, r#"{"name":"arn:aws:cloudtrail:us-east-1:$a:trail/$0"}"#, N, RES_TRAIL),
    api(
        TRAIL,
        "LookupEvents",
        10,
        R,
        r#"{"lookupAttributes":[{"attributeKey":"EventName","attributeValue":"ConsoleLogin"}],"startTime":"$Y","endTime":"$T","maxResults":50}"#,
        N,
        "",
    ),
    api(TRAIL, "GetEventSelectors", 10, R, r#"{"trailName":"$0"}"#, N, RES_TRAIL),
    api(TRAIL, "ListTrails", 8, R, N, N, ""),
    api(TRAIL, "StopLogging", 1, W, r#"{"name":"arn:aws:cloudtrail:us-east-1:$a:trail/$0"}"#, N, RES_TRAIL),
    api(
        TRAIL,
        "UpdateTrail",
        1,
        W,
        r#"{"name":"$0","s3BucketName":"$b","isMultiRegionTrail":true,"enableLogFileValidation":true}"#,
        concat!(
            r#"{"name":"$0","s3BucketName":"$b","includeGlobalServiceEvents":true,"isMultiRegionTrail":true,"#,
            r#""trailARN":"arn:aws:cloudtrail:us-east-1:$a:trail/$0","logFileValidationEnabled":true,"isOrganizationTrail":false}"#
        ),
        RES_TRAIL,
    ),
    // SSM
    api(SSM, "GetParameter", 150, R, r#"{"name":"$p","withDecryption":true}"#, N, ""),
    api(SSM, "GetParameters", 60, R, r#"{"names":[$L],"withDecryption":true}"#, N, ""),
    api(SSM, "GetParametersByPath", 30, R, r#"{"path":"/prod/api","recursive":true,"withDecryption":true}"#, N, ""),
    api(SSM, "DescribeInstanceInformation", 25, R, r#"{"filters":[{"key":"InstanceIds","values":["$i"]}]}"#, N, ""),
    api(
        SSM,
        "UpdateInstanceInformation",
        110,
        W,
        concat!(
            r#"{"instanceId":"$i","agentVersion":"3.3.418.0","agentStatus":"Active","platformType":"Linux","platformName":"Amazon Linux","#,
            r#""platformVersion":"2023","iPAddress":"10.0.$2.17","computerName":"ip-10-0-$2-17.ec2.internal","agentName":"amazon-ssm-agent","#,
            r#""availabilityZone":"$Z","sSMConnectionChannel":"ssmmessages"}"#
        ),
        N,
        "",
    ),
    api(
        SSM,
        "PutParameter",
        4,
        W,
        r#"{"name":"$p","description":"","type":"SecureString","keyId":"alias/aws/ssm","overwrite":true,"tier":"Standard"}"#,
        r#"{"version":$N,"tier":"Standard"}"#,
        "",
    ),
    api(
        SSM,
        "SendCommand",
        3,
        W,
        r#"{"instanceIds":["$i"],"documentName":"AWS-RunShellScript","parameters":"HIDDEN_DUE_TO_SECURITY_REASONS","interactive":false}"#,
        SEND_COMMAND_RESP,
        "",
    ),
    api(
        SSM,
        "StartSession",
        2,
        W,
        r#"{"target":"$i"}"#,
        r#"{"sessionId":"$U-$q","tokenValue":"Value hidden due to security reasons."}"#,
        "",
    ),
    // Secrets Manager
    api(SECRETS, "GetSecretValue", 100, R, r#"{"secretId":"$x"}"#, N, ""),
    api(SECRETS, "GetSecretValue", 40, R, r#"{"secretId":"arn:aws:secretsmanager:$r:$a:secret:$x-$X"}"#, N, ""),
    api(SECRETS, "DescribeSecret", 25, R, r#"{"secretId":"$x"}"#, N, ""),
    api(SECRETS, "ListSecrets", 10, R, r#"{"maxResults":100}"#, N, ""),
    api(
        SECRETS,
        "PutSecretValue",
        2,
        W,
        r#"{"secretId":"$x","clientRequestToken":"$u"}"#,
        r#"{"arn":"arn:aws:secretsmanager:$r:$a:secret:$x-$X","name":"$x","versionId":"$u","versionStages":["AWSCURRENT"]}"#,
        RES_SECRET,
    ),
    api(SECRETS, "RotateSecret", 1, W, r#"{"secretId":"$x","clientRequestToken":"$u","rotateImmediately":true}"#, N, RES_SECRET),
    api(
        SECRETS,
        "CreateSecret",
        1,
        W,
        r#"{"name":"$x","clientRequestToken":"$u","description":"Managed by Terraform","kmsKeyId":"alias/aws/secretsmanager"}"#,
        r#"{"arn":"arn:aws:secretsmanager:$r:$a:secret:$x-$X","name":"$x","versionId":"$u"}"#,
        RES_SECRET,
    ),
    // RDS
    api(RDS, "DescribeDBInstances", 50, R, r#"{"dBInstanceIdentifier":"$d"}"#, N, ""),
    api(RDS, "DescribeDBClusters", 25, R, r#"{"includeShared":false}"#, N, ""),
    api(
        RDS,
        "DescribeDBSnapshots",
        15,
        R,
        r#"{"dBInstanceIdentifier":"$d","snapshotType":"automated","includeShared":false,"includePublic":false}"#,
        N,
        "",
    ),
    api(
        RDS,
        "CreateDBSnapshot",
        2,
        W,
        r#"{"dBSnapshotIdentifier":"$d-manual-$N","dBInstanceIdentifier":"$d"}"#,
        concat!(
            r#"{"dBSnapshotIdentifier":"$d-manual-$N","dBInstanceIdentifier":"$d","engine":"postgres","allocatedStorage":100,"#,
            r#""status":"creating","port":5432,"availabilityZone":"$Z","vpcId":"$v","instanceCreateTime":"$T","masterUsername":"app","#,
            r#""engineVersion":"16.3","licenseModel":"postgresql-license","snapshotType":"manual","encrypted":true,"#,
            r#""kmsKeyId":"arn:aws:kms:$r:$a:key/$k","dBSnapshotArn":"arn:aws:rds:$r:$a:snapshot:$d-manual-$N","#,
            r#""iAMDatabaseAuthenticationEnabled":false,"processorFeatures":[],"dbiResourceId":"db-$y","tagList":[],"#,
            r#""snapshotTarget":"region","storageThroughput":125,"dedicatedLogVolume":false}"#
        ),
        "",
    ),
    api(
        RDS,
        "ModifyDBInstance",
        2,
        W,
        r#"{"dBInstanceIdentifier":"$d","dBInstanceClass":"db.r6g.xlarge","applyImmediately":true}"#,
        concat!(
            r#"{"dBInstanceIdentifier":"$d","dBInstanceClass":"db.r6g.large","engine":"postgres","dBInstanceStatus":"available","#,
            r#""pendingModifiedValues":{"dBInstanceClass":"db.r6g.xlarge"},"multiAZ":true,"engineVersion":"16.3","#,
            r#""storageEncrypted":true,"dbiResourceId":"db-$y","deletionProtection":true}"#
        ),
        "",
    ),
    // DynamoDB
    api(DDB, "DescribeTable", 70, R, r#"{"tableName":"$t"}"#, N, RES_TABLE),
    api(DDB, "ListTables", 25, R, N, N, ""),
    api(DDB, "DescribeContinuousBackups", 10, R, r#"{"tableName":"$t"}"#, N, RES_TABLE),
    api(DDB, "UpdateTable", 2, W, r#"{"tableName":"$t","billingMode":"PAY_PER_REQUEST"}"#, TABLE_DESCRIPTION, RES_TABLE),
    api(
        DDB,
        "CreateTable",
        1,
        W,
        concat!(
            r#"{"tableName":"$t","attributeDefinitions":[{"attributeName":"pk","attributeType":"S"},{"attributeName":"sk","attributeType":"S"}],"#,
            r#""keySchema":[{"attributeName":"pk","keyType":"HASH"},{"attributeName":"sk","keyType":"RANGE"}],"#,
            r#""billingMode":"PAY_PER_REQUEST","sSESpecification":{"enabled":true}}"#
        ),
        TABLE_DESCRIPTION,
        RES_TABLE,
    ),
    // CloudWatch Logs
    api(LOGS, "DescribeLogStreams", 80, R, r#"{"logGroupName":"$G","orderBy":"LastEventTime","descending":true,"limit":50}"#, N, ""),
    api(LOGS, "DescribeLogGroups", 60, R, r#"{"logGroupNamePrefix":"/aws/lambda/"}"#, N, ""),
    api(LOGS, "FilterLogEvents", 20, R, r#"{"logGroupName":"$G","startTime":$M,"filterPattern":"ERROR","interleaved":true}"#, N, ""),
    api(LOGS, "CreateLogStream", 80, W, r#"{"logGroupName":"$G","logStreamName":"$D/[$$LATEST]$H"}"#, N, ""),
    api(LOGS, "CreateLogGroup", 6, W, r#"{"logGroupName":"$G"}"#, N, ""),
    api(LOGS, "PutRetentionPolicy", 3, W, r#"{"logGroupName":"$G","retentionInDays":30}"#, N, ""),
    api(LOGS, "DeleteLogGroup", 1, W, r#"{"logGroupName":"$G"}"#, N, ""),
    // CloudWatch
    api(CW, "GetMetricData", 110, R, r#"{"metricDataQueries":[$Q],"startTime":"$Y","endTime":"$T"}"#, N, ""),
    api(CW, "DescribeAlarms", 60, R, r#"{"alarmNames":["$w"],"maxRecords":100}"#, N, ""),
    api(CW, "ListMetrics", 30, R, r#"{"namespace":"AWS/EC2","metricName":"CPUUtilization","recentlyActive":"PT3H"}"#, N, ""),
    api(
        CW,
        "GetMetricStatistics",
        40,
        R,
        concat!(
            r#"{"namespace":"AWS/RDS","metricName":"CPUUtilization","dimensions":[{"name":"DBInstanceIdentifier","value":"$d"}],"#,
            r#""startTime":"$Y","endTime":"$T","period":300,"statistics":["Average","Maximum"]}"#
        ),
        N,
        "",
    ),
    api(
        CW,
        "PutMetricAlarm",
        4,
        W,
        concat!(
            r#"{"alarmName":"$w","alarmDescription":"Managed by Terraform","actionsEnabled":true,"alarmActions":["arn:aws:sns:$r:$a:ops-alerts"],"#,
            r#""metricName":"CPUUtilization","namespace":"AWS/EC2","statistic":"Average","dimensions":[{"name":"InstanceId","value":"$i"}],"#,
            r#""period":300,"evaluationPeriods":3,"threshold":80.0,"comparisonOperator":"GreaterThanThreshold","treatMissingData":"missing"}"#
        ),
        N,
        "",
    ),
    api(CW, "DeleteAlarms", 1, W, r#"{"alarmNames":["$w"]}"#, N, ""),
    // ECR
    api(ECR, "GetAuthorizationToken", 90, R, r#"{"registryIds":["$a"]}"#, N, ""),
    api(
        ECR,
        "BatchGetImage",
        45,
        R,
        concat!(
            r#"{"registryId":"$a","repositoryName":"$e","imageIds":[{"imageTag":"latest"}],"acceptedMediaTypes":["#,
            r#""application/vnd.docker.distribution.manifest.v2+json","application/vnd.oci.image.manifest.v1+json","#,
            r#""application/vnd.oci.image.index.v1+json"]}"#
        ),
        N,
        RES_REPO,
    ),
    api(ECR, "GetDownloadUrlForLayer", 45, R, r#"{"registryId":"$a","repositoryName":"$e","layerDigest":"sha256:$h"}"#, N, RES_REPO),
    api(ECR, "DescribeRepositories", 15, R, N, N, ""),
    api(ECR, "DescribeImages", 15, R, r#"{"repositoryName":"$e","imageIds":[{"imageTag":"latest"}]}"#, N, RES_REPO),
    api(
        ECR,
        "PutImage",
        4,
        W,
        r#"{"repositoryName":"$e","imageTag":"main-$q","registryId":"$a","imageManifestMediaType":"application/vnd.oci.image.manifest.v1+json"}"#,
        concat!(
            r#"{"image":{"registryId":"$a","repositoryName":"$e","imageId":{"imageDigest":"sha256:$h","imageTag":"main-$q"},"#,
            r#""imageManifestMediaType":"application/vnd.oci.image.manifest.v1+json"}}"#
        ),
        RES_REPO,
    ),
    // EKS
    api(EKS, "DescribeCluster", 45, R, r#"{"name":"$c"}"#, N, ""),
    api(EKS, "ListClusters", 15, R, N, N, ""),
    api(EKS, "ListNodegroups", 10, R, r#"{"name":"$c"}"#, N, ""),
    api(EKS, "DescribeNodegroup", 10, R, r#"{"name":"$c","nodegroupName":"$c-ng-1"}"#, N, ""),
    api(
        EKS,
        "CreateNodegroup",
        1,
        W,
        concat!(
            r#"{"clusterName":"$c","nodegroupName":"$c-ng-$N","scalingConfig":{"minSize":2,"maxSize":10,"desiredSize":3},"#,
            r#""subnets":["$s"],"instanceTypes":["m6i.xlarge"],"amiType":"AL2023_x86_64_STANDARD","#,
            r#""nodeRole":"arn:aws:iam::$a:role/eks-node-role","clientRequestToken":"$u"}"#
        ),
        concat!(
            r#"{"nodegroup":{"nodegroupName":"$c-ng-$N","nodegroupArn":"arn:aws:eks:$r:$a:nodegroup/$c/$c-ng-$N/$H","#,
            r#""clusterName":"$c","version":"1.29","status":"CREATING","capacityType":"ON_DEMAND"}}"#
        ),
        "",
    ),
    // CloudFormation
    api(CFN, "DescribeStacks", 45, R, r#"{"stackName":"$C"}"#, N, ""),
    api(CFN, "DescribeStackEvents", 25, R, r#"{"stackName":"arn:aws:cloudformation:$r:$a:stack/$C/$H"}"#, N, ""),
    api(CFN, "ListStacks", 15, R, r#"{"stackStatusFilter":["CREATE_COMPLETE","UPDATE_COMPLETE","UPDATE_ROLLBACK_COMPLETE"]}"#, N, ""),
    api(CFN, "GetTemplate", 8, R, r#"{"stackName":"$C","templateStage":"Original"}"#, N, ""),
    api(
        CFN,
        "CreateStack",
        2,
        W,
        concat!(
            r#"{"stackName":"$C","templateURL":"https://s3.$r.amazonaws.com/$b/templates/$C.yaml","parameters":["#,
            r#"{"parameterKey":"Environment","parameterValue":"prod"},{"parameterKey":"VpcId","parameterValue":"$v"}],"#,
            r#""capabilities":["CAPABILITY_NAMED_IAM"],"tags":[$A],"clientRequestToken":"$u"}"#
        ),
        r#"{"stackId":"arn:aws:cloudformation:$r:$a:stack/$C/$H"}"#,
        "",
    ),
    api(
        CFN,
        "UpdateStack",
        3,
        W,
        concat!(
            r#"{"stackName":"$C","usePreviousTemplate":true,"parameters":[{"parameterKey":"Environment","usePreviousValue":true},"#,
            r#"{"parameterKey":"ImageTag","parameterValue":"main-$q"}],"capabilities":["CAPABILITY_NAMED_IAM"],"clientRequestToken":"$u"}"#
        ),
        r#"{"stackId":"arn:aws:cloudformation:$r:$a:stack/$C/$H"}"#,
        "",
    ),
    api(CFN, "DeleteStack", 1, W, r#"{"stackName":"$C"}"#, N, ""),
    // Organizations
    api(ORGS, "DescribeOrganization", 20, R, N, N, ""),
    api(ORGS, "ListAccounts", 10, R, r#"{"maxResults":20}"#, N, ""),
    api(ORGS, "DescribeAccount", 8, R, r#"{"accountId":"$a"}"#, N, ""),
];

// Resource names (pools; lower indexes are busier).
const BUCKETS: [&str; 14] = [
    "acme-prod-assets",
    "acme-app-uploads",
    "acme-data-lake-raw",
    "acme-terraform-state",
    "aws-cloudtrail-logs-482910573316-9f3c2a1b",
    "acme-build-artifacts",
    "cf-templates-1q2w3e4r5t6y-us-east-1",
    "acme-athena-results",
    "acme-backups-eu-west-1",
    "acme-static-website",
    "acme-ml-training-data",
    "acme-vpc-flow-logs",
    "acme-config-snapshots",
    "acme-logs-archive",
];
const KEY_PREFIXES: [(&str, &str); 6] = [
    ("uploads", ".jpg"),
    ("raw/events", ".json.gz"),
    ("exports/orders", ".csv"),
    ("AWSLogs/482910573316/CloudTrail/us-east-1", ".json.gz"),
    ("thumbnails", ".webp"),
    ("models/checkpoints", ".pt"),
];
const FUNCTIONS: [&str; 10] = [
    "process-orders",
    "resize-images",
    "stripe-webhook",
    "nightly-report",
    "auth-authorizer",
    "ingest-events",
    "cleanup-snapshots",
    "slack-notifier",
    "etl-transform",
    "cost-export",
];
const TABLES: [&str; 8] = ["orders", "users", "sessions", "inventory", "payments", "audit-log", "feature-flags", "terraform-locks"];
const LOG_GROUPS: [&str; 10] = [
    "/aws/lambda/process-orders",
    "/aws/lambda/resize-images",
    "/ecs/api-service",
    "/aws/eks/prod-main/cluster",
    "/aws/rds/instance/orders-db/postgresql",
    "/aws/lambda/stripe-webhook",
    "/ecs/worker",
    "/aws/codebuild/build-backend",
    "API-Gateway-Execution-Logs_a1b2c3d4e5/prod",
    "/aws/vpc/flow-logs",
];
const PARAMETERS: [&str; 10] = [
    "/prod/api/database_url",
    "/prod/api/redis_url",
    "/prod/payments/stripe_key",
    "/shared/datadog/api_key",
    "/staging/api/database_url",
    "/prod/feature/flags",
    "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
    "/aws/service/eks/optimized-ami/1.29/amazon-linux-2/recommended/image_id",
    "/dev/app/config",
    "/prod/api/jwt_signing_key",
];
const SECRET_NAMES: [&str; 6] = [
    "prod/api/postgres",
    "prod/payments/stripe",
    "staging/api/postgres",
    "prod/datadog/api-key",
    "prod/oauth/google-client",
    "dev/api/postgres",
];
const DATABASES: [&str; 5] = ["orders-db", "analytics-replica", "users-aurora-instance-1", "legacy-mysql", "reporting-db"];
const CLUSTERS: [&str; 3] = ["prod-main", "staging", "data-platform"];
const STACKS: [&str; 7] =
    ["network-baseline", "prod-api", "datadog-integration", "eks-prod-main-nodegroup", "CDKToolkit", "static-site", "guardrails"];
const REPOS: [&str; 6] = ["api-service", "worker", "frontend", "base-images/python", "datadog/agent", "migrations"];
const POLICIES: [&str; 7] = [
    "ReadOnlyAccess",
    "AmazonS3ReadOnlyAccess",
    "AdministratorAccess",
    "AmazonEC2ContainerRegistryReadOnly",
    "CloudWatchAgentServerPolicy",
    "AmazonSSMManagedInstanceCore",
    "SecurityAudit",
];
const TRAILS: [&str; 3] = ["org-trail", "management-events", "s3-data-events"];
const ALARMS: [&str; 6] = [
    "api-5xx-rate",
    "orders-db-cpu-high",
    "lambda-errors-process-orders",
    "billing-estimated-charges",
    "eks-node-disk-full",
    "sqs-dlq-not-empty",
];
const TAGS: [(&str, &str); 10] = [
    ("Environment", "prod"),
    ("Team", "platform"),
    ("Service", "orders-api"),
    ("ManagedBy", "terraform"),
    ("CostCenter", "cc-1042"),
    ("Owner", "alice@example.com"),
    ("Name", "prod-api-asg"),
    ("kubernetes.io/cluster/prod-main", "owned"),
    ("Backup", "daily"),
    ("DataClassification", "internal"),
];
/// EC2 filters: (name, value); "" values come from pools.
const FILTERS: [(&str, &str); 7] = [
    ("instance-state-name", "running"),
    ("tag:Environment", "prod"),
    ("vpc-id", ""),
    ("tag:Team", "platform"),
    ("instance-type", "m6i.large"),
    ("tag:aws:autoscaling:groupName", "eks-prod-main-ng-1-3cc5b4d1"),
    ("availability-zone", ""),
];
/// CloudWatch metrics: (namespace, metric, dimension, value kind).
const METRICS: [(&str, &str, &str, u8); 8] = [
    ("AWS/EC2", "CPUUtilization", "InstanceId", b'i'),
    ("AWS/RDS", "DatabaseConnections", "DBInstanceIdentifier", b'd'),
    ("AWS/Lambda", "Errors", "FunctionName", b'f'),
    ("AWS/EC2", "NetworkIn", "InstanceId", b'i'),
    ("AWS/Lambda", "Duration", "FunctionName", b'f'),
    ("AWS/DynamoDB", "ConsumedReadCapacityUnits", "TableName", b't'),
    ("AWS/RDS", "FreeStorageSpace", "DBInstanceIdentifier", b'd'),
    ("AWS/EC2", "StatusCheckFailed", "InstanceId", b'i'),
];
/// Bucket policy statement (`$#` is its index, `$!` an account).
const POLICY_STATEMENT: &str = concat!(
    r#"{"Sid":"CrossAccountRead$#","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::$!:root"},"Action":["s3:GetObject","s3:ListBucket"],"#,
    r#""Resource":["arn:aws:s3:::$b","arn:aws:s3:::$b/*"],"Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-a1b2c3d4e5"},"#,
    r#""Bool":{"aws:SecureTransport":"true"}}}"#
);
/// Prefixes of EC2-style ids and the pool sizes they are drawn from.
const ID_KINDS: [(u8, &str, u64); 7] = [
    (b'i', "i-", 300),
    (b'g', "sg-", 60),
    (b'v', "vpc-", 6),
    (b's', "subnet-", 36),
    (b'l', "vol-", 300),
    (b'm', "ami-", 24),
    (b'n', "snap-", 120),
];
/// Prefixes of padding ids (`--record-bytes`), as fixed 8-byte blocks and
/// their lengths.
const PAD_IDS: [([u8; 8], usize); 6] =
    [(*b"i-000000", 2), (*b"vol-0000", 4), (*b"eni-0000", 4), (*b"snap-000", 5), (*b"sg-00000", 3), (*b"subnet-0", 7)];

// ---------------------------------------------------------------------------
// The generator

/// Where `--record-bytes` padding goes in the record being written.
#[derive(Clone, Copy)]
enum PadAt {
    None,
    /// Before this closing brace; `comma`: the object is not empty.
    Insert {
        at: usize,
        comma: bool,
    },
    /// Replace the `null` at this offset with an object.
    ReplaceNull {
        at: usize,
    },
}

/// Per-event state.
struct Event {
    t_ms: i64,
    acct: usize,
    region: &'static str,
    principal: usize,
    svc: usize,
    api: usize,
    /// Lists in this record are huge (the natural long tail).
    big: bool,
    /// Index of the list item being written (`$#`).
    item: u64,
    pad_at: PadAt,
    /// Per-placeholder values drawn once per event, so that `$b` is the same
    /// bucket in requestParameters, resources and tlsDetails.
    set: u128,
    vals: [u64; 128],
}

/// Generates records one at a time; see the module documentation.
pub struct Generator {
    rng: Rng,
    clock_ns: i128,
    interval_ns: u64,
    record_bytes: Option<usize>,
    count: u64,
    principals: Weighted,
    /// Principals who sign in to the console.
    humans: Weighted,
    accounts: Weighted,
    /// For each principal, the APIs it calls.
    apis: Vec<Weighted>,
    ev: Event,
    /// Scratch space for padding.
    tail: Vec<u8>,
    /// The diverse profile's generator, when that is the profile.
    diverse: Option<Box<diverse::Diverse>>,
}

/// Per-million probabilities.
const P_CONSOLE_LOGIN: u64 = 5_000;
const P_LATE: u64 = 20_000;
/// Per API call by a principal other than an AWS service (~3% overall).
const P_ERROR: u64 = 40_000;
const P_LOGIN_FAILURE: u64 = 120_000;
const P_BIG: u64 = 30_000;
const P_CONSOLE_SESSION: u64 = 250_000;
const P_HOME_REGION: u64 = 850_000;
const P_STRAY_IP: u64 = 10_000;

impl Generator {
    pub fn new(opts: GenOptions) -> Self {
        let rate = if opts.rate_per_sec.is_finite() && opts.rate_per_sec > 0.0 { opts.rate_per_sec } else { 50.0 };
        // One IEEE division (exactly rounded everywhere); capped so that the
        // jitter arithmetic below cannot overflow.
        let interval_ns = (1e9 / rate).min(4e18) as u64;
        let apis = PRINCIPALS
            .iter()
            .map(|p| Weighted::new(APIS.iter().enumerate().filter(|(_, a)| p.calls(a)).map(|(i, a)| (i, a.weight))))
            .collect();
        Self {
            // The seed goes through the mixer so that nearby seeds start far apart.
            rng: Rng(mix(opts.seed ^ 0x00CA_1A4E_5EED_0001)),
            clock_ns: i128::from(opts.start_ms) * 1_000_000,
            interval_ns,
            record_bytes: opts.record_bytes,
            count: 0,
            principals: Weighted::new(PRINCIPALS.iter().enumerate().map(|(i, p)| (i, p.weight))),
            humans: Weighted::new(PRINCIPALS.iter().enumerate().filter(|(_, p)| p.human && p.kind != Role).map(|(i, p)| (i, p.weight))),
            accounts: Weighted::new(ACCOUNTS.iter().enumerate().map(|(i, a)| (i, a.weight))),
            apis,
            ev: Event {
                t_ms: 0,
                acct: 0,
                region: "us-east-1",
                principal: 0,
                svc: 0,
                api: 0,
                big: false,
                item: 0,
                pad_at: PadAt::None,
                set: 0,
                vals: [0; 128],
            },
            tail: Vec::new(),
            diverse: (opts.profile == Profile::Diverse).then(|| Box::new(diverse::Diverse::new(opts.seed, opts.start_ms, interval_ns))),
        }
    }

    /// Appends one compact JSON record (no trailing newline) to `out` (does
    /// not clear it).
    pub fn next_record(&mut self, out: &mut Vec<u8>) {
        if let Some(d) = &mut self.diverse {
            return d.next_record(out);
        }
        let start = out.len();
        out.reserve(2048);
        self.begin();
        if self.rng.chance(P_CONSOLE_LOGIN) {
            let p = self.humans.pick(&mut self.rng);
            let failed = self.rng.chance(P_LOGIN_FAILURE);
            self.console_login(out, p, failed);
        } else {
            let p = self.principals.pick(&mut self.rng);
            let api = self.apis[p].pick(&mut self.rng);
            self.api_call(out, p, api);
        }
        if let Some(target) = self.record_bytes {
            self.pad(out, start, target);
        }
    }

    /// Advances the clock and resets the per-event state.
    fn begin(&mut self) {
        // Uniform jitter in [0, 2 * interval): the mean rate is exact.
        let step = (u128::from(self.interval_ns) * 2 * u128::from(self.rng.next())) >> 64;
        let mut t = self.clock_ns.div_euclid(1_000_000) as i64;
        self.clock_ns += step as i128;
        // The first event is on time: its eventTime is start_ms.
        if self.rng.chance(P_LATE) && self.count > 0 {
            t -= 1_000 * (1 + self.rng.below(300) as i64);
        }
        self.count += 1;
        // Drawn even when padding so that the stream does not depend on it.
        let big = self.rng.chance(P_BIG);
        self.ev.big = big && self.record_bytes.is_none();
        self.ev.t_ms = t;
        self.ev.set = 0;
        self.ev.pad_at = PadAt::None;
    }

    fn api_call(&mut self, out: &mut Vec<u8>, p: usize, api_idx: usize) {
        let pr = &PRINCIPALS[p];
        let api = &APIS[api_idx];
        let svc = &SERVICES[api.svc];
        let acct = if pr.acct == ANY { self.accounts.pick(&mut self.rng) } else { pr.acct };
        self.ev.principal = p;
        self.ev.api = api_idx;
        self.ev.svc = api.svc;
        self.ev.acct = acct;
        self.ev.region = if svc.global {
            "us-east-1"
        } else if self.rng.chance(P_HOME_REGION) {
            ACCOUNTS[acct].home
        } else {
            REGIONS[self.rng.skew(REGIONS.len())]
        };
        // Console sessions: root always, people sometimes; half of their
        // calls are made by the console's back end ("AWS Internal").
        let console = pr.kind == Root || pr.human && self.rng.chance(P_CONSOLE_SESSION);
        let internal = console && self.rng.below(2) == 0;
        let error = pr.kind != Service && self.rng.chance(P_ERROR);

        self.head(out);
        self.identity(out, pr, console);
        self.time_source_name(out, svc.source, api.name);
        let (ip, agent) = if pr.kind == Service {
            (INVOKERS[pr.idx], INVOKERS[pr.idx])
        } else if !pr.via.is_empty() {
            (pr.via, pr.via)
        } else if internal {
            ("AWS Internal", "AWS Internal")
        } else {
            let ip = if self.rng.chance(P_STRAY_IP) {
                IPS[self.rng.below(IPS.len() as u64) as usize]
            } else {
                IPS[(pr.ips.0 + self.rng.skew(pr.ips.1.max(1))) % IPS.len()]
            };
            let agent = if console {
                AGENTS[BROWSERS[self.rng.below(2) as usize]]
            } else {
                AGENTS[pr.agents.get(self.rng.skew(pr.agents.len().max(1))).copied().unwrap_or(0)]
            };
            (ip, agent)
        };
        put(out, r#"","sourceIPAddress":""#);
        put(out, ip);
        put(out, r#"","userAgent":""#);
        put(out, agent);
        out.push(b'"');
        if error {
            let errors = svc.errors;
            let total: u32 = errors.iter().map(|e| e.2).sum();
            let mut r = self.rng.below(u64::from(total)) as u32;
            let (code, message) = errors
                .iter()
                .find(|e| {
                    let hit = r < e.2;
                    r = r.saturating_sub(e.2);
                    hit
                })
                .map_or(("AccessDenied", "Access Denied"), |e| (e.0, e.1));
            put(out, r#","errorCode":""#);
            put(out, code);
            put(out, r#"","errorMessage":""#);
            self.render(out, message);
            out.push(b'"');
        }
        put(out, r#","requestParameters":"#);
        let req_start = out.len();
        self.render(out, api.req);
        self.ev.pad_at = if api.req == N {
            PadAt::ReplaceNull { at: req_start }
        } else {
            PadAt::Insert { at: out.len() - 1, comma: out.len() - req_start > 2 }
        };
        put(out, r#","responseElements":"#);
        self.render(out, if error { N } else { api.resp });
        if !api.extra.is_empty() {
            put(out, r#","additionalEventData":"#);
            self.render(out, api.extra);
        }
        put(out, r#","requestID":""#);
        match svc.request_id {
            RequestId::Uuid => self.uuid(out),
            RequestId::S3 => put_chars(out, self.rng.next(), 16, ALNUM),
            RequestId::Dynamo => put_chars(out, self.rng.next(), 52, ALNUM),
        }
        put(out, r#"","eventID":""#);
        self.uuid(out);
        put(out, if api.read_only { r#"","readOnly":true"# } else { r#"","readOnly":false"# });
        if !api.res.is_empty() && !error {
            put(out, r#","resources":["#);
            self.render(out, api.res);
            out.push(b']');
        }
        put(out, r#","eventType":"AwsApiCall","managementEvent":"#);
        put(out, if api.is_data() { "false" } else { "true" });
        put(out, r#","recipientAccountId":""#);
        put(out, ACCOUNTS[acct].id);
        out.push(b'"');
        if ip.starts_with("10.") || ip.starts_with("172.31.") {
            // Calls through an interface VPC endpoint.
            put(out, r#","vpcEndpointId":"vpce-0"#);
            put_hex16(out, id64(b'E', acct, 0));
            put(out, r#"","vpcEndpointAccountId":""#);
            put(out, ACCOUNTS[acct].id);
            out.push(b'"');
        }
        put(out, if api.is_data() { r#","eventCategory":"Data""# } else { r#","eventCategory":"Management""# });
        // Calls made inside AWS on a principal's behalf carry no TLS details.
        if pr.kind != Service && pr.via.is_empty() && !internal {
            self.tls(out, svc.host);
        }
        if console {
            put(out, r#","sessionCredentialFromConsole":"true""#);
        }
        out.push(b'}');
    }

    fn console_login(&mut self, out: &mut Vec<u8>, p: usize, failed: bool) {
        let pr = &PRINCIPALS[p];
        let acct = if pr.acct == ANY { self.accounts.pick(&mut self.rng) } else { pr.acct };
        self.ev.principal = p;
        self.ev.acct = acct;
        self.ev.region = "us-east-1";
        let id = ACCOUNTS[acct].id;
        self.head(out);
        if pr.kind == Root {
            put(out, r#"{"type":"Root","principalId":""#);
            put(out, id);
            put(out, r#"","arn":"arn:aws:iam::"#);
            put(out, id);
            put(out, r#":root","accountId":""#);
            put(out, id);
            put(out, if failed { r#"","accessKeyId":""}"# } else { r#""}"# });
        } else if failed && self.rng.below(10) < 3 {
            // An unknown user name is not revealed.
            put(out, r#"{"type":"IAMUser","accountId":""#);
            put(out, id);
            put(out, r#"","accessKeyId":"","userName":"HIDDEN_DUE_TO_SECURITY_REASONS"}"#);
        } else {
            let name = USERS[pr.idx];
            put(out, r#"{"type":"IAMUser","principalId":"AIDA"#);
            put_chars(out, ident_hash(acct, name) ^ 1, 17, B32);
            if failed {
                put(out, r#"","accountId":""#);
                put(out, id);
                put(out, r#"","accessKeyId":"","userName":""#);
            } else {
                put(out, r#"","arn":"arn:aws:iam::"#);
                put(out, id);
                put(out, ":user/");
                put(out, name);
                put(out, r#"","accountId":""#);
                put(out, id);
                put(out, r#"","userName":""#);
            }
            put(out, name);
            put(out, r#""}"#);
        }
        self.time_source_name(out, "signin.amazonaws.com", "ConsoleLogin");
        put(out, r#"","sourceIPAddress":""#);
        put(out, IPS[(pr.ips.0 + self.rng.skew(pr.ips.1.max(1))) % IPS.len()]);
        put(out, r#"","userAgent":""#);
        put(out, AGENTS[BROWSERS[self.rng.below(2) as usize]]);
        out.push(b'"');
        if failed {
            put(out, r#","errorMessage":"Failed authentication""#);
        }
        put(out, r#","requestParameters":null,"responseElements":{"ConsoleLogin":""#);
        put(out, if failed { "Failure" } else { "Success" });
        put(
            out,
            r#""},"additionalEventData":{"LoginTo":"https://console.aws.amazon.com/console/home?hashArgs=%23&isauthcode=true&state=hashArgsFromTB_us-east-1_"#,
        );
        self.placeholder(out, b'q');
        put(out, r#"","MobileVersion":"No","MFAUsed":""#);
        let mfa = !failed && (pr.kind == Root || self.rng.below(10) < 8);
        put(out, if mfa { "Yes" } else { "No" });
        put(out, r#""}"#);
        self.ev.pad_at = PadAt::Insert { at: out.len() - 1, comma: true };
        put(out, r#","eventID":""#);
        self.uuid(out);
        put(out, r#"","readOnly":false,"eventType":"AwsConsoleSignIn","managementEvent":true,"recipientAccountId":""#);
        put(out, id);
        put(out, r#"","eventCategory":"Management""#);
        self.tls(out, "signin.aws.amazon.com");
        out.push(b'}');
    }

    /// `{"eventVersion":"1.xx","userIdentity":`
    fn head(&mut self, out: &mut Vec<u8>) {
        put(out, r#"{"eventVersion":""#);
        put(
            out,
            match self.rng.below(100) {
                0 => "1.05",
                1..=30 => "1.08",
                31..=60 => "1.09",
                61..=85 => "1.10",
                _ => "1.11",
            },
        );
        put(out, r#"","userIdentity":"#);
    }

    /// `,"eventTime":"…","eventSource":"…","eventName":"…","awsRegion":"…` (open quote).
    fn time_source_name(&mut self, out: &mut Vec<u8>, source: &str, name: &str) {
        put(out, r#","eventTime":""#);
        put_iso(out, self.ev.t_ms);
        put(out, r#"","eventSource":""#);
        put(out, source);
        put(out, r#"","eventName":""#);
        put(out, name);
        put(out, r#"","awsRegion":""#);
        put(out, self.ev.region);
    }

    fn tls(&mut self, out: &mut Vec<u8>, host: &str) {
        put(
            out,
            if self.rng.below(4) == 0 {
                r#","tlsDetails":{"tlsVersion":"TLSv1.2","cipherSuite":"ECDHE-RSA-AES128-GCM-SHA256","clientProvidedHostHeader":""#
            } else {
                r#","tlsDetails":{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":""#
            },
        );
        self.render(out, host);
        put(out, r#""}"#);
    }

    fn uuid(&mut self, out: &mut Vec<u8>) {
        let (a, b) = (self.rng.next(), self.rng.next());
        put_uuid(out, a, b);
    }

    fn identity(&mut self, out: &mut Vec<u8>, pr: &Principal, console: bool) {
        let acct = self.ev.acct;
        let id = ACCOUNTS[acct].id;
        match pr.kind {
            User => {
                let name = USERS[pr.idx];
                let h = ident_hash(acct, name);
                put(out, r#"{"type":"IAMUser","principalId":"AIDA"#);
                put_chars(out, h ^ 1, 17, B32);
                put(out, r#"","arn":"arn:aws:iam::"#);
                put(out, id);
                put(out, ":user/");
                put(out, name);
                put(out, r#"","accountId":""#);
                put(out, id);
                put(out, r#"","accessKeyId":""#);
                if console {
                    self.session_key(out, h);
                } else {
                    // Long-term keys are stable per user.
                    put(out, "AKIA");
                    put_chars(out, h ^ 2, 16, B32);
                }
                put(out, r#"","userName":""#);
                put(out, name);
                out.push(b'"');
                if console {
                    self.session_context(out, h, "true");
                }
                out.push(b'}');
            }
            Role => {
                let (role, session) = ROLES[pr.idx];
                let h = ident_hash(acct, role);
                put(out, r#"{"type":"AssumedRole","principalId":"AROA"#);
                put_chars(out, h ^ 3, 17, B32);
                out.push(b':');
                put(out, session);
                put(out, r#"","arn":"arn:aws:sts::"#);
                put(out, id);
                put(out, ":assumed-role/");
                put(out, role);
                out.push(b'/');
                put(out, session);
                put(out, r#"","accountId":""#);
                put(out, id);
                put(out, r#"","accessKeyId":""#);
                self.session_key(out, h);
                put(out, r#"","sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROA"#);
                put_chars(out, h ^ 3, 17, B32);
                put(out, r#"","arn":"arn:aws:iam::"#);
                put(out, id);
                put(out, ":role/");
                put(out, role);
                put(out, r#"","accountId":""#);
                put(out, id);
                put(out, r#"","userName":""#);
                put(out, role);
                put(out, r#""},"webIdFederationData":{},"attributes":{"creationDate":""#);
                self.session_start(out, h);
                put(out, r#"","mfaAuthenticated":"false"}"#);
                if session.starts_with("i-") {
                    put(out, r#","ec2RoleDelivery":"2.0""#);
                }
                out.push(b'}');
                if !pr.via.is_empty() {
                    put(out, r#","invokedBy":""#);
                    put(out, pr.via);
                    out.push(b'"');
                }
                out.push(b'}');
            }
            Root => {
                put(out, r#"{"type":"Root","principalId":""#);
                put(out, id);
                put(out, r#"","arn":"arn:aws:iam::"#);
                put(out, id);
                put(out, r#":root","accountId":""#);
                put(out, id);
                put(out, r#"","accessKeyId":""#);
                let h = ident_hash(acct, "root");
                self.session_key(out, h);
                out.push(b'"');
                self.session_context(out, h, "true");
                out.push(b'}');
            }
            Service => {
                put(out, r#"{"type":"AWSService","invokedBy":""#);
                put(out, INVOKERS[pr.idx]);
                put(out, r#""}"#);
            }
        }
    }

    /// `,"sessionContext":{…}` of a console session.
    fn session_context(&mut self, out: &mut Vec<u8>, h: u64, mfa: &str) {
        put(out, r#","sessionContext":{"sessionIssuer":{},"webIdFederationData":{},"attributes":{"creationDate":""#);
        self.session_start(out, h);
        put(out, r#"","mfaAuthenticated":""#);
        put(out, mfa);
        put(out, r#""}}"#);
    }

    /// Sessions last an hour, staggered per principal: one ASIA key per
    /// principal and hour, like real temporary credentials.
    fn session_window(&self, h: u64) -> (i64, i64) {
        let phase = (mix(h ^ 5) % 3_600_000) as i64;
        let w = (self.ev.t_ms + phase).div_euclid(3_600_000);
        (w, w * 3_600_000 - phase)
    }

    fn session_key(&mut self, out: &mut Vec<u8>, h: u64) {
        let (w, _) = self.session_window(h);
        put(out, "ASIA");
        put_chars(out, mix(h ^ (w as u64).wrapping_mul(GOLDEN)), 16, B32);
    }

    fn session_start(&mut self, out: &mut Vec<u8>, h: u64) {
        let (_, start) = self.session_window(h);
        put_iso(out, start);
    }

    // -- templates --------------------------------------------------------

    /// Writes a template, expanding `$x` placeholders.
    fn render(&mut self, out: &mut Vec<u8>, tpl: &str) {
        let mut rest = tpl.as_bytes();
        while let Some(p) = rest.iter().position(|&c| c == b'$') {
            out.extend_from_slice(&rest[..p]);
            let k = rest.get(p + 1).copied().unwrap_or(b'$');
            self.placeholder(out, k);
            rest = rest.get(p + 2..).unwrap_or_default();
        }
        out.extend_from_slice(rest);
    }

    /// A value drawn once per event for placeholder `k`.
    fn cached(&mut self, k: u8, draw: impl FnOnce(&mut Rng) -> u64) -> u64 {
        let k = usize::from(k & 127);
        if self.ev.set & 1 << k == 0 {
            self.ev.vals[k] = draw(&mut self.rng);
            self.ev.set |= 1 << k;
        }
        self.ev.vals[k]
    }

    /// A pool index drawn once per event for placeholder `k`.
    fn pick(&mut self, k: u8, pool: usize) -> usize {
        self.cached(k, |r| r.skew(pool) as u64) as usize
    }

    /// Expands one placeholder. Entities (`$b` bucket, `$i` instance, ...)
    /// are drawn once per event from skewed pools; `$u` and `$z` are fresh
    /// on every use; upper-case list placeholders expand to comma-separated
    /// array items whose count has the long tail.
    fn placeholder(&mut self, out: &mut Vec<u8>, k: u8) {
        let acct = self.ev.acct;
        match k {
            b'$' => out.push(b'$'),
            b'a' => put(out, ACCOUNTS[acct].id),
            b'r' => put(out, self.ev.region),
            b'Z' => {
                put(out, self.ev.region);
                out.push(b'a' + self.pick(b'Z', 3) as u8);
            }
            b'b' => put(out, BUCKETS[self.pick(k, BUCKETS.len())]),
            b'o' => {
                let v = self.cached(k, Rng::next);
                let (prefix, ext) = KEY_PREFIXES[(v % KEY_PREFIXES.len() as u64) as usize];
                put(out, prefix);
                out.push(b'/');
                put_date_path(out, self.ev.t_ms);
                out.push(b'/');
                put_hex(out, v >> 8, 12);
                put(out, ext);
            }
            b'i' | b'g' | b'v' | b's' | b'l' | b'm' | b'n' => {
                let (_, prefix, pool) = ID_KINDS.iter().copied().find(|x| x.0 == k).unwrap_or((k, "i-", 1));
                let idx = self.pick(k, pool as usize) as u64;
                put_ec2_id(out, prefix, k, acct, idx);
            }
            b'k' => {
                let h = id64(k, acct, self.pick(k, 12) as u64);
                put_uuid(out, h, mix(h));
            }
            b'R' => put(out, ROLES[self.pick(k, ROLES.len())].0),
            b'S' => put(out, ROLES[self.pick(b'R', ROLES.len())].1),
            b'O' => {
                let role = ROLES[self.pick(b'R', ROLES.len())].0;
                put(out, "AROA");
                put_chars(out, ident_hash(acct, role) ^ 3, 17, B32);
            }
            b'K' => {
                let role = ROLES[self.pick(b'R', ROLES.len())].0;
                // The key the new session will use (see `identity`).
                self.session_key(out, ident_hash(acct, role));
            }
            b'U' => put(out, USERS[self.pick(k, USERS.len())]),
            b'V' => {
                let user = USERS[self.pick(b'U', USERS.len())];
                put(out, "AIDA");
                put_chars(out, ident_hash(acct, user) ^ 1, 17, B32);
            }
            b'f' => put(out, FUNCTIONS[self.pick(k, FUNCTIONS.len())]),
            b't' => put(out, TABLES[self.pick(k, TABLES.len())]),
            b'G' => put(out, LOG_GROUPS[self.pick(k, LOG_GROUPS.len())]),
            b'p' => put(out, PARAMETERS[self.pick(k, PARAMETERS.len())]),
            b'x' => put(out, SECRET_NAMES[self.pick(k, SECRET_NAMES.len())]),
            b'X' => {
                // Secrets Manager's 6-character ARN suffix, stable per secret.
                let name = SECRET_NAMES[self.pick(b'x', SECRET_NAMES.len())];
                put_chars(out, ident_hash(acct, name), 6, &B64[..62]);
            }
            b'd' => put(out, DATABASES[self.pick(k, DATABASES.len())]),
            b'c' => put(out, CLUSTERS[self.pick(k, CLUSTERS.len())]),
            b'C' => put(out, STACKS[self.pick(k, STACKS.len())]),
            b'e' => put(out, REPOS[self.pick(k, REPOS.len())]),
            b'P' => put(out, POLICIES[self.pick(k, POLICIES.len())]),
            b'0' => put(out, TRAILS[self.pick(k, TRAILS.len())]),
            b'w' => put(out, ALARMS[self.pick(k, ALARMS.len())]),
            b'u' => self.uuid(out),
            b'h' => {
                let v = self.cached(k, Rng::next);
                for i in 0..4 {
                    put_hex16(out, mix(v.wrapping_add(i)));
                }
            }
            b'H' => {
                let v = self.cached(k, Rng::next);
                put_hex16(out, v);
                put_hex16(out, mix(v));
            }
            b'q' => {
                let v = self.cached(k, Rng::next);
                put_hex16(out, v);
            }
            b'y' => {
                let v = self.cached(k, Rng::next);
                put_chars(out, v, 16, B32);
            }
            b'j' => {
                let v = self.cached(k, Rng::next);
                put_chars(out, v, 76, B64);
            }
            b'J' => {
                let v = self.cached(k, Rng::next);
                put_chars(out, v, 32, &B64[..62]);
            }
            b'z' => {
                // A session token: a fixed header, then random base64.
                put(out, "IQoJb3JpZ2luX2VjE");
                let v = self.rng.next();
                put_chars(out, v, 120, B64);
                out.push(b'=');
            }
            b'N' => put_u64(out, self.cached(k, |r| 1 + r.below(999))),
            b'B' => {
                // Object and code sizes: mostly small, up to 5 MB.
                let v = self.cached(k, |r| {
                    let m = r.below(5_000_000) + 1;
                    1 + r.below(m)
                });
                put_u64(out, v);
            }
            b'2' => put_u64(out, self.cached(k, |r| r.below(256))),
            b'M' => put_i64(out, self.ev.t_ms),
            b'T' => put_human(out, self.ev.t_ms),
            b'E' => put_human(out, self.ev.t_ms + 3_600_000),
            b'Y' => put_human(out, self.ev.t_ms - 3_600_000),
            b'1' => put_lambda_time(out, self.ev.t_ms),
            b'D' => put_date_path(out, self.ev.t_ms),
            b'%' => self.principal_arn(out),
            b'&' => {
                let svc = &SERVICES[self.ev.svc];
                let name = APIS[self.ev.api].name;
                put(out, svc.prefix);
                out.push(b':');
                // Lambda's versioned event names: GetFunction20150331v2.
                put(out, name.split(|c: char| c.is_ascii_digit()).next().unwrap_or(name));
            }
            b'^' => {
                // What an IAM request names: a user, a policy or a role.
                let req = APIS[self.ev.api].req;
                if req.contains("$U") {
                    self.render(out, "user with name $U");
                } else if req.contains("$P") {
                    self.render(out, "policy arn:aws:iam::aws:policy/$P");
                } else {
                    self.render(out, "role with name $R");
                }
            }
            b'#' => put_u64(out, self.ev.item),
            b'!' => put(out, ACCOUNTS[(self.ev.item % ACCOUNTS.len() as u64) as usize].id),
            b'A' | b'F' | b'I' | b'L' | b'Q' | b'W' => self.list(out, k),
            _ => debug_assert!(false, "unknown template placeholder ${}", k as char),
        }
    }

    fn principal_arn(&mut self, out: &mut Vec<u8>) {
        let pr = &PRINCIPALS[self.ev.principal];
        let id = ACCOUNTS[self.ev.acct].id;
        match pr.kind {
            User => {
                put(out, "arn:aws:iam::");
                put(out, id);
                put(out, ":user/");
                put(out, USERS[pr.idx]);
            }
            Role => {
                let (role, session) = ROLES[pr.idx];
                put(out, "arn:aws:sts::");
                put(out, id);
                put(out, ":assumed-role/");
                put(out, role);
                out.push(b'/');
                put(out, session);
            }
            Root => {
                put(out, "arn:aws:iam::");
                put(out, id);
                put(out, ":root");
            }
            Service => put(out, INVOKERS[pr.idx]),
        }
    }

    /// Array items of list placeholder `k`. The length and first index are
    /// drawn once per event, so a list repeated in the response matches.
    fn list(&mut self, out: &mut Vec<u8>, k: u8) {
        // (minimum, approximate item bytes, maximum)
        let (min, item_bytes, max) = match k {
            b'A' => (1, 40, 6),
            b'F' => (0, 75, 250),
            b'I' => (0, 36, 500),
            b'L' => (1, 30, 10),
            b'Q' => (1, 200, 90),
            _ => (1, 330, 60),
        };
        // At most one huge list per record: the tail is 4-20 KB records.
        let big = self.ev.big && self.ev.set & 1 << k == 0;
        if big {
            self.ev.big = false;
        }
        let v = self.cached(k, |r| {
            let n = if big {
                (3_000 + r.below(14_500)) / item_bytes
            } else {
                match r.below(100) {
                    0..=44 => 0,
                    45..=79 => 1,
                    80..=91 => 2,
                    92..=97 => 3 + r.below(3),
                    _ => 6 + r.below(6),
                }
            };
            n.clamp(min, max) << 32 | r.below(1 << 16)
        });
        let (n, base) = (v >> 32, v & 0xffff);
        let acct = self.ev.acct;
        for i in 0..n {
            if i > 0 {
                out.push(b',');
            }
            let j = base + i;
            match k {
                b'A' => {
                    let (key, value) = TAGS[(j % TAGS.len() as u64) as usize];
                    put(out, r#"{"key":""#);
                    put(out, key);
                    if i >= TAGS.len() as u64 {
                        out.push(b'-');
                        put_u64(out, i);
                    }
                    put(out, r#"","value":""#);
                    put(out, value);
                    put(out, r#""}"#);
                }
                b'F' => {
                    let (name, value) =
                        if i < FILTERS.len() as u64 { FILTERS[(j % FILTERS.len() as u64) as usize] } else { ("instance-id", "") };
                    put(out, r#"{"name":""#);
                    put(out, name);
                    put(out, r#"","valueSet":{"items":[{"value":""#);
                    match (name, value) {
                        ("vpc-id", "") => self.placeholder(out, b'v'),
                        ("availability-zone", "") => self.placeholder(out, b'Z'),
                        (_, "") => put_ec2_id(out, "i-", b'i', acct, j),
                        _ => put(out, value),
                    }
                    put(out, r#""}]}}"#);
                }
                b'I' => {
                    put(out, r#"{"instanceId":""#);
                    put_ec2_id(out, "i-", b'i', acct, j % 2_000);
                    put(out, r#""}"#);
                }
                b'L' => {
                    out.push(b'"');
                    put(out, PARAMETERS[(j % PARAMETERS.len() as u64) as usize]);
                    out.push(b'"');
                }
                b'Q' => {
                    let (ns, metric, dim, kind) = METRICS[(j % METRICS.len() as u64) as usize];
                    put(out, r#"{"id":"m"#);
                    put_u64(out, i);
                    put(out, r#"","metricStat":{"metric":{"namespace":""#);
                    put(out, ns);
                    put(out, r#"","metricName":""#);
                    put(out, metric);
                    put(out, r#"","dimensions":[{"name":""#);
                    put(out, dim);
                    put(out, r#"","value":""#);
                    match kind {
                        b'i' => put_ec2_id(out, "i-", b'i', acct, j % 300),
                        b'd' => put(out, DATABASES[(j % DATABASES.len() as u64) as usize]),
                        b't' => put(out, TABLES[(j % TABLES.len() as u64) as usize]),
                        _ => put(out, FUNCTIONS[(j % FUNCTIONS.len() as u64) as usize]),
                    }
                    put(out, r#""}]},"period":300,"stat":"Average"},"returnData":true}"#);
                }
                _ => {
                    self.ev.item = i;
                    self.render(out, POLICY_STATEMENT);
                }
            }
        }
    }

    /// Pads the record that starts at `start` to about `target` bytes with a
    /// list of resource ids inside requestParameters (or the console
    /// sign-in's additionalEventData).
    fn pad(&mut self, out: &mut Vec<u8>, start: usize, target: usize) {
        let have = out.len() - start;
        let (at, comma, replace) = match self.ev.pad_at {
            PadAt::None => return,
            PadAt::Insert { at, comma } => (at, comma, 0),
            PadAt::ReplaceNull { at } => (at, false, 4),
        };
        // Below ~48 bytes short the record is already within 10% of any
        // target worth padding to.
        if target < have + 48 {
            return;
        }
        // Set the rest of the record aside (a few hundred bytes), write the
        // padding in place, and put the rest back.
        self.tail.clear();
        self.tail.extend_from_slice(&out[at + replace..]);
        out.truncate(at);
        let budget = target - have + replace;
        let pad_start = out.len();
        if replace > 0 {
            out.push(b'{');
        } else if comma {
            out.push(b',');
        }
        put(out, r#""resourceIds":["#);
        let close = if replace > 0 { 2 } else { 1 };
        out.reserve(budget + self.tail.len());
        let mut first = true;
        loop {
            // Random ids (one PRNG output each, to keep padding cheap),
            // each item assembled on the stack: `,"` prefix 0 16-hex `"`.
            let r = self.rng.next();
            let (prefix, prefix_len) = PAD_IDS[((r >> 61) % PAD_IDS.len() as u64) as usize];
            // Assembled in place in a fixed-size block (a variable-length
            // copy per item is a memmove call, which dominated the cost).
            let len = out.len();
            let item = grow::<32>(out);
            let mut n = usize::from(!first);
            item[0] = b',';
            item[n] = b'"';
            n += 1;
            // Fixed-size (8-byte) copy, then keep only the prefix.
            item[n..n + 8].copy_from_slice(&prefix);
            n += prefix_len;
            item[n] = b'0';
            n += 1;
            for byte in r.to_be_bytes() {
                item[n..n + 2].copy_from_slice(&HEX_PAIRS[usize::from(byte)]);
                n += 2;
            }
            item[n] = b'"';
            n += 1;
            if len - pad_start + n + close > budget {
                out.truncate(len);
                break;
            }
            out.truncate(len + n);
            first = false;
        }
        out.push(b']');
        if replace > 0 {
            out.push(b'}');
        }
        out.extend_from_slice(&self.tail);
    }
}

/// `prefix` + 17 hex digits, stable for (kind, account, index), like
/// `i-0a1b2c3d4e5f60718`.
fn put_ec2_id(out: &mut Vec<u8>, prefix: &str, kind: u8, acct: usize, idx: u64) {
    put(out, prefix);
    out.push(b'0');
    put_hex16(out, id64(kind, acct, idx));
}

/// APIs that only agents and services call (they have them in their
/// `Apis::Only` lists): people and pipelines do not.
const MACHINE_ONLY: [&str; 5] =
    ["UpdateInstanceInformation", "CreateLogStream", "GetDownloadUrlForLayer", "BatchGetImage", "AssumeRoleWithWebIdentity"];

impl Principal {
    fn calls(&self, api: &Api) -> bool {
        match self.apis {
            Apis::All => !MACHINE_ONLY.contains(&api.name),
            Apis::Reads => api.read_only && !api.is_data(),
            Apis::Only(names) => names.contains(&api.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn records(opts: GenOptions, n: usize) -> Vec<Vec<u8>> {
        let mut g = Generator::new(opts);
        (0..n)
            .map(|_| {
                let mut v = Vec::new();
                g.next_record(&mut v);
                v
            })
            .collect()
    }

    fn seeded(seed: u64, n: usize) -> Vec<Vec<u8>> {
        records(GenOptions { seed, ..GenOptions::default() }, n)
    }

    fn parse(r: &[u8]) -> Value {
        serde_json::from_slice(r).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(r)))
    }

    // Goal: the output is a pure function of the options, and appending does
    // not disturb what the buffer already holds.
    #[test]
    fn same_seed_same_output() {
        assert_eq!(seeded(7, 2_000), seeded(7, 2_000));
        let mut g = Generator::new(GenOptions { seed: 7, ..GenOptions::default() });
        let mut buf = b"prefix".to_vec();
        g.next_record(&mut buf);
        assert_eq!(&buf[..6], b"prefix");
        assert_eq!(&buf[6..], seeded(7, 1)[0].as_slice());
    }

    // Goal: different seeds give different streams, with no shared eventIDs.
    #[test]
    fn different_seeds_differ() {
        let (a, b) = (seeded(1, 1_000), seeded(2, 1_000));
        assert!(a.iter().zip(&b).all(|(x, y)| x != y));
        let ids = |rs: &[Vec<u8>]| rs.iter().map(|r| parse(r)["eventID"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
        let ia: std::collections::HashSet<_> = ids(&a).into_iter().collect();
        assert!(ids(&b).iter().all(|i| !ia.contains(i)));
    }

    // Goal: every record is valid JSON with the core fields, unique eventIDs,
    // and top-level keys in CloudTrail's order.
    #[test]
    fn records_are_valid_cloudtrail() {
        let mut ids = std::collections::HashSet::new();
        for r in seeded(3, 20_000) {
            let v = parse(&r);
            for k in ["eventTime", "eventName", "eventID", "eventSource", "eventVersion", "awsRegion", "recipientAccountId"] {
                assert!(v[k].is_string(), "{k} missing in {v}");
            }
            assert!(v["userIdentity"].is_object());
            assert!(v["readOnly"].is_boolean() && v["managementEvent"].is_boolean());
            let id = v["eventID"].as_str().unwrap();
            assert_eq!(id.len(), 36);
            assert_eq!(&id[14..15], "4");
            assert!(ids.insert(id.to_owned()), "duplicate eventID {id}");
            let text = std::str::from_utf8(&r).unwrap();
            let keys = [
                "\"eventVersion\":",
                "\"userIdentity\":",
                "\"eventTime\":",
                "\"eventSource\":",
                "\"eventName\":",
                "\"awsRegion\":",
                "\"sourceIPAddress\":",
                "\"userAgent\":",
                "\"requestParameters\":",
                "\"responseElements\":",
                "\"eventID\":",
                "\"readOnly\":",
                "\"eventType\":",
                "\"managementEvent\":",
                "\"recipientAccountId\":",
                "\"eventCategory\":",
            ];
            let pos: Vec<usize> = keys.iter().map(|k| text.find(k).unwrap_or_else(|| panic!("{k} in {text}"))).collect();
            assert!(pos.windows(2).all(|w| w[0] < w[1]), "key order in {text}");
        }
    }

    // Goal: the record mix looks like a real trail: reads are read-only,
    // data events and console sign-ins are well formed and about as frequent
    // as intended, identities have real shapes, and a few principals and
    // names dominate.
    #[test]
    fn realistic_mix() {
        let recs = seeded(4, 20_000);
        let n = recs.len() as f64;
        let (mut logins, mut data, mut assumed, mut reads) = (0, 0, 0, 0);
        let mut names: std::collections::HashMap<String, usize> = Default::default();
        let mut users: std::collections::HashMap<String, usize> = Default::default();
        let mut accounts = std::collections::HashSet::new();
        for r in &recs {
            let v = parse(r);
            let name = v["eventName"].as_str().unwrap().to_owned();
            let ui = &v["userIdentity"];
            accounts.insert(v["recipientAccountId"].as_str().unwrap().to_owned());
            if ["Describe", "Get", "List"].iter().any(|p| name.starts_with(p)) || name == "Decrypt" || name == "AssumeRole" {
                assert_eq!(v["readOnly"], true, "{name}");
                reads += 1;
            }
            if name == "ConsoleLogin" {
                logins += 1;
                assert_eq!(v["eventSource"], "signin.amazonaws.com");
                assert_eq!(v["eventType"], "AwsConsoleSignIn");
                assert!(v["requestParameters"].is_null());
                let outcome = v["responseElements"]["ConsoleLogin"].as_str().unwrap();
                assert_eq!(outcome == "Failure", v["errorMessage"] == "Failed authentication");
                assert!(v["additionalEventData"]["MFAUsed"].is_string());
            } else {
                assert_eq!(v["eventType"], "AwsApiCall");
            }
            if v["eventCategory"] == "Data" {
                data += 1;
                assert_eq!(v["managementEvent"], false);
                assert!(name.ends_with("Object"));
                if v.get("errorCode").is_none() {
                    assert_eq!(v["resources"][0]["type"], "AWS::S3::Object");
                }
            } else {
                assert_eq!(v["eventCategory"], "Management");
            }
            if let Some(res) = v["resources"].as_array() {
                assert!(res.iter().all(|x| x["ARN"].as_str().is_some_and(|a| a.starts_with("arn:aws:"))));
            }
            match ui["type"].as_str().unwrap() {
                "AssumedRole" => {
                    assumed += 1;
                    let arn = ui["arn"].as_str().unwrap();
                    let issuer = &ui["sessionContext"]["sessionIssuer"];
                    let role = issuer["userName"].as_str().unwrap();
                    let session = arn.rsplit('/').next().unwrap();
                    assert!(arn.starts_with(&format!("arn:aws:sts::{}:assumed-role/{role}/", ui["accountId"].as_str().unwrap())));
                    assert_eq!(ui["principalId"].as_str().unwrap(), format!("{}:{session}", issuer["principalId"].as_str().unwrap()));
                    assert!(ui["principalId"].as_str().unwrap().starts_with("AROA"));
                    assert!(ui["accessKeyId"].as_str().unwrap().starts_with("ASIA"));
                    assert_eq!(issuer["type"], "Role");
                    assert_eq!(ui["sessionContext"]["attributes"]["mfaAuthenticated"], "false");
                }
                "IAMUser" => {
                    let user = ui["userName"].as_str().unwrap().to_owned();
                    if name != "ConsoleLogin" {
                        let key = ui["accessKeyId"].as_str().unwrap();
                        assert!(key.len() == 20 && (key.starts_with("AKIA") || key.starts_with("ASIA")), "{key}");
                    }
                    *users.entry(user).or_default() += 1;
                }
                "Root" => assert!(ui["arn"].as_str().unwrap().ends_with(":root")),
                "AWSService" => assert_eq!(ui["invokedBy"], v["sourceIPAddress"]),
                t => panic!("identity type {t}"),
            }
            *names.entry(name).or_default() += 1;
        }
        let frac = |x: usize| x as f64 / n;
        assert!((0.002..0.01).contains(&frac(logins)), "console logins {logins}");
        assert!((0.015..0.06).contains(&frac(data)), "data events {data}");
        assert!(frac(assumed) > 0.3, "assumed-role events {assumed}");
        assert!(frac(reads) > 0.6, "reads {reads}");
        assert!(accounts.len() == ACCOUNTS.len());
        // Zipf-like: the top few names carry a large share.
        let mut counts: Vec<usize> = names.values().copied().collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        assert!(names.len() >= 80, "{} distinct event names", names.len());
        assert!(frac(counts[..5].iter().sum()) > 0.3, "top names {counts:?}");
        for top in ["AssumeRole", "Decrypt", "DescribeInstances"] {
            assert!(counts[..8].contains(&names[top]), "{top} not among the busiest");
        }
        // The query benchmarks look up alice.
        assert!(frac(users["alice"]) > 0.03, "alice {}", users["alice"]);
    }

    // Goal: natural sizes are mostly 1-2 KB with a mean of 1.0-1.6 KB and a
    // small tail of 4-20 KB records.
    #[test]
    fn natural_sizes() {
        let recs = seeded(5, 20_000);
        let n = recs.len() as f64;
        let mean = recs.iter().map(Vec::len).sum::<usize>() as f64 / n;
        assert!((1_000.0..1_600.0).contains(&mean), "mean size {mean}");
        let mid = recs.iter().filter(|r| (700..2_200).contains(&r.len())).count() as f64 / n;
        assert!(mid > 0.8, "1-2 KB fraction {mid}");
        let tail = recs.iter().filter(|r| r.len() >= 4_000).count() as f64 / n;
        assert!((0.003..0.03).contains(&tail), "4 KB+ fraction {tail}");
        assert!(recs.iter().all(|r| r.len() < 24_000));
    }

    // Goal: about 3% of records are errors, with errorCode or errorMessage
    // and a null responseElements.
    #[test]
    fn error_fraction() {
        let recs = seeded(6, 20_000);
        let mut errors = 0;
        for r in &recs {
            let v = parse(r);
            if v.get("errorCode").is_some() || v.get("errorMessage").is_some() {
                errors += 1;
                if v["eventName"] != "ConsoleLogin" {
                    assert!(v["responseElements"].is_null());
                    assert!(v["errorCode"].is_string());
                }
            }
        }
        let frac = errors as f64 / recs.len() as f64;
        assert!((0.015..0.05).contains(&frac), "error fraction {frac}");
    }

    // Goal: with record_bytes Some(4000) every record is valid and within
    // ±10% of 4000 bytes; a target below the natural size never truncates.
    #[test]
    fn padding_to_record_bytes() {
        let recs = records(GenOptions { seed: 8, record_bytes: Some(4_000), ..GenOptions::default() }, 5_000);
        for r in &recs {
            assert!((3_600..=4_400).contains(&r.len()), "{} bytes", r.len());
            let v = parse(r);
            assert!(v["eventID"].is_string());
        }
        let recs = records(GenOptions { seed: 8, record_bytes: Some(1_500), ..GenOptions::default() }, 5_000);
        for r in &recs {
            assert!(r.len() >= 1_350, "{} bytes", r.len());
            parse(r);
        }
        let over = recs.iter().filter(|r| r.len() > 1_650).count();
        assert!(over > 0 && over < recs.len() / 2, "{over} naturally larger records");
    }

    // Goal: times start at start_ms, progress at the requested rate, and
    // about 2% are late (1-300 s earlier), so times are not monotone.
    #[test]
    fn late_events() {
        let start_ms = 1_767_225_600_000;
        let recs = records(GenOptions { seed: 9, start_ms, rate_per_sec: 50.0, ..GenOptions::default() }, 20_000);
        let times: Vec<String> = recs.iter().map(|r| parse(r)["eventTime"].as_str().unwrap().to_owned()).collect();
        assert_eq!(times[0], "2026-01-01T00:00:00Z");
        let late = times.windows(2).filter(|w| w[1] < w[0]).count() as f64 / times.len() as f64;
        assert!((0.015..0.025).contains(&late), "late fraction {late}");
        // 20,000 events at 50/s span ~400 s.
        let last = times.iter().max().unwrap();
        assert!(last.as_str() > "2026-01-01T00:06:20Z" && last.as_str() < "2026-01-01T00:07:00Z", "{last}");
    }

    // Goal: the civil-date conversion agrees with a naive day-by-day count
    // (leap years, centuries, before 1970) and formats like CloudTrail.
    #[test]
    fn civil_dates() {
        let leap = |y: i64| y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
        let mut ymd = (1900i64, 1u32, 1u32);
        for days in -25_567..80_000i64 {
            assert_eq!(civil_from_days(days), ymd, "day {days}");
            let len = [31, if leap(ymd.0) { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][ymd.1 as usize - 1];
            ymd = if ymd.2 < len {
                (ymd.0, ymd.1, ymd.2 + 1)
            } else if ymd.1 < 12 {
                (ymd.0, ymd.1 + 1, 1)
            } else {
                (ymd.0 + 1, 1, 1)
            };
        }
        let text = |f: fn(&mut Vec<u8>, i64), ms| {
            let mut v = Vec::new();
            f(&mut v, ms);
            String::from_utf8(v).unwrap()
        };
        assert_eq!(text(put_iso, 1_709_251_199_999), "2024-02-29T23:59:59Z");
        assert_eq!(text(put_iso, -1), "1969-12-31T23:59:59Z");
        assert_eq!(text(put_human, 1_767_229_200_000), "Jan 1, 2026, 1:00:00 AM");
        assert_eq!(text(put_human, 1_767_268_800_000), "Jan 1, 2026, 12:00:00 PM");
        assert_eq!(text(put_lambda_time, 1_767_225_600_042), "2026-01-01T00:00:00.042+0000");
        assert_eq!(text(put_date_path, 1_767_225_600_000), "2026/01/01");
    }

    // Goal: every API template, every principal and both sign-in outcomes
    // render valid JSON with no unexpanded placeholder, also when padded and
    // with huge lists.
    #[test]
    fn every_template_renders() {
        for padded in [None, Some(3_000)] {
            let mut g = Generator::new(GenOptions { seed: 10, record_bytes: padded, ..GenOptions::default() });
            for p in 0..PRINCIPALS.len() {
                assert!(!g.apis[p].items.is_empty(), "principal {p} calls nothing");
                for (a, api) in APIS.iter().enumerate() {
                    for big in [false, true] {
                        let mut out = Vec::new();
                        g.begin();
                        g.ev.big = big;
                        g.api_call(&mut out, p, a);
                        if let Some(t) = padded {
                            g.pad(&mut out, 0, t);
                        }
                        let v = parse(&out);
                        assert_eq!(v["eventName"], api.name);
                        let text = String::from_utf8(out).unwrap();
                        assert!(!text.replace("[$LATEST]", "").replace("$DEFAULT", "").contains('$'), "{text}");
                    }
                }
            }
            for p in (0..PRINCIPALS.len()).filter(|&p| PRINCIPALS[p].human && PRINCIPALS[p].kind != Role) {
                for failed in [false, true] {
                    let mut out = Vec::new();
                    g.begin();
                    g.console_login(&mut out, p, failed);
                    if let Some(t) = padded {
                        g.pad(&mut out, 0, t);
                    }
                    let v = parse(&out);
                    assert_eq!(v["eventName"], "ConsoleLogin");
                }
            }
        }
        for pr in PRINCIPALS.iter() {
            if let Apis::Only(names) = pr.apis {
                for n in names {
                    assert!(APIS.iter().any(|a| a.name == *n), "unknown API {n}");
                }
            }
        }
    }

    // Goal: the engine's own parser accepts every record and extracts the
    // indexed fields the queries and benchmarks rely on.
    #[test]
    fn engine_accepts_records() {
        let mut alice = 0;
        for r in seeded(12, 5_000) {
            let e = cairn_engine::parse_event(&r, cairn_engine::limits::RECORD_BYTES_DEFAULT)
                .unwrap_or_else(|e| panic!("{e:?}: {}", String::from_utf8_lossy(&r)));
            assert!(e.event_id.is_some() && e.event_source.is_some() && e.username.is_some());
            alice += usize::from(e.username.as_deref() == Some("alice"));
        }
        assert!(alice > 150, "alice {alice}");
    }

    // Goal: keys behave like real credentials: a user's long-term key never
    // changes, a role session's key changes hourly.
    #[test]
    fn stable_keys() {
        let mut keys: std::collections::HashMap<(String, String), std::collections::HashSet<String>> = Default::default();
        for r in records(GenOptions { seed: 11, rate_per_sec: 2.0, ..GenOptions::default() }, 20_000) {
            let v = parse(&r);
            let ui = &v["userIdentity"];
            if let (Some(arn), Some(key)) = (ui["arn"].as_str(), ui["accessKeyId"].as_str()) {
                keys.entry((arn.to_owned(), key[..4].to_owned())).or_default().insert(key.to_owned());
            }
        }
        // ~2.8 hours of events.
        for ((arn, kind), set) in &keys {
            match kind.as_str() {
                "AKIA" => assert_eq!(set.len(), 1, "{arn}"),
                _ => assert!(set.len() <= 5, "{arn}: {} session keys", set.len()),
            }
        }
    }
}

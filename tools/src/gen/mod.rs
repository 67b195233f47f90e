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
//! This is the `standard` profile. [`Profile::Diverse`] (`diverse/`) has
//! the character of a large organisation's trail instead: many more APIs,
//! short-lived sessions, varied parameter values; figures should be
//! measured on both.
//!
//! Layout: `catalog` (the standard profile's accounts, principals, services,
//! APIs and name pools, as data), `rng` (SplitMix64 and weighted choices),
//! `write` and `time` (the byte writers and the time formats, shared by both
//! profiles), `record` and `template` (the standard profile's records and
//! the expansion of their templates), and `diverse` (the other profile).

mod catalog;
pub mod diverse;
mod record;
mod rng;
mod template;
mod time;
mod write;

use catalog::Kind::Role;
use catalog::{ACCOUNTS, APIS, PRINCIPALS};
use rng::{mix, Rng, Weighted};

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
}

#[cfg(test)]
mod tests {
    use super::catalog::Apis;
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

//! Expanding the catalog's templates: `$x` placeholders, the lists with
//! their long tail, and `--record-bytes` padding.

use super::catalog::Kind::{Role, Root, Service, User};
use super::catalog::{
    ACCOUNTS, ALARMS, APIS, BUCKETS, CLUSTERS, DATABASES, FILTERS, FUNCTIONS, ID_KINDS, INVOKERS, KEY_PREFIXES, LOG_GROUPS, METRICS,
    PAD_IDS, PARAMETERS, POLICIES, POLICY_STATEMENT, PRINCIPALS, REPOS, ROLES, SECRET_NAMES, SERVICES, STACKS, TABLES, TAGS, TRAILS, USERS,
};
use super::rng::{id64, ident_hash, mix, Rng};
use super::time::{put_date_path, put_human, put_lambda_time};
use super::write::{grow, put, put_chars, put_hex, put_hex16, put_i64, put_u64, put_uuid, B32, B64, HEX_PAIRS};
use super::{Generator, PadAt};

impl Generator {
    /// Writes a template, expanding `$x` placeholders.
    pub(super) fn render(&mut self, out: &mut Vec<u8>, tpl: &str) {
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
    pub(super) fn placeholder(&mut self, out: &mut Vec<u8>, k: u8) {
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
    pub(super) fn pad(&mut self, out: &mut Vec<u8>, start: usize, target: usize) {
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

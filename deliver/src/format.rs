//! CloudTrail's delivered-file formats: log file and digest file names,
//! the digest JSON, and the string a digest signature covers
//! (docs/FORMAT.md, "CloudTrail delivery"; ../shared/reference §4).

use std::borrow::Cow;

use cairn_engine::event::format_event_time;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

/// The `hashAlgorithm` of log files and previous digests.
pub const HASH_ALGORITHM: &str = "SHA-256";

/// One log file as a digest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogFileEntry {
    pub s3_bucket: String,
    pub s3_object: String,
    pub hash_value: String,
    pub hash_algorithm: String,
    pub newest_event_time: String,
    pub oldest_event_time: String,
}

/// A digest file's JSON, fields in CloudTrail's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestFile {
    pub aws_account_id: String,
    pub digest_start_time: String,
    pub digest_end_time: String,
    pub digest_s3_bucket: String,
    pub digest_s3_object: String,
    pub digest_public_key_fingerprint: String,
    pub digest_signature_algorithm: String,
    pub newest_event_time: Option<String>,
    pub oldest_event_time: Option<String>,
    pub previous_digest_s3_bucket: Option<String>,
    pub previous_digest_s3_object: Option<String>,
    pub previous_digest_hash_value: Option<String>,
    pub previous_digest_hash_algorithm: Option<String>,
    pub previous_digest_signature: Option<String>,
    pub log_files: Vec<LogFileEntry>,
}

/// The longest account or region a name carries: longer values (S3 keys
/// are at most 1,024 bytes, file names 255) are the default's.
pub const COMPONENT_CHARS_MAX: usize = 32;

/// A path component from a record's value: only `[A-Za-z0-9_-]`, never
/// empty, `.` or `..`, at most [`COMPONENT_CHARS_MAX`] characters (else
/// `default`), so a record cannot steer files outside the tree or make a
/// name too long to write.
pub fn component(v: Option<&str>, default: &str) -> String {
    let s: String = v.unwrap_or(default).chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    if s.is_empty() || s.len() > COMPONENT_CHARS_MAX {
        default.to_string()
    } else {
        s
    }
}

/// The members named `keys` of the JSON object in `raw`, as JSON text
/// borrowed from it, found in one pass without building its tree
/// (delivery and SQL read a few members of every record): `None` when
/// `raw` is not one JSON object. A repeated key gives its last value, as
/// a full parse would keep; keys written with escapes are compared
/// unescaped.
///
/// The pass finds the object's structure (strings, brackets, commas) but
/// does not check the values it skips: it is for stored records, which
/// were checked as JSON when they were ingested. Text that is not JSON
/// can give members where a parser would refuse it (`{"a": tru}`), never
/// a panic; check such text first (`serde_json`) where that matters.
pub fn pick<'a, const N: usize>(raw: &'a [u8], keys: &[&str; N]) -> Option<[Option<&'a str>; N]> {
    let text = std::str::from_utf8(raw).ok()?;
    match scan_members(text, keys) {
        Scanned::Members(found) => Some(found),
        Scanned::EscapedKey => pick_parsed(raw, keys),
        Scanned::NotAnObject => None,
    }
}

/// What [`scan_members`] made of a text.
enum Scanned<'a, const N: usize> {
    Members([Option<&'a str>; N]),
    /// A key with escapes: the parser compares it unescaped.
    EscapedKey,
    NotAnObject,
}

fn skip_space(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The end (past the closing quote) of the string whose opening quote is
/// at `i`, and whether it holds an escape.
fn string_end(b: &[u8], i: usize) -> Option<(usize, bool)> {
    let mut j = i + 1;
    let mut escaped = false;
    loop {
        let k = j + memchr::memchr2(b'"', b'\\', b.get(j..)?)?;
        if b[k] == b'"' {
            return Some((k + 1, escaped));
        }
        escaped = true;
        j = k + 2;
    }
}

/// The end of the value that starts at `i`: a string, an object or array
/// (brackets counted, strings skipped), or a literal up to the next
/// delimiter.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => Some(string_end(b, i)?.0),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match *b.get(j)? {
                    b'"' => {
                        j = string_end(b, j)?.0;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let n = b[i..].iter().position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')).unwrap_or(b.len() - i);
            (n > 0).then_some(i + n)
        }
    }
}

/// [`pick`]'s pass over the members of the object in `text`. Every slice
/// starts and ends next to an ASCII delimiter, so on a char boundary.
fn scan_members<'a, const N: usize>(text: &'a str, keys: &[&str; N]) -> Scanned<'a, N> {
    let b = text.as_bytes();
    let mut found = [None; N];
    let mut i = skip_space(b, 0);
    if b.get(i) != Some(&b'{') {
        return Scanned::NotAnObject;
    }
    i = skip_space(b, i + 1);
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            if b.get(i) != Some(&b'"') {
                return Scanned::NotAnObject;
            }
            let Some((key_end, escaped)) = string_end(b, i) else { return Scanned::NotAnObject };
            if escaped {
                return Scanned::EscapedKey;
            }
            let key = &text[i + 1..key_end - 1];
            i = skip_space(b, key_end);
            if b.get(i) != Some(&b':') {
                return Scanned::NotAnObject;
            }
            i = skip_space(b, i + 1);
            let Some(end) = value_end(b, i) else { return Scanned::NotAnObject };
            if let Some(k) = keys.iter().position(|k| *k == key) {
                found[k] = Some(&text[i..end]);
            }
            i = skip_space(b, end);
            match b.get(i) {
                Some(b',') => i = skip_space(b, i + 1),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return Scanned::NotAnObject,
            }
        }
    }
    if skip_space(b, i) == b.len() {
        Scanned::Members(found)
    } else {
        Scanned::NotAnObject
    }
}

/// [`pick`] by serde_json's parser, which unescapes keys.
fn pick_parsed<'a, const N: usize>(raw: &'a [u8], keys: &[&str; N]) -> Option<[Option<&'a str>; N]> {
    let mut de = serde_json::Deserializer::from_slice(raw);
    let found = serde::de::DeserializeSeed::deserialize(Pick { keys }, &mut de).ok()?;
    de.end().ok()?;
    Some(found.map(|v| v.map(RawValue::get)))
}

/// [`pick_parsed`]'s visitor: each member's key is looked up in `keys`,
/// and its value kept (as text) or skipped.
struct Pick<'k, const N: usize> {
    keys: &'k [&'k str; N],
}

/// A member's key, as its index in [`Pick`]'s keys (`None` if not there).
struct KeyIndex<'k, const N: usize> {
    keys: &'k [&'k str; N],
}

impl<'de, const N: usize> serde::de::DeserializeSeed<'de> for KeyIndex<'_, N> {
    type Value = Option<usize>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, const N: usize> serde::de::Visitor<'de> for KeyIndex<'_, N> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a member name")
    }
    fn visit_str<E: serde::de::Error>(self, k: &str) -> Result<Self::Value, E> {
        Ok(self.keys.iter().position(|x| *x == k))
    }
}

impl<'de, const N: usize> serde::de::DeserializeSeed<'de> for Pick<'_, N> {
    type Value = [Option<&'de RawValue>; N];
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, const N: usize> serde::de::Visitor<'de> for Pick<'_, N> {
    type Value = [Option<&'de RawValue>; N];
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = [None; N];
        while let Some(k) = map.next_key_seed(KeyIndex { keys: self.keys })? {
            match k {
                Some(i) => out[i] = Some(map.next_value::<&'de RawValue>()?),
                None => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
}

/// A value's JSON text `t` as column text: a string's value (unescaped),
/// `None` for null, any other value's JSON text as it was written.
pub fn json_text(t: &str) -> Option<Cow<'_, str>> {
    match t.as_bytes().first() {
        Some(b'"') if !t.contains('\\') => Some(Cow::Borrowed(&t[1..t.len() - 1])),
        Some(b'"') => serde_json::from_str::<String>(t).ok().map(Cow::Owned),
        Some(b'n') if t == "null" => None,
        _ => Some(Cow::Borrowed(t)),
    }
}

/// The stream (account, region) a record is delivered in: its
/// recipientAccountId (else userIdentity.accountId) and awsRegion, made
/// safe as path components; `000000000000` and `global` when absent.
pub fn stream_of(record: &[u8]) -> (String, String) {
    let [recipient, region, identity] = pick(record, &["recipientAccountId", "awsRegion", "userIdentity"]).unwrap_or_default();
    stream(recipient, region, identity)
}

/// [`stream_of`] from the JSON text of the record's recipientAccountId,
/// awsRegion and userIdentity.
pub fn stream(recipient: Option<&str>, region: Option<&str>, identity: Option<&str>) -> (String, String) {
    fn present(t: Option<&str>) -> Option<Cow<'_, str>> {
        json_text(t?).filter(|t| !t.is_empty())
    }
    let account = present(recipient).or_else(|| present(pick(identity?.as_bytes(), &["accountId"])?[0]));
    (component(account.as_deref(), "000000000000"), component(present(region).as_deref(), "global"))
}

/// `YYYY/MM/DD` and the compact `YYYYMMDDTHHmm` of a time.
pub fn date_parts(ms: i64) -> (String, String) {
    let t = format_event_time(ms); // YYYY-MM-DDTHH:MM:SSZ
    (format!("{}/{}/{}", &t[0..4], &t[5..7], &t[8..10]), format!("{}{}{}T{}{}", &t[0..4], &t[5..7], &t[8..10], &t[11..13], &t[14..16]))
}

/// 16 characters naming a file uniquely, derived (not random) from
/// `seed`, so that a re-delivery after a crash writes the same name.
pub fn unique(seed: &str) -> String {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    Sha256::digest(seed.as_bytes()).iter().take(16).map(|b| ALNUM[*b as usize % ALNUM.len()] as char).collect()
}

fn prefixed(prefix: &str, key: String) -> String {
    if prefix.is_empty() {
        key
    } else {
        format!("{prefix}/{key}")
    }
}

/// A log file's key: `[prefix/]AWSLogs/<account>/CloudTrail/<region>/
/// YYYY/MM/DD/<account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<unique>.json.gz`
/// (the date and time are the delivery time's).
pub fn log_file_key(prefix: &str, account: &str, region: &str, delivery_ms: i64, unique: &str) -> String {
    let (day, stamp) = date_parts(delivery_ms);
    prefixed(prefix, format!("AWSLogs/{account}/CloudTrail/{region}/{day}/{account}_CloudTrail_{region}_{stamp}Z_{unique}.json.gz"))
}

/// A digest's key: `[prefix/]AWSLogs/<account>/CloudTrail-Digest/<region>/
/// YYYY/MM/DD/<account>_CloudTrail-Digest_<region>_<trail>_<home region>_<YYYYMMDDTHHMMSSZ>.json.gz`
/// (the date and time are `digestEndTime`'s).
pub fn digest_key(prefix: &str, account: &str, region: &str, trail: &str, home_region: &str, end_ms: i64) -> String {
    let (day, _) = date_parts(end_ms);
    let stamp: String = format_event_time(end_ms).chars().filter(|c| c.is_ascii_digit() || *c == 'T' || *c == 'Z').collect();
    prefixed(
        prefix,
        format!(
            "AWSLogs/{account}/CloudTrail-Digest/{region}/{day}/{account}_CloudTrail-Digest_{region}_{trail}_{home_region}_{stamp}.json.gz"
        ),
    )
}

/// What a digest's signature covers (CloudTrail's four lines):
/// `digestEndTime\nbucket/key\nsha256hex(uncompressed digest)\nprevious signature or null`.
pub fn string_to_sign(end_time: &str, bucket: &str, key: &str, sha256_hex: &str, previous: Option<&str>) -> String {
    format!("{end_time}\n{bucket}/{key}\n{sha256_hex}\n{}", previous.unwrap_or("null"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: names are CloudTrail's, byte for byte, and validate-logs'
    // slicing (`key[-24:-8]`) finds the digest's end time in its key.
    #[test]
    fn names_match_cloudtrail() {
        let t = 1_700_000_123_000; // 2023-11-14T22:15:23Z
        assert_eq!(
            log_file_key("", "123456789012", "us-east-1", t, "AbCdEfGhIjKlMnOp"),
            "AWSLogs/123456789012/CloudTrail/us-east-1/2023/11/14/123456789012_CloudTrail_us-east-1_20231114T2215Z_AbCdEfGhIjKlMnOp.json.gz"
        );
        let d = digest_key("logs/x", "123456789012", "eu-west-1", "cairn", "us-east-1", t);
        assert_eq!(
            d,
            "logs/x/AWSLogs/123456789012/CloudTrail-Digest/eu-west-1/2023/11/14/123456789012_CloudTrail-Digest_eu-west-1_cairn_us-east-1_20231114T221523Z.json.gz"
        );
        assert_eq!(&d[d.len() - 24..d.len() - 8], "20231114T221523Z");
        assert_eq!(string_to_sign("E", "b", "k", "h", None), "E\nb/k\nh\nnull");
        assert_eq!(component(Some("../etc"), "x"), "___etc");
        assert_eq!(
            stream_of(
                br#"{"eventTime":"2023-01-01T00:00:00Z","eventName":"X","recipientAccountId":"111122223333","awsRegion":"ap-south-1"}"#
            ),
            ("111122223333".into(), "ap-south-1".into())
        );
        assert_eq!(stream_of(b"not json"), ("000000000000".into(), "global".into()));
        assert_eq!(stream_of(br#"{"userIdentity":{"accountId":"1"},"awsRegion":null}"#), ("1".into(), "global".into()));
        let [a, b, n, t, none] = pick(br#"{"a":"x\"y","b":{"c": [1, 2]},"a":"z","n":null,"t":true}"#, &["a", "b", "n", "t", "x"]).unwrap();
        let text = |v: Option<&str>| v.and_then(json_text).map(|t| t.into_owned());
        assert_eq!(
            (text(a).as_deref(), text(b).as_deref(), text(n), text(t).as_deref(), none.is_none()),
            (Some("z"), Some(r#"{"c": [1, 2]}"#), None, Some("true"), true)
        );
        assert_eq!(json_text(pick(br#"{"a":"x\"y"}"#, &["a"]).unwrap()[0].unwrap()).as_deref(), Some("x\"y"));
        assert!(pick(b"[1]", &["a"]).is_none() && pick(br#"{"a":1} x"#, &["a"]).is_none());
        // A key with escapes is compared unescaped, and others still read.
        let r = br#"{"recipientAccountId":"111122223333","x\u0041":1,"aws\u0052egion":"eu-west-1"}"#;
        assert_eq!(stream_of(r), ("111122223333".into(), "eu-west-1".into()));
        assert_eq!(pick(r, &["xA"]).unwrap()[0], Some("1"));
        // An empty recipientAccountId falls back; an over-long region is the default.
        let long = format!(r#"{{"recipientAccountId":"","userIdentity":{{"accountId":"2"}},"awsRegion":"{}"}}"#, "r".repeat(33));
        assert_eq!(stream_of(long.as_bytes()), ("2".into(), "global".into()));
    }

    /// Every member's key of the object `raw`, and the parser's pick of them.
    fn parsed_members(raw: &[u8]) -> Option<(Vec<String>, Vec<Option<&str>>)> {
        let obj: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(raw).ok()?;
        let mut keys: Vec<String> = obj.keys().cloned().collect();
        keys.push("absent".into());
        let mut found = Vec::new();
        for k in &keys {
            found.push(pick_parsed(raw, &[k.as_str()])?[0]);
        }
        Some((keys, found))
    }

    // Goal: on JSON objects, the one-pass scan finds exactly what the
    // parser finds, member by member: real CloudTrail records (each of
    // them whole, and pretty-printed), and their nested objects.
    #[test]
    fn pick_agrees_with_the_parser_on_real_records() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/cloudtrail");
        let mut checked = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "ndjson") {
                continue;
            }
            for line in std::fs::read_to_string(&path).unwrap().lines().filter(|l| !l.trim().is_empty()) {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                let pretty = serde_json::to_string_pretty(&v).unwrap();
                let mut texts = vec![line.to_string(), pretty];
                texts.extend(v.as_object().unwrap().values().filter(|m| m.is_object()).map(|m| m.to_string()));
                for t in &texts {
                    let (keys, want) = parsed_members(t.as_bytes()).unwrap();
                    for (k, w) in keys.iter().zip(&want) {
                        assert_eq!(pick(t.as_bytes(), &[k.as_str()]).unwrap()[0], *w, "{k} of {t}");
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked > 100, "only {checked} objects checked");
    }

    fn json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            "[a-z\\\\\"{}\\[\\],: \u{e9}\u{1F600}]{0,12}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
                proptest::collection::vec(("[a-c\\\\\"]{0,3}", inner), 0..6)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        // Goal: generated objects (keys and strings full of quotes,
        // backslashes, brackets, commas and non-ASCII; nesting; compact
        // and pretty) are picked as the parser picks them.
        #[test]
        fn pick_agrees_with_the_parser(v in json(), pretty in proptest::bool::ANY) {
            let obj = serde_json::json!({ "k": v, "a": [v.clone()], "b\\\"": {"k": v} });
            let t = if pretty { serde_json::to_string_pretty(&obj).unwrap() } else { obj.to_string() };
            let (keys, want) = parsed_members(t.as_bytes()).unwrap();
            for (k, w) in keys.iter().zip(&want) {
                proptest::prop_assert_eq!(pick(t.as_bytes(), &[k.as_str()]).unwrap()[0], *w);
            }
        }

        // Goal: any bytes, and records cut or with a byte changed, never
        // make the scan panic, and UTF-8 text the parser accepts is picked
        // the same way.
        #[test]
        fn pick_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64), at in 0usize..400, to in proptest::num::u8::ANY) {
            let _ = pick(&bytes, &["a", "b"]);
            let mut rec = br#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/a\"b"},"requestParameters":{"x":[1,{"y":"]}"}]},"n":-1.5e3,"t":true}"#.to_vec();
            let at = at % rec.len();
            let cut = &rec[..at];
            let _ = pick(cut, &["userIdentity", "requestParameters"]);
            rec[at] = to;
            let keys = ["userIdentity", "requestParameters", "n", "t"];
            let fast = pick(&rec, &keys);
            // (The parser does not check the UTF-8 of strings it skips;
            // `pick` refuses text that is not UTF-8.)
            if let (Some(parsed), true) = (pick_parsed(&rec, &keys), std::str::from_utf8(&rec).is_ok()) {
                proptest::prop_assert_eq!(fast, Some(parsed));
            }
        }
    }
}

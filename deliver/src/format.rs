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
/// borrowed from it, read in one pass without building its tree (delivery
/// reads a few members of every record it delivers): `None` when `raw` is
/// not one JSON object. A repeated key gives its last value, as a full
/// parse would keep; keys written with escapes are compared unescaped.
pub fn pick<'a, const N: usize>(raw: &'a [u8], keys: &[&str; N]) -> Option<[Option<&'a RawValue>; N]> {
    let mut de = serde_json::Deserializer::from_slice(raw);
    let found = serde::de::DeserializeSeed::deserialize(Pick { keys }, &mut de).ok()?;
    de.end().ok()?;
    Some(found)
}

/// [`pick`]'s visitor: each member's key is looked up in `keys`, and its
/// value kept (as text) or skipped.
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

/// A JSON value as column text: a string's value (unescaped), `None` for
/// null, any other value's JSON text as it was written.
pub fn raw_text(v: &RawValue) -> Option<Cow<'_, str>> {
    json_text(v.get())
}

/// [`raw_text`] of a value's JSON text `t`.
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
    stream(recipient.map(RawValue::get), region.map(RawValue::get), identity.map(RawValue::get))
}

/// [`stream_of`] from the JSON text of the record's recipientAccountId,
/// awsRegion and userIdentity.
pub fn stream(recipient: Option<&str>, region: Option<&str>, identity: Option<&str>) -> (String, String) {
    fn present(t: Option<&str>) -> Option<Cow<'_, str>> {
        json_text(t?).filter(|t| !t.is_empty())
    }
    let account = present(recipient).or_else(|| present(pick(identity?.as_bytes(), &["accountId"])?[0].map(RawValue::get)));
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
        let text = |v: Option<&RawValue>| v.and_then(raw_text).map(|t| t.into_owned());
        assert_eq!(
            (text(a).as_deref(), text(b).as_deref(), text(n), text(t).as_deref(), none.is_none()),
            (Some("z"), Some(r#"{"c": [1, 2]}"#), None, Some("true"), true)
        );
        assert_eq!(raw_text(pick(br#"{"a":"x\"y"}"#, &["a"]).unwrap()[0].unwrap()).as_deref(), Some("x\"y"));
        assert!(pick(b"[1]", &["a"]).is_none() && pick(br#"{"a":1} x"#, &["a"]).is_none());
        // A key with escapes is compared unescaped, and others still read.
        let r = br#"{"recipientAccountId":"111122223333","x\u0041":1,"aws\u0052egion":"eu-west-1"}"#;
        assert_eq!(stream_of(r), ("111122223333".into(), "eu-west-1".into()));
        assert_eq!(pick(r, &["xA"]).unwrap()[0].map(|v| v.get()), Some("1"));
        // An empty recipientAccountId falls back; an over-long region is the default.
        let long = format!(r#"{{"recipientAccountId":"","userIdentity":{{"accountId":"2"}},"awsRegion":"{}"}}"#, "r".repeat(33));
        assert_eq!(stream_of(long.as_bytes()), ("2".into(), "global".into()));
    }
}

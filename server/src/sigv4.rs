//! AWS Signature Version 4: checking a signed HTTP request, as a service
//! endpoint does, and signing one (for Cairn's own tests and benchmarks).
//!
//! Verification has to rebuild the canonical request from exactly the
//! headers, query and path the client signed, so it is written here against
//! the specification (docs.aws.amazon.com, "Create a signed AWS API
//! request") and checked against AWS's published SigV4 test suite vectors
//! and against botocore in the end-to-end tests. Both forms are accepted:
//! the `Authorization` header, and the query string (`X-Amz-Algorithm`,
//! `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`,
//! `X-Amz-SignedHeaders`, `X-Amz-Signature`).
//!
//! Secrets are never needed in the clear: HMAC-SHA256 hashes a key longer
//! than its 64-byte block before use, so for a secret of more than 60
//! characters the first HMAC's key `"AWS4" + secret` can be replaced by its
//! SHA-256 ([`secret_key_material`]) and that digest is what cairnd stores.

use cairn_engine::event::time::{civil_from_days, days_from_civil};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// How far a header-signed request's time may be from the server's clock.
pub const SKEW_SECS: i64 = 15 * 60;
/// The longest validity a query-string signature may claim (7 days, as AWS).
pub const EXPIRES_MAX_SECS: i64 = 604_800;

/// Why a request's authentication was refused: `code` is the AWS error
/// name the client receives, `status` its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

fn refuse(status: u16, code: &'static str, message: impl Into<String>) -> AuthError {
    AuthError { status, code, message: message.into() }
}

fn incomplete(message: impl Into<String>) -> AuthError {
    refuse(400, "IncompleteSignatureException", message)
}

/// What an HTTP request presents for checking. Header names are compared
/// without regard to case; `path` and `query` are as sent (still
/// percent-encoded).
pub struct HttpRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: Vec<(&'a str, &'a [u8])>,
    /// Lower-case hex SHA-256 of the body as received.
    pub body_sha256: String,
}

impl HttpRequest<'_> {
    fn header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s [u8]> + 's {
        self.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
    }
    fn header<'s>(&'s self, name: &'s str) -> Option<&'s str> {
        self.header_values(name).next().and_then(|v| std::str::from_utf8(v).ok())
    }
}

/// The signature a request carries, parsed but not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented {
    pub access_key_id: String,
    /// `YYYYMMDD` from the credential scope.
    pub date: String,
    pub region: String,
    pub service: String,
    /// `YYYYMMDDTHHMMSSZ`.
    pub amz_date: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
    /// Query-string form: the signature's validity in seconds.
    pub expires: Option<i64>,
    pub security_token: Option<String>,
    pub in_query: bool,
}

/// Reads the signature from the `Authorization` header or, failing that,
/// the query string. `Ok(None)`: the request is not signed at all.
pub fn presented(req: &HttpRequest) -> Result<Option<Presented>, AuthError> {
    if let Some(auth) = req.header_values("authorization").next() {
        let auth = std::str::from_utf8(auth).map_err(|_| incomplete("the Authorization header is not UTF-8"))?;
        return parse_header(req, auth).map(Some);
    }
    let params = query_pairs(req.query)?;
    if !params.iter().any(|(k, _)| k == "X-Amz-Algorithm" || k == "X-Amz-Signature") {
        return Ok(None);
    }
    let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let need = |name: &str| get(name).ok_or_else(|| incomplete(format!("the query-string signature lacks {name}")));
    if need("X-Amz-Algorithm")? != ALGORITHM {
        return Err(incomplete(format!(
            "unsupported X-Amz-Algorithm {:?}: only {ALGORITHM} is accepted",
            get("X-Amz-Algorithm").unwrap_or("")
        )));
    }
    let (access_key_id, date, region, service) = parse_credential(need("X-Amz-Credential")?)?;
    let expires: i64 = need("X-Amz-Expires")?.parse().map_err(|_| incomplete("X-Amz-Expires must be a whole number of seconds"))?;
    if !(1..=EXPIRES_MAX_SECS).contains(&expires) {
        return Err(refuse(
            403,
            "AuthFailure",
            format!("X-Amz-Expires must be between 1 and {EXPIRES_MAX_SECS} seconds (7 days), not {expires}"),
        ));
    }
    Ok(Some(Presented {
        access_key_id,
        date,
        region,
        service,
        amz_date: need("X-Amz-Date")?.to_string(),
        signed_headers: need("X-Amz-SignedHeaders")?.split(';').map(str::to_string).collect(),
        signature: need("X-Amz-Signature")?.to_string(),
        expires: Some(expires),
        security_token: get("X-Amz-Security-Token").map(str::to_string),
        in_query: true,
    }))
}

fn parse_header(req: &HttpRequest, auth: &str) -> Result<Presented, AuthError> {
    let Some(rest) = auth.trim().strip_prefix(ALGORITHM) else {
        let scheme = auth.split_whitespace().next().unwrap_or("");
        return Err(incomplete(format!("Authorization header uses {scheme:?}: only {ALGORITHM} (Signature Version 4) is accepted")));
    };
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        let (k, v) = part.split_once('=').ok_or_else(|| incomplete(format!("Authorization header component {part:?} is not key=value")))?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => {}
        }
    }
    let missing = |what: &str| incomplete(format!("Authorization header requires '{what}' parameter. Authorization={auth}"));
    let (access_key_id, date, region, service) = parse_credential(credential.ok_or_else(|| missing("Credential"))?)?;
    let amz_date = req.header("x-amz-date").ok_or_else(|| {
        incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header; cairnd reads X-Amz-Date")
    })?;
    Ok(Presented {
        access_key_id,
        date,
        region,
        service,
        amz_date: amz_date.to_string(),
        signed_headers: signed.ok_or_else(|| missing("SignedHeaders"))?.split(';').map(str::to_string).collect(),
        signature: signature.ok_or_else(|| missing("Signature"))?.to_string(),
        expires: None,
        security_token: req.header("x-amz-security-token").map(str::to_string),
        in_query: false,
    })
}

/// `AKID/YYYYMMDD/region/service/aws4_request`.
fn parse_credential(c: &str) -> Result<(String, String, String, String), AuthError> {
    let parts: Vec<&str> = c.split('/').collect();
    // Only the characters these names are made of: whatever reaches the
    // logs and error messages from here is plain.
    let word = |s: &str, max: usize| (1..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    match parts.as_slice() {
        [key, date, region, service, "aws4_request"]
            if word(key, 128) && !key.contains('-') && date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()) && word(region, 64) && word(service, 64) =>
        {
            Ok((key.to_string(), date.to_string(), region.to_string(), service.to_string()))
        }
        _ => Err(incomplete(format!(
            "Credential should be scoped to a valid region, service and date: expected <access key>/<YYYYMMDD>/<region>/<service>/aws4_request, got {:?}",
            c.chars().take(200).collect::<String>()
        ))),
    }
}

/// Unix seconds of a `YYYYMMDDTHHMMSSZ` time.
pub fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes().all(|c| c.is_ascii_digit()).then(|| t.parse().ok())?
    };
    let (y, mo, d, h, mi, se) = (num(0..4)?, num(4..6)?, num(6..8)?, num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se)
}

/// `YYYYMMDDTHHMMSSZ` of unix seconds.
pub fn format_amz_date(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

/// Percent-encodes as SigV4 requires: everything but `A-Za-z0-9-._~`
/// (and `/` when `keep_slash`), upper-case hex.
pub fn uri_encode(s: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') || (keep_slash && c == b'/') {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes; a malformed escape is kept as it is.
pub fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = ((b[i + 1] as char).to_digit(16), (b[i + 2] as char).to_digit(16)) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// The query's parameters, decoded, in their order.
pub fn query_pairs(query: &str) -> Result<Vec<(String, String)>, AuthError> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let text = |x: &str| String::from_utf8(percent_decode(x)).map_err(|_| incomplete("the query string is not UTF-8 once decoded"));
            Ok((text(k)?, text(v)?))
        })
        .collect()
}

/// The canonical URI: the path with `.`/`..` and empty segments resolved,
/// each segment decoded and encoded again (services other than S3).
pub fn canonical_uri(path: &str) -> String {
    let mut segs: Vec<Vec<u8>> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segs.pop();
            }
            s => segs.push(percent_decode(s)),
        }
    }
    let mut out = String::from("/");
    out.push_str(&segs.iter().map(|s| uri_encode(s, false)).collect::<Vec<_>>().join("/"));
    if segs.is_empty() {
        return out;
    }
    if path.ends_with('/') {
        out.push('/');
    }
    out
}

/// The canonical query string: every parameter (but `X-Amz-Signature` in
/// the query-string form) encoded and sorted by name, then value.
pub fn canonical_query(query: &str, drop_signature: bool) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .map(|(k, v)| (uri_encode(&percent_decode(k), false), uri_encode(&percent_decode(v), false)))
        .filter(|(k, _)| !(drop_signature && k == "X-Amz-Signature"))
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// A header value as signed: trimmed, runs of ASCII whitespace made one
/// space. A value that is not UTF-8 cannot be signed as it was sent.
fn trim_all(v: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(v).ok()?;
    Some(s.split(|c: char| c.is_ascii_whitespace()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" "))
}

/// The canonical request's lines for `p`'s signed headers, and the payload
/// hash the client signed.
pub fn canonical_request(req: &HttpRequest, p: &Presented, payload_hash: &str, must_sign: &[&str]) -> Result<String, AuthError> {
    let mut names: Vec<String> = p.signed_headers.iter().map(|h| h.to_ascii_lowercase()).collect();
    names.sort();
    names.dedup();
    if !names.iter().any(|n| n == "host") {
        return Err(refuse(403, "InvalidSignatureException", "the signed headers must include host"));
    }
    for must in must_sign {
        if !names.iter().any(|n| n == must) {
            return Err(refuse(403, "InvalidSignatureException", format!("the signed headers must include {must}")));
        }
    }
    let mut headers = String::new();
    for n in &names {
        let values: Vec<String> = req
            .header_values(n)
            .map(trim_all)
            .collect::<Option<_>>()
            .ok_or_else(|| refuse(403, "InvalidSignatureException", format!("the signed header {n:?} is not UTF-8")))?;
        if values.is_empty() {
            return Err(refuse(403, "InvalidSignatureException", format!("the request lacks the header {n:?} that SignedHeaders names")));
        }
        headers.push_str(&format!("{n}:{}\n", values.join(",")));
    }
    Ok(format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method.to_ascii_uppercase(),
        canonical_uri(req.path),
        canonical_query(req.query, p.in_query),
        headers,
        names.join(";"),
        payload_hash
    ))
}

/// The string to sign for a canonical request.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", hex::encode(Sha256::digest(canonical_request.as_bytes())))
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    m.update(msg);
    m.finalize().into_bytes().into()
}

/// The key the first HMAC of the derivation uses for `secret`: `"AWS4" +
/// secret`, or its SHA-256 when longer than the HMAC block (the two sign
/// alike; see the module's notes).
pub fn secret_key_material(secret: &str) -> Vec<u8> {
    let k = format!("AWS4{secret}");
    if k.len() > 64 {
        Sha256::digest(k.as_bytes()).to_vec()
    } else {
        k.into_bytes()
    }
}

/// The signing key for a day, region and service.
pub fn signing_key(material: &[u8], date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac(material, date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// Hex HMAC-SHA256 signature of `sts` with `key`.
pub fn signature(key: &[u8; 32], sts: &str) -> String {
    hex::encode(hmac(key, sts.as_bytes()))
}

/// What [`verify`] is told besides the request.
pub struct Expect<'a> {
    pub service: &'a str,
    /// `None`: any region in the scope is accepted.
    pub region: Option<&'a str>,
    /// The server's clock, unix seconds.
    pub now: i64,
    /// Headers the signature must cover besides `host` (e.g.
    /// `x-amz-target`, which names the operation).
    pub must_sign: &'a [&'a str],
}

/// Checks `p` (from [`presented`]) against the request and the key
/// material of its access key. On success the request is authentic.
pub fn verify(req: &HttpRequest, p: &Presented, material: &[u8], want: &Expect) -> Result<(), AuthError> {
    let invalid = |m: String| refuse(403, "InvalidSignatureException", m);
    if p.service != want.service {
        return Err(invalid(format!("Credential should be scoped to correct service: '{}'.", want.service)));
    }
    if let Some(r) = want.region {
        if p.region != r {
            return Err(invalid(format!("Credential should be scoped to a valid region, not '{}'; this server serves '{r}'.", p.region)));
        }
    }
    let t = parse_amz_date(&p.amz_date)
        .ok_or_else(|| incomplete(format!("X-Amz-Date {:?} is not an ISO 8601 basic time such as 20150830T123600Z", p.amz_date)))?;
    if !p.amz_date.starts_with(&p.date) {
        return Err(invalid(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{}'.",
            p.date,
            &p.amz_date[..8],
            p.amz_date
        )));
    }
    match p.expires {
        None => {
            if t < want.now - SKEW_SECS {
                return Err(invalid(format!(
                    "Signature expired: {} is now earlier than {} ({} - 15 min.)",
                    p.amz_date,
                    format_amz_date(want.now - SKEW_SECS),
                    format_amz_date(want.now)
                )));
            }
            if t > want.now + SKEW_SECS {
                return Err(invalid(format!(
                    "Signature not yet current: {} is still later than {} ({} + 15 min.)",
                    p.amz_date,
                    format_amz_date(want.now + SKEW_SECS),
                    format_amz_date(want.now)
                )));
            }
        }
        Some(e) => {
            if want.now > t + e {
                return Err(invalid(format!("Signature expired: the query-string signature of {} was valid for {e} seconds", p.amz_date)));
            }
            if t > want.now + SKEW_SECS {
                return Err(invalid(format!("Signature not yet current: {} is more than 15 min. ahead of the server", p.amz_date)));
            }
        }
    }
    let payload = match req.header("x-amz-content-sha256") {
        // The signature must cover the body: events and queries are what
        // it protects (AWS's SDKs sign these services' payloads).
        Some(UNSIGNED_PAYLOAD) => {
            return Err(invalid("UNSIGNED-PAYLOAD is not accepted: sign the payload".into()));
        }
        Some(h) if h.eq_ignore_ascii_case(&req.body_sha256) => h.to_string(),
        Some(h) => {
            return Err(refuse(
                400,
                "XAmzContentSHA256Mismatch",
                format!("The provided 'x-amz-content-sha256' header {h} does not match what was computed: {}", req.body_sha256),
            ))
        }
        None => req.body_sha256.clone(),
    };
    let creq = canonical_request(req, p, &payload, want.must_sign)?;
    let scope = format!("{}/{}/{}/aws4_request", p.date, p.region, p.service);
    let sts = string_to_sign(&p.amz_date, &scope, &creq);
    let expected = signature(&signing_key(material, &p.date, &p.region, &p.service), &sts);
    // Constant time: the comparison does not stop at the first difference.
    let same = expected.len() == p.signature.len() && expected.bytes().zip(p.signature.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if !same {
        return Err(invalid(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".into(),
        ));
    }
    Ok(())
}

/// Signs a request in the header form: returns the headers to add
/// (`x-amz-date`, `x-amz-content-sha256` when asked, `authorization`).
/// `headers` must include `host`; all of them are signed.
#[allow(clippy::too_many_arguments)]
pub fn sign_headers(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    access_key_id: &str,
    secret: &str,
    region: &str,
    service: &str,
    now: i64,
) -> Vec<(String, String)> {
    let amz_date = format_amz_date(now);
    let body_sha256 = hex::encode(Sha256::digest(body));
    let mut all: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.to_string())).collect();
    all.push(("x-amz-date".into(), amz_date.clone()));
    let names: Vec<String> = all.iter().map(|(k, _)| k.clone()).collect();
    let p = Presented {
        access_key_id: access_key_id.into(),
        date: amz_date[..8].into(),
        region: region.into(),
        service: service.into(),
        amz_date: amz_date.clone(),
        signed_headers: names,
        signature: String::new(),
        expires: None,
        security_token: None,
        in_query: false,
    };
    let req = HttpRequest {
        method,
        path,
        query,
        headers: all.iter().map(|(k, v)| (k.as_str(), v.as_bytes())).collect(),
        body_sha256: body_sha256.clone(),
    };
    let creq = canonical_request(&req, &p, &body_sha256, &[]).expect("the caller gives host");
    let scope = format!("{}/{region}/{service}/aws4_request", p.date);
    let sig = signature(&signing_key(&secret_key_material(secret), &p.date, region, service), &string_to_sign(&amz_date, &scope, &creq));
    let mut signed: Vec<String> = p.signed_headers.clone();
    signed.sort();
    vec![
        ("x-amz-date".into(), amz_date),
        (
            "authorization".into(),
            format!("{ALGORITHM} Credential={access_key_id}/{scope}, SignedHeaders={}, Signature={sig}", signed.join(";")),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    /// 2015-08-30T12:36:00Z, the time of AWS's test suite.
    const T: i64 = 1_440_938_160;
    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn suite_request<'a>(method: &'a str, path: &'a str, query: &'a str, auth: &'a str) -> HttpRequest<'a> {
        HttpRequest {
            method,
            path,
            query,
            headers: vec![("Host", b"example.amazonaws.com"), ("X-Amz-Date", b"20150830T123600Z"), ("Authorization", auth.as_bytes())],
            body_sha256: EMPTY.into(),
        }
    }

    fn check(method: &str, path: &str, query: &str, sig: &str) -> Result<(), AuthError> {
        let auth =
            format!("{ALGORITHM} Credential={KEY}/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature={sig}");
        let req = suite_request(method, path, query, &auth);
        let p = presented(&req)?.expect("signed");
        verify(
            &req,
            &p,
            &secret_key_material(SECRET),
            &Expect { service: "service", region: Some("us-east-1"), now: T + 60, must_sign: &[] },
        )
    }

    // Goal: the verifier accepts AWS's published SigV4 test-suite requests
    // (aws-sig-v4-test-suite: get-vanilla, get-vanilla-query-order-key-case,
    // get-utf8, get-space-normalized, post-vanilla, post-vanilla-query) with
    // their published signatures, and refuses each once one bit changes.
    #[test]
    fn aws_test_suite_vectors() {
        let vectors = [
            ("GET", "/", "", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
            ("GET", "/", "Param2=value2&Param1=value1", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
            ("GET", "/%E1%88%B4", "", "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"),
            ("GET", "/example%20space/", "", "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"),
            ("POST", "/", "", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
            ("POST", "/", "Param1=value1", "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"),
        ];
        for (method, path, query, sig) in vectors {
            check(method, path, query, sig).unwrap_or_else(|e| panic!("{method} {path}?{query}: {e:?}"));
            let mut bad = sig.to_string();
            bad.replace_range(0..1, if &sig[..1] == "0" { "1" } else { "0" });
            assert_eq!(check(method, path, query, &bad).unwrap_err().code, "InvalidSignatureException");
        }
        // The signer produces the same signature for the same request.
        let h = sign_headers("GET", "/", "", &[("host", "example.amazonaws.com")], b"", KEY, SECRET, "us-east-1", "service", T);
        assert!(
            h[1].1.ends_with("SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
            "{h:?}"
        );
    }

    // Goal: a secret longer than the HMAC block signs the same with its
    // SHA-256 stored in its place (what cairnd keeps instead of the secret).
    #[test]
    fn hashed_key_material_signs_alike() {
        let secret = "x".repeat(64);
        let long = format!("AWS4{secret}");
        assert_eq!(
            signing_key(long.as_bytes(), "20260101", "us-east-1", "cloudtrail"),
            signing_key(&secret_key_material(&secret), "20260101", "us-east-1", "cloudtrail")
        );
    }

    // Goal: the time window, scope, algorithm and payload hash are enforced
    // with AWS's error names.
    #[test]
    fn refusals_name_the_problem() {
        let sig = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        let auth =
            format!("{ALGORITHM} Credential={KEY}/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature={sig}");
        let req = suite_request("GET", "/", "", &auth);
        let p = presented(&req).unwrap().unwrap();
        let m = secret_key_material(SECRET);
        let at = |now: i64, service: &'static str, region: Option<&'static str>| Expect { service, region, now, must_sign: &[] };
        let e = verify(&req, &p, &m, &at(T + 16 * 60, "service", None)).unwrap_err();
        assert!(e.message.starts_with("Signature expired: 20150830T123600Z is now earlier than 20150830T123700Z"), "{e:?}");
        assert!(verify(&req, &p, &m, &at(T - 16 * 60, "service", None)).unwrap_err().message.contains("not yet current"));
        assert!(verify(&req, &p, &m, &at(T, "cloudtrail", None)).unwrap_err().message.contains("correct service"));
        assert!(verify(&req, &p, &m, &at(T, "service", Some("eu-west-1"))).unwrap_err().message.contains("valid region"));
        verify(&req, &p, &m, &at(T, "service", None)).unwrap();
        // A header the server needs signed, and is not.
        let need = Expect { service: "service", region: None, now: T, must_sign: &["x-amz-target"] };
        assert!(verify(&req, &p, &m, &need).unwrap_err().message.contains("x-amz-target"));
        // Log-unsafe characters in the credential are refused before use.
        let evil = format!(
            "{ALGORITHM} Credential=AK%0AFAKE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature={sig}"
        );
        assert_eq!(presented(&suite_request("GET", "/", "", &evil)).unwrap_err().code, "IncompleteSignatureException");
        // An unsigned payload is refused.
        let mut unsigned_payload = suite_request("GET", "/", "", &auth);
        unsigned_payload.headers.push(("x-amz-content-sha256", b"UNSIGNED-PAYLOAD"));
        assert!(verify(&unsigned_payload, &p, &m, &at(T, "service", None)).unwrap_err().message.contains("UNSIGNED-PAYLOAD"));
        // A declared payload hash that is not the body's.
        let mut req2 = suite_request("GET", "/", "", &auth);
        req2.headers.push(("x-amz-content-sha256", b"00"));
        assert_eq!(verify(&req2, &p, &m, &at(T, "service", None)).unwrap_err().code, "XAmzContentSHA256Mismatch");
        let basic = suite_request("GET", "/", "", "Basic dXNlcjpwYXNz");
        assert_eq!(presented(&basic).unwrap_err().code, "IncompleteSignatureException");
        let unsigned = HttpRequest { method: "GET", path: "/", query: "", headers: vec![], body_sha256: EMPTY.into() };
        assert_eq!(presented(&unsigned).unwrap(), None);
    }

    // Goal: the query-string form (a presigned URL) is read and checked,
    // with its expiry. The vector was made by botocore 1.44.18's
    // SigV4QueryAuth (the AWS CLI's signer) for the suite's key and time.
    #[test]
    fn query_string_form() {
        let query = include_str!("../tests/fixtures/sigv4-presigned-query.txt").trim();
        let req =
            HttpRequest { method: "GET", path: "/", query, headers: vec![("host", b"example.amazonaws.com")], body_sha256: EMPTY.into() };
        let p = presented(&req).unwrap().unwrap();
        assert!(p.in_query);
        assert_eq!(p.expires, Some(300));
        let m = secret_key_material(SECRET);
        verify(&req, &p, &m, &Expect { service: "service", region: None, now: T + 299, must_sign: &[] }).unwrap();
        let e = verify(&req, &p, &m, &Expect { service: "service", region: None, now: T + 301, must_sign: &[] }).unwrap_err();
        assert!(e.message.starts_with("Signature expired"), "{e:?}");
    }

    #[test]
    fn dates_and_encoding() {
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(T));
        assert_eq!(format_amz_date(T), "20150830T123600Z");
        assert_eq!(parse_amz_date("2015-08-30T12:36:00Z"), None);
        assert_eq!(parse_amz_date("20151330T123600Z"), None);
        assert_eq!(canonical_uri("/a/./b/../c//d/"), "/a/c/d/");
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_query("b=2&a=%3a&a=1", false), "a=%3A&a=1&b=2");
        assert_eq!(percent_decode("%zz%4"), b"%zz%4");
        assert_eq!(percent_decode("a%41"), b"aA");
    }
}

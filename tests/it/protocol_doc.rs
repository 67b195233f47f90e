//! docs/PROTOCOL.md is normative, and cannot drift from the code: this
//! test reads the document's schema blocks, decodes every golden frame of
//! protocol version 2 with a decoder driven by that schema alone, and
//! compares what it read with the message the frame encodes (field by
//! field, with names, in order; every enum's numbers and names). It also
//! checks the document's tables of attributes, error codes, rejection codes
//! and limits against the build's.

use std::collections::{BTreeMap, BTreeSet};

use cairn_server::protocol::{codes, RequestBody, ResponseBody};
use serde_json::{json, Value};

use crate::common::fixtures_dir;
use crate::protocol_golden::{requests, responses};

#[derive(Debug, Clone)]
enum Ty {
    Bool,
    U8,
    Uint,
    Int,
    F64,
    Str,
    Bytes,
    Array(usize),
    Option(Box<Ty>),
    Vec(Box<Ty>),
    Tuple(Vec<Ty>),
    Named(String),
}

#[derive(Debug)]
enum Variant {
    Unit,
    Newtype(Ty),
    Fields(Vec<(String, Ty)>),
}

#[derive(Debug)]
enum Def {
    Struct(Vec<(String, Ty)>),
    Enum(Vec<(u64, String, Variant)>),
}

fn document() -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/PROTOCOL.md")).unwrap()
}

/// Splits "a: T, b: U" at top-level commas.
fn split_top(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth) = (Vec::new(), String::new(), 0);
    for c in s.chars() {
        match c {
            '<' | '(' | '[' => depth += 1,
            '>' | ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

fn parse_ty(s: &str) -> Ty {
    let s = s.trim();
    match s {
        "bool" => Ty::Bool,
        "u8" => Ty::U8,
        "u16" | "u32" | "u64" => Ty::Uint,
        "i32" | "i64" => Ty::Int,
        "f64" => Ty::F64,
        "string" => Ty::Str,
        "bytes" => Ty::Bytes,
        _ if s.starts_with("[u8;") => Ty::Array(s.trim_start_matches("[u8;").trim_end_matches(']').trim().parse().unwrap()),
        _ if s.starts_with("option<") => Ty::Option(Box::new(parse_ty(&s[7..s.len() - 1]))),
        _ if s.starts_with("vec<") => Ty::Vec(Box::new(parse_ty(&s[4..s.len() - 1]))),
        _ if s.starts_with('(') => Ty::Tuple(split_top(&s[1..s.len() - 1]).iter().map(|t| parse_ty(t)).collect()),
        _ => {
            assert!(s.chars().all(|c| c.is_ascii_alphanumeric()), "not a type: {s:?}");
            Ty::Named(s.to_string())
        }
    }
}

fn parse_fields(s: &str) -> Vec<(String, Ty)> {
    split_top(s)
        .iter()
        .map(|f| {
            let (n, t) = f.split_once(':').unwrap_or_else(|| panic!("field without a type: {f:?}"));
            (n.trim().to_string(), parse_ty(t))
        })
        .collect()
}

/// Every `schema` block of the document.
fn schema() -> BTreeMap<String, Def> {
    let doc = document();
    let mut defs = BTreeMap::new();
    let mut in_block = false;
    let mut current: Option<(String, bool, Vec<String>)> = None;
    for raw in doc.lines() {
        if raw.trim() == "```schema" {
            in_block = true;
            continue;
        }
        if in_block && raw.trim() == "```" {
            in_block = false;
            continue;
        }
        if !in_block {
            continue;
        }
        let line = raw.split("//").next().unwrap().trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("struct ").or_else(|| line.strip_prefix("enum ")) {
            current = Some((rest.trim_end_matches('{').trim().to_string(), line.starts_with("enum"), Vec::new()));
        } else if line == "}" {
            let (name, is_enum, lines) = current.take().unwrap();
            let def = if is_enum {
                Def::Enum(
                    lines
                        .iter()
                        .map(|l| {
                            let (num, rest) = l.split_once(' ').unwrap();
                            let num: u64 = num.parse().unwrap_or_else(|_| panic!("{name}: a variant needs its number: {l:?}"));
                            let rest = rest.trim();
                            if let Some((v, f)) = rest.split_once('{') {
                                (num, v.trim().to_string(), Variant::Fields(parse_fields(f.trim_end_matches('}'))))
                            } else if let Some((v, t)) = rest.split_once('(') {
                                (num, v.trim().to_string(), Variant::Newtype(parse_ty(t.trim_end_matches(')'))))
                            } else {
                                (num, rest.to_string(), Variant::Unit)
                            }
                        })
                        .collect(),
                )
            } else {
                Def::Struct(parse_fields(&lines.join(", ")))
            };
            assert!(defs.insert(name.clone(), def).is_none(), "{name} is defined twice");
        } else {
            current.as_mut().unwrap_or_else(|| panic!("a line outside a definition: {line:?}")).2.push(line.to_string());
        }
    }
    defs
}

fn varint(b: &mut &[u8], max_bytes: usize) -> Result<u64, String> {
    let mut v = 0u64;
    for i in 0..max_bytes {
        let (&byte, rest) = b.split_first().ok_or("input ends inside a varint")?;
        *b = rest;
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint too long".into())
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if b.len() < n {
        return Err(format!("{n} bytes wanted, {} left", b.len()));
    }
    let (head, rest) = b.split_at(n);
    *b = rest;
    Ok(head)
}

/// Decodes one value of type `ty` as the document's section 2 says, into
/// the shape serde_json gives the Rust message.
fn decode(defs: &BTreeMap<String, Def>, ty: &Ty, b: &mut &[u8]) -> Result<Value, String> {
    Ok(match ty {
        Ty::Bool => match take(b, 1)?[0] {
            0 => json!(false),
            1 => json!(true),
            x => return Err(format!("bool byte {x}")),
        },
        Ty::U8 => json!(take(b, 1)?[0]),
        Ty::Uint => json!(varint(b, 10)?),
        Ty::Int => {
            let z = varint(b, 10)?;
            json!(((z >> 1) as i64) ^ -((z & 1) as i64))
        }
        Ty::F64 => json!(f64::from_le_bytes(take(b, 8)?.try_into().unwrap())),
        Ty::Str => {
            let n = varint(b, 10)? as usize;
            json!(std::str::from_utf8(take(b, n)?).map_err(|e| e.to_string())?)
        }
        Ty::Bytes => {
            let n = varint(b, 10)? as usize;
            json!(take(b, n)?.to_vec())
        }
        Ty::Array(n) => json!(take(b, *n)?.to_vec()),
        Ty::Option(t) => match take(b, 1)?[0] {
            0 => Value::Null,
            1 => decode(defs, t, b)?,
            x => return Err(format!("option byte {x}")),
        },
        Ty::Vec(t) => {
            let n = varint(b, 10)?;
            Value::Array((0..n).map(|_| decode(defs, t, b)).collect::<Result<_, _>>()?)
        }
        Ty::Tuple(ts) => Value::Array(ts.iter().map(|t| decode(defs, t, b)).collect::<Result<_, _>>()?),
        Ty::Named(name) => match defs.get(name).ok_or_else(|| format!("the document does not define {name}"))? {
            Def::Struct(fields) => fields_value(defs, fields, b)?,
            Def::Enum(variants) => {
                let n = varint(b, 5)?;
                let (_, vname, shape) =
                    variants.iter().find(|(k, _, _)| *k == n).ok_or_else(|| format!("{name} has no variant {n} in the document"))?;
                match shape {
                    Variant::Unit => json!(vname),
                    Variant::Newtype(t) => json!({ vname.as_str(): decode(defs, t, b)? }),
                    Variant::Fields(f) => json!({ vname.as_str(): fields_value(defs, f, b)? }),
                }
            }
        },
    })
}

fn fields_value(defs: &BTreeMap<String, Def>, fields: &[(String, Ty)], b: &mut &[u8]) -> Result<Value, String> {
    let mut m = serde_json::Map::new();
    for (n, t) in fields {
        m.insert(n.clone(), decode(defs, t, b)?);
    }
    Ok(Value::Object(m))
}

/// Decodes a whole frame as `top`, checking its length and that nothing is
/// left over.
fn decode_frame(defs: &BTreeMap<String, Def>, top: &str, frame: &[u8]) -> Result<Value, String> {
    let len = u32::from_le_bytes(frame[..4].try_into().unwrap()) as usize;
    assert_eq!(len, frame.len() - 4, "the frame's length field");
    let mut body = &frame[4..];
    let v = decode(defs, &Ty::Named(top.into()), &mut body)?;
    if !body.is_empty() {
        return Err(format!("{} bytes left over", body.len()));
    }
    Ok(v)
}

fn golden() -> BTreeMap<String, Vec<u8>> {
    let text = std::fs::read_to_string(fixtures_dir().join("golden/protocol-v2.txt")).unwrap();
    text.lines().filter_map(|l| l.split_once(' ')).map(|(n, h)| (n.to_string(), hex::decode(h.trim()).unwrap())).collect()
}

/// Names every variant (exhaustive: a variant added to the code does not
/// compile here until it has a golden sample and a schema line).
fn request_variant(b: &RequestBody) -> &'static str {
    match b {
        RequestBody::Append { .. } => "Append",
        RequestBody::Lookup { .. } => "Lookup",
        RequestBody::Count { .. } => "Count",
        RequestBody::Get { .. } => "Get",
        RequestBody::Stats => "Stats",
        RequestBody::Export { .. } => "Export",
        RequestBody::CreateToken { .. } => "CreateToken",
        RequestBody::Tail { .. } => "Tail",
        RequestBody::Process => "Process",
        RequestBody::Checkpoint => "Checkpoint",
        RequestBody::PublicKeys => "PublicKeys",
        RequestBody::RotateKey => "RotateKey",
        RequestBody::Prove { .. } => "Prove",
        RequestBody::Consistency { .. } => "Consistency",
        RequestBody::Verify { .. } => "Verify",
        RequestBody::SignDigest { .. } => "SignDigest",
        RequestBody::Compact { .. } => "Compact",
        RequestBody::Retain { .. } => "Retain",
        RequestBody::Insights { .. } => "Insights",
        RequestBody::Rollup { .. } => "Rollup",
        RequestBody::CreateAwsKey { .. } => "CreateAwsKey",
        RequestBody::CreateChannel { .. } => "CreateChannel",
        RequestBody::ListChannels => "ListChannels",
        RequestBody::Delivery => "Delivery",
        RequestBody::Query { .. } => "Query",
    }
}

fn response_variant(b: &ResponseBody) -> &'static str {
    match b {
        ResponseBody::Appended { .. } => "Appended",
        ResponseBody::Page { .. } => "Page",
        ResponseBody::Counts { .. } => "Counts",
        ResponseBody::Events { .. } => "Events",
        ResponseBody::Stats(_) => "Stats",
        ResponseBody::ExportChunk { .. } => "ExportChunk",
        ResponseBody::ExportEnd { .. } => "ExportEnd",
        ResponseBody::Token { .. } => "Token",
        ResponseBody::TailEvents { .. } => "TailEvents",
        ResponseBody::Error(_) => "Error",
        ResponseBody::Process(_) => "Process",
        ResponseBody::Checkpoint { .. } => "Checkpoint",
        ResponseBody::PublicKeys { .. } => "PublicKeys",
        ResponseBody::Proofs { .. } => "Proofs",
        ResponseBody::Consistency { .. } => "Consistency",
        ResponseBody::VerifyProgress { .. } => "VerifyProgress",
        ResponseBody::VerifyReport(_) => "VerifyReport",
        ResponseBody::DigestSignature { .. } => "DigestSignature",
        ResponseBody::Compacted(_) => "Compacted",
        ResponseBody::Insights(_) => "Insights",
        ResponseBody::Retained(_) => "Retained",
        ResponseBody::RolledUp(_) => "RolledUp",
        ResponseBody::AwsKey { .. } => "AwsKey",
        ResponseBody::Channel(_) => "Channel",
        ResponseBody::Channels { .. } => "Channels",
        ResponseBody::Delivery(_) => "Delivery",
        ResponseBody::QueryBatch { .. } => "QueryBatch",
        ResponseBody::QueryEnd(_) => "QueryEnd",
    }
}

fn enum_variants(defs: &BTreeMap<String, Def>, name: &str) -> BTreeSet<String> {
    match &defs[name] {
        Def::Enum(v) => v.iter().map(|(_, n, _)| n.clone()).collect(),
        Def::Struct(_) => panic!("{name} is not an enum"),
    }
}

// Goal: every golden frame of version 2 decodes with the document's schema
// alone into exactly the message it encodes; every request and response
// variant is in the document.
#[test]
fn the_schema_decodes_every_golden_frame() {
    let defs = schema();
    let frames = golden();
    for (name, msg) in requests() {
        let got = decode_frame(&defs, "Request", &frames[name]).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, serde_json::to_value(&msg).unwrap(), "{name}: the document's schema reads another message");
    }
    for (name, msg) in responses() {
        let got = decode_frame(&defs, "Response", &frames[name]).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, serde_json::to_value(&msg).unwrap(), "{name}: the document's schema reads another message");
    }
    for (name, top) in [("hello", "Hello"), ("hello-ok", "HelloReply"), ("hello-error", "HelloReply")] {
        decode_frame(&defs, top, &frames[name]).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let sampled: BTreeSet<String> = requests().iter().map(|(_, r)| request_variant(&r.body).to_string()).collect();
    assert_eq!(sampled, enum_variants(&defs, "RequestBody"), "request variants: golden samples vs the document");
    let sampled: BTreeSet<String> = responses().iter().map(|(_, r)| response_variant(&r.body).to_string()).collect();
    assert_eq!(sampled, enum_variants(&defs, "ResponseBody"), "response variants: golden samples vs the document");
    // The worked examples of section 3.
    let doc = document();
    for (msg, hex) in [
        (
            cairn_server::protocol::encode_frame(&cairn_server::protocol::Request { id: 5, body: RequestBody::Stats }).unwrap(),
            "02 00 00 00 05 04",
        ),
        (
            cairn_server::protocol::encode_frame(&cairn_server::protocol::Response { id: 5, body: ResponseBody::ExportEnd { count: 300 } })
                .unwrap(),
            "04 00 00 00 05 06 ac 02",
        ),
    ] {
        assert!(doc.contains(hex), "the example {hex} is in the document");
        assert_eq!(hex::encode(msg), hex.replace(' ', ""));
    }
}

/// The rows of the first table after `heading`: its cells, trimmed of
/// spaces and backquotes.
fn table_after(heading: &str) -> Vec<Vec<String>> {
    let doc = document();
    let at = doc.find(heading).unwrap_or_else(|| panic!("{heading} is in the document"));
    doc[at..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| l.trim_matches('|').split('|').map(|c| c.trim().trim_matches('`').to_string()).collect())
        .collect()
}

// Goal: the document's attribute table is the build's: every name, in
// code order.
#[test]
fn the_attribute_table_is_the_builds() {
    let rows = table_after("## 5. Queries");
    let doc: Vec<(String, String)> = rows.iter().map(|r| (r[0].clone(), r[1].clone())).collect();
    let code: Vec<(String, String)> = cairn_engine::Attr::ALL.iter().map(|a| ((*a as u8).to_string(), a.name().to_string())).collect();
    assert_eq!(doc, code);
}

// Goal: the document's error table lists exactly the codes the server
// sends, and the Append paragraph every rejection code.
#[test]
fn the_error_tables_are_the_builds() {
    let rows = table_after("## 7. Errors");
    let doc: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(doc, codes::ALL.to_vec());
    use cairn_engine::Rejection;
    let rejections = [
        Rejection::TooLarge { bytes: 2, limit: 1 },
        Rejection::InvalidJson(String::new()),
        Rejection::NotAnObject,
        Rejection::MissingEventTime,
        Rejection::InvalidEventTime(String::new()),
        Rejection::MissingEventName,
    ];
    let text = document();
    let append = &text[text.find("**Append.**").unwrap()..text.find("**Lookup.**").unwrap()];
    for r in rejections {
        assert!(append.contains(&format!("`{}`", r.code())), "rejection code {} is in the Append paragraph", r.code());
    }
    for q in [
        cairn_engine::QueryError::InvalidTimeRange(String::new()),
        cairn_engine::QueryError::InvalidLookupAttributes(String::new()),
        cairn_engine::QueryError::InvalidMaxResults(String::new()),
        cairn_engine::QueryError::InvalidNextToken(String::new()),
    ] {
        assert!(codes::ALL.contains(&q.code()), "{} is a listed code", q.code());
    }
}

// Goal: the limits the document states are the build's.
#[test]
fn the_limits_are_the_builds() {
    use cairn_engine::limits::{BATCH_BYTES_MAX, BATCH_RECORDS_MAX, RECORD_BYTES_DEFAULT, RECORD_BYTES_MAX};
    use cairn_engine::query::{
        ATTRIBUTE_VALUES_MAX, ATTRIBUTE_VALUE_CHARS_MAX, MAX_RESULTS_DEFAULT, MAX_RESULTS_MAX, PAGE_RECORD_BYTES_MAX,
    };
    use cairn_server::protocol::{FRAME_BYTES_DEFAULT, HELLO_FRAME_BYTES_MAX, RESPONSE_FRAME_BYTES_MAX, VERIFY_PROBLEMS_MAX};
    let text = document();
    let limits = &text[text.find("## 6. Limits").unwrap()..text.find("## 7. Errors").unwrap()];
    let mib = |n: usize| format!("{} MiB", n >> 20);
    let kib = |n: usize| format!("{} KiB", n >> 10);
    let thousands = |n: usize| {
        let s = n.to_string();
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    };
    for (what, shown) in [
        ("hello frame", kib(HELLO_FRAME_BYTES_MAX as usize)),
        ("request frame", mib(FRAME_BYTES_DEFAULT as usize)),
        ("response frame", mib(RESPONSE_FRAME_BYTES_MAX as usize)),
        ("records per append", thousands(BATCH_RECORDS_MAX)),
        ("bytes per append", mib(BATCH_BYTES_MAX)),
        ("record default", kib(RECORD_BYTES_DEFAULT)),
        ("record max", mib(RECORD_BYTES_MAX)),
        ("max results", thousands(MAX_RESULTS_MAX)),
        ("max results default", format!("default {MAX_RESULTS_DEFAULT}")),
        ("values", ATTRIBUTE_VALUES_MAX.to_string()),
        ("value length", thousands(ATTRIBUTE_VALUE_CHARS_MAX)),
        ("verify problems", thousands(VERIFY_PROBLEMS_MAX)),
    ] {
        assert!(limits.contains(&shown), "the limits table shows {what} as {shown}");
    }
    assert!(text.contains(&format!("once its records reach\n{}", mib(PAGE_RECORD_BYTES_MAX))), "the page cut is documented");
}

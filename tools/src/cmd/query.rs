//! What `cairn lookup`, `count`, `export` and `tail` share: parsing filters
//! and times, and rendering events as tables, LookupEvents-shaped JSON,
//! NDJSON (the stored bytes) or CSV.

use std::io::Write;

use anyhow::{anyhow, bail, Result};
use cairn_engine::event::{format_event_time, parse_event_time};
use cairn_engine::{parse_event, Attr, Query, StoredEvent};

/// Parses a time: RFC 3339 (and eventTime's variants), a date (midnight
/// UTC), `now`, or a relative age such as `7d`, `2h`, `30m`, `45s`, `1w`
/// counted back from `now_ms`.
pub fn parse_time(s: &str, now_ms: i64) -> Result<i64> {
    let s = s.trim();
    if s == "now" {
        return Ok(now_ms);
    }
    if let Some(ms) = parse_event_time(s).or_else(|| parse_event_time(&format!("{s}T00:00:00Z"))) {
        return Ok(ms);
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let unit_ms: i64 = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 604_800_000,
        _ => 0,
    };
    match num.parse::<i64>() {
        Ok(n) if unit_ms > 0 => Ok(now_ms - n.saturating_mul(unit_ms)),
        _ => bail!("{s:?} is not a time: use RFC 3339 (2026-01-02T03:04:05Z), a date (2026-01-02), `now`, or an age such as 7d, 12h, 30m"),
    }
}

/// Parses `Key=Value` filters; repeated keys combine with OR, different
/// keys with AND.
pub fn parse_filters(attrs: &[String]) -> Result<Vec<(Attr, Vec<String>)>> {
    let mut out: Vec<(Attr, Vec<String>)> = Vec::new();
    for a in attrs {
        let (k, v) = a.split_once('=').ok_or_else(|| anyhow!("--attr {a:?} must be Key=Value (e.g. Username=alice)"))?;
        let attr = Attr::parse(k).ok_or_else(|| {
            let names: Vec<&str> = Attr::ALL.iter().map(|a| a.name()).collect();
            anyhow!("InvalidLookupAttributesException: unknown attribute {k:?}; one of {}", names.join(", "))
        })?;
        match out.iter_mut().find(|(x, _)| *x == attr) {
            Some((_, vs)) => vs.push(v.to_string()),
            None => out.push((attr, vec![v.to_string()])),
        }
    }
    Ok(out)
}

pub fn build_query(start: Option<&str>, end: Option<&str>, attrs: &[String], now_ms: i64) -> Result<Query> {
    Ok(Query {
        start_ms: start.map(|s| parse_time(s, now_ms)).transpose()?,
        end_ms: end.map(|s| parse_time(s, now_ms)).transpose()?,
        filters: parse_filters(attrs)?,
    })
}

/// Filters shared by lookup, count and export.
#[derive(clap::Args, Clone)]
pub struct Filters {
    /// Oldest eventTime (inclusive): RFC 3339, a date, `now`, or an age such as 7d, 12h, 30m.
    #[arg(long)]
    pub start: Option<String>,
    /// Newest eventTime (inclusive), same forms as --start.
    #[arg(long)]
    pub end: Option<String>,
    /// Key=Value lookup attribute; repeat it: different keys AND, the same key OR.
    /// Keys: EventId EventName ReadOnly Username ResourceType ResourceName EventSource
    /// AccessKeyId ErrorCode AwsRegion AccountId SourceIPAddress UserIdentityArn
    /// EventCategory EventType.
    #[arg(long = "attr", value_name = "KEY=VALUE")]
    pub attrs: Vec<String>,
    /// Only events of this eventCategory (management, data, insight,
    /// networkactivity, aggregated; any case): the same as --attr
    /// EventCategory=VALUE.
    /// `--category insight` lists the Insight events.
    #[arg(long, value_name = "CATEGORY")]
    pub category: Option<String>,
}

impl Filters {
    /// The query these filters describe, relative times against `now_ms`.
    pub fn query(&self, now_ms: i64) -> Result<Query> {
        let mut attrs = self.attrs.clone();
        attrs.extend(self.category.iter().map(|c| format!("EventCategory={c}")));
        build_query(self.start.as_deref(), self.end.as_deref(), &attrs, now_ms)
    }
}

/// The LookupEvents fields of a stored event.
pub struct Columns {
    pub event_time: String,
    pub event_name: String,
    pub username: String,
    pub event_source: String,
    pub resources: Vec<(Option<String>, String)>,
    pub access_key_id: String,
    pub read_only: Option<bool>,
    pub event_id: String,
    pub error_code: String,
    pub aws_region: String,
    pub source_ip: String,
}

pub fn columns(e: &StoredEvent) -> Columns {
    let ev = parse_event(&e.record, cairn_engine::limits::RECORD_BYTES_MAX).ok();
    let s = |f: &dyn Fn(&cairn_engine::Event<'_>) -> Option<String>| ev.as_ref().and_then(f).unwrap_or_default();
    Columns {
        event_time: format_event_time(e.time_ms),
        event_name: s(&|v| Some(v.event_name.to_string())),
        username: s(&|v| v.username.as_ref().map(|x| x.to_string())),
        event_source: s(&|v| v.event_source.as_ref().map(|x| x.to_string())),
        resources: ev
            .as_ref()
            .map(|v| {
                v.resources.iter().filter_map(|(t, n)| n.as_ref().map(|n| (t.as_ref().map(|t| t.to_string()), n.to_string()))).collect()
            })
            .unwrap_or_default(),
        access_key_id: s(&|v| v.access_key_id.as_ref().map(|x| x.to_string())),
        read_only: ev.as_ref().and_then(|v| v.read_only),
        event_id: s(&|v| v.event_id.as_ref().map(|x| x.to_string())),
        error_code: s(&|v| v.error_code.as_ref().map(|x| x.to_string())),
        aws_region: s(&|v| v.aws_region.as_ref().map(|x| x.to_string())),
        source_ip: s(&|v| v.source_ip.as_ref().map(|x| x.to_string())),
    }
}

/// One event as LookupEvents returns it (`CloudTrailEvent` holds the
/// stored record as a string): the same shape cairnd's HTTP API sends.
pub fn lookup_json(e: &StoredEvent) -> serde_json::Value {
    cairn_server::convert::lookup_event(e).0
}

pub const TABLE_HEADER: &str =
    "EventTime             EventName                      Username              EventSource                     ResourceName";

pub fn table_row(e: &StoredEvent) -> String {
    let c = columns(e);
    let cut = |s: &str, n: usize| -> String {
        if s.chars().count() > n {
            s.chars().take(n - 1).chain(std::iter::once('…')).collect()
        } else {
            s.to_string()
        }
    };
    let resource = c.resources.first().map(|r| r.1.clone()).unwrap_or_default();
    format!(
        "{:<21} {:<30} {:<21} {:<31} {}",
        c.event_time,
        cut(&c.event_name, 30),
        cut(&c.username, 21),
        cut(&c.event_source, 31),
        resource
    )
}

pub const CSV_HEADER: &str = "EventTime,EventName,Username,EventSource,ResourceType,ResourceName,AccessKeyId,ReadOnly,EventId,ErrorCode,AwsRegion,SourceIPAddress,CloudTrailEvent";

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn csv_row(e: &StoredEvent) -> String {
    let c = columns(e);
    let (rt, rn) = c.resources.first().map(|(t, n)| (t.clone().unwrap_or_default(), n.clone())).unwrap_or_default();
    let fields = [
        c.event_time,
        c.event_name,
        c.username,
        c.event_source,
        rt,
        rn,
        c.access_key_id,
        c.read_only.map(|b| b.to_string()).unwrap_or_default(),
        c.event_id,
        c.error_code,
        c.aws_region,
        c.source_ip,
        String::from_utf8_lossy(&e.record).into_owned(),
    ];
    fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",")
}

/// Streams events in one of the export formats.
pub struct ExportWriter<W: Write> {
    out: W,
    format: ExportFormat,
    n: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Ndjson,
    Json,
    Csv,
}

impl<W: Write> ExportWriter<W> {
    pub fn new(mut out: W, format: ExportFormat) -> std::io::Result<Self> {
        match format {
            ExportFormat::Json => out.write_all(b"[")?,
            ExportFormat::Csv => writeln!(out, "{CSV_HEADER}")?,
            ExportFormat::Ndjson => {}
        }
        Ok(Self { out, format, n: 0 })
    }

    pub fn write(&mut self, e: &StoredEvent) -> std::io::Result<()> {
        match self.format {
            ExportFormat::Ndjson => {
                self.out.write_all(&e.record)?;
                self.out.write_all(b"\n")?;
            }
            ExportFormat::Json => {
                self.out.write_all(if self.n == 0 { b"\n" } else { b",\n" })?;
                self.out.write_all(&e.record)?;
            }
            ExportFormat::Csv => writeln!(self.out, "{}", csv_row(e))?,
        }
        self.n += 1;
        Ok(())
    }

    pub fn finish(mut self) -> std::io::Result<u64> {
        if self.format == ExportFormat::Json {
            self.out.write_all(if self.n == 0 { b"]\n" } else { b"\n]\n" })?;
        }
        self.out.flush()?;
        Ok(self.n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: every accepted time spelling resolves; junk is refused clearly.
    #[test]
    fn times() {
        let now = parse_time("2026-01-08T00:00:00Z", 0).unwrap();
        assert_eq!(parse_time("7d", now).unwrap(), parse_time("2026-01-01", 0).unwrap());
        assert_eq!(parse_time("2h", now).unwrap(), now - 7_200_000);
        assert_eq!(parse_time("now", now).unwrap(), now);
        assert!(parse_time("yesterday", now).unwrap_err().to_string().contains("not a time"));
    }

    // Goal: filters group repeated keys (OR) and reject unknown keys.
    #[test]
    fn filters() {
        let f = parse_filters(&["Username=a".into(), "EventName=X".into(), "username=b".into()]).unwrap();
        assert_eq!(f, vec![(Attr::Username, vec!["a".into(), "b".into()]), (Attr::EventName, vec!["X".into()])]);
        assert!(parse_filters(&["Bogus=1".into()]).is_err());
        assert!(parse_filters(&["NoEquals".into()]).is_err());
    }

    // Goal: CSV quoting survives commas, quotes and newlines.
    #[test]
    fn csv_quoting() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}

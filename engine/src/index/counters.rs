//! Per-minute counters, the input of Insights: for every minute of
//! eventTime, the write management calls per (eventSource, eventName), and
//! the management calls that ended in an error per (eventSource,
//! eventName, errorCode), each with its top contributors (userIdentity.arn,
//! userAgent, and for call rates errorCode), bounded.
//!
//! Kept in each memtable as events arrive (a hash map update per counted
//! event), written into each sealed segment's index section (version 3),
//! and merged across segments for any range of minutes.

use std::collections::{BTreeMap, HashMap};

/// Maps keyed by series: foldhash (seeded per process), as the memtable's
/// maps of values from records; counting runs on the commit path.
pub type SeriesMap<V> = HashMap<SeriesKey, V, foldhash::fast::RandomState>;

use crate::codec::{put_u16, put_u32, put_uvarint, unzigzag, zigzag, Reader};
use crate::event::Event;

/// Contributors kept per attribute and minute (the insight shows 5).
pub const TOP_KEPT: usize = 8;
/// ... and tracked while counting, before trimming to [`TOP_KEPT`].
pub const TOP_TRACKED: usize = 4 * TOP_KEPT;
pub const MINUTE_MS: i64 = 60_000;

/// What a series counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct SeriesKey {
    /// The account (recipientAccountId) and region the calls were in:
    /// Insights analyse each account and region apart, as CloudTrail does.
    pub account: String,
    pub region: String,
    pub source: String,
    pub name: String,
    /// `None`: write management calls (ApiCallRateInsight); `Some(code)`:
    /// calls that ended with this error code (ApiErrorRateInsight).
    pub error: Option<String>,
}

/// The most frequent values of one attribute in one minute, with counts,
/// at most [`TOP_KEPT`], largest first; `other` counts the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Top {
    pub entries: Vec<(String, u32)>,
    pub other: u32,
}

impl Top {
    fn add(&mut self, value: &str, n: u32) {
        match self.entries.iter_mut().find(|(v, _)| v == value) {
            Some(e) => e.1 = e.1.saturating_add(n),
            None => self.entries.push((value.to_string(), n)),
        }
    }

    /// Keeps the largest entries; the rest go to `other`.
    fn trim(&mut self) {
        self.entries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        if self.entries.len() > TOP_KEPT {
            let rest = self.entries[TOP_KEPT..].iter().fold(0u32, |a, e| a.saturating_add(e.1));
            self.other = self.other.saturating_add(rest);
            self.entries.truncate(TOP_KEPT);
        }
    }

    pub fn merge(&mut self, o: &Top) {
        for (v, n) in &o.entries {
            self.add(v, *n);
        }
        self.other = self.other.saturating_add(o.other);
        if self.entries.len() > TOP_TRACKED {
            self.trim();
        }
    }
}

/// One minute of one series.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cell {
    pub count: u32,
    pub users: Top,
    pub agents: Top,
    pub errors: Top,
}

impl Cell {
    pub fn merge(&mut self, o: &Cell) {
        self.count = self.count.saturating_add(o.count);
        self.users.merge(&o.users);
        self.agents.merge(&o.agents);
        self.errors.merge(&o.errors);
    }

    /// Keeps the contributor lists bounded, trimming only now and then
    /// (at [`TOP_TRACKED`] values), not on every add.
    fn bound(&mut self) {
        if self.users.entries.len() > TOP_TRACKED || self.agents.entries.len() > TOP_TRACKED || self.errors.entries.len() > TOP_TRACKED {
            self.users.trim();
            self.agents.trim();
            self.errors.trim();
        }
    }
}

/// Counters of a set of events: series -> minute -> cell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub series: SeriesMap<BTreeMap<i64, Cell>>,
}

/// Whether an event counts, and for which series: write management calls,
/// and management calls with an error code. Insight records and Cairn's
/// own events (eventSource `cairn.local`, e.g. RetentionCut) never count.
/// The parts are borrowed from the event and cut to [`VALUE_BYTES_MAX`].
fn series_of<'e>(ev: &'e Event<'_>) -> Option<Parts<'e>> {
    let category = ev.event_category.as_deref().unwrap_or("Management");
    if category != "Management" || ev.event_type.as_deref() == Some("AwsCloudTrailInsight") {
        return None;
    }
    let source = ev.event_source.as_deref().filter(|s| *s != "cairn.local")?;
    let call = ev.read_only == Some(false);
    let error = ev.error_code.as_deref().map(clamp);
    if !call && error.is_none() {
        return None;
    }
    Some(Parts {
        account: clamp(ev.recipient_account_id.as_deref().or(ev.account_id.as_deref()).unwrap_or("")),
        region: clamp(ev.aws_region.as_deref().unwrap_or("")),
        source: clamp(source),
        name: clamp(&ev.event_name),
        call,
        error,
    })
}

/// What [`series_of`] finds: the series' names, whether the event counts
/// as a call, and its error code.
struct Parts<'e> {
    account: &'e str,
    region: &'e str,
    source: &'e str,
    name: &'e str,
    call: bool,
    error: Option<&'e str>,
}

/// What one event adds to the counters: its minute, its series' parts,
/// whether it is a call, its error code and contributors, each cut as the
/// counters keep them. `S` is how the strings are held: `&str` to count,
/// or a reference into a buffer while the event waits to be counted (the
/// store counts its events when it seals them, not on the commit path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally<S> {
    pub minute: i64,
    pub call: bool,
    pub account: S,
    pub region: S,
    pub source: S,
    pub name: S,
    pub error: Option<S>,
    pub user: S,
    pub agent: S,
}

impl<'e> Tally<&'e str> {
    /// The event's tally, if it counts (see [`series_of`]).
    pub fn of(ev: &'e Event<'_>) -> Option<Tally<&'e str>> {
        let Parts { account, region, source, name, call, error } = series_of(ev)?;
        Some(Tally {
            minute: ev.time_ms.div_euclid(MINUTE_MS),
            call,
            account,
            region,
            source,
            name,
            error,
            user: ev.user_identity_arn.as_deref().map_or("null", clamp),
            agent: ev.user_agent.as_deref().map_or("null", |a| clamp_chars(a, AGENT_CHARS_MAX)),
        })
    }
}

impl<S> Tally<S> {
    /// The same tally with each string converted by `f` (`None` if any
    /// conversion fails).
    pub fn try_map<T>(self, mut f: impl FnMut(S) -> Option<T>) -> Option<Tally<T>> {
        Some(Tally {
            minute: self.minute,
            call: self.call,
            account: f(self.account)?,
            region: f(self.region)?,
            source: f(self.source)?,
            name: f(self.name)?,
            error: match self.error {
                Some(e) => Some(f(e)?),
                None => None,
            },
            user: f(self.user)?,
            agent: f(self.agent)?,
        })
    }
}

/// Longest value the counters keep, in bytes (cut at a character
/// boundary): a series or contributor is named the same before and after
/// its segment is written (encoding has a 16-bit length).
pub const VALUE_BYTES_MAX: usize = 1024;
/// User agents are kept to this many characters.
const AGENT_CHARS_MAX: usize = 200;

fn clamp(s: &str) -> &str {
    let mut end = s.len().min(VALUE_BYTES_MAX);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn clamp_chars(s: &str, n: usize) -> &str {
    clamp(s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i]))
}

fn set(dst: &mut String, src: &str) {
    dst.clear();
    dst.push_str(src);
}

impl Counters {
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Number of (series, minute) cells.
    pub fn cells(&self) -> usize {
        self.series.values().map(BTreeMap::len).sum()
    }

    pub fn cell(&self, key: &SeriesKey, minute: i64) -> Option<&Cell> {
        self.series.get(key)?.get(&minute)
    }

    fn minutes_mut(&mut self, key: &SeriesKey) -> &mut BTreeMap<i64, Cell> {
        minutes_of(&mut self.series, key)
    }

    /// Counts one event (if it counts; see [`series_of`]). `scratch` is
    /// reused between calls, so that an event of a series and contributors
    /// seen before allocates nothing.
    pub fn count(&mut self, ev: &Event<'_>, scratch: &mut SeriesKey) {
        if let Some(t) = Tally::of(ev) {
            self.count_tally(&t, scratch);
        }
    }

    /// Counts what one event adds (see [`Tally::of`]).
    pub fn count_tally(&mut self, t: &Tally<&str>, scratch: &mut SeriesKey) {
        let Tally { minute, call, account, region, source, name, error, user, agent } = *t;
        set(&mut scratch.account, account);
        set(&mut scratch.region, region);
        set(&mut scratch.source, source);
        set(&mut scratch.name, name);
        for series_error in [None, error] {
            match series_error {
                None if !call => continue,
                None => scratch.error = None,
                Some(code) => match &mut scratch.error {
                    Some(e) => set(e, code),
                    e => *e = Some(code.to_string()),
                },
            }
            let c = self.minutes_mut(scratch).entry(minute).or_default();
            c.count = c.count.saturating_add(1);
            c.users.add(user, 1);
            c.agents.add(agent, 1);
            if series_error.is_none() {
                c.errors.add(error.unwrap_or("null"), 1);
            }
            // Bounded per minute: trim now and then, not on every add.
            c.bound();
            if error.is_none() {
                break;
            }
        }
    }

    pub fn merge(&mut self, o: &Counters) {
        for (k, minutes) in &o.series {
            for (m, c) in minutes {
                self.add_cell(k, *m, c);
            }
        }
    }

    /// Trims every cell's contributors to the [`TOP_KEPT`] largest, as
    /// encoding does.
    pub fn trim(&mut self) {
        for c in self.series.values_mut().flat_map(BTreeMap::values_mut) {
            c.users.trim();
            c.agents.trim();
            c.errors.trim();
        }
    }

    /// Only the minutes in `[lo, hi)`.
    pub fn retain_minutes(&mut self, lo: i64, hi: i64) {
        for m in self.series.values_mut() {
            m.retain(|&t, _| (lo..hi).contains(&t));
        }
        self.series.retain(|_, m| !m.is_empty());
    }

    /// Encodes the counters (the tail of an index section, version 3):
    /// `strings u32 | (len u16, bytes)* | series u32 | (account u32, region
    /// u32, source u32, name u32, error u32 (u32::MAX: none))* | cells u32 |
    /// cells`, a cell being
    /// varints `minute delta (zigzag) | series | count | 3 × (n | (string,
    /// count)*) | 3 × other`, sorted by (minute, series).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut strings: Vec<&str> = Vec::new();
        let mut ids: HashMap<&str, u32, foldhash::fast::RandomState> = HashMap::default();
        let mut series: Vec<&SeriesKey> = self.series.keys().collect();
        series.sort();
        let series_ix: HashMap<&SeriesKey, u32, foldhash::fast::RandomState> =
            series.iter().enumerate().map(|(i, k)| (*k, i as u32)).collect();
        // Collect every string first (series parts and contributors).
        let mut all: Vec<&str> = Vec::new();
        for k in &series {
            all.push(&k.account);
            all.push(&k.region);
            all.push(&k.source);
            all.push(&k.name);
            if let Some(e) = &k.error {
                all.push(e);
            }
        }
        for c in self.series.values().flat_map(BTreeMap::values) {
            for t in [&c.users, &c.agents, &c.errors] {
                all.extend(t.entries.iter().map(|(v, _)| v.as_str()));
            }
        }
        for s in all {
            if !ids.contains_key(s) {
                ids.insert(s, strings.len() as u32);
                strings.push(s);
            }
        }
        put_u32(out, strings.len() as u32);
        for s in &strings {
            let b = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
            put_u16(out, b.len() as u16);
            out.extend_from_slice(b);
        }
        put_u32(out, series.len() as u32);
        for k in &series {
            put_u32(out, ids[k.account.as_str()]);
            put_u32(out, ids[k.region.as_str()]);
            put_u32(out, ids[k.source.as_str()]);
            put_u32(out, ids[k.name.as_str()]);
            put_u32(out, k.error.as_deref().map_or(u32::MAX, |e| ids[e]));
        }
        let ix = &series_ix;
        let mut cells: Vec<(i64, u32, &Cell)> =
            self.series.iter().flat_map(|(k, ms)| ms.iter().map(move |(m, c)| (*m, ix[k], c))).collect();
        cells.sort_by_key(|c| (c.0, c.1));
        put_u32(out, cells.len() as u32);
        let mut prev_minute = 0i64;
        for (minute, series_i, c) in cells {
            let d = minute.wrapping_sub(prev_minute);
            prev_minute = minute;
            put_uvarint(out, zigzag(d));
            put_uvarint(out, u64::from(series_i));
            put_uvarint(out, u64::from(c.count));
            for t in [&c.users, &c.agents, &c.errors] {
                let mut t = t.clone();
                t.trim();
                put_uvarint(out, t.entries.len() as u64);
                for (v, n) in &t.entries {
                    put_uvarint(out, u64::from(ids[v.as_str()]));
                    put_uvarint(out, u64::from(*n));
                }
                put_uvarint(out, u64::from(t.other));
            }
        }
    }

    /// Decodes [`Counters::encode`]'s bytes; `Err` names what is wrong.
    pub fn decode(r: &mut Reader<'_>) -> Result<Counters, String> {
        let mut out = Counters::default();
        visit(r, |key, minute, _, cell| out.add_cell(key, minute, &cell()))?;
        Ok(out)
    }

    /// Adds one cell of a series.
    pub fn add_cell(&mut self, key: &SeriesKey, minute: i64, cell: &Cell) {
        self.minutes_mut(key).entry(minute).or_default().merge(cell);
    }

    /// The counts alone.
    pub fn counts(&self) -> Counts {
        self.series.iter().map(|(k, m)| (k.clone(), m.iter().map(|(t, c)| (*t, c.count)).collect())).collect()
    }
}

/// The minutes of `key` in `map`, created empty if new (the key is
/// cloned only then, not on every count).
pub fn minutes_of<'m, V>(map: &'m mut SeriesMap<BTreeMap<i64, V>>, key: &SeriesKey) -> &'m mut BTreeMap<i64, V> {
    if !map.contains_key(key) {
        map.insert(key.clone(), BTreeMap::new());
    }
    map.get_mut(key).expect("inserted above")
}

/// Per-minute counts of each series, without contributors: what the
/// detector reads (a few bytes per cell, so 28 days of them fit in memory).
pub type Counts = SeriesMap<BTreeMap<i64, u32>>;

/// Visits every cell of [`Counters::encode`]'s bytes: `f(series, minute,
/// count, cell)`, where `cell()` builds the whole cell (contributors
/// included) only for the callers that want it. `Err` names what is wrong;
/// cells before the damage may have been visited.
pub fn visit(r: &mut Reader<'_>, mut f: impl FnMut(&SeriesKey, i64, u32, &dyn Fn() -> Cell)) -> Result<(), String> {
    let short = || "counters: short".to_string();
    let n_strings = r.u32().ok_or_else(short)? as usize;
    if n_strings > r.remaining() / 2 {
        return Err("counters: string table out of bounds".into());
    }
    let mut strings = Vec::with_capacity(n_strings);
    for _ in 0..n_strings {
        let len = r.u16().ok_or_else(short)? as usize;
        let b = r.bytes(len).ok_or_else(short)?;
        strings.push(String::from_utf8_lossy(b).into_owned());
    }
    let s = |i: u32| strings.get(i as usize).cloned().ok_or_else(|| "counters: bad string index".to_string());
    let n_series = r.u32().ok_or_else(short)? as usize;
    if n_series.checked_mul(20).is_none_or(|b| b > r.remaining()) {
        return Err("counters: series table out of bounds".into());
    }
    let mut series = Vec::with_capacity(n_series);
    for _ in 0..n_series {
        let mut f = [0u32; 5];
        for x in &mut f {
            *x = r.u32().ok_or_else(short)?;
        }
        let error = if f[4] == u32::MAX { None } else { Some(s(f[4])?) };
        series.push(SeriesKey { account: s(f[0])?, region: s(f[1])?, source: s(f[2])?, name: s(f[3])?, error });
    }
    let n_cells = r.u32().ok_or_else(short)? as usize;
    if n_cells > r.remaining() {
        return Err("counters: cell count out of bounds".into());
    }
    let mut minute = 0i64;
    // Contributors as (string index, count), resolved only on demand.
    let mut raw: [(Vec<(u32, u32)>, u32); 3] = Default::default();
    for _ in 0..n_cells {
        let z = r.uvarint().ok_or_else(short)?;
        minute = minute.wrapping_add(unzigzag(z));
        let key = series.get(r.uvarint_u32().ok_or_else(short)? as usize).ok_or("counters: bad series index")?;
        let count = r.uvarint_u32().ok_or_else(short)?;
        for (entries, other) in &mut raw {
            entries.clear();
            let n = r.uvarint_u32().ok_or_else(short)? as usize;
            if n > TOP_KEPT {
                return Err("counters: too many contributors".into());
            }
            for _ in 0..n {
                let v = r.uvarint_u32().ok_or_else(short)?;
                if v as usize >= strings.len() {
                    return Err("counters: bad string index".into());
                }
                entries.push((v, r.uvarint_u32().ok_or_else(short)?));
            }
            *other = r.uvarint_u32().ok_or_else(short)?;
        }
        let cell = || {
            let top = |(entries, other): &(Vec<(u32, u32)>, u32)| Top {
                entries: entries.iter().map(|&(v, n)| (strings[v as usize].clone(), n)).collect(),
                other: *other,
            };
            Cell { count, users: top(&raw[0]), agents: top(&raw[1]), errors: top(&raw[2]) }
        };
        f(key, minute, count, &cell);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(c: &mut Counters, minute: i64, name: &str, user: &str, error: Option<&str>) {
        let time = crate::event::format_event_time(minute * MINUTE_MS);
        let err = error.map_or(String::new(), |e| format!(r#","errorCode":"{e}""#));
        let rec = format!(
            r#"{{"eventTime":"{time}","eventSource":"iam.amazonaws.com","eventName":"{name}","awsRegion":"us-east-1","recipientAccountId":"111122223333","userIdentity":{{"arn":"{user}"}},"userAgent":"cli","readOnly":false{err}}}"#
        );
        let ev = crate::event::parse_event(rec.as_bytes(), 1 << 20).unwrap();
        c.count(&ev, &mut SeriesKey::default());
    }

    // Goal: counters count per minute and series, keep the top contributors
    // bounded, and round-trip through their encoding; garbage never panics.
    #[test]
    fn count_encode_decode() {
        let mut c = Counters::default();
        for i in 0..500 {
            count(&mut c, 29_000_000 + i % 3, "CreateUser", &format!("arn:user/{}", i % 20), (i % 10 == 0).then_some("AccessDenied"));
        }
        let k = (
            29_000_000,
            SeriesKey {
                account: "111122223333".into(),
                region: "us-east-1".into(),
                source: "iam.amazonaws.com".into(),
                name: "CreateUser".into(),
                error: None,
            },
        );
        assert_eq!(c.cell(&k.1, k.0).unwrap().count, 167);
        let denied = SeriesKey { error: Some("AccessDenied".into()), ..k.1.clone() };
        assert_eq!(c.cell(&denied, k.0).unwrap().count, 17, "every 30th event is an AccessDenied in this minute");
        assert_eq!(c.series.len(), 2, "one call series, one error series");
        let mut b = Vec::new();
        c.encode(&mut b);
        let back = Counters::decode(&mut Reader::new(&b)).unwrap();
        assert_eq!(back.cells(), c.cells());
        let cell = back.cell(&k.1, k.0).unwrap();
        assert_eq!(cell.count, 167);
        assert!(cell.users.entries.len() <= TOP_KEPT);
        assert_eq!(cell.users.entries.iter().map(|e| e.1).sum::<u32>() + cell.users.other, 167);
        for cut in 0..b.len() {
            let _ = Counters::decode(&mut Reader::new(&b[..cut]));
        }
        for i in 0..b.len() {
            let mut g = b.clone();
            g[i] ^= 0x55;
            let _ = Counters::decode(&mut Reader::new(&g));
        }
    }
}

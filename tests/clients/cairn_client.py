#!/usr/bin/env python3
"""Minimal client for the Cairn wire protocol, version 2, plus a self-test.

Written from PROTOCOL.md alone (no project source code was read), using
only Python's standard library, by a developer who had not seen the code;
kept as a test (tests/it/protocol_client.rs runs it against a live cairnd)
so the document stays enough to implement a client from. The gaps that
writer found were closed in the document; the one edit since: the Tail
check starts from Stats.tree_size instead of sleeping.

Library part: frame encode/decode (4-byte little-endian length + body), a
schema-driven postcard encoder/decoder covering every message type of the
document, and a `Connection` class with one method per request.

Self-test part: `python3 cairn_client.py --addr HOST:PORT --token TOKEN`
runs the checks against a running cairnd (fresh, empty store expected;
the checks use per-run eventIDs so a rerun also passes) and exits 0 when
every check passes, 1 (naming the failed check) otherwise.

Values: a struct is a dict of its fields; an enum value is a tuple
(variant_name, payload) where payload is None (unit variant), the single
value (`Name(T)`) or a dict (`Name { ... }`); a tuple is a Python tuple;
`bytes` and `[u8; N]` are Python bytes; `option<T>` is None or the value.
"""

import argparse
import base64
import json
import os
import socket
import struct
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

PROTOCOL_VERSION = 2
MAGIC = b"CAIRNP01"
MAX_RESPONSE_FRAME = 16 * 1024 * 1024


class DecodeError(Exception):
    """A body that does not decode per PROTOCOL.md section 2."""


class ProtocolError(Exception):
    """The server said or did something the protocol does not allow."""


# ---------------------------------------------------------------------------
# Schema description (section 3) and postcard codec (section 2)
# ---------------------------------------------------------------------------

def Opt(t):
    return ("option", t)


def Vec(t):
    return ("vec", t)


def Tup(*ts):
    return ("tuple",) + tuple(ts)


def Arr(n):
    return ("array", n)


def Struct(name, *fields):
    return ("struct", name, list(fields))


def Enum(name, variants):
    """variants: {number: (variant_name, kind, spec)} where kind is 'unit'
    (spec None), 'newtype' (spec: a type) or 'struct' (spec: field list)."""
    by_name = {v[0]: (num,) + v for num, v in variants.items()}
    return ("enum", name, variants, by_name)


def Unit(name):
    return (name, "unit", None)


def New(name, t):
    return (name, "newtype", t)


def Fields(name, *fields):
    return (name, "struct", list(fields))


ROLE = Enum("Role", {0: Unit("Ingest"), 1: Unit("Read"), 2: Unit("Admin")})
WIRE_ERROR = Struct("WireError", ("code", "string"), ("message", "string"))

HELLO = Struct("Hello", ("magic", Arr(8)), ("version", "u16"), ("token", "string"))
HELLO_REPLY = Enum("HelloReply", {
    0: Fields("Ok", ("version", "u16"), ("server", "string"), ("role", ROLE)),
    1: New("Error", WIRE_ERROR),
})

WIRE_QUERY = Struct(
    "WireQuery",
    ("start_ms", Opt("i64")),
    ("end_ms", Opt("i64")),
    ("filters", Vec(Tup("string", Vec("string")))),
)
WIRE_COMPACT = Struct(
    "WireCompact",
    ("target_bytes", "u64"), ("small_bytes", "u64"), ("all", "bool"),
    ("zstd_level", "i32"), ("block_bytes", "u64"), ("dictionary", "bool"),
    ("dry_run", "bool"), ("max_bytes_per_sec", "u64"),
)
REQUEST_BODY = Enum("RequestBody", {
    0: Fields("Append", ("records", Vec("bytes"))),
    1: Fields("Lookup", ("query", WIRE_QUERY), ("max_results", Opt("u32")),
              ("next_token", Opt("string"))),
    2: Fields("Count", ("query", WIRE_QUERY), ("by", "string")),
    3: Fields("Get", ("event_id", "string")),
    4: Unit("Stats"),
    5: Fields("Export", ("query", WIRE_QUERY), ("oldest_first", "bool")),
    6: Fields("CreateToken", ("role", ROLE), ("name", "string")),
    7: Fields("Tail", ("query", WIRE_QUERY), ("from_seq", Opt("u64"))),
    8: Unit("Process"),
    9: Unit("Checkpoint"),
    10: Unit("PublicKeys"),
    11: Unit("RotateKey"),
    12: Fields("Prove", ("seq", Opt("u64")), ("event_id", Opt("string")),
               ("checkpoint", Opt("string"))),
    13: Fields("Consistency", ("old", "string"), ("new", Opt("string"))),
    14: Fields("Verify", ("checkpoints", Vec("string")), ("public_keys", Vec("string"))),
    15: Fields("SignDigest", ("end_time", "string"), ("location", "string"),
               ("sha256_hex", "string"), ("previous", Opt("string"))),
    16: Fields("Compact", ("options", WIRE_COMPACT)),
    17: Fields("Retain", ("older_than_secs", "u64"), ("dry_run", "bool")),
    18: Fields("Insights", ("start_ms", Opt("i64")), ("end_ms", Opt("i64")),
               ("backfill", "bool"), ("sensitivity_milli", Opt("u32"))),
    19: Fields("Rollup", ("start_ms", Opt("i64")), ("end_ms", Opt("i64")),
               ("dry_run", "bool")),
})
REQUEST = Struct("Request", ("id", "u64"), ("body", REQUEST_BODY))

WIRE_EVENT = Struct("WireEvent", ("seq", "u64"), ("ingest_ms", "u64"),
                    ("time_ms", "i64"), ("record", "bytes"))
WIRE_OUTCOME = Enum("WireOutcome", {
    0: New("Stored", "u64"),
    1: New("Duplicate", "u64"),
    2: Fields("Rejected", ("code", "string"), ("message", "string")),
})
WIRE_STATS = Struct(
    "WireStats",
    ("events", "u64"), ("sealed_events", "u64"), ("segments", "u64"),
    ("record_bytes", "u64"), ("disk_bytes", "u64"),
    ("min_time_ms", Opt("i64")), ("max_time_ms", Opt("i64")),
    ("tree_size", "u64"), ("root", Arr(32)), ("connections", "u64"),
    ("appended_since_start", "u64"), ("uptime_ms", "u64"),
)
WIRE_PROCESS = Struct(
    "WireProcess",
    ("rss_bytes", Opt("u64")), ("peak_rss_bytes", Opt("u64")),
    ("memtable_bytes", "u64"), ("block_cache_bytes", "u64"), ("id_filter_bytes", "u64"),
)
WIRE_VERIFY_REPORT = Struct(
    "WireVerifyReport",
    ("events", "u64"), ("segments", "u64"), ("record_bytes", "u64"),
    ("tree_size", "u64"), ("root", Opt(Arr(32))),
    ("history_checkpoints", "u64"), ("external_checkpoints", "u64"),
    ("trusted_keys", "bool"), ("problems", Vec(Tup("string", "string"))),
    ("pruned_below", "u64"), ("pruned_checkpoints", "u64"), ("problems_omitted", "u64"),
)
WIRE_COMPACT_RUN = Struct(
    "WireCompactRun",
    ("first_seq", "u64"), ("events", "u64"), ("segments", "u64"),
    ("bytes_before", "u64"), ("bytes_after", "u64"),
)
WIRE_COMPACT_REPORT = Struct(
    "WireCompactReport",
    ("dry_run", "bool"), ("segments_before", "u64"), ("segments_after", "u64"),
    ("bytes_before", "u64"), ("bytes_after", "u64"), ("record_bytes", "u64"),
    ("seconds", "f64"), ("runs", Vec(WIRE_COMPACT_RUN)), ("dictionary_bytes", "u64"),
)
WIRE_RETENTION_REPORT = Struct(
    "WireRetentionReport",
    ("dry_run", "bool"), ("cutoff_ms", "i64"), ("segments_removed", "u64"),
    ("events_removed", "u64"), ("bytes_removed", "u64"),
    ("min_retained_seq", "u64"), ("event_seq", Opt("u64")),
)
WIRE_ROLLUP_REPORT = Struct(
    "WireRollupReport",
    ("data_events", "u64"), ("records", "u64"), ("appended", "u64"),
    ("present", "u64"), ("dry_run", "bool"),
)
WIRE_APPENDED = Struct("WireAppended", ("appended", "u64"), ("present", "u64"))
WIRE_SERIES_KEY = Struct(
    "WireSeriesKey",
    ("account", "string"), ("region", "string"), ("source", "string"),
    ("name", "string"), ("error", Opt("string")),
)
WIRE_CONTRIBUTOR = Struct("WireContributor", ("value", "string"),
                          ("insight", "f64"), ("baseline", "f64"))
WIRE_ATTRIBUTIONS = Struct(
    "WireAttributions",
    ("users", Vec(WIRE_CONTRIBUTOR)), ("agents", Vec(WIRE_CONTRIBUTOR)),
    ("errors", Vec(WIRE_CONTRIBUTOR)),
)
WIRE_INSIGHT = Struct(
    "WireInsight",
    ("sharedEventId", "string"), ("insightType", "string"), ("start", "string"),
    ("end", Opt("string")), ("key", WIRE_SERIES_KEY), ("direction", "string"),
    ("start_minute", "i64"), ("end_minute", Opt("i64")),
    ("baseline_average", "f64"), ("baseline_minutes", "u64"),
    ("start_average", "f64"), ("insight_average", "f64"), ("insight_minutes", "u64"),
    ("start_attributions", WIRE_ATTRIBUTIONS), ("attributions", WIRE_ATTRIBUTIONS),
)
WIRE_INSIGHTS_REPORT = Struct(
    "WireInsightsReport",
    ("start_minute", "i64"), ("end_minute", "i64"),
    ("insights", Vec(WIRE_INSIGHT)), ("appended", Opt(WIRE_APPENDED)),
)
RESPONSE_BODY = Enum("ResponseBody", {
    0: Fields("Appended", ("outcomes", Vec(WIRE_OUTCOME))),
    1: Fields("Page", ("events", Vec(WIRE_EVENT)), ("next_token", Opt("string"))),
    2: Fields("Counts", ("counts", Vec(Tup("string", "u64")))),
    3: Fields("Events", ("events", Vec(WIRE_EVENT))),
    4: New("Stats", WIRE_STATS),
    5: Fields("ExportChunk", ("events", Vec(WIRE_EVENT))),
    6: Fields("ExportEnd", ("count", "u64")),
    7: Fields("Token", ("token", "string")),
    8: Fields("TailEvents", ("events", Vec(WIRE_EVENT))),
    9: New("Error", WIRE_ERROR),
    10: New("Process", WIRE_PROCESS),
    11: Fields("Checkpoint", ("note", Opt("string"))),
    12: Fields("PublicKeys", ("keys", Vec("string"))),
    13: Fields("Proofs", ("bundles", Vec("string"))),
    14: Fields("Consistency", ("bundle", "string")),
    15: Fields("VerifyProgress", ("done_bytes", "u64"), ("total_bytes", "u64")),
    16: New("VerifyReport", WIRE_VERIFY_REPORT),
    17: Fields("DigestSignature", ("signature", "bytes"), ("key", "string")),
    18: New("Compacted", WIRE_COMPACT_REPORT),
    19: New("Insights", WIRE_INSIGHTS_REPORT),
    20: New("Retained", WIRE_RETENTION_REPORT),
    21: New("RolledUp", WIRE_ROLLUP_REPORT),
})
RESPONSE = Struct("Response", ("id", "u64"), ("body", RESPONSE_BODY))

_UINT_BITS = {"u16": 16, "u32": 32, "u64": 64}
_VARINT_MAX_BYTES = {"u16": 3, "u32": 5, "u64": 10}
_SINT_BITS = {"i32": 32, "i64": 64}


def _enc_varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def encode(t, v):
    """Encode value v of schema type t as postcard bytes."""
    out = bytearray()
    _encode(t, v, out)
    return bytes(out)


def _encode(t, v, out):
    if isinstance(t, str):
        if t == "bool":
            out.append(1 if v else 0)
        elif t == "u8":
            out.append(v)
        elif t in _UINT_BITS:
            if not 0 <= v < (1 << _UINT_BITS[t]):
                raise ValueError(f"{v} out of range for {t}")
            out += _enc_varint(v)
        elif t in _SINT_BITS:
            bits = _SINT_BITS[t]
            if not -(1 << (bits - 1)) <= v < (1 << (bits - 1)):
                raise ValueError(f"{v} out of range for {t}")
            out += _enc_varint(((v << 1) ^ (v >> (bits - 1))) & ((1 << bits) - 1))
        elif t == "f64":
            out += struct.pack("<d", v)
        elif t == "string":
            data = v.encode("utf-8")
            out += _enc_varint(len(data)) + data
        elif t == "bytes":
            out += _enc_varint(len(v)) + bytes(v)
        else:
            raise ValueError(f"unknown type {t}")
        return
    kind = t[0]
    if kind == "array":
        if len(v) != t[1]:
            raise ValueError(f"need exactly {t[1]} bytes")
        out += bytes(v)
    elif kind == "option":
        if v is None:
            out.append(0)
        else:
            out.append(1)
            _encode(t[1], v, out)
    elif kind == "vec":
        out += _enc_varint(len(v))
        for item in v:
            _encode(t[1], item, out)
    elif kind == "tuple":
        for sub, item in zip(t[1:], v, strict=True):
            _encode(sub, item, out)
    elif kind == "struct":
        for fname, ft in t[2]:
            _encode(ft, v[fname], out)
    elif kind == "enum":
        name, payload = v if isinstance(v, tuple) else (v, None)
        num, _vname, vkind, spec = t[3][name]
        out += _enc_varint(num)
        if vkind == "newtype":
            _encode(spec, payload, out)
        elif vkind == "struct":
            for fname, ft in spec:
                _encode(ft, payload[fname], out)
    else:
        raise ValueError(f"unknown type {t!r}")


def decode(t, data):
    """Decode a whole body; rejects trailing bytes (section 2)."""
    value, pos = _decode(t, memoryview(bytes(data)), 0)
    if pos != len(data):
        raise DecodeError(f"{len(data) - pos} bytes left over after {t[1]}")
    return value


def _need(buf, pos, n):
    if pos + n > len(buf):
        raise DecodeError("body ends early")


def _dec_varint(buf, pos, t):
    maxlen = _VARINT_MAX_BYTES[t]
    v = 0
    for i in range(maxlen):
        _need(buf, pos, 1)
        b = buf[pos]
        pos += 1
        v |= (b & 0x7F) << (7 * i)
        if not b & 0x80:
            if v >= (1 << _UINT_BITS[t]):
                raise DecodeError(f"varint overflows {t}")
            return v, pos
    raise DecodeError(f"varint longer than {maxlen} bytes for {t}")


def _decode(t, buf, pos):
    if isinstance(t, str):
        if t == "bool":
            _need(buf, pos, 1)
            b = buf[pos]
            if b > 1:
                raise DecodeError(f"bool byte {b}")
            return b == 1, pos + 1
        if t == "u8":
            _need(buf, pos, 1)
            return buf[pos], pos + 1
        if t in _UINT_BITS:
            return _dec_varint(buf, pos, t)
        if t in _SINT_BITS:
            u, pos = _dec_varint(buf, pos, "u32" if t == "i32" else "u64")
            return (u >> 1) ^ -(u & 1), pos
        if t == "f64":
            _need(buf, pos, 8)
            return struct.unpack_from("<d", buf, pos)[0], pos + 8
        if t in ("string", "bytes"):
            n, pos = _dec_varint(buf, pos, "u64")
            _need(buf, pos, n)
            raw = bytes(buf[pos:pos + n])
            if t == "string":
                try:
                    return raw.decode("utf-8"), pos + n
                except UnicodeDecodeError as e:
                    raise DecodeError(f"invalid UTF-8: {e}") from None
            return raw, pos + n
        raise ValueError(f"unknown type {t}")
    kind = t[0]
    if kind == "array":
        _need(buf, pos, t[1])
        return bytes(buf[pos:pos + t[1]]), pos + t[1]
    if kind == "option":
        _need(buf, pos, 1)
        tag = buf[pos]
        if tag == 0:
            return None, pos + 1
        if tag == 1:
            return _decode(t[1], buf, pos + 1)
        raise DecodeError(f"option tag {tag}")
    if kind == "vec":
        n, pos = _dec_varint(buf, pos, "u64")
        items = []
        for _ in range(n):
            item, pos = _decode(t[1], buf, pos)
            items.append(item)
        return items, pos
    if kind == "tuple":
        items = []
        for sub in t[1:]:
            item, pos = _decode(sub, buf, pos)
            items.append(item)
        return tuple(items), pos
    if kind == "struct":
        d = {}
        for fname, ft in t[2]:
            d[fname], pos = _decode(ft, buf, pos)
        return d, pos
    if kind == "enum":
        num, pos = _dec_varint(buf, pos, "u32")
        if num not in t[2]:
            raise DecodeError(f"{t[1]}: unknown variant {num}")
        vname, vkind, spec = t[2][num]
        if vkind == "unit":
            return (vname, None), pos
        if vkind == "newtype":
            payload, pos = _decode(spec, buf, pos)
            return (vname, payload), pos
        d = {}
        for fname, ft in spec:
            d[fname], pos = _decode(ft, buf, pos)
        return (vname, d), pos
    raise ValueError(f"unknown type {t!r}")


# ---------------------------------------------------------------------------
# Frames (section 1)
# ---------------------------------------------------------------------------

def encode_frame(body):
    return struct.pack("<I", len(body)) + body


def _recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by server")
        buf += chunk
    return bytes(buf)


def read_frame(sock, limit=MAX_RESPONSE_FRAME):
    (n,) = struct.unpack("<I", _recv_exact(sock, 4))
    if n > limit:
        raise ProtocolError(f"response frame of {n} bytes exceeds {limit}")
    return _recv_exact(sock, n)


# ---------------------------------------------------------------------------
# Connection: one method per request
# ---------------------------------------------------------------------------

class ServerError(Exception):
    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def query(start_ms=None, end_ms=None, filters=None):
    """A WireQuery; filters is a dict or list of (attribute, [values])."""
    if isinstance(filters, dict):
        filters = list(filters.items())
    return {"start_ms": start_ms, "end_ms": end_ms,
            "filters": [(a, list(vs)) for a, vs in (filters or [])]}


class Connection:
    def __init__(self, addr, timeout=30.0):
        host, _, port = addr.rpartition(":")
        self.sock = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
        self.next_id = 1
        self.hello_reply = None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # -- handshake ---------------------------------------------------------
    def hello(self, token, version=PROTOCOL_VERSION, magic=MAGIC):
        """Send Hello; return the decoded HelloReply (variant, payload)."""
        body = encode(HELLO, {"magic": magic, "version": version, "token": token})
        self.sock.sendall(encode_frame(body))
        self.hello_reply = decode(HELLO_REPLY, read_frame(self.sock))
        return self.hello_reply

    def login(self, token):
        name, payload = self.hello(token)
        if name != "Ok":
            raise ServerError(payload["code"], payload["message"])
        return payload

    # -- raw request/response ---------------------------------------------
    def _alloc_id(self):
        rid = self.next_id
        self.next_id += 1
        return rid

    def send(self, body, rid=None):
        """Send one request; return its id."""
        if rid is None:
            rid = self._alloc_id()
        self.sock.sendall(encode_frame(encode(REQUEST, {"id": rid, "body": body})))
        return rid

    def recv(self):
        """Read one Response: (id, (variant, payload))."""
        resp = decode(RESPONSE, read_frame(self.sock))
        return resp["id"], resp["body"]

    def call(self, body, expect):
        """One request with a single-frame answer of variant `expect`."""
        rid = self.send(body)
        got_id, (name, payload) = self.recv()
        if got_id != rid:
            raise ProtocolError(f"response id {got_id}, expected {rid}")
        if name == "Error":
            raise ServerError(payload["code"], payload["message"])
        if name != expect:
            raise ProtocolError(f"expected {expect}, got {name}")
        return payload

    def multi(self, body, item, end):
        """A multi-frame answer: frames of `item` then one `end`.
        Returns (list of item payloads, end payload)."""
        rid = self.send(body)
        items = []
        while True:
            got_id, (name, payload) = self.recv()
            if got_id != rid:
                raise ProtocolError(f"response id {got_id}, expected {rid}")
            if name == "Error":
                raise ServerError(payload["code"], payload["message"])
            if name == item:
                items.append(payload)
            elif name == end:
                return items, payload
            else:
                raise ProtocolError(f"expected {item} or {end}, got {name}")

    # -- requests -----------------------------------------------------------
    def append(self, records):
        return self.call(("Append", {"records": list(records)}), "Appended")["outcomes"]

    def lookup(self, q, max_results=None, next_token=None):
        p = self.call(("Lookup", {"query": q, "max_results": max_results,
                                  "next_token": next_token}), "Page")
        return p["events"], p["next_token"]

    def count(self, q, by):
        return self.call(("Count", {"query": q, "by": by}), "Counts")["counts"]

    def get(self, event_id):
        return self.call(("Get", {"event_id": event_id}), "Events")["events"]

    def stats(self):
        return self.call(("Stats", None), "Stats")

    def export(self, q, oldest_first=True):
        chunks, end = self.multi(("Export", {"query": q, "oldest_first": oldest_first}),
                                 "ExportChunk", "ExportEnd")
        return [e for c in chunks for e in c["events"]], end["count"]

    def create_token(self, role, name):
        return self.call(("CreateToken", {"role": (role, None), "name": name}), "Token")["token"]

    def tail_start(self, q, from_seq=None):
        """Start a Tail; afterwards read frames with tail_next()."""
        self.tail_id = self.send(("Tail", {"query": q, "from_seq": from_seq}))
        return self.tail_id

    def tail_next(self):
        got_id, (name, payload) = self.recv()
        if got_id != self.tail_id:
            raise ProtocolError(f"tail frame id {got_id}, expected {self.tail_id}")
        if name == "Error":
            raise ServerError(payload["code"], payload["message"])
        if name != "TailEvents":
            raise ProtocolError(f"expected TailEvents, got {name}")
        return payload["events"]

    def process(self):
        return self.call(("Process", None), "Process")

    def checkpoint(self):
        return self.call(("Checkpoint", None), "Checkpoint")["note"]

    def public_keys(self):
        return self.call(("PublicKeys", None), "PublicKeys")["keys"]

    def rotate_key(self):
        return self.call(("RotateKey", None), "PublicKeys")["keys"]

    def prove(self, seq=None, event_id=None, checkpoint=None):
        return self.call(("Prove", {"seq": seq, "event_id": event_id,
                                    "checkpoint": checkpoint}), "Proofs")["bundles"]

    def consistency(self, old, new=None):
        return self.call(("Consistency", {"old": old, "new": new}), "Consistency")["bundle"]

    def verify(self, checkpoints=(), public_keys=()):
        return self.multi(("Verify", {"checkpoints": list(checkpoints),
                                      "public_keys": list(public_keys)}),
                          "VerifyProgress", "VerifyReport")


# ---------------------------------------------------------------------------
# Self-test
# ---------------------------------------------------------------------------

class CheckFailed(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise CheckFailed(what)


def expect_error(fn, code):
    """fn() must raise ServerError `code` whose message does not repeat it."""
    try:
        fn()
    except ServerError as e:
        expect(e.code == code, f"expected error {code}, got {e.code}: {e.message}")
        expect(e.message, f"{code}: empty message")
        expect(code not in e.message, f"{code}: message repeats the code: {e.message!r}")
        return e
    raise CheckFailed(f"expected error {code}, got a normal answer")


def rfc3339(ms):
    dt = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


class SelfTest:
    # eventName -> how many records carry it (distinct counts: an unambiguous order)
    NAMES = {"GetObject": 5, "PutObject": 4, "ListBuckets": 2, "DeleteObject": 1}

    def __init__(self, addr, token):
        self.addr = addr
        self.token = token
        self.run = uuid.uuid4().hex[:12]
        # eventTimes over the last ~2 hours (recent: retention never bites)
        now_ms = int(time.time() // 60 * 60 * 1000)
        self.base_ms = now_ms - 2 * 3600 * 1000
        self.conn = None
        self.valid = []       # dicts: id, name, time_ms, bytes, seq
        self.initial_events = 0

    def connect(self):
        c = Connection(self.addr)
        c.login(self.token)
        return c

    def make_record(self, i, name, time_ms):
        eid = f"{self.run}-{i:04d}"
        rec = {
            "eventVersion": "1.08",
            "eventTime": rfc3339(time_ms),
            "eventName": name,
            "eventSource": "s3.amazonaws.com",
            "eventID": eid,
            "awsRegion": "eu-west-1",
            "userIdentity": {"type": "IAMUser", "userName": f"usér-{i % 3}"},
        }
        # unusual spacing and non-ASCII: Get must give these exact bytes back
        raw = json.dumps(rec, separators=(", ", " : "), ensure_ascii=False).encode()
        return eid, raw

    # -- checks ---------------------------------------------------------------
    def check_handshake(self):
        c = Connection(self.addr)
        try:
            name, p = c.hello(self.token)
            expect(name == "Ok", f"Hello with the admin token: {name} {p}")
            expect(p["version"] == 2, f"HelloReply version {p['version']}")
            expect(p["role"] == ("Admin", None), f"role {p['role']}")
            expect(p["server"], "empty server name")
        finally:
            c.close()
        c = Connection(self.addr)
        try:
            name, p = c.hello("cairn_" + "0" * 64)
            expect(name == "Error" and p["code"] == "AuthenticationFailed",
                   f"wrong token: {name} {p}")
            expect("AuthenticationFailed" not in p["message"], "message repeats the code")
        finally:
            c.close()
        c = Connection(self.addr)
        try:
            name, p = c.hello(self.token, version=1)
            expect(name == "Error" and p["code"] == "UnsupportedProtocolVersion",
                   f"version 1: {name} {p}")
            expect("2" in p["message"], f"message does not name version 2: {p['message']!r}")
            expect("UnsupportedProtocolVersion" not in p["message"], "message repeats the code")
        finally:
            c.close()
        self.conn = self.connect()
        self.initial_events = self.conn.stats()["events"]

    def check_append(self):
        names = [n for n, k in self.NAMES.items() for _ in range(k)]
        records = []
        for i, name in enumerate(names):
            # 12 records over an hour, 5 min apart; records 6 and 7 share a time
            t = self.base_ms + (i if i != 7 else 6) * 5 * 60 * 1000
            eid, raw = self.make_record(i, name, t)
            self.valid.append({"id": eid, "name": name, "time_ms": t, "bytes": raw})
            records.append(raw)
        bad_json = b"this is {not JSON"
        no_time = json.dumps({"eventVersion": "1.08", "eventName": "GetObject",
                              "eventSource": "s3.amazonaws.com",
                              "eventID": f"{self.run}-notime", "awsRegion": "eu-west-1",
                              "userIdentity": {"type": "IAMUser", "userName": "x"}}).encode()
        batch = records[:6] + [bad_json] + records[6:9] + [no_time] + records[9:]
        outcomes = self.conn.append(batch)
        expect(len(outcomes) == len(batch), f"{len(outcomes)} outcomes for {len(batch)} records")
        valid_iter = iter(self.valid)
        seqs = []
        for rec, (kind, p) in zip(batch, outcomes):
            if rec is bad_json:
                expect(kind == "Rejected" and p["code"] == "InvalidJson", f"not JSON: {kind} {p}")
            elif rec is no_time:
                expect(kind == "Rejected" and p["code"] == "MissingEventTime",
                       f"no eventTime: {kind} {p}")
            else:
                expect(kind == "Stored", f"valid record: {kind} {p}")
                next(valid_iter)["seq"] = p
                seqs.append(p)
            if kind == "Rejected":
                expect(p["code"] not in p["message"], f"rejection message repeats the code")
        expect(seqs == sorted(seqs) and len(set(seqs)) == len(seqs), f"seqs not increasing: {seqs}")
        again = self.conn.append([self.valid[3]["bytes"]])
        expect(again == [("Duplicate", self.valid[3]["seq"])],
               f"re-append: {again}, expected Duplicate({self.valid[3]['seq']})")

    def _newest_first(self, events):
        return sorted(events, key=lambda e: (e["time_ms"], e["seq"]), reverse=True)

    def check_lookup(self):
        q = query()
        seen, token, pages = [], None, 0
        while True:
            events, token = self.conn.lookup(q, max_results=5, next_token=token)
            pages += 1
            expect(len(events) <= 5, f"page of {len(events)} events with max_results 5")
            seen.extend(events)
            if token is None:
                break
            expect(pages < 1000, "next_token never ends")
        seqs = [e["seq"] for e in seen]
        expect(len(seqs) == len(set(seqs)), "an event seen twice across pages")
        expect(len(seen) == self.initial_events + len(self.valid),
               f"lookup saw {len(seen)} events, store has {self.initial_events + len(self.valid)}")
        expect(pages >= 3, f"only {pages} pages for {len(seen)} events at 5 a page")
        ours = {v["seq"]: v for v in self.valid}
        got = {e["seq"]: e for e in seen if e["seq"] in ours}
        expect(set(got) == set(ours), "not every appended event was returned")
        for s, v in ours.items():
            expect(got[s]["time_ms"] == v["time_ms"], f"seq {s}: time_ms {got[s]['time_ms']}")
        expect([e["seq"] for e in self._newest_first(seen)] == seqs,
               "lookup not newest first (eventTime desc, seq desc)")

        name = "PutObject"
        seen, token = [], None
        while True:
            events, token = self.conn.lookup(query(filters={"EventName": [name]}), 5, token)
            seen.extend(events)
            if token is None:
                break
        expect(all(json.loads(e["record"])["eventName"] == name for e in seen),
               "EventName filter returned another name")
        want = {v["seq"] for v in self.valid if v["name"] == name}
        expect(want <= {e["seq"] for e in seen}, "EventName filter missed events")

        expect_error(lambda: self.conn.lookup(query(filters={"NoSuchAttribute": ["x"]})),
                     "InvalidLookupAttributesException")
        expect_error(lambda: self.conn.lookup(q, max_results=0), "InvalidMaxResultsException")
        expect_error(lambda: self.conn.lookup(query(start_ms=self.base_ms + 1000,
                                                    end_ms=self.base_ms)),
                     "InvalidTimeRangeException")
        self.conn.stats()  # still served after the errors

    def check_count(self):
        ids = [v["id"] for v in self.valid]
        counts = self.conn.count(query(filters={"EventId": ids}), "EventName")
        expect(dict(counts) == self.NAMES, f"counts {counts}, expected {self.NAMES}")
        ordered = sorted(counts, key=lambda kv: (-kv[1], kv[0].encode()))
        expect(counts == ordered, f"counts not largest first: {counts}")

    def check_get(self):
        for v in (self.valid[0], self.valid[7]):
            events = self.conn.get(v["id"])
            expect(len(events) == 1, f"Get {v['id']}: {len(events)} events")
            expect(events[0]["record"] == v["bytes"], f"Get {v['id']}: bytes differ")
            expect(events[0]["seq"] == v["seq"], f"Get {v['id']}: seq differs")
        expect(self.conn.get(f"{self.run}-no-such-id") == [], "Get of an unknown id not empty")

    def check_stats(self):
        s = self.conn.stats()
        expect(s["events"] == self.initial_events + len(self.valid),
               f"stats events {s['events']}, expected {self.initial_events + len(self.valid)}")
        expect(len(s["root"]) == 32, "root not 32 bytes")
        expect(s["tree_size"] >= s["events"], "tree_size below events")
        expect(s["connections"] >= 1, "connections 0")

    def check_export(self):
        events, count = self.conn.export(query(), oldest_first=True)
        expect(count == len(events), f"ExportEnd count {count}, received {len(events)}")
        expect(len(events) == self.initial_events + len(self.valid),
               f"export sent {len(events)} events")
        oldest = sorted(events, key=lambda e: (e["time_ms"], e["seq"]))
        expect([e["seq"] for e in events] == [e["seq"] for e in oldest], "export not oldest first")
        ours = {v["seq"] for v in self.valid}
        expect(ours <= {e["seq"] for e in events}, "export missed appended events")

    def check_pipelining(self):
        c = self.conn
        frames = b"".join(encode_frame(encode(REQUEST, {"id": rid, "body": body})) for rid, body in [
            (101, ("Stats", None)),
            (102, ("Get", {"event_id": self.valid[1]["id"]})),
            (103, ("Count", {"query": query(), "by": "EventName"})),
        ])
        c.sock.sendall(frames)
        got = [c.recv() for _ in range(3)]
        expect([rid for rid, _ in got] == [101, 102, 103], f"ids {[rid for rid, _ in got]}")
        expect([b[0] for _, b in got] == ["Stats", "Events", "Counts"],
               f"bodies {[b[0] for _, b in got]}")
        expect(got[1][1][1]["events"][0]["record"] == self.valid[1]["bytes"], "pipelined Get")

    def check_request_id_zero(self):
        c = self.conn
        c.send(("Stats", None), rid=0)
        rid, (name, p) = c.recv()
        expect(rid == 0 and name == "Error" and p["code"] == "InvalidRequestId",
               f"id 0: {rid} {name} {p}")
        expect("InvalidRequestId" not in p["message"], "message repeats the code")
        expect(c.stats()["events"] >= len(self.valid), "connection not serving after id 0")

    def check_checkpoint_keys(self):
        note = self.conn.checkpoint()
        expect(note is not None, "Checkpoint of a non-empty store is absent")
        lines = note.split("\n")
        expect(lines[0] and not lines[0].startswith("—"), f"no origin line: {note!r}")
        expect(lines[1].isdigit(), f"second line not a tree size: {lines[1]!r}")
        s = self.conn.stats()
        expect(int(lines[1]) == s["tree_size"], f"checkpoint size {lines[1]} vs {s['tree_size']}")
        expect(base64.b64decode(lines[2]) == s["root"], "checkpoint root differs from Stats root")
        expect(lines[3] == "", "no blank line after the checkpoint body")
        expect(any(l.startswith("— ") for l in lines[4:]), "no signature line")
        keys = self.conn.public_keys()
        expect(len(keys) >= 1, "no public keys")
        for k in keys:
            # the base64 part may itself contain '+': split at the first two only
            parts = k.split("+", 2)
            expect(len(parts) == 3 and len(parts[1]) == 8 and parts[0],
                   f"key not NAME+KEYID+BASE64: {k!r}")
            expect(len(base64.b64decode(parts[2])) == 33, f"key not 1+32 bytes: {k!r}")
        # the note's signature lines name a key the store lists
        key_names = {k.split("+", 2)[0] for k in keys}
        sig_names = {l.split(" ")[1] for l in lines[4:] if l.startswith("— ")}
        expect(sig_names & key_names, f"no signature by a listed key: {sig_names} {key_names}")
        self.note, self.keys = note, keys

    def check_verify(self):
        progress, report = self.conn.verify([self.note], self.keys)
        for p in progress:
            expect(p["done_bytes"] <= p["total_bytes"], f"progress {p}")
        expect(report["problems"] == [], f"verify problems: {report['problems']}")
        expect(report["problems_omitted"] == 0, "problems omitted")
        expect(report["external_checkpoints"] == 1, f"external_checkpoints {report}")
        expect(report["events"] >= len(self.valid), f"verify events {report['events']}")

    def check_tail(self):
        tail = self.connect()
        try:
            # Nothing acknowledges a Tail: start it from the current tree size
            # (PROTOCOL.md, Tail) so the append below cannot race it.
            tail.tail_start(query(), from_seq=self.conn.stats()["tree_size"])
            t = self.base_ms + 3600 * 1000
            eid, raw = self.make_record(999, "TailTest", t)
            outcomes = self.conn.append([raw])
            expect(outcomes[0][0] == "Stored", f"tail record: {outcomes}")
            self.valid.append({"id": eid, "name": "TailTest", "time_ms": t, "bytes": raw,
                               "seq": outcomes[0][1]})
            tail.sock.settimeout(10)
            got = []
            while not any(e["record"] == raw for e in got):
                events = tail.tail_next()
                seqs = [e["seq"] for e in events]
                expect(seqs == sorted(seqs), "TailEvents not in seq order")
                got.extend(events)
            e = next(e for e in got if e["record"] == raw)
            expect(e["seq"] == outcomes[0][1], "tail event seq differs from Stored")
        finally:
            tail.close()
        # The server ends the tail once the client closes: the count of open
        # connections drops back.
        deadline = time.time() + 5
        while self.conn.stats()["connections"] > 1 and time.time() < deadline:
            time.sleep(0.1)
        expect(self.conn.stats()["connections"] == 1, "tail connection still open after close")

    def check_malformed_frame(self):
        c = self.connect()
        try:
            # Request { id: 7, body: variant 99 }: an unknown RequestBody variant
            c.sock.sendall(encode_frame(_enc_varint(7) + _enc_varint(99)))
            rid, (name, p) = c.recv()
            expect(rid == 0 and name == "Error" and p["code"] == "MalformedFrame",
                   f"unknown variant: {rid} {name} {p}")
            expect("MalformedFrame" not in p["message"], "message repeats the code")
            c.sock.settimeout(5)
            try:
                rest = c.sock.recv(1)
            except ConnectionResetError:
                rest = b""
            expect(rest == b"", "connection not closed after MalformedFrame")
        finally:
            c.close()
        # A valid Stats request with a byte left over after it (section 2:
        # MUST be rejected) is malformed too.
        c = self.connect()
        try:
            c.sock.sendall(encode_frame(_enc_varint(8) + _enc_varint(4) + b"\x00"))
            rid, (name, p) = c.recv()
            expect(rid == 0 and name == "Error" and p["code"] == "MalformedFrame",
                   f"left-over byte: {rid} {name} {p}")
        finally:
            c.close()
        self.conn.stats()  # other connections are unaffected

    CHECKS = [
        "handshake", "append", "lookup", "count", "get", "stats", "export",
        "pipelining", "request_id_zero", "checkpoint_keys", "verify", "tail",
        "malformed_frame",
    ]

    def run_all(self):
        try:
            for name in self.CHECKS:
                try:
                    getattr(self, "check_" + name)()
                except (CheckFailed, ServerError, ProtocolError, DecodeError,
                        ConnectionError, socket.timeout) as e:
                    print(f"FAIL {name}: {type(e).__name__}: {e}")
                    return 1
                print(f"ok   {name}")
        finally:
            if self.conn:
                self.conn.close()
        print(f"all {len(self.CHECKS)} checks passed")
        return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--addr", required=True, help="HOST:PORT of a running cairnd")
    ap.add_argument("--token", required=True, help="an admin token")
    args = ap.parse_args(argv)
    return SelfTest(args.addr, args.token.strip()).run_all()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Independent reader of a Cairn data directory, written from docs/FORMAT.md alone.

Usage: segment_reader.py DATA_DIR [--records OUT.ndjson]

Reads MANIFEST, every live sealed segment (header, footer, section table,
block index, blocks with CRCs, zstd with the segment's dictionary, block
payload versions 1-4), the WAL files, the level-0/level-1 tiles below a
retention cut, and recomputes the RFC 6962 Merkle root over every event.
Prints {"tree_size", "root", "segments", "wal_events", "whole_records",
"split_records"} as one JSON line (the last two count the records of
payload versions 3 and 4 stored whole and split into fields).
Exit status 1, naming the file and offset, on anything a reader must refuse.

Needs only the Python standard library and `zstandard`.
"""
import argparse
import hashlib
import json
import os
import struct
import sys
import zlib

import zstandard


class FormatError(Exception):
    def __init__(self, path, offset, msg):
        super().__init__(f"corruption in {path} at offset {offset}: {msg}")


def crc32(b):
    return zlib.crc32(b) & 0xFFFFFFFF


def sha256(b):
    return hashlib.sha256(b).digest()


def leaf_hash(ingest_ms, record):
    return sha256(b"\x00" + struct.pack("<Q", ingest_ms) + record)


def node_hash(l, r):
    return sha256(b"\x01" + l + r)


MASK64 = (1 << 64) - 1


def to_i64(v):
    v &= MASK64
    return v - (1 << 64) if v >> 63 else v


class Cur:
    """A bounded cursor over a bytes object; errors name file and absolute offset."""

    def __init__(self, data, path, base=0, what=""):
        self.d = data
        self.p = 0
        self.path = path
        self.base = base  # absolute file offset of data[0] (or of the block for payloads)
        self.what = what

    def err(self, msg, at=None):
        off = self.base + (self.p if at is None else at)
        w = f"{self.what}: " if self.what else ""
        return FormatError(self.path, off, w + msg)

    def left(self):
        return len(self.d) - self.p

    def take(self, n):
        if n < 0 or self.p + n > len(self.d):
            raise self.err(f"need {n} bytes, {self.left()} left")
        b = self.d[self.p:self.p + n]
        self.p += n
        return b

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack("<H", self.take(2))[0]

    def u32(self):
        return struct.unpack("<I", self.take(4))[0]

    def u64(self):
        return struct.unpack("<Q", self.take(8))[0]

    def i64(self):
        return struct.unpack("<q", self.take(8))[0]

    def varint(self):
        start = self.p
        v = 0
        shift = 0
        while True:
            if self.p >= len(self.d):
                raise self.err("varint runs past the end", start)
            b = self.d[self.p]
            self.p += 1
            if shift == 63 and b > 1:
                raise self.err("varint overflows 64 bits", start)
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                return v
            shift += 7
            if shift > 63:
                raise self.err("varint longer than 10 bytes", start)

    def deltas(self, n):
        out = []
        prev = 0
        for _ in range(n):
            z = self.varint()
            d = (z >> 1) ^ (-(z & 1) & MASK64)
            prev = (prev + d) & MASK64
            out.append(prev)
        return out


def read_varint_at(buf, i, path, off):
    v = 0
    shift = 0
    while True:
        if i >= len(buf):
            raise FormatError(path, off, "varint in template runs past its end")
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        if not b & 0x80:
            return v, i
        shift += 7
        if shift > 63:
            raise FormatError(path, off, "template varint too long")


# ---------------------------------------------------------------- columns

def civil_from_days(z):
    # Howard Hinnant's algorithm, proleptic Gregorian.
    z += 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return (y + 1 if m <= 2 else y), m, d


def fmt_time(secs, err):
    days, rem = divmod(secs, 86400)
    y, mo, d = civil_from_days(days)
    if not 0 <= y <= 9999:
        raise err(f"time value year {y} outside 0..=9999")
    return b"%04d-%02d-%02dT%02d:%02d:%02dZ" % (y, mo, d, rem // 3600, rem // 60 % 60, rem % 60)


B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def b64(b, pad):
    import base64
    s = base64.b64encode(b)
    return s if pad else s.rstrip(b"=")


def decode_column(cur, kind, enc, nvals, body_off):
    """Decode one column body (already sliced) into a list of value bytes."""
    c = cur
    vals = []

    def zterm_list(k):
        out = []
        for _ in range(k):
            i = c.d.find(b"\x00", c.p)
            if i < 0:
                raise c.err("unterminated value")
            out.append(c.d[c.p:i])
            c.p = i + 1
        return out

    if kind in (1, 2):
        if enc == 0:
            vals = zterm_list(nvals)
        elif enc == 1:
            D = c.varint()
            if not 1 <= D <= 65536:
                raise c.err(f"dictionary size {D} outside 1..=65536")
            dic = zterm_list(D)
            w = 1 if D <= 256 else 2
            for _ in range(nvals):
                idx = c.u8() if w == 1 else c.u16()
                if idx >= D:
                    raise c.err(f"dictionary index {idx} >= {D}")
                vals.append(dic[idx])
        else:
            raise c.err(f"unknown column (kind {kind}, encoding {enc})")
    elif enc != 0:
        raise c.err(f"unknown column (kind {kind}, encoding {enc})")
    elif kind == 3:
        for _ in range(nvals):
            h = c.take(16).hex().encode()
            vals.append(h[0:8] + b"-" + h[8:12] + b"-" + h[12:16] + b"-" + h[16:20] + b"-" + h[20:32])
    elif kind == 4:
        for s in c.deltas(nvals):
            vals.append(fmt_time(to_i64(s), c.err))
    elif kind in (5, 6, 7):
        for _ in range(nvals):
            ln = c.varint()
            b = c.take(ln)
            if kind == 5:
                vals.append(b64(b, True))
            elif kind == 6:
                vals.append(b64(b, False))
            else:
                vals.append(b.hex().encode())
    else:
        raise c.err(f"unknown column kind {kind}")
    if c.left():
        raise c.err(f"{c.left()} bytes left over in column body")
    return vals


# ---------------------------------------------------------------- payloads

MAX_RECORD = 1 << 20


def payload_v1(c, n):
    cnt = c.u32()
    if cnt != n:
        raise c.err(f"payload count {cnt} != block index events {n}")
    seqs = [c.u64() for _ in range(n)]
    ing = [c.u64() for _ in range(n)]
    et = [c.i64() for _ in range(n)]
    lens = [c.u32() for _ in range(n)]
    recs = [c.take(l) for l in lens]
    return seqs, ing, et, recs


def read_slots(c, n):
    at = c.p
    slots = c.deltas(n)
    seen = bytearray(n)
    for s in slots:
        if s >= n or seen[s]:
            raise c.err(f"slot order is not a permutation of 0..{n} (slot {s})", at)
        seen[s] = 1
    return slots


def time_columns(c, n):
    """count u32 (= n), then the seq, ingest_ms and event_time_ms deltas."""
    cnt = c.u32()
    if cnt != n:
        raise c.err(f"payload count {cnt} != block index events {n}")
    seqs = c.deltas(n)
    ing = c.deltas(n)
    et = [to_i64(v) for v in c.deltas(n)]
    return seqs, ing, et


def payload_v2(c, n):
    seqs, ing, et = time_columns(c, n)
    lens = [c.varint() for _ in range(n)]  # time order
    slots = read_slots(c, n)
    recs = [None] * n
    for j in range(n):
        t = slots[j]
        recs[t] = c.take(lens[t])
    return seqs, ing, et, recs


def payload_v34(c, n, with_slots):
    seqs, ing, et = time_columns(c, n)
    slots = read_slots(c, n) if with_slots else list(range(n))
    total = c.u64()
    if total > 128 << 20:
        raise c.err(f"record bytes {total} > 128 MiB")
    T = c.varint()
    if T > n:
        raise c.err(f"template count {T} > n {n}")
    templates = []
    for _ in range(T):
        ln = c.varint()
        templates.append(c.take(ln))
    tnums = []
    for _ in range(n):
        at = c.p
        t = c.varint()
        if t > T:
            raise c.err(f"template number {t} > T {T}", at)
        tnums.append(t)
    W = c.varint()
    STATS["whole_records"] += W
    STATS["split_records"] += n - W
    if W > n:
        raise c.err(f"whole count {W} > n {n}")
    wholes = []
    for _ in range(W):
        ln = c.varint()
        wholes.append(c.take(ln))
    at = c.p
    C = c.varint()
    if C > c.left() // 4:
        raise c.err(f"column count {C} > a quarter of the {c.left()} bytes left", at)
    cols = []
    for _ in range(C):
        kind = c.u8()
        enc = c.u8()
        nv = c.varint()
        L = c.varint()
        boff = c.p
        body = c.take(L)
        sub = Cur(body, c.path, c.base + boff, c.what + f" column {len(cols)}")
        cols.append(decode_column(sub, kind, enc, nv, boff))
    if c.left():
        raise c.err(f"{c.left()} bytes after the last column")
    colpos = [0] * C
    wi = 0
    stored = []
    for j in range(n):
        t = tnums[j]
        if t == 0:
            if wi >= W:
                raise c.err(f"record {j} wants whole record {wi}, only {W}")
            rec = wholes[wi]
            wi += 1
        else:
            tpl = templates[t - 1]
            out = bytearray()
            i = 0
            L = len(tpl)
            while i < L:
                k = tpl.find(b"\x01", i)
                if k < 0:
                    out += tpl[i:]
                    break
                out += tpl[i:k]
                col, i = read_varint_at(tpl, k + 1, c.path, c.base)
                if col >= C:
                    raise c.err(f"template {t} names column {col} >= C {C}")
                if colpos[col] >= len(cols[col]):
                    raise c.err(f"column {col} runs out of values")
                out += cols[col][colpos[col]]
                colpos[col] += 1
                if len(out) > MAX_RECORD:
                    raise c.err(f"record {j} over 1 MiB")
            rec = bytes(out)
        if len(rec) > MAX_RECORD:
            raise c.err(f"record {j} over 1 MiB")
        stored.append(rec)
    if wi != W:
        raise c.err(f"{W - wi} whole records left over")
    for k in range(C):
        if colpos[k] != len(cols[k]):
            raise c.err(f"column {k}: {len(cols[k]) - colpos[k]} values left over")
    if sum(len(r) for r in stored) != total:
        raise c.err(f"records add up to {sum(len(r) for r in stored)}, record-bytes field says {total}")
    recs = [None] * n
    for j in range(n):
        recs[slots[j]] = stored[j]
    return seqs, ing, et, recs


STATS = {"whole_records": 0, "split_records": 0}  # for tests: how the v3/v4 payloads stored records

PAYLOAD_BY_SEGVER = {1: 1, 2: 1, 3: 2, 4: 3, 5: 4}


# ---------------------------------------------------------------- segments

def read_segment(path, expect_first, expect_count, expect_size, expect_hash, prev_link):
    with open(path, "rb") as f:
        data = f.read()
    if expect_size is not None and len(data) != expect_size:
        raise FormatError(path, len(data), f"file size {len(data)} != manifest's {expect_size}")
    if len(data) < 64 + 320:
        raise FormatError(path, 0, "file shorter than header + footer")
    h = Cur(data[:64], path, 0, "header")
    if h.take(8) != b"CAIRNSEG":
        raise FormatError(path, 0, "bad header magic")
    hver = h.u16()
    hflags = h.u16()
    h.u32()
    hfirst = h.u64()
    hcount = h.u64()
    if crc32(data[:60]) != struct.unpack_from("<I", data, 60)[0]:
        raise FormatError(path, 60, "header CRC mismatch")
    if hver not in PAYLOAD_BY_SEGVER:
        raise FormatError(path, 8, f"unknown segment version {hver} (this reader knows 1 to 5)")
    fo = len(data) - 320
    foot = data[fo:]
    if foot[:8] != b"CAIRNFTR":
        raise FormatError(path, fo, "bad footer magic")
    if crc32(foot[:316]) != struct.unpack_from("<I", foot, 316)[0]:
        raise FormatError(path, fo + 316, "footer CRC mismatch")
    fc = Cur(foot, path, fo, "footer")
    fc.take(8)
    fver = fc.u16()
    fflags = fc.u16()
    block_count = fc.u32()
    first_seq = fc.u64()
    count = fc.u64()
    min_et, max_et, min_in, max_in = fc.i64(), fc.i64(), fc.u64(), fc.u64()
    rec_bytes = fc.u64()
    sections = {}
    for name in ("blockidx", "idtable", "frontier", "index"):
        sections[name] = (fc.u64(), fc.u64(), fc.u32())
    tree_size = fc.u64()
    seg_root = fc.take(32)
    tree_root = fc.take(32)
    prev = fc.take(32)
    chain = fc.take(32)
    dsec = (fc.u64(), fc.u64(), fc.u32())
    if fver != hver:
        raise FormatError(path, fo + 8, f"footer version {fver} != header version {hver}")
    # Flags are version 2's; bits the document does not define are ignored.
    fflags = fflags & 3 if fver >= 2 else 0
    if hfirst != first_seq or hcount != count:
        raise FormatError(path, 16, "header first_seq/count disagree with the footer")
    if tree_size != first_seq + count:
        raise FormatError(path, fo + 152, "tree_size != first_seq + count")
    if expect_first is not None and (first_seq != expect_first or count != expect_count):
        raise FormatError(path, fo + 16, f"segment covers {first_seq}+{count}, manifest says {expect_first}+{expect_count}")
    seg_hash = sha256(foot)
    if expect_hash is not None and seg_hash != expect_hash:
        raise FormatError(path, fo, "footer hash != manifest's")
    if prev_link is not None and prev != prev_link:
        raise FormatError(path, fo + 224, "previous-segment link hash does not match the preceding segment")
    link = chain if (fflags & 1) else seg_hash

    def section(name, sec, foff):
        off, ln, c = sec
        if off < 64 or off + ln > fo:
            raise FormatError(path, fo + foff, f"{name} section {off}+{ln} out of bounds")
        b = data[off:off + ln]
        if crc32(b) != c:
            raise FormatError(path, off, f"{name} section CRC mismatch")
        return b, off

    bi, bioff = section("block index", sections["blockidx"], 72)
    section("id table", sections["idtable"], 92)
    fr, froff = section("frontier", sections["frontier"], 112)
    section("index", sections["index"], 132)
    if len(fr) != 32 * bin(tree_size).count("1"):
        raise FormatError(path, froff, f"frontier of {len(fr)} bytes, want {32 * bin(tree_size).count('1')}")
    # root from frontier
    acc = None
    for k in range(len(fr) // 32 - 1, -1, -1):
        hsh = fr[32 * k:32 * k + 32]
        acc = hsh if acc is None else node_hash(hsh, acc)
    if acc is None:
        acc = sha256(b"")
    if acc != tree_root:
        raise FormatError(path, froff, "frontier does not hash to the footer's tree root")

    zdict = None
    if fflags & 2:
        db, dboff = section("dictionary", dsec, 288)
        if len(db) > 1 << 20:
            raise FormatError(path, dboff, "dictionary over 1 MiB")
        zdict = zstandard.ZstdCompressionDict(db)
    elif any(dsec):
        raise FormatError(path, fo + 288, "dictionary section without flag 2")
    if len(bi) != 48 * block_count:
        raise FormatError(path, bioff, f"block index of {len(bi)} bytes for {block_count} blocks")
    dctx = zstandard.ZstdDecompressor(dict_data=zdict) if zdict else zstandard.ZstdDecompressor()
    pver = PAYLOAD_BY_SEGVER[hver]
    events = []  # (seq, ingest, et, record)
    ordinal = 0
    data_end = min(s[0] for s in list(sections.values()) + ([dsec] if fflags & 2 else []))
    for b in range(block_count):
        ic = Cur(bi[48 * b:48 * b + 48], path, bioff + 48 * b, f"block index entry {b}")
        off, clen, rlen, nev, ford, bmin, bmax, bcrc, _res = (
            ic.u64(), ic.u32(), ic.u32(), ic.u32(), ic.u32(), ic.i64(), ic.i64(), ic.u32(), ic.u32())
        if ford != ordinal:
            raise FormatError(path, bioff + 48 * b + 20, f"block {b} first_ordinal {ford} != {ordinal}")
        if off < 64 or off + clen > data_end:
            raise FormatError(path, bioff + 48 * b, f"block {b} at {off}+{clen} out of bounds")
        comp = data[off:off + clen]
        if crc32(comp) != bcrc:
            raise FormatError(path, off, f"block {b} CRC mismatch")
        try:
            raw = dctx.decompress(comp, max_output_size=rlen)
        except zstandard.ZstdError as e:
            raise FormatError(path, off, f"block {b} does not decompress: {e}")
        if len(raw) != rlen:
            raise FormatError(path, off, f"block {b} decompresses to {len(raw)} bytes, index says {rlen}")
        c = Cur(raw, path, off, f"block {b} payload v{pver} (offsets within the decompressed payload + block offset)")
        if pver == 1:
            seqs, ing, et, recs = payload_v1(c, nev)
        elif pver == 2:
            seqs, ing, et, recs = payload_v2(c, nev)
        else:
            seqs, ing, et, recs = payload_v34(c, nev, pver == 4)
        if c.left():
            raise c.err(f"{c.left()} bytes left over in payload")
        for i in range(nev):
            if not (first_seq <= seqs[i] < first_seq + count):
                raise FormatError(path, off, f"block {b}: seq {seqs[i]} outside segment")
            if len(recs[i]) > MAX_RECORD:
                raise FormatError(path, off, f"block {b}: record over 1 MiB")
            if not (bmin <= et[i] <= bmax):
                raise FormatError(path, off, f"block {b}: event time {et[i]} outside block's [{bmin},{bmax}]")
            events.append((seqs[i], ing[i], et[i], recs[i]))
        ordinal += nev
    if ordinal != count:
        raise FormatError(path, bioff, f"blocks hold {ordinal} events, footer says {count}")
    # time order check: (eventTime, seq)
    for i in range(1, len(events)):
        if (events[i - 1][2], events[i - 1][0]) >= (events[i][2], events[i][0]):
            raise FormatError(path, bioff, f"events not in (eventTime, seq) order at ordinal {i}")
    events.sort(key=lambda e: e[0])
    for i, e in enumerate(events):
        if e[0] != first_seq + i:
            raise FormatError(path, bioff, f"seqs not exactly {first_seq}..{first_seq + count}")
    if sum(len(e[3]) for e in events) != rec_bytes:
        raise FormatError(path, fo + 64, "record bytes != footer's")
    if count:
        if min(e[2] for e in events) != min_et or max(e[2] for e in events) != max_et:
            raise FormatError(path, fo + 32, "event time range != footer's")
        if min(e[1] for e in events) != min_in or max(e[1] for e in events) != max_in:
            raise FormatError(path, fo + 48, "ingest range != footer's")
    leaves = [leaf_hash(e[1], e[3]) for e in events]
    if mth(leaves) != seg_root:
        raise FormatError(path, fo + 160, "segment root != RFC 6962 root over its leaves")
    return dict(first_seq=first_seq, count=count, events=events, leaves=leaves,
                tree_root=tree_root, link=link, version=hver)


# ---------------------------------------------------------------- merkle

def mth(leaves):
    return Frontier.from_leaves(leaves).root()


class Frontier:
    def __init__(self):
        self.stack = []  # (height, hash)
        self.size = 0

    @classmethod
    def from_leaves(cls, leaves):
        f = cls()
        for l in leaves:
            f.push(0, l)
        return f

    def push(self, height, h):
        if self.size % (1 << height):
            raise ValueError("unaligned subtree")
        self.stack.append((height, h))
        self.size += 1 << height
        while len(self.stack) >= 2 and self.stack[-1][0] == self.stack[-2][0]:
            (hh, r) = self.stack.pop()
            (_, l) = self.stack.pop()
            self.stack.append((hh + 1, node_hash(l, r)))

    def root(self):
        if not self.stack:
            return sha256(b"")
        acc = self.stack[-1][1]
        for _, h in reversed(self.stack[:-1]):
            acc = node_hash(h, acc)
        return acc


def tile_path(N):
    s = "%d" % N
    groups = []
    while True:
        groups.append("%03d" % (N % 1000))
        N //= 1000
        if N == 0:
            break
    groups.reverse()
    return "/".join(["x" + g for g in groups[:-1]] + [groups[-1]])


def read_tile_hashes(data_dir, level, N, need):
    """At least `need` hashes of tile (level, N): a full tile or the widest partial."""
    base = os.path.join(data_dir, "tiles", "tile", str(level), tile_path(N))
    if os.path.isfile(base):
        with open(base, "rb") as f:
            b = f.read()
        if len(b) != 8192:
            raise FormatError(base, 0, f"full tile of {len(b)} bytes")
        return [b[32 * i:32 * i + 32] for i in range(256)], base
    pdir = base + ".p"
    best = None
    if os.path.isdir(pdir):
        for w in os.listdir(pdir):
            if w.isdigit() and int(w) >= need and (best is None or int(w) < best):
                best = int(w)
    if best is None:
        raise FormatError(base, 0, f"no tile with {need} hashes (needed below the retention cut)")
    p = os.path.join(pdir, str(best))
    with open(p, "rb") as f:
        b = f.read()
    if len(b) != 32 * best:
        raise FormatError(p, 0, f"partial tile of {len(b)} bytes, want {32 * best}")
    return [b[32 * i:32 * i + 32] for i in range(best)], p


# ---------------------------------------------------------------- manifest / WAL

def read_manifest(path):
    with open(path, "rb") as f:
        d = f.read()
    if len(d) < 68 or d[:8] != b"CAIRNMAN":
        raise FormatError(path, 0, "bad manifest magic or too short")
    c = Cur(d, path, 0, "manifest")
    c.take(8)
    ver = c.u16()
    flags = c.u16()
    c.u32()
    gen = c.u64()
    sealed = c.u64()
    nseg = c.u64()
    min_ret = c.u64()
    cut_t = to_i64(c.u64())
    cut_p = c.u64()
    if ver not in (1, 2):
        raise FormatError(path, 8, f"unknown manifest version {ver} (this reader knows 1 and 2)")
    esz = 64 if ver == 2 else 56
    if len(d) != 64 + esz * nseg + 4:
        raise FormatError(path, 32, f"manifest of {len(d)} bytes for {nseg} segments")
    if crc32(d[:-4]) != struct.unpack_from("<I", d, len(d) - 4)[0]:
        raise FormatError(path, len(d) - 4, "manifest CRC mismatch")
    segs = []
    for i in range(nseg):
        o = 64 + esz * i
        fs, cnt, fb = struct.unpack_from("<QQQ", d, o)
        hsh = d[o + 24:o + 56]
        g = 0
        if ver == 2:
            g, z = struct.unpack_from("<II", d, o + 56)
        segs.append(dict(first_seq=fs, count=cnt, file_bytes=fb, hash=hsh, gen=g))
    return dict(version=ver, flags=flags, generation=gen, sealed_size=sealed,
                min_retained=min_ret, segments=segs)


def parse_wal_frames(path, data, start_seq):
    """Yield valid frames; return (events, end_offset_of_valid, error_or_None)."""
    events = []
    p = 64
    expect = start_seq
    n = len(data)
    while p < n:
        bad = None
        if n - p < 32:
            bad = "frame header cut short"
        else:
            hdr = data[p:p + 32]
            magic, blen, fseq, cnt, fl, bcrc, hcrc = struct.unpack("<IIQIIII", hdr)
            if crc32(hdr[:28]) != hcrc:
                bad = "frame header CRC mismatch"
            elif magic != 0x4D524643:
                bad = "bad frame magic"
            elif blen > 512 << 20:
                bad = f"frame body of {blen} bytes > 512 MiB"
            elif cnt < 1:
                bad = "frame count 0"
            elif p + 32 + blen > n:
                bad = "frame body cut short"
            elif crc32(data[p + 32:p + 32 + blen]) != bcrc:
                bad = "frame body CRC mismatch"
            elif fseq != expect:
                bad = f"frame first_seq {fseq} != expected {expect}"
            else:
                body = data[p + 32:p + 32 + blen]
                q = 0
                fe = []
                for k in range(cnt):
                    if len(body) - q < 52:
                        bad = "frame body does not decode"
                        break
                    ing, et, ln = struct.unpack_from("<QqI", body, q)
                    lh = body[q + 20:q + 52]
                    q += 52
                    if len(body) - q < ln or ln > MAX_RECORD:
                        bad = "frame body does not decode"
                        break
                    rec = body[q:q + ln]
                    q += ln
                    if leaf_hash(ing, rec) != lh:
                        bad = f"leaf hash of seq {fseq + k} mismatch"
                        break
                    fe.append((fseq + k, ing, et, rec))
                if bad is None and q != len(body):
                    bad = "frame body has trailing bytes"
                if bad is None:
                    events.extend(fe)
                    expect += cnt
                    p += 32 + blen
                    continue
        return events, p, bad
    return events, p, None


def valid_frame_header_after(data, start):
    i = data.find(b"CFRM", start)
    while i >= 0:
        if i + 32 <= len(data) and crc32(data[i:i + 28]) == struct.unpack_from("<I", data, i + 28)[0]:
            return i
        i = data.find(b"CFRM", i + 1)
    return -1


def read_wals(data_dir, sealed_size):
    wdir = os.path.join(data_dir, "wal")
    if not os.path.isdir(wdir):
        return [], 0
    names = sorted(x for x in os.listdir(wdir) if x.endswith(".wal"))
    files = []
    for nm in names:
        stem = nm[:-4]
        if len(stem) != 20 or not stem.isdigit():
            continue
        files.append((int(stem), os.path.join(wdir, nm)))
    files.sort()
    # A WAL whose events are all sealed (first seq below sealed_size) is stale:
    # open deletes it. Skip those.
    live = [(s, p) for (s, p) in files if s >= sealed_size]
    events = []
    expect = sealed_size
    for idx, (fs, path) in enumerate(live):
        with open(path, "rb") as f:
            data = f.read()
        newest = idx == len(live) - 1
        if len(data) < 64:
            if newest:
                continue  # a crash during roll: empty/short new WAL
            raise FormatError(path, 0, "WAL shorter than its header")
        if data[:8] != b"CAIRNWAL":
            raise FormatError(path, 0, "bad WAL magic")
        if crc32(data[:60]) != struct.unpack_from("<I", data, 60)[0]:
            raise FormatError(path, 60, "WAL header CRC mismatch")
        ver, flags, _r, hfs = struct.unpack_from("<HHIQ", data, 8)
        if ver != 1:
            raise FormatError(path, 8, f"unknown WAL version {ver} (this reader knows 1)")
        if hfs != fs:
            raise FormatError(path, 16, f"WAL header first_seq {hfs} != file name {fs}")
        if fs != expect:
            raise FormatError(path, 16, f"WAL starts at seq {fs}, expected {expect}")
        ev, end, bad = parse_wal_frames(path, data, fs)
        if bad is not None:
            if not newest or valid_frame_header_after(data, end + 1) >= 0:
                raise FormatError(path, end, bad)
            # torn tail of the newest WAL: ignored (open would truncate it)
        events.extend(ev)
        expect = fs + len(ev)
    return events, len(live)


# ---------------------------------------------------------------- main

def seg_file(data_dir, first_seq, gen):
    name = "%020d.seg" % first_seq if gen == 0 else "%020d.%d.seg" % (first_seq, gen)
    return os.path.join(data_dir, "segments", name)


def read_store(data_dir):
    if not os.path.isdir(data_dir):
        raise FormatError(data_dir, 0, "not a directory")
    mpath = os.path.join(data_dir, "MANIFEST")
    if os.path.exists(mpath):
        man = read_manifest(mpath)
    else:
        man = dict(version=0, sealed_size=0, min_retained=0, segments=[])
    events = []
    leaves_from = man["min_retained"]
    prev_link = None
    expect = man["min_retained"]
    tree_roots = {}
    for i, s in enumerate(man["segments"]):
        path = seg_file(data_dir, s["first_seq"], s["gen"])
        if s["first_seq"] != expect:
            raise FormatError(mpath, 64, f"segment {path} starts at {s['first_seq']}, expected {expect}")
        seg = read_segment(path, s["first_seq"], s["count"], s["file_bytes"], s["hash"],
                           prev_link if i > 0 else None)
        events.extend(seg["events"])
        prev_link = seg["link"]
        expect = s["first_seq"] + s["count"]
        tree_roots[expect] = (seg["tree_root"], path)
    if expect != man["sealed_size"]:
        raise FormatError(mpath, 24, f"segments end at {expect}, sealed_size {man['sealed_size']}")
    wal_events, nwal = read_wals(data_dir, man["sealed_size"])
    events.extend(wal_events)

    # Merkle tree: leaves below the retention cut come from the tiles.
    fr = Frontier()
    cut = leaves_from
    full_groups = cut // 256
    if full_groups:
        # level-1 hashes: one per full 256-leaf group
        g = 0
        while g < full_groups:
            N = g // 256
            need = min(256, full_groups - 256 * N)
            hs, _ = read_tile_hashes(data_dir, 1, N, need)
            for k in range(need):
                fr.push(8, hs[k])
            g += need
    if cut % 256:
        hs, _ = read_tile_hashes(data_dir, 0, full_groups, cut % 256)
        for k in range(cut % 256):
            fr.push(0, hs[k])
    for i, e in enumerate(events):
        if e[0] != cut + i:
            raise FormatError(data_dir, 0, f"seq {e[0]} where {cut + i} expected")
        fr.push(0, leaf_hash(e[1], e[3]))
        if fr.size in tree_roots:
            r, p = tree_roots[fr.size]
            if fr.root() != r:
                raise FormatError(p, 0, f"tree root at size {fr.size} != footer's tree root")
    return dict(tree_size=fr.size, root=fr.root().hex(), segments=len(man["segments"]),
                wal_events=len(wal_events), events=events)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Independent Cairn data-directory reader (docs/FORMAT.md)")
    ap.add_argument("data_dir")
    ap.add_argument("--records", metavar="OUT.ndjson")
    a = ap.parse_args(argv)
    try:
        st = read_store(a.data_dir)
    except FormatError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if a.records:
        with open(a.records, "wb") as f:
            for e in st["events"]:
                f.write(e[3])
                f.write(b"\n")
    print(json.dumps({"tree_size": st["tree_size"], "root": st["root"],
                      "segments": st["segments"], "wal_events": st["wal_events"],
                      "whole_records": STATS["whole_records"],
                      "split_records": STATS["split_records"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Cairn's SQL beside DuckDB, on the same generated records, in one run.

    target/pyenv/bin/python benches/sql_vs_duckdb.py --cairn target/release/cairn \
        --events 2000000 --profile diverse --runs 5

Generates the records (`cairn gen`), ingests them into a fresh store,
runs `cairn bench-sql` (in process: no process start or store open in
its figures), loads the same NDJSON into a DuckDB table and times the
same three questions there, in process too, and prints both with their
ratios. DuckDB's table has the columns the queries read, typed
(`eventTime` TIMESTAMP; `userIdentity` and `requestParameters` as JSON
text, which DuckDB parses when a query reads a member, as Cairn does).
DuckDB is the Python package pinned in tests/python/requirements.txt.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import duckdb


def timed(runs, fn):
    fn()
    ms = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t) * 1000)
    return statistics.median(ms), min(ms), max(ms)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cairn", required=True)
    p.add_argument("--events", type=int, default=2_000_000)
    p.add_argument("--profile", default="diverse")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--workdir", help="where the records and stores go (default: a temporary directory)")
    a = p.parse_args()
    work = a.workdir or tempfile.mkdtemp(prefix="cairn-sql-bench-")
    os.makedirs(work, exist_ok=True)
    records = os.path.join(work, "events.ndjson")
    store = os.path.join(work, "store")
    if not os.path.exists(records):
        with open(records, "wb") as out:
            subprocess.run([a.cairn, "gen", "--count", str(a.events), "--seed", str(a.seed), "--profile", a.profile], stdout=out, check=True)
    if not os.path.exists(store):
        t = time.perf_counter()
        subprocess.run([a.cairn, "--quiet", "--data-dir", store, "ingest", records], check=True)
        print(f"cairn ingest: {time.perf_counter() - t:.1f} s", file=sys.stderr)
    out = subprocess.run([a.cairn, "--quiet", "--data-dir", store, "bench-sql", "--runs", str(a.runs), "--output", "json"], check=True, capture_output=True)
    cairn = json.loads(out.stdout)
    q = {x["name"]: x for x in cairn["queries"]}

    db = duckdb.connect()
    t = time.perf_counter()
    db.execute(
        "CREATE TABLE ev AS SELECT * FROM read_json(?, format = 'newline_delimited', maximum_object_size = 1048576, "
        "columns = {eventTime: 'TIMESTAMP', eventName: 'VARCHAR', eventSource: 'VARCHAR', eventID: 'VARCHAR', "
        "userIdentity: 'JSON', requestParameters: 'JSON'})",
        [records],
    )
    load_s = time.perf_counter() - t
    (rows,) = db.execute("SELECT count(*) FROM ev").fetchone()
    (name,) = db.execute("SELECT eventName FROM ev GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1").fetchone()
    (newest,) = db.execute("SELECT max(eventTime) FROM ev").fetchone()
    duck = {
        "count by eventname": "SELECT eventName, count(*) AS n FROM ev GROUP BY eventName",
        "newest 50 of one API, last day": (
            "SELECT eventTime, eventID, userIdentity->>'arn' AS arn FROM ev WHERE eventName = ? "
            "AND eventTime > ?::TIMESTAMP - INTERVAL 1 DAY ORDER BY eventTime DESC LIMIT 50"
        ),
        "full scan, a JSON member": (
            "SELECT requestParameters->>'bucketName' AS bucket, count(*) AS n FROM ev GROUP BY 1 ORDER BY n DESC LIMIT 10"
        ),
    }
    params = {"newest 50 of one API, last day": [name, newest]}
    results = {}
    for k, sql in duck.items():
        results[k] = timed(a.runs, lambda: db.execute(sql, params.get(k, [])).fetchall())

    print(f"{cairn['events']} events ({a.profile} profile, seed {a.seed}), {cairn['record_bytes'] / 1e6:.0f} MB of records; "
          f"DuckDB {duckdb.__version__} table of {rows} rows loaded in {load_s:.1f} s; medians of {a.runs} runs, in process")
    print()
    print("| query | Cairn (DataFusion) | DuckDB | Cairn / DuckDB |")
    print("|---|---|---|---|")
    for k in duck:
        c, d = q[k]["median_ms"], results[k][0]
        print(f"| {k} | {c:.2f} ms | {d:.2f} ms | {c / d:.2f} |")
    print()
    print(f"store count by EventName (cairn count): {cairn['store_count_by_eventname_ms']:.2f} ms; "
          f"SQL count by eventname is {cairn['count_by_eventname_vs_store_count']:.2f}x that")
    scan_s = results["full scan, a JSON member"][0] / 1000
    print(f"full scan: Cairn {cairn['full_scan_mb_per_sec']:.0f} MB/s of record bytes; DuckDB {cairn['record_bytes'] / 1e6 / scan_s:.0f} MB/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

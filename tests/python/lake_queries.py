#!/usr/bin/env python3
"""Drives cairnd's CloudTrail Lake query API with the real AWS clients.

boto3 and the AWS CLI (pinned in requirements.txt) run SQL against cairnd
as they would against CloudTrail Lake: StartQuery, DescribeQuery,
GetQueryResults (paged), CancelQuery, ListQueries, and the event data
store the store is. Answers are compared with what `cairn count` and
`cairn lookup` return over Cairn's own protocol. tests/it/http_api.rs
starts cairnd with small query limits (two at once, 16 MiB of memory, a
timeout, 1 MiB of results per query), loads the data and runs this; it
prints "all N checks passed" when every check passes.
"""

import argparse
import collections
import json
import subprocess
import sys
import time

from botocore.exceptions import ClientError

from harness import aws_cli, aws_client, run

ARGS = None
CHECKS = []
# A query no engine finishes within the test's timeout (it yields to the
# scheduler between batches, as scans do).
ENDLESS = "SELECT count(*) FROM generate_series(1, 100000000000000)"


def check(fn):
    CHECKS.append(fn)
    return fn


def client(key=None):
    key = key or ARGS.read_key
    return aws_client("cloudtrail", ARGS.endpoint, key[0], key[1])


def cairn(*args):
    cmd = [ARGS.cairn, "--quiet", "--server", ARGS.server, "--token-file", ARGS.token_file, *args]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True).stdout)


def expect_error(code, fn):
    try:
        fn()
    except ClientError as e:
        got = e.response["Error"]["Code"]
        assert got == code, f"expected {code}, got {got}: {e}"
        return e.response["Error"]["Message"]
    raise AssertionError(f"expected {code}, the call succeeded")


def store_id():
    (eds,) = client().list_event_data_stores()["EventDataStores"]
    return eds["EventDataStoreArn"].rsplit("/", 1)[1]


def wait(qid, limit=120):
    """The query's description once it is no longer running."""
    deadline = time.time() + limit
    while True:
        d = client().describe_query(QueryId=qid)
        if d["QueryStatus"] not in ("QUEUED", "RUNNING"):
            return d
        assert time.time() < deadline, f"query {qid} still {d['QueryStatus']} after {limit} s"
        time.sleep(0.05)


def all_rows(qid, page):
    """Every result row through GetQueryResults' pages, as dicts."""
    rows, token, tokens = [], None, set()
    while True:
        kw = {"QueryId": qid, "MaxQueryResults": page}
        if token:
            kw["NextToken"] = token
        r = client().get_query_results(**kw)
        assert r["QueryStatus"] == "FINISHED", r
        assert len(r["QueryResultRows"]) <= page
        assert r["QueryStatistics"]["ResultsCount"] == len(r["QueryResultRows"])
        for row in r["QueryResultRows"]:
            # Lake's shape: a list of single-key maps, values strings.
            assert all(len(col) == 1 for col in row), row
            rows.append({k: v for col in row for k, v in col.items()})
        token = r.get("NextToken")
        if not token:
            assert r["QueryStatistics"]["TotalResultsCount"] == len(rows)
            return rows
        assert token not in tokens, "a NextToken came back twice"
        tokens.add(token)


def query(statement, page=1000):
    qid = client().start_query(QueryStatement=statement)["QueryId"]
    d = wait(qid)
    assert d["QueryStatus"] == "FINISHED", d
    assert d["QueryString"] == statement
    return d, all_rows(qid, page)


@check
def the_store_is_an_event_data_store():
    c = client()
    (eds,) = c.list_event_data_stores()["EventDataStores"]
    assert eds["EventDataStoreArn"].startswith("arn:aws:cloudtrail:") and ":eventdatastore/" in eds["EventDataStoreArn"], eds
    assert eds["Status"] == "ENABLED"
    for name in (store_id(), eds["EventDataStoreArn"]):
        assert c.get_event_data_store(EventDataStore=name)["EventDataStoreArn"] == eds["EventDataStoreArn"]
    expect_error("EventDataStoreNotFoundException", lambda: c.get_event_data_store(EventDataStore="no-such-store"))


@check
def counts_by_name_match_cairn_count_through_pages():
    eds = store_id()
    d, rows = query(f"SELECT eventname, count(*) AS n FROM {eds} GROUP BY eventname", page=7)
    want = {r["EventName"]: r["Count"] for r in cairn("count", "--by", "EventName", "--output", "json")}
    got = {r["eventname"]: int(r["n"]) for r in rows}
    assert got == want, f"{len(got)} names by SQL, {len(want)} by cairn count, or other counts"
    total = sum(want.values())
    s = d["QueryStatistics"]
    # Counted from the indexes: every event matched, no record read.
    assert s["EventsScanned"] == 0 and s["BytesScanned"] == 0 and s["EventsMatched"] == total, s
    assert s["ExecutionTimeInMillis"] >= 0 and "CreationTime" in s, s
    # Read from the records (a JSON member): every event scanned.
    d, _ = query(f"SELECT json_extract_scalar(requestparameters, '$.bucketName') AS b, count(*) AS n FROM {eds} GROUP BY 1")
    s = d["QueryStatistics"]
    assert s["EventsScanned"] == total and s["EventsMatched"] == total and s["BytesScanned"] > 0, s


@check
def an_indexed_filter_reads_only_its_events():
    c = client()
    counts = collections.Counter({r["EventName"]: r["Count"] for r in cairn("count", "--by", "EventName", "--output", "json")})
    common = [(k, v) for k, v in counts.most_common() if v >= 10]
    name, n = common[len(common) // 2]
    d, rows = query(f"SELECT eventid, eventtime FROM events WHERE eventname = '{name}' ORDER BY eventtime DESC")
    want = cairn("lookup", "--attr", f"EventName={name}", "--all", "--output", "json")["Events"]
    assert sorted(r["eventid"] for r in rows) == sorted(e["EventId"] for e in want)
    times = [r["eventtime"] for r in rows]
    assert times == sorted(times, reverse=True) and len(times[0]) == len("2026-01-01 00:00:00.000"), times[:3]
    s = d["QueryStatistics"]
    # The index found them: nothing else was read.
    assert s["EventsScanned"] == n and s["EventsMatched"] == n, (s, n)
    # The newest five, as LookupEvents gives them.
    _, top = query(f"SELECT eventid FROM events WHERE eventname = '{name}' ORDER BY eventtime DESC LIMIT 5")
    lookup = c.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": name}], MaxResults=50)["Events"]
    newest = {e["EventTime"] for e in lookup[:5]}
    assert len(top) == 5 and all(any(e["EventId"] == r["eventid"] and e["EventTime"] in newest for e in lookup) for r in top), top


@check
def lakes_sample_query_matches_the_records():
    eds = store_id()
    _, rows = query(
        f"SELECT useridentity.arn AS arn, sourceipaddress, eventtime FROM {eds} "
        "WHERE eventname = 'ConsoleLogin' AND element_at(additionaleventdata, 'MFAUsed') = 'No'"
    )
    want = collections.Counter()
    for e in cairn("lookup", "--attr", "EventName=ConsoleLogin", "--all", "--output", "json")["Events"]:
        r = json.loads(e["CloudTrailEvent"])
        if (r.get("additionalEventData") or {}).get("MFAUsed") == "No":
            want[(r["userIdentity"].get("arn"), r.get("sourceIPAddress"))] += 1
    got = collections.Counter((r["arn"], r["sourceipaddress"]) for r in rows)
    assert got == want and sum(want.values()) > 0, (got, want)


@check
def nulls_and_types_come_back_as_lake_sends_them():
    _, rows = query("SELECT errorcode, readonly, eventtime, 1.5 AS x FROM events ORDER BY eventtime DESC LIMIT 50")
    assert any(r["errorcode"] is None for r in rows), "no NULL errorcode among the newest 50"
    assert {r["readonly"] for r in rows} <= {"true", "false", None}
    assert all(r["x"] == "1.5" for r in rows)


@check
def bad_statements_are_refused_at_start():
    c = client()
    for statement, needle in [
        ("SELEC eventname FROM events", "SELEC"),
        ("SELECT nosuchcolumn FROM events", "nosuchcolumn"),
        ("DELETE FROM events", "DML"),
        ("CREATE TABLE t (a INT)", ""),
        ("DROP TABLE events", ""),
        ("SELECT * FROM nosuchstore", "nosuchstore"),
        ("SELECT 1 WHERE " + "1 = 1 AND " * 1000 + "true", "10000"),
    ]:
        message = expect_error("InvalidQueryStatementException", lambda: c.start_query(QueryStatement=statement))
        assert needle in message, (statement, message)
    expect_error("QueryIdNotFoundException", lambda: c.describe_query(QueryId="00000000-0000-4000-8000-000000000000"))
    expect_error("QueryIdNotFoundException", lambda: c.get_query_results(QueryId="00000000-0000-4000-8000-000000000000"))
    qid = c.start_query(QueryStatement="SELECT eventid FROM events LIMIT 3")["QueryId"]
    wait(qid)
    expect_error("InvalidNextTokenException", lambda: c.get_query_results(QueryId=qid, NextToken="nonsense"))
    expect_error("InactiveQueryException", lambda: c.cancel_query(QueryId=qid))
    expect_error("UnsupportedOperationException", lambda: c.start_query(QueryStatement="SELECT 1", DeliveryS3Uri="s3://bucket-name/x"))
    # An ingest key may not read.
    expect_error("AccessDeniedException", lambda: client(ARGS.ingest_key).start_query(QueryStatement="SELECT 1"))


@check
def limits_end_queries_with_clear_errors():
    c = client()
    # Over the results limit (1 MiB in this test): FAILED, saying which limit.
    qid = c.start_query(QueryStatement="SELECT eventjson FROM events")["QueryId"]
    d = wait(qid)
    assert d["QueryStatus"] == "FAILED" and "query_results_mib" in d["ErrorMessage"], d
    # Over the memory pool (16 MiB): FAILED with QueryResourcesExceeded.
    eight = " UNION ALL ".join(f"SELECT {i}" for i in range(8))
    qid = c.start_query(QueryStatement=f"SELECT eventname, array_agg(a.eventjson) FROM events a CROSS JOIN ({eight}) t GROUP BY eventname")["QueryId"]
    d = wait(qid)
    assert d["QueryStatus"] == "FAILED" and "QueryResourcesExceededException" in d["ErrorMessage"], d
    # Past the timeout: TIMED_OUT, on time.
    qid = c.start_query(QueryStatement=ENDLESS)["QueryId"]
    start = time.time()
    d = wait(qid)
    assert d["QueryStatus"] == "TIMED_OUT" and "query_timeout_secs" in d["ErrorMessage"], d
    assert time.time() - start < ARGS.timeout + 5, f"timed out after {time.time() - start:.1f} s, the limit is {ARGS.timeout}"
    r = c.get_query_results(QueryId=qid)
    assert r["QueryStatus"] == "TIMED_OUT" and r["QueryResultRows"] == [], r


@check
def cancel_and_the_concurrency_limit():
    c = client()
    running = [c.start_query(QueryStatement=ENDLESS)["QueryId"] for _ in range(ARGS.concurrency)]
    message = expect_error("MaxConcurrentQueriesException", lambda: c.start_query(QueryStatement="SELECT 1"))
    assert str(ARGS.concurrency) in message, message
    for qid in running:
        assert c.describe_query(QueryId=qid)["QueryStatus"] == "RUNNING"
        assert c.cancel_query(QueryId=qid)["QueryStatus"] == "CANCELLED"
        assert c.describe_query(QueryId=qid)["QueryStatus"] == "CANCELLED"
        expect_error("InactiveQueryException", lambda: c.cancel_query(QueryId=qid))
    # The places are free again.
    d, rows = query("SELECT count(*) AS n FROM events")
    assert int(rows[0]["n"]) > 0
    listed = {q["QueryId"]: q["QueryStatus"] for q in c.list_queries(EventDataStore=store_id())["Queries"]}
    assert all(listed[qid] == "CANCELLED" for qid in running), listed
    only = c.list_queries(EventDataStore=store_id(), QueryStatus="CANCELLED")["Queries"]
    assert {q["QueryId"] for q in only} >= set(running) and all(q["QueryStatus"] == "CANCELLED" for q in only)
    expect_error("EventDataStoreNotFoundException", lambda: c.list_queries(EventDataStore="elsewhere"))


@check
def the_aws_cli_runs_a_query():
    def aws(*args):
        code, out, err = aws_cli(ARGS.aws, ARGS.endpoint, ARGS.read_key, "cloudtrail", *args)
        assert code == 0, err
        return json.loads(out)

    qid = aws("start-query", "--query-statement", f"SELECT count(*) AS n FROM {store_id()}")["QueryId"]
    wait(qid)
    out = aws("get-query-results", "--query-id", qid)
    total = sum(r["Count"] for r in cairn("count", "--by", "EventName", "--output", "json"))
    assert out["QueryResultRows"] == [[{"n": str(total)}]], out


@check
def cairn_query_streams_over_cairns_protocol():
    def query(*args):
        cmd = [ARGS.cairn, "--quiet", "--server", ARGS.server, "--token-file", ARGS.token_file, "query", *args]
        return subprocess.run(cmd, capture_output=True)

    # Every record, more than one frame's worth, byte for byte.
    p = query("--output", "ndjson", "SELECT eventid, eventjson FROM events")
    assert p.returncode == 0, p.stderr
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    want = cairn("lookup", "--all", "--output", "json")["Events"]
    assert sorted(r["eventjson"] for r in rows) == sorted(e["CloudTrailEvent"] for e in want)
    assert sum(len(r["eventjson"]) for r in rows) > 4 << 20, "the test needs results over one frame"
    # The same answer as the HTTP API's.
    p = query("--output", "json", f"SELECT eventname, count(*) AS n FROM {store_id()} GROUP BY eventname")
    assert p.returncode == 0, p.stderr
    want = {r["EventName"]: r["Count"] for r in cairn("count", "--by", "EventName", "--output", "json")}
    assert {r["eventname"]: r["n"] for r in json.loads(p.stdout)} == want
    # No rows: the header still comes, from the schema.
    p = query("--output", "csv", "SELECT eventid, eventtime FROM events WHERE eventname = 'NoSuchCall'")
    assert p.returncode == 0 and p.stdout == b"eventid,eventtime\n", (p.stdout, p.stderr)
    # Refusals name Lake's exception; the exit code is 2.
    p = query("SELEC 1")
    assert p.returncode == 2 and b"InvalidQueryStatementException" in p.stderr, p.stderr
    p = query(ENDLESS)
    assert p.returncode == 2 and b"QueryTimedOut" in p.stderr, p.stderr


@check
def the_server_keeps_serving():
    assert client().lookup_events(MaxResults=5)["Events"]


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--read-key", required=True, type=lambda s: tuple(s.split(":", 1)))
    p.add_argument("--ingest-key", required=True, type=lambda s: tuple(s.split(":", 1)))
    p.add_argument("--cairn", required=True)
    p.add_argument("--server", required=True)
    p.add_argument("--token-file", required=True)
    p.add_argument("--aws", required=True)
    p.add_argument("--concurrency", required=True, type=int, help="cairnd's --query-concurrency")
    p.add_argument("--timeout", required=True, type=int, help="cairnd's --query-timeout-secs")
    ARGS = p.parse_args()
    return run(CHECKS)


if __name__ == "__main__":
    sys.exit(main())

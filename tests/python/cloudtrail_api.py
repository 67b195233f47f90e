#!/usr/bin/env python3
"""Drives cairnd's CloudTrail-compatible HTTP API with the real AWS clients.

boto3 and the AWS CLI (pinned in requirements.txt) talk to a running
cairnd exactly as they talk to CloudTrail, with only the endpoint changed;
what they get back is compared with what `cairn lookup` returns over
Cairn's own protocol. tests/it/http_api.rs starts cairnd, loads the data
and runs this script; it exits 0 and prints "all N checks passed" when
every check passes, and 1 naming the failed check otherwise.

    python cloudtrail_api.py --endpoint http://127.0.0.1:PORT \
        --read-key ID:SECRET --ingest-key ID:SECRET \
        --cairn path/to/cairn --server 127.0.0.1:PORT --token-file admin.token \
        --aws path/to/aws
"""

import argparse
import base64
import collections
import hashlib
import datetime
import json
import os
import subprocess
import sys
from unittest import mock

import boto3
import botocore
import botocore.auth
from botocore.config import Config
from botocore.exceptions import ClientError

from harness import aws_cli, aws_client, run

ARGS = None
CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


def client(key=None, secret=None, region="us-east-1"):
    return aws_client("cloudtrail", ARGS.endpoint, key or ARGS.read_key[0], secret or ARGS.read_key[1], region)


def cairn_lookup(*attrs, start=None, end=None, category=None):
    """Every matching event, newest first, as `cairn lookup` prints them."""
    cmd = [ARGS.cairn, "--quiet", "--server", ARGS.server, "--token-file", ARGS.token_file, "lookup", "--all", "--output", "json"]
    for k, v in attrs:
        cmd += ["--attr", f"{k}={v}"]
    if start is not None:
        cmd += ["--start", start]
    if end is not None:
        cmd += ["--end", end]
    if category is not None:
        cmd += ["--category", category]
    out = subprocess.run(cmd, check=True, capture_output=True).stdout
    return json.loads(out)["Events"]


def is_insight(e):
    return json.loads(e["CloudTrailEvent"]).get("eventCategory") == "Insight"


def paginate(c, page_size, **kwargs):
    """Every event through boto3's paginator, checking tokens advance."""
    events, tokens = [], []
    pages = c.get_paginator("lookup_events").paginate(PaginationConfig={"PageSize": page_size}, **kwargs)
    for page in pages:
        assert len(page["Events"]) <= page_size, f"a page of {len(page['Events'])} events for MaxResults {page_size}"
        events.extend(page["Events"])
        if "NextToken" in page:
            assert page["NextToken"] not in tokens, "a NextToken came back twice"
            tokens.append(page["NextToken"])
    return events


def comparable(e):
    """An event as compared: EventTime as float seconds (boto3 parses it to
    a datetime), every other member as sent."""
    e = dict(e)
    t = e["EventTime"]
    if isinstance(t, datetime.datetime):
        e["EventTime"] = t.timestamp()
    return e


def ident(e):
    """What tells events apart: some records have no eventID."""
    return (e.get("EventId"), e["CloudTrailEvent"])


def same_events(got, want, what):
    want = [e for e in want if not is_insight(e)]
    g = [comparable(e) for e in got]
    w = [comparable(e) for e in want]
    assert [ident(e) for e in g] == [ident(e) for e in w], (
        f"{what}: {len(g)} events through the HTTP API, {len(w)} from cairn lookup, or another order"
    )
    for a, b in zip(g, w):
        assert a == b, f"{what}: event {a.get('EventId')} differs:\n{a}\n{b}"


def expect_error(code, fn, status=None, exception_class=None):
    try:
        fn()
    except ClientError as e:
        got = e.response["Error"]["Code"]
        assert got == code, f"expected {code}, got {got}: {e}"
        assert e.response["ResponseMetadata"].get("RequestId"), "no x-amzn-RequestId on the error"
        if status is not None:
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] == status, e.response["ResponseMetadata"]
        if exception_class is not None:
            assert type(e).__name__ == exception_class, f"raised as {type(e).__name__}, not {exception_class}"
        return e
    raise AssertionError(f"expected {code}, the call succeeded")


ALL = []


@check
def every_event_pages_like_cairn_lookup():
    global ALL
    ALL = paginate(client(), 50)
    assert len(ALL) > 100, f"only {len(ALL)} events: the test needs data"
    same_events(ALL, cairn_lookup(), "all events")
    # A small page size gives the same events, split differently.
    assert [ident(e) for e in paginate(client(), 7)] == [ident(e) for e in ALL]
    assert all(isinstance(e["EventTime"], datetime.datetime) for e in ALL)
    assert all(isinstance(e["CloudTrailEvent"], str) for e in ALL)


def values_of(key):
    """Up to four values of `key` among the events: the most and least
    common and two between."""
    seen = collections.Counter()
    for e in ALL:
        if key in ("ResourceType", "ResourceName"):
            for r in e.get("Resources", []):
                if r.get(key):
                    seen[r[key]] += 1
        elif e.get(key):
            seen[e[key]] += 1
    ranked = [v for v, _ in seen.most_common()]
    if not ranked:
        return []
    picks = [ranked[0], ranked[len(ranked) // 3], ranked[len(ranked) // 2], ranked[-1]]
    return list(dict.fromkeys(picks))


@check
def every_attribute_key_matches_cairn_lookup():
    c = client()
    for key in ["EventId", "EventName", "ReadOnly", "Username", "ResourceType", "ResourceName", "EventSource", "AccessKeyId"]:
        values = values_of(key)
        assert values, f"no event carries {key}: the test data must cover every key"
        for v in values:
            got = paginate(c, 20, LookupAttributes=[{"AttributeKey": key, "AttributeValue": v}])
            assert got, f"{key}={v}: nothing found"
            same_events(got, cairn_lookup((key, v)), f"{key}={v}")


@check
def time_ranges_match_cairn_lookup():
    c = client()
    times = sorted(e["EventTime"] for e in ALL)
    start, end = times[len(times) // 4], times[3 * len(times) // 4]
    iso = lambda t: t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    got = paginate(c, 50, StartTime=start, EndTime=end)
    same_events(got, cairn_lookup(start=iso(start), end=iso(end)), "time range")
    # Fractional epoch seconds, as other SDKs send them, are accepted.
    raw = c.lookup_events(StartTime=start.timestamp() + 0.5, EndTime=end.timestamp() + 0.25, MaxResults=5)
    assert all(start <= e["EventTime"] <= end + datetime.timedelta(seconds=1) for e in raw["Events"])


@check
def documented_errors_reach_boto3_as_their_classes():
    c = client()
    expect_error("InvalidMaxResultsException", lambda: c.lookup_events(MaxResults=99), 400, "InvalidMaxResultsException")
    expect_error(
        "InvalidLookupAttributesException",
        lambda: c.lookup_events(LookupAttributes=[{"AttributeKey": "Bogus", "AttributeValue": "x"}]),
        400,
        "InvalidLookupAttributesException",
    )
    two = [{"AttributeKey": "EventName", "AttributeValue": "a"}, {"AttributeKey": "Username", "AttributeValue": "b"}]
    expect_error("InvalidLookupAttributesException", lambda: c.lookup_events(LookupAttributes=two), 400)
    expect_error("InvalidEventCategoryException", lambda: c.lookup_events(EventCategory="Management"), 400, "InvalidEventCategoryException")
    insight_user = [{"AttributeKey": "Username", "AttributeValue": "alice"}]
    expect_error("InvalidLookupAttributesException", lambda: c.lookup_events(EventCategory="insight", LookupAttributes=insight_user))
    now = datetime.datetime.now(datetime.timezone.utc)
    expect_error(
        "InvalidTimeRangeException",
        lambda: c.lookup_events(StartTime=now, EndTime=now - datetime.timedelta(days=1)),
        400,
        "InvalidTimeRangeException",
    )
    expect_error("InvalidNextTokenException", lambda: c.lookup_events(NextToken="not-a-token"), 400, "InvalidNextTokenException")
    # A token replayed with other parameters is refused, as CloudTrail does.
    first = c.lookup_events(MaxResults=1)
    expect_error(
        "InvalidNextTokenException",
        lambda: c.lookup_events(MaxResults=1, NextToken=first["NextToken"], LookupAttributes=[{"AttributeKey": "ReadOnly", "AttributeValue": "true"}]),
    )
    # An operation cairnd does not implement.
    expect_error("UnknownOperationException", lambda: c.create_trail(Name="t", S3BucketName="b"), 400)
    expect_error("UnknownOperationException", lambda: c.stop_logging(Name="cairn"), 400)


@check
def insight_lookups_need_the_category():
    c = client()
    insights = paginate(c, 50, EventCategory="insight")
    assert insights and all(is_insight(e) for e in insights), "the test data holds Insight events; the Insights lookup must find them"
    by_name = paginate(c, 50, EventCategory="insight", LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": insights[0]["EventName"]}])
    assert by_name and all(e["EventName"] == insights[0]["EventName"] for e in by_name)
    want = cairn_lookup(category="insight")
    assert [ident(e) for e in insights] == [ident(e) for e in want]
    assert not any(is_insight(e) for e in ALL), "an Insight event in a lookup without EventCategory"


@check
def signatures_and_roles_are_enforced():
    read_id, read_secret = ARGS.read_key
    wrong = read_secret[:-1] + ("a" if read_secret[-1] != "a" else "b")
    expect_error("InvalidSignatureException", lambda: client(read_id, wrong).lookup_events(MaxResults=1), 403)
    expect_error("UnrecognizedClientException", lambda: client("CAIRNAAAAAAAAAAAAAAA", read_secret).lookup_events(MaxResults=1), 400)
    # A signature made 20 minutes ago (the window is 15).
    then = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - datetime.timedelta(minutes=20)
    with mock.patch("botocore.auth.get_current_datetime", return_value=then):
        e = expect_error("InvalidSignatureException", lambda: client().lookup_events(MaxResults=1), 403)
    assert "Signature expired" in str(e), str(e)
    ingest_id, ingest_secret = ARGS.ingest_key
    e = expect_error("AccessDeniedException", lambda: client(ingest_id, ingest_secret).lookup_events(MaxResults=1), 400)
    assert ingest_id in str(e) and "LookupEvents" in str(e), str(e)
    unsigned = boto3.client(
        "cloudtrail",
        endpoint_url=ARGS.endpoint,
        region_name="us-east-1",
        config=Config(signature_version=botocore.UNSIGNED, retries={"max_attempts": 1}),
    )
    expect_error("MissingAuthenticationTokenException", lambda: unsigned.lookup_events(MaxResults=1), 403)
    # Any region is accepted unless cairnd is told one (--http-region).
    assert client(region="eu-west-3").lookup_events(MaxResults=1)["Events"]
    # After every refusal the server still serves.
    assert len(client().lookup_events(MaxResults=3)["Events"]) == 3


def data_client(key=None, secret=None):
    return aws_client("cloudtrail-data", ARGS.endpoint, key or ARGS.ingest_key[0], secret or ARGS.ingest_key[1])


def audit_event(uid, name="OpenDoor", **extra):
    """An on-premises event as CloudTrail Lake's integration schema has it."""
    data = {
        "version": "1.0",
        "userIdentity": {"type": "CardHolder", "principalId": f"badge-{uid}", "details": {"site": "Lyon"}},
        "userAgent": "door-controller/2.1",
        "eventSource": "doors.example.com",
        "eventName": name,
        "eventTime": "2026-11-30T08:15:%02dZ" % (int(uid) % 60),
        "UID": f"uid-{uid}",
        "requestParameters": {"door": f"B{uid}", "note": "caf\u00e9 \"quoted\""},
        "sourceIPAddress": "10.1.2.3",
        "recipientAccountId": "111122223333",
    }
    data.update(extra)
    # Odd spacing on purpose: the stored eventData must keep these bytes.
    return json.dumps(data, separators=(", ", " : "), ensure_ascii=False)


def checksum(text):
    return base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()


def cairn_get(event_id):
    cmd = [ARGS.cairn, "--quiet", "--server", ARGS.server, "--token-file", ARGS.token_file, "get", event_id]
    return subprocess.run(cmd, check=True, capture_output=True).stdout


@check
def put_audit_events_reports_each_event():
    d = data_client()
    good = [audit_event(i) for i in (1, 2, 3)]
    events = [
        {"id": "good-1", "eventData": good[0]},
        {"id": "good-2", "eventData": good[1], "eventDataChecksum": checksum(good[1])},
        {"id": "good-3", "eventData": good[2]},
        {"id": "bad-checksum", "eventData": audit_event(4), "eventDataChecksum": checksum("something else")},
        {"id": "oversize", "eventData": audit_event(5, requestParameters={"blob": "x" * (101 * 1024)})},
        {"id": "no-name", "eventData": json.dumps({k: v for k, v in json.loads(audit_event(6)).items() if k != "eventName"})},
        {"id": "not-json", "eventData": "{this is not json"},
        {"id": "long-field", "eventData": audit_event(7, eventName="N" * 1025)},
        {"id": "bad-ip", "eventData": audit_event(8, sourceIPAddress="10.0.0.999")},
    ]
    r = d.put_audit_events(channelArn=ARGS.channel, externalId="site-7", auditEvents=events)
    ok = {s["id"]: s["eventID"] for s in r["successful"]}
    failed = {f["id"]: f["errorCode"] for f in r["failed"]}
    assert set(ok) == {"good-1", "good-2", "good-3"}, r
    assert failed == {
        "bad-checksum": "InvalidChecksum",
        "oversize": "FieldTooLong",
        "no-name": "FieldNotFound",
        "not-json": "InvalidData",
        "long-field": "FieldTooLong",
        "bad-ip": "InvalidData",
    }, failed
    assert all(f["errorMessage"] for f in r["failed"])
    for (id_, event_id), text in zip(sorted(ok.items()), good):
        record = cairn_get(event_id)
        assert (b'"eventData":' + text.encode("utf-8") + b"}") in record, f"{id_}: eventData not stored byte for byte:\n{record[:400]}"
        stored = json.loads(record)
        assert stored["eventCategory"] == "ActivityAuditLog" and stored["eventType"] == "ActivityLog", stored
        assert stored["eventID"] == event_id and stored["metadata"]["channelARN"] == ARGS.channel, stored
        assert stored["recipientAccountId"] == "111122223333"
    # LookupEvents sees them, with the sender as Username.
    found = paginate(client(), 50, LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "OpenDoor"}])
    assert {e["EventId"] for e in found} >= set(ok.values()), found
    assert {e["Username"] for e in found if e["EventId"] == ok["good-1"]} == {"badge-1"}


@check
def put_audit_events_call_errors():
    d = data_client()
    one = [{"id": "a", "eventData": audit_event(9)}]
    expect_error(
        "DuplicatedAuditEventId",
        lambda: d.put_audit_events(channelArn=ARGS.channel, externalId="site-7", auditEvents=one + one),
        400,
        "DuplicatedAuditEventId",
    )
    expect_error("ChannelInsufficientPermission", lambda: d.put_audit_events(channelArn=ARGS.channel, auditEvents=one), 400, "ChannelInsufficientPermission")
    expect_error("ChannelInsufficientPermission", lambda: d.put_audit_events(channelArn=ARGS.restricted_channel, auditEvents=one))
    missing = ARGS.channel.rsplit("/", 1)[0] + "/00000000-0000-4000-8000-000000000000"
    expect_error("ChannelNotFound", lambda: d.put_audit_events(channelArn=missing, auditEvents=one), 400, "ChannelNotFound")
    expect_error("InvalidChannelARN", lambda: d.put_audit_events(channelArn="door-logs", auditEvents=one), 400, "InvalidChannelARN")
    many = [{"id": f"e{i}", "eventData": audit_event(i)} for i in range(101)]
    expect_error("ValidationException", lambda: d.put_audit_events(channelArn=ARGS.channel, externalId="site-7", auditEvents=many))
    # A read key may not send; an admin key may, to a channel open to any key.
    read = data_client(*ARGS.read_key)
    expect_error("AccessDeniedException", lambda: read.put_audit_events(channelArn=ARGS.channel, externalId="site-7", auditEvents=one))
    wrong = data_client(ARGS.ingest_key[0], "x" * 64)
    expect_error("InvalidSignatureException", lambda: wrong.put_audit_events(channelArn=ARGS.channel, externalId="site-7", auditEvents=one), 403)
    r = data_client(*ARGS.admin_key).put_audit_events(channelArn=ARGS.channel, externalId="site-7", auditEvents=one)
    assert [s["id"] for s in r["successful"]] == ["a"] and r["failed"] == [], r
    # Garbage before, between and after good events costs none of them.
    # botocore would refuse to send it: the body is swapped in before
    # signing, so the request is still correctly signed.
    raw = data_client()
    mixed = [
        {"eventData": audit_event(31)},
        {"id": "ok-1", "eventData": audit_event(32)},
        "not an object",
        {"id": "bad-data", "eventData": {"not": "a string"}},
        {"id": "ok-2", "eventData": audit_event(33)},
        {"id": 7, "eventData": audit_event(34)},
    ]
    def swap(request, **_):
        request.data = json.dumps({"auditEvents": mixed}).encode()

    raw.meta.events.register("before-sign.cloudtrail-data.PutAuditEvents", swap)
    r = raw.put_audit_events(channelArn=ARGS.channel, externalId="site-7", auditEvents=one)
    assert [s["id"] for s in r["successful"]] == ["ok-1", "ok-2"], r
    assert [(f["id"], f["errorCode"]) for f in r["failed"]] == [("", "FieldNotFound"), ("", "FieldNotFound"), ("bad-data", "InvalidData"), ("", "FieldNotFound")], r
    for s in r["successful"]:
        assert json.loads(cairn_get(s["eventID"]))["eventID"] == s["eventID"]


@check
def channels_through_the_cloudtrail_api():
    admin = client(*ARGS.admin_key)
    made = admin.create_channel(Name="badge-readers", Source="Custom", Destinations=[{"Type": "EVENT_DATA_STORE", "Location": "cairn"}])
    assert made["ChannelArn"].startswith("arn:aws:cloudtrail:") and ":channel/" in made["ChannelArn"], made
    expect_error(
        "ChannelAlreadyExistsException",
        lambda: admin.create_channel(Name="badge-readers", Source="Custom", Destinations=[{"Type": "EVENT_DATA_STORE", "Location": "cairn"}]),
        400,
        "ChannelAlreadyExistsException",
    )
    expect_error("AccessDeniedException", lambda: client().create_channel(Name="nope", Source="Custom", Destinations=[{"Type": "EVENT_DATA_STORE", "Location": "cairn"}]))
    names = {c["Name"]: c["ChannelArn"] for c in client().list_channels()["Channels"]}
    assert names.get("badge-readers") == made["ChannelArn"] and names.get("door-logs") == ARGS.channel, names
    r = data_client().put_audit_events(channelArn=made["ChannelArn"], auditEvents=[{"id": "x1", "eventData": audit_event(11, name="Swipe")}])
    got = client().get_channel(Channel=made["ChannelArn"])
    assert got["IngestionStatus"]["LatestIngestionSuccessEventID"] == r["successful"][0]["eventID"], got
    assert got["Destinations"][0]["Type"] == "EVENT_DATA_STORE"
    expect_error("ChannelNotFoundException", lambda: client().get_channel(Channel=made["ChannelArn"] + "0"), 400, "ChannelNotFoundException")


def counted(e, error_code):
    """Whether Insights counts the event: write management calls, or
    management calls that ended with `error_code`."""
    r = json.loads(e["CloudTrailEvent"])
    if r.get("eventCategory", "Management") != "Management" or r.get("eventType") == "AwsCloudTrailInsight":
        return False
    if error_code is None:
        return r.get("readOnly") is False
    return r.get("errorCode") == error_code


@check
def insights_metric_data_counts_calls():
    c = client()
    # The busiest API with write calls, and the busiest error code.
    writes = collections.Counter((e["EventSource"], e["EventName"]) for e in ALL if counted(e, None))
    errors = collections.Counter(
        (e["EventSource"], e["EventName"], json.loads(e["CloudTrailEvent"])["errorCode"])
        for e in ALL
        if "errorCode" in json.loads(e["CloudTrailEvent"]) and counted(e, json.loads(e["CloudTrailEvent"])["errorCode"])
    )
    cases = [(s, n, None) for (s, n), _ in writes.most_common(2)] + [k for k, _ in errors.most_common(2)]
    assert len(cases) == 4, cases
    for source, name, code in cases:
        events = [e for e in cairn_lookup(("EventSource", source), ("EventName", name)) if counted(e, code)]
        want = collections.Counter(int(e["EventTime"]) // 3600 * 3600 for e in events)
        start = min(want) - 7200
        end = max(want) + 7200
        args = dict(EventSource=source, EventName=name, StartTime=start, EndTime=end, Period=3600)
        if code is None:
            r = c.list_insights_metric_data(InsightType="ApiCallRateInsight", **args)
        else:
            r = c.list_insights_metric_data(InsightType="ApiErrorRateInsight", ErrorCode=code, **args)
        got = {int(t.timestamp()): v for t, v in zip(r["Timestamps"], r["Values"])}
        assert got == {k: float(v) for k, v in want.items()}, (source, name, code, sorted(got.items())[:5], sorted(want.items())[:5])
        # Zeros filled, and paged by MaxResults with a NextToken.
        filled = c.list_insights_metric_data(InsightType="ApiCallRateInsight" if code is None else "ApiErrorRateInsight",
                                             DataType="FillWithZeros", MaxResults=3, **({"ErrorCode": code} if code else {}), **args)
        assert len(filled["Timestamps"]) == 3 and "NextToken" in filled, filled
    expect_error(
        "InvalidParameterException",
        lambda: c.list_insights_metric_data(EventSource="s3.amazonaws.com", EventName="PutObject", InsightType="ApiErrorRateInsight"),
        400,
        "InvalidParameterException",
    )
    expect_error("InvalidParameterException", lambda: c.list_insights_metric_data(EventSource="a", EventName="b", InsightType="ApiCallRateInsight", Period=120))


@check
def the_store_describes_itself_as_one_trail():
    c = client()
    trails = c.describe_trails()["trailList"]
    assert [t["Name"] for t in trails] == ["cairn"] and trails[0]["LogFileValidationEnabled"] is True, trails
    arn = trails[0]["TrailARN"]
    assert c.describe_trails(trailNameList=["other"])["trailList"] == []
    status = c.get_trail_status(Name="cairn")
    assert status["IsLogging"] is True and status["StartLoggingTime"] <= datetime.datetime.now(datetime.timezone.utc), status
    assert c.get_trail_status(Name=arn)["IsLogging"] is True
    sel = c.get_event_selectors(TrailName=arn)
    assert sel["TrailARN"] == arn and sel["EventSelectors"][0]["ReadWriteType"] == "All", sel
    expect_error("TrailNotFoundException", lambda: c.get_trail_status(Name="other"), 400, "TrailNotFoundException")


@check
def public_keys_are_the_rsa_digest_keys():
    import hashlib

    import rsa

    c = client()
    # No delivery in this store: no digest key until a rotation makes one.
    assert c.list_public_keys()["PublicKeyList"] == []
    rotate = [ARGS.cairn, "--quiet", "--server", ARGS.server, "--token-file", ARGS.token_file, "key", "rotate"]
    subprocess.run(rotate, check=True, capture_output=True)
    subprocess.run(rotate, check=True, capture_output=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    every = c.list_public_keys(StartTime=datetime.datetime(2000, 1, 1), EndTime=now)["PublicKeyList"]
    assert len(every) == 2, every
    old, new = every
    assert old["ValidityEndTime"] == new["ValidityStartTime"] <= now, every
    current = c.list_public_keys()["PublicKeyList"]
    assert [k["Fingerprint"] for k in current] == [new["Fingerprint"]], current
    for k in every:
        # boto3 gives the blob's bytes: the DER PKCS#1 RSAPublicKey.
        key = rsa.PublicKey.load_pkcs1(k["Value"], format="DER")
        assert key.n.bit_length() == 2048 and key.e == 65537, key
        assert hashlib.md5(k["Value"]).hexdigest() == k["Fingerprint"], k
    expect_error(
        "InvalidTimeRangeException",
        lambda: c.list_public_keys(StartTime=now, EndTime=datetime.datetime(2000, 1, 1)),
        400,
        "InvalidTimeRangeException",
    )


def aws(*args):
    return aws_cli(ARGS.aws, ARGS.endpoint, ARGS.read_key, *args)


@check
def the_aws_cli_prints_cloudtrails_shape():
    name = values_of("EventName")[0]
    code, out, err = aws("cloudtrail", "lookup-events", "--lookup-attributes", f"AttributeKey=EventName,AttributeValue={name}", "--max-items", "5", "--page-size", "2")
    assert code == 0, err
    doc = json.loads(out)
    want = [e for e in cairn_lookup(("EventName", name)) if not is_insight(e)]
    assert [ident(e) for e in doc["Events"]] == [ident(e) for e in want[:5]]
    for e, w in zip(doc["Events"], want):
        assert set(e) == set(w), f"members {sorted(e)} against {sorted(w)}"
        assert e["CloudTrailEvent"] == w["CloudTrailEvent"]
        assert isinstance(e["EventTime"], (int, float)) or "T" in str(e["EventTime"])
    if len(want) > 5:
        assert "NextToken" in doc, "the CLI's NextToken is missing though more events match"
        code, out, err = aws(
            "cloudtrail",
            "lookup-events",
            "--lookup-attributes",
            f"AttributeKey=EventName,AttributeValue={name}",
            "--max-items",
            "5",
            "--starting-token",
            doc["NextToken"],
        )
        assert code == 0, err
        assert [ident(e) for e in json.loads(out)["Events"]] == [ident(e) for e in want[5:10]]
    code, out, err = aws("cloudtrail", "lookup-events", "--max-results", "99")
    assert code != 0 and "InvalidMaxResultsException" in err, (code, err)
    # cloudtrail-data through the CLI, with the events in a file.
    path = os.path.join(ARGS.workdir, "events.json")
    with open(path, "w") as f:
        json.dump([{"id": "cli-1", "eventData": audit_event(21, name="CloseDoor")}], f)
    env_key = ARGS.read_key
    ARGS.read_key = ARGS.ingest_key
    try:
        code, out, err = aws("cloudtrail-data", "put-audit-events", "--channel-arn", ARGS.channel, "--external-id", "site-7", "--audit-events", f"file://{path}")
    finally:
        ARGS.read_key = env_key
    assert code == 0, err
    doc = json.loads(out)
    assert [s["id"] for s in doc["successful"]] == ["cli-1"] and doc["failed"] == [], doc


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
    p.add_argument("--admin-key", required=True, type=lambda s: tuple(s.split(":", 1)))
    p.add_argument("--channel", required=True, help="a channel's ARN, open to any ingest key, with external ID site-7")
    p.add_argument("--restricted-channel", required=True, help="a channel's ARN that the ingest key may not send to")
    p.add_argument("--workdir", required=True)
    ARGS = p.parse_args()
    return run(CHECKS)


if __name__ == "__main__":
    sys.exit(main())

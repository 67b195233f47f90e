"""Checks a bucket that cairnd delivered to (tests/it/deliver.rs), with
the real clients: boto3 reads the S3-compatible server, and the real AWS
CLI's `cloudtrail validate-logs` verifies digests and log files, with
cairnd's CloudTrail API (DescribeTrails, ListPublicKeys) as its
CloudTrail endpoint.

Subcommands:
  make-bucket   create the bucket
  wait          until every record of --export is delivered and every log
                file is listed by a digest
  exactly-once  every stored record is in exactly one log file, byte-exact
  validate      validate-logs passes on a few streams, then fails on each
                tampering exactly as AWS's tool reports it
  status-error  GetTrailStatus reports a delivery error
  duckdb        DuckDB reads the Parquet prefix from the S3 server: rows,
                counts by eventname and eventjson match the store
  rsa-key       cairnd's digest public keys (ListPublicKeys), base64 DER
  enforce-auth  an IAM user's key (printed), then moto checks every request
  tamper-blind  deletes two digests in a row and a stream's newest digest,
                adds an unlisted log file (validate-logs' blind spots)
"""

import argparse
import collections
import gzip
import json
import os
import subprocess
import sys
import time

from harness import aws_client


def s3(args):
    key, secret = (args.s3_key or "cairn-test:cairn-test-secret").split(":")
    return aws_client("s3", args.s3, key, secret)


def cmd_enforce_auth(args):
    """Makes an IAM user allowed everything on S3, prints its key as
    ID:SECRET, then turns on moto's authentication: from then on only
    requests signed with that key are served."""
    import urllib.request
    iam = aws_client("iam", args.s3, "cairn-test", "cairn-test-secret")
    iam.create_user(UserName="cairn-writer")
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    iam.put_user_policy(UserName="cairn-writer", PolicyName="s3", PolicyDocument=json.dumps(policy))
    k = iam.create_access_key(UserName="cairn-writer")["AccessKey"]
    urllib.request.urlopen(urllib.request.Request(f"{args.s3}/moto-api/reset-auth", data=b"0", method="POST", headers={"Content-Type": "text/plain"})).read()
    print(f"{k['AccessKeyId']}:{k['SecretAccessKey']}")


def keys(c, bucket):
    out = []
    for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        out.extend(o["Key"] for o in page.get("Contents", []))
    return out


def get(c, bucket, key):
    return c.get_object(Bucket=bucket, Key=key)


def delivered(c, bucket, prefix):
    """(log file keys, digest keys) under the prefix."""
    ks = [k for k in keys(c, bucket) if k.startswith(prefix + "/")]
    logs = [k for k in ks if "/CloudTrail/" in k and k.endswith(".json.gz")]
    digests = [k for k in ks if "/CloudTrail-Digest/" in k and k.endswith(".json.gz")]
    return logs, digests


def records_by_file(c, bucket, logs):
    """Each log file's raw records (bytes), split as cairnd joined them."""
    out = {}
    for k in logs:
        body = gzip.decompress(get(c, bucket, k)["Body"].read())
        doc = json.loads(body)
        assert list(doc.keys()) == ["Records"], k
        # Records are stored byte-exact: re-serialising would not be.
        raw = body[len(b'{"Records":['):-len(b"]}")]
        out[k] = (doc["Records"], raw)
    return out


def split_records(text):
    """The JSON values in `text` (separated by commas or whitespace), each
    as its exact bytes: records may hold any whitespace inside."""
    dec = json.JSONDecoder()
    out, i = [], 0
    while True:
        while i < len(text) and text[i] in " \t\r\n,":
            i += 1
        if i >= len(text):
            return out
        _, end = dec.raw_decode(text, i)
        out.append(text[i:end].encode())
        i = end


def exported(path):
    with open(path, "rb") as f:
        return split_records(f.read().decode())


def cmd_make_bucket(args):
    s3(args).create_bucket(Bucket=args.bucket)


def until(timeout, attempt):
    """Calls attempt() every half second until it returns a message (then
    printed), failing with its last complaint after `timeout` seconds."""
    deadline = time.time() + timeout
    while True:
        done, message = attempt()
        if done:
            print(message)
            return
        if time.time() > deadline:
            raise AssertionError(f"after {timeout}s: {message}")
        time.sleep(0.5)


def cmd_wait(args):
    c = s3(args)
    want = len(exported(args.export))

    def attempt():
        logs, digests = delivered(c, args.bucket, args.prefix)
        listed = set()
        for d in digests:
            listed.update(f["s3Object"] for f in json.loads(gzip.decompress(get(c, args.bucket, d)["Body"].read()))["logFiles"])
        n = sum(len(r) for r, _ in records_by_file(c, args.bucket, logs).values())
        if n >= want and set(logs) <= listed:
            return True, f"delivered: {n} records in {len(logs)} log files, {len(digests)} digests"
        return False, f"{n}/{want} records, {len(set(logs) - listed)} log files no digest lists"

    until(args.timeout, attempt)


def cmd_exactly_once(args):
    c = s3(args)
    logs, _ = delivered(c, args.bucket, args.prefix)
    files = records_by_file(c, args.bucket, logs)
    got = collections.Counter()
    for _, raw in files.values():
        got.update(split_records(raw.decode()))
    want = collections.Counter(exported(args.export))
    dupes = [r[:80] for r, n in got.items() if n > 1]
    assert not dupes, f"{len(dupes)} records delivered more than once, e.g. {dupes[:2]}"
    missing = want - got
    extra = got - want
    assert not missing, f"{sum(missing.values())} stored records never delivered, e.g. {list(missing)[:1]}"
    assert not extra, f"{sum(extra.values())} delivered records that are not stored byte-exact, e.g. {list(extra)[:1]}"
    print(f"exactly once: {sum(got.values())} records in {len(logs)} log files")


def validate(args, account, region):
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID=args.key.split(":")[0],
        AWS_SECRET_ACCESS_KEY=args.key.split(":")[1],
        AWS_ENDPOINT_URL_S3=args.s3,
        AWS_ENDPOINT_URL_CLOUDTRAIL=args.cloudtrail,
    )
    p = subprocess.run(
        [args.aws, "--region", region, "cloudtrail", "validate-logs", "--trail-arn", args.trail_arn,
         "--start-time", "2000-01-01T00:00:00Z", "--account-id", account, "--verbose"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    return p.returncode, p.stdout, p.stderr


def streams(logs):
    """(account, region) -> log file keys."""
    out = collections.defaultdict(list)
    for k in logs:
        parts = k.split("/")
        i = parts.index("AWSLogs")
        out[(parts[i + 1], parts[i + 3])].append(k)
    return out


def cmd_validate(args):
    c = s3(args)
    logs, digests = delivered(c, args.bucket, args.prefix)
    by_stream = streams(logs)
    # The streams with the most log files, and one with a single file.
    chosen = sorted(by_stream, key=lambda s: -len(by_stream[s]))[:2] + [min(by_stream, key=lambda s: len(by_stream[s]))]
    for account, region in chosen:
        rc, out, err = validate(args, account, region)
        n_logs = len(by_stream[(account, region)])
        assert rc == 0 and "INVALID" not in out + err, f"{account}/{region}: rc {rc}\n{out}\n{err}"
        assert f"{n_logs}/{n_logs} log files valid" in out, out
        print(f"validate-logs {account} {region}: {out.strip().splitlines()[-1]}")
    account, region = chosen[0]
    mine = sorted(by_stream[(account, region)])

    # cairnd writes a digest per stream every window (2 s here): enough of
    # them to delete one from the middle of a chain.
    def chain():
        return sorted(d for d in delivered(c, args.bucket, args.prefix)[1] if f"/{account}/CloudTrail-Digest/{region}/" in d)
    until(60, lambda: (len(chain()) >= 3, f"{account}/{region}: {len(chain())} digests"))
    my_digests = chain()

    def expect(what, needle):
        rc, out, err = validate(args, account, region)
        assert rc == 1 and needle in err, f"{what}: rc {rc}, expected {needle!r}\n{out}\n{err}"
        print(f"tampering caught, {what}: {needle}")

    def put_back(key, obj, body):
        c.put_object(Bucket=args.bucket, Key=key, Body=body, Metadata=obj["Metadata"])

    log = mine[0]
    obj = get(c, args.bucket, log)
    original = obj["Body"].read()
    body = gzip.decompress(original)
    c.put_object(Bucket=args.bucket, Key=log, Body=gzip.compress(body.replace(b'"eventTime":"', b'"eventTime": "', 1)))
    expect("a log file modified", f"Log file\ts3://{args.bucket}/{log}\tINVALID: hash value doesn't match")
    c.delete_object(Bucket=args.bucket, Key=log)
    expect("a log file deleted", f"Log file\ts3://{args.bucket}/{log}\tINVALID: not found")
    c.put_object(Bucket=args.bucket, Key=log, Body=original + gzip.compress(b"{}"))
    expect("data appended to a log file", "INVALID: unexpected data after end of compressed stream")
    put_back(log, obj, original)

    middle = my_digests[len(my_digests) // 2]
    dobj = get(c, args.bucket, middle)
    dbody = dobj["Body"].read()
    c.delete_object(Bucket=args.bucket, Key=middle)
    expect("a digest deleted", f"Digest file\ts3://{args.bucket}/{middle}\tINVALID: not found")
    doc = json.loads(gzip.decompress(dbody))
    doc["digestStartTime"] = "2000-01-01T00:00:00Z"
    put_back(middle, dobj, gzip.compress(json.dumps(doc).encode()))
    expect("a digest modified", f"Digest file\ts3://{args.bucket}/{middle}\tINVALID: signature verification failed")
    put_back(middle, dobj, dbody)

    # AWS's blind spot, reported as AWS reports it: a log file no digest
    # lists is never looked at.
    extra = log.replace(".json.gz", "X.json.gz")
    c.put_object(Bucket=args.bucket, Key=extra, Body=gzip.compress(b'{"Records":[]}'))
    rc, out, err = validate(args, account, region)
    assert rc == 0 and "INVALID" not in err, f"an unlisted file: rc {rc}\n{out}\n{err}"
    c.delete_object(Bucket=args.bucket, Key=extra)
    rc, out, err = validate(args, account, region)
    assert rc == 0, f"after restoring everything: rc {rc}\n{out}\n{err}"
    print("restored: valid again")


def cmd_rsa_key(args):
    """Prints cairnd's digest public keys (ListPublicKeys), base64 DER."""
    import base64
    ct = aws_client("cloudtrail", args.cloudtrail, *args.key.split(":"))
    for k in ct.list_public_keys()["PublicKeyList"]:
        print(base64.b64encode(k["Value"]).decode())


def backdated(log, minutes):
    """The key of a log file named like `log` but delivered `minutes`
    earlier (the date folder and the name's YYYYMMDDTHHmmZ both move)."""
    import datetime
    folder, name = log.rsplit("/", 1)
    account, kind, region, stamp, unique = name.split("_", 4)
    t = datetime.datetime.strptime(stamp, "%Y%m%dT%H%MZ") - datetime.timedelta(minutes=minutes)
    base = folder.rsplit("/", 3)[0]
    return f"{base}/{t:%Y/%m/%d}/{account}_{kind}_{region}_{t:%Y%m%dT%H%MZ}_X{unique}"


def cmd_tamper_blind(args):
    """What validate-logs does not see: two digests in a row deleted from
    the middle of trail cairn's busiest stream, the newest digest of
    another stream deleted, and a log file no digest lists added. Prints
    what was done, as JSON."""
    c = s3(args)
    logs, digests = delivered(c, args.bucket, args.prefix)
    mine = [d for d in digests if "_CloudTrail-Digest_" in d and "_cairn_us-east-1_" in d]
    by_stream = collections.defaultdict(list)
    for d in sorted(mine):
        parts = d.split("/")
        i = parts.index("AWSLogs")
        by_stream[(parts[i + 1], parts[i + 3])].append(d)
    ranked = sorted(by_stream, key=lambda s: (-len(by_stream[s]), s))
    busy, other = ranked[0], ranked[1]
    chain = by_stream[busy]
    assert len(chain) >= 5, chain
    middle = chain[len(chain) // 2: len(chain) // 2 + 2]
    tail = by_stream[other][-1]
    for k in middle + [tail]:
        c.delete_object(Bucket=args.bucket, Key=k)
    # Backdated ten minutes before the oldest log file: a log file named
    # for a minute at or after its stream's newest digest may be one the
    # next digest lists (names carry whole minutes), and this whole test
    # can run inside one minute.
    extra = backdated(sorted(logs)[0], minutes=10)
    c.put_object(Bucket=args.bucket, Key=extra, Body=gzip.compress(b'{"Records":[]}'))
    print(json.dumps({"busy": "/".join(busy), "other": "/".join(other), "middle": middle, "tail": tail, "extra": extra}))


def cmd_status_error(args):
    ct = aws_client("cloudtrail", args.cloudtrail, *args.key.split(":"))

    def attempt():
        st = ct.get_trail_status(Name="cairn")
        if "LatestDeliveryError" not in st:
            return False, f"no LatestDeliveryError: {st}"
        assert args.needle in st["LatestDeliveryError"], st
        return True, f"GetTrailStatus: {st['LatestDeliveryError']}"

    until(args.timeout, attempt)


def cmd_duckdb(args):
    import importlib.util

    import duckdb

    spec = importlib.util.find_spec("duckdb_extension_httpfs")
    ext = os.path.join(list(spec.submodule_search_locations)[0], "extensions", f"v{duckdb.__version__}", "httpfs.duckdb_extension")
    con = duckdb.connect()
    con.execute(f"INSTALL '{ext}'")
    con.execute("LOAD httpfs")
    host = args.s3.split("://", 1)[1]
    con.execute(
        "CREATE SECRET delivered (TYPE S3, KEY_ID 'cairn-test', SECRET 'cairn-test-secret', "
        f"ENDPOINT '{host}', URL_STYLE 'path', USE_SSL false, REGION 'us-east-1')"
    )
    table = f"read_parquet('s3://{args.bucket}/{args.prefix}/parquet/**/*.parquet', hive_partitioning = true)"
    stored = exported(args.export)
    # Compaction settles (cairnd merges a quiet partition's small files):
    # the same Parquet files for 6 s, then each writer has one file per
    # partition (every partition here is small).
    c = s3(args)

    def parquet_files():
        return sorted(k for k in keys(c, args.bucket) if k.startswith(f"{args.prefix}/parquet/") and k.endswith(".parquet"))
    last = [None]

    def settled():
        now = parquet_files()
        same, last[0] = now == last[0], now
        return same, f"{len(now)} Parquet files"
    deadline = time.time() + args.timeout
    while True:
        done, message = settled()
        if done or time.time() > deadline:
            break
        time.sleep(6)
    assert done, f"Parquet files still changing after {args.timeout}s: {message}"
    per_writer = collections.Counter((k.rsplit("/", 1)[0], k.rsplit("/", 1)[1][:16]) for k in last[0])
    many = {k: n for k, n in per_writer.items() if n > 1}
    assert not many, f"partitions not compacted: {list(many.items())[:3]}"
    rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    assert rows == len(stored), f"{rows} Parquet rows, {len(stored)} stored records"
    with open(args.counts) as f:
        counts = json.load(f)
    want = {next(v for k, v in c.items() if k != "Count"): c["Count"] for c in counts}
    got = dict(con.execute(f"SELECT coalesce(eventname, ''), count(*) FROM {table} GROUP BY 1").fetchall())
    assert got == want, f"counts by eventname differ: {sorted(set(got.items()) ^ set(want.items()))[:5]}"
    # eventjson is the stored record byte for byte: every one of them.
    got_json = collections.Counter(r[0].encode() for r in con.execute(f"SELECT eventjson FROM {table}").fetchall())
    assert got_json == collections.Counter(stored), "eventjson differs from the stored records"
    parts = con.execute(f"SELECT count(DISTINCT account), count(DISTINCT region), count(DISTINCT date) FROM {table}").fetchone()
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {table})").fetchall())
    assert types["eventtime"].startswith("TIMESTAMP"), types
    assert types["useridentity"].startswith("STRUCT"), types
    print(f"duckdb {duckdb.__version__}: {rows} rows in {len(last[0])} compacted files, {len(got)} event names, partitions {parts}, eventjson byte-exact")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["make-bucket", "wait", "exactly-once", "validate", "status-error", "duckdb", "rsa-key",
                                   "tamper-blind", "enforce-auth"])
    p.add_argument("--s3", required=True)
    p.add_argument("--bucket", required=True)
    p.add_argument("--export")
    p.add_argument("--cloudtrail")
    p.add_argument("--key", help="ID:SECRET of a cairnd AWS key")
    p.add_argument("--aws", help="the aws CLI")
    p.add_argument("--trail-arn")
    p.add_argument("--needle", default="")
    p.add_argument("--prefix", default="trail")
    p.add_argument("--counts", help="`cairn count --by EventName --output json`")
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--s3-key", help="ID:SECRET for the S3 server (default: any, moto's default)")
    args = p.parse_args()
    {"make-bucket": cmd_make_bucket, "wait": cmd_wait, "exactly-once": cmd_exactly_once, "validate": cmd_validate,
     "status-error": cmd_status_error, "duckdb": cmd_duckdb, "rsa-key": cmd_rsa_key,
     "tamper-blind": cmd_tamper_blind, "enforce-auth": cmd_enforce_auth}[args.cmd](args)


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e}")
        sys.exit(1)

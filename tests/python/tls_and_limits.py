#!/usr/bin/env python3
"""cairnd's HTTP API over TLS and at its connection limit, with boto3.

tests/it/http_api.rs starts a cairnd with the test certificate and
`--connections-max 3`, and runs this script; it exits 0 and prints
"all N checks passed" when every check passes, 1 naming the failed one.
"""

import argparse
import socket
import sys
import time

import botocore
from botocore.exceptions import ClientError, EndpointConnectionError, SSLError

from harness import aws_client, run

ARGS = None


def client(endpoint, verify):
    return aws_client("cloudtrail", endpoint, ARGS.key[0], ARGS.key[1], verify=verify, connect_timeout=5, read_timeout=10)


def tls_with_the_ca():
    r = client(f"https://{ARGS.addr}", ARGS.ca).lookup_events(MaxResults=5)
    assert len(r["Events"]) == ARGS.events, r


def tls_without_trust_or_plaintext_fails():
    try:
        client(f"https://{ARGS.addr}", True).lookup_events(MaxResults=1)
        raise AssertionError("a client that does not trust the CA was served")
    except SSLError:
        pass
    try:
        client(f"http://{ARGS.addr}", False).lookup_events(MaxResults=1)
        raise AssertionError("plaintext was served on the TLS port")
    except (EndpointConnectionError, botocore.exceptions.ConnectionClosedError, ClientError):
        pass


def over_the_limit_is_503_then_recovers():
    host, port = ARGS.addr.rsplit(":", 1)
    held = [socket.create_connection((host, int(port))) for _ in range(ARGS.limit)]
    try:
        time.sleep(0.3)
        try:
            client(f"https://{ARGS.addr}", ARGS.ca).lookup_events(MaxResults=1)
            raise AssertionError("a connection over the limit was served")
        except ClientError as e:
            assert e.response["Error"]["Code"] == "ServiceUnavailableException", e.response
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 503
            assert str(ARGS.limit) in e.response["Error"]["Message"], e.response
    finally:
        for s in held:
            s.close()
    deadline = time.time() + 10
    while True:
        try:
            client(f"https://{ARGS.addr}", ARGS.ca).lookup_events(MaxResults=1)
            return
        except ClientError as e:
            if time.time() > deadline:
                raise AssertionError(f"the server did not recover after the held connections closed: {e}")
            time.sleep(0.2)


CHECKS = [tls_with_the_ca, tls_without_trust_or_plaintext_fails, over_the_limit_is_503_then_recovers]


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--addr", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--key", required=True, type=lambda s: tuple(s.split(":", 1)))
    p.add_argument("--limit", required=True, type=int)
    p.add_argument("--events", required=True, type=int)
    ARGS = p.parse_args()
    return run(CHECKS)


if __name__ == "__main__":
    sys.exit(main())

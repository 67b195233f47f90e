#!/usr/bin/env python3
"""Sends PutAuditEvents calls of 50 events to cairnd until it stops
answering (tests/it/http_api.rs kills it with SIGKILL), writing the eventID
of every event it acknowledged to --out, one per line, as each answer
arrives. Exits 0 once the server is gone, or after --seconds."""

import argparse
import json
import sys
import time

from botocore.exceptions import BotoCoreError, ClientError

from harness import aws_client


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--key", required=True, type=lambda s: tuple(s.split(":", 1)))
    p.add_argument("--channel", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--tag", required=True)
    p.add_argument("--seconds", type=float, default=30)
    a = p.parse_args()
    d = aws_client("cloudtrail-data", a.endpoint, a.key[0], a.key[1], connect_timeout=2, read_timeout=10)
    deadline = time.time() + a.seconds
    sent = 0
    with open(a.out, "w") as out:
        while time.time() < deadline:
            events = []
            for i in range(50):
                sent += 1
                data = {
                    "version": "1.0",
                    "userIdentity": {"type": "Agent", "principalId": f"{a.tag}-{sent % 7}"},
                    "eventSource": "crash.example.com",
                    "eventName": "Beat",
                    "eventTime": "2026-11-30T08:15:00Z",
                    "UID": f"{a.tag}-{sent}",
                    "recipientAccountId": "111122223333",
                }
                events.append({"id": f"e{i}", "eventData": json.dumps(data)})
            try:
                r = d.put_audit_events(channelArn=a.channel, auditEvents=events)
            except (BotoCoreError, ClientError) as e:
                print(f"stopped after {sent} events: {type(e).__name__}")
                return 0
            assert not r["failed"], r["failed"]
            out.write("".join(s["eventID"] + "\n" for s in r["successful"]))
            out.flush()
    print("the server was never killed", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())

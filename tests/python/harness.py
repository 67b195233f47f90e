"""What the AWS-client test scripts share: boto3 clients that make one
attempt (a refusal must reach the test, not be retried away), and the
runner that prints each check and "all N checks passed"."""

import sys
import traceback

import boto3
import botocore
from botocore.config import Config


def aws_client(service, endpoint, key, secret, region="us-east-1", verify=None, **config):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name=region,
        verify=verify,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, **config),
    )


def run(checks):
    """Runs the checks in order; 0 when all pass, 1 at the first failure."""
    for fn in checks:
        try:
            fn()
        except Exception:
            print(f"FAILED: {fn.__name__}")
            traceback.print_exc(file=sys.stdout)
            return 1
        print(f"ok: {fn.__name__}")
    print(f"all {len(checks)} checks passed (boto3 {boto3.__version__}, botocore {botocore.__version__})")
    return 0

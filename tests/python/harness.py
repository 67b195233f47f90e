"""What the AWS-client test scripts share: boto3 clients that make one
attempt (a refusal must reach the test, not be retried away), and the
runner that prints each check and "all N checks passed"."""

import os
import subprocess
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


def aws_cli(aws, endpoint, key, *args):
    """Runs the AWS CLI `aws` against `endpoint` with only `key` (ID, SECRET)
    as credentials (no profile, config or session token from the
    environment); (exit code, stdout, stderr)."""
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID=key[0],
        AWS_SECRET_ACCESS_KEY=key[1],
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
    )
    env.pop("AWS_SESSION_TOKEN", None)
    env.pop("AWS_PROFILE", None)
    p = subprocess.run([aws, *args, "--endpoint-url", endpoint, "--output", "json"], env=env, capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


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

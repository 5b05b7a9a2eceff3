"""A private S3-compatible server for the benchmarks: moto in server mode on a free port.

    with s3_server(scratch) as env:   # SKINPORTAL_S3_BUCKET, SKINPORTAL_S3_ENDPOINT_URL and credentials
        ...

The web and worker processes started with that environment keep photos and heatmaps in the
bucket, never in a folder, so they can be given different DJANGO_MEDIA_ROOTs.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

BUCKET = "skinportal-benchmark"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "benchmark", "AWS_SECRET_ACCESS_KEY": "benchmark-secret"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ObjectStoreError(RuntimeError):
    """The S3 server did not start."""


@contextmanager
def s3_server(scratch: Path, bucket: str = BUCKET, credentials: dict[str, str] = CREDENTIALS):
    """A moto S3 server on a free port with one empty private bucket; yields the portal's settings."""
    import boto3

    port = free_port()
    log = (scratch / "moto.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).read()
                break
            except (urllib.error.URLError, ConnectionError):
                if process.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    tail = (scratch / "moto.log").read_text(errors="replace")[-2000:]
                    raise ObjectStoreError(f"the S3 server (moto) did not start: {tail}") from None
                time.sleep(0.2)
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
        )
        client.create_bucket(Bucket=bucket)
        yield {
            "SKINPORTAL_S3_BUCKET": bucket,
            "SKINPORTAL_S3_ENDPOINT_URL": endpoint,
            "SKINPORTAL_S3_REGION": "us-east-1",
            **credentials,
        }
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()

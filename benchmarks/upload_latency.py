"""Upload-to-stored-prediction latency through the HTTP API, with a real server, Redis and worker.

    .venv/bin/python -m benchmarks.upload_latency [--uploads 200] [--clients 1 8]
        [--database-url postgres://postgres@127.0.0.1:5432/skinportal_bench]
        [--redis-url redis://127.0.0.1:6379/14] [--model ARTIFACT_DIR] [--worker-concurrency 2]

Starts, in a throwaway media folder and database (created and dropped when it is a
PostgreSQL URL; a temporary SQLite file by default): ``gunicorn`` serving the portal, one
``celery worker -Q inference`` and nothing else. It signs a demo user in, registers a
patient, then for each client count posts cases with one real HAM10000 photo each through
``POST /api/v1/cases/`` from that many concurrent clients and polls ``GET /api/v1/cases/<id>/``
until the prediction is there.

Latency per upload = the prediction's ``created_at`` (stored by the worker) minus the moment
the client started sending the upload; same machine, same clock. Also printed: what the
client saw (until its poll returned the prediction, polling every 10 ms), how long the
upload request itself took (validation, storage, enqueue), the worker pool
processes' resident memory at the end, and the machine. Target: single-client p95 <= 300 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from benchmarks.figures import percentile

ROOT = Path(__file__).resolve().parent.parent
HAM10000 = ROOT.parent / "shared" / "data" / "ham10000" / "images"
PASSWORD = "benchmark-password-not-secret"


class Api:
    def __init__(self, base: str, token: str | None = None):
        self.base, self.token = base, token

    def request(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None) -> dict:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self.base + path, data=body, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def post_json(self, path: str, data: dict) -> dict:
        return self.request("POST", path, json.dumps(data).encode(), "application/json")

    def post_case(self, patient_id: int, photo: bytes) -> dict:
        boundary = uuid.uuid4().hex
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="patient"\r\n\r\n{patient_id}\r\n'.encode(),
            f'--{boundary}\r\nContent-Disposition: form-data; name="body_site"\r\n\r\nback\r\n'.encode(),
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="images"; filename="lesion.jpg"\r\n'
                "Content-Type: image/jpeg\r\n\r\n"
            ).encode()
            + photo
            + b"\r\n",
            f"--{boundary}--\r\n".encode(),
        ]
        return self.request("POST", "/api/v1/cases/", b"".join(parts), f"multipart/form-data; boundary={boundary}")


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer in {timeout} s")


def create_postgres_database(url: str) -> bool:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl().replace("postgres://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    return True


def drop_postgres_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    admin = parts._replace(path="/postgres").geturl().replace("postgres://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')


def pool_rss_mb(main_pid: int) -> list[float]:
    children = subprocess.run(["pgrep", "-P", str(main_pid)], capture_output=True, text=True).stdout.split()
    sizes = []
    for pid in children:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                sizes.append(int(line.split()[1]) / 1024)
    return sizes


def run_clients(api: Api, patient_id: int, photos: list[bytes], uploads: int, clients: int) -> dict:
    stored_ms: list[float] = []
    seen_ms: list[float] = []
    posted_ms: list[float] = []
    lock = threading.Lock()
    counter = iter(range(uploads))

    def client() -> None:
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            started_wall, started = time.time(), time.perf_counter()
            case = api.post_case(patient_id, photos[n % len(photos)])
            posted = (time.perf_counter() - started) * 1000
            while True:
                body = api.request("GET", f"/api/v1/cases/{case['id']}/")
                image = body["images"][0]
                if image["prediction"] or image["analysis_status"] == "failed":
                    break
                time.sleep(0.01)
            seen = (time.perf_counter() - started) * 1000
            if image["analysis_status"] == "failed":
                raise SystemExit(f"analysis failed: {image['analysis_error']}")
            created = dt.datetime.fromisoformat(image["prediction"]["created_at"].replace("Z", "+00:00"))
            with lock:
                stored_ms.append((created.timestamp() - started_wall) * 1000)
                seen_ms.append(seen)
                posted_ms.append(posted)

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {"stored": stored_ms, "seen": seen_ms, "posted": posted_ms, "throughput": uploads / elapsed}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=200, help="uploads per client count")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14", help="flushed before and after")
    parser.add_argument("--model", type=Path, help="artifact folder (default: the deployed model)")
    parser.add_argument("--worker-concurrency", type=int, default=2)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8799)
    parser.add_argument("--data", type=Path, default=HAM10000)
    args = parser.parse_args(argv)

    import redis

    photos = [file.read_bytes() for file in sorted(args.data.glob("*.jpg"))[::10][: args.uploads]]
    if not photos:
        raise SystemExit(f"no HAM10000 images in {args.data}")
    scratch = Path(tempfile.mkdtemp(prefix="skinportal-bench-"))
    database_url = args.database_url or f"sqlite:///{scratch / 'bench.sqlite3'}"
    created_database = database_url.startswith("postgres") and create_postgres_database(database_url)
    redis.Redis.from_url(args.redis_url).flushdb()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("CELERY_", "REDIS_URL"))}
    env.update(
        DJANGO_SETTINGS_MODULE="skinportal.settings.local",
        DJANGO_DEBUG="false",
        DATABASE_URL=database_url,
        DJANGO_MEDIA_ROOT=str(scratch / "media"),
        CELERY_BROKER_URL=args.redis_url,
        PYTHONUNBUFFERED="1",
    )
    if args.model:
        env["SKINPORTAL_MODEL_DIR"] = str(args.model.resolve())
    bin_dir = Path(sys.executable).parent
    processes: list[subprocess.Popen] = []
    try:
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True)
        seed = [*manage, "seed_demo", "--password", PASSWORD]
        subprocess.run(seed, cwd=ROOT, env=env, check=True, capture_output=True)
        log = (scratch / "processes.log").open("wb")
        processes.append(
            subprocess.Popen(
                [
                    str(bin_dir / "gunicorn"),
                    "skinportal.wsgi:application",
                    "--bind",
                    f"127.0.0.1:{args.port}",
                    "--workers",
                    str(args.web_workers),
                    "--threads",
                    "4",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        worker = subprocess.Popen(
            [
                str(bin_dir / "celery"),
                "-A",
                "skinportal",
                "worker",
                "-Q",
                "inference",
                "--concurrency",
                str(args.worker_concurrency),
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        processes.append(worker)
        base = f"http://127.0.0.1:{args.port}"
        wait_http(f"{base}/healthz")
        deadline = time.monotonic() + 60
        while json.loads(_get_status(f"{base}/readyz"))["status"] != "ok":
            if time.monotonic() > deadline:
                raise SystemExit(f"the portal is not ready: {_get_status(f'{base}/readyz')}")
            time.sleep(0.5)
        version = json.loads(_get_status(f"{base}/readyz"))["checks"]["worker"]["model_version"]

        token = Api(base).post_json("/api/v1/auth/token/", {"username": "demo-staff", "password": PASSWORD})["token"]
        api = Api(base, token)
        patient = api.post_json(
            "/api/v1/patients/",
            {
                "identifier": f"BENCH-{uuid.uuid4().hex[:8]}",
                "full_name": "Benchmark Patient",
                "date_of_birth": "1970-01-01",
                "sex": "female",
                "consent_given": True,
            },
        )
        for n in range(5):  # warm-up: first requests import code and open connections
            run_clients(api, patient["id"], photos[n:], 1, 1)

        print(machine())
        engine = "PostgreSQL" if database_url.startswith("postgres") else "SQLite"
        print(
            f"model {version}; gunicorn {args.web_workers} workers x 4 threads; celery worker concurrency "
            f"{args.worker_concurrency}; Redis {args.redis_url}; {engine}; {len(photos)} distinct HAM10000 photos"
        )
        for clients in args.clients:
            result = run_clients(api, patient["id"], photos, args.uploads, clients)
            stored, seen = result["stored"], result["seen"]
            print(
                f"{clients} client{'s' if clients > 1 else ' '}: {len(stored)} uploads  "
                f"upload->stored median {statistics.median(stored):6.0f} ms  p95 {percentile(stored, 95):6.0f} ms  "
                f"| client saw median {statistics.median(seen):6.0f} ms  p95 {percentile(seen, 95):6.0f} ms  "
                f"| upload answered median {statistics.median(result['posted']):4.0f} ms  "
                f"| {result['throughput']:.1f} uploads/s"
            )
        sizes = pool_rss_mb(worker.pid)
        print(f"worker pool processes RSS (model loaded, after the run): {', '.join(f'{s:.0f} MB' for s in sizes)}")
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        redis.Redis.from_url(args.redis_url).flushdb()
        if created_database:
            drop_postgres_database(database_url)
        shutil.rmtree(scratch, ignore_errors=True)


def machine() -> str:
    return f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}"


def _get_status(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.read().decode()
    except urllib.error.HTTPError as error:
        return error.read().decode()


if __name__ == "__main__":
    main()

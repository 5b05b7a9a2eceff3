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
client saw (until its poll returned the prediction, polling every 10 ms by default, every
``--poll-ms`` (the case page: 2500), or one long poll with ``--long-poll 20``; the first poll
sends back the ETag the upload's answer carried), how long the
upload request itself took (validation, storage, enqueue), the worker pool
processes' resident memory at the end, and the machine. Target: single-client p95 <= 300 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
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

from benchmarks import flame
from benchmarks.figures import percentile
from benchmarks.object_store import s3_server

ROOT = Path(__file__).resolve().parent.parent
HAM10000 = ROOT.parent / "shared" / "data" / "ham10000" / "images"
PASSWORD = "benchmark-password-not-secret"


class Api:
    def __init__(self, base: str, token: str | None = None):
        self.base, self.token = base, token

    def request(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None) -> dict:
        return self.request_with_etag(method, path, body, content_type)[0]

    def request_with_etag(
        self, method: str, path: str, body: bytes | None = None, content_type: str | None = None
    ) -> tuple[dict, str | None]:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self.base + path, data=body, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read()), response.headers.get("ETag")

    def poll(self, path: str, etag: str | None, wait: float = 0) -> tuple[dict | None, str | None]:
        """GET with If-None-Match: (None, etag) when the server answers 304 (nothing changed).

        ``wait``: a long poll (``Prefer: wait=N``): the server answers when the result changes."""
        headers = {"Accept": "application/json", "Authorization": f"Token {self.token}"}
        if etag:
            headers["If-None-Match"] = etag
        if wait:
            headers["Prefer"] = f"wait={wait:g}"
        request = urllib.request.Request(self.base + path, method="GET", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read()), response.headers.get("ETag")
        except urllib.error.HTTPError as error:
            if error.code == 304:
                return None, etag
            raise

    def post_json(self, path: str, data: dict) -> dict:
        return self.request("POST", path, json.dumps(data).encode(), "application/json")

    def post_case(self, patient_id: int, photo: bytes) -> tuple[dict, str | None]:
        """The new case and the ETag its answer carries (the first poll sends it back)."""
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
        return self.request_with_etag(
            "POST", "/api/v1/cases/", b"".join(parts), f"multipart/form-data; boundary={boundary}"
        )


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except (urllib.error.URLError, OSError):  # refused, reset, or slow to answer while booting
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


def run_clients(
    api: Api,
    patient_id: int,
    photos: list[bytes],
    uploads: int,
    clients: int,
    poll_seconds: float = 0.01,
    long_poll: float = 0,
) -> dict:
    stored_ms: list[float] = []
    seen_ms: list[float] = []
    posted_ms: list[float] = []
    poll_counts: list[int] = []
    lock = threading.Lock()
    counter = iter(range(uploads))

    def client() -> None:
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            started_wall, started = time.time(), time.perf_counter()
            case, etag = api.post_case(patient_id, photos[n % len(photos)])
            posted = (time.perf_counter() - started) * 1000
            polls = 0
            image = case["images"][0]
            while not (image["prediction"] or image["analysis_status"] == "failed"):
                if not long_poll:
                    time.sleep(poll_seconds)
                polls += 1
                # A conditional poll, as the case page makes: 304 while nothing changed.
                body, etag = api.poll(f"/api/v1/cases/{case['id']}/", etag, wait=long_poll)
                if body is not None:
                    image = body["images"][0]
            seen = (time.perf_counter() - started) * 1000
            if image["analysis_status"] == "failed":
                raise SystemExit(f"analysis failed: {image['analysis_error']}")
            created = dt.datetime.fromisoformat(image["prediction"]["created_at"].replace("Z", "+00:00"))
            with lock:
                stored_ms.append((created.timestamp() - started_wall) * 1000)
                seen_ms.append(seen)
                posted_ms.append(posted)
                poll_counts.append(polls)

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {
        "stored": stored_ms,
        "seen": seen_ms,
        "posted": posted_ms,
        "throughput": uploads / elapsed,
        "polls": statistics.mean(poll_counts),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=200, help="uploads per client count")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14", help="flushed before and after")
    parser.add_argument("--model", type=Path, help="artifact folder (default: the deployed model)")
    parser.add_argument("--worker-concurrency", type=int, default=2)
    parser.add_argument(
        "--worker-pool", default="prefork", choices=("prefork", "threads", "solo"), help="the Celery worker's pool"
    )
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--web-threads", type=int, default=4, help="gunicorn threads per web worker")
    parser.add_argument("--port", type=int, default=8799)
    parser.add_argument("--data", type=Path, default=HAM10000)
    parser.add_argument(
        "--phone-uploads", type=int, default=40, help="uploads of a 1600x1200 phone JPEG, 1 client (0: none)"
    )
    parser.add_argument(
        "--py-spy", type=Path, metavar="DIR", help="record the web and worker processes during the last client count"
    )
    parser.add_argument(
        "--poll-ms", type=float, default=10, help="how often a client polls for its result (the case page: 2500)"
    )
    parser.add_argument(
        "--long-poll",
        type=float,
        default=0,
        metavar="SECONDS",
        help="clients long-poll instead (Prefer: wait=SECONDS): one request answered when the result is stored",
    )
    parser.add_argument("--s3", action="store_true", help="photos in a private S3 bucket (a moto server of its own)")
    parser.add_argument(
        "--separate-media",
        action="store_true",
        help="the web and worker processes get different DJANGO_MEDIA_ROOTs (with --s3: they share no folder)",
    )
    args = parser.parse_args(argv)

    photos = [file.read_bytes() for file in sorted(args.data.glob("*.jpg"))[::10][: args.uploads]]
    if not photos:
        raise SystemExit(f"no HAM10000 images in {args.data}")
    scratch = Path(tempfile.mkdtemp(prefix="skinportal-bench-"))
    with contextlib.ExitStack() as stack:
        store_env = stack.enter_context(s3_server(scratch)) if args.s3 else {}
        run(args, photos, scratch, store_env)


def run(args, photos: list[bytes], scratch: Path, store_env: dict) -> None:
    import redis

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
        **store_env,
    )
    if args.model:
        env["SKINPORTAL_MODEL_DIR"] = str(args.model.resolve())
    worker_env = {**env, "DJANGO_MEDIA_ROOT": str(scratch / "worker-media")} if args.separate_media else env
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
                    str(args.web_threads),
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
                "--pool",
                args.worker_pool,
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=worker_env,
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
        # The model-only bound of this machine, now, with the servers idle: 1000 / model median ms.
        model_median = model_call_median(env)

        print(machine())
        engine = "PostgreSQL" if database_url.startswith("postgres") else "SQLite"
        print(
            f"model {version}; gunicorn {args.web_workers} workers x {args.web_threads} threads; "
            f"celery worker concurrency {args.worker_concurrency}; Redis {args.redis_url}; {engine}; "
            f"{len(photos)} distinct HAM10000 photos"
        )
        if args.worker_pool != "prefork":
            print(f"celery worker pool: {args.worker_pool}")
        throughputs, cpu_lines, polls = [], [], []
        for number, clients in enumerate(args.clients):
            stop = None
            if args.py_spy and number == len(args.clients) - 1:
                web_pids = subprocess.run(["pgrep", "-P", str(processes[0].pid)], capture_output=True, text=True)
                pool_pids = subprocess.run(["pgrep", "-P", str(worker.pid)], capture_output=True, text=True)
                pids = {f"web-{n}": int(pid) for n, pid in enumerate(web_pids.stdout.split())}
                pids.update({f"worker-{n}": int(pid) for n, pid in enumerate(pool_pids.stdout.split())})
                stop = flame.record(pids, args.py_spy)
            groups = {
                "web": process_tree(processes[0].pid),
                "worker": process_tree(worker.pid),
                "PostgreSQL": database_backends(database_url),
            }
            before = {name: cpu_seconds(pids) for name, pids in groups.items()}
            result = run_clients(
                api, patient["id"], photos, args.uploads, clients, args.poll_ms / 1000, long_poll=args.long_poll
            )
            polls.append((clients, result["polls"]))
            groups["PostgreSQL"] = sorted(set(groups["PostgreSQL"]) | set(database_backends(database_url)))
            spent = {
                name: 1000 * (cpu_seconds(pids) - before.get(name, 0.0)) / args.uploads for name, pids in groups.items()
            }
            cpu_lines.append((clients, spent))
            throughputs.append((clients, result["throughput"]))
            if stop is not None:
                stop()
                print(f"py-spy, {clients} clients (raw stacks in {args.py_spy}):")
                print(flame.report("  web (gunicorn workers)", sorted(args.py_spy.glob("web-*.txt"))))
                print(flame.report("  worker (celery pool processes)", sorted(args.py_spy.glob("worker-*.txt"))))
            stored, seen = result["stored"], result["seen"]
            print(
                f"{clients} client{'s' if clients > 1 else ' '}: {len(stored)} uploads  "
                f"upload->stored median {statistics.median(stored):6.0f} ms  p95 {percentile(stored, 95):6.0f} ms  "
                f"| client saw median {statistics.median(seen):6.0f} ms  p95 {percentile(seen, 95):6.0f} ms  "
                f"| upload answered median {statistics.median(result['posted']):4.0f} ms  "
                f"| {result['throughput']:.1f} uploads/s"
            )
        bound = 1000 / model_median
        print(
            f"model call median {model_median:.2f} ms in this run (benchmarks.model_latency): "
            f"model-only bound {bound:.0f} photos/s"
        )
        for clients, throughput in throughputs:
            print(
                f"throughput {clients} client{'s' if clients > 1 else ''}: {throughput:.1f} uploads/s = "
                f"{100 * throughput / bound:.1f}% of the model-only bound"
            )
        for clients, count in polls:
            how = (
                f"long polls, Prefer: wait={args.long_poll:g}"
                if args.long_poll
                else f"every {args.poll_ms:g} ms, conditional: 304 while nothing changed"
            )
            print(f"polls per upload, {clients} client{'s' if clients > 1 else ''}: {count:.1f} ({how})")
        for clients, spent in cpu_lines:
            total = sum(spent.values())
            print(
                f"CPU per upload, {clients} client{'s' if clients > 1 else ''}: "
                + ", ".join(f"{name} {ms:.1f} ms" for name, ms in spent.items())
                + f"; total {total:.1f} ms = {total / model_median:.1f} model calls; two otherwise idle cores "
                f"would take at most {2000 / total:.0f} uploads/s ({100 * 2000 / total / bound:.0f}% of the bound)"
            )
        if args.phone_uploads:
            phone = phone_photos(args.data, args.phone_uploads)
            result = run_clients(api, patient["id"], phone, len(phone), 1)
            size_kb = statistics.median([len(photo) for photo in phone]) / 1024
            print(
                f"upload request answered, 1600x1200 phone JPEG ({size_kb:.0f} KB), 1 client: "
                f"median {statistics.median(result['posted']):.0f} ms  "
                f"p95 {percentile(result['posted'], 95):.0f} ms  | upload->stored median "
                f"{statistics.median(result['stored']):.0f} ms"
            )
        print(sql_queries_per_upload(args.database_url))
        print(
            f"storage: {'S3 bucket (moto server)' if args.s3 else 'local folder'}; web and worker media folders "
            f"{'separate' if args.separate_media else 'shared'}; load average "
            + " ".join(f"{value:.2f}" for value in os.getloadavg())
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


def process_tree(pid: int) -> list[int]:
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [pid, *(int(child) for child in children)]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes (those that exited meanwhile count nothing)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def database_backends(database_url: str) -> list[int]:
    """The PostgreSQL server processes serving the benchmark's database (kept: persistent connections)."""
    if not database_url.startswith("postgres"):
        return []
    import psycopg

    name = urlsplit(database_url).path.lstrip("/")
    admin = urlsplit(database_url)._replace(path="/postgres").geturl().replace("postgres://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True) as connection:
        rows = connection.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,)).fetchall()
    return [row[0] for row in rows]


def model_call_median(env: dict) -> float:
    """The model call's median (ms) from benchmarks.model_latency, run now on this machine."""
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.model_latency", "--images", "200"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith("model "))
    return float(line.split("median")[1].split("ms")[0])


def sql_queries_per_upload(database_url: str | None) -> str:
    """The SQL queries of one upload, counted in process by benchmarks.upload_profile."""
    command = [sys.executable, "-m", "benchmarks.upload_profile", "--uploads", "10", "--top", "1"]
    if database_url and database_url.startswith("postgres"):
        command += ["--database-url", database_url.rstrip("/") + "_queries"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    lines = [line for line in result.stdout.splitlines() if line.startswith("sql queries per")]
    if not lines:
        return f"sql queries: not counted ({result.stderr[-300:]})"
    return "; ".join(lines) + " (benchmarks.upload_profile)"


def phone_photos(data: Path, count: int) -> list[bytes]:
    """HAM10000 photos enlarged to 1600x1200 and saved as a phone would (JPEG quality 90)."""
    from PIL import Image

    out = []
    for file in sorted(data.glob("*.jpg"))[1::10][:count]:
        with Image.open(file) as image:
            big = image.convert("RGB").resize((1600, 1200), Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        big.save(buffer, format="JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


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

"""Load and faults: the production topology takes 1,000 cases from 16 clients while a worker is
SIGKILLed, Redis is restarted and PostgreSQL is restarted, and nothing is lost.

    nice .venv/bin/python -m benchmarks.load_faults [--cases 1000] [--clients 16]
        [--pg-port 5433] [--redis-port 6390] [--port 8797]

Starts its OWN PostgreSQL cluster (initdb as the postgres user, data under /tmp) and its OWN
redis-server (append-only file under /tmp) on the given ports, so restarting them touches
nothing else on the machine; then, with the production settings: gunicorn (3 workers, as in
docker-compose.yml), two ``celery worker -Q inference`` processes and ``celery beat`` (the
sweeper every 5 s, queued work re-sent after 15 s). A clinic user signs in and registers
patients; then the clients each post cases of one real HAM10000 photo through
``POST /api/v1/cases/``, retrying after a 503 (as its Retry-After says) or a refused
connection. When a quarter of the cases are in, one worker is SIGKILLed (its whole process
group) and started again; at half, Redis is restarted; at three quarters, PostgreSQL.

It prints throughput, p50/p95/p99 of the upload request and of upload-to-result (the
prediction's created_at minus the moment the client began the accepted upload), the answers
by status (5xx other than 503-with-Retry-After are failures), and a reconciliation read from
the database and the media folder once the queue is drained: accepted cases missing, photos
without a prediction (lost), photos with more than one prediction per model version
(duplicated), cases not finished (stuck), and files no row refers to (orphaned).
Target: 0 lost, 0 duplicated, 0 stuck, 0 orphaned.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import secrets
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

from benchmarks.figures import percentile
from benchmarks.object_store import s3_server
from benchmarks.upload_latency import machine

ROOT = Path(__file__).resolve().parent.parent
HAM10000 = ROOT.parent / "shared" / "data" / "ham10000" / "images"
PASSWORD = "load-and-faults-password-not-secret"

RECONCILE = r"""
import json, os
from collections import Counter
import django
django.setup()
from django.conf import settings
from django.db.models import Count
from diagnosis.models import Case, LesionImage, Prediction
accepted = set(json.load(open(os.environ["BENCH_ACCEPTED"])))
present = set(Case.objects.filter(pk__in=accepted).values_list("pk", flat=True))
images = LesionImage.objects.filter(case_id__in=accepted)
versions = set(Prediction.objects.values_list("model_version", flat=True))
per = Counter(Prediction.objects.filter(image__in=images).values_list("image_id", "model_version"))
without = images.exclude(pk__in=Prediction.objects.values("image_id")).count()
duplicated = sum(1 for count in per.values() if count > 1)
finished = {"analysed", "referred", "reviewed", "closed", "failed"}
stuck = Case.objects.filter(pk__in=accepted).exclude(status__in=finished).count()
failed = Case.objects.filter(pk__in=accepted, status="failed").count()
referenced = set(LesionImage.objects.values_list("file", flat=True))
referenced |= set(Prediction.objects.exclude(heatmap="").values_list("heatmap", flat=True))
from django.core.files.storage import default_storage
files = set()
for folder in ("lesions", "heatmaps"):  # through the storage the portal uses: a folder or the bucket
    if default_storage.exists(folder) or settings.SKINPORTAL_S3_BUCKET:
        files |= {f"{folder}/{name}" for name in default_storage.listdir(folder)[1]}
created = {}
for case_id, when in Prediction.objects.filter(image__case_id__in=accepted).values_list("image__case_id", "created_at"):
    created[case_id] = min(created.get(case_id, when), when)
print(json.dumps({
    "accepted": len(accepted), "missing": len(accepted - present), "images": images.count(),
    "without_prediction": without, "duplicated": duplicated, "stuck": stuck, "failed": failed,
    "orphaned": len(files - referenced), "model_versions": sorted(versions),
    "cases_in_database": Case.objects.count(),
    "failed_by_gate": Case.objects.filter(pk__in=accepted, status="failed").exclude(
        images__predictions__gate="ok").count(),
    "failed_reasons": sorted(set(images.filter(analysis_status="failed").values_list("analysis_error", flat=True))),
    "result_at": {str(k): v.timestamp() for k, v in created.items()},
}))
"""


class Services:
    """This benchmark's own PostgreSQL cluster and Redis server, restartable."""

    def __init__(self, scratch: Path, pg_port: int, redis_port: int):
        self.pg_dir = scratch / "pg"
        self.redis_dir = scratch / "redis"
        self.pg_port, self.redis_port = pg_port, redis_port
        self.redis: subprocess.Popen | None = None

    def as_postgres(self, *command: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *command], check=True, capture_output=True)

    def start(self) -> None:
        self.pg_dir.mkdir(parents=True)
        self.redis_dir.mkdir(parents=True)
        shutil.chown(self.pg_dir, "postgres", "postgres")
        self.pg_dir.parent.chmod(0o755)
        self.as_postgres("initdb", "-D", str(self.pg_dir), "-A", "trust", "-U", "postgres", "--no-sync")
        self.pg_start()
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres", "-c", "CREATE DATABASE skinportal"],
            check=True,
            capture_output=True,
        )
        self.redis_start()

    def pg_start(self) -> None:
        options = f"-p {self.pg_port} -k {self.pg_dir} -c listen_addresses=127.0.0.1 -c max_connections=200"
        self.as_postgres("pg_ctl", "-D", str(self.pg_dir), "-o", options, "-l", str(self.pg_dir / "log"), "-w", "start")

    def pg_restart(self) -> None:
        self.as_postgres("pg_ctl", "-D", str(self.pg_dir), "-m", "fast", "-w", "stop")
        time.sleep(2)  # the outage clients see
        self.pg_start()

    def redis_start(self) -> None:
        self.redis = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.redis_dir),
                "--appendonly",
                "yes",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            if subprocess.run(["redis-cli", "-p", str(self.redis_port), "ping"], capture_output=True).returncode == 0:
                return
            time.sleep(0.1)

    def redis_restart(self) -> None:
        assert self.redis is not None
        self.redis.terminate()
        self.redis.wait(timeout=30)
        time.sleep(2)
        self.redis_start()

    def stop(self) -> None:
        if self.redis is not None:
            self.redis.terminate()
            self.redis.wait(timeout=30)
        if (self.pg_dir / "postmaster.pid").exists():
            self.as_postgres("pg_ctl", "-D", str(self.pg_dir), "-m", "immediate", "stop")


class Client:
    def __init__(self, base: str):
        self.base, self.token = base, None

    def call(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None):
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self.base + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read()), dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, error.read()[:300], dict(error.headers)
        except (urllib.error.URLError, OSError) as error:  # refused, reset, timed out
            return 0, str(error), {}


def multipart(patient: int, photo: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = b"".join(
        [
            f'--{boundary}\r\nContent-Disposition: form-data; name="patient"\r\n\r\n{patient}\r\n'.encode(),
            f'--{boundary}\r\nContent-Disposition: form-data; name="body_site"\r\n\r\nback\r\n'.encode(),
            f'--{boundary}\r\nContent-Disposition: form-data; name="images"; filename="l.jpg"\r\n'.encode()
            + b"Content-Type: image/jpeg\r\n\r\n"
            + photo
            + b"\r\n",
            f"--{boundary}--\r\n".encode(),
        ]
    )
    return body, f"multipart/form-data; boundary={boundary}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--pg-port", type=int, default=5433)
    parser.add_argument("--redis-port", type=int, default=6390)
    parser.add_argument("--port", type=int, default=8797)
    parser.add_argument("--drain-timeout", type=float, default=300)
    parser.add_argument("--data", type=Path, default=HAM10000)
    parser.add_argument(
        "--s3",
        action="store_true",
        help="photos in a private S3 bucket (a moto server of its own); web and each worker get their own media folder",
    )
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="skinportal-faults-"))
    with contextlib.ExitStack() as stack:
        store_env = stack.enter_context(s3_server(scratch)) if args.s3 else {}
        run(args, scratch, store_env)


def run(args, scratch: Path, store_env: dict) -> None:

    photos = [file.read_bytes() for file in sorted(args.data.glob("*.jpg"))[: args.cases]]
    if not photos:
        raise SystemExit(f"no HAM10000 photos in {args.data}")
    services = Services(scratch, args.pg_port, args.redis_port)
    redis_url = f"redis://127.0.0.1:{args.redis_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "REDIS_URL", "DJANGO_", "DATABASE_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="skinportal.settings.production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{args.pg_port}/skinportal",
        DJANGO_MEDIA_ROOT=str(scratch / "media"),
        DJANGO_STATIC_ROOT=str(scratch / "static"),
        CELERY_BROKER_URL=f"{redis_url}/0",
        CACHE_URL=f"{redis_url}/1",
        SKINPORTAL_ANALYSIS_SWEEP_SECONDS="5",
        SKINPORTAL_ANALYSIS_REQUEUE_SECONDS="15",
        SKINPORTAL_LOGIN_RATE_IP="1000/min",
        UPLOAD_MAX_PHOTOS_PER_HOUR="100000",
        DJANGO_LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
        **store_env,
    )
    bin_dir = Path(sys.executable).parent
    log = None
    processes: dict[str, subprocess.Popen] = {}

    def start(name: str, command: list[str]) -> None:
        # With the bucket, every process has a media folder of its own: nothing is shared but the
        # database, Redis and the bucket (the reconciliation lists the bucket, and these stay empty).
        own = {"DJANGO_MEDIA_ROOT": str(scratch / f"media-{name}")} if store_env else {}
        processes[name] = subprocess.Popen(
            command, cwd=ROOT, env={**env, **own}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def worker(name: str) -> None:
        start(
            name,
            [
                str(bin_dir / "celery"),
                "-A",
                "skinportal",
                "worker",
                "-Q",
                "inference",
                "-n",
                f"{name}@%h",
                "--concurrency",
                "1",
                "--loglevel",
                "WARNING",
            ],
        )

    try:
        services.start()
        log = (scratch / "processes.log").open("wb")
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True)
        subprocess.run([*manage, "collectstatic", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True)
        setup = (
            "from accounts.models import Clinic, User; c = Clinic.objects.create(name='Load clinic'); "
            f"u = User.objects.create_user('load-nurse', password={PASSWORD!r}, role='clinic_staff'); u.clinics.add(c)"
        )
        subprocess.run([*manage, "shell", "-c", setup], cwd=ROOT, env=env, check=True, capture_output=True)
        gunicorn = [str(bin_dir / "gunicorn"), "skinportal.wsgi:application", "--bind", f"127.0.0.1:{args.port}"]
        start("web", [*gunicorn, "--workers", "3", "--timeout", "60"])
        worker("worker1")
        worker("worker2")
        schedule = str(scratch / "beat-schedule")
        start("beat", [str(bin_dir / "celery"), "-A", "skinportal", "beat", "--schedule", schedule, "-l", "WARNING"])
        base = f"http://127.0.0.1:{args.port}"
        client = Client(base)
        deadline = time.monotonic() + 180  # a loaded machine boots gunicorn slowly
        while client.call("GET", "/healthz")[0] != 200:
            if time.monotonic() > deadline:
                raise SystemExit("the portal did not start")
            time.sleep(1)
        status, body, _ = client.call(
            "POST",
            "/api/v1/auth/token/",
            json.dumps({"username": "load-nurse", "password": PASSWORD}).encode(),
            "application/json",
        )
        assert status == 200, body
        client.token = body["token"]
        patients = []
        for n in range(args.clients):
            data = {
                "identifier": f"LOAD-{n}",
                "full_name": f"Load Patient {n}",
                "date_of_birth": "1970-01-01",
                "sex": "female",
                "consent_given": True,
            }
            status, body, _ = client.call("POST", "/api/v1/patients/", json.dumps(data).encode(), "application/json")
            assert status == 201, body
            patients.append(body["id"])
        deadline = time.monotonic() + 120
        while client.call("GET", "/readyz")[0] != 200:
            if time.monotonic() > deadline:
                raise SystemExit("the portal did not become ready")
            time.sleep(1)

        answers: collections.Counter = collections.Counter()
        bad_5xx: list[str] = []
        upload_ms: list[float] = []
        accepted: dict[int, float] = {}
        lock = threading.Lock()
        counter = iter(range(args.cases))
        progress = {"accepted": 0}

        def run_client(index: int) -> None:
            while True:
                with lock:
                    n = next(counter, None)
                if n is None:
                    return
                body, content_type = multipart(patients[index], photos[n % len(photos)])
                while True:
                    started_wall, started = time.time(), time.perf_counter()
                    status, answer, headers = client.call("POST", "/api/v1/cases/", body, content_type)
                    elapsed = (time.perf_counter() - started) * 1000
                    with lock:
                        answers[status] += 1
                        if status >= 500 and not (status == 503 and "Retry-After" in headers):
                            bad_5xx.append(f"{status} {answer!r}"[:200])
                    if status == 201:
                        with lock:
                            upload_ms.append(elapsed)
                            accepted[answer["id"]] = started_wall
                            progress["accepted"] += 1
                        break
                    if status in (0, 502, 503, 504) or status >= 500:
                        time.sleep(float(headers.get("Retry-After", 1)))
                        continue
                    raise SystemExit(f"case refused: {status} {answer!r}")

        faults = []

        def inject() -> None:
            plan = [
                (0.25, "SIGKILL worker1", lambda: kill_and_restart_worker()),
                (0.50, "restart Redis", services.redis_restart),
                (0.75, "restart PostgreSQL", services.pg_restart),
            ]
            for fraction, name, action in plan:
                while progress["accepted"] < fraction * args.cases:
                    time.sleep(0.05)
                began = time.perf_counter()
                action()
                faults.append(f"{name} at {progress['accepted']} cases ({time.perf_counter() - began:.1f} s)")

        def kill_and_restart_worker() -> None:
            os.killpg(processes["worker1"].pid, signal.SIGKILL)
            processes["worker1"].wait()
            worker("worker1")

        started = time.perf_counter()
        injector = threading.Thread(target=inject, daemon=True)
        injector.start()
        threads = [threading.Thread(target=run_client, args=(i,)) for i in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        submit_seconds = time.perf_counter() - started
        injector.join(timeout=120)

        accepted_file = scratch / "accepted.json"
        accepted_file.write_text(json.dumps(sorted(accepted)))
        reconcile_env = {**env, "BENCH_ACCEPTED": str(accepted_file)}
        drain_started = time.perf_counter()
        while True:
            result = subprocess.run(
                [sys.executable, "-c", RECONCILE], cwd=ROOT, env=reconcile_env, capture_output=True, text=True
            )
            timed_out = time.perf_counter() - drain_started > args.drain_timeout
            if result.returncode != 0:
                if timed_out:
                    raise SystemExit(f"reconciliation failed: {result.stderr[-2000:]}")
            else:
                report = json.loads(result.stdout.strip().splitlines()[-1])
                if report["stuck"] == 0 or timed_out:
                    break
            time.sleep(5)
        drained = time.perf_counter() - drain_started
        total_seconds = time.perf_counter() - started

        to_result = [
            (report["result_at"][str(k)] - t) * 1000 for k, t in accepted.items() if str(k) in report["result_at"]
        ]
        print(machine())
        if store_env:
            folders = sorted(scratch.glob("media-*"))
            written = [path for folder in folders for path in folder.rglob("*") if path.is_file()]
            print(
                f"storage: private S3 bucket (moto server); files written to the processes' own media folders: "
                f"{len(written)}"
            )
        print(
            f"production settings; gunicorn 3 workers; 2 inference workers (concurrency 1) + beat; own Redis "
            f":{args.redis_port} (AOF); own PostgreSQL :{args.pg_port}; {args.clients} clients, {args.cases} cases "
            f"of one HAM10000 photo ({len(photos)} distinct)"
        )
        print("faults: " + "; ".join(faults))
        print(
            f"throughput: {len(accepted) / submit_seconds:.1f} cases/s accepted over {submit_seconds:.0f} s; "
            f"all results stored {total_seconds:.0f} s after the start (drain {drained:.0f} s)"
        )
        print(
            f"upload request (accepted): p50 {statistics.median(upload_ms):.0f} ms  "
            f"p95 {percentile(upload_ms, 95):.0f} ms  p99 {percentile(upload_ms, 99):.0f} ms"
        )
        if to_result:
            print(
                f"upload to stored result: p50 {statistics.median(to_result):.0f} ms  "
                f"p95 {percentile(to_result, 95):.0f} ms  p99 {percentile(to_result, 99):.0f} ms"
            )
        print("answers: " + ", ".join(f"{code or 'no connection'}: {count}" for code, count in sorted(answers.items())))
        print(f"5xx other than 503 with Retry-After: {len(bad_5xx)}" + (f" e.g. {bad_5xx[:3]}" if bad_5xx else ""))
        lost = report["missing"] + report["without_prediction"]
        print(
            f"reconciliation: {report['accepted']} accepted cases, {report['images']} photos, "
            f"model versions {report['model_versions']}: lost {lost} (missing cases {report['missing']}, photos "
            f"without a prediction {report['without_prediction']}), duplicated {report['duplicated']}, stuck "
            f"{report['stuck']} (failed {report['failed']}, of which every photo turned back by the photo gate: "
            f"{report['failed_by_gate']}), orphaned files {report['orphaned']}; "
            f"cases in the database {report['cases_in_database']}"
        )
        if report["failed_reasons"]:
            print(f"failed photos' reasons: {report['failed_reasons']}")
    finally:
        for process in processes.values():
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for process in processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        services.stop()
        if os.environ.get("BENCH_KEEP") != "1":
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            print(f"kept {scratch}")


if __name__ == "__main__":
    main()

"""Fixtures for the inference tests: a model artifact, a real Redis, real Celery worker processes.

Registered for every test module by ``pytest_plugins`` in tests/conftest.py.

- ``model_dir``: the shipped default artifact (``inference/artifacts/DEFAULT``) when there is
  one; else ``SKINPORTAL_TEST_MODEL_DIR``; else a small MobileNetV2 artifact (ImageNet base
  from ../shared, random head) built once with the training code (TensorFlow, in a
  subprocess) and kept in pytest's cache.
- ``served_model``: points this process's predictor at ``model_dir``.
- ``redis_server``: a ``redis-server`` this test run starts on a free port in a temporary folder
  (never a Redis it did not start); ``redis_broker``: an empty database of it for one test, with
  this process's Celery app sending to it.
- ``worker_factory``: starts ``celery worker -Q inference`` processes that see this test's
  database (``transactional_db``; PostgreSQL, or SQLite in a file), media folder and broker.

Tests that need a service which is missing are skipped, or fail when CI sets
``SKINPORTAL_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest

from inference.artifact import DEFAULT_FILE, ArtifactError, default_artifact_dir, load_artifact

ROOT = Path(__file__).resolve().parent.parent
# 20 HAM10000 photos, every diagnosis, committed with their attribution (tests/data/README.md).
HAM10000_SAMPLE = ROOT / "tests" / "data" / "ham10000"
TEST_MODEL_SIZE = 96
# training.models.DEFAULT_BASE_WEIGHTS, without importing Keras into the test process.
IMAGENET_WEIGHTS = ROOT.parent / "shared/models/mobilenet_v2_imagenet/mobilenet_v2_1.0_224_no_top.weights.h5"

BUILD_SCRIPT = """
import sys
import keras, numpy as np
from training import models
from training.export import export_artifact

keras.utils.set_random_seed(7)
# ImageNet features from ../shared when present, so probabilities and heatmaps are not flat.
weights = str(models.DEFAULT_BASE_WEIGHTS) if models.DEFAULT_BASE_WEIGHTS.exists() else None
model, _ = models.mobilenet_v2({size}, base_weights=weights)
dense = model.get_layer(models.LOGITS_LAYER)
kernel, bias = dense.get_weights()
dense.set_weights([np.random.default_rng(7).normal(0, 0.03, kernel.shape).astype("float32"), bias])


def gate_fit(folder, manifest):
    # A gate fitted on the committed HAM10000 sample (generated photos without it): the format
    # requires one; its thresholds mean little for a random head.
    from pathlib import Path
    from inference.artifact import Artifact
    from inference.predictor import Predictor
    from inference.preprocessing import load_image, model_pixels
    from training import gate as fitting

    folder_ham = Path(sys.argv[2]) / "images"
    files = sorted(folder_ham.glob("ISIC_*.jpg"))[:70] if folder_ham.is_dir() else []
    if files:
        pixels = np.stack([model_pixels(load_image(f), {size}) for f in files])
    else:
        rng = np.random.default_rng(7)
        pixels = np.clip(rng.normal((190, 140, 120), 25, (70, {size}, {size}, 3)), 0, 255).astype(np.uint8)
    described = fitting.describe(Predictor(Artifact(Path(folder), manifest)), pixels)
    gate, section = fitting.fit_gate(
        train=described, train_labels=np.arange(len(pixels)) % 7, val=described, val_severe={{}}
    )
    return fitting.write_into(folder, gate, section)


export_artifact(
    keras_model=model, destination=sys.argv[1], model_version="test-random-{size}", temperature=1.0,
    thresholds={{"mel": 0.2, "bcc": 0.2, "akiec": 0.2}}, target_sensitivity=0.95, metrics={{}},
    training={{"training_metadata_sha256": "test"}}, gate_fit=gate_fit,
)
"""


def service_missing(reason: str) -> None:
    if os.environ.get("SKINPORTAL_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (SKINPORTAL_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


# --- The model --------------------------------------------------------------------------------
def _built_artifact(cache_root: Path) -> Path:
    sources = b"".join(
        (ROOT / p).read_bytes() for p in ("training/export.py", "training/models.py", "training/gate.py")
    )
    sources += BUILD_SCRIPT.encode()
    base = "imagenet" if IMAGENET_WEIGHTS.exists() else "random"
    folder = cache_root / f"{base}-{TEST_MODEL_SIZE}-{hashlib.sha256(sources).hexdigest()[:12]}"
    if not (folder / "manifest.json").exists():
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
        result = subprocess.run(
            [sys.executable, "-c", BUILD_SCRIPT.format(size=TEST_MODEL_SIZE), str(folder), str(HAM10000_SAMPLE)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0:
            pytest.fail(f"could not build the test model artifact:\n{result.stderr[-3000:]}")
    return folder


@pytest.fixture(scope="session")
def model_dir(request) -> Path:
    """An artifact folder the predictor can serve; the shipped one when it exists."""
    if DEFAULT_FILE.exists():
        folder = default_artifact_dir()
    elif os.environ.get("SKINPORTAL_TEST_MODEL_DIR"):
        folder = Path(os.environ["SKINPORTAL_TEST_MODEL_DIR"])
    else:
        cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
        root = cache.mkdir("skinportal-test-artifacts") if cache else Path(tempfile.gettempdir()) / "skinportal-test"
        folder = _built_artifact(Path(root))
    try:
        load_artifact(folder)
    except ArtifactError as exc:
        pytest.fail(f"the test model artifact {folder} does not load: {exc}")
    return folder


@pytest.fixture
def served_model(model_dir, monkeypatch):
    """This process's ``get_predictor()`` serves ``model_dir`` for the test, and forgets it afterwards."""
    from inference.predictor import get_predictor

    monkeypatch.setenv("SKINPORTAL_MODEL_DIR", str(model_dir))
    get_predictor.cache_clear()
    yield get_predictor()
    get_predictor.cache_clear()


@pytest.fixture(scope="session")
def ham_images() -> list[Path]:
    """The committed sample of real HAM10000 photos, one or more of every diagnosis."""
    photos = sorted((HAM10000_SAMPLE / "images").glob("ISIC_*.jpg"))
    assert len(photos) >= 7, f"the HAM10000 sample is missing from {HAM10000_SAMPLE}"
    return photos


# --- Redis and this process's Celery app ------------------------------------------------------
# The tests never touch a Redis they did not start: a developer's Redis on 6379 (or whatever
# REDIS_URL names) is left alone. The first test that needs Redis starts a private
# ``redis-server`` on a free port, in a temporary folder, with nothing saved to disk; it stops
# when the test run ends. Each test takes the next empty database of it (1-15, flushed before
# and after), so no test sees another's queue, and two test runs side by side each have their
# own server.
_REDIS_TEST_DATABASES = range(1, 16)


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """``redis://127.0.0.1:<port>`` of a redis-server this test run started and owns (no database number)."""
    import shutil

    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        service_missing("redis-server is not installed (apt-get install -y redis-server)")
    folder = tmp_path_factory.mktemp("redis")
    for _attempt in range(3):  # a port found free can be taken before the server binds it
        port = _free_port()
        process = subprocess.Popen(
            [
                binary,
                "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
                "--save", "", "--appendonly", "no", "--databases", "16",
                "--logfile", str(folder / "redis.log"), "--daemonize", "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"redis://127.0.0.1:{port}"
        client = redis.Redis.from_url(f"{url}/0", socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        while process.poll() is None and time.monotonic() < deadline:
            try:
                client.ping()
                break
            except redis.RedisError:
                time.sleep(0.05)
        client.close()
        if process.poll() is None and time.monotonic() < deadline:
            break
        process.kill()
        process.wait()
    else:
        service_missing(f"the private redis-server did not start: {(folder / 'redis.log').read_text()[-2000:]}")
    try:
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


_databases_taken: list[int] = []


@contextmanager
def celery_sending_to(broker_url: str):
    """Point this process's Celery app (and the readiness ping's result store) at another broker."""
    from kombu import pools as kombu_pools

    from diagnosis.tasks import ping_backend
    from skinportal.celery import app

    def reset() -> None:
        kombu_pools.reset()  # closes every pooled connection and forgets the pools
        app._pool = None
        app.amqp._producer_pool = None
        ping_backend.cache_clear()

    saved = app.conf.broker_url, app.conf.broker_transport_options
    reset()
    app.conf.broker_url, app.conf.broker_transport_options = broker_url, {}
    try:
        yield app
    finally:
        reset()
        app.conf.broker_url, app.conf.broker_transport_options = saved


@pytest.fixture
def redis_broker(redis_server):
    """The URL of an empty database of this run's private Redis; this process's Celery app sends there."""
    import redis

    free = [number for number in _REDIS_TEST_DATABASES if number not in _databases_taken]
    database = free[0] if free else _REDIS_TEST_DATABASES[0]
    _databases_taken.append(database)
    url = f"{redis_server}/{database}"
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    client.flushdb()
    try:
        with celery_sending_to(url):
            yield url
    finally:
        client.flushdb()
        client.close()
        _databases_taken.remove(database)


def queued_messages(broker_url: str, queue: str = "inference") -> int:
    import redis

    with redis.Redis.from_url(broker_url) as client:
        return int(client.llen(queue))


# --- Worker processes -------------------------------------------------------------------------
def database_url_for_workers() -> str:
    """A DATABASE_URL naming the database this test runs on, for other processes to open."""
    from django.db import connection

    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        name = str(settings["NAME"])
        if connection.is_in_memory_db():
            service_missing(
                "the test database is SQLite in memory, which a worker process cannot open: run with "
                "DATABASE_URL=postgres://... (as CI does) or give the SQLite test database a file name"
            )
        return f"sqlite:///{name}"
    if connection.vendor == "postgresql":
        user = quote(settings.get("USER") or "", safe="")
        password = quote(settings.get("PASSWORD") or "", safe="")
        credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = settings.get("HOST") or "localhost"
        port = settings.get("PORT") or 5432
        return f"postgres://{credentials}{host}:{port}/{settings['NAME']}"
    pytest.skip(f"no worker database URL for {connection.vendor}")


class Worker:
    """One ``celery worker`` process (and its pool children) in a process group of its own."""

    def __init__(self, env: dict[str, str], log: Path, concurrency: int):
        self.log = log
        self._handle = log.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "skinportal",
                "worker",
                "-Q",
                "inference",
                "--pool",
                "prefork",
                "--concurrency",
                str(concurrency),
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"test-{os.getpid()}-{time.monotonic_ns()}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=self._handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60, expect_model: bool = True) -> None:
        """Until the worker consumes the queue and (unless told otherwise) a pool process has the model."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the worker exited with {self.process.returncode}:\n{self.output()}")
            log = self.log.read_bytes()
            if b" ready." in log and (b"loaded model" in log or not expect_model):
                return
            time.sleep(0.2)
        raise AssertionError(f"the worker did not start in {timeout} s:\n{self.output()}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group: the main process and every pool child."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """Warm shutdown: the main process lets running tasks finish, then stops its pool."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self._handle.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]


@pytest.fixture
def worker_factory(transactional_db, settings, model_dir, redis_broker, tmp_path):
    """Start real worker processes on this test's database, media folder and Redis database."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("CELERY_", "REDIS_URL"))}
    env.update(
        DJANGO_SETTINGS_MODULE="skinportal.settings.local",
        DJANGO_DEBUG="false",
        DATABASE_URL=database_url_for_workers(),
        DJANGO_MEDIA_ROOT=str(settings.MEDIA_ROOT),
        CELERY_BROKER_URL=redis_broker,
        SKINPORTAL_MODEL_DIR=str(model_dir),
        # As in the test settings: no audit sample unless a test starts its worker with one.
        SKINPORTAL_AUDIT_SAMPLE_RATE="0",
        PYTHONUNBUFFERED="1",
    )
    started: list[Worker] = []

    def start(concurrency: int = 2, expect_model: bool = True, **extra_env: str) -> Worker:
        worker = Worker({**env, **extra_env}, tmp_path / f"worker-{len(started)}.log", concurrency)
        started.append(worker)
        worker.wait_ready(expect_model=expect_model)
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_for(condition, timeout: float = 60, interval: float = 0.2, message: str = "condition"):
    """Poll ``condition()`` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")

"""Sampling profiles of the running portal processes with py-spy, summed up by where the time goes.

``record(pids, folder)`` starts ``py-spy record`` (raw collapsed stacks, active threads only)
on each process and returns a stop function; ``summary(files)`` reads the stacks and gives
the share of samples by family (the deepest frame that belongs to one), and the functions
with the most samples of their own. Used by ``benchmarks.upload_latency --py-spy DIR``.
"""

from __future__ import annotations

import collections
import re
import signal
import subprocess
import sys
from pathlib import Path

# Checked from the leaf up; the first family a frame belongs to takes the sample.
FAMILIES = [
    ("model (LiteRT)", ("ai_edge_litert", "predictor.py")),
    (
        "images (Pillow: decode, encode, resize)",
        ("PIL/", "pillow_heif", "heatmap.py", "preprocessing.py", "gate.py", "quality.py", "numpy/"),
    ),
    ("object storage (boto3, botocore, S3)", ("botocore/", "boto3/", "s3transfer/", "storages/", "urllib3/")),
    ("database driver (psycopg, sqlite3)", ("psycopg/", "psycopg_binary", "sqlite3/")),
    ("ORM (query building, model instances)", ("django/db/",)),
    ("broker (Celery, kombu, redis-py)", ("celery/", "kombu/", "redis/", "billiard/")),
    ("API (DRF: parsing, serializers, rendering)", ("rest_framework/", "knox/", "drf_spectacular/")),
    ("request handling (Django HTTP, multipart, middleware, templates)", ("django/",)),
    ("web server (gunicorn)", ("gunicorn/",)),
    ("the portal's own code", ("/diagnosis/", "/accounts/", "/triage/", "/continuity/", "/skinportal/", "/inference/")),
]
_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def record(pids: dict[str, int], folder: Path, rate: int = 100):
    """Start py-spy on each process (name -> pid); the returned function stops them all."""
    folder.mkdir(parents=True, exist_ok=True)
    spy = str(Path(sys.executable).parent / "py-spy")
    running = [
        subprocess.Popen(
            [
                spy,
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(rate),
                "--format",
                "raw",
                "--nonblocking",
                "--output",
                str(folder / f"{name}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in pids.items()
    ]

    def stop() -> None:
        for process in running:
            process.send_signal(signal.SIGINT)
        for process in running:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()

    return stop


def _family(frames: list[str]) -> str:
    for frame in reversed(frames):
        match = _FRAME.match(frame)
        path = match.group("file") if match else frame
        for family, markers in FAMILIES:
            if any(marker in path for marker in markers):
                return family
    return "other (Python itself, the standard library)"


def summary(files: list[Path], top: int = 12) -> tuple[int, dict[str, float], list[tuple[str, float]]]:
    """(samples, share by family, the leaf functions with the largest shares)."""
    families: collections.Counter = collections.Counter()
    leaves: collections.Counter = collections.Counter()
    total = 0
    for file in files:
        if not file.exists():
            continue
        for line in file.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            frames = [frame for frame in stack.split(";") if frame and not frame.startswith(("process ", "thread "))]
            samples = int(count)
            total += samples
            families[_family(frames)] += samples
            if frames:
                leaves[frames[-1]] += samples
    if not total:
        return 0, {}, []
    shares = {family: count / total for family, count in families.most_common()}
    return total, shares, [(leaf, count / total) for leaf, count in leaves.most_common(top)]


def report(label: str, files: list[Path], top: int = 12) -> str:
    total, shares, leaves = summary(files, top)
    if not total:
        return f"{label}: no samples (py-spy needs permission to read other processes)"
    lines = [
        f"{label}: {total} samples; by family: " + ", ".join(f"{name} {share:.0%}" for name, share in shares.items())
    ]
    lines += [f"    {share:5.1%}  {leaf[:150]}" for leaf, share in leaves]
    return "\n".join(lines)

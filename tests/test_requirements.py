"""requirements.txt alone must be enough for the web and worker processes (the Docker image installs only it)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pinned(path: Path) -> dict[str, str]:
    """Package name (lower case, extras dropped) -> pinned version, from ``name==version`` lines."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.split("[", 1)[0].strip().lower()] = version.strip()
    return pins


def test_worker_requirements_pin_packaging():
    # kombu's Redis transport imports packaging; it used to arrive only with the dev
    # requirements, so a worker installed from requirements.txt could not reach Redis.
    assert "packaging" in pinned(ROOT / "requirements.txt")

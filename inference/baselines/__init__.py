"""Baseline networks measured against a served model, one JSON file per model version.

An artifact version is immutable, so the comparison with the LeNet-5 and AlexNet baselines that
``training.baselines`` measures later, on the same split, is kept here rather than in the
version's report. No Django: the Model page reads it through :func:`baselines_for`.
"""

from __future__ import annotations

import json
from pathlib import Path

BASELINES_DIR = Path(__file__).resolve().parent


def baselines_for(model_version: str) -> dict | None:
    """The baselines measured for ``model_version``, or None when none were."""
    path = BASELINES_DIR / f"{model_version}.json"
    if "/" in model_version or not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def baselines_for_artifact(artifact) -> tuple[dict | None, str | None]:
    """The baselines of an artifact's network: its own, or, for a version derived from another
    (the same network with new thresholds or gate), that version's. Returns them and the
    version they were measured with when it is not the artifact's own (else None)."""
    measured = baselines_for(artifact.model_version)
    if measured:
        return measured, None
    source = (artifact.manifest.get("derived_from") or {}).get("model_version")
    return (baselines_for(source), source) if source else (None, None)

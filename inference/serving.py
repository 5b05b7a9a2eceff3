"""The portal's one door to the model: everything the analysis worker asks of ``inference/``.

``analysis/`` imports this module and no other of ``inference/`` (tests/test_architecture.py),
so what the worker depends on is the few names below, and the model's insides (artifact
layout, LiteRT, preprocessing, the gate's statistics, the heatmap's drawing) can change
behind them. No Django here either.

- ``served_model()``: the model this process serves, loaded once (``ArtifactError`` if it cannot be);
- ``served_version()`` / ``deployed_version()``: its version, "" when it cannot be loaded;
- ``read_photo(data)``: the stored photo's bytes decoded as the model reads them;
- ``read(model, photo)``: one photo scored: a ``Reading`` with the probabilities, the gate's
  decision and, for a photo the gate accepted, the heatmap layer to store;
- ``heatmap_is_layer(data)``: whether stored heatmap bytes are a transparent layer;
- ``thresholds_of(version, sha256)``: the referral thresholds of the artifact that scored a prediction;
- ``case_risk``, ``ImageResult``, ``HIGH``: the referral rule over a case's photos (inference/risk.py);
- ``CLASSES``, ``GATE_OK``, ``ArtifactError``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from inference.artifact import ArtifactError, artifact_for_version, load_artifact
from inference.classes import CLASSES
from inference.gate import OK as GATE_OK
from inference.heatmap import is_layer, overlay_layer_png
from inference.predictor import Predictor, get_predictor, model_dir_from_environment
from inference.preprocessing import load_image
from inference.risk import HIGH, ImageResult, case_risk

__all__ = [
    "CLASSES",
    "GATE_OK",
    "HIGH",
    "ArtifactError",
    "ImageResult",
    "Reading",
    "case_risk",
    "deployed_version",
    "heatmap_is_layer",
    "read",
    "read_photo",
    "served_model",
    "served_version",
    "thresholds_of",
]


@dataclass(frozen=True)
class Reading:
    """What the model read in one photo, as the worker stores it."""

    model_version: str
    artifact_sha256: str
    probabilities: dict[str, float]
    top_class: str
    balanced_class: str
    inference_ms: float
    gate: str  # GATE_OK or the reason the photo was turned back
    gate_score: float | None
    heatmap_layer: bytes | None  # indexed PNG; None for a photo the gate turned back: nothing from it is shown


def served_model() -> Predictor:
    """The model this process serves, loaded on first use and kept; ``ArtifactError`` if it cannot be."""
    return get_predictor()


def served_version() -> str:
    """The served model's version, or "" when it cannot be loaded."""
    try:
        return served_model().model_version
    except ArtifactError:
        return ""


def deployed_version() -> str:
    """The version of the artifact the environment names, read without loading the network."""
    return load_artifact(model_dir_from_environment(), verify=False).model_version


def read_photo(data: bytes) -> Image.Image:
    """A stored photo decoded as the model reads it (upright RGB); any decoder error propagates."""
    return load_image(io.BytesIO(data))


def read(model: Predictor, photo: Image.Image) -> Reading:
    """Score one photo; ``ValueError`` or ``RuntimeError`` when the model cannot."""
    scores = model.predict_image(photo)
    gate = scores.gate.reason if scores.gate is not None else GATE_OK
    heatmap = None
    if scores.activation_map is not None and gate == GATE_OK:
        heatmap = overlay_layer_png(photo, scores.activation_map)
    return Reading(
        model_version=model.model_version,
        artifact_sha256=model.artifact.sha256,
        probabilities=scores.probabilities,
        top_class=scores.top_class,
        balanced_class=scores.balanced_class,
        inference_ms=scores.inference_ms,
        gate=gate,
        gate_score=scores.gate.score if scores.gate is not None else None,
        heatmap_layer=heatmap,
    )


def heatmap_is_layer(data: bytes) -> bool:
    """Whether stored heatmap bytes are a transparent layer to lay over the photo (an indexed PNG,
    or WebP from earlier versions) rather than the photo with the map blended in (first version)."""
    return is_layer(data)


def thresholds_of(model_version: str, artifact_sha256: str = "") -> dict[str, float]:
    """The referral thresholds of the artifact that scored a prediction, not of the one served now
    (``ArtifactError`` if it is gone). A prediction that recorded its artifact's hash is settled
    only with exactly that artifact."""
    try:
        served = served_model().artifact
    except ArtifactError:
        served = None  # the served model is broken or gone; the scoring artifact may still be there
    if served is not None and served.model_version == model_version and artifact_sha256 in ("", served.sha256):
        return served.thresholds
    return artifact_for_version(model_version, artifact_sha256).thresholds

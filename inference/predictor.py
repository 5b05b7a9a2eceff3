"""The serving runtime: a LiteRT interpreter over an exported artifact.

No TensorFlow here. A Celery worker process calls :func:`get_predictor` once after it
has forked and keeps the returned predictor for every task it runs.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from inference.artifact import Artifact, ArtifactError, load_artifact
from inference.gate import Decision, Gate
from inference.preprocessing import model_pixels


@dataclass(frozen=True)
class Scores:
    """One image's result: calibrated probabilities and the evidence map for the top class."""

    probabilities: dict[str, float]
    top_class: str
    logits: np.ndarray
    activation_map: np.ndarray | None  # (h, w) in [0, 1], over the canonical view of the image
    inference_ms: float
    pooled_features: np.ndarray | None = None  # the pooled last feature map the dense head reads
    gate: Decision | None = None  # the photo gate's decision; not ok: show no result from this photo


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Temperature-scaled probabilities over the last axis: the one calibration formula,
    used here by the worker and by training when it fits the temperature."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class Predictor:
    def __init__(self, artifact: Artifact, num_threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.artifact = artifact
        self.model_version = artifact.model_version
        self.classes = artifact.classes
        self.threads = num_threads or default_threads()
        try:
            self._interpreter = Interpreter(model_path=str(artifact.serving_file), num_threads=self.threads)
            self._runner = self._interpreter.get_signature_runner()
        except (ValueError, RuntimeError) as exc:
            raise ArtifactError(f"cannot load {artifact.serving_file}: {exc}") from exc
        (self._input_name,) = self._runner.get_input_details().keys()
        self._head = None
        if artifact.head_file is not None and artifact.head_file.exists():
            with np.load(artifact.head_file) as head:
                self._head = (head["kernel"].astype(np.float32), head["bias"].astype(np.float32))
        self.gate = None
        if "gate" in artifact.manifest:
            try:
                self.gate = Gate.load(artifact.gate_file, artifact.gate_thresholds)
            except (OSError, ValueError, KeyError) as exc:
                raise ArtifactError(f"cannot load the photo gate of {artifact.model_version}: {exc}") from exc
        self._lock = threading.Lock()  # an interpreter is not safe to share between threads

    def run(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw logits (and the last feature map, when exported) for one (S, S, 3) pixel array."""
        batch = np.asarray(pixels, dtype=np.float32)[None]
        with self._lock:
            outputs = self._runner(**{self._input_name: batch})
        features = outputs.get("features")
        return outputs["logits"][0], (features[0] if features is not None else None)

    def predict_pixels(self, pixels: np.ndarray) -> Scores:
        started = time.perf_counter()
        logits, features = self.run(pixels)
        probabilities = softmax(logits, self.artifact.temperature)
        top = int(np.argmax(probabilities))
        activation_map = None
        if features is not None and self._head is not None:
            activation_map = class_activation_map(features, self._head[0][:, top])
        pooled = features.mean(axis=(0, 1)) if features is not None else None
        decision = None
        if self.gate is not None:
            if pooled is None:
                raise ArtifactError(f"{self.model_version} exports no features, which its photo gate needs")
            decision = self.gate.decide(pixels=pixels, features=pooled, logits=logits)
        elapsed_ms = (time.perf_counter() - started) * 1000
        return Scores(
            probabilities={name: float(p) for name, p in zip(self.classes, probabilities, strict=False)},
            top_class=self.classes[top],
            logits=np.asarray(logits),
            activation_map=activation_map,
            inference_ms=elapsed_ms,
            pooled_features=pooled,
            gate=decision,
        )

    def predict_image(self, image: Image.Image) -> Scores:
        return self.predict_pixels(model_pixels(image, self.artifact.input_size))


def class_activation_map(features: np.ndarray, class_weights: np.ndarray) -> np.ndarray:
    """CAM (Zhou et al. 2016): with global average pooling and a dense head it is exact.

    ``features`` is the (h, w, k) last feature map, ``class_weights`` the k dense weights of
    one class; the map is rectified and scaled to [0, 1].
    """
    cam = np.tensordot(features, class_weights, axes=([2], [0]))
    cam = np.maximum(cam, 0)
    peak = float(cam.max())
    return (cam / peak if peak > 0 else cam).astype(np.float32)


def default_threads() -> int:
    """Interpreter threads: SKINPORTAL_MODEL_THREADS, else two where there are two cores.

    On a 2-core machine one image takes about 6 ms on one thread and 3 ms on two.
    """
    value = os.environ.get("SKINPORTAL_MODEL_THREADS")
    return int(value) if value else max(1, min(2, os.cpu_count() or 1))


def model_dir_from_environment() -> Path | None:
    value = os.environ.get("SKINPORTAL_MODEL_DIR")
    return Path(value) if value else None


@lru_cache(maxsize=1)
def get_predictor() -> Predictor:
    """The process-wide predictor, loaded on first use (after any fork) and kept."""
    return Predictor(load_artifact(model_dir_from_environment()))

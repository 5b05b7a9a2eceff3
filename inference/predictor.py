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
from inference.calibration import balanced_index, softmax
from inference.gate import Decision, Gate
from inference.preprocessing import model_pixels

__all__ = [
    "Predictor",
    "Scores",
    "class_activation_map",
    "default_threads",
    "get_predictor",
    "softmax",
    "unview",
    "view",
]


@dataclass(frozen=True)
class Scores:
    """One image's result: calibrated probabilities, the two answers, and the evidence map.

    ``top_class`` is the most likely class (argmax of the calibrated probabilities);
    ``balanced_class`` is the class the photo resembles most relative to how common it is
    (argmax of probability / training prevalence), the decision balanced accuracy scores.
    """

    probabilities: dict[str, float]
    top_class: str
    logits: np.ndarray
    activation_map: np.ndarray | None  # (h, w) in [0, 1], over the canonical view of the image
    inference_ms: float
    balanced_class: str = ""
    pooled_features: np.ndarray | None = None  # the pooled last feature map the dense head reads
    gate: Decision | None = None  # the photo gate's decision; not ok: show no result from this photo


def view(pixels: np.ndarray, index: int) -> np.ndarray:
    """The ``index``-th of the eight flips and quarter turns of an (S, S, ...) array (0: itself).

    0-3 are the identity, the horizontal flip, the vertical flip and the half turn; 4-7 the
    same after a transpose (the quarter turns and the diagonal flips).
    """
    array = np.swapaxes(pixels, 0, 1) if index >= 4 else pixels
    index %= 4
    if index in (1, 3):
        array = array[:, ::-1]
    if index in (2, 3):
        array = array[::-1]
    return array


def unview(array: np.ndarray, index: int) -> np.ndarray:
    """Undo :func:`view`: the flips first (each is its own inverse), then the transpose."""
    flips = index % 4
    if flips in (1, 3):
        array = array[:, ::-1]
    if flips in (2, 3):
        array = array[::-1]
    return np.swapaxes(array, 0, 1) if index >= 4 else array


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
        ((self._input_name, details),) = self._runner.get_input_details().items()
        expected = [1, artifact.input_size, artifact.input_size, 3]
        if [int(d) for d in details["shape"]] != expected:
            raise ArtifactError(
                f"{artifact.serving_file} takes input {list(details['shape'])}, the manifest says {expected}"
            )
        self.calibration = artifact.calibration
        self.prevalence = artifact.prevalence
        self.views = artifact.test_time_views
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

    def view_logits(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Logits averaged over the artifact's test-time views, and the feature map averaged
        over the same views turned back to the photo's orientation."""
        logits, features = self.run(pixels)
        if self.views == 1:
            return np.asarray(logits), features
        all_logits, all_features = [np.asarray(logits)], [features]
        for index in range(1, self.views):
            view_logits, view_features = self.run(np.ascontiguousarray(view(pixels, index)))
            all_logits.append(np.asarray(view_logits))
            if features is not None:
                all_features.append(unview(view_features, index))
        mean_features = np.mean(all_features, axis=0) if features is not None else None
        return np.mean(all_logits, axis=0), mean_features

    def predict_pixels(self, pixels: np.ndarray) -> Scores:
        started = time.perf_counter()
        logits, features = self.view_logits(pixels)
        probabilities = self.calibration.probabilities(logits)
        top = int(np.argmax(probabilities))
        balanced = int(balanced_index(probabilities, self.prevalence))
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
            balanced_class=self.classes[balanced],
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

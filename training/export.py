"""Writing a model artifact (see ``inference.artifact`` for the layout), atomically."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from inference import preprocessing
from inference.artifact import FORMAT_VERSION, MANIFEST, sha256_file
from inference.calibration import METHOD as CALIBRATION_METHOD
from inference.calibration import Calibration
from training import models


def convert_to_litert(keras_model, destination: Path) -> None:
    """Float32 LiteRT flatbuffer with named outputs (no quantisation: parity with Keras)."""
    import keras
    import tensorflow as tf

    serving = models.serving_model(keras_model)
    size = keras_model.input_shape[1]
    with tempfile.TemporaryDirectory() as saved_model:
        archive = keras.export.ExportArchive()
        archive.track(serving)
        archive.add_endpoint(
            name="serving_default",
            fn=lambda pixels: serving(pixels, training=False),
            input_signature=[tf.TensorSpec([1, size, size, 3], tf.float32, name="pixels")],
        )
        archive.write_out(saved_model, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
        flatbuffer = converter.convert()
    destination.write_bytes(flatbuffer)


def export_artifact(
    *,
    keras_model,
    destination: Path,
    model_version: str,
    temperature: float,
    thresholds: dict[str, float],
    calibration: Calibration | None = None,
    prevalence: np.ndarray | None = None,
    views: int = 1,
    target_sensitivity: float,
    metrics: dict,
    training: dict,
    report_dir: Path | None = None,
    gate_fit: Callable[[Path, dict], dict] | None = None,
) -> Path:
    """Write the artifact to ``destination.part`` and rename it into place when complete.

    Refuses an existing ``destination``: a model version, once written, never changes.

    ``gate_fit(folder, manifest)`` fits the photo gate for the network just written into
    ``folder`` (training.gate.fit_into), writes its file there and returns the manifest's
    ``gate`` section. Without it the artifact has no gate, and ``load_artifact`` refuses it.
    """
    destination = Path(destination)
    if destination.exists():
        raise FileExistsError(f"{destination} exists: a model version is never overwritten")
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()

    convert_to_litert(keras_model, partial / "model.tflite")
    keras_model.save(partial / "model.keras")
    dense = keras_model.get_layer(models.LOGITS_LAYER)
    kernel, bias = (np.asarray(w) for w in dense.get_weights())
    has_features = True
    try:
        keras_model.get_layer(models.FEATURES_LAYER)
    except ValueError:
        has_features = False
    if has_features:
        np.savez(partial / "head.npz", kernel=kernel.astype(np.float32), bias=bias.astype(np.float32))
    if calibration is None:
        calibration = Calibration.temperature(temperature, len(preprocessing.CLASSES))
    calibration.save(partial / "calibration.npz")
    thresholds = {k: float(v) for k, v in thresholds.items()}
    (partial / "thresholds.json").write_text(json.dumps(thresholds, indent=2) + "\n")
    if report_dir is not None and Path(report_dir).exists():
        shutil.copytree(report_dir, partial / "report")

    manifest = {
        "format_version": FORMAT_VERSION,
        "model_version": model_version,
        "architecture": keras_model.name,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "classes": list(preprocessing.CLASSES),
        "preprocessing": preprocessing.spec(keras_model.input_shape[1]),
        "serving": {
            "file": "model.tflite",
            "runtime": "litert",
            "outputs": ["logits", "features"] if has_features else ["logits"],
        },
        "keras_model": "model.keras",
        "heatmap": {"file": "head.npz", "method": "class activation map"} if has_features else {},
        "temperature": float(temperature),
        "calibration": {"file": "calibration.npz", "method": CALIBRATION_METHOD},
        "thresholds": thresholds,
        "thresholds_file": "thresholds.json",
        "training_prevalence": (
            {name: float(p) for name, p in zip(preprocessing.CLASSES, prevalence, strict=True)}
            if prevalence is not None
            else None
        ),
        "test_time_augmentation": {"views": int(views)},
        "threshold_target_sensitivity": target_sensitivity,
        "metrics": metrics,
        "training": training,
        "training_metadata_sha256": training.get("training_metadata_sha256"),
        "parameters": int(keras_model.count_params()),
    }
    if gate_fit is not None:
        manifest["gate"] = gate_fit(partial, manifest)
    # Every file, the report's too: load_artifact checks them all.
    manifest["files"] = {
        p.relative_to(partial).as_posix(): sha256_file(p) for p in sorted(partial.rglob("*")) if p.is_file()
    }
    (partial / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")

    if destination.exists():  # written meanwhile by another export
        shutil.rmtree(partial)
        raise FileExistsError(f"{destination} exists: a model version is never overwritten")
    partial.rename(destination)
    return destination

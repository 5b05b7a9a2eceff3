"""The served model (LiteRT, no TensorFlow) gives the Keras model's probabilities on real photos.

Uses the committed HAM10000 sample (tests/data) and TensorFlow (requirements-dev.txt); TensorFlow
is imported inside the test only.
"""

from __future__ import annotations

import numpy as np
import pytest

from inference.preprocessing import load_image, model_pixels

TOLERANCE = 1e-4


def keras_file(artifact):
    """The Keras file of the served network: in the artifact, or in the version it was derived from
    when that version's serving file is the very same network (same hash)."""
    from inference.artifact import artifact_for_version

    if "keras_model" in artifact.manifest:
        return artifact.path / artifact.manifest["keras_model"]
    source = artifact_for_version(artifact.manifest["derived_from"]["model_version"])
    serving = artifact.manifest["serving"]["file"]
    assert source.manifest["files"][serving] == artifact.manifest["files"][serving], "not the same network"
    return keras_file(source)


def test_litert_probabilities_equal_keras_on_real_ham10000_photos(served_model, ham_images):
    keras = pytest.importorskip("keras", reason="the parity test needs Keras (requirements-dev.txt)")
    artifact = served_model.artifact
    model = keras.models.load_model(keras_file(artifact), compile=False)

    photos = ham_images[:24]
    pixels = np.stack([model_pixels(load_image(path), artifact.input_size) for path in photos]).astype(np.float32)
    keras_logits = np.asarray(model.predict(pixels, batch_size=8, verbose=0))

    worst = 0.0
    for path, image_pixels, logits in zip(photos, pixels, keras_logits, strict=True):
        served = served_model.predict_pixels(image_pixels)
        expected = artifact.calibration.probabilities(logits)
        got = np.array([served.probabilities[name] for name in artifact.classes])
        assert abs(got.sum() - 1.0) < 1e-5
        np.testing.assert_allclose(served.logits, logits, rtol=1e-3, atol=1e-3)
        worst = max(worst, float(np.abs(got - expected).max()))
        assert np.abs(got - expected).max() < TOLERANCE, f"{path.name}: {got} != {expected}"
        assert served.top_class == artifact.classes[int(np.argmax(expected))]
    print(f"largest difference over {len(photos)} photos: {worst:.2e}")

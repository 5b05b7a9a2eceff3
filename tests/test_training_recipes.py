"""Training recipes measured against v1: class-balanced sampling and weight averaging."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.training


def test_balanced_sampling_draws_every_class_about_equally_and_keeps_the_epoch_length():
    import tensorflow as tf

    from training.train import make_dataset

    labels = np.array([0] * 900 + [1] * 80 + [2] * 20, dtype=np.int32)
    pixels = labels.astype(np.uint8).reshape(-1, 1, 1, 1) * np.ones((1, 2, 2, 3), np.uint8)
    weights = np.ones(len(labels), np.float32)

    drawn = np.concatenate(
        [y.numpy() for _, y, _ in make_dataset(tf, pixels, labels, weights, 50, shuffle_seed=1, balanced=True)]
    )
    natural = np.concatenate([y.numpy() for _, y, _ in make_dataset(tf, pixels, labels, weights, 50, shuffle_seed=1)])

    assert len(drawn) == len(labels) == len(natural)
    shares = np.bincount(drawn, minlength=3) / len(drawn)
    assert np.all(np.abs(shares - 1 / 3) < 0.06), shares
    assert np.array_equal(np.bincount(natural), [900, 80, 20])


def test_weight_averaging_writes_the_mean_of_the_checkpoints_with_the_run_record(tmp_path):
    import keras

    from training.average import average_into

    def checkpoint(name, value):
        inputs = keras.Input((3,))
        model = keras.Model(inputs, keras.layers.Dense(2, name="logits")(inputs))
        model.set_weights([np.full(w.shape, value, np.float32) for w in model.get_weights()])
        folder = tmp_path / name
        folder.mkdir()
        model.save(folder / "best.keras")
        (folder / "run.json").write_text(json.dumps({"class_weights": {"nv": 1.0}}))
        (folder / "split.csv").write_text("image_id,split\n")
        return folder / "best.keras"

    path = average_into([checkpoint("a", 1.0), checkpoint("b", 3.0)], tmp_path / "avg")

    averaged = keras.models.load_model(path, compile=False).get_weights()
    assert all(np.allclose(w, 2.0) for w in averaged)
    run = json.loads((tmp_path / "avg" / "run.json").read_text())
    assert run["class_weights"] == {"nv": 1.0} and len(run["weight_average_of"]) == 2
    assert (tmp_path / "avg" / "split.csv").exists()
    with pytest.raises(ValueError, match="at least two"):
        average_into([path], tmp_path / "one")


def test_strong_augmentation_keeps_shape_and_range_and_draws_dark_hairs():
    import tensorflow as tf

    from training.augment import augment_batch_strong, hair_occlusions

    images = tf.fill((16, 64, 64, 3), 200.0)
    out = augment_batch_strong(images).numpy()
    assert out.shape == (16, 64, 64, 3)
    assert out.min() >= 0.0 and out.max() <= 255.0

    tf.random.set_seed(3)
    haired = hair_occlusions(images).numpy()
    darkened = (haired.max(axis=-1) < 150).mean(axis=(1, 2))
    assert (darkened > 0).any(), "some images get hairs"
    assert (darkened == 0).any(), "some images get none"
    assert darkened.max() < 0.2, "hairs are thin lines, not blots"


def test_capture_augmentation_sharpens_adds_noise_or_softens_a_share_of_photos():
    import tensorflow as tf

    from training.augment import _blurred, augment_batch_capture, capture_artefacts

    # A flat photo stays flat under the blur (reflected edges), so only noise can move it.
    flat = tf.fill((2, 16, 16, 3), 120.0)
    assert np.allclose(_blurred(flat).numpy(), 120.0)

    # A step edge: sharpening overshoots it, softening smooths it, noise roughens the flat parts.
    edge = np.zeros((64, 32, 32, 3), np.float32)
    edge[:, :, 16:] = 200.0
    edge[:, :, :16] = 50.0
    tf.random.set_seed(5)
    out = capture_artefacts(tf.constant(edge)).numpy()
    assert out.shape == edge.shape and out.min() >= 0.0 and out.max() <= 255.0
    overshoot = out[:, :, 16].mean(axis=(1, 2)) > 205.0  # the bright side of the edge
    softened = out[:, :, 16].mean(axis=(1, 2)) < 195.0
    noisy = out[:, :, 4:12].std(axis=(1, 2, 3)) > 0.3
    untouched = ~overshoot & ~softened & ~noisy
    for name, share in (("sharpened", overshoot), ("noisy", noisy), ("untouched", untouched)):
        assert 0.1 < share.mean() < 0.9, name
    assert softened.any()

    # The warp and colour jitter keep a flat photo flat in each channel: only the capture step adds spread.
    tf.random.set_seed(7)
    batch = augment_batch_capture(tf.fill((32, 48, 48, 3), 100.0)).numpy()
    assert batch.shape == (32, 48, 48, 3) and batch.min() >= 0.0 and batch.max() <= 255.0
    spread = batch.std(axis=(1, 2)).max(axis=1)
    assert (spread > 0.3).any() and (spread < 0.3).any()


def test_train_offers_every_augmentation_recipe_and_no_other():
    from training import train
    from training.augment import RECIPES, augment_batch_capture

    assert RECIPES["capture"] is augment_batch_capture
    for name in RECIPES:
        assert train.parse_args(["--run-dir", "x", "--augment", name]).augment == name
    with pytest.raises(SystemExit):
        train.parse_args(["--run-dir", "x", "--augment", "blurry"])

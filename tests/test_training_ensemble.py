"""The ensemble of runs (training.ensemble): one network whose logits and heatmap are the members' mean."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.training

SIZE = 32


def _run(tmp_path, name, seed, class_weights, split="image_id,lesion_id,dx,split\nISIC_1,HAM_1,nv,train\n"):
    import keras

    from training import models

    keras.utils.set_random_seed(seed)
    model, _ = models.mobilenet_v2(SIZE, None)
    rng = np.random.default_rng(seed)
    model.set_weights([(w + rng.normal(0, 0.05, w.shape)).astype(np.float32) for w in model.get_weights()])
    dense = model.get_layer(models.LOGITS_LAYER)
    dense.set_weights([rng.normal(0, 1, w.shape).astype(np.float32) for w in dense.get_weights()])
    folder = tmp_path / name
    folder.mkdir()
    model.save(folder / "best.keras")
    (folder / "split.csv").write_text(split)
    (folder / "run.json").write_text(
        json.dumps({"arch": "mobilenet_v2", "input_size": SIZE, "class_weights": class_weights, "train_seconds": 60.0})
    )
    return folder


def test_the_joined_network_gives_the_mean_logits_and_the_mean_heatmap(tmp_path):
    import keras

    from training import models
    from training.ensemble import join_runs

    a = _run(tmp_path, "a", 1, {"mel": 2.0, "nv": 0.5})
    b = _run(tmp_path, "b", 2, {"mel": 8.0, "nv": 0.5})
    path = join_runs([a, b], tmp_path / "joined")

    members = [keras.models.load_model(run / "best.keras", compile=False) for run in (a, b)]
    joined = keras.models.load_model(path, compile=False)
    pixels = np.random.default_rng(0).uniform(0, 255, (3, SIZE, SIZE, 3)).astype(np.float32)
    expected = np.mean([member.predict(pixels, verbose=0) for member in members], axis=0)
    assert not np.allclose(members[0].predict(pixels, verbose=0), members[1].predict(pixels, verbose=0))
    assert np.allclose(joined.predict(pixels, verbose=0), expected, atol=1e-4)

    # The class activation map of the joined network (its features and dense head), before the heatmap
    # rectifies and scales it, is the mean of the members' maps.
    def cam(model, top):
        serving = models.serving_model(model)
        features = np.asarray(serving(pixels[:1], training=False)["features"])[0]
        kernel = model.get_layer(models.LOGITS_LAYER).get_weights()[0]
        return np.tensordot(features, kernel[:, top], axes=([2], [0]))

    assert np.allclose(cam(joined, 4), np.mean([cam(member, 4) for member in members], axis=0), atol=1e-4)

    run = json.loads((tmp_path / "joined" / "run.json").read_text())
    assert run["class_weights"] == pytest.approx({"mel": 4.0, "nv": 0.5})  # the geometric mean
    assert [member["run"] for member in run["ensemble_of"]] == [str(a), str(b)]
    assert run["train_seconds"] == 120.0
    assert (tmp_path / "joined" / "split.csv").read_text() == (a / "split.csv").read_text()


def test_runs_on_different_splits_or_a_single_run_are_refused(tmp_path):
    from training.ensemble import join_runs

    a = _run(tmp_path, "a", 1, {"nv": 1.0})
    b = _run(tmp_path, "b", 2, {"nv": 1.0}, split="image_id,lesion_id,dx,split\nISIC_1,HAM_1,nv,val\n")
    with pytest.raises(ValueError, match="different splits"):
        join_runs([a, b], tmp_path / "joined")
    with pytest.raises(ValueError, match="at least two"):
        join_runs([a], tmp_path / "one")


def test_an_ensembles_gate_reads_the_first_networks_features_only():
    from inference.gate import Gate, GateError, ood_score
    from training.gate import fit_statistics

    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 50)
    first = rng.normal(size=(100, 8)) + labels[:, None]
    logits = rng.normal(size=(100, 7))
    stats = fit_statistics(first, labels, logits, shrinkage=0.1)
    gate = Gate(stats=stats, thresholds={"ood_score": 0, "luma_mean_min": 0, "clipped_fraction_max": 1, "blur_max": 1})

    second = rng.normal(size=(100, 8)) * 50  # the other network's features: they must not move the score
    joined = np.concatenate([first, second], axis=1)
    assert np.allclose(ood_score(joined, logits, stats), ood_score(first, logits, stats))
    assert gate.score(joined[0], logits[0]) == pytest.approx(gate.score(first[0], logits[0]), rel=1e-4)
    with pytest.raises(GateError, match="need 8"):
        gate.score(first[0, :4], logits[0])


def test_two_tiny_runs_joined_are_finalized_into_an_artifact_the_worker_code_serves(tmp_path):
    from inference.artifact import load_artifact
    from inference.batch import score_folder
    from inference.predictor import Predictor
    from tests.test_training_pipeline import make_ham_folder
    from training import finalize, train
    from training.ensemble import main as ensemble_main

    ham = make_ham_folder(tmp_path / "ham")
    common = ["--arch", "mobilenet_v2", "--data", str(ham), "--size", "64", "--head-epochs", "1", "--epochs", "1"]
    common += ["--batch-size", "16", "--base-weights", "none"]
    train.main([*common, "--run-dir", str(tmp_path / "a"), "--seed", "1"])
    train.main([*common, "--run-dir", str(tmp_path / "b"), "--seed", "2", "--split-csv", str(tmp_path / "a/split.csv")])
    ensemble_main(["--run-dir", str(tmp_path / "joined"), str(tmp_path / "a"), str(tmp_path / "b")])
    artifact_dir = finalize.main(
        [
            "--run-dir",
            str(tmp_path / "joined"),
            "--model-version",
            "tiny-ensemble",
            "--artifact-dir",
            str(tmp_path / "x"),
        ]
    )

    artifact = load_artifact(artifact_dir)
    assert len(artifact.manifest["training"]["ensemble_of"]) == 2
    assert "first of the ensemble's 2 networks" in artifact.manifest["gate"]["method"]
    report = (artifact.report_dir / "report.md").read_text()
    assert "An ensemble of 2 MobileNetV2 networks" in report and "Network 2:" in report
    predictor = Predictor(artifact)
    with Image.open(next((ham / "images").iterdir())) as photo:
        prediction = predictor.predict_image(photo.convert("RGB"))
    assert prediction.pooled_features.shape == (2560,)
    assert predictor.gate.stats["class_means"].shape[1] == 1280
    assert prediction.gate is not None and prediction.activation_map is not None
    assert score_folder(ham / "images", tmp_path / "predictions.csv", predictor) == len(
        list((ham / "images").iterdir())
    )

"""The evaluation command computes known metrics from hand-made files."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from inference.predictor import softmax
from inference.preprocessing import CLASSES
from training import evaluate as evaluate_command
from training.calibration import fit_temperature, fit_thresholds
from training.metrics import expected_calibration_error


def write_predictions(path, rows):
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_id", *CLASSES, "top_class", "refer"])
        for image_id, top, confidence, refer in rows:
            probabilities = {c: (1 - confidence) / 6 for c in CLASSES}
            probabilities[top] = confidence
            writer.writerow([image_id, *(probabilities[c] for c in CLASSES), top, refer])


@pytest.fixture
def hand_made(tmp_path):
    # Truth: 2 mel, 2 nv, 1 bcc. Predictions: mel right once, nv right twice, bcc called mel.
    rows = [
        ("a", "mel", 0.9, 1),  # mel, correct
        ("b", "nv", 0.6, 0),  # mel, wrong (missed melanoma, not referred)
        ("c", "nv", 0.8, 0),  # nv, correct
        ("d", "nv", 0.7, 1),  # nv, correct but referred (false alarm)
        ("e", "mel", 0.5, 1),  # bcc, wrong class but referred
    ]
    truth = {"a": "mel", "b": "mel", "c": "nv", "d": "nv", "e": "bcc"}
    predictions = tmp_path / "predictions.csv"
    write_predictions(predictions, rows)
    return predictions, truth


def test_evaluation_of_ham_style_labels_gives_the_known_figures(hand_made, tmp_path):
    predictions, truth = hand_made
    labels = tmp_path / "labels.csv"
    labels.write_text("image_id,dx\n" + "".join(f"{k},{v}\n" for k, v in truth.items()))
    out = tmp_path / "report"
    headline = evaluate_command.main(["--predictions", str(predictions), "--labels", str(labels), "--out", str(out)])

    assert headline["accuracy"] == pytest.approx(3 / 5, abs=1e-4)
    # recall: mel 1/2, nv 2/2, bcc 0/1 -> mean 0.5
    assert headline["balanced_accuracy"] == pytest.approx(0.5, abs=1e-4)
    # F1: mel P=1/2 R=1/2 -> 0.5; nv P=2/3 R=1 -> 0.8; bcc 0; other classes absent -> 0
    assert headline["macro_f1"] == pytest.approx((0.5 + 0.8) / 7, abs=1e-4)
    assert headline["melanoma_recall"] == pytest.approx(0.5, abs=1e-4)
    # malignant = a, b, e: referred a and e -> 2/3; benign c, d: d referred -> specificity 1/2
    assert headline["malignant_sensitivity"] == pytest.approx(2 / 3, abs=1e-4)
    assert headline["malignant_specificity"] == pytest.approx(1 / 2, abs=1e-4)
    report = json.loads((out / "metrics.json").read_text())
    assert report["metrics"]["confusion_matrix"][CLASSES.index("bcc")][CLASSES.index("mel")] == 1
    for name in ("report.md", "confusion_matrix.png", "roc_malignant.png", "reliability.png"):
        assert (out / name).stat().st_size > 0


def test_labels_naming_lesions_give_intervals_that_resample_whole_lesions(hand_made, tmp_path, monkeypatch):
    predictions, truth = hand_made
    lesion = {"a": "L1", "b": "L1", "c": "L2", "d": "L3", "e": "L4"}
    labels = tmp_path / "metadata.csv"
    labels.write_text("lesion_id,image_id,dx\n" + "".join(f"{lesion[k]},{k},{v}\n" for k, v in truth.items()))
    seen = {}
    real = evaluate_command.bootstrap_intervals

    def spy(*args, **kwargs):
        seen["groups"] = list(args[3])
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate_command, "bootstrap_intervals", spy)
    headline = evaluate_command.main(
        ["--predictions", str(predictions), "--labels", str(labels), "--out", str(tmp_path / "r")]
    )

    assert seen["groups"] == ["L1", "L1", "L2", "L3", "L4"]
    low, high = headline["intervals_95"]["balanced_accuracy"]
    assert low <= headline["balanced_accuracy"] <= high and low < high
    assert set(headline["intervals_95"]) >= {"macro_f1", "malignant_sensitivity", "malignant_specificity"}
    assert "gate_turned_back" not in headline  # these predictions have no gate column


def test_photos_the_gate_turned_back_are_counted(tmp_path):
    predictions = tmp_path / "predictions.csv"
    predictions.write_text(
        "image_id,"
        + ",".join(CLASSES)
        + ",top_class,refer,balanced_class,gate,gate_score\n"
        + "a,0,0,0,0,0.9,0.1,0,mel,1,mel,ok,0.1\n"
        + "b,0,0,0,0,0.9,0.1,0,mel,0,mel,blurred,0.2\n"
        + "c,0,0,0,0,0.1,0.9,0,nv,0,nv,not_skin,9.0\n"
        + "d,0,0,0,0,0.1,0.9,0,nv,0,nv,ok,0.3\n"
    )
    labels = tmp_path / "labels.csv"
    labels.write_text("image_id,dx\na,mel\nb,mel\nc,nv\nd,nv\n")
    headline = evaluate_command.main(
        ["--predictions", str(predictions), "--labels", str(labels), "--out", str(tmp_path / "r")]
    )
    assert headline["gate_turned_back"] == {"photos": 2, "share": 0.5, "reasons": {"blurred": 1, "not_skin": 1}}
    assert headline["melanoma_referred"] == 0.5  # the blurred melanoma counts as not referred


def test_isic_2018_ground_truth_is_read_like_ham_labels(hand_made, tmp_path):
    predictions, truth = hand_made
    labels = tmp_path / "isic.csv"
    header = ["image", "MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC"]
    with labels.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for image, dx in truth.items():
            writer.writerow([image, *("1.0" if column.lower() == dx else "0.0" for column in header[1:])])
    metrics = evaluate_command.evaluate_files(predictions, labels)
    assert metrics["accuracy"] == pytest.approx(3 / 5)


def test_predictions_without_labels_are_reported(hand_made, tmp_path):
    predictions, _ = hand_made
    labels = tmp_path / "labels.csv"
    labels.write_text("image_id,dx\na,mel\n")
    with pytest.raises(ValueError, match="4 predicted images have no label"):
        evaluate_command.evaluate_files(predictions, labels)


def test_expected_calibration_error_of_a_known_case():
    # Four predictions at confidence 0.8, three right: |0.75 - 0.8| = 0.05.
    probabilities = np.full((4, 7), 0.2 / 6)
    probabilities[:, 0] = 0.8
    labels = np.array([0, 0, 0, 1])
    assert expected_calibration_error(probabilities, labels)["ece"] == pytest.approx(0.05)


def test_temperature_scaling_recovers_the_temperature_that_made_the_data():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (4000, 7))
    true_probabilities = softmax(logits, 2.0)
    labels = np.array([rng.choice(7, p=p) for p in true_probabilities])
    assert fit_temperature(logits, labels) == pytest.approx(2.0, rel=0.1)


def test_thresholds_flag_the_target_share_of_malignant_images():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 7, 3000)
    logits = rng.normal(0, 1, (3000, 7))
    logits[np.arange(3000), labels] += 1.5
    probabilities = softmax(logits)
    thresholds = fit_thresholds(probabilities, labels, target_sensitivity=0.95)
    malignant = np.isin(labels, [CLASSES.index(c) for c in ("mel", "bcc", "akiec")])
    from training.calibration import flagged

    flags = flagged(probabilities, thresholds)
    assert flags[malignant].mean() >= 0.95
    assert (~flags[~malignant]).mean() > 0.05  # it does not simply refer everyone


def test_batch_refers_a_turned_back_photo_of_skin_that_reaches_a_threshold_but_never_one_not_of_skin(tmp_path):
    from types import SimpleNamespace

    from PIL import Image

    from inference.batch import score_folder
    from inference.gate import Decision
    from inference.predictor import Scores

    reasons = {"a": "not_a_lesion", "b": "blurred", "c": "not_skin", "d": "ok"}
    for name in reasons:
        Image.new("RGB", (40, 30), (200, 150, 120)).save(tmp_path / f"{name}.png")
    bcc_like = {c: 0.01 for c in CLASSES} | {"bcc": 0.45, "nv": 0.49}

    class Predictor:
        artifact = SimpleNamespace(thresholds={"mel": 0.1, "bcc": 0.1, "akiec": 0.1})
        calls = iter(sorted(reasons))

        def predict_image(self, image):
            reason = reasons[next(self.calls)]
            return Scores(bcc_like, "nv", None, None, 1.0, "bcc", None, Decision(reason, 1.0))

    out = tmp_path / "predictions.csv"
    assert score_folder(tmp_path, out, Predictor()) == 4
    with out.open(newline="") as handle:
        refer = {row["image_id"]: (row["refer"], row["gate"]) for row in csv.DictReader(handle)}
    assert refer == {"a": ("1", "not_a_lesion"), "b": ("1", "blurred"), "c": ("0", "not_skin"), "d": ("1", "ok")}

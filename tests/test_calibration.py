"""Class-wise calibration: prior correction, vector scaling, balanced_class, and the artifact round trip."""

from __future__ import annotations

import numpy as np
import pytest

from inference.calibration import Calibration, balanced_index, softmax
from inference.preprocessing import CLASSES
from training.calibration import fit_thresholds, fit_vector_scaling, log_prior_shift
from training.metrics import classwise_calibration, evaluate

PRIOR = np.array([0.033, 0.051, 0.11, 0.011, 0.111, 0.67, 0.014])
WEIGHTS = 1.0 / (len(PRIOR) * PRIOR)  # balanced class weights


def synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True logits with the class prior, the labels drawn from them, and what a weighted model says."""
    rng = np.random.default_rng(seed)
    true_logits = np.log(PRIOR) + rng.normal(0, 2.0, (n, len(PRIOR)))
    true_p = softmax(true_logits)
    labels = np.array([rng.choice(len(PRIOR), p=row) for row in true_p])
    weighted_logits = true_logits + np.log(WEIGHTS) + 3.0  # the shift the class weights cause, plus a constant
    return true_p, labels, weighted_logits


def test_prior_correction_recovers_the_true_probabilities_exactly():
    true_p, _, weighted_logits = synthetic(500)
    shifted = softmax(weighted_logits)
    assert np.abs(shifted - true_p).max() > 0.2  # the weighted model really is miscalibrated

    corrected = Calibration(log_prior_shift(list(WEIGHTS)), np.ones(7), np.zeros(7)).probabilities(weighted_logits)

    np.testing.assert_allclose(corrected, true_p, atol=1e-9)


def test_fitted_calibration_recovers_the_probabilities_and_the_prevalence():
    _, labels, weighted_logits = synthetic(20000, seed=1)
    true_p, _, test_logits = synthetic(5000, seed=2)

    calibration = fit_vector_scaling(weighted_logits, labels, log_prior_shift(list(WEIGHTS)))
    p = calibration.probabilities(test_logits)

    assert np.abs(p - true_p).mean() < 0.01
    assert np.abs(p.mean(axis=0) - true_p.mean(axis=0)).max() < 0.01


def test_vector_scaling_alone_learns_an_unknown_prior_shift():
    _, labels, weighted_logits = synthetic(20000, seed=3)
    true_p, _, test_logits = synthetic(5000, seed=4)

    calibration = fit_vector_scaling(weighted_logits, labels)  # no correction given: the biases must learn it

    assert np.abs(calibration.probabilities(test_logits) - true_p).mean() < 0.015


def test_classwise_ece_is_small_for_calibrated_and_large_for_shifted_probabilities():
    true_p, labels, weighted_logits = synthetic(20000, seed=5)

    calibrated = classwise_calibration(true_p, labels)
    shifted = classwise_calibration(softmax(weighted_logits), labels)

    assert calibrated["ece"] < 0.01 and calibrated["largest_prior_gap"] < 0.01
    assert shifted["ece"] > 0.05 and shifted["largest_prior_gap"] > 0.1


def test_balanced_class_divides_by_the_prevalence():
    p = np.array([[0.05, 0.05, 0.05, 0.02, 0.2, 0.62, 0.01]])

    assert CLASSES[int(np.argmax(p))] == "nv"
    assert CLASSES[int(balanced_index(p, PRIOR)[0])] == "df"  # 0.02 / 0.011 is the largest ratio


def test_evaluate_scores_balanced_class_and_reports_both_accuracies():
    p = np.array([[0.05, 0.05, 0.05, 0.02, 0.2, 0.62, 0.01]] * 2)
    labels = np.array([CLASSES.index("df"), CLASSES.index("nv")])

    result = evaluate(p, labels, prevalence=PRIOR)

    assert result["accuracy"] == 0.5 and result["top_class_accuracy"] == 0.5
    assert result["per_class"]["df"]["recall"] == 1.0 and result["per_class"]["nv"]["recall"] == 0.0


def test_thresholds_can_also_require_a_melanoma_share():
    rng = np.random.default_rng(6)
    labels = rng.integers(0, 7, 2000)
    p = softmax(rng.normal(0, 1, (2000, 7)) + 2.0 * np.eye(7)[labels])

    thresholds = fit_thresholds(p, labels, target_sensitivity=0.9, melanoma_target=0.97)

    mel = labels == CLASSES.index("mel")
    flagged_mel = [any(p[i, CLASSES.index(c)] >= t for c, t in thresholds.items()) for i in np.flatnonzero(mel)]
    assert np.mean(flagged_mel) >= 0.97


def test_calibration_round_trips_through_a_file(tmp_path):
    calibration = Calibration(np.log(WEIGHTS), np.linspace(0.5, 1.5, 7), np.linspace(-1, 1, 7))
    calibration.save(tmp_path / "calibration.npz")

    loaded = Calibration.load(tmp_path / "calibration.npz")

    logits = np.random.default_rng(7).normal(0, 3, (50, 7))
    np.testing.assert_array_equal(loaded.probabilities(logits), calibration.probabilities(logits))


def test_shipped_artifact_serves_its_fitted_calibration():
    from inference.artifact import load_artifact

    artifact = load_artifact()
    if artifact.manifest.get("format_version", 1) < 2:
        pytest.fail("the shipped artifact has no class-wise calibration")
    with np.load(artifact.path / artifact.manifest["calibration"]["file"]) as data:
        np.testing.assert_array_equal(artifact.calibration.scale, data["scale"])
        np.testing.assert_array_equal(artifact.calibration.bias, data["bias"])
    np.testing.assert_allclose(sum(artifact.manifest["training_prevalence"].values()), 1.0)

"""Validation figures of the serving choices (test-time views, calibration), for choosing them honestly.

    python -m training.compare_recipes --run-dir runs/mobilenet_v2 [--run-dir runs/other]

Reads only the validation split (``view-logits-val.npy`` from ``training.view_logits``).
Calibration and thresholds are fitted on four fifths of the validation images and measured
on the fifth left out, five times over (lesion groups are not split here: validation images
of one lesion may fall on both sides, which flatters every row alike). Prints one line per
run, view count and calibration.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.metrics import balanced_accuracy_score

from inference.calibration import Calibration, balanced_index, softmax
from inference.preprocessing import CLASSES
from training import metrics as metrics_module
from training.calibration import fit_temperature, fit_thresholds, fit_vector_scaling, flagged, log_prior_shift
from training.finalize import training_prevalence

FOLDS = 5


def cross_validated(logits, labels, shift, prevalence, method: str, target: float, melanoma_target: float | None):
    rng = np.random.default_rng(0)
    fold_of = rng.integers(0, FOLDS, len(labels))
    probabilities = np.zeros_like(logits, dtype=np.float64)
    refer = np.zeros(len(labels), dtype=bool)
    for fold in range(FOLDS):
        fit, held = fold_of != fold, fold_of == fold
        if method == "temperature":
            calibration = Calibration.temperature(fit_temperature(logits[fit], labels[fit]), len(CLASSES))
        elif method == "prior+temperature":
            t = fit_temperature(logits[fit] - shift, labels[fit])
            calibration = Calibration(shift, np.full(len(CLASSES), 1 / t), np.zeros(len(CLASSES)))
        else:
            calibration = fit_vector_scaling(logits[fit], labels[fit], shift)
        thresholds = fit_thresholds(calibration.probabilities(logits[fit]), labels[fit], target, melanoma_target)
        probabilities[held] = calibration.probabilities(logits[held])
        refer[held] = flagged(probabilities[held], thresholds)
    result = metrics_module.evaluate(probabilities, labels, refer=refer, prevalence=prevalence)
    return metrics_module.summary(result)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, action="append", required=True)
    parser.add_argument("--target-sensitivity", type=float, default=0.96)
    parser.add_argument("--melanoma-target", type=float, default=None)
    args = parser.parse_args(argv)
    keys = (
        "balanced_accuracy",
        "macro_f1",
        "top_class_accuracy",
        "melanoma_referred",
        "malignant_sensitivity",
        "malignant_specificity",
        "classwise_ece",
        "largest_prior_gap",
    )
    print("run | views | calibration | " + " | ".join(keys))
    for run_dir in args.run_dir:
        run = json.loads((run_dir / "run.json").read_text())
        per_view = np.load(run_dir / "view-logits-val.npy")
        labels = np.load(run_dir / "labels-val.npy")
        shift = log_prior_shift(run["class_weights"])
        prevalence = training_prevalence(run_dir)
        uncalibrated = metrics_module.classwise_calibration(softmax(per_view[:, 0]), labels)
        gap = uncalibrated["largest_prior_gap"]
        print(f"{run_dir.name} | 1 | none | class-wise ECE {uncalibrated['ece']:.4f}, gap {gap:.4f}")
        raw = balanced_index(softmax(per_view[:, 0]), np.full(len(CLASSES), 1.0))
        raw_balanced = balanced_accuracy_score(labels, raw)
        print(f"{run_dir.name} | 1 | none | balanced accuracy of the raw argmax {raw_balanced:.4f}")
        for views in [v for v in (1, 2, 4, 8) if v <= per_view.shape[1]]:
            logits = per_view[:, :views].mean(axis=1)
            for method in ("temperature", "prior+temperature", "prior+vector"):
                row = cross_validated(
                    logits, labels, shift, prevalence, method, args.target_sensitivity, args.melanoma_target
                )
                print(f"{run_dir.name} | {views} | {method} | " + " | ".join(str(row[k]) for k in keys), flush=True)


if __name__ == "__main__":
    main()

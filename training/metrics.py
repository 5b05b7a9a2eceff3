"""Evaluation metrics for a seven-class lesion classifier with a malignant triage rule."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)

from inference.preprocessing import CLASSES, MALIGNANT_CLASSES
from training.calibration import flagged

ECE_BINS = 15


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> dict:
    """Top-label ECE with equal-width confidence bins, and the bins for a reliability diagram."""
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == labels).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    rows, ece = [], 0.0
    for low, high in zip(edges[:-1], edges[1:], strict=False):
        inside = (confidence > low) & (confidence <= high)
        if not inside.any():
            continue
        accuracy, mean_confidence = correct[inside].mean(), confidence[inside].mean()
        ece += inside.mean() * abs(accuracy - mean_confidence)
        rows.append(
            {
                "low": float(low),
                "high": float(high),
                "count": int(inside.sum()),
                "accuracy": float(accuracy),
                "confidence": float(mean_confidence),
            }
        )
    return {"ece": float(ece), "bins": rows}


def malignant_score(probabilities: np.ndarray) -> np.ndarray:
    """Probability that the lesion is malignant: the sum over mel, bcc and akiec."""
    return probabilities[:, [CLASSES.index(c) for c in MALIGNANT_CLASSES]].sum(axis=1)


def evaluate(
    probabilities: np.ndarray,
    labels: np.ndarray,
    thresholds: dict[str, float] | None = None,
    refer: np.ndarray | None = None,
) -> dict:
    """Every figure of the report, from calibrated probabilities and integer labels.

    The triage rule is given either as ``thresholds`` or directly as the ``refer`` flags.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=int)
    predicted = probabilities.argmax(axis=1)
    indices = list(range(len(CLASSES)))
    precision, recall, f1, support = precision_recall_fscore_support(labels, predicted, labels=indices, zero_division=0)
    result = {
        "images": int(len(labels)),
        "accuracy": float(accuracy_score(labels, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(labels, predicted))
        if len(set(labels)) > 1
        else float(recall[labels[0]]),
        "macro_f1": float(f1_score(labels, predicted, labels=indices, average="macro", zero_division=0)),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(CLASSES)
        },
        "confusion_matrix": confusion_matrix(labels, predicted, labels=indices).tolist(),
        "calibration": expected_calibration_error(probabilities, labels),
    }
    is_malignant = np.isin(labels, [CLASSES.index(c) for c in MALIGNANT_CLASSES])
    score = malignant_score(probabilities)
    triage = {"malignant_images": int(is_malignant.sum()), "benign_images": int((~is_malignant).sum())}
    if is_malignant.any() and (~is_malignant).any():
        triage["roc_auc"] = float(roc_auc_score(is_malignant, score))
        fpr, tpr, _ = roc_curve(is_malignant, score)
        triage["roc_curve"] = {"fpr": fpr.tolist(), "tpr": tpr.tolist()}
    if refer is None and thresholds:
        refer = flagged(probabilities, thresholds)
    if thresholds:
        triage["thresholds"] = thresholds
    if refer is not None:
        refer = np.asarray(refer, dtype=bool)
        triage["sensitivity"] = float(refer[is_malignant].mean()) if is_malignant.any() else None
        triage["specificity"] = float((~refer[~is_malignant]).mean()) if (~is_malignant).any() else None
        triage["referred_fraction"] = float(refer.mean())
    result["malignant_vs_benign"] = triage
    return result


def summary(metrics: dict) -> dict:
    """The headline figures kept in the artifact manifest."""
    triage = metrics["malignant_vs_benign"]
    return {
        "images": metrics["images"],
        "accuracy": round(metrics["accuracy"], 4),
        "balanced_accuracy": round(metrics["balanced_accuracy"], 4),
        "macro_f1": round(metrics["macro_f1"], 4),
        "melanoma_recall": round(metrics["per_class"]["mel"]["recall"], 4),
        "malignant_sensitivity": _round(triage.get("sensitivity")),
        "malignant_specificity": _round(triage.get("specificity")),
        "malignant_roc_auc": _round(triage.get("roc_auc")),
        "ece": round(metrics["calibration"]["ece"], 4),
    }


def _round(value):
    return None if value is None else round(value, 4)

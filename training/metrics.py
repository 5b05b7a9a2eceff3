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


def classwise_calibration(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> dict:
    """One-vs-rest calibration of every class: ECE with equal-width bins, its reliability bins,
    and the mean predicted probability against the class' prevalence.

    ``ece`` is the mean of the seven one-vs-rest ECEs (class-wise ECE, Kull et al. 2019).
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=int)
    edges = np.linspace(0.0, 1.0, bins + 1)
    per_class = {}
    for index, name in enumerate(CLASSES):
        p = probabilities[:, index]
        truth = (labels == index).astype(float)
        ece, rows = 0.0, []
        for low, high in zip(edges[:-1], edges[1:], strict=False):
            inside = (p > low) & (p <= high) if low > 0 else (p >= low) & (p <= high)
            if not inside.any():
                continue
            frequency, mean_p = truth[inside].mean(), p[inside].mean()
            ece += inside.mean() * abs(frequency - mean_p)
            rows.append(
                {
                    "low": float(low),
                    "high": float(high),
                    "count": int(inside.sum()),
                    "frequency": float(frequency),
                    "confidence": float(mean_p),
                }
            )
        per_class[name] = {
            "ece": float(ece),
            "mean_probability": float(p.mean()),
            "prevalence": float(truth.mean()),
            "bins": rows,
        }
    return {
        "ece": float(np.mean([c["ece"] for c in per_class.values()])),
        "largest_prior_gap": float(max(abs(c["mean_probability"] - c["prevalence"]) for c in per_class.values())),
        "per_class": per_class,
    }


def malignant_score(probabilities: np.ndarray) -> np.ndarray:
    """Probability that the lesion is malignant: the sum over mel, bcc and akiec."""
    return probabilities[:, [CLASSES.index(c) for c in MALIGNANT_CLASSES]].sum(axis=1)


def evaluate(
    probabilities: np.ndarray,
    labels: np.ndarray,
    thresholds: dict[str, float] | None = None,
    refer: np.ndarray | None = None,
    prevalence: np.ndarray | None = None,
    balanced: np.ndarray | None = None,
) -> dict:
    """Every figure of the report, from calibrated probabilities and integer labels.

    The triage rule is given either as ``thresholds`` or directly as the ``refer`` flags.
    Per-class figures (balanced accuracy, macro F1, recall, the confusion matrix) score
    ``balanced_class``: the argmax of probability / training ``prevalence``, or the
    ``balanced`` indices given directly; ``accuracy`` scores it too and ``top_class_accuracy``
    scores the plain argmax. Without either, both are the plain argmax.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=int)
    top = probabilities.argmax(axis=1)
    if balanced is not None:
        predicted = np.asarray(balanced, dtype=int)
    elif prevalence is not None:
        predicted = (probabilities / np.asarray(prevalence)).argmax(axis=1)
    else:
        predicted = top
    indices = list(range(len(CLASSES)))
    precision, recall, f1, support = precision_recall_fscore_support(labels, predicted, labels=indices, zero_division=0)
    result = {
        "images": int(len(labels)),
        "accuracy": float(accuracy_score(labels, predicted)),
        "top_class_accuracy": float(accuracy_score(labels, top)),
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
        "classwise_calibration": classwise_calibration(probabilities, labels),
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
        is_melanoma = labels == CLASSES.index("mel")
        triage["melanoma_referred"] = float(refer[is_melanoma].mean()) if is_melanoma.any() else None
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
        "top_class_accuracy": _round(metrics.get("top_class_accuracy")),
        "balanced_accuracy": round(metrics["balanced_accuracy"], 4),
        "macro_f1": round(metrics["macro_f1"], 4),
        "melanoma_recall": round(metrics["per_class"]["mel"]["recall"], 4),
        "malignant_sensitivity": _round(triage.get("sensitivity")),
        "malignant_specificity": _round(triage.get("specificity")),
        "malignant_roc_auc": _round(triage.get("roc_auc")),
        "ece": round(metrics["calibration"]["ece"], 4),
        "melanoma_referred": _round(triage.get("melanoma_referred")),
        "classwise_ece": _round(metrics.get("classwise_calibration", {}).get("ece")),
        "largest_prior_gap": _round(metrics.get("classwise_calibration", {}).get("largest_prior_gap")),
    }


def _round(value):
    return None if value is None else round(value, 4)


INTERVAL_FIGURES = (
    "balanced_accuracy",
    "macro_f1",
    "melanoma_referred",
    "malignant_sensitivity",
    "malignant_specificity",
)


def bootstrap_intervals(
    labels: np.ndarray,
    predicted: np.ndarray,
    refer: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    draws: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Percentile bootstrap intervals of the headline figures, resampling whole lesions.

    Photos of one lesion are not independent, so ``groups`` (one lesion id per photo) are
    drawn with replacement and every photo of a drawn lesion comes along; without groups each
    photo is its own. ``predicted`` are the ``balanced_class`` indices. With a dozen photos of
    some classes, these intervals say how far a figure can move on another sample of the same
    size: a figure and a target inside one interval are not told apart by this split.
    """
    labels = np.asarray(labels, dtype=int)
    predicted = np.asarray(predicted, dtype=int)
    from training.operating_point import lesion_bootstrap_weights

    # Weight of each photo in each draw: how many times its lesion was drawn.
    weights = lesion_bootstrap_weights(groups, len(labels), draws, seed)
    k = len(CLASSES)
    truth = np.eye(k)[labels]  # (N, k)
    said = np.eye(k)[predicted]
    hits = weights @ (truth * said)  # (draws, k) correctly named photos per class
    support = weights @ truth
    named = weights @ said
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = hits / support
        precision = np.where(named > 0, hits / named, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = support > 0
    figures = {
        "balanced_accuracy": np.nanmean(np.where(present, recall, np.nan), axis=1),
        # as sklearn's macro F1 over the seven classes: a class neither present nor named scores 0
        "macro_f1": np.where(present | (named > 0), np.nan_to_num(f1), 0.0).mean(axis=1),
    }
    if refer is not None:
        refer = np.asarray(refer, dtype=bool)
        malignant = np.isin(labels, [CLASSES.index(c) for c in MALIGNANT_CLASSES])
        melanoma = labels == CLASSES.index("mel")

        def share(mask, flagged_mask):
            total = weights @ mask.astype(float)
            with np.errstate(invalid="ignore", divide="ignore"):
                return (weights @ (mask & flagged_mask).astype(float)) / total

        figures["melanoma_referred"] = share(melanoma, refer)
        figures["malignant_sensitivity"] = share(malignant, refer)
        figures["malignant_specificity"] = share(~malignant, ~refer)
    tail = (1 - level) / 2 * 100
    return {
        name: [round(float(np.nanpercentile(values, tail)), 4), round(float(np.nanpercentile(values, 100 - tail)), 4)]
        for name, values in figures.items()
        if np.isfinite(values).any()
    }

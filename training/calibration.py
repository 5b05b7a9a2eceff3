"""Temperature scaling and triage thresholds, fitted on the validation split (numpy only)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

from inference.predictor import softmax
from inference.preprocessing import CLASSES, MALIGNANT_CLASSES
from inference.triage import flagged_classes


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    probabilities = softmax(logits, temperature)
    return float(-np.mean(np.log(probabilities[np.arange(len(labels)), labels] + 1e-12)))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises validation NLL (Guo et al. 2017)."""
    result = minimize_scalar(
        lambda log_t: negative_log_likelihood(logits, labels, float(np.exp(log_t))),
        bounds=(np.log(0.05), np.log(20.0)),
        method="bounded",
    )
    return float(np.exp(result.x))


def flagged(probabilities: np.ndarray, thresholds: dict[str, float]) -> np.ndarray:
    """True where any malignant class reaches its threshold: the case goes to a specialist."""
    return np.array(
        [bool(flagged_classes(dict(zip(CLASSES, row, strict=False)), thresholds)) for row in probabilities], dtype=bool
    )


def fit_thresholds(probabilities: np.ndarray, labels: np.ndarray, target_sensitivity: float = 0.95) -> dict[str, float]:
    """Per-class thresholds for mel, bcc and akiec that flag ``target_sensitivity`` of malignant images.

    Each class' threshold is the same quantile of its own probability among validation
    images of that class; the quantile is the largest (fewest false alarms) at which the
    union of the three rules still reaches the target sensitivity on all malignant images.
    """
    malignant_idx = [CLASSES.index(name) for name in MALIGNANT_CLASSES]
    is_malignant = np.isin(labels, malignant_idx)
    if not is_malignant.any():
        raise ValueError("the validation split holds no malignant images")

    def thresholds_at(quantile: float) -> dict[str, float]:
        result = {}
        for name, idx in zip(MALIGNANT_CLASSES, malignant_idx, strict=False):
            own = probabilities[labels == idx, idx]
            result[name] = float(np.quantile(own, quantile, method="lower")) if len(own) else 0.5
        return result

    best = thresholds_at(0.0)
    for quantile in np.linspace(0.0, 0.5, 501):
        candidate = thresholds_at(float(quantile))
        sensitivity = flagged(probabilities[is_malignant], candidate).mean()
        if sensitivity >= target_sensitivity:
            best = candidate
        else:
            break
    return best

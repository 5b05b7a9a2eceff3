"""Calibration and triage thresholds, fitted on the validation split (numpy only)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize, minimize_scalar

from inference.calibration import Calibration
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


def log_prior_shift(class_weights: dict[str, float] | list[float]) -> np.ndarray:
    """The log of the factor by which class weights multiply each class' odds during training.

    Minimising a loss weighted by ``w_k`` is minimising the unweighted loss on data where
    class k is ``w_k`` times as common, so the logits learn ``log p_k + log w_k`` (up to a
    constant); subtracting ``log w_k`` restores the true prior (Saerens et al. 2002).
    """
    if isinstance(class_weights, dict):
        class_weights = [class_weights[name] for name in CLASSES]
    return np.log(np.asarray(class_weights, dtype=np.float64))


def fit_vector_scaling(
    logits: np.ndarray, labels: np.ndarray, shift: np.ndarray | None = None, l2: float = 1e-3
) -> Calibration:
    """Prior correction, then a scale and a bias per class minimising validation NLL.

    Starts from the temperature fitted to the prior-corrected logits; a small L2 penalty
    keeps the scales near that temperature and the biases near zero, so classes with a
    dozen validation images do not get a scale fitted to their noise.
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=int)
    k = logits.shape[1]
    shift = np.zeros(k) if shift is None else np.asarray(shift, dtype=np.float64)
    corrected = logits - shift
    base = 1.0 / fit_temperature(corrected, labels)
    rows = np.arange(len(labels))
    one_hot = np.eye(k)[labels]

    def objective(params: np.ndarray) -> tuple[float, np.ndarray]:
        scale, bias = params[:k], params[k:]
        z = scale * corrected + bias
        z = z - z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        nll = -log_p[rows, labels].mean()
        residual = (np.exp(log_p) - one_hot) / len(labels)
        grad_scale = (residual * corrected).sum(axis=0) + 2 * l2 * (scale - base)
        grad_bias = residual.sum(axis=0) + 2 * l2 * bias
        penalty = l2 * (((scale - base) ** 2).sum() + (bias**2).sum())
        return nll + penalty, np.concatenate([grad_scale, grad_bias])

    start = np.concatenate([np.full(k, base), np.zeros(k)])
    result = minimize(objective, start, jac=True, method="L-BFGS-B")
    return Calibration(log_prior_shift=shift, scale=result.x[:k], bias=result.x[k:])


def flagged(probabilities: np.ndarray, thresholds: dict[str, float]) -> np.ndarray:
    """True where any malignant class reaches its threshold: the case goes to a specialist."""
    return np.array(
        [bool(flagged_classes(dict(zip(CLASSES, row, strict=False)), thresholds)) for row in probabilities], dtype=bool
    )


def fit_thresholds(
    probabilities: np.ndarray,
    labels: np.ndarray,
    target_sensitivity: float = 0.95,
    melanoma_target: float | None = None,
) -> dict[str, float]:
    """Per-class thresholds for mel, bcc and akiec that flag ``target_sensitivity`` of malignant images.

    Each class' threshold is the same quantile of its own probability among validation
    images of that class; the quantile is the largest (fewest false alarms) at which the
    union of the three rules still reaches the target sensitivity on all malignant images
    (and, with ``melanoma_target``, still flags that share of the melanoma images).
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
        melanoma_ok = True
        if melanoma_target is not None:
            is_melanoma = labels == CLASSES.index("mel")
            melanoma_ok = (
                not is_melanoma.any() or flagged(probabilities[is_melanoma], candidate).mean() >= melanoma_target
            )
        if sensitivity >= target_sensitivity and melanoma_ok:
            best = candidate
        else:
            break
    return best

"""Class-wise calibration: the one formula that turns logits into probabilities, for serving and fitting.

A network trained with class weights ``w_k`` learns a prior shifted by ``w_k``: its softmax
says a class ``w_k`` times more often than the class occurs. The calibration first removes
that shift (``z - log w``), then applies vector scaling (a scale and a bias per class,
Guo et al. 2017) fitted on the validation split, so every class' probability, not only the
top one, means what it says.

Imports neither TensorFlow nor Django.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

METHOD = "prior-corrected vector scaling"


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Temperature-scaled probabilities over the last axis."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class Calibration:
    """``softmax(scale * (logits - log_prior_shift) + bias)``, one entry per class."""

    log_prior_shift: np.ndarray
    scale: np.ndarray
    bias: np.ndarray

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        z = np.asarray(logits, dtype=np.float64) - self.log_prior_shift
        return softmax(self.scale * z + self.bias)

    def save(self, path: Path) -> None:
        np.savez(
            path,
            log_prior_shift=self.log_prior_shift.astype(np.float64),
            scale=self.scale.astype(np.float64),
            bias=self.bias.astype(np.float64),
        )

    @classmethod
    def load(cls, path: Path) -> Calibration:
        with np.load(path) as data:
            return cls(
                log_prior_shift=np.asarray(data["log_prior_shift"], dtype=np.float64),
                scale=np.asarray(data["scale"], dtype=np.float64),
                bias=np.asarray(data["bias"], dtype=np.float64),
            )

    @classmethod
    def temperature(cls, temperature: float, classes: int) -> Calibration:
        """Plain temperature scaling (the format of models exported before class-wise calibration)."""
        return cls(np.zeros(classes), np.full(classes, 1.0 / temperature), np.zeros(classes))


def balanced_index(probabilities: np.ndarray, prevalence: np.ndarray) -> np.ndarray:
    """The class a photo resembles most relative to how common it is: argmax of p / prevalence."""
    return np.argmax(np.asarray(probabilities) / np.asarray(prevalence), axis=-1)

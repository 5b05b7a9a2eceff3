"""Bootstrap intervals of the headline figures (training.metrics.bootstrap_intervals)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score

from inference.preprocessing import CLASSES
from training.metrics import bootstrap_intervals


def _sample(n=700, seed=0, right=0.7):
    rng = np.random.default_rng(seed)
    labels = rng.choice(len(CLASSES), n, p=[0.04, 0.05, 0.11, 0.02, 0.11, 0.65, 0.02])
    predicted = np.where(rng.random(n) < right, labels, rng.integers(0, len(CLASSES), n))
    refer = np.isin(predicted, [0, 1, 4]) | (rng.random(n) < 0.1)
    return labels, predicted, refer


def test_the_intervals_hold_the_point_figures_and_a_perfect_answer_has_no_width():
    labels, predicted, refer = _sample()
    intervals = bootstrap_intervals(labels, predicted, refer)
    point = {
        "balanced_accuracy": balanced_accuracy_score(labels, predicted),
        "macro_f1": f1_score(labels, predicted, labels=range(len(CLASSES)), average="macro", zero_division=0),
    }
    for name, value in point.items():
        low, high = intervals[name]
        assert low < value < high and high - low < 0.2, (name, value, intervals[name])
    malignant = np.isin(labels, [0, 1, 4])
    low, high = intervals["malignant_sensitivity"]
    assert low < refer[malignant].mean() < high

    perfect = bootstrap_intervals(labels, labels, malignant)
    assert perfect["balanced_accuracy"] == [1.0, 1.0] and perfect["malignant_specificity"] == [1.0, 1.0]


def test_photos_of_one_lesion_are_resampled_together():
    labels, predicted, refer = _sample(n=300)
    # Ten photos of each lesion, all named alike: ten times the photos, no more information.
    copies = lambda a: np.repeat(a, 10)  # noqa: E731
    lesions = np.repeat(np.arange(300), 10)
    by_lesion = bootstrap_intervals(copies(labels), copies(predicted), copies(refer), groups=lesions)
    by_photo = bootstrap_intervals(copies(labels), copies(predicted), copies(refer))
    single = bootstrap_intervals(labels, predicted, refer)

    def width(intervals):
        return intervals["balanced_accuracy"][1] - intervals["balanced_accuracy"][0]

    assert width(by_lesion) == pytest.approx(width(single), rel=0.25)
    assert width(by_photo) < 0.6 * width(by_lesion)  # treating the copies as independent would flatter

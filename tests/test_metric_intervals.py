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


def test_the_lesions_of_a_split_follow_the_order_of_its_logits_not_of_its_split_file(tmp_path):
    from training.finalize import split_lesions

    data = tmp_path / "ham"
    data.mkdir()
    # The metadata's order (which the logits follow) differs from split.csv's (sorted by image id).
    (data / "HAM10000_metadata.csv").write_text(
        "lesion_id,image_id,dx\nHAM_3,ISIC_3,mel\nHAM_1,ISIC_1,nv\nHAM_9,ISIC_9,bcc\nHAM_2,ISIC_2,nv\n"
    )
    run = tmp_path / "run"
    run.mkdir()
    (run / "split.csv").write_text(
        "image_id,lesion_id,dx,split\nISIC_1,HAM_1,nv,test\nISIC_2,HAM_2,nv,train\nISIC_3,HAM_3,mel,test\n"
        "ISIC_9,HAM_9,bcc,test\n"
    )
    lesions, labels = split_lesions(run, data, "test")
    assert list(lesions) == ["HAM_3", "HAM_1", "HAM_9"]
    assert [CLASSES[i] for i in labels] == ["mel", "nv", "bcc"]


def test_a_photo_without_a_lesion_id_is_its_own_lesion(tmp_path):
    from training.evaluate import read_lesions

    labels = tmp_path / "isic.csv"
    labels.write_text(
        "image,lesion_id,MEL,NV,BCC,AKIEC,BKL,DF,VASC\na,L1,1,0,0,0,0,0,0\nb,,0,1,0,0,0,0,0\nc,,0,1,0,0,0,0,0\n"
    )
    assert read_lesions(labels) == {"a": "L1", "b": "b", "c": "c"}

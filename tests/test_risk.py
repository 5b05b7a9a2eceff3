"""The case risk rule and its plain-language summary (inference/risk.py)."""

from __future__ import annotations

import pytest

from inference.preprocessing import CLASSES
from inference.risk import HIGH, LOW, MODERATE, ImageResult, case_risk, percent

THRESHOLDS = {"mel": 0.12, "bcc": 0.2, "akiec": 0.25}


def probabilities(**overrides: float) -> dict[str, float]:
    rest = (1.0 - sum(overrides.values())) / (len(CLASSES) - len(overrides))
    return {name: overrides.get(name, rest) for name in CLASSES}


def assess(*photos, versions=("v7",)):
    return case_risk(
        [ImageResult(number, p) for number, p in enumerate(photos, start=1)],
        thresholds=THRESHOLDS,
        model_versions=versions,
    )


@pytest.mark.parametrize("code", ["mel", "bcc", "akiec"])
def test_any_malignant_class_at_its_threshold_on_any_photo_is_high(code):
    result = assess(probabilities(nv=0.9), probabilities(nv=0.7, **{code: THRESHOLDS[code]}))

    assert result.level == HIGH
    assert result.flagged == ((2, code),)
    assert "referred to a specialist" in result.summary


def test_benign_classes_never_make_a_case_high_however_likely():
    assert assess(probabilities(bkl=0.6, df=0.2)).level != HIGH


def test_near_a_threshold_is_moderate_and_well_below_is_low():
    assert assess(probabilities(mel=0.5 * THRESHOLDS["mel"], nv=0.8)).level == MODERATE
    assert assess(probabilities(mel=0.01, bcc=0.01, akiec=0.01)).level == LOW


def test_summary_always_says_decision_support_not_a_diagnosis_and_names_the_model():
    for photos in ([probabilities(nv=0.97)], [probabilities(mel=0.5)], [None]):
        summary = assess(*photos).summary
        assert "Decision support from model v7, not a diagnosis" in summary


def test_summary_shows_the_probability_against_its_threshold():
    summary = assess(probabilities(mel=0.3, nv=0.6)).summary
    assert "melanoma probability 30% (referral threshold 12%)" in summary


def test_summary_says_when_the_model_is_uncertain():
    assert "uncertain" in assess(probabilities(nv=0.4, bkl=0.35)).summary
    assert "uncertain" not in assess(probabilities(nv=0.9)).summary


def test_low_result_says_it_does_not_rule_cancer_out():
    assert "does not rule cancer out" in assess(probabilities(nv=0.97)).summary


def test_photos_that_could_not_be_analysed_are_named():
    result = assess(probabilities(nv=0.95), None)
    assert result.level == LOW
    assert "Photo 2 could not be analysed" in result.summary


def test_no_analysed_photo_gives_no_level():
    result = assess(None, None)
    assert result.level == "" and "No photo could be analysed" in result.summary


def test_percentages_never_round_to_certainty():
    assert percent(0.999999) == "over 99%" and percent(0.0001) == "under 1%" and percent(0.5) == "50%"

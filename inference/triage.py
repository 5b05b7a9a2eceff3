"""The referral rule, one definition for training, batch scoring and the worker."""

from __future__ import annotations

from collections.abc import Mapping


def flagged_classes(probabilities: Mapping[str, float], thresholds: Mapping[str, float]) -> list[str]:
    """The malignant classes whose probability reaches its triage threshold (empty: no referral)."""
    return [name for name, threshold in thresholds.items() if probabilities[name] >= threshold]

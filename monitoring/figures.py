"""The model's field figures from the specialists' answers: pure arithmetic, no database.

Each answered case is an :class:`Answer`: what the model decided (referred: a high risk), what
the specialist diagnosed, and the case's weight in the estimate. The cases the model referred
are all answered in time (a census, weight 1); the cases it did not refer are seen only through
the audit sample, each weighing the inverse of the rate it was drawn at (a Horvitz-Thompson
estimate), so that an audited miss stands for the misses nobody looked at. Cases referred by
their 7-point checklist before the model's result are a census too (weight 1). Cases the clinic
referred itself are the clinic's choice, not a sample, and cases with no model result (no photo
the model could read) have no decision to judge: both are left out and counted apart.

- **Sensitivity**: of the malignant answers (melanoma, basal cell carcinoma, actinic keratosis /
  intraepithelial carcinoma, squamous cell carcinoma), the weighted share the model referred.
- **Specificity**: of the other answers, the weighted share it did not refer.
- **Agreement**: the weighted share whose diagnosis is the model's most likely class.

Each estimate has a **95% interval**: a Wilson score interval on the design-effective number
of answers (Korn and Graubard's approach for weighted proportions): the estimate's variance is
the linearised variance of a weighted ratio, and the effective number is the one for which a
plain binomial share would have that variance (Kish's effective size when every answer agrees,
where the linearised variance is zero). With equal weights it is the ordinary Wilson interval.
With an audit sample, few audited answers make that variance too small (none audited: zero),
so the interval is widened to hold the share with the audited count of each outcome at its
exact Poisson (Garwood) 97.5% upper limit, each audited answer weighing the audit's weight: no
audited miss in 100 malignant answers at a 5% audit does not read "sensitivity 100%, 96 to
100%". Simulated coverage of the 95% interval is 0.93 to 0.97 for 30 to 3,000 malignant answers
at audit rates of 5% to 50% (tests/test_field_figures.py runs one such check).
Fewer than ``MIN_ANSWERS`` answers read "not enough answers yet", never 0%.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

MIN_ANSWERS = 10
Z_95 = 1.959963984540054


@dataclass(frozen=True)
class Answer:
    """One answered case, as the field figures see it."""

    model_version: str
    referred: bool  # the model's decision: a high risk
    malignant: bool  # the specialist's diagnosis in force
    agrees: bool | None  # the diagnosis is the model's most likely class (None: no class to compare)
    weight: float  # 1, or 1 / sample rate for an audited case
    audited: bool = False
    dermoscopic: bool = False  # a dermoscopic photo gave the result
    skin_type: str = ""  # Fitzpatrick I-VI, "" when not recorded
    clinic_id: int | None = None
    clinic: str = ""


@dataclass(frozen=True)
class Estimate:
    """A weighted share with its 95% interval; value None when there are too few answers."""

    value: float | None
    low: float | None
    high: float | None
    answers: int  # answers in the denominator (unweighted)
    weighted: float  # their summed weight: the cases they stand for

    @property
    def enough(self) -> bool:
        return self.value is not None

    def as_dict(self) -> dict:
        return {
            "value": _round(self.value),
            "low": _round(self.low),
            "high": _round(self.high),
            "answers": self.answers,
            "weighted": round(self.weighted, 2),
            "enough": self.enough,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def wilson(p: float, n: float, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a share ``p`` of ``n`` (which may be fractional)."""
    if n <= 0:
        return 0.0, 1.0
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def poisson_upper(count: int, tail: float = 0.025) -> float:
    """The exact (Garwood) upper limit of a Poisson mean after ``count`` events: P(X <= count) = tail."""

    def cdf(mean: float) -> float:
        term = math.exp(-mean)
        total = term
        for k in range(1, count + 1):
            term *= mean / k
            total += term
        return total

    low, high = 0.0, count + 10 + 10 * math.sqrt(count + 1)
    for _ in range(80):
        middle = (low + high) / 2
        if cdf(middle) > tail:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def weighted_share(
    outcomes: Sequence[bool],
    weights: Sequence[float],
    *,
    audit_weight: float | None = None,
    min_answers: int = MIN_ANSWERS,
) -> Estimate:
    """The weighted share of true ``outcomes`` with its 95% interval (see the module's docstring).

    ``audit_weight``: the weight an audited answer carries (1 / the audit rate); answers with a
    weight above 1 are the audited ones.
    """
    n = len(outcomes)
    total = float(sum(weights))
    if n < max(1, min_answers) or total <= 0:
        return Estimate(None, None, None, n, total)
    p = sum(w for y, w in zip(outcomes, weights, strict=True) if y) / total
    if n > 1:
        variance = (
            n
            / (n - 1)
            * sum((w * ((1.0 if y else 0.0) - p)) ** 2 for y, w in zip(outcomes, weights, strict=True))
            / total**2
        )
    else:
        variance = 0.0
    if variance > 0 and 0 < p < 1:
        effective = p * (1 - p) / variance
    else:
        effective = total**2 / sum(w * w for w in weights)  # Kish
    effective = min(max(effective, 1.0), float(n))
    low, high = wilson(p, effective)
    if audit_weight is not None and audit_weight > 1:
        low, high = _audit_widened(outcomes, weights, audit_weight, low, high)
    return Estimate(p, min(low, p), max(high, p), n, total)


def _audit_widened(outcomes, weights, audit_weight: float, low: float, high: float) -> tuple[float, float]:
    """Hold the share with each outcome's audited count at its Poisson upper limit."""
    yes = sum(w for y, w in zip(outcomes, weights, strict=True) if y)
    no = sum(w for y, w in zip(outcomes, weights, strict=True) if not y)
    audited_yes = [w for y, w in zip(outcomes, weights, strict=True) if y and w > 1]
    audited_no = [w for y, w in zip(outcomes, weights, strict=True) if not y and w > 1]
    most_no = no - sum(audited_no) + audit_weight * poisson_upper(len(audited_no))
    most_yes = yes - sum(audited_yes) + audit_weight * poisson_upper(len(audited_yes))
    return min(low, yes / (yes + most_no)), max(high, most_yes / (most_yes + no))


def audit_weight_of(answers: Iterable[Answer]) -> float | None:
    """The largest weight an audited answer carries (the lowest audit rate), None without an audit."""
    return max((a.weight for a in answers if a.audited), default=None)


def sensitivity(answers: Sequence[Answer], *, audit_weight: float | None = None, **kwargs) -> Estimate:
    malignant = [a for a in answers if a.malignant]
    weight = audit_weight or audit_weight_of(answers)
    return weighted_share([a.referred for a in malignant], [a.weight for a in malignant], audit_weight=weight, **kwargs)


def specificity(answers: Sequence[Answer], *, audit_weight: float | None = None, **kwargs) -> Estimate:
    benign = [a for a in answers if not a.malignant]
    weight = audit_weight or audit_weight_of(answers)
    return weighted_share([not a.referred for a in benign], [a.weight for a in benign], audit_weight=weight, **kwargs)


def agreement(answers: Sequence[Answer], *, audit_weight: float | None = None, **kwargs) -> Estimate:
    compared = [a for a in answers if a.agrees is not None]
    weight = audit_weight or audit_weight_of(answers)
    return weighted_share(
        [bool(a.agrees) for a in compared], [a.weight for a in compared], audit_weight=weight, **kwargs
    )


def summary(answers: Sequence[Answer], *, audit_weight: float | None = None) -> dict:
    """The three figures and the counts behind them.

    ``audit_weight``: the audit's weight for the whole version, so that a group with no
    audited answer (a clinic, a skin type) is still widened for the misses it may hold.
    """
    weight = audit_weight or audit_weight_of(answers)
    return {
        "sensitivity": sensitivity(answers, audit_weight=weight),
        "specificity": specificity(answers, audit_weight=weight),
        "agreement": agreement(answers, audit_weight=weight),
        "answers": len(answers),
        "malignant_answers": sum(1 for a in answers if a.malignant),
        "audited_answers": sum(1 for a in answers if a.audited),
    }


def breakdown(answers: Sequence[Answer], key: Callable[[Answer], object]) -> list[tuple[object, dict]]:
    """``summary`` per group of ``key``, groups in first-seen order, with the version's audit weight."""
    weight = audit_weight_of(answers)
    groups: dict[object, list[Answer]] = {}
    for answer in answers:
        groups.setdefault(key(answer), []).append(answer)
    return [(group, summary(members, audit_weight=weight)) for group, members in groups.items()]


def by_version(answers: Sequence[Answer]) -> dict[str, list[Answer]]:
    versions: dict[str, list[Answer]] = {}
    for answer in answers:
        versions.setdefault(answer.model_version, []).append(answer)
    return dict(sorted(versions.items()))

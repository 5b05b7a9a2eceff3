"""A case's risk level and plain-language summary from its images' probabilities.

The rule (one definition, shared with batch scoring through :mod:`inference.triage`):

- **high**: on at least one photo, melanoma, basal cell carcinoma or actinic keratosis /
  intraepithelial carcinoma reaches its triage threshold from the model artifact. A photo the
  photo gate turned back counts here too, unless the gate found it is not skin: it gives no
  result, but a lesion that may be a cancer is never dropped for an unusual photo. The
  thresholds were chosen on validation data for a target sensitivity, so most high-risk
  cases are in fact benign; a high result means "a specialist should look", nothing more.
- **moderate**: no threshold is reached, but one of those classes comes within
  ``NEAR_THRESHOLD_FRACTION`` of its threshold on some photo.
- **low**: every photo stays well below every threshold.

The summary always says that this is decision support and not a diagnosis, names the
model version, and says when the model is uncertain (its most likely class below
``UNCERTAIN_BELOW``) or when a photo could not be analysed. Imports no Django.

The summary is written in English; ``facts`` holds the same content as data, one
``{"code": ..., "params": {...}}`` per sentence, so that the portal can write it in the
reader's language (diagnosis/summary.py). The codes and their params:

- ``turned_back``: ``photo`` (None for a single-photo case), ``why`` (the gate's reason)
- ``no_result_retake`` / ``no_result``: no photo gave a result
- ``high`` / ``moderate``: ``classes``, each ``{"class", "probability", "photos", "threshold"}``
  (``photos`` is empty for a single-photo case; "up to" when it lists several)
- ``unreliable_high``: photos the gate turned back as unusual or of poor quality (but not as
  ``not_skin``) whose probabilities reach a threshold: ``photos``, ``why`` (the gate's reason of
  the first), ``classes`` as for ``high``. The case is referred; the specialist reads that the
  model could not read the photo reliably
- ``low``: ``classes``, the class codes checked
- ``top``: ``photo``, ``class``, ``probability``, and when uncertain ``runner_up`` and
  ``runner_up_probability``
- ``unreadable``: ``photos``
- ``others_only``: the result covers only the other photos (after ``turned_back`` facts)
- ``not_ruled_out``: a result below the thresholds does not rule cancer out
- ``disclaimer``: ``versions``
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from inference.gate import NOT_SKIN
from inference.preprocessing import CLASS_NAMES
from inference.triage import flagged_classes

LOW, MODERATE, HIGH = "low", "moderate", "high"
NEAR_THRESHOLD_FRACTION = 0.5
UNCERTAIN_BELOW = 0.5


@dataclass(frozen=True)
class ImageResult:
    """What the rule needs from one photo: its position in the case and its probabilities.

    ``probabilities`` is None for a photo that could not be analysed.
    """

    number: int
    probabilities: Mapping[str, float] | None
    # the referral thresholds of the model artifact that scored this photo; None: the case's
    thresholds: Mapping[str, float] | None = None
    turned_back: str = ""  # the photo gate's reason when it turned this photo back (inference/gate.py)


@dataclass(frozen=True)
class RiskAssessment:
    level: str  # "" when no photo could be analysed
    summary: str
    flagged: tuple[tuple[int, str], ...]  # (photo number, class) pairs at or over threshold
    facts: tuple[dict, ...] = ()  # the summary as data (see the module's docstring)


def percent(p: float) -> str:
    if p < 0.01:
        return "under 1%"
    if p > 0.99:
        return "over 99%"
    return f"{p:.0%}"


def _name(code: str) -> str:
    return CLASS_NAMES[code].lower()


def case_risk(
    images: Sequence[ImageResult],
    *,
    thresholds: Mapping[str, float],
    model_versions: Sequence[str] = (),
) -> RiskAssessment:
    scored = [image for image in images if image.probabilities is not None and not image.turned_back]
    unreadable = [image.number for image in images if image.probabilities is None and not image.turned_back]
    turned_back = [image for image in images if image.turned_back]
    own = {image.number: image.thresholds if image.thresholds is not None else thresholds for image in images}
    # A photo of skin the gate turned back (unusual, or of poor quality) is not read as a result, but
    # when its probabilities reach a referral threshold the case goes to a specialist all the same.
    unreliable = tuple(
        (image.number, code)
        for image in turned_back
        if image.turned_back != NOT_SKIN and image.probabilities is not None
        for code in flagged_classes(image.probabilities, own[image.number])
    )
    disclaimer = _disclaimer(model_versions)
    disclaimer_fact = _fact("disclaimer", versions=sorted(set(model_versions)))
    retake = _turned_back_sentence(turned_back, len(images) > 1)
    retake_facts = [
        _fact("turned_back", photo=image.number if len(images) > 1 else None, why=image.turned_back)
        for image in turned_back
    ]
    unreliable_fact, unreliable_sentence = _unreliable(images, unreliable, own)
    if not scored and unreliable:
        return RiskAssessment(
            level=HIGH,
            summary=f"{unreliable_sentence} {retake} {disclaimer}",
            flagged=unreliable,
            facts=(unreliable_fact, *retake_facts, disclaimer_fact),
        )
    if not scored:
        if turned_back:
            return RiskAssessment(
                level="",
                summary=f"{retake} There is no model result for this case: add a new photo of the lesion. {disclaimer}",
                flagged=(),
                facts=(*retake_facts, _fact("no_result_retake"), disclaimer_fact),
            )
        return RiskAssessment(
            level="",
            summary=f"No photo could be analysed, so there is no model result for this case. {disclaimer}",
            flagged=(),
            facts=(_fact("no_result"), disclaimer_fact),
        )

    flagged = tuple(
        (image.number, code) for image in scored for code in flagged_classes(image.probabilities, own[image.number])
    )
    near = [
        (image.number, code)
        for image in scored
        for code, threshold in own[image.number].items()
        if NEAR_THRESHOLD_FRACTION * threshold <= image.probabilities[code] < threshold
    ]
    level = HIGH if flagged or unreliable else MODERATE if near else LOW

    sentences: list[str] = []
    facts: list[dict] = []
    if flagged:
        reasons = _reasons(images, flagged, own)
        facts.append(_fact("high", classes=_reason_facts(images, flagged, own)))
        sentences.append(f"High risk: {reasons}. The case is referred to a specialist.")
    if unreliable:
        facts.append(unreliable_fact)
        sentences.append(unreliable_sentence)
    elif level == MODERATE:
        reasons = _reasons(images, near, own)
        facts.append(_fact("moderate", classes=_reason_facts(images, near, own)))
        sentences.append(
            f"Moderate risk: no referral threshold is reached, but {reasons}. "
            "Consider a specialist opinion if the lesion is changing or the clinical picture is worrying."
        )
    else:
        codes = list(thresholds or own[scored[0].number])
        facts.append(_fact("low", classes=codes))
        checked = [_name(code) for code in codes]
        listed = ", ".join(checked[:-1]) + f" and {checked[-1]}" if len(checked) > 1 else "".join(checked)
        sentences.append(f"Low risk: {listed} stay below their referral thresholds on every photo.")

    many = len(images) > 1
    for image in scored:
        top = max(image.probabilities, key=image.probabilities.get)
        p = image.probabilities[top]
        where = f"Photo {image.number}: most" if many else "Most"
        line = f"{where} likely {_name(top)} ({percent(p)})"
        top_fact = _fact("top", photo=image.number if many else None, **{"class": top, "probability": p})
        if p < UNCERTAIN_BELOW:
            runner_up = sorted(image.probabilities, key=image.probabilities.get, reverse=True)[1]
            line += f", but the model is uncertain (next: {_name(runner_up)} {percent(image.probabilities[runner_up])})"
            top_fact["params"].update(runner_up=runner_up, runner_up_probability=image.probabilities[runner_up])
        facts.append(top_fact)
        sentences.append(line + ".")
    if unreadable:
        facts.append(_fact("unreadable", photos=list(unreadable)))
        which = ", ".join(str(n) for n in unreadable)
        sentences.append(
            f"Photo{'s' if len(unreadable) > 1 else ''} {which} could not be analysed; "
            "this result covers only the other photos."
        )
    if turned_back:
        facts.extend(retake_facts)
        facts.append(_fact("others_only"))
        sentences.append(retake + " This result covers only the other photos.")
    if level != HIGH:
        facts.append(_fact("not_ruled_out"))
        sentences.append("A result below the thresholds does not rule cancer out.")
    facts.append(disclaimer_fact)
    sentences.append(disclaimer)
    return RiskAssessment(level=level, summary=" ".join(sentences), flagged=flagged + unreliable, facts=tuple(facts))


def _unreliable(images: Sequence[ImageResult], pairs, thresholds_of) -> tuple[dict | None, str]:
    """The fact and sentence for photos the gate turned back whose probabilities reach a threshold."""
    if not pairs:
        return None, ""
    why = {image.number: image.turned_back for image in images}
    numbers = sorted({number for number, _ in pairs})
    many = len(images) > 1
    which = f"photo{'s' if len(numbers) > 1 else ''} {', '.join(map(str, numbers))}" if many else "this photo"
    reasons = _reasons(images, pairs, thresholds_of)
    fact = _fact(
        "unreliable_high",
        photos=numbers if many else [],
        why=why[numbers[0]],
        classes=_reason_facts(images, pairs, thresholds_of),
    )
    because = TURNED_BACK_WHY.get(why[numbers[0]], "it did not pass the photo check")
    sentence = (
        f"High risk: the model could not read {which} reliably ({because}), but it resembles a cancer: "
        f"{reasons}. The case is referred to a specialist."
    )
    return fact, sentence


def _fact(code: str, **params) -> dict:
    return {"code": code, "params": params}


def _reason_facts(images: Sequence[ImageResult], pairs, thresholds_of: Mapping[int, Mapping[str, float]]) -> list:
    """The data of :func:`_reasons`: per class its peak probability, photos and threshold."""
    by_number = {image.number: image.probabilities for image in images}
    photos_of: dict[str, list[int]] = {}
    for number, code in pairs:
        photos_of.setdefault(code, []).append(number)
    return [
        {
            "class": code,
            "probability": max(by_number[number][code] for number in numbers),
            "photos": numbers if len(images) > 1 else [],
            "threshold": min(thresholds_of[number][code] for number in numbers),
        }
        for code, numbers in photos_of.items()
    ]


def _reasons(images: Sequence[ImageResult], pairs, thresholds_of: Mapping[int, Mapping[str, float]]) -> str:
    """One clause per class: its highest probability, on which photos, against its threshold
    (the lowest of the photos' own thresholds, when models with different thresholds scored them)."""
    by_number = {image.number: image.probabilities for image in images}
    photos_of: dict[str, list[int]] = {}
    for number, code in pairs:
        photos_of.setdefault(code, []).append(number)
    clauses = []
    for code, numbers in photos_of.items():
        peak = max(by_number[number][code] for number in numbers)
        amount = f"up to {percent(peak)}" if len(numbers) > 1 else percent(peak)
        where = ""
        if len(images) > 1:
            where = f" on photo{'s' if len(numbers) > 1 else ''} {', '.join(map(str, numbers))}"
        threshold = min(thresholds_of[number][code] for number in numbers)
        clauses.append(f"{_name(code)} probability {amount}{where} (referral threshold {percent(threshold)})")
    return "; ".join(clauses)


def _disclaimer(model_versions: Sequence[str]) -> str:
    versions = ", ".join(sorted(set(model_versions)))
    source = f"model {versions}" if versions else "the model"
    return (
        f"Decision support from {source}, not a diagnosis: the thresholds are set to miss few cancers, "
        "so many flagged lesions turn out benign."
    )


TURNED_BACK_WHY = {
    "not_skin": "it does not look like skin",
    "not_a_lesion": "it does not look like the skin lesions the model was trained on",
    "blurred": "it looks out of focus",
    "too_dark": "it is too dark",
    "overexposed": "it is too bright",
}


def _turned_back_sentence(images: Sequence[ImageResult], many: bool) -> str:
    """'Photo 2 was not read by the model: it looks out of focus.' for each photo the gate turned back."""
    parts = []
    for image in images:
        why = TURNED_BACK_WHY.get(image.turned_back, "it did not pass the photo check")
        parts.append(f"{'Photo ' + str(image.number) if many else 'The photo'} was not read by the model: {why}.")
    return " ".join(parts)

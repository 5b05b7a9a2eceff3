"""A lesion's visits over time: photos of the same kind side by side, results, answers, what changed."""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist
from django.utils.formats import number_format
from django.utils.translation import gettext

from diagnosis.models import Case, LesionImage
from diagnosis.vocabulary import class_name
from inference.preprocessing import MALIGNANT_CLASSES


def case_malignant_probabilities(case: Case) -> dict[str, float] | None:
    """Per malignant class, its highest probability over the case's photos (the latest prediction of each).

    None when no photo of the case has a result yet. Photos the gate turned back have none.
    """
    predictions = [image.current_result for image in case.images.all()]
    predictions = [p for p in predictions if p is not None]
    if not predictions:
        return None
    return {code: max(float((p.probabilities or {}).get(code, 0.0)) for p in predictions) for code in MALIGNANT_CLASSES}


def case_model_versions(case: Case) -> list[str]:
    return sorted({p.model_version for image in case.images.all() if (p := image.current_result) is not None})


def case_review(case: Case):
    """The specialist's answer in force, or None (the referral is prefetched by case_list_for)."""
    try:
        referral = case.referral
    except ObjectDoesNotExist:
        return None
    return referral.latest_review


def _points(change: float) -> str:
    """A change of probability in signed percentage points, in the active language: "+12.5 points"
    ("+0.0", never "-0.0")."""
    text = f"{change * 100:+.1f}"
    if text == "-0.0":
        text = "+0.0"
    sign, number = text[0], number_format(float(text[1:]), 1)
    return gettext("%(change)s points") % {"change": f"{sign}{number}"}


def lesion_visits(cases: list[Case]) -> list[dict]:
    """One row per case, oldest first, with the change of each malignant class since the previous result."""
    visits = []
    previous = None
    for case in cases:
        probabilities = case_malignant_probabilities(case)
        changes = []
        if probabilities is not None:
            for code in MALIGNANT_CLASSES:
                now = probabilities[code]
                before = previous[code] if previous is not None else None
                changes.append(
                    {
                        "code": code,
                        "name": class_name(code),
                        "probability": now,
                        "before": before,
                        "change": None if before is None else now - before,
                        # in percentage points, signed: "+12.5 points"
                        "change_text": None if before is None else _points(now - before),
                    }
                )
            previous = probabilities
        visits.append(
            {
                "case": case,
                "probabilities": probabilities,
                "changes": changes,
                "model_versions": case_model_versions(case),
                "turned_back": probabilities is None and any(image.turned_back for image in case.images.all()),
                "review": case_review(case),
            }
        )
    return visits


def photos_by_kind(cases: list[Case]) -> list[dict]:
    """For each kind of photo (overview, close-up, dermoscopic): per visit its photos of that kind."""
    rows = []
    for kind, label in LesionImage.Kind.choices:
        columns = [
            {"case": case, "images": _readable_first(i for i in case.images.all() if i.kind == kind)} for case in cases
        ]
        if any(column["images"] for column in columns):
            rows.append({"kind": kind, "label": label, "columns": columns})
    return rows


def _readable_first(images) -> list[LesionImage]:
    """The photos in their order, those the gate turned back last: a retake stands for its visit."""
    return sorted(images, key=lambda image: image.turned_back)


def compare_pair(cases: list[Case], *, before_id: int | None, after_id: int | None, kind: str | None):
    """The two visits and the photo of one kind from each that the compare view shows side by side.

    Without a kind asked for, the view opens on the kind both visits have a readable photo of
    (one the gate did not turn back), else one either has; within a kind, a turned-back photo
    is shown only when the visit has no other.
    """
    by_id = {case.pk: case for case in cases}
    before = by_id.get(before_id) if before_id else (cases[0] if cases else None)
    after = by_id.get(after_id) if after_id else (cases[-1] if cases else None)
    visits = [c for c in (before, after) if c is not None]

    def readable(case, value) -> bool:
        return any(i.kind == value and not i.turned_back for i in case.images.all())

    kinds_available = [
        value for value, _ in LesionImage.Kind.choices if any(i.kind == value for c in visits for i in c.images.all())
    ]
    if kind not in kinds_available:
        preferred = sorted(
            kinds_available,
            key=lambda value: (
                not all(readable(c, value) for c in visits),
                not any(readable(c, value) for c in visits),
            ),
        )
        kind = preferred[0] if preferred else LesionImage.Kind.OVERVIEW

    def first_of_kind(case):
        if case is None:
            return None
        return next(iter(_readable_first(i for i in case.images.all() if i.kind == kind)), None)

    return {
        "before": before,
        "after": after,
        "kind": kind,
        "kinds": [(value, label) for value, label in LesionImage.Kind.choices if value in kinds_available],
        "before_image": first_of_kind(before),
        "after_image": first_of_kind(after),
    }

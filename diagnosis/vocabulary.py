"""The portal's clinical lists, each declared once, in the reader's language.

- The lesion classes: codes and English names in ``inference.classes`` (no Django, for the
  model and training); here their names as the reader sees them, the same names inside a
  sentence, and the specialist's diagnoses (the classes, squamous cell carcinoma, other).
- The history and signs a nurse ticks on a case (``CASE_SIGNS``), from which the ``Case``
  model's fields, the web form, the API serializer, ``case_submit``, the case page and the
  letter are all built.
- The weighted 7-point checklist (NICE NG12) scored from those signs.

Imports no models, so ``diagnosis.models`` and every app above it can read it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import models
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy, pgettext_lazy

from inference.classes import CLASS_NAMES as ENGLISH_CLASS_NAMES

# --- Lesion classes ---------------------------------------------------------------------------
# The catalogues translate inference.classes' English names (marked there with gettext_noop).
CLASS_LABELS: dict[str, Promise] = {code: gettext_lazy(name) for code, name in ENGLISH_CLASS_NAMES.items()}  # noqa: INT001
# Inside a sentence a name takes its own grammar ("melanoma probability 62%"; "mélanome" in French).
CLASS_NAMES_IN_SENTENCE: dict[str, Promise] = {
    "akiec": pgettext_lazy("in a sentence", "actinic keratosis / intraepithelial carcinoma"),
    "bcc": pgettext_lazy("in a sentence", "basal cell carcinoma"),
    "bkl": pgettext_lazy("in a sentence", "benign keratosis-like lesion"),
    "df": pgettext_lazy("in a sentence", "dermatofibroma"),
    "mel": pgettext_lazy("in a sentence", "melanoma"),
    "nv": pgettext_lazy("in a sentence", "melanocytic nevus"),
    "vasc": pgettext_lazy("in a sentence", "vascular lesion"),
}
assert list(CLASS_NAMES_IN_SENTENCE) == list(ENGLISH_CLASS_NAMES)

# A specialist's diagnosis: one of the model's classes, or one it does not know.
DIAGNOSIS_LABELS: dict[str, Promise] = {
    **CLASS_LABELS,
    "scc": gettext_lazy("Squamous cell carcinoma"),
    "other": gettext_lazy("Other (described)"),
}
Diagnosis = models.TextChoices("Diagnosis", [(code.upper(), (code, label)) for code, label in DIAGNOSIS_LABELS.items()])


def class_name(code: str, *, in_sentence: bool = False) -> str:
    """A class's (or a specialist's diagnosis's) name in the active language; unknown codes as they are."""
    names = CLASS_NAMES_IN_SENTENCE if in_sentence else DIAGNOSIS_LABELS
    return str(names[code]) if code in names else code


# --- History and signs ticked on a case -------------------------------------------------------
HISTORY = "history"
ABCDE = "abcde"


@dataclass(frozen=True)
class Sign:
    field: str  # the Case field, the form field, the API field and case_submit's keyword
    group: str  # HISTORY (what the patient reports) or ABCDE (what the nurse sees)
    verbose_name: Promise  # the model field's name (admin, errors)
    question: Promise  # the new-case form's label
    shown: Promise  # the case page's and the letter's label


CASE_SIGNS: tuple[Sign, ...] = (
    Sign(
        "recently_changed",
        HISTORY,
        gettext_lazy("recently changed"),
        gettext_lazy("Recently changed"),
        gettext_lazy("Recently changed"),
    ),
    Sign(
        "changed_size",
        HISTORY,
        gettext_lazy("change in size"),
        gettext_lazy("Change in size"),
        gettext_lazy("Change in size"),
    ),
    Sign(
        "changed_shape",
        HISTORY,
        gettext_lazy("change in shape"),
        gettext_lazy("Change in shape"),
        gettext_lazy("Change in shape"),
    ),
    Sign(
        "itching",
        HISTORY,
        gettext_lazy("itching or change in sensation"),
        gettext_lazy("Itching or change in sensation"),
        gettext_lazy("Itching or change in sensation"),
    ),
    Sign(
        "bleeding",
        HISTORY,
        gettext_lazy("oozing or bleeding"),
        gettext_lazy("Oozing or bleeding"),
        gettext_lazy("Oozing or bleeding"),
    ),
    Sign(
        "inflammation",
        HISTORY,
        gettext_lazy("inflammation"),
        gettext_lazy("Inflammation (red, swollen around it)"),
        gettext_lazy("Inflammation"),
    ),
    Sign(
        "abcde_asymmetry",
        ABCDE,
        gettext_lazy("asymmetry"),
        gettext_lazy("A: asymmetry (the two halves do not match)"),
        gettext_lazy("Asymmetry"),
    ),
    Sign(
        "abcde_border",
        ABCDE,
        gettext_lazy("irregular border"),
        gettext_lazy("B: border irregular, ragged or blurred"),
        gettext_lazy("Irregular border"),
    ),
    Sign(
        "abcde_colour",
        ABCDE,
        gettext_lazy("uneven colour"),
        gettext_lazy("C: colour uneven (several shades)"),
        gettext_lazy("Uneven colour"),
    ),
    Sign(
        "abcde_diameter",
        ABCDE,
        gettext_lazy("diameter over 6 mm"),
        gettext_lazy("D: diameter over 6 mm"),
        gettext_lazy("Over 6 mm"),
    ),
    Sign(
        "abcde_evolving",
        ABCDE,
        gettext_lazy("evolving"),
        gettext_lazy("E: evolving (size, shape or colour changing)"),
        gettext_lazy("Evolving"),
    ),
)
SIGN_FIELDS: tuple[str, ...] = tuple(sign.field for sign in CASE_SIGNS)
HISTORY_SIGNS: tuple[Sign, ...] = tuple(sign for sign in CASE_SIGNS if sign.group == HISTORY)
ABCDE_SIGNS: tuple[Sign, ...] = tuple(sign for sign in CASE_SIGNS if sign.group == ABCDE)


# --- The weighted 7-point checklist -----------------------------------------------------------
@dataclass(frozen=True)
class ChecklistItem:
    name: Promise
    points: int  # 2 for a major item, 1 for a minor one
    present: Callable[[object], bool]  # read from a case's signs


SEVEN_POINT_CHECKLIST: tuple[ChecklistItem, ...] = (
    ChecklistItem(gettext_lazy("change in size"), 2, lambda case: case.changed_size),
    ChecklistItem(gettext_lazy("irregular shape or border"), 2, lambda case: case.changed_shape or case.abcde_border),
    ChecklistItem(gettext_lazy("irregular colour"), 2, lambda case: case.abcde_colour),
    ChecklistItem(
        gettext_lazy("largest diameter 7 mm or more"),
        1,
        lambda case: case.diameter_mm is not None and case.diameter_mm >= 7,
    ),
    ChecklistItem(gettext_lazy("inflammation"), 1, lambda case: case.inflammation),
    ChecklistItem(gettext_lazy("oozing or bleeding"), 1, lambda case: case.bleeding),
    ChecklistItem(gettext_lazy("change in sensation or itch"), 1, lambda case: case.itching),
)
# A score of this or more refers the case to a specialist as urgent at once.
CHECKLIST_REFERRAL_SCORE = 3

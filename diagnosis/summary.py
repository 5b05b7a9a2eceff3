"""The risk summary in the reader's language.

inference/risk.py (no Django) writes a case's summary in English and, beside it, the same
content as facts (``Case.summary_facts``: ``{"code": ..., "params": {...}}``, described in
that module). Pages render the facts here with the active language's sentences, so a nurse
reading in French and a specialist reading in Portuguese see the same result in their own
words. In English the rendering is word for word the stored summary. A case analysed before
facts were stored shows its stored English text.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.utils import translation
from django.utils.formats import number_format
from django.utils.translation import gettext, gettext_lazy, ngettext

from .vocabulary import class_name

# Why the photo gate turned a photo back (inference/gate.py MESSAGES, word for word in English).
GATE_MESSAGES = {
    "not_skin": gettext_lazy(
        "This photo does not look like skin. Photograph the lesion itself, close up so that it fills "
        "most of the frame, and take it again."
    ),
    "not_a_lesion": gettext_lazy(
        "This photo does not look like the skin lesions the model was trained on. Centre the lesion, "
        "take it close up (through a dermatoscope if you have one), and take it again."
    ),
    "blurred": gettext_lazy(
        "This photo looks out of focus. Hold the phone steady, tap the lesion to focus, and take it again."
    ),
    "too_dark": gettext_lazy(
        "This photo is too dark. Move to better light or turn on the phone's light, and take it again."
    ),
    "overexposed": gettext_lazy(
        "This photo is too bright: parts of it are washed out. Avoid direct sunlight and flash glare, "
        "and take it again."
    ),
}
# The same reasons in a summary sentence (inference/risk.py TURNED_BACK_WHY).
TURNED_BACK_WHY = {
    "not_skin": gettext_lazy("it does not look like skin"),
    "not_a_lesion": gettext_lazy("it does not look like the skin lesions the model was trained on"),
    "blurred": gettext_lazy("it looks out of focus"),
    "too_dark": gettext_lazy("it is too dark"),
    "overexposed": gettext_lazy("it is too bright"),
}


def gate_message(code: str) -> str:
    return str(GATE_MESSAGES[code]) if code in GATE_MESSAGES else ""


def percent(p: float) -> str:
    """Like inference.risk.percent, in the active language: "under 1%", "62%", "62 %"."""
    if p < 0.01:
        return gettext("under 1%")
    if p > 0.99:
        return gettext("over 99%")
    return gettext("%(number)s%%") % {"number": number_format(int(f"{p:.0%}"[:-1]))}


def _numbers(numbers) -> str:
    return ", ".join(number_format(n) for n in numbers)


def _listing(items: list[str]) -> str:
    """ "a, b and c"."""
    if len(items) < 2:
        return "".join(items)
    return gettext("%(items)s and %(last)s") % {"items": ", ".join(items[:-1]), "last": items[-1]}


def _reason(item: dict) -> str:
    photos = item.get("photos") or []
    probability = percent(item["probability"])
    amount = gettext("up to %(percent)s") % {"percent": probability} if len(photos) > 1 else probability
    values = {
        "name": class_name(item["class"], in_sentence=True),
        "amount": amount,
        "photos": _numbers(photos),
        "threshold": percent(item["threshold"]),
    }
    if not photos:
        return gettext("%(name)s probability %(amount)s (referral threshold %(threshold)s)") % values
    return (
        ngettext(
            "%(name)s probability %(amount)s on photo %(photos)s (referral threshold %(threshold)s)",
            "%(name)s probability %(amount)s on photos %(photos)s (referral threshold %(threshold)s)",
            len(photos),
        )
        % values
    )


def _turned_back(params: dict) -> str:
    why = TURNED_BACK_WHY.get(params.get("why"))
    why = str(why) if why is not None else gettext("it did not pass the photo check")
    if params.get("photo") is None:
        return gettext("The photo was not read by the model: %(why)s.") % {"why": why}
    return gettext("Photo %(number)s was not read by the model: %(why)s.") % {
        "number": number_format(params["photo"]),
        "why": why,
    }


def _unreliable_high(params: dict) -> str:
    why = TURNED_BACK_WHY.get(params.get("why"))
    why = str(why) if why is not None else gettext("it did not pass the photo check")
    reasons = "; ".join(_reason(item) for item in params["classes"])
    photos = params.get("photos") or []
    if not photos:
        return gettext(
            "High risk: the model could not read this photo reliably (%(why)s), but it resembles a cancer: "
            "%(reasons)s. The case is referred to a specialist."
        ) % {"why": why, "reasons": reasons}
    return ngettext(
        "High risk: the model could not read photo %(photos)s reliably (%(why)s), but it resembles a cancer: "
        "%(reasons)s. The case is referred to a specialist.",
        "High risk: the model could not read photos %(photos)s reliably (%(why)s), but it resembles a cancer: "
        "%(reasons)s. The case is referred to a specialist.",
        len(photos),
    ) % {"photos": _numbers(photos), "why": why, "reasons": reasons}


def render_fact(fact: dict) -> str:
    """One sentence (or two) of the summary; "" for a fact this version does not know."""
    code, params = fact.get("code"), fact.get("params") or {}
    if code == "turned_back":
        return _turned_back(params)
    if code == "no_result_retake":
        return gettext("There is no model result for this case: add a new photo of the lesion.")
    if code == "no_result":
        return gettext("No photo could be analysed, so there is no model result for this case.")
    if code == "high":
        reasons = "; ".join(_reason(item) for item in params["classes"])
        return gettext("High risk: %(reasons)s. The case is referred to a specialist.") % {"reasons": reasons}
    if code == "unreliable_high":
        return _unreliable_high(params)
    if code == "moderate":
        reasons = "; ".join(_reason(item) for item in params["classes"])
        return gettext(
            "Moderate risk: no referral threshold is reached, but %(reasons)s. Consider a specialist opinion "
            "if the lesion is changing or the clinical picture is worrying."
        ) % {"reasons": reasons}
    if code == "low":
        listed = _listing([class_name(c, in_sentence=True) for c in params["classes"]])
        return gettext("Low risk: %(classes)s stay below their referral thresholds on every photo.") % {
            "classes": listed
        }
    if code == "top":
        values = {
            "name": class_name(params["class"], in_sentence=True),
            "percent": percent(params["probability"]),
            "number": number_format(params["photo"]) if params.get("photo") is not None else "",
        }
        if "runner_up" in params:
            values.update(
                next=class_name(params["runner_up"], in_sentence=True),
                next_percent=percent(params["runner_up_probability"]),
            )
            if params.get("photo") is None:
                return (
                    gettext(
                        "Most likely %(name)s (%(percent)s), but the model is uncertain "
                        "(next: %(next)s %(next_percent)s)."
                    )
                    % values
                )
            return (
                gettext(
                    "Photo %(number)s: most likely %(name)s (%(percent)s), but the model is uncertain "
                    "(next: %(next)s %(next_percent)s)."
                )
                % values
            )
        if params.get("photo") is None:
            return gettext("Most likely %(name)s (%(percent)s).") % values
        return gettext("Photo %(number)s: most likely %(name)s (%(percent)s).") % values
    if code == "unreadable":
        photos = params.get("photos") or []
        return ngettext(
            "Photo %(photos)s could not be analysed; this result covers only the other photos.",
            "Photos %(photos)s could not be analysed; this result covers only the other photos.",
            len(photos),
        ) % {"photos": _numbers(photos)}
    if code == "others_only":
        return gettext("This result covers only the other photos.")
    if code == "not_ruled_out":
        return gettext("A result below the thresholds does not rule cancer out.")
    if code == "disclaimer":
        versions = params.get("versions") or []
        if versions:
            return gettext(
                "Decision support from model %(versions)s, not a diagnosis: the thresholds are set to miss "
                "few cancers, so many flagged lesions turn out benign."
            ) % {"versions": ", ".join(versions)}
        return gettext(
            "Decision support from the model, not a diagnosis: the thresholds are set to miss few cancers, "
            "so many flagged lesions turn out benign."
        )
    return ""


def render_facts(facts) -> str:
    return " ".join(sentence for sentence in (render_fact(fact) for fact in facts or ()) if sentence)


def case_summary(case) -> str:
    """The case's risk summary in the active language; its stored text when it has no facts."""
    facts = getattr(case, "summary_facts", None)
    if facts:
        try:
            return render_facts(facts)
        except (AttributeError, KeyError, TypeError, ValueError):
            return case.summary
    return case.summary


def summary_first_sentence(case) -> str:
    """The headline of the summary (what the model's referral gives as its reason)."""
    facts = getattr(case, "summary_facts", None)
    if facts:
        try:
            for fact in facts:
                if fact.get("code") in ("high", "unreliable_high", "moderate", "low"):
                    return render_fact(fact)
        except (AttributeError, KeyError, TypeError, ValueError):
            pass
    return ""


def checklist_reason(case) -> str:
    """Why the 7-point checklist referred the case, in the active language: "Scores 5 of 10:
    change in size (2), irregular colour (2), inflammation (1)."."""
    return gettext("Scores %(score)s of 10: %(findings)s.") % {
        "score": number_format(case.checklist_score),
        "findings": ", ".join(str(finding) for finding in case.checklist_findings),
    }


def stored_checklist_reason(case) -> str:
    """The checklist's reason as stored on the referral: in the site's language, whoever submitted it."""
    with translation.override(settings.LANGUAGE_CODE):
        return checklist_reason(case)


# Reasons stored in English on a failed photo (analysis/services.py), shown in the reader's language.
_GAVE_UP = re.compile(r"^The photo could not be analysed after (\d+) attempts\. Use “Analyse again” to retry\.$")


def stored_reason(text: str) -> str:
    """A fixed English message stored on a row, translated when the catalogue knows it."""
    if not text:
        return text
    match = _GAVE_UP.match(text)
    if match:
        attempts = int(match.group(1))
        return ngettext(
            "The photo could not be analysed after %(count)s attempt. Use “Analyse again” to retry.",
            "The photo could not be analysed after %(count)s attempts. Use “Analyse again” to retry.",
            attempts,
        ) % {"count": number_format(attempts)}
    return gettext(text)

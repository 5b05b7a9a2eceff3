"""Small presentation helpers for the web UI templates."""

from __future__ import annotations

import math
from datetime import date

from django import template
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext

from diagnosis import summary

register = template.Library()


@register.filter
def percent(value, digits: int = 1) -> str:
    """0.1234 -> "12.3 %" ("12,3 %" in French); below the shown precision -> "< 0.1 %", never a bare 0."""
    try:
        number = float(value) * 100
        digits = int(digits)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(number):
        return ""
    smallest = 10**-digits
    if 0 < number < smallest:
        return f"< {number_format(smallest, digits)} %"
    return f"{number_format(round(number, digits), digits)} %"


@register.filter
def bar_width(value) -> str:
    """A probability as a CSS width; at least a sliver so a bar is visible at all."""
    try:
        number = max(0.0, min(1.0, float(value))) * 100
    except (TypeError, ValueError):
        return "0%"
    return f"{max(number, 0.5):.1f}%"


@register.filter
def bar_class(value) -> str:
    """A probability as one of the stylesheet's width classes (w1..w100): the
    Content-Security-Policy allows no inline style attributes."""
    try:
        number = max(0.0, min(1.0, float(value))) * 100
    except (TypeError, ValueError):
        number = 0.0
    return f"w{max(1, min(100, round(number)))}"


@register.filter
def age(date_of_birth: date | None) -> int | None:
    if not date_of_birth:
        return None
    today = timezone.localdate()
    before_birthday = (today.month, today.day) < (date_of_birth.month, date_of_birth.day)
    return today.year - date_of_birth.year - before_birthday


@register.filter
def metric(value) -> str:
    """A report metric: fractions to three decimals, counts with thousands grouped, as the language writes them."""
    if isinstance(value, bool) or value is None:
        return gettext("n/a") if value is None else str(value)
    if isinstance(value, int):
        return number_format(value, force_grouping=True)
    if isinstance(value, float):
        if not math.isfinite(value):  # a metric a report could not compute (e.g. no positive case)
            return gettext("n/a")
        return number_format(round(value, 3), 3)  # number_format cuts off; the report rounds
    return str(value)


@register.filter
def case_summary(case) -> str:
    """The case's risk summary in the reader's language (diagnosis/summary.py)."""
    return summary.case_summary(case)


@register.filter
def translate_reason(text: str) -> str:
    """A fixed message stored in English on a row (a failed photo's reason), in the reader's language."""
    return summary.stored_reason(text)


@register.filter
def referral_reason(referral) -> str:
    """Why a case was referred: the model's or the checklist's own reason in the reader's
    language, else as written."""
    source = getattr(referral, "source", "")
    if source == "model":
        headline = summary.summary_first_sentence(referral.case)
        if headline:
            return headline
    if source == "checklist" and referral.reason == summary.stored_checklist_reason(referral.case):
        return summary.checklist_reason(referral.case)
    if source in ("unreadable", "audit"):  # a fixed English reason (analysis/safety_net.py)
        return summary.stored_reason(referral.reason)
    return referral.reason

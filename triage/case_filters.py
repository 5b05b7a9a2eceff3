"""The case list's filter by the referral's urgency (registered on diagnosis's case list in hooks.py)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Referral


def case_urgency_filter_field() -> forms.ChoiceField:
    return forms.ChoiceField(
        label=_("Urgency"),
        required=False,
        choices=[("", _("Any urgency")), *Referral.Urgency.choices],
    )


def case_urgency_filter(cases, urgency: str):
    """Cases whose referral has this urgency (cases never referred have none)."""
    return cases.filter(referral__urgency=urgency)

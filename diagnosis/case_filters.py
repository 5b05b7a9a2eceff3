"""The case list's filters: status, risk, referral, date range, patient search.

Used by the web case list (views.case_list_view); the dashboard's tiles link to it with
these parameters, so every tile opens the cases it counts.
"""

from __future__ import annotations

from django import forms
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from skinportal.forms import LocalDateField

from . import extensions
from .models import Case
from .selectors import case_list_awaiting_photo
from .transitions import CASE_AWAITING_RESULT

# Groups of statuses the dashboard counts, beside the single statuses.
AWAITING = "awaiting"
WITH_SPECIALIST = "with_specialist"
STATUS_GROUPS = {
    AWAITING: tuple(CASE_AWAITING_RESULT),
    WITH_SPECIALIST: (Case.Status.REFERRED, Case.Status.UNDER_REVIEW),
}
NOT_ASSESSED = "none"
# No photo the model could read (analysis/safety_net.py): failed, with every photo turned back.
AWAITING_PHOTO = "awaiting_photo"


class CaseFilterForm(forms.Form):
    q = forms.CharField(label=_("Patient name or number"), required=False, max_length=200)
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[
            ("", _("Any status")),
            (AWAITING, _("Awaiting analysis")),
            (WITH_SPECIALIST, _("With a specialist")),
            (AWAITING_PHOTO, _("Waiting for a new photo")),
            *Case.Status.choices,
        ],
    )
    risk = forms.ChoiceField(
        label=_("Risk"),
        required=False,
        choices=[
            ("", _("Any risk")),
            (Case.Risk.HIGH, _("High")),
            (Case.Risk.MODERATE, _("Moderate")),
            (Case.Risk.LOW, _("Low")),
            (NOT_ASSESSED, _("Not assessed")),
        ],
    )
    referral = forms.ChoiceField(
        label=_("Referral"),
        required=False,
        choices=[("", _("Referred or not")), ("referred", _("Referred")), ("not_referred", _("Not referred"))],
    )
    submitted_from = LocalDateField(label=_("Submitted from"), required=False)
    submitted_to = LocalDateField(label=_("to"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Filters added by the apps built on diagnosis (triage: the referral's urgency).
        for name, (field, _apply) in extensions.CASE_LIST_FILTERS.items():
            self.fields[name] = field()

    def added_fields(self):
        """The bound fields of the filters other apps added, for the template."""
        return [self[name] for name in extensions.CASE_LIST_FILTERS if name in self.fields]

    def clean(self):
        data = super().clean()
        start, end = data.get("submitted_from"), data.get("submitted_to")
        if start and end and start > end:
            self.add_error("submitted_to", _("The end of the range is before its start."))
        return data

    def active(self) -> dict:
        """The filters in use (for the audit log and the page's 'clear' link)."""
        if not self.is_valid():
            return {}
        return {name: str(value) for name, value in self.cleaned_data.items() if value not in ("", None)}


def case_list_filter(cases: QuerySet[Case], form: CaseFilterForm, *, by_name: bool = True) -> QuerySet[Case]:
    """`cases` (already scoped to the user) narrowed by a valid form's filters.

    Without ``by_name`` (a specialist, ``patients.disclosure``) the search matches patient
    numbers only, so it cannot be used to learn a name the page does not show.
    """
    data = form.cleaned_data
    if query := data.get("q", "").strip():
        matches = Q(patient__identifier__icontains=query)
        if by_name:
            matches |= Q(patient__full_name__icontains=query)
        cases = cases.filter(matches)
    if status := data.get("status"):
        if status == AWAITING_PHOTO:
            cases = case_list_awaiting_photo(cases)
        else:
            cases = cases.filter(status__in=STATUS_GROUPS.get(status, (status,)))
    if risk := data.get("risk"):
        cases = cases.filter(risk="" if risk == NOT_ASSESSED else risk)
    if referral := data.get("referral"):
        cases = cases.filter(referred_at__isnull=(referral == "not_referred"))
    if start := data.get("submitted_from"):
        cases = cases.filter(created_at__date__gte=start)
    if end := data.get("submitted_to"):
        cases = cases.filter(created_at__date__lte=end)
    for name, (_field, apply) in extensions.CASE_LIST_FILTERS.items():
        if value := data.get(name):
            cases = apply(cases, value)
    return cases

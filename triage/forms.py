"""Web forms of the referral workflow."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from diagnosis.forms import MultipleImageField
from diagnosis.models import LesionImage

from .models import Referral, Review
from .workflow import review_rules_check


class ReferralForm(forms.Form):
    urgency = forms.ChoiceField(
        label=_("Urgency"), choices=Referral.Urgency.choices, initial=Referral.Urgency.ROUTINE, widget=forms.RadioSelect
    )
    reason = forms.CharField(
        label=_("Why are you referring this case?"),
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("What worries you: the specialist reads this first."),
    )


class UrgencyForm(forms.Form):
    urgency = forms.ChoiceField(choices=Referral.Urgency.choices)
    reason = forms.CharField(
        label=_("Why it can wait"),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    confirmed = forms.BooleanField(
        label=_("I confirm that this suspected cancer can wait for a routine answer."),
        required=False,
    )


class ReviewForm(forms.Form):
    diagnosis = forms.ChoiceField(
        label=_("Diagnosis"), choices=[("", _("Choose the diagnosis")), *Review.Diagnosis.choices]
    )
    diagnosis_text = forms.CharField(
        label=_("Diagnosis details"),
        max_length=500,
        required=False,
        help_text=_("Required for other; optional otherwise."),
    )
    agrees_with_model = forms.TypedChoiceField(
        label=_("Do you agree with the model's most likely class?"),
        choices=[("true", _("Yes")), ("false", _("No"))],
        coerce=lambda value: value == "true",
        widget=forms.RadioSelect,
    )
    outcome = forms.ChoiceField(label=_("Management"), choices=Review.Outcome.choices, widget=forms.RadioSelect)
    follow_up_months = forms.IntegerField(
        label=_("Photograph again in (months)"),
        min_value=1,
        max_value=60,
        required=False,
        help_text=_("Required for monitor."),
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )
    message = forms.CharField(
        label=_("Message to the clinic"), max_length=4000, widget=forms.Textarea(attrs={"rows": 4})
    )
    private_note = forms.CharField(
        label=_("Private note (never shown to the clinic)"),
        max_length=4000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def clean(self):
        """The answer's rules are ``workflow.review_rules_check`` (the service applies them too):
        shown here with the form's own errors, never restated."""
        data = super().clean()
        try:
            review_rules_check(
                diagnosis=data.get("diagnosis", ""),
                diagnosis_text=data.get("diagnosis_text", ""),
                outcome=data.get("outcome", ""),
                follow_up_months=data.get("follow_up_months"),
                message=data.get("message", "") or "",
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                if field not in self.errors:
                    self.add_error(field, errors)
        return data


class InformationRequestForm(forms.Form):
    message = forms.CharField(
        label=_("What do you need from the clinic?"), max_length=4000, widget=forms.Textarea(attrs={"rows": 3})
    )


class InformationAnswerForm(forms.Form):
    message = forms.CharField(
        label=_("Your answer"), max_length=4000, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    images = MultipleImageField(label=_("More photos"), required=False)
    image_kind = forms.ChoiceField(
        label=_("Kind of the new photos"),
        choices=LesionImage.Kind.choices,
        initial=LesionImage.Kind.CLOSE_UP,
        required=False,
    )

    def clean(self):
        data = super().clean()
        if not (data.get("message") or "").strip() and not data.get("images"):
            raise forms.ValidationError(_("Write an answer or add photos."))
        return data


class ReferralFilterForm(forms.Form):
    urgency = forms.ChoiceField(choices=[("", _("Any urgency")), *Referral.Urgency.choices], required=False)
    clinic = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    mine = forms.BooleanField(label=_("Mine"), required=False)
    overdue = forms.BooleanField(label=_("Overdue"), required=False)

    def __init__(self, *args, clinics=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["clinic"].choices = [("", _("All clinics")), *[(c.pk, c.name) for c in clinics]]

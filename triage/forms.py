"""Web forms of the referral workflow."""

from __future__ import annotations

from django import forms

from diagnosis.forms import MultipleImageField
from diagnosis.models import LesionImage

from .models import Referral, Review


class ReferralForm(forms.Form):
    urgency = forms.ChoiceField(
        label="Urgency", choices=Referral.Urgency.choices, initial=Referral.Urgency.ROUTINE, widget=forms.RadioSelect
    )
    reason = forms.CharField(
        label="Why are you referring this case?",
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What worries you: the specialist reads this first.",
    )


class UrgencyForm(forms.Form):
    urgency = forms.ChoiceField(choices=Referral.Urgency.choices)


class ReviewForm(forms.Form):
    diagnosis = forms.ChoiceField(label="Diagnosis", choices=[("", "Choose the diagnosis"), *Review.Diagnosis.choices])
    diagnosis_text = forms.CharField(
        label="Diagnosis details", max_length=500, required=False, help_text="Required for other; optional otherwise."
    )
    agrees_with_model = forms.TypedChoiceField(
        label="Do you agree with the model's most likely class?",
        choices=[("true", "Yes"), ("false", "No")],
        coerce=lambda value: value == "true",
        widget=forms.RadioSelect,
    )
    outcome = forms.ChoiceField(label="Management", choices=Review.Outcome.choices, widget=forms.RadioSelect)
    follow_up_months = forms.IntegerField(
        label="Photograph again in (months)",
        min_value=1,
        max_value=60,
        required=False,
        help_text="Required for monitor.",
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )
    message = forms.CharField(label="Message to the clinic", max_length=4000, widget=forms.Textarea(attrs={"rows": 4}))
    private_note = forms.CharField(
        label="Private note (never shown to the clinic)",
        max_length=4000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def clean(self):
        data = super().clean()
        if data.get("outcome") == Review.Outcome.MONITOR and not data.get("follow_up_months"):
            self.add_error("follow_up_months", "Say in how many months the lesion should be photographed again.")
        if data.get("outcome") != Review.Outcome.MONITOR:
            data["follow_up_months"] = None
        if data.get("diagnosis") == Review.Diagnosis.OTHER and not (data.get("diagnosis_text") or "").strip():
            self.add_error("diagnosis_text", "Describe the diagnosis.")
        return data


class InformationRequestForm(forms.Form):
    message = forms.CharField(
        label="What do you need from the clinic?", max_length=4000, widget=forms.Textarea(attrs={"rows": 3})
    )


class InformationAnswerForm(forms.Form):
    message = forms.CharField(
        label="Your answer", max_length=4000, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    images = MultipleImageField(label="More photos (optional)", required=False)
    image_kind = forms.ChoiceField(
        label="Kind of the new photos",
        choices=LesionImage.Kind.choices,
        initial=LesionImage.Kind.CLOSE_UP,
        required=False,
    )

    def clean(self):
        data = super().clean()
        if not (data.get("message") or "").strip() and not data.get("images"):
            raise forms.ValidationError("Write an answer or add photos.")
        return data


class ReferralFilterForm(forms.Form):
    urgency = forms.ChoiceField(choices=[("", "Any urgency"), *Referral.Urgency.choices], required=False)
    clinic = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    mine = forms.BooleanField(label="Mine", required=False)
    overdue = forms.BooleanField(label="Overdue", required=False)

    def __init__(self, *args, clinics=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["clinic"].choices = [("", "All clinics"), *[(c.pk, c.name) for c in clinics]]

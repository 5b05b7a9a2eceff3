"""Forms of the patient pages: register, correct, search, record consent."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from skinportal.forms import LocalDateField, LocalDateInput

from .models import Patient

CONSENT_WORDING = _(
    "The patient (or their legal guardian) agrees that photographs of the skin lesion "
    "may be taken, stored in Skin Portal, analysed by software and seen by the clinic "
    "and by specialists to support their care. The software's result is decision "
    "support for clinicians, not a diagnosis."
)


class PatientForm(forms.Form):
    clinic = forms.ModelChoiceField(label=_("Clinic"), queryset=None, empty_label=None)
    identifier = forms.CharField(
        label=_("Patient number"),
        max_length=64,
        help_text=_("The clinic's own number for this patient."),
    )
    full_name = forms.CharField(label=_("Full name"), max_length=200)
    date_of_birth = LocalDateField(label=_("Date of birth"), widget=LocalDateInput(attrs={"autocomplete": "off"}))
    sex = forms.ChoiceField(label=_("Sex"), choices=Patient.Sex.choices, initial=Patient.Sex.UNKNOWN)
    skin_type = forms.ChoiceField(
        label=_("Skin type (Fitzpatrick)"),
        choices=[("", _("Not recorded")), *Patient.SkinType.choices],
        required=False,
    )
    phone = forms.CharField(label=_("Contact phone"), max_length=32, required=False)
    village = forms.CharField(label=_("Village"), max_length=200, required=False)
    consent_given = forms.BooleanField(
        label=_("Consent given"),
        required=False,
        help_text=CONSENT_WORDING,
    )

    def __init__(self, *args, clinics, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["clinic"].queryset = clinics
        if clinics.count() == 1:
            self.fields["clinic"].initial = clinics.first()
            self.fields["clinic"].widget = forms.HiddenInput()
        self.fields["full_name"].widget.attrs["autocomplete"] = "off"
        self.fields["identifier"].widget.attrs["autocomplete"] = "off"
        self.fields["phone"].widget.input_type = "tel"


class PatientEditForm(forms.Form):
    """Correcting a patient's details (diagnosis.services.patient_update); clinic and consent stay."""

    identifier = PatientForm.base_fields["identifier"]
    full_name = PatientForm.base_fields["full_name"]
    date_of_birth = PatientForm.base_fields["date_of_birth"]
    sex = PatientForm.base_fields["sex"]
    skin_type = PatientForm.base_fields["skin_type"]
    phone = PatientForm.base_fields["phone"]
    village = PatientForm.base_fields["village"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["phone"].widget.input_type = "tel"
        self.fields["phone"].widget.attrs["autocomplete"] = "off"


class PatientSearchForm(forms.Form):
    """The patient list's search box. CharField refuses NUL characters, which PostgreSQL cannot take."""

    q = forms.CharField(label=_("Search by name or patient number"), required=False, max_length=200)


class PatientConsentForm(forms.Form):
    """The patient page's consent buttons: "true" records consent, "false" withdraws it."""

    consent_given = forms.TypedChoiceField(
        choices=[("true", _("Record consent")), ("false", _("Withdraw consent"))],
        coerce=lambda value: value == "true",
    )

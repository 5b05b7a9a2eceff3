"""Web forms: patient registration and case submission. Writes happen in services."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils import formats
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from .models import Case, Lesion, LesionImage, Patient
from .text import NOTES_MAX_LENGTH
from .vocabulary import ABCDE_SIGNS, CASE_SIGNS, HISTORY_SIGNS

CONSENT_WORDING = _(
    "The patient (or their legal guardian) agrees that photographs of the skin lesion "
    "may be taken, stored in Skin Portal, analysed by software and seen by the clinic "
    "and by specialists to support their care. The software's result is decision "
    "support for clinicians, not a diagnosis."
)


def date_input_formats() -> list[str]:
    """The active language's date formats with a four-digit year (a two-digit year of birth is
    ambiguous); ISO (yyyy-mm-dd) is always among them."""
    return [f for f in formats.get_format("DATE_INPUT_FORMATS") if "%y" not in f]


def date_display_format() -> str:
    """How a date is written in the active language's date fields: day first for en-gb, fr and pt."""
    written = [f for f in date_input_formats() if not f.startswith("%Y")]
    return (written or date_input_formats())[0]


def date_placeholder() -> str:
    """The expected format in the reader's words: dd/mm/yyyy, jj/mm/aaaa, dd/mm/aaaa."""
    return (
        date_display_format().replace("%d", gettext("dd")).replace("%m", gettext("mm")).replace("%Y", gettext("yyyy"))
    )


class LocalDateInput(forms.DateInput):
    """A date typed as the reader's language writes it (02/03/1970), not the browser's date
    picker, whose format follows the phone's settings rather than the portal's language."""

    input_type = "text"

    def format_value(self, value):
        if hasattr(value, "strftime"):
            return value.strftime(date_display_format())
        return value

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        context["widget"]["attrs"].setdefault("placeholder", date_placeholder())
        context["widget"]["attrs"].setdefault("inputmode", "numeric")
        return context


class LocalDateField(forms.DateField):
    """A date in the active language's formats (or ISO)."""

    widget = LocalDateInput

    @property
    def input_formats(self):
        return date_input_formats()


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


class MultipleImageInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleImageField(forms.FileField):
    """A list of uploaded files; each is decoded and checked by the case_submit service."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("widget", MultipleImageInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data] if data else []
        files = [f for f in files if f]
        if not files:
            if self.required:
                raise forms.ValidationError(_("Take or choose at least one photo of the lesion."), code="required")
            return []
        if len(files) > settings.UPLOAD_MAX_FILES:
            raise forms.ValidationError(
                ngettext(
                    "Attach at most %(count)s photo per case.",
                    "Attach at most %(count)s photos per case.",
                    settings.UPLOAD_MAX_FILES,
                )
                % {"count": settings.UPLOAD_MAX_FILES},
                code="too_many",
            )
        return files


# A tick box per sign of diagnosis.vocabulary.CASE_SIGNS, labelled with its question.
CaseSignsForm = type(
    "CaseSignsForm",
    (forms.Form,),
    {sign.field: forms.BooleanField(label=sign.question, required=False) for sign in CASE_SIGNS},
)


class CaseForm(CaseSignsForm):
    body_site = forms.ChoiceField(
        label=_("Body site"),
        choices=[("", _("Choose where the lesion is")), *Case.BodySite.choices],
    )
    duration = forms.ChoiceField(
        label=_("How long has it been there?"),
        choices=Case.Duration.choices,
        initial=Case.Duration.UNKNOWN,
        widget=forms.RadioSelect,
    )
    diameter_mm = forms.IntegerField(
        label=_("Largest diameter (mm)"),
        required=False,
        min_value=1,
        max_value=500,
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
        help_text=_("Measure across the widest part, if you can."),
    )
    notes = forms.CharField(
        label=_("Notes"),
        required=False,
        max_length=NOTES_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Anything else the specialist should know."),
    )
    lesion = forms.ModelChoiceField(
        label=_("Which lesion?"),
        queryset=None,
        required=False,
        empty_label=_("A new lesion"),
        widget=forms.RadioSelect,
    )
    lesion_label = forms.CharField(
        label=_("Name for a new lesion"),
        max_length=100,
        required=False,
        help_text=_('Optional, e.g. "mole left shoulder".'),
    )
    images = MultipleImageField(label=_("Photos"))
    image_kinds = forms.MultipleChoiceField(
        choices=LesionImage.Kind.choices, required=False, widget=forms.MultipleHiddenInput
    )

    HISTORY_FIELDS = tuple(sign.field for sign in HISTORY_SIGNS)
    ABCDE_FIELDS = tuple(sign.field for sign in ABCDE_SIGNS)

    def __init__(self, *args, lesions=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The patient's own lesions only: anything else posted is "not one of the available choices".
        self.fields["lesion"].queryset = lesions if lesions is not None else Lesion.objects.none()

    def lesion_choices(self):
        """(lesion, its latest photo or None) for the picker's thumbnails."""
        rows = []
        for lesion in self.fields["lesion"].queryset:
            latest = LesionImage.objects.filter(case__lesion=lesion).order_by("-case__created_at", "id").first()
            rows.append((lesion, latest))
        return rows

    def history_fields(self):
        return [self[name] for name in self.HISTORY_FIELDS]

    def abcde_fields(self):
        return [self[name] for name in self.ABCDE_FIELDS]

    def service_kwargs(self) -> dict:
        """The cleaned data as keyword arguments of diagnosis.services.case_submit."""
        data = self.cleaned_data
        kwargs = {name: data[name] for name in Case.HISTORY_FIELDS}
        kwargs.update(
            body_site=data["body_site"],
            notes=data["notes"],
            images=data["images"],
            image_kinds=data["image_kinds"][: len(data["images"])],
            lesion=data.get("lesion"),
            lesion_label=data.get("lesion_label", ""),
        )
        return kwargs

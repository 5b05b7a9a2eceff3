"""Web forms: patient registration and case submission. Writes happen in services."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from skinportal.text import NOTES_MAX_LENGTH

from .models import Case, Lesion, LesionImage
from .vocabulary import ABCDE_SIGNS, CASE_SIGNS, HISTORY_SIGNS


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

"""A patient of a clinic: the clinic's own number, identity, contact, skin type and consent."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Clinic


class Patient(models.Model):
    class Sex(models.TextChoices):
        FEMALE = "female", _("Female")
        MALE = "male", _("Male")
        OTHER = "other", _("Other")
        UNKNOWN = "unknown", _("Unknown")

    class SkinType(models.TextChoices):
        # Fitzpatrick phototypes.
        I = "I", _("I (always burns, never tans)")  # noqa: E741
        II = "II", _("II (usually burns, tans minimally)")
        III = "III", _("III (sometimes burns, tans uniformly)")
        IV = "IV", _("IV (burns minimally, always tans well)")
        V = "V", _("V (very rarely burns, tans very easily)")
        VI = "VI", _("VI (never burns)")

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="patients")
    identifier = models.CharField(
        _("patient number"),
        max_length=64,
        help_text=_("The clinic's own patient number; unique within the clinic."),
    )
    full_name = models.CharField(_("full name"), max_length=200)
    date_of_birth = models.DateField(_("date of birth"))
    sex = models.CharField(_("sex"), max_length=10, choices=Sex.choices, default=Sex.UNKNOWN)
    skin_type = models.CharField(_("skin type"), max_length=3, choices=SkinType.choices, blank=True)
    # How to reach the patient with a result or a referral; both optional.
    phone = models.CharField(
        _("contact phone"), max_length=32, blank=True, help_text=_("Contact phone number, e.g. +254 712 345 678.")
    )
    village = models.CharField(_("village"), max_length=200, blank=True, help_text=_("Village or neighbourhood."))
    consent_given = models.BooleanField(
        _("consent given"),
        default=False,
        help_text=_("Consent to photograph the lesion and share it for analysis."),
    )
    consent_recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    consent_recorded_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="patients_created",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # The table kept its name when patients became an app of their own.
        db_table = "diagnosis_patient"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "identifier"],
                name="patient_identifier_unique_per_clinic",
            ),
            # Identifiers are compared case-insensitively within a clinic.
            models.UniqueConstraint(
                Lower("identifier"),
                "clinic",
                name="patient_identifier_unique_per_clinic_ci",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.full_name} ({self.identifier})"

    def clean(self) -> None:
        if self.date_of_birth and self.date_of_birth > timezone.localdate():
            raise ValidationError({"date_of_birth": _("Date of birth cannot be in the future.")})
        if self.date_of_birth and self.date_of_birth.year < 1900:
            raise ValidationError({"date_of_birth": _("Date of birth cannot be before 1900.")})

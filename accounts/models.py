"""Clinics, users with a role, and the audit log."""

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


class Clinic(models.Model):
    name = models.CharField(_("name"), max_length=200, unique=True)
    address = models.TextField(_("address"), blank=True)
    # Where the clinic is, for the day's UV index (clinics/uv.py); optional.
    latitude = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(-90), MaxValueValidator(90)],
        help_text=_("Degrees north (negative: south), e.g. -1.2921 for Nairobi."),
    )
    longitude = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(-180), MaxValueValidator(180)],
        help_text=_("Degrees east (negative: west), e.g. 36.8219 for Nairobi."),
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    class Role(models.TextChoices):
        CLINIC_STAFF = "clinic_staff", _("Clinic staff")
        SPECIALIST = "specialist", _("Specialist")
        ADMINISTRATOR = "administrator", _("Administrator")

    role = models.CharField(_("role"), max_length=20, choices=Role.choices, default=Role.CLINIC_STAFF)
    clinics = models.ManyToManyField(
        Clinic,
        blank=True,
        related_name="members",
        verbose_name=_("clinics"),
        help_text=_("Clinic staff: the clinics they work in. Specialists: the clinics whose referrals they serve."),
    )

    language = models.CharField(
        _("language"),
        max_length=10,
        blank=True,
        default="",
        db_default="",  # rows written by code that predates the field get no language
        choices=settings.LANGUAGES,
        help_text=_("The language of the user's pages, emails and notifications. Blank: the browser's."),
    )

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username

    @property
    def is_clinic_staff(self) -> bool:
        return self.role == self.Role.CLINIC_STAFF

    @property
    def is_specialist(self) -> bool:
        return self.role == self.Role.SPECIALIST

    @property
    def is_administrator(self) -> bool:
        return self.is_superuser or self.role == self.Role.ADMINISTRATOR


# Importable as accounts.models.Role as well as User.Role.
Role = User.Role


class AuditEvent(models.Model):
    """One clinical action: who, what, which object, when, from where. Append-only."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_events",
    )
    # Kept beside the foreign key: deleting a user empties `actor`, never who did it.
    actor_username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    clinic = models.ForeignKey(
        Clinic,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_events",
    )
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        target = f" {self.object_type}:{self.object_id}" if self.object_type else ""
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_id} {self.action}{target}"

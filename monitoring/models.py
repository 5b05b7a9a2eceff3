"""The alerts already sent, so that each condition is told once per week and model version."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class FieldAlert(models.Model):
    """One alert to the administrators (monitoring/alerts.py); the unique key makes it once only."""

    class Kind(models.TextChoices):
        SENSITIVITY_LOW = "sensitivity_low", _("Field sensitivity below its alert level")
        TURNED_BACK_HIGH = "turned_back_high", _("Share of photos turned back above its alert level")

    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    # The model version and the ISO week the condition held in, e.g. "ham10000-mobilenetv2-v2:2025-W07".
    key = models.CharField(_("condition"), max_length=200)
    details = models.JSONField(_("figures"), default=dict, blank=True)
    created_at = models.DateTimeField(_("sent at"), auto_now_add=True)

    class Meta:
        verbose_name = _("field alert")
        verbose_name_plural = _("field alerts")
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["kind", "key"], name="field_alert_once_per_condition")]

    def __str__(self) -> str:
        return f"{self.kind} {self.key}"

"""Follow-ups: a specialist's "monitor: photograph it again in N months" on a lesion."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from diagnosis.models import Case, Lesion
from triage.models import Review


class FollowUp(models.Model):
    """When a monitored lesion is due to be photographed again; a new case on the lesion completes it."""

    class Status(models.TextChoices):
        DUE = "due", _("Due")
        COMPLETED = "completed", _("Completed by a new case")
        CANCELLED = "cancelled", _("Replaced by a later answer")

    lesion = models.ForeignKey(Lesion, verbose_name=_("lesion"), on_delete=models.PROTECT, related_name="follow_ups")
    review = models.OneToOneField(
        Review, verbose_name=_("specialist's answer"), on_delete=models.PROTECT, related_name="follow_up"
    )
    due_on = models.DateField(_("due on"), db_index=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.DUE, db_index=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    notified_at = models.DateTimeField(_("notified at"), null=True, blank=True)
    completed_by = models.ForeignKey(
        Case, verbose_name=_("completed by"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("follow-up")
        verbose_name_plural = _("follow-ups")
        ordering = ["due_on", "id"]
        constraints = [
            models.UniqueConstraint(fields=["lesion"], condition=Q(status="due"), name="one_due_follow_up_per_lesion"),
            models.CheckConstraint(
                condition=~Q(status="completed") | Q(completed_by__isnull=False),
                name="follow_up_completed_by_a_case",
            ),
        ]

    def __str__(self) -> str:
        return f"Follow-up of lesion {self.lesion_id} due {self.due_on} ({self.get_status_display()})"

    @property
    def overdue(self) -> bool:
        return self.status == self.Status.DUE and self.due_on < timezone.localdate()

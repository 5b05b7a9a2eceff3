"""Referrals, reviews and notifications in Django admin: administrators read them, audited.

Every field here belongs to the workflow, which changes only through triage.services (the
pages and the API); so nothing can be added, changed or deleted by hand here.
"""

from django.contrib import admin
from django.http import HttpRequest

from diagnosis.admin import AuditedAdmin

from .models import InformationRequest, Notification, Referral, Review


class ReadOnlyAuditedAdmin(AuditedAdmin):
    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class ReviewInline(admin.StackedInline):
    model = Review
    extra = 0
    can_delete = False
    fields = (
        "reviewer",
        "diagnosis",
        "diagnosis_text",
        "agrees_with_model",
        "model_top_class",
        "outcome",
        "follow_up_months",
        "message",
        "private_note",
        "supersedes",
        "created_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Referral)
class ReferralAdmin(ReadOnlyAuditedAdmin):
    audit_name = "referral"
    list_display = ("id", "case", "clinic", "urgency", "source", "status", "claimed_by", "referred_at", "due_at")
    list_filter = ("status", "urgency", "source", "clinic")
    search_fields = ("case__patient__identifier",)
    list_select_related = ("case", "clinic", "claimed_by")
    inlines = (ReviewInline,)


@admin.register(Review)
class ReviewAdmin(ReadOnlyAuditedAdmin):
    audit_name = "review"
    list_display = ("id", "referral", "reviewer", "diagnosis", "outcome", "agrees_with_model", "created_at")
    list_filter = ("outcome", "diagnosis", "agrees_with_model")


@admin.register(InformationRequest)
class InformationRequestAdmin(ReadOnlyAuditedAdmin):
    audit_name = "information_request"
    list_display = ("id", "referral", "requested_by", "requested_at", "answered_at")


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAuditedAdmin):
    audit_name = "notification"
    list_display = ("id", "recipient", "kind", "title", "created_at", "read_at", "emailed_at")
    list_filter = ("kind",)

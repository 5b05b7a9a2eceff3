from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from knox.models import AuthToken

from .models import AuditEvent, Clinic, User
from .services import audit_record, user_tokens_revoke
from .signals import ADMIN_REQUEST, clinic_deactivation_refusals


def _plain(value):
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return getattr(value, "pk", None) if hasattr(value, "_meta") else str(value)


def _changes(before, after, fields) -> dict:
    """Old and new values of the changed fields, as the audit log keeps them (never a password hash)."""
    return {
        field: {"old": _plain(getattr(before, field, None)) if before else None, "new": _plain(getattr(after, field))}
        for field in fields
        if hasattr(after, field) and field != "password" and not field.startswith("password")
    }


class AdminRequestMixin:
    """Every write through these admin pages knows its administrator (``signals.ADMIN_REQUEST``)."""

    def changeform_view(self, request, *args, **kwargs):
        token = ADMIN_REQUEST.set(request)
        try:
            return super().changeform_view(request, *args, **kwargs)
        finally:
            ADMIN_REQUEST.reset(token)

    def changelist_view(self, request, *args, **kwargs):
        token = ADMIN_REQUEST.set(request)
        try:
            return super().changelist_view(request, *args, **kwargs)
        finally:
            ADMIN_REQUEST.reset(token)


class ClinicAdminForm(forms.ModelForm):
    class Meta:
        model = Clinic
        fields = "__all__"  # noqa: DJ007 - the admin's own form: every field the admin shows

    def clean(self):
        data = super().clean()
        # Deactivating hides the clinic's records from its staff and its specialists: refused while
        # work of the clinic would be stranded (referrals waiting for a specialist or the clinic).
        if self.instance.pk and self.instance.is_active and data.get("is_active") is False:
            refusals = clinic_deactivation_refusals(self.instance)
            if refusals:
                raise ValidationError({"is_active": refusals})
        return data


@admin.register(Clinic)
class ClinicAdmin(admin.ModelAdmin):
    form = ClinicAdminForm
    list_display = ("name", "is_active", "latitude", "longitude", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "address")

    # A clinic's is_active hides its records from everyone: every change is audited, old and new.
    def save_model(self, request: HttpRequest, obj, form, change: bool) -> None:
        before = Clinic.objects.filter(pk=obj.pk).first() if change else None
        super().save_model(request, obj, form, change)
        fields = sorted(form.changed_data) if form is not None else []
        audit_record(
            actor=request.user,
            action=f"clinic.{'admin_change' if change else 'admin_create'}",
            obj=obj,
            request=request,
            clinic=obj,
            details={"fields": fields, "changes": _changes(before, obj, fields)},
        )

    def delete_model(self, request: HttpRequest, obj) -> None:
        audit_record(actor=request.user, action="clinic.admin_delete", obj=obj, request=request)
        super().delete_model(request, obj)


@admin.register(User)
class UserAdmin(AdminRequestMixin, DjangoUserAdmin):
    list_display = (
        "username",
        "email",
        "role",
        "is_active",
        "is_superuser",
        "last_login",
    )
    list_filter = ("role", "is_active", "is_superuser", "clinics")
    filter_horizontal = ("clinics", "groups", "user_permissions")
    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        ("Skin Portal", {"fields": ("role", "clinics", "language")}),
    )
    add_fieldsets = (
        *DjangoUserAdmin.add_fieldsets,
        ("Skin Portal", {"fields": ("role", "clinics", "language")}),
    )
    actions = ("deactivate",)

    # Who may see which clinic's patients is decided here: every grant and removal is audited.
    def save_model(self, request: HttpRequest, obj, form, change: bool) -> None:
        before = User.objects.filter(pk=obj.pk).first() if change else None
        super().save_model(request, obj, form, change)
        fields = sorted(form.changed_data) if form is not None else []
        audit_record(
            actor=request.user,
            action=f"user.{'admin_change' if change else 'admin_create'}",
            obj=obj,
            request=request,
            details={"fields": fields, "changes": _changes(before, obj, fields)},
        )

    def user_change_password(self, request: HttpRequest, id, form_url=""):
        token = ADMIN_REQUEST.set(request)
        try:
            return super().user_change_password(request, id, form_url)
        finally:
            ADMIN_REQUEST.reset(token)

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        if "clinics" in form.changed_data:
            audit_record(
                actor=request.user,
                action="user.clinics_change",
                obj=form.instance,
                request=request,
                details={"clinics": sorted(form.instance.clinics.values_list("pk", flat=True))},
            )

    def delete_model(self, request: HttpRequest, obj) -> None:
        audit_record(actor=request.user, action="user.admin_delete", obj=obj, request=request)
        super().delete_model(request, obj)

    @admin.action(description="Deactivate selected users (they can no longer sign in)")
    def deactivate(self, request: HttpRequest, queryset) -> None:
        users = list(queryset.exclude(pk=request.user.pk).filter(is_active=True))
        updated = queryset.filter(pk__in=[user.pk for user in users]).update(is_active=False)
        for user in users:
            audit_record(actor=request.user, action="user.deactivate", obj=user, request=request)
            # queryset.update() sends no signal: revoke the API tokens here.
            user_tokens_revoke(user=user, reason="deactivation", request=request, actor=request.user)
        self.message_user(request, f"{updated} user(s) deactivated.")


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit log is append-only: readable here, never added, changed or deleted."""

    list_display = (
        "created_at",
        "actor_username",
        "action",
        "object_type",
        "object_id",
        "clinic",
        "ip_address",
    )
    list_filter = ("action", "object_type", "clinic")
    search_fields = ("actor_username", "object_id", "ip_address")
    date_hierarchy = "created_at"
    list_select_related = ("actor", "clinic")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


# API tokens are stored as digests and are nobody's business in the admin.
if admin.site.is_registered(AuthToken):
    admin.site.unregister(AuthToken)


# Lockouts (django-axes): deleting an attempt unlocks that username at that address.
if admin.site.is_registered(AccessAttempt):
    admin.site.unregister(AccessAttempt)


@admin.register(AccessAttempt)
class LockoutAdmin(AccessAttemptAdmin):
    """Failed sign-ins per username and address; delete a row to unlock (audited)."""

    def _audit_unlock(self, request: HttpRequest, attempt: AccessAttempt) -> None:
        audit_record(
            actor=request.user,
            action="auth.unlock",
            request=request,
            details={"username": attempt.username or "", "address": attempt.ip_address or ""},
        )

    def delete_model(self, request: HttpRequest, obj) -> None:
        self._audit_unlock(request, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        for attempt in queryset:
            self._audit_unlock(request, attempt)
        super().delete_queryset(request, queryset)

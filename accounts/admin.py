from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.http import HttpRequest
from knox.models import AuthToken

from .models import AuditEvent, Clinic, User
from .services import audit_record, user_tokens_revoke


@admin.register(Clinic)
class ClinicAdmin(admin.ModelAdmin):
    list_display = ("name", "is_active", "latitude", "longitude", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "address")


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
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
        super().save_model(request, obj, form, change)
        audit_record(
            actor=request.user,
            action=f"user.{'admin_change' if change else 'admin_create'}",
            obj=obj,
            request=request,
            details={"fields": sorted(form.changed_data)} if form is not None else {},
        )

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

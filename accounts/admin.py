from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.http import HttpRequest

from .models import AuditEvent, Clinic, User


@admin.register(Clinic)
class ClinicAdmin(admin.ModelAdmin):
    list_display = ("name", "is_active", "created_at")
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
        ("Skin Portal", {"fields": ("role", "clinics")}),
    )
    add_fieldsets = (
        *DjangoUserAdmin.add_fieldsets,
        ("Skin Portal", {"fields": ("role", "clinics")}),
    )
    actions = ("deactivate",)

    @admin.action(description="Deactivate selected users (they can no longer sign in)")
    def deactivate(self, request: HttpRequest, queryset) -> None:
        updated = queryset.exclude(pk=request.user.pk).update(is_active=False)
        self.message_user(request, f"{updated} user(s) deactivated.")


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit log is append-only: readable here, never added, changed or deleted."""

    list_display = (
        "created_at",
        "actor",
        "action",
        "object_type",
        "object_id",
        "clinic",
        "ip_address",
    )
    list_filter = ("action", "object_type", "clinic")
    search_fields = ("actor__username", "object_id", "ip_address")
    date_hierarchy = "created_at"
    list_select_related = ("actor", "clinic")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

from django.contrib import admin
from django.http import HttpRequest

from .models import FieldAlert


@admin.register(FieldAlert)
class FieldAlertAdmin(admin.ModelAdmin):
    """The alerts sent, read-only: they are written only by monitoring.alerts."""

    list_display = ("kind", "key", "created_at")
    list_filter = ("kind",)
    readonly_fields = ("kind", "key", "details", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

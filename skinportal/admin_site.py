"""The Django admin, open to administrators only.

The admin reads every clinic's records without the user-scoped selectors, so the whole site,
not only the clinical models' pages (diagnosis.admin.AuditedAdmin), is closed to an account
that is not an administrator, whatever ``is_staff`` flag or model permissions it was given:
the audit log, the users and clinics, the follow-ups and the sign-in records included.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest


class PortalAdminSite(admin.AdminSite):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Admin sign-in counts against the same per-address budget as the web login and the API
        # token; failures lock out per username and address (django-axes) on all three.
        from accounts.forms import ThrottledAdminAuthenticationForm

        self.login_form = ThrottledAdminAuthenticationForm

    def has_permission(self, request: HttpRequest) -> bool:
        return super().has_permission(request) and bool(getattr(request.user, "is_administrator", False))


class PortalAdminConfig(AdminConfig):
    default_site = "skinportal.admin_site.PortalAdminSite"

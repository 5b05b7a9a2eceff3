"""The web sign-in page with the sign-in budget applied, and the audited password change."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.forms.forms import NON_FIELD_ERRORS

from .forms import TOO_MANY_ATTEMPTS, ThrottledAuthenticationForm


class LoginView(auth_views.LoginView):
    form_class = ThrottledAuthenticationForm

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.has_error(NON_FIELD_ERRORS, TOO_MANY_ATTEMPTS):
            response.status_code = 429
        return response


class PasswordChangeView(auth_views.PasswordChangeView):
    """The user's own password change: audited with the request (accounts/signals.py), and
    every API token of the user revoked."""

    def form_valid(self, form):
        form.user._audit_request = self.request
        return super().form_valid(form)

"""Sign-in forms that count attempts against the sign-in budget (accounts.throttling)."""

from __future__ import annotations

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from .throttling import login_wait_seconds, too_many_attempts_message

TOO_MANY_ATTEMPTS = "too_many_attempts"


class ThrottledLoginMixin:
    """Checks the budget before the password is: a refused attempt tries no password."""

    def clean(self):
        if self.request is not None:
            wait = login_wait_seconds(self.request)
            if wait is not None:
                raise ValidationError(too_many_attempts_message(wait), code=TOO_MANY_ATTEMPTS)
        return super().clean()


class ThrottledAuthenticationForm(ThrottledLoginMixin, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(ThrottledLoginMixin, AdminAuthenticationForm):
    pass

"""The web sign-in page, with the sign-in budget applied."""

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

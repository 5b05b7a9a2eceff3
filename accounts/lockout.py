"""What django-axes keys failed sign-ins on, and what a locked-out client is told.

The username is keyed the way the authentication backend looks it up: Django's sign-in
form and ``User.normalize_username`` apply Unicode NFKC, so ``ｐrobe`` (fullwidth p) and
``p𝐫obe`` are the user ``probe`` and share that user's failure count. Case is folded too,
so ``PROBE`` gets no fresh allowance either. The address is accounts.services.client_ip
(X-Forwarded-For only behind a trusted proxy).
"""

from __future__ import annotations

import math
import unicodedata

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import render
from django.utils.translation import ngettext

from .services import client_ip


def normalised_username(value) -> str:
    """The lookup form of a submitted username: NFKC (as the backend), stripped, case-folded."""
    if not isinstance(value, str):
        return ""
    return unicodedata.normalize("NFKC", value).strip().casefold()[:150]


def attempted_username(request, credentials: dict | None = None) -> str:
    """AXES_USERNAME_CALLABLE: the normalised username of this sign-in attempt."""
    value = (credentials or {}).get("username")
    if value is None and request is not None:
        data = getattr(request, "data", None)
        if data is None:
            data = getattr(request, "POST", {})
        try:
            value = data.get("username")
        except AttributeError:  # a JSON body that is not an object
            value = None
    return normalised_username(value)


UNKNOWN_ADDRESS = "0.0.0.0"


def attempted_address(request) -> str:
    """AXES_CLIENT_IP_CALLABLE: the client address as the audit log records it.

    A request without a usable address (a misconfigured proxy, a test client) counts under the
    unspecified address 0.0.0.0: axes stores it in an address column, which PostgreSQL refuses
    anything but an address in.
    """
    return client_ip(getattr(request, "_request", request)) or UNKNOWN_ADDRESS


def lockout_minutes() -> int:
    return max(1, math.ceil(settings.AXES_COOLOFF_TIME.total_seconds() / 60))


def lockout_message() -> str:
    minutes = lockout_minutes()
    return ngettext(
        "Too many failed sign-in attempts. Wait %(minutes)s minute and try again.",
        "Too many failed sign-in attempts. Wait %(minutes)s minutes and try again.",
        minutes,
    ) % {"minutes": minutes}


def lockout_response(request, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: 429, as JSON for the API and as the sign-in page for people."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": lockout_message()}, status=429, headers={"Cache-Control": "private, no-store"})
    from django.contrib.auth.forms import AuthenticationForm

    context = {"lockout_message": lockout_message(), "form": AuthenticationForm(request)}
    return render(request, "registration/login.html", context, status=429)

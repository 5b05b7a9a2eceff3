"""Limits on sign-in attempts (web login, admin login and the API token endpoint).

Two budgets, both in settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]: attempts per client
address ("login_ip") and attempts per username ("login_user"), so neither one address
trying many accounts nor many addresses trying one account get far. The client address is
accounts.services.client_ip: X-Forwarded-For counts only behind a trusted proxy, so a
client cannot get a fresh budget by sending a made-up header.

Counts live in the default cache; with several web processes that must be a shared cache
(CACHE_URL, e.g. Redis), or each process keeps its own count.
"""

from __future__ import annotations

import math

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from .services import client_ip

TOO_MANY_ATTEMPTS = "Too many sign-in attempts. Wait {minutes} minute(s) and try again."


def _submitted_username(request) -> str:
    """The username a sign-in request names, from the DRF request's data or a form post."""
    data = getattr(request, "data", None)
    if data is None:
        data = request.POST
    try:
        value = data.get("username", "")
    except AttributeError:  # a JSON body that is not an object
        return ""
    return value.strip().lower()[:150] if isinstance(value, str) else ""


class _LoginThrottle(SimpleRateThrottle):
    def get_rate(self) -> str:
        # Read when used, not when DRF is imported, so a changed setting takes effect.
        return api_settings.DEFAULT_THROTTLE_RATES[self.scope]


class LoginIpThrottle(_LoginThrottle):
    """Sign-in attempts per client address."""

    scope = "login_ip"

    def get_ident(self, request) -> str:
        return client_ip(request) or "unknown"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginUsernameThrottle(_LoginThrottle):
    """Sign-in attempts per username, whichever address they come from."""

    scope = "login_user"

    def get_cache_key(self, request, view) -> str | None:
        username = _submitted_username(request)
        if not username:
            return None
        return self.cache_format % {"scope": self.scope, "ident": username}


LOGIN_THROTTLES = (LoginIpThrottle, LoginUsernameThrottle)


def login_wait_seconds(request) -> float | None:
    """Count this sign-in attempt; None if it may go ahead, else seconds until it may.

    Works with a DRF request and with a plain Django request (web and admin login forms).
    """
    waits = []
    for throttle_class in LOGIN_THROTTLES:
        throttle = throttle_class()
        if not throttle.allow_request(request, None):
            waits.append(throttle.wait() or 60)
    return max(waits) if waits else None


def too_many_attempts_message(wait: float) -> str:
    return TOO_MANY_ATTEMPTS.format(minutes=max(1, math.ceil(wait / 60)))

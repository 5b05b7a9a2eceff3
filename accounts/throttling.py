"""The rate of sign-in attempts per client address (web login, admin login, API token).

settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["login_ip"] bounds how fast one address
may try (any username, success or not). Failed sign-ins per username and address, with
lockout, reset on success and administrators' unlock, are django-axes' (accounts/lockout.py).
The client address is
accounts.services.client_ip: X-Forwarded-For counts only behind a trusted proxy, so a
client cannot get a fresh budget by sending a made-up header.

Counts live in the default cache; with several web processes that must be a shared cache
(CACHE_URL, e.g. Redis), or each process keeps its own count.
"""

from __future__ import annotations

import logging
import math

from django.utils.translation import ngettext
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from .services import client_ip

logger = logging.getLogger(__name__)


class _LoginThrottle(SimpleRateThrottle):
    def allow_request(self, request, view) -> bool:
        # With the cache (Redis) down the rate cannot be counted; sign-in still works, and
        # failures still lock out through django-axes, which counts in the database.
        try:
            return super().allow_request(request, view)
        except Exception as exc:  # noqa: BLE001
            logger.warning("sign-in rate not counted, the cache is unavailable: %s", exc)
            return True

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


LOGIN_THROTTLES = (LoginIpThrottle,)


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
    minutes = max(1, math.ceil(wait / 60))
    return ngettext(
        "Too many sign-in attempts. Wait %(minutes)s minute and try again.",
        "Too many sign-in attempts. Wait %(minutes)s minutes and try again.",
        minutes,
    ) % {"minutes": minutes}

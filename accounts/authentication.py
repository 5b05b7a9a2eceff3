"""API token authentication: django-rest-knox, without a second query on every request.

knox's ``TokenAuthentication`` also reads every other token of the user on each request to
delete the expired ones. That is housekeeping, not a check (an expired token is refused, and
deleted, whenever it is itself presented), and it cost one query per API request; here the
token presented is checked alone, and the sweep of expired tokens runs from beat
(``notifications.tokens_expired_delete``).
"""

from __future__ import annotations

from django.utils import timezone
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.settings import knox_settings
from knox.signals import token_expired


class TokenAuthentication(KnoxTokenAuthentication):
    def _cleanup_token(self, auth_token) -> bool:
        """True (and the token deleted) when the token presented has expired."""
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            username = auth_token.user.get_username()
            auth_token.delete()
            token_expired.send(sender=self.__class__, username=username, source="auth_token")
            return True
        return False


def tokens_expired_delete() -> int:
    """Delete every expired API token; return how many (beat, hourly)."""
    from knox.models import get_token_model

    if knox_settings.TOKEN_TTL is None:
        return 0
    deleted, _by_model = get_token_model().objects.filter(expiry__lt=timezone.now()).delete()
    return deleted


try:  # the OpenAPI schema describes it as knox's scheme (drf-spectacular matches the exact class)
    from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme

    class PortalTokenScheme(KnoxTokenScheme):
        target_class = "accounts.authentication.TokenAuthentication"
except ImportError:  # pragma: no cover - drf-spectacular is a dependency of the portal
    pass

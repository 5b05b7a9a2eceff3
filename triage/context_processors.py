"""The unread notification count in every page's header."""

from __future__ import annotations

from .selectors import unread_count_for


def notifications(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"unread_notifications": unread_count_for(user=user)}

"""The language a page is shown in.

Before sign-in: the language cookie (set by the language menu), else the browser's
Accept-Language (Django's LocaleMiddleware). After sign-in: the user's own choice
(``User.language``) when they have made one. Emails and notifications are rendered in the
recipient's language with :func:`for_user`.
"""

from __future__ import annotations

from contextlib import contextmanager

from django.conf import settings
from django.http import HttpResponseRedirect
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST


def supported(code: str | None) -> str | None:
    """``code`` if the portal is written in it (or in its base language), else None."""
    if not code:
        return None
    try:
        return translation.get_supported_language_variant(code)
    except LookupError:
        return None


class UserLanguageMiddleware:
    """Activates a signed-in user's chosen language (after LocaleMiddleware and
    AuthenticationMiddleware); a user who has not chosen keeps the cookie or browser one."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        code = supported(getattr(user, "language", "")) if user is not None and user.is_authenticated else None
        if code:
            translation.activate(code)  # LocaleMiddleware's response then says Content-Language: code
            request.LANGUAGE_CODE = code
        return self.get_response(request)


@contextmanager
def for_user(user):
    """Renders what is inside in ``user``'s language (their choice, else the site default):
    for emails and anything else built outside the user's own request."""
    code = supported(getattr(user, "language", "")) or settings.LANGUAGE_CODE
    with translation.override(code):
        yield code


@require_POST
def set_language(request):
    """The language menu: remembers the choice in a cookie, and for a signed-in user on
    their account, so that every device and every email follows it."""
    code = supported(request.POST.get("language"))
    next_url = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
        next_url = "/"
    response = HttpResponseRedirect(next_url)
    if code is None:
        return response
    if request.user.is_authenticated and request.user.language != code:
        request.user.language = code
        request.user.save(update_fields=["language"])
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        code,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )
    return response

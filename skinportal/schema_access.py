"""Who may read the API's schema and its docs page (/api/schema/, /api/docs/).

Open where the portal is developed and tested; in production (``SKINPORTAL_API_DOCS_NEED_SIGN_IN``
in settings/production.py) only a signed-in user, by token or session, reads them: the
schema lists every operation and field, which an anonymous visitor has no need to know.
Read at each request, so the setting can change without reloading the URLs.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.permissions import BasePermission


class SchemaReader(BasePermission):
    def has_permission(self, request, view) -> bool:
        if not getattr(settings, "SKINPORTAL_API_DOCS_NEED_SIGN_IN", False):
            return True
        return bool(request.user and request.user.is_authenticated)

"""Cheap answers to polls of a case's result: an ETag from one small query, 304 when unchanged.

The case page polls its result card, and API clients poll ``GET /api/v1/cases/{id}/``, every
few seconds while the photos are analysed. The ETag is computed from
``selectors.case_result_version`` (the case's status, risk and last change, its photos'
count and last analysis change, their number of predictions), the reader and their language,
so an unchanged result is answered ``304 Not Modified`` without reading the photos or their
predictions, rendering, serialising or auditing anything (nothing is shown).
"""

from __future__ import annotations

import hashlib

from django.http import HttpRequest
from django.utils import translation

from .selectors import case_result_version


def result_etag(*, request: HttpRequest, pk, kind: str) -> tuple[str | None, tuple | None]:
    """(the ETag of what a poll of this case would show this reader, the version it is made
    from), or (None, None) when the reader cannot see the case (the full view answers 404)."""
    version = case_result_version(user=request.user, pk=pk)
    if version is None:
        return None, None
    user = request.user
    language = getattr(user, "language", "") or translation.get_language() or ""
    source = repr((kind, user.pk, getattr(user, "role", ""), language, version))
    return f'"{hashlib.sha256(source.encode()).hexdigest()[:24]}"', version


def unchanged(request: HttpRequest, etag: str | None) -> bool:
    """Whether the request's If-None-Match names this ETag (weak or strong)."""
    if etag is None:
        return False
    header = request.headers.get("If-None-Match", "")
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}
    return etag in tags

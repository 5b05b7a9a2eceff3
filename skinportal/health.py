"""Liveness probe. Readiness (/readyz: database, broker, model) lives beside the analysis code."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and answering; touches no database or broker."""
    return JsonResponse({"status": "ok"})

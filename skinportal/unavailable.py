"""While the database cannot be reached, answer 503 with Retry-After instead of a 500.

A database restart or fail-over takes seconds; clients (the web form's script, phones
sending cases, API clients) should retry, and must be told so. Views' database errors come
here through the middleware; the API's through skinportal.api.api_exception_handler.
"""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.http import JsonResponse

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
DATABASE_ERRORS = (OperationalError, InterfaceError)
MESSAGE = "The service is briefly unavailable (database). Retry shortly."


def unavailable_response() -> JsonResponse:
    response = JsonResponse({"detail": MESSAGE}, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, DATABASE_ERRORS):
            logger.warning("database unavailable for %s: %s", request.path, exception)
            return unavailable_response()
        return None

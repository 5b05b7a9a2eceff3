"""While the database or the photo storage cannot be reached, answer 503 with Retry-After instead of a 500.

A database restart or fail-over takes seconds; clients (the web form's script, phones
sending cases, API clients) should retry, and must be told so. Views' database errors come
here through the middleware; the API's through skinportal.api.api_exception_handler.
"""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.http import JsonResponse

logger = logging.getLogger(__name__)

try:  # object storage (SKINPORTAL_S3_BUCKET): an unreachable or throttling S3 service
    from botocore.exceptions import BotoCoreError, ClientError

    _S3_ERRORS: tuple[type[BaseException], ...] = (BotoCoreError, ClientError)
except ImportError:  # pragma: no cover - botocore comes with django-storages[s3]
    _S3_ERRORS = ()

RETRY_AFTER_SECONDS = 5
DATABASE_ERRORS = (OperationalError, InterfaceError)
MESSAGE = "The service is briefly unavailable (database). Retry shortly."
# What writing to the photo storage raises when it is full or cannot be reached.
STORAGE_ERRORS = (OSError, *_S3_ERRORS)
STORAGE_MESSAGE = "The photos cannot be stored right now (photo storage unavailable). Nothing was kept; retry shortly."


class StorageUnavailable(Exception):
    """The photo storage refused a write (a full disk, an unreachable S3 service): the request
    is answered 503 with Retry-After, and what it wrote so far is undone by the service."""


def unavailable_response(message: str = MESSAGE) -> JsonResponse:
    response = JsonResponse({"detail": message}, status=503)
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
        if isinstance(exception, StorageUnavailable):
            logger.warning("photo storage unavailable for %s: %s", request.path, exception.__cause__)
            return unavailable_response(STORAGE_MESSAGE)
        return None

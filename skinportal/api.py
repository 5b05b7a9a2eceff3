"""The REST API's base, shared by every app's endpoints: the one exception handler (every
error is JSON), the parsers with their body-size limit, private (uncached) responses, the base
view and the pagination. Apps import it from here; it imports none of them.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import (
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import UnreadablePostError
from rest_framework import exceptions, parsers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import APIView, exception_handler, set_rollback

from skinportal.unavailable import DATABASE_ERRORS, RETRY_AFTER_SECONDS, STORAGE_MESSAGE, StorageUnavailable
from skinportal.unavailable import MESSAGE as UNAVAILABLE

logger = logging.getLogger(__name__)


# --- Errors --------------------------------------------------------------------------------
class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request is too large."
    default_code = "too_large"


def _request_refused(exc: SuspiciousOperation) -> exceptions.APIException:
    """A request Django refuses to read (over its size or count limits, or malformed): 4xx, not 500."""
    logging.getLogger(f"django.security.{exc.__class__.__name__}").warning("API request refused: %s", exc)
    if isinstance(exc, RequestDataTooBig):
        return RequestTooLarge()
    if isinstance(exc, TooManyFilesSent):
        return exceptions.ParseError(f"Too many files in one request (at most {settings.UPLOAD_MAX_FILES} photos).")
    if isinstance(exc, TooManyFieldsSent):
        return exceptions.ParseError("Too many fields in one request.")
    return exceptions.ParseError("The request could not be read.")


def api_exception_handler(exc: Exception, context: dict) -> Response:
    """Every API error is JSON: DRF's own, Django's ValidationError, and anything else."""
    if isinstance(exc, DATABASE_ERRORS):
        logger.warning("database unavailable in API view %s: %s", context.get("view"), exc)
        set_rollback()
        return Response({"detail": UNAVAILABLE}, status=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    if isinstance(exc, StorageUnavailable):
        logger.warning("photo storage unavailable in API view %s: %s", context.get("view"), exc.__cause__)
        set_rollback()
        return Response({"detail": STORAGE_MESSAGE}, status=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    if isinstance(exc, SuspiciousOperation):
        exc = _request_refused(exc)
    elif isinstance(exc, UnreadablePostError):
        exc = exceptions.ParseError("The request body could not be read.")
    elif isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            detail = {
                ("non_field_errors" if field == "__all__" else field): messages
                for field, messages in exc.message_dict.items()
            }
        else:
            detail = {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(detail)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = exception_handler(exc, context)
    if response is not None:
        return response
    logger.exception("unhandled error in API view %s", context.get("view"), exc_info=exc)
    set_rollback()
    return Response(
        {"detail": "Internal server error."},
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


# --- Common to every endpoint ---------------------------------------------------------------
def _content_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


class _BodySizeLimit:
    """DRF's JSON and form parsers read the whole body, bypassing DATA_UPLOAD_MAX_MEMORY_SIZE.

    Multipart bodies are limited by Django itself (fields) and UploadSizeLimitHandler (files).
    """

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        if request is not None and _content_length(request) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            raise RequestTooLarge()
        return super().parse(stream, media_type, parser_context)


class _ReadableBody:
    """A body the decoders cannot read is the client's error (400), not the server's: JSON nested
    past Python's recursion limit, or a charset that cannot decode the body (``charset=punycode``;
    a charset Python does not know, Django drops before the parsers see it)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("The request body is nested too deeply.") from None
        except UnicodeError:
            raise exceptions.ParseError("The request body could not be decoded with its declared charset.") from None


class LimitedJSONParser(_ReadableBody, _BodySizeLimit, parsers.JSONParser):
    pass


class LimitedFormParser(_ReadableBody, _BodySizeLimit, parsers.FormParser):
    pass


class ReadableMultiPartParser(_ReadableBody, parsers.MultiPartParser):
    pass


PARSER_CLASSES = [LimitedJSONParser, LimitedFormParser, ReadableMultiPartParser]


class PrivateResponses:
    """Patient data must not stay in browser or proxy caches."""

    parser_classes = PARSER_CLASSES

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if not response.has_header("Cache-Control"):
            response["Cache-Control"] = "private, no-store"
        return response


class ApiView(PrivateResponses, APIView):
    pass


# --- Pagination ----------------------------------------------------------------------------
class Pages(PageNumberPagination):
    """DRF's page numbers, but `?page=` (empty) or any non-number is a 404 "Invalid page", as
    a page past the end is, instead of silently the first page: the schema says integer."""

    def get_page_number(self, request, paginator):
        value = request.query_params.get(self.page_query_param)
        number = value is None or value in self.last_page_strings or (value.isascii() and value.isdigit())
        if not number:  # ASCII digits only: "²".isdigit() is true too
            raise exceptions.NotFound(self.invalid_page_message.format(page_number=value, message="not a number"))
        return super().get_page_number(request, paginator)

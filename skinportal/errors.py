"""Error pages: JSON under /api/ and the private image files (API clients never get HTML), the usual pages elsewhere."""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views import defaults

# The REST API and the access-checked image files (diagnosis/urls.py) answer errors in JSON.
JSON_PREFIXES = ("/api/", "/media/")


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(JSON_PREFIXES)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": "Bad request."}, status=400)
    if request.headers.get("x-requested-with") == "XMLHttpRequest":
        # A page's script (the new-case form) reads JSON: a body over the request limit is a 413,
        # which it explains in the clinic's language; too many photos is said in its error list.
        if isinstance(exception, RequestDataTooBig):
            return JsonResponse({"errors": {"__all__": [_("The photos are too large to send together.")]}}, status=413)
        if isinstance(exception, TooManyFilesSent):
            count = settings.UPLOAD_MAX_FILES
            message = ngettext(
                "Attach at most %(count)s photo per case.", "Attach at most %(count)s photos per case.", count
            ) % {"count": count}
            return JsonResponse({"errors": {"images": [message]}}, status=400)
        unreadable = _("A photo could not be read. Remove it and try again.")
        return JsonResponse({"errors": {"__all__": [unreadable]}}, status=400)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": "You do not have permission to perform this action."}, status=403)
    return defaults.permission_denied(request, exception)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": "Internal server error."}, status=500)
    return defaults.server_error(request)


class AdminNulInQueryMiddleware:
    """A query string with a NUL character is refused (400) before the Django admin reads it: no
    legitimate link carries one, and PostgreSQL refuses it in a filter with an error (a 500 in
    the admin's list filters). The portal's own pages and API check their searches themselves,
    with a message in the form."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        query = request.META.get("QUERY_STRING", "")
        if request.path.startswith("/admin/") and ("%00" in query or any("\x00" in v for v in request.GET.values())):
            raise SuspiciousOperation("NUL character in the query string")
        return self.get_response(request)

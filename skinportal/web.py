"""What every server-rendered page shares: no caching of patient data, and forms' errors put where they belong."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse


def private_no_store(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """For every page that shows patient data: kept in no browser or proxy cache.

    Sets the header outright (not merged) so nothing upstream can leave a max-age beside
    it; the REST API sends the same value (skinportal.api.PrivateResponses).
    """

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response["Cache-Control"] = "private, no-store"
        return response

    return wrapped


def wants_json(request: HttpRequest) -> bool:
    return request.headers.get("x-requested-with") == "XMLHttpRequest"


# --- Helpers ---------------------------------------------------------------------------------
def shows_clinic(user) -> bool:
    """Lists name the clinic only for users who see more than one."""
    return not user.is_clinic_staff or user.clinics.count() > 1


def add_service_errors(form, exc: ValidationError) -> None:
    """Put a service's ValidationError on the form: by field where the form has it."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc.messages)
        return
    for field, errors in exc.error_dict.items():  # ValidationErrors, so their codes stay
        form.add_error(field if field in form.fields else None, errors)


def form_errors(form) -> dict[str, list[str]]:
    errors = {}
    for field, messages_ in form.errors.items():
        label = "" if field == "__all__" else str(form.fields[field].label or field)
        errors[field] = [f"{label}: {m}" if label else m for m in messages_]
    return errors

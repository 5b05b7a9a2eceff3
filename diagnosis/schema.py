"""OpenAPI schema post-processing: every operation documents the error answers it can give.

drf-spectacular documents the success answer of each view; the errors come from DRF and the
portal's exception handler (skinportal.api.api_exception_handler) for every view alike, so
they are added here once: all are JSON objects with a ``detail`` or, for 400, field names
with their messages.
"""

from __future__ import annotations

ERROR_COMPONENT = "Error"
ERRORS = {
    "400": "The request is invalid: field names with their messages, or `detail`.",
    "401": "No valid credentials (token missing, expired or revoked).",
    "403": "Signed in, but this role may not do this.",
    "404": "No such object, or not one this user may see.",
    "413": "The request body is too large.",
    "415": "Unsupported media type.",
    "429": "Too many requests (sign-in attempts or photos); see Retry-After.",
}
# Which errors each kind of operation can answer.
_PUBLIC = {"400", "415", "429"}  # the sign-in endpoint
_FILES = {"401", "404"}
_READS = {"400", "401", "403", "404"}
_WRITES = {"400", "401", "403", "404", "413", "415", "429"}


def _errors_for(path: str, method: str) -> set[str]:
    if path.endswith("/auth/token/"):
        return _PUBLIC
    if path.startswith("/media/"):
        return _FILES
    if method == "get":
        return _READS
    return _WRITES


def add_error_responses(result: dict, generator, request, public) -> dict:
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault(
        ERROR_COMPONENT,
        {
            "type": "object",
            "properties": {"detail": {"type": "string"}},
            "additionalProperties": True,
            "description": "An error: `detail`, or for a 400 the field names with lists of messages.",
        },
    )
    reference = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for code in sorted(_errors_for(path, method)):
                responses.setdefault(
                    code,
                    {"description": ERRORS[code], "content": {"application/json": {"schema": reference}}},
                )
    return result

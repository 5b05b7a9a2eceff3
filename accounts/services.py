"""Account-side services: the audit log."""

from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings
from django.db import models
from django.http import HttpRequest

from .models import AuditEvent, Clinic


def _valid_ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: REMOTE_ADDR, or X-Forwarded-For behind a trusted proxy.

    X-Forwarded-For is set by whoever sends the request, so it is only believed when the
    direct peer is one of settings.SKINPORTAL_TRUSTED_PROXIES; then the right-most address
    that is not itself a trusted proxy is the client.
    """
    remote = _valid_ip(request.META.get("REMOTE_ADDR", "") or "")
    trusted = set(getattr(settings, "SKINPORTAL_TRUSTED_PROXIES", []) or [])
    if remote is None or remote not in trusted:
        return remote
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    for hop in reversed([part for part in forwarded.split(",") if part.strip()]):
        address = _valid_ip(hop)
        if address is None:
            break
        if address not in trusted:
            return address
    return remote


def _clinic_of(obj: models.Model | None) -> Clinic | None:
    """The clinic an audited object belongs to, when it has one."""
    if obj is None:
        return None
    if isinstance(obj, Clinic):
        return obj
    for path in (
        "clinic",
        "patient.clinic",
        "case.patient.clinic",
        "image.case.patient.clinic",
    ):
        current: Any = obj
        for attr in path.split("."):
            current = getattr(current, attr, None)
            if current is None:
                break
        if isinstance(current, Clinic):
            return current
    return None


def audit_record(
    *,
    actor,
    action: str,
    obj: models.Model | None = None,
    request: HttpRequest | None = None,
    clinic: Clinic | None = None,
    details: dict | None = None,
) -> AuditEvent:
    """Write one audit event; the clinic is taken from the object when not given."""
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    return AuditEvent.objects.create(
        actor=actor,
        actor_username=actor.get_username() if actor is not None else "",
        action=action,
        object_type=obj._meta.model_name if obj is not None else "",
        object_id=str(obj.pk) if obj is not None and obj.pk is not None else "",
        clinic=clinic if clinic is not None else _clinic_of(obj),
        ip_address=client_ip(request) if request is not None else None,
        user_agent=(request.META.get("HTTP_USER_AGENT", "") if request is not None else "")[:512],
        details=details or {},
    )


def user_tokens_revoke(*, user, reason: str, request: HttpRequest | None = None, actor=None) -> int:
    """Delete every API token of this user (logout everywhere, password change, deactivation)."""
    from knox.models import AuthToken

    count, _ = AuthToken.objects.filter(user=user).delete()
    if count:
        audit_record(
            actor=actor if actor is not None else user,
            action="auth.tokens_revoke",
            obj=user,
            request=request,
            details={"reason": reason, "tokens": count},
        )
    return count


def access_denied_record(*, user, object_type: str, object_id, request: HttpRequest | None = None) -> None:
    """Audit an attempt to reach an object that exists but is outside this user's scope."""
    audit_record(
        actor=user,
        action="access.denied",
        request=request,
        details={"object_type": object_type, "object_id": str(object_id), "path": request.path if request else ""},
    )

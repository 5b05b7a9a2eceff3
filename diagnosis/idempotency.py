"""Idempotency-Key for case submission: a retried upload never creates a second case.

A phone on a weak signal often sends the same case twice: the upload reached the server
but the answer never reached the phone. With an ``Idempotency-Key`` header (any string of
1 to 255 visible ASCII characters, a UUID in practice), the first successful answer is kept
for KEY_LIFETIME; the same key from the same user then gets that answer again, with the
same case id, and nothing is created. The same key with a different request (other fields
or other photos) is a 422. Keys belong to a user: another user's identical key is a
different key. A submission that fails keeps nothing, so the sender can correct and retry.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.services import audit_record

from .models import IdempotencyRecord
from .services import submitted_files_discard

HEADER = "Idempotency-Key"
KEY_LIFETIME = timedelta(hours=24)
_KEY = re.compile(r"[\x21-\x7e]{1,255}")
# Fields that differ between two sends of the same form without changing the case.
_IGNORED_FIELDS = frozenset({"csrfmiddlewaretoken"})


class IdempotencyKeyReused(Exception):
    """The key was used before, by this user, for a different request."""


@dataclass(frozen=True)
class Answer:
    status_code: int
    body: dict
    replayed: bool


def key_from(request) -> str | None:
    """The request's Idempotency-Key, None when it has none; ValidationError when malformed."""
    value = request.headers.get(HEADER)
    if value is None:
        return None
    value = value.strip()
    if not _KEY.fullmatch(value):
        raise ValidationError(
            {"idempotency_key": _("The Idempotency-Key header must be 1 to 255 visible ASCII characters.")}
        )
    return value


def _file_digest(upload: UploadedFile) -> str:
    digest = hashlib.sha256()
    upload.seek(0)
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()


def request_fingerprint(*, scope: str, data, files) -> str:
    """SHA-256 over the request's fields and its files' contents, in a canonical order.

    ``data`` and ``files`` are QueryDict/MultiValueDict (or plain dicts); files are hashed
    by content, so the same photo under another file name is the same request.
    """
    parts: list[tuple[str, list[str]]] = []

    def values_of(mapping, name):
        getlist = getattr(mapping, "getlist", None)
        values = getlist(name) if getlist else mapping[name]
        return values if isinstance(values, list | tuple) else [values]

    for mapping in (data, files):
        if mapping is None:
            continue
        for name in sorted(mapping.keys()):
            if name in _IGNORED_FIELDS:
                continue
            values = [
                "file:" + _file_digest(value) if isinstance(value, UploadedFile) else "value:" + str(value)
                for value in values_of(mapping, name)
            ]
            parts.append((name, values))
    digest = hashlib.sha256(scope.encode())
    for name, values in sorted(parts, key=lambda part: part[0]):
        digest.update(b"\x00" + name.encode() + b"\x01" + "\x02".join(values).encode())
    return digest.hexdigest()


def submission_once(
    *,
    user,
    key: str,
    fingerprint: str,
    create: Callable[[], tuple[int, dict, object | None]],
) -> Answer:
    """Run ``create`` once per (user, key); later calls get its first answer back.

    ``create`` returns (status code, JSON body, case or None) and raises to refuse the
    request; a refusal keeps nothing. Two requests with the same key at the same moment
    are serialised by the unique constraint: the second waits for the first and replays it.
    """
    with transaction.atomic():
        earlier = _earlier(user=user, key=key)
        if earlier is None:
            try:
                with transaction.atomic():
                    record = IdempotencyRecord.objects.create(
                        user=user, key=key, fingerprint=fingerprint, status_code=0, response_body={}
                    )
            except IntegrityError:
                earlier = _earlier(user=user, key=key)
                if earlier is None:  # pragma: no cover - the other request rolled back meanwhile
                    raise
        if earlier is not None:
            if earlier.fingerprint != fingerprint:
                raise IdempotencyKeyReused(key)
            if _replay_allowed(user=user, earlier=earlier):
                return Answer(earlier.status_code, earlier.response_body, replayed=True)
        else:
            status_code, body, case = create()
            record.status_code = status_code
            record.response_body = body
            record.case = case
            try:
                record.save(update_fields=["status_code", "response_body", "case"])
            except BaseException:
                # The case's rows roll back with this transaction; its photo files would stay behind.
                submitted_files_discard(case)
                raise
            return Answer(status_code, body, replayed=False)
    raise Http404  # after the transaction, so that the refusal's audit event is kept


def _replay_allowed(*, user, earlier: IdempotencyRecord) -> bool:
    """A stored answer is handed back only to a user who may still read its case (removed from
    the clinic since, or the case deleted since: 404, as for any case they cannot see); both
    audited. Every stored answer names its case, so one without a case is one whose case was deleted."""
    from .selectors import case_list_for

    visible = earlier.case_id is not None and case_list_for(user=user).filter(pk=earlier.case_id).exists()
    details = {"case": earlier.case_id, "key": earlier.key[:100]}
    if earlier.case_id is None:
        details["case_deleted"] = True
    audit_record(
        actor=user,
        action="case.submit_replay" if visible else "case.submit_replay_refused",
        details=details,
    )
    return visible


def _earlier(*, user, key: str) -> IdempotencyRecord | None:
    records = IdempotencyRecord.objects.select_for_update().filter(user=user, key=key)
    earlier = records.first()
    if earlier is not None and earlier.created_at < timezone.now() - KEY_LIFETIME:
        earlier.delete()  # expired: the key is free again
        return None
    return earlier


def idempotency_records_expired_delete() -> int:
    """Delete answers older than KEY_LIFETIME; return how many."""
    deleted, _by_model = IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - KEY_LIFETIME).delete()
    return deleted

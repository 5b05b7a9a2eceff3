"""Cheap answers to polls of a case's result: an ETag from one small query, 304 when unchanged.

The case page polls its result card, and API clients poll ``GET /api/v1/cases/{id}/``, every
few seconds while the photos are analysed. The ETag is computed from
``selectors.case_result_version`` (the case's status, risk and last change, its photos'
count and last analysis change, their number of predictions), the reader and their language,
so an unchanged result is answered ``304 Not Modified`` without reading the photos or their
predictions, rendering, serialising or auditing anything (nothing is shown).

A poll may also ask the server to wait for the result (a long poll): ``Prefer: wait=N``
(RFC 7240) with the ETag in ``If-None-Match``. The server then checks the version again, with
the same small query, a few times a second for up to N seconds (at most
``SKINPORTAL_POLL_MAX_WAIT_SECONDS``) and answers as soon as the case has its result or one
more photo is finished (then, or when the wait runs out, with 304 if nothing changed at all),
so a client learns of its result within one check of it being stored, with one request
instead of one every few seconds. A waiting request holds one web thread (it sleeps between checks): size gunicorn's
threads for the clients that wait at once (skinportal/gunicorn.py, README).

With a Redis broker the waiting request does not check on a timer: it subscribes to the case's
channel, and the worker publishes there once a photo's outcome is committed
(``result_changed``, called by analysis/services.py). The version is then read once after
subscribing (a result stored just before is not missed) and once per message, so a wait costs
two small queries instead of one every quarter second; every ``NOTIFIED_MAX_STEP`` seconds it
checks anyway, so a lost message costs a second, never the result. Without Redis (the
filesystem broker of a one-machine install), or when Redis fails, it checks on the timer as above.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import threading
import time
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.http import HttpRequest
from django.utils import translation

from .models import LesionImage
from .selectors import case_result_version

logger = logging.getLogger(__name__)


def result_etag(*, request: HttpRequest, pk, kind: str) -> tuple[str | None, tuple | None]:
    """(the ETag of what a poll of this case would show this reader, the version it is made
    from), or (None, None) when the reader cannot see the case (the full view answers 404)."""
    version = case_result_version(user=request.user, pk=pk)
    if version is None:
        return None, None
    return etag_of(request=request, kind=kind, version=version), version


def etag_of(*, request: HttpRequest, kind: str, version: tuple) -> str:
    """The ETag of a version (``selectors.case_result_version``) for this reader."""
    user = request.user
    language = getattr(user, "language", "") or translation.get_language() or ""
    # Times as UTC text: the database driver and the row in hand may name UTC differently.
    parts = tuple(
        value.astimezone(dt.UTC).isoformat() if isinstance(value, dt.datetime) else str(value) for value in version
    )
    source = repr((kind, user.pk, getattr(user, "role", ""), language, parts))
    # The number of photos still waiting ends the tag, so a long poll knows how far the client is.
    return f'"{hashlib.sha256(source.encode()).hexdigest()[:24]}-{version[-1]}"'


def submitted_case_etag(*, request: HttpRequest, case, images, kind: str) -> str:
    """The ETag a poll of a case just submitted would get, from the rows just written (no query):
    the upload's answer carries it, so the client's first poll can already be conditional."""
    pending = (LesionImage.AnalysisStatus.QUEUED, LesionImage.AnalysisStatus.ANALYSING)
    version = (
        case.status,
        case.risk,
        case.updated_at,
        max((image.analysis_updated_at for image in images if image.analysis_updated_at), default=None),
        sum(image.analysis_status in pending for image in images),
    )
    return etag_of(request=request, kind=kind, version=version)


def _client_pending(request: HttpRequest) -> int | None:
    """How many photos still waited in the version the client holds (the end of its ETag), if it sent one of ours."""
    for tag in request.headers.get("If-None-Match", "").split(","):
        match = _OUR_TAG.fullmatch(tag.strip().removeprefix("W/"))
        if match:
            return int(match.group(1))
    return None


def unchanged(request: HttpRequest, etag: str | None) -> bool:
    """Whether the request's If-None-Match names this ETag (weak or strong)."""
    if etag is None:
        return False
    header = request.headers.get("If-None-Match", "")
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}
    return etag in tags


# Between checks of a waiting poll: the first soon after the request (an analysis takes tens
# of milliseconds), then further apart, never more than MAX_STEP, so a long wait costs a few
# small queries a second.
FIRST_STEP = 0.02
STEP_GROWTH = 1.5
MAX_STEP = 0.25
_OUR_TAG = re.compile(r'"[0-9a-f]{24}-(\d+)"')
_WAIT = re.compile(r"(?:^|[;,\s])wait\s*=\s*(\d+(?:\.\d+)?)", re.IGNORECASE)


def wait_requested(request: HttpRequest) -> float:
    """Seconds the client asked the server to wait for a change (``Prefer: wait=N``), capped; 0 if none."""
    match = _WAIT.search(request.headers.get("Prefer", ""))
    if not match:
        return 0.0
    return max(0.0, min(float(match.group(1)), settings.SKINPORTAL_POLL_MAX_WAIT_SECONDS))


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


# --- Told, not asking: the case's channel on the broker's Redis -------------------------------
# With notifications, the longest a waiting request goes without checking (a lost message).
NOTIFIED_MAX_STEP = 1.0
# A Redis that does not answer must not hold up a worker or a web thread for long.
REDIS_TIMEOUT_SECONDS = 0.5
_clients: dict[str, object] = {}
_clients_lock = threading.Lock()


def _channel(pk) -> str:
    return f"skinportal:case-result:{int(pk)}"


def _redis():
    """A client of the broker's Redis (one connection pool per process and URL), or None when
    the broker is not Redis."""
    url = settings.CELERY_BROKER_URL or ""
    if urlsplit(url).scheme not in ("redis", "rediss"):
        return None
    with _clients_lock:
        client = _clients.get(url)
        if client is None:
            import redis

            client = redis.Redis.from_url(
                url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
            )
            _clients[url] = client
    return client


def result_changed(case_id: int) -> None:
    """Tell the requests waiting on this case that one of its photos is finished (after the
    commit). Best effort: a request that misses it checks within ``NOTIFIED_MAX_STEP``."""
    client = _redis()
    if client is None:
        return
    try:
        client.publish(_channel(case_id), b"1")
    except Exception:  # Redis down or slow: the waiting requests check on their own
        logger.warning("could not announce the result of case %s", case_id, exc_info=True)


def _subscribe(pk):
    """A subscription to the case's channel, confirmed, or None (no Redis, or it failed)."""
    client = _redis()
    if client is None:
        return None
    subscription = client.pubsub(ignore_subscribe_messages=True)
    try:
        subscription.subscribe(_channel(pk))
        subscription.get_message(timeout=REDIS_TIMEOUT_SECONDS)  # the confirmation
    except Exception:
        logger.warning("could not subscribe to case %s; checking on a timer", pk, exc_info=True)
        _close(subscription)
        return None
    return subscription


def _await_message(subscription, seconds: float) -> bool | None:
    """Block until a message on the subscription (True) or ``seconds`` (False); None when Redis failed."""
    try:
        return subscription.get_message(timeout=seconds) is not None
    except Exception:
        logger.warning("the result channel failed; checking on a timer", exc_info=True)
        return None


def _close(subscription) -> None:
    try:
        subscription.close()
    except Exception:
        logger.debug("closing a result subscription failed", exc_info=True)


def wait_for_change(
    request: HttpRequest,
    *,
    pk,
    kind: str,
    etag: str | None,
    version: tuple | None,
    seconds: float,
    while_status_in: tuple[str, ...],
) -> tuple[str | None, tuple | None]:
    """Wait, for up to ``seconds``, for a result: the case's status leaving ``while_status_in`` or
    one more of its photos finished; the last (ETag, version). Nothing else is read.

    Steps on the way to a result (the case moving from submitted to analysing, a photo taken by a
    worker) do not end it, even when they happened before the request (the client's ETag says how
    many photos were waiting then), so a client gets one answer per result rather than one per
    step; they are in the answer given when the wait runs out. Without an ETag of ours the
    client is answered at once.
    """
    deadline = time.monotonic() + seconds
    step = FIRST_STEP
    waiting = version[-1] if unchanged(request, etag) else _client_pending(request)
    if waiting is None:
        return etag, version

    def waits() -> bool:
        return version is not None and version[0] in while_status_in and version[-1] >= waiting

    subscription = _subscribe(pk) if waits() else None
    waited = False
    try:
        if subscription is not None:  # a result stored before the subscription is read here
            etag, version = result_etag(request=request, pk=pk, kind=kind)
        while waits():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            waited = True
            if subscription is not None:
                if _await_message(subscription, min(remaining, NOTIFIED_MAX_STEP)) is None:
                    _close(subscription)
                    subscription = None
            else:
                _sleep(min(step, remaining))
                step = min(step * STEP_GROWTH, MAX_STEP)
            etag, version = result_etag(request=request, pk=pk, kind=kind)
    finally:
        if subscription is not None:
            _close(subscription)
    if waited and not _account_still_reads(request):
        return None, None  # the answer that follows reads as for any case the reader cannot see
    return etag, version


def _account_still_reads(request: HttpRequest) -> bool:
    """A wait may outlast the account it was asked for: its ``is_active`` and role are read
    again (a deactivated or deleted account reads nothing, as its next request would not)."""
    user = request.user
    if getattr(user, "pk", None) is None:
        return False
    try:
        user.refresh_from_db(fields=["is_active", "role", "is_superuser"])
    except ObjectDoesNotExist:
        user.is_active = False
    return bool(user.is_active)
